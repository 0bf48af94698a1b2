//! `clawos-testkit`: test doubles for clawos's tests, never a dependency of the product.
//!
//! It is a dev-dependency only (of the `clawos` package's whole-system tests and of
//! `clawos-agents`'s provider tests), so nothing here ends up in the binary.
//!
//! # Layout
//! - [`fake_llm`]: a scripted local server speaking the OpenAI Chat Completions and the
//!   Anthropic Messages APIs (text, tool calls, error statuses, hangs, malformed JSON),
//!   and the fake embeddings it serves.

pub mod fake_llm;
