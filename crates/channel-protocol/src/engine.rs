//! What every session engine has in common, in the style of quinn-proto.
//!
//! A session engine is a state machine without IO. Every input carries the
//! current time (`now`); the engine never reads a clock. The IO side:
//!
//! - feeds it what arrives (requests, frames) and what the app asks (`send`,
//!   `close`);
//! - asks [`Engine::poll_timeout`] when to wake it next and then calls
//!   [`Engine::handle_timeout`];
//! - takes bytes to write with the engine's own `poll_transmit` (its
//!   signature depends on the protocol's receivers);
//! - takes [`Event`]s with [`Engine::poll_event`] until there are none.
//!
//! What the app sends is numbered in order: the first message is 0. A
//! delivery is confirmed by a watermark, "every message below `through`",
//! because every transport confirms in order.

use crate::close::{CloseReason, SendError};
use crate::message::Message;
use crate::payload::Payload;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Instant;

/// Names one receiver (back channel, receiving request, WebSocket) of a
/// session, so a receiver that was replaced learns it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReceiverId(pub u64);

/// Which numbering a confirmation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Messages (and, on EventSource, ping comments), confirmed when
    /// acknowledged or written.
    Messages,
    /// WebSocket pings, confirmed by their pongs.
    Pings,
}

/// A queued message or ping, to learn of its fate later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The numbering it belongs to.
    pub counter: Counter,
    /// Its number in that numbering.
    pub seq: u64,
}

/// Something the engine tells the IO side.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message for the app, in the order the client sent it.
    Message(Message),
    /// Every item of `counter` numbered below `through` has been confirmed.
    Confirmed {
        /// The numbering.
        counter: Counter,
        /// The watermark.
        through: u64,
    },
    /// The attached receiver has something to write: wake it.
    Transmit,
    /// The session is closed for the app: no more messages either way.
    Closed(CloseReason),
    /// The session is gone for good: forget it. Items not confirmed by now never will be.
    Finished,
}

/// What one receiver is to write next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Bytes: a piece of an HTTP response body, or the text of one WebSocket message.
    Data {
        /// The bytes, framed for the receiver already.
        bytes: Bytes,
        /// Once written, every message below this number is delivered.
        confirms: Option<u64>,
    },
    /// One binary WebSocket message.
    Binary {
        /// The payload.
        bytes: Bytes,
        /// Once written, every message below this number is delivered.
        confirms: Option<u64>,
    },
    /// One WebSocket message whose payload is compressed already
    /// (permessage-deflate, RFC 7692): its first frame carries RSV1.
    Deflated {
        /// The compressed payload, without the sync flush's tail.
        bytes: Bytes,
        /// A binary message (else text).
        binary: bool,
        /// Once written, every message below this number is delivered.
        confirms: Option<u64>,
    },
    /// A WebSocket ping.
    Ping(Bytes),
    /// Write `tail` (possibly empty), then end the response.
    End(Bytes),
    /// Close the WebSocket with this code and reason (the closing handshake).
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
}

/// The app-facing side of every session engine.
pub trait Engine {
    /// Queues a message for the peer.
    fn send(&mut self, now: Instant, payload: &Payload) -> Result<Ticket, SendError>;

    /// Pings the peer, where the transport can.
    fn ping(&mut self, _now: Instant, _payload: Bytes) -> Result<Ticket, SendError> {
        Err(SendError::Unsupported("ping"))
    }

    /// Asks the client to stop reconnecting (BrowserChannel `["stop"]`).
    fn stop(&mut self, _now: Instant) {}

    /// Closes the session.
    fn close(&mut self, now: Instant, reason: CloseReason);

    /// The app's queue of received messages is full (`true`) or has room
    /// again (`false`). The IO side stops feeding the engine meanwhile;
    /// an engine may change what it writes (BrowserChannel asks for
    /// acknowledgements by ending its back channel).
    fn set_backpressure(&mut self, _now: Instant, _blocked: bool) {}

    /// The app has taken every message and waits for more. WebSocket uses
    /// this to close after a protocol error only once the app could reply
    /// to what came before it.
    fn app_idle(&mut self, _now: Instant) {}

    /// True while [`app_idle`](Self::app_idle) would change something, so
    /// the IO side tells it only then.
    fn watches_app(&self) -> bool {
        false
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Runs every timer that is due at `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// What the engine has to tell the IO side, and why it closed.
    fn outbox(&self) -> &Outbox;

    /// The same, to take events from.
    fn outbox_mut(&mut self) -> &mut Outbox;

    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event> {
        self.outbox_mut().pop()
    }

    /// Why the session closed, once it has.
    fn close_reason(&self) -> Option<&CloseReason> {
        self.outbox().close_reason()
    }
}

/// What an engine has to tell the IO side: its [`Event`]s in order, and
/// why the session closed once it has. Every engine closes the same way:
/// the first reason wins, and the app learns it once ([`Event::Closed`]).
///
/// [`Event::Transmit`] is a flag rather than a queued event: it only asks
/// the IO side to wake the receiver, however many times it was raised, so
/// it comes first and once. The most frequent event (each message queued
/// raises it) thus allocates nothing and touches no buffer.
#[derive(Debug, Default)]
pub struct Outbox {
    events: VecDeque<Event>,
    transmit: bool,
    /// Boxed: a session closes once, and an idle one pays for every byte.
    close_reason: Option<Box<CloseReason>>,
}

impl Outbox {
    /// Queues an event for the IO side.
    pub(crate) fn push(&mut self, event: Event) {
        match event {
            Event::Transmit => self.transmit = true,
            event => self.events.push_back(event),
        }
    }

    /// Queues events for the IO side, in order.
    pub(crate) fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.push(event);
        }
    }

    /// The next event, if any: [`Event::Transmit`] first, then the others
    /// in the order they happened.
    pub fn pop(&mut self) -> Option<Event> {
        if std::mem::take(&mut self.transmit) {
            return Some(Event::Transmit);
        }
        self.events.pop_front()
    }

    /// Records why the session closed and tells the app, unless it had
    /// closed already; true when this was the close.
    pub(crate) fn close(&mut self, reason: CloseReason) -> bool {
        if self.close_reason.is_some() {
            return false;
        }
        self.close_reason = Some(Box::new(reason.clone()));
        self.events.push_back(Event::Closed(reason));
        true
    }

    /// True once the session closed.
    pub fn is_closed(&self) -> bool {
        self.close_reason.is_some()
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_deref()
    }

    /// Refuses a message on a closed session with its reason.
    pub(crate) fn closed_error(&self) -> SendError {
        SendError::Closed(
            self.close_reason
                .as_deref()
                .cloned()
                .unwrap_or(CloseReason::ConnectionLost),
        )
    }
}

/// The default byte bound of every queue of messages for the peer, 1 MiB:
/// Centrifugo disconnects a client whose queue passes 1 MB, and 1 MB is
/// socket.io's largest message.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 1 << 20;

/// An engine whose receivers are HTTP responses (BrowserChannel back
/// channels, SockJS receiving requests, the EventSource stream), so the IO
/// side streams every one of them with the same code.
///
/// The IO side asks [`poll_receiver`](Self::poll_receiver) for the next
/// piece of a response body whenever it can write, after an
/// [`Event::Transmit`]; a [`Transmit::End`] ends the body. When the
/// response is gone (it ended, or the client left), it calls
/// [`receiver_gone`](Self::receiver_gone) once.
pub trait HttpReceivers: Engine {
    /// What receiver `id` writes next; `None` while it has nothing to
    /// write. A receiver the engine does not know gets [`Transmit::End`].
    fn poll_receiver(&mut self, now: Instant, id: ReceiverId) -> Option<Transmit>;

    /// Receiver `id`'s response is gone. Each protocol decides what that
    /// means for the session: BrowserChannel waits for the next back
    /// channel, SockJS ends a session whose attached receiver is
    /// abandoned, EventSource ends with its one stream.
    fn receiver_gone(&mut self, now: Instant, id: ReceiverId);
}
