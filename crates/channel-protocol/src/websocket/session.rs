//! The state of one native WebSocket session, without IO.
//!
//! The IO side decodes frames (with tungstenite, or the hixie-76 codec) and
//! reports what it read; the session decides what to write: the app's
//! messages in order, pings, and the closing handshake (RFC 6455 section
//! 7, [`ClosingHandshake`]). A message is delivered once written; a ping
//! once its pong arrives.
//!
//! When the peer breaks the protocol, the session stops reading, lets the
//! app answer every message that came before the violation, writes those
//! answers, and only then closes with the error's code: the peer loses
//! nothing it was owed.
//!
//! Timers ([`Timer`]): the automatic ping while open, the failure grace
//! after a protocol error, the close timeout once the close frame is out,
//! and the drain once the session finished.

use super::closing::{ClosingHandshake, ClosingTimers};
use super::permessage_deflate::{Agreed, DeflateParams};
use crate::close::{CloseReason, SendError};
use crate::engine::{Counter, Engine, Event, Outbox, Ticket, Transmit, DEFAULT_MAX_QUEUED_BYTES};
use crate::message::Message;
use crate::payload::{Payload, WireFormat};
use crate::queue::{SendQueue, Weighed};
use crate::timer::{self, TimerTable};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The settings of one WebSocket session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Pings the peer this often; a peer that has not answered the previous
    /// ping by the next one is closed with 1001.
    pub ping_interval: Option<Duration>,
    /// Most messages queued for the peer and not yet written.
    pub max_queued_messages: usize,
    /// Most bytes queued for the peer: messages not yet written and pings
    /// not yet answered. A message or ping that would pass it is refused
    /// unless nothing waits ([`SendError::QueueTooLarge`]).
    pub max_queued_bytes: usize,
    /// How long the server waits for the peer's close frame after its own.
    pub close_timeout: Duration,
    /// How long the app may take to answer what came before a protocol
    /// error before the session closes anyway.
    pub failure_grace: Duration,
    /// The framing carries binary messages (RFC 6455 does, hixie-76 does not).
    pub binary: bool,
    /// The framing carries pings (RFC 6455 does, hixie-76 does not).
    pub pings: bool,
    /// permessage-deflate, when the handshake agreed on it.
    pub deflate: Option<SessionDeflate>,
}

/// How a session with permessage-deflate (RFC 7692) compresses what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionDeflate {
    /// The server's compression parameters.
    pub params: DeflateParams,
    /// Messages shorter than this go uncompressed (16 bits, so that an
    /// idle session does not grow: [`DeflateConfig::min_size`] is capped
    /// at 65,535).
    ///
    /// [`DeflateConfig::min_size`]: super::permessage_deflate::DeflateConfig::min_size
    pub min_size: u16,
}

impl From<&Agreed> for SessionDeflate {
    fn from(agreed: &Agreed) -> Self {
        Self {
            params: agreed.outgoing(),
            min_size: u16::try_from(agreed.min_size).unwrap_or(u16::MAX),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_interval: None,
            max_queued_messages: 4096,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            close_timeout: Duration::from_secs(5),
            failure_grace: Duration::from_secs(1),
            binary: true,
            pings: true,
            deflate: None,
        }
    }
}

/// The timers of a WebSocket session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The next automatic ping, while open (RFC 6455 section 5.5.2).
    AutoPing,
    /// The app's last chance to answer before a protocol error closes the session.
    FailureGrace,
    /// The peer's answer to the close frame (RFC 6455 section 7.1.1).
    Close,
    /// The IO side's last writes after the session finished.
    Drain,
}

impl timer::Timer for Timer {
    const ALL: &'static [Self] = &[
        Timer::AutoPing,
        Timer::FailureGrace,
        Timer::Close,
        Timer::Drain,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl ClosingTimers for Timer {
    const CLOSE: Self = Timer::Close;
    const DRAIN: Self = Timer::Drain;
}

#[derive(Debug)]
struct Outgoing {
    bytes: Bytes,
    binary: bool,
    /// Compressed already (permessage-deflate without context takeover).
    deflated: bool,
}

impl Weighed for Outgoing {
    fn weight(&self) -> usize {
        self.bytes.len()
    }
}

/// One WebSocket session's state.
///
/// ```
/// use axum_channel_protocol::engine::{Engine, Transmit};
/// use axum_channel_protocol::payload::Payload;
/// use axum_channel_protocol::websocket::{Session, SessionConfig};
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut session = Session::new(now, SessionConfig::default());
/// session.send(now, &Payload::text("hi")).unwrap();
/// assert!(matches!(session.poll_transmit(now), Some(Transmit::Data { confirms: Some(1), .. })));
/// session.close(now, axum_channel_protocol::CloseReason::Closed("bye".into()));
/// assert_eq!(session.poll_transmit(now), Some(Transmit::Close { code: 1000, reason: "bye".into() }));
/// ```
#[derive(Debug)]
pub struct Session {
    /// Messages not yet written; the payloads of `pings` count against its
    /// byte bound too (held beside them).
    queue: SendQueue<Outgoing>,
    /// Pings not yet written, then written and waiting for their pong.
    pings: VecDeque<(Bytes, u64, bool)>,
    next_ping: u64,
    /// The last automatic ping is still unanswered.
    awaiting_pong: bool,
    closing: ClosingHandshake,
    timers: TimerTable<Timer, 4>,
    /// The protocol error the session fails with once the app has answered
    /// (boxed: it is rare, and an idle session pays for every byte).
    failure: Option<Box<CloseReason>>,
    outbox: Outbox,
    config: SessionConfig,
    /// A close without a reason says `Normal closure` (see [`Session::naming_normal_closure`]).
    name_normal_closure: bool,
}

impl Session {
    /// A new, open session.
    pub fn new(now: Instant, config: SessionConfig) -> Self {
        let mut timers = TimerTable::new(now);
        if let Some(every) = config.ping_interval.filter(|_| config.pings) {
            timers.set(Timer::AutoPing, now + every);
        }
        Self {
            queue: SendQueue::default(),
            pings: VecDeque::new(),
            next_ping: 0,
            awaiting_pong: false,
            closing: ClosingHandshake::new(),
            timers,
            failure: None,
            outbox: Outbox::default(),
            config,
            name_normal_closure: false,
        }
    }

    /// The same session, but an app close without a reason
    /// (`CloseReason::Closed("")`) sends the close frame 1000 `Normal
    /// closure`, as sockjs-node's raw WebSocket endpoint does; otherwise
    /// its reason is empty, as faye-websocket's argument-less `close()`.
    pub fn naming_normal_closure(mut self) -> Self {
        self.name_normal_closure = true;
        self
    }

    /// Open, and the peer has not broken the protocol.
    fn is_open(&self) -> bool {
        self.closing.is_open() && self.failure.is_none() && !self.outbox.is_closed()
    }

    /// The peer broke the protocol; the app may still answer.
    fn is_failing(&self) -> bool {
        self.closing.is_open() && self.failure.is_some()
    }

    /// True while the IO side should read from the peer: not after a
    /// protocol error, and not once the session is finished.
    pub fn wants_read(&self) -> bool {
        self.is_open() || self.closing.is_closing()
    }

    /// True once nothing more will be written or read.
    pub fn is_finished(&self) -> bool {
        self.closing.is_finished()
    }

    /// How many messages are queued and not yet written: at most
    /// [`SessionConfig::max_queued_messages`].
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    /// How many bytes the queued messages and the pings not yet answered
    /// hold: at most [`SessionConfig::max_queued_bytes`], or one message
    /// or ping when that alone is larger.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// How many pings are not yet written or wait for their pong: at most
    /// [`SessionConfig::max_queued_messages`] (at least one, for the
    /// automatic ping).
    pub fn queued_pings(&self) -> usize {
        self.pings.len()
    }

    /// When `timer` fires, if it runs.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// A text or binary message from the peer.
    pub fn handle_message(&mut self, _now: Instant, message: Message) {
        if self.is_open() {
            self.outbox.push(Event::Message(message));
        }
    }

    /// A pong: it answers the ping with the same payload and every ping
    /// before it (a peer may answer only the latest of several).
    pub fn handle_pong(&mut self, _now: Instant, payload: &[u8]) {
        self.awaiting_pong = false;
        // The latest ping with that payload: pings of one payload (the
        // automatic ones are all empty) are answered by the newest pong.
        let answered = self
            .pings
            .iter()
            .rposition(|(ping, _, sent)| *sent && &ping[..] == payload);
        if let Some(index) = answered {
            let through = self.pings[index].1 + 1;
            for (payload, _, _) in self.pings.drain(..=index) {
                self.queue.release(payload.len());
            }
            self.outbox.push(Event::Confirmed {
                counter: Counter::Pings,
                through,
            });
        }
    }

    /// The peer's close frame. If the server closed first, this completes
    /// the handshake; otherwise the framing layer has answered it already.
    pub fn handle_peer_close(&mut self, now: Instant, code: Option<u16>, reason: String) {
        if !self.closing.is_closing() {
            self.set_closed(CloseReason::Peer { code, reason });
        }
        self.finish(now);
    }

    /// The peer broke the protocol or a limit: the session fails with
    /// `code` (1002, 1007, 1009...) once the app has answered what came before.
    pub fn handle_protocol_error(&mut self, now: Instant, code: u16, reason: String) {
        if self.is_open() {
            self.failure = Some(Box::new(CloseReason::Failed { code, reason }));
            self.timers.stop(Timer::AutoPing);
            self.timers
                .set(Timer::FailureGrace, now + self.config.failure_grace);
        } else if self.closing.is_closing() {
            // Reading the peer's close after our own failed: nothing more to wait for.
            self.finish(now);
        }
    }

    /// The connection dropped.
    pub fn handle_connection_lost(&mut self, now: Instant) {
        let reason = match &self.failure {
            Some(failure) if self.is_failing() => (**failure).clone(),
            _ => CloseReason::ConnectionLost,
        };
        self.set_closed(reason);
        self.finish(now);
    }

    fn set_closed(&mut self, reason: CloseReason) {
        self.outbox.close(reason);
    }

    fn finish(&mut self, now: Instant) {
        if self.closing.finish(now, &mut self.timers) {
            self.queue.clear();
            self.pings = VecDeque::new();
            self.outbox.push(Event::Finished);
        }
    }

    fn start_closing(&mut self, reason: CloseReason) {
        let (code, mut text) = reason.websocket_close();
        if self.name_normal_closure && matches!(&reason, CloseReason::Closed(t) if t.is_empty()) {
            text = "Normal closure".into();
        }
        self.set_closed(reason);
        self.closing.start(code, text);
        self.timers.stop(Timer::AutoPing);
        self.timers.stop(Timer::FailureGrace);
        self.outbox.push(Event::Transmit);
    }

    /// What to write next: queued messages in order, pings, then the close
    /// frame once closing. `None` while there is nothing to write.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.closing.is_finished() {
            return None;
        }
        if let Some((outgoing, through)) = self.queue.pop() {
            let confirms = Some(through);
            return Some(if outgoing.deflated {
                Transmit::Deflated {
                    bytes: outgoing.bytes,
                    binary: outgoing.binary,
                    confirms,
                }
            } else if outgoing.binary {
                Transmit::Binary {
                    bytes: outgoing.bytes,
                    confirms,
                }
            } else {
                Transmit::Data {
                    bytes: outgoing.bytes,
                    confirms,
                }
            });
        }
        if let Some((payload, _, sent)) = self.pings.iter_mut().find(|(_, _, sent)| !*sent) {
            *sent = true;
            return Some(Transmit::Ping(payload.clone()));
        }
        self.closing
            .poll_close(now, &mut self.timers, self.config.close_timeout)
    }

    /// The IO side flushed everything it took (see [`Framed::handle_flushed`](super::framed::Framed::handle_flushed)).
    pub fn handle_flushed(&mut self, _now: Instant) {
        self.closing.handle_flushed(&mut self.timers);
    }

    /// True once the connection may be dropped (see [`Framed::is_done`](super::framed::Framed::is_done)).
    pub fn is_done(&self) -> bool {
        self.closing.is_done()
    }

    fn queue_ping(&mut self, payload: Bytes) -> u64 {
        let seq = self.next_ping;
        self.next_ping += 1;
        self.queue.hold(payload.len());
        self.pings.push_back((payload, seq, false));
        self.outbox.push(Event::Transmit);
        seq
    }

    /// Refuses `adding` more bytes past the byte bound; an automatic ping
    /// weighs nothing, so waiting for a pong never holds a message back.
    fn check_bytes(&self, adding: usize) -> Result<(), SendError> {
        self.queue.check_bytes(adding, self.config.max_queued_bytes)
    }

    /// The automatic ping is due: a peer that left the previous one
    /// unanswered is closed, any other is pinged again.
    fn auto_ping(&mut self, now: Instant) {
        let Some(every) = self.config.ping_interval else {
            return;
        };
        if self.awaiting_pong {
            self.start_closing(CloseReason::PingTimeout);
            return;
        }
        self.awaiting_pong = true;
        self.timers.set(Timer::AutoPing, now + every);
        // A peer whose pongs answer no ping leaves its pings queued;
        // while the queue is full, an earlier ping stands for this one.
        if self.pings.len() < self.config.max_queued_messages.max(1) {
            self.queue_ping(Bytes::new());
        }
    }
}

impl Engine for Session {
    fn send(&mut self, _now: Instant, payload: &Payload) -> Result<Ticket, SendError> {
        if !self.closing.is_open() {
            return Err(self.outbox.closed_error());
        }
        let binary = payload.is_binary();
        if binary && !self.config.binary {
            return Err(SendError::Unsupported("binary messages"));
        }
        let mut bytes = payload
            .encode(WireFormat::WebSocket)
            .ok_or(SendError::Unsupported(payload.kind()))?;
        let mut deflated = false;
        if let Some(deflate) = self
            .config
            .deflate
            .filter(|d| bytes.len() >= usize::from(d.min_size))
        {
            if deflate.params.no_context_takeover {
                // RFC 7692 section 7.1.1.1: each message compressed on its
                // own, so every member of a broadcast shares the frame.
                if let Some(compressed) = payload.deflated(deflate.params) {
                    bytes = compressed;
                    deflated = true;
                }
            } else {
                // Compressed by the connection, with its own window.
                payload.count_member_deflate();
            }
        }
        let seq = self.queue.push(
            Outgoing {
                bytes,
                binary,
                deflated,
            },
            self.config.max_queued_messages,
            self.config.max_queued_bytes,
        )?;
        self.outbox.push(Event::Transmit);
        Ok(Ticket {
            counter: Counter::Messages,
            seq,
        })
    }

    fn ping(&mut self, _now: Instant, payload: Bytes) -> Result<Ticket, SendError> {
        if !self.config.pings {
            return Err(SendError::Unsupported("ping"));
        }
        if !self.closing.is_open() {
            return Err(self.outbox.closed_error());
        }
        if self.pings.len() >= self.config.max_queued_messages {
            return Err(SendError::QueueFull {
                limit: self.config.max_queued_messages,
            });
        }
        self.check_bytes(payload.len())?;
        Ok(Ticket {
            counter: Counter::Pings,
            seq: self.queue_ping(payload),
        })
    }

    /// Writes what is queued, then the close frame; the session finishes
    /// when the peer answers it, or after the close timeout.
    fn close(&mut self, _now: Instant, reason: CloseReason) {
        if self.closing.is_open() {
            self.start_closing(reason);
        }
    }

    fn watches_app(&self) -> bool {
        self.is_failing()
    }

    fn app_idle(&mut self, _now: Instant) {
        if let Some(failure) = self.failure.clone().filter(|_| self.is_failing()) {
            self.start_closing(*failure);
        }
    }

    /// The earliest running timer: each runs in one phase only.
    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(_, deadline)| deadline)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expire(Timer::AutoPing, now) {
            self.auto_ping(now);
        }
        if self.timers.expire(Timer::FailureGrace, now) {
            self.app_idle(now);
        }
        if self.closing.handle_timeout(now, &mut self.timers) {
            self.finish(now);
        }
    }

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn outbox_mut(&mut self) -> &mut Outbox {
        &mut self.outbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(session: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    #[test]
    fn messages_are_written_in_order_and_confirmed_by_the_write() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.send(now, &Payload::text("a")).unwrap();
        let b = session.send(now, &Payload::binary(vec![1u8])).unwrap();
        assert_eq!(b.seq, 1);
        assert_eq!(
            session.poll_transmit(now),
            Some(Transmit::Data {
                bytes: Bytes::from_static(b"a"),
                confirms: Some(1)
            })
        );
        assert_eq!(
            session.poll_transmit(now),
            Some(Transmit::Binary {
                bytes: Bytes::from_static(&[1]),
                confirms: Some(2)
            })
        );
        assert_eq!(session.poll_transmit(now), None);
    }

    #[test]
    fn a_close_without_a_reason_may_name_the_normal_closure() {
        let now = Instant::now();
        let close = |mut session: Session, reason: &str| {
            session.close(now, CloseReason::Closed(reason.into()));
            session.poll_transmit(now)
        };
        let plain = || Session::new(now, SessionConfig::default());
        let frame = |code, reason: &str| {
            Some(Transmit::Close {
                code,
                reason: reason.into(),
            })
        };
        assert_eq!(close(plain(), ""), frame(1000, ""));
        let named = || plain().naming_normal_closure();
        assert_eq!(close(named(), ""), frame(1000, "Normal closure"));
        assert_eq!(close(named(), "bye"), frame(1000, "bye"));
        let mut chosen = named();
        chosen.close(
            now,
            CloseReason::ClosedWithCode {
                code: 1000,
                reason: String::new(),
            },
        );
        assert_eq!(
            chosen.poll_transmit(now),
            frame(1000, ""),
            "a chosen code is kept as it is"
        );
    }

    #[test]
    fn a_pong_answers_its_ping_and_the_ones_before() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.ping(now, Bytes::from_static(b"1")).unwrap();
        let second = session.ping(now, Bytes::from_static(b"2")).unwrap();
        assert_eq!(second.counter, Counter::Pings);
        assert_eq!(
            session.poll_transmit(now),
            Some(Transmit::Ping(Bytes::from_static(b"1")))
        );
        session.poll_transmit(now);
        events(&mut session);
        session.handle_pong(now, b"unknown");
        assert!(events(&mut session).is_empty());
        session.handle_pong(now, b"2");
        assert_eq!(
            events(&mut session),
            [Event::Confirmed {
                counter: Counter::Pings,
                through: 2
            }]
        );
    }

    #[test]
    fn a_silent_peer_is_closed_at_the_next_ping() {
        let now = Instant::now();
        let config = SessionConfig {
            ping_interval: Some(Duration::from_secs(10)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        let first = now + Duration::from_secs(10);
        assert_eq!(session.poll_timeout(), Some(first));
        session.handle_timeout(first);
        assert_eq!(
            session.poll_transmit(first),
            Some(Transmit::Ping(Bytes::new()))
        );
        let second = first + Duration::from_secs(10);
        session.handle_timeout(second);
        assert_eq!(
            session.poll_transmit(second),
            Some(Transmit::Close {
                code: 1001,
                reason: "Ping timeout".into()
            })
        );
        assert_eq!(session.close_reason(), Some(&CloseReason::PingTimeout));
        // No answer to the close frame: the session finishes after the close timeout.
        session.handle_timeout(second + Duration::from_secs(5));
        assert!(session.is_finished());
    }

    #[test]
    fn pongs_that_answer_nothing_leave_the_ping_queue_bounded() {
        let now = Instant::now();
        let config = SessionConfig {
            ping_interval: Some(Duration::from_secs(10)),
            max_queued_messages: 2,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        for round in 1..10 {
            let at = now + Duration::from_secs(10 * round);
            session.handle_timeout(at);
            session.poll_transmit(at);
            // Any pong shows the peer is alive, but this one answers no ping.
            session.handle_pong(at, b"bogus");
            assert!(
                session.queued_pings() <= 2,
                "{} pings",
                session.queued_pings()
            );
        }
        assert_eq!(session.close_reason(), None);
        // The queued pings are still answered by their pong.
        let before = session.queued_pings();
        session.handle_pong(now, b"");
        assert!(session.queued_pings() < before);
    }

    #[test]
    fn a_peer_that_answers_stays_open() {
        let now = Instant::now();
        let config = SessionConfig {
            ping_interval: Some(Duration::from_secs(10)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        for round in 1..5 {
            let at = now + Duration::from_secs(10 * round);
            session.handle_timeout(at);
            assert_eq!(
                session.poll_transmit(at),
                Some(Transmit::Ping(Bytes::new()))
            );
            session.handle_pong(at, b"");
        }
        assert_eq!(session.close_reason(), None);
    }

    #[test]
    fn after_a_protocol_error_the_app_answers_first() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.handle_message(now, Message::Text("valid".into()));
        session.handle_protocol_error(now, 1002, "bad frame".into());
        assert!(!session.wants_read());
        assert_eq!(session.close_reason(), None);
        // The app replies to the valid message, then waits for more.
        session.send(now, &Payload::text("valid")).unwrap();
        session.app_idle(now);
        assert!(matches!(
            session.poll_transmit(now),
            Some(Transmit::Data { .. })
        ));
        assert_eq!(
            session.poll_transmit(now),
            Some(Transmit::Close {
                code: 1002,
                reason: "bad frame".into()
            })
        );
        session.handle_peer_close(now, Some(1002), String::new());
        assert!(session.is_finished());
        assert!(matches!(
            session.close_reason(),
            Some(CloseReason::Failed { code: 1002, .. })
        ));
    }

    #[test]
    fn an_app_that_never_answers_gets_a_grace_period() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.handle_protocol_error(now, 1007, "utf-8".into());
        let deadline = session.poll_timeout().unwrap();
        assert_eq!(deadline, now + Duration::from_secs(1));
        session.handle_timeout(deadline);
        assert_eq!(
            session.poll_transmit(deadline),
            Some(Transmit::Close {
                code: 1007,
                reason: "utf-8".into()
            })
        );
    }

    #[test]
    fn the_peer_closing_ends_the_session_and_refuses_sends() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.handle_peer_close(now, Some(4000), "bye".into());
        assert!(session.is_finished());
        assert_eq!(
            session.send(now, &Payload::text("late")),
            Err(SendError::Closed(CloseReason::Peer {
                code: Some(4000),
                reason: "bye".into()
            }))
        );
        let events = events(&mut session);
        assert!(events.contains(&Event::Finished));
    }

    #[test]
    fn hixie_framing_carries_neither_binary_nor_pings_and_the_queue_is_bounded() {
        let now = Instant::now();
        let config = SessionConfig {
            binary: false,
            pings: false,
            max_queued_messages: 1,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        assert_eq!(
            session.send(now, &Payload::binary(vec![1u8])),
            Err(SendError::Unsupported("binary messages"))
        );
        assert_eq!(
            session.ping(now, Bytes::new()),
            Err(SendError::Unsupported("ping"))
        );
        session.send(now, &Payload::text("a")).unwrap();
        assert_eq!(
            session.send(now, &Payload::text("b")),
            Err(SendError::QueueFull { limit: 1 })
        );
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_takes_one_large_message_alone() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_bytes: 10,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        let too_large = Err(SendError::QueueTooLarge { limit_bytes: 10 });
        // Nothing waits: a message larger than the bound goes out alone.
        session.send(now, &Payload::text("x".repeat(25))).unwrap();
        assert_eq!(session.queued_bytes(), 25);
        assert_eq!(session.send(now, &Payload::text("a")), too_large);
        assert_eq!(session.ping(now, Bytes::from_static(b"p")), too_large);
        session.poll_transmit(now);
        assert_eq!(session.queued_bytes(), 0);
        session.send(now, &Payload::text("abcdef")).unwrap();
        session.send(now, &Payload::binary(vec![0u8; 4])).unwrap();
        assert_eq!(session.queued_bytes(), 10, "at the bound exactly");
        assert_eq!(
            session.send(now, &Payload::text("")),
            Ok(Ticket {
                counter: Counter::Messages,
                seq: 3
            })
        );
        assert_eq!(session.send(now, &Payload::text("a")), too_large);
        // Each write frees what it wrote.
        session.poll_transmit(now);
        assert_eq!(session.queued_bytes(), 4);
        session.send(now, &Payload::text("abc")).unwrap();
        assert_eq!(session.queued_bytes(), 7);
    }

    #[test]
    fn pings_hold_their_payload_until_their_pong() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_bytes: 8,
            ping_interval: Some(Duration::from_secs(10)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        session.ping(now, Bytes::from_static(b"12345")).unwrap();
        session.poll_transmit(now);
        assert_eq!(
            session.queued_bytes(),
            5,
            "written, still waiting for its pong"
        );
        assert_eq!(
            session.send(now, &Payload::text("abcd")),
            Err(SendError::QueueTooLarge { limit_bytes: 8 })
        );
        // The automatic ping weighs nothing and never holds a message back.
        let at = now + Duration::from_secs(10);
        session.handle_timeout(at);
        assert_eq!(session.queued_pings(), 2);
        session.handle_pong(at, b"12345");
        assert_eq!(session.queued_bytes(), 0);
        session.send(at, &Payload::text("x".repeat(100))).unwrap();
        // Finishing frees everything.
        session.handle_peer_close(at, Some(1000), String::new());
        assert_eq!((session.queued_bytes(), session.queued_messages()), (0, 0));
    }

    #[test]
    fn each_phase_runs_its_named_timer() {
        let now = Instant::now();
        let config = SessionConfig {
            ping_interval: Some(Duration::from_secs(10)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        assert_eq!(
            session.timer(Timer::AutoPing),
            Some(now + Duration::from_secs(10))
        );
        let at = now + Duration::from_secs(3);
        session.handle_protocol_error(at, 1002, "bad".into());
        assert_eq!(session.timer(Timer::AutoPing), None);
        assert_eq!(
            session.timer(Timer::FailureGrace),
            Some(at + Duration::from_secs(1))
        );
        session.app_idle(at);
        assert_eq!(session.timer(Timer::FailureGrace), None);
        assert_eq!(
            session.poll_timeout(),
            None,
            "the close frame is not out yet"
        );
        session.poll_transmit(at);
        assert_eq!(
            session.timer(Timer::Close),
            Some(at + Duration::from_secs(5))
        );
        assert_eq!(session.poll_timeout(), session.timer(Timer::Close));
    }

    #[test]
    fn a_finished_session_drains_until_flushed() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.handle_flushed(now);
        assert!(!session.is_done(), "a flush before the end does not count");
        session.handle_peer_close(now, Some(1000), String::new());
        assert!(session.is_finished() && !session.is_done());
        assert_eq!(
            session.poll_timeout(),
            Some(now + crate::websocket::DRAIN_TIMEOUT)
        );
        assert_eq!(session.timer(Timer::Drain), session.poll_timeout());
        session.handle_flushed(now);
        assert!(session.is_done());
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn a_drain_that_never_flushes_ends_after_its_timeout() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.close(now, CloseReason::Closed("bye".into()));
        session.poll_transmit(now);
        // The peer never answers: the close timeout, then the drain.
        let closed = now + Duration::from_secs(5);
        session.handle_timeout(closed);
        assert!(session.is_finished() && !session.is_done());
        let drained = closed + crate::websocket::DRAIN_TIMEOUT;
        session.handle_timeout(drained - Duration::from_millis(1));
        assert!(!session.is_done());
        session.handle_timeout(drained);
        assert!(session.is_done());
        assert_eq!(session.poll_timeout(), None);
    }
}
