//! `nudge-server`: the backend of Nudge. Phase 1 is durable, Segment-compatible ingest:
//! `POST /v1/batch` (and the single-call routes) store every message once per `messageId`,
//! on an embedded SQLite file by default or on PostgreSQL with `DATABASE_URL`.
//!
//! The binary (`src/main.rs`) is a thin wrapper: everything lives in this library so that
//! the tests can run the real router on a real socket in-process.

pub mod abandon;
pub mod api;
pub mod app;
pub mod auth;
pub mod background;
pub mod body;
pub mod campaigns;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod cors;
pub mod coupons;
pub mod dashboard;
pub mod email;
pub mod erase;
pub mod error;
pub mod feed;
pub mod follow;
pub mod hmac;
pub mod identity;
pub mod ingest;
pub mod limits;
pub mod message;
pub mod profiles;
pub mod site_config;
pub mod sites;
pub mod state;
pub mod store;
pub mod uplift;
pub mod webhooks;
