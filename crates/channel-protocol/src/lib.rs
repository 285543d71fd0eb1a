//! Sans-IO protocol code for browser channels.
//!
//! This crate knows nothing of sockets, timers or HTTP servers. It turns bytes
//! and query parameters into protocol events and protocol state into bytes, so
//! that every rule of the wire format can be tested without a network:
//!
//! - [`json`]: JSON text that survives any transport (ASCII only).
//! - [`order_buffer`]: reorders numbered items that arrive out of sequence.
//! - [`browserchannel`]: Google's BrowserChannel protocol, version 8: query
//!   parameters, forward channel decoding, back channel encoding and the
//!   per-session state machine.
//! - [`event_stream`]: the `text/event-stream` format of server-sent events.
//! - [`hixie76`]: the legacy hixie-76 WebSocket handshake and framing.
//! - [`sockjs`]: SockJS 0.3 framing, payloads, endpoints and session state.
//!
//! The `axum-channel` crate drives these state machines from real HTTP requests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod browserchannel;
pub mod event_stream;
pub mod hixie76;
pub mod json;
pub mod order_buffer;
pub mod sockjs;

pub use order_buffer::{OrderBuffer, OrderError, Placement};
