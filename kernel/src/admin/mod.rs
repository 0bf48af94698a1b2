//! The admin UI: time-travel debugging in the browser.
//!
//! `/admin` serves a static shell (HTML, CSS, JS embedded in the binary; no CDN, no build
//! step). Every piece of data it shows comes from the JSON endpoints under `/api`, and every
//! one of them needs the admin token (`Authorization: Bearer TOKEN`), checked by the one
//! extractor of `crate::api::auth`, and fails with `crate::api::error::ApiError`. The shell itself holds
//! no data, so it loads without the token and asks for it.
//!
//! # Layout
//! - [`assets`]: the embedded shell.
//! - [`log`]: pages of the event log (newest first, filters, seq cursors) and one event
//!   with what caused it and what it caused.
//! - [`state`]: the read models as they were after any seq, folded by the replay library.
//! - [`sessions`]: fork from a message and replay a turn on a new branch.
//! - [`ops`]: audit of turns, channels with pending deliveries, memory search.
//!
//! **Architecture Invariant:** the admin API reads the log, the live projections or a
//! replay fold; the only things it writes are the events the chat commands and the replay
//! library would write themselves (`BranchCreated`, a replayed `MessageReceived`).

pub mod assets;
pub mod log;
pub mod ops;
pub mod sessions;
pub mod state;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::gateway::Gateway;

/// The admin routes: the shell under `/admin` and its data endpoints under `/api`. Each call
/// makes a new [`state::FoldCache`] for the Gateway the router serves.
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin", get(assets::index))
        .route("/admin/", get(assets::index))
        .route("/admin/app.js", get(assets::script))
        .route("/admin/app.css", get(assets::style))
        .route("/api/events", get(log::page))
        .route("/api/events/{seq}", get(log::one))
        .route("/api/state", get(state::at))
        .route("/api/sessions/{id}/fork", post(sessions::fork))
        .route("/api/sessions/{id}/replay", post(sessions::replay))
        .route("/api/sessions/{id}/audit", get(ops::audit))
        .route("/api/channels", get(ops::channels))
        .route("/api/memories", get(ops::memories))
        .layer(axum::Extension(Arc::new(state::FoldCache::default())))
}
