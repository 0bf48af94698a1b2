//! Agents in processes of their own: the protocol the Gateway and an agent process speak
//! over the process's stdin and stdout (`docs/agent-protocol.md`).
//!
//! - [`protocol`]: the hello, and the frames each side sends.
//! - [`codec`]: JSON lines or length-prefixed bincode on a byte stream.
//! - [`serve`]: the agent's side: run any [`crate::Agent`] behind the pipes
//!   (`clawos agent NAME` runs Pi this way).
//!
//! The Gateway's side (supervision, validation, the turn's records) is in the kernel.

pub mod codec;
pub mod protocol;
pub mod serve;
