//! What an engine on one WebSocket connection exchanges with its IO side:
//! what was read ([`Incoming`]), and the [`Framed`] trait through which the
//! IO side writes frames, reads, and runs the drain.

use super::session::Session;
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
///
/// The IO side's connection task, each round:
///
/// 1. while the socket takes frames, writes [`poll_frame`](Self::poll_frame)'s;
/// 2. while [`wants_read`](Self::wants_read), reads and hands each frame to
///    [`handle_incoming`](Self::handle_incoming) (a read error through
///    [`Violation`](super::violation::Violation) into [`Incoming::Failed`]);
/// 3. sleeps until [`Engine::poll_timeout`] and then calls
///    [`Engine::handle_timeout`];
/// 4. once the engine said [`Event::Finished`](crate::Event::Finished), it
///    takes no more frames and reads nothing, but keeps flushing what it
///    took (and what its framing queued on its own, such as the answer to
///    the peer's close frame); each time a flush completes with nothing
///    left, it calls [`handle_flushed`](Self::handle_flushed). The drain
///    deadline ([`DRAIN_TIMEOUT`](super::closing::DRAIN_TIMEOUT) after the end) comes from `poll_timeout`
///    like any other;
/// 5. drops the connection as soon as [`is_done`](Self::is_done).
pub trait Framed: Engine {
    /// The next frame to write.
    fn poll_frame(&mut self, now: Instant) -> Option<Transmit>;
    /// True while the IO side should read from the peer.
    fn wants_read(&self) -> bool;
    /// What the IO side read.
    fn handle_incoming(&mut self, now: Instant, incoming: Incoming);
    /// The IO side flushed everything it took from the engine and its
    /// framing queued. Only a flush after the session finished counts.
    fn handle_flushed(&mut self, now: Instant);
    /// True once the connection may be dropped: the session finished and
    /// the IO side flushed, or the drain ran out ([`DRAIN_TIMEOUT`](super::closing::DRAIN_TIMEOUT)).
    fn is_done(&self) -> bool;
}

impl Framed for Session {
    fn poll_frame(&mut self, now: Instant) -> Option<Transmit> {
        self.poll_transmit(now)
    }

    fn wants_read(&self) -> bool {
        Session::wants_read(self)
    }

    fn handle_flushed(&mut self, now: Instant) {
        Session::handle_flushed(self, now)
    }

    fn is_done(&self) -> bool {
        Session::is_done(self)
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
