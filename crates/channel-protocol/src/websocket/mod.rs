//! Native WebSocket sessions (RFC 6455, and the legacy hixie-76 framing).
//!
//! Frame coding itself is tungstenite's (and [`crate::hixie76`]'s); this
//! module holds what the session decides: [`session`] the queue, pings and
//! the closing handshake, [`utf8_guard`] the fail-fast UTF-8 check of text
//! messages still arriving.

pub mod handshake;
pub mod session;
pub mod utf8_guard;
pub mod violation;

pub use handshake::{Accepted, Handshake, Refusal};
pub use session::{Session, SessionConfig};
pub use utf8_guard::{InvalidUtf8, TextGuard};
pub use violation::Violation;

use crate::engine::{Engine, Transmit};
use bytes::Bytes;
use std::time::Instant;

/// What the IO side read from a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text message.
    Text(String),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping; the framing layer answers it.
    Ping,
    /// A pong with its payload.
    Pong(Bytes),
    /// The peer's close frame.
    Close {
        /// Its code, if it gave one.
        code: Option<u16>,
        /// Its reason, empty if none.
        reason: String,
    },
    /// The peer broke the protocol or a limit: fail with this code.
    Failed {
        /// The close code (1002, 1007, 1009...).
        code: u16,
        /// What went wrong.
        reason: String,
    },
    /// The connection dropped.
    Lost,
}

/// A session engine carried by one WebSocket connection, whose IO side
/// reads and writes whole frames.
pub trait Framed: Engine {
    /// The next frame to write.
    fn poll_frame(&mut self, now: Instant) -> Option<Transmit>;
    /// True while the IO side should read from the peer.
    fn wants_read(&self) -> bool;
    /// What the IO side read.
    fn handle_incoming(&mut self, now: Instant, incoming: Incoming);
}

impl Framed for Session {
    fn poll_frame(&mut self, now: Instant) -> Option<Transmit> {
        self.poll_transmit(now)
    }

    fn wants_read(&self) -> bool {
        Session::wants_read(self)
    }

    fn handle_incoming(&mut self, now: Instant, incoming: Incoming) {
        match incoming {
            Incoming::Text(text) => self.handle_message(now, crate::Message::Text(text)),
            Incoming::Binary(data) => self.handle_message(now, crate::Message::Binary(data)),
            Incoming::Ping => {}
            Incoming::Pong(payload) => self.handle_pong(now, &payload),
            Incoming::Close { code, reason } => self.handle_peer_close(now, code, reason),
            Incoming::Failed { code, reason } => self.handle_protocol_error(now, code, reason),
            Incoming::Lost => self.handle_connection_lost(now),
        }
    }
}
