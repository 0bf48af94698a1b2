//! `clawos-channels`: the bus protocol, the client library every channel process uses, and
//! the channel adapters (terminal, webhook).
//!
//! # Layout
//! - [`protocol`]: frames, codec, size cap, environment variable names.
//! - [`client`]: connect, hello, re-send until acked, heartbeats, deliveries.
//! - [`platform`]: what every adapter of an outside service shares: capabilities,
//!   rendering, splitting, pacing, reconnects, link reports.
//! - [`media`]: the content-addressed store of attachment bytes, shared with the Gateway.
//! - [`irc`]: the IRC adapter.
//! - [`terminal`]: a chat prompt on stdin/stdout.
//! - [`webhook`]: HTTP POST in, the reply in the response.
//!
//! **Architecture Invariant:** a channel knows the bus and its own outside world, nothing
//! else (and the media store's blobs): no log, no projections, no agents. It can crash without harming anyone.

pub mod client;
pub mod discord;
pub mod email;
pub mod imessage;
pub mod irc;
pub mod matrix;
pub mod media;
pub mod platform;
pub mod process;
pub mod protocol;
pub mod signal;
pub mod slack;
pub mod telegram;
pub mod terminal;
pub mod webhook;
pub mod whatsapp;
pub mod whatsapp_web;
pub mod xmpp;

use protocol::ErrorCode;

/// Errors of a channel process.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The supervisor did not set a variable.
    #[error("environment variable {0} is not set (channels are started by the Gateway)")]
    MissingEnv(String),
    /// Could not reach the bus.
    #[error("cannot reach the bus: {0}")]
    Connect(String),
    /// The kernel refused the hello.
    #[error("the kernel refused this channel ({code:?}): {message}")]
    Refused {
        /// Why.
        code: ErrorCode,
        /// Details.
        message: String,
    },
    /// The client stopped.
    #[error("the bus client has stopped")]
    Closed,
    /// Local I/O failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
