//! Sans-IO protocol code for browser channels.
//!
//! This crate knows nothing of sockets, timers or HTTP servers. It turns bytes
//! and query parameters into protocol events and protocol state into bytes, so
//! that every rule of the wire format can be tested without a network. Every
//! session engine takes the current time as an input and says when it wants
//! to be woken, as quinn-proto does ([`engine`]), and keeps its deadlines
//! as named timers ([`timer`]):
//!
//! - [`browserchannel`]: Google's BrowserChannel protocol, version 8: query
//!   parameters, the connection test, forward channel decoding, back
//!   channel encoding and the session engine (arrays, acknowledgements,
//!   heartbeats, timeout).
//! - [`sockjs`]: SockJS 0.3 endpoints, what each transport allows and
//!   answers, framing, payloads and the session engine (receivers,
//!   heartbeats, `response_limit`, disconnect delay).
//! - [`websocket`]: the opening handshake, the native WebSocket session
//!   engine (queue, pings), the closing handshake and drain every engine
//!   on a WebSocket shares, the close code of each protocol violation, the
//!   fail-fast UTF-8 guard, and permessage-deflate (RFC 7692) with the
//!   frame reader its sessions use.
//! - [`event_stream`]: the `text/event-stream` format and the EventSource
//!   session engine.
//! - [`hixie76`]: the legacy hixie-76 WebSocket handshake and framing.
//! - [`history`]: room history, each message at a position, for recovery
//!   after a reconnect.
//! - [`json`]: JSON text that survives any transport.
//! - [`order_buffer`]: reorders numbered items that arrive out of sequence,
//!   holding a bounded number (and weight) of early ones.
//! - [`payload`]: what the app sends, encoded once per wire format.
//! - [`cluster`]: what the nodes of a cluster tell each other: broadcasts,
//!   questions and replies, and the topics they travel on.
//! - [`message`], [`close`]: what the app receives, and why a session ended;
//!   [`close_code`]: the close codes, named after RFC 6455 and sockjs-node.
//!
//! The `axum-channel` crate drives these engines from real HTTP requests,
//! WebSockets and timers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod browserchannel;
pub mod close;
pub mod close_code;
pub mod cluster;
pub mod engine;
pub mod event_stream;
pub mod history;
pub mod hixie76;
pub mod json;
pub mod message;
pub mod order_buffer;
pub mod payload;
mod queue;
pub mod sockjs;
pub mod timer;
pub mod websocket;

pub use close::{CloseReason, SendError};
pub use engine::{Counter, Engine, Event, HttpReceivers, Outbox, ReceiverId, Ticket, Transmit};
pub use message::Message;
pub use order_buffer::{OrderBuffer, OrderError, Placement, WeightedOrderBuffer};
pub use payload::{Payload, WireFormat};
