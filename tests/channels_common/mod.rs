//! Helpers of the channel tests: the conformance suite and each service's test peer.

#![allow(dead_code)]

pub mod conformance;
pub mod email_peer;
pub mod irc_peer;
pub mod matrix_peer;
pub mod xmpp_peer;
