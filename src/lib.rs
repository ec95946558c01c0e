//! Nudge: a browser personalization SDK for online stores.
//!
//! The crate is a pure core (every module but `web`): profile + input + time in, new
//! profile + outputs out, with no I/O, clock or randomness of its own. `web` is the thin
//! wasm32-only shell that turns browser APIs into inputs and performs the outputs. The
//! server links the same core, so browser and backend agree on what a profile means.
//! ARCHITECTURE.md maps each concept to its module.

pub mod absorb;
pub mod affinity;
pub mod campaign;
pub mod caps;
pub mod cart;
pub mod codec;
pub mod config;
pub mod consent;
pub mod decay;
pub mod decide;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod event;
pub mod funnel;
pub mod identity;
pub mod intent;
pub mod json;
pub mod json_value;
pub mod keyed;
pub mod merge;
pub mod message;
pub mod outbox;
pub mod profile;
pub mod recommend;
pub mod session;
pub mod storage_budget;
pub mod tabs;
pub mod time;

#[cfg(target_arch = "wasm32")]
pub mod web;
