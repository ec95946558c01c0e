//! The browser shell (wasm32 only): turns browser APIs into core inputs and performs the
//! core's outputs. Each file is one browser concern; `api` is the one exported face.
//!
//! Nothing here may throw into the host page or panic: browser calls that can fail return
//! `Result` and are handled where they are made, and errors reach the page in one place
//! (`api::Nudge::fail`).

mod alloc;
pub mod api;
mod env;
mod listeners;
mod shell;
mod storage;
mod tabs;
