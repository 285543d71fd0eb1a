//! A SockJS session carried by one WebSocket (the `websocket` transport).
//!
//! The SockJS session writes its frames (`o`, `a[...]`, `h`, `c[...]`) as
//! WebSocket text messages and reads JSON arrays of messages. Around it,
//! this adds what the WebSocket itself needs: the closing handshake and
//! the drain ([`ClosingHandshake`]: the session is finished only once the
//! peer answered the close frame, or the close timeout ran out) and a
//! close code for the peer's protocol errors.
//!
//! Timers: the SockJS session's own (heartbeat, disconnect delay) until
//! the close frame is out, then the closing handshake's ([`Timer`]).

use super::session::{Attach, ReceiverKind, Session, SessionConfig};
use crate::close::{CloseReason, SendError};
use crate::close_code::NORMAL_CLOSURE;
use crate::engine::{Engine, Event, HttpReceivers, Outbox, ReceiverId, Ticket, Transmit};
use crate::payload::Payload;
use crate::timer::{self, TimerTable};
use crate::websocket::closing::{ClosingHandshake, ClosingTimers};
use crate::websocket::{Framed, Incoming};
use std::time::{Duration, Instant};

/// How long the server waits for the peer's answer to its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The WebSocket's timers; the SockJS session keeps its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The peer's answer to the close frame (RFC 6455 section 7.1.1).
    Close,
    /// The IO side's last writes after the session finished.
    Drain,
}

impl timer::Timer for Timer {
    const ALL: &'static [Self] = &[Timer::Close, Timer::Drain];

    fn index(self) -> usize {
        self as usize
    }
}

impl ClosingTimers for Timer {
    const CLOSE: Self = Timer::Close;
    const DRAIN: Self = Timer::Drain;
}

/// The WebSocket, the only receiver of its session: a new session numbers
/// its first receiver 1.
const RECEIVER: ReceiverId = ReceiverId(1);

/// A SockJS session over one WebSocket.
///
/// ```
/// use axum_channel_protocol::engine::{Engine, Transmit};
/// use axum_channel_protocol::sockjs::{SessionConfig, WebSocketSession};
/// use axum_channel_protocol::websocket::{Framed, Incoming};
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut session = WebSocketSession::new(now, SessionConfig::default());
/// assert!(matches!(session.poll_frame(now), Some(Transmit::Data { bytes, .. }) if &bytes[..] == b"o"));
/// session.handle_incoming(now, Incoming::Text(r#"["hi"]"#.into()));
/// ```
#[derive(Debug)]
pub struct WebSocketSession {
    session: Session,
    /// A close frame for the peer's protocol error waits in `Pending`, to
    /// go out before anything else.
    closing: ClosingHandshake,
    timers: TimerTable<Timer, 2>,
    /// The SockJS session is gone; the WebSocket may still be closing.
    session_finished: bool,
}

impl WebSocketSession {
    /// A new session, opened by its WebSocket.
    pub fn new(now: Instant, config: SessionConfig) -> Self {
        let mut session = Session::new(now, config);
        let attached = session.attach_receiver(now, ReceiverKind::WebSocket);
        debug_assert!(matches!(attached, Attach::Attached { id: RECEIVER, .. }));
        Self {
            session,
            closing: ClosingHandshake::new(),
            timers: TimerTable::new(now),
            session_finished: false,
        }
    }

    /// How many messages wait to be written: at most
    /// [`SessionConfig::max_queued_messages`].
    pub fn pending_messages(&self) -> usize {
        self.session.pending_messages()
    }

    /// How many bytes those messages hold, quoted: at most
    /// [`SessionConfig::max_queued_bytes`], or one message when that alone
    /// is larger.
    pub fn queued_bytes(&self) -> usize {
        self.session.queued_bytes()
    }

    /// When `timer` fires, if it runs.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The WebSocket is done; the session ends with it (keeping an earlier close reason).
    fn finish(&mut self, now: Instant, reason: CloseReason) {
        self.closing.finish(now, &mut self.timers);
        self.session.end(now, reason);
    }

    /// The closing handshake has taken over from the SockJS session's timers.
    fn closing_runs_timers(&self) -> bool {
        self.closing.is_sent() || self.closing.is_finished()
    }
}

impl Framed for WebSocketSession {
    fn poll_frame(&mut self, now: Instant) -> Option<Transmit> {
        if self.closing_runs_timers() {
            return None;
        }
        if let Some(close) = self
            .closing
            .poll_close(now, &mut self.timers, CLOSE_TIMEOUT)
        {
            return Some(close);
        }
        let transmit = self.session.poll_receiver(now, RECEIVER)?;
        match &transmit {
            Transmit::Close { .. } => self.closing.sent(now, &mut self.timers, CLOSE_TIMEOUT),
            // The session ended this receiver without a close frame of its own.
            Transmit::End(_) => {
                self.closing.sent(now, &mut self.timers, CLOSE_TIMEOUT);
                return Some(Transmit::Close {
                    code: NORMAL_CLOSURE,
                    reason: "Normal closure".into(),
                });
            }
            _ => {}
        }
        Some(transmit)
    }

    fn wants_read(&self) -> bool {
        !self.closing.is_finished() && !self.closing.is_pending()
    }

    fn handle_incoming(&mut self, now: Instant, incoming: Incoming) {
        match incoming {
            Incoming::Text(text) => {
                if !self.closing.is_sent() {
                    self.session.handle_websocket_text(now, &text);
                }
            }
            // Binary messages have no meaning in SockJS; the framing answers pings.
            Incoming::Binary(_) | Incoming::Ping | Incoming::Pong(_) => {}
            Incoming::Close { code, reason } => {
                self.finish(now, CloseReason::Peer { code, reason });
            }
            Incoming::Failed { code, reason } => {
                if self.closing.is_sent() {
                    // Reading the peer's close after our own failed: nothing more to wait for.
                    self.finish(now, CloseReason::Failed { code, reason });
                } else if self.closing.start(code, reason.clone()) {
                    self.session.detach_receiver(
                        now,
                        RECEIVER,
                        CloseReason::Failed { code, reason },
                    );
                }
            }
            Incoming::Lost => self.finish(now, CloseReason::ConnectionLost),
        }
    }

    fn handle_flushed(&mut self, _now: Instant) {
        self.closing.handle_flushed(&mut self.timers);
    }

    fn is_done(&self) -> bool {
        self.closing.is_done()
    }
}

impl Engine for WebSocketSession {
    fn send(&mut self, now: Instant, payload: &Payload) -> Result<Ticket, SendError> {
        self.session.send(now, payload)
    }

    fn close(&mut self, now: Instant, reason: CloseReason) {
        self.session.close(now, reason);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closing_runs_timers() {
            return self.timers.next().map(|(_, deadline)| deadline);
        }
        self.session.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.closing_runs_timers() {
            if self.closing.handle_timeout(now, &mut self.timers) {
                self.finish(now, CloseReason::ConnectionLost);
            }
            return;
        }
        self.session.handle_timeout(now);
    }

    fn poll_event(&mut self) -> Option<Event> {
        loop {
            match self.session.poll_event() {
                // The WebSocket outlives the session until its closing handshake ends.
                Some(Event::Finished) => self.session_finished = true,
                Some(event) => return Some(event),
                None => break,
            }
        }
        if self.closing.is_finished() && std::mem::take(&mut self.session_finished) {
            return Some(Event::Finished);
        }
        None
    }

    fn outbox(&self) -> &Outbox {
        self.session.outbox()
    }

    fn outbox_mut(&mut self) -> &mut Outbox {
        self.session.outbox_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use bytes::Bytes;

    fn text(transmit: Option<Transmit>) -> Option<Bytes> {
        match transmit? {
            Transmit::Data { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    fn events(session: &mut WebSocketSession) -> Vec<Event> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    #[test]
    fn the_app_closing_sends_the_close_frame_then_waits_for_the_peer() {
        let now = Instant::now();
        let mut session = WebSocketSession::new(now, SessionConfig::default());
        assert_eq!(text(session.poll_frame(now)).unwrap(), "o");
        session.handle_incoming(now, Incoming::Text(r#"["a","b"]"#.into()));
        let received: Vec<_> = events(&mut session)
            .into_iter()
            .filter(|e| matches!(e, Event::Message(Message::Text(_))))
            .collect();
        assert_eq!(received.len(), 2);
        session.close(now, CloseReason::Closed(String::new()));
        assert_eq!(
            text(session.poll_frame(now)).unwrap(),
            "c[1000,\"Normal closure\"]"
        );
        assert_eq!(
            session.poll_frame(now),
            Some(Transmit::Close {
                code: 1000,
                reason: "Normal closure".into()
            })
        );
        assert!(!events(&mut session).contains(&Event::Finished));
        assert_eq!(session.poll_timeout(), Some(now + CLOSE_TIMEOUT));
        session.handle_incoming(
            now,
            Incoming::Close {
                code: Some(1000),
                reason: String::new(),
            },
        );
        assert!(events(&mut session).contains(&Event::Finished));
    }

    #[test]
    fn a_silent_peer_is_given_up_after_the_close_timeout() {
        let now = Instant::now();
        let mut session = WebSocketSession::new(now, SessionConfig::default());
        session.poll_frame(now);
        session.handle_incoming(now, Incoming::Text("[\"a".into()));
        assert_eq!(
            session.poll_frame(now),
            Some(Transmit::Close {
                code: 3000,
                reason: "Broken framing.".into()
            })
        );
        session.handle_timeout(now + CLOSE_TIMEOUT);
        assert!(events(&mut session).contains(&Event::Finished));
    }

    #[test]
    fn protocol_errors_close_with_their_code() {
        let now = Instant::now();
        let mut session = WebSocketSession::new(now, SessionConfig::default());
        session.poll_frame(now);
        session.handle_incoming(
            now,
            Incoming::Failed {
                code: 1009,
                reason: "too big".into(),
            },
        );
        assert!(!session.wants_read());
        assert_eq!(
            session.poll_frame(now),
            Some(Transmit::Close {
                code: 1009,
                reason: "too big".into()
            })
        );
        assert!(matches!(
            session.close_reason(),
            Some(CloseReason::Failed { code: 1009, .. })
        ));
    }

    #[test]
    fn a_lost_connection_ends_everything_at_once() {
        let now = Instant::now();
        let mut session = WebSocketSession::new(now, SessionConfig::default());
        session.handle_incoming(now, Incoming::Lost);
        let events = events(&mut session);
        assert!(events.contains(&Event::Closed(CloseReason::ConnectionLost)));
        assert!(events.contains(&Event::Finished));
    }

    #[test]
    fn the_close_timer_then_the_drain() {
        let now = Instant::now();
        let mut session = WebSocketSession::new(now, SessionConfig::default());
        session.poll_frame(now);
        // The SockJS session's heartbeat runs until the close frame is out.
        assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(25)));
        session.close(now, CloseReason::Closed("bye".into()));
        text(session.poll_frame(now));
        session.poll_frame(now);
        assert_eq!(session.timer(Timer::Close), Some(now + CLOSE_TIMEOUT));
        let later = now + Duration::from_secs(1);
        session.handle_incoming(
            later,
            Incoming::Close {
                code: Some(1000),
                reason: String::new(),
            },
        );
        assert_eq!(session.timer(Timer::Close), None);
        assert_eq!(
            session.poll_timeout(),
            Some(later + crate::websocket::DRAIN_TIMEOUT)
        );
        assert!(!session.is_done());
        session.handle_flushed(later);
        assert!(session.is_done());
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn a_protocol_error_after_the_close_frame_ends_the_handshake() {
        let now = Instant::now();
        let mut session = WebSocketSession::new(now, SessionConfig::default());
        session.poll_frame(now);
        session.close(now, CloseReason::Closed("bye".into()));
        text(session.poll_frame(now));
        session.poll_frame(now);
        assert!(session.wants_read());
        session.handle_incoming(
            now,
            Incoming::Failed {
                code: 1002,
                reason: "bad".into(),
            },
        );
        assert!(events(&mut session).contains(&Event::Finished));
        assert_eq!(
            session.close_reason(),
            Some(&CloseReason::Closed("bye".into()))
        );
    }
}
