//! The HTTP API's shared pieces: the one admin-token extractor and the one error answer,
//! used by `server.rs` (`/api/status`, `/api/sessions`, `/hooks/agent`) and `admin/`.

pub mod auth;
pub mod error;
