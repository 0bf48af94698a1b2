//! Helpers of the channel tests: the conformance suite and each service's test peer.

#![allow(dead_code)]

pub mod conformance;
pub mod discord_peer;
pub mod email_peer;
pub mod imessage_peer;
pub mod irc_peer;
pub mod matrix_peer;
pub mod signal_peer;
pub mod slack_peer;
pub mod telegram_peer;
pub mod whatsapp_peer;
pub mod xmpp_peer;

/// The folder of a service's test peer scripts, `tests/peers/KIND`.
pub fn peers_dir(kind: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(kind)
}
