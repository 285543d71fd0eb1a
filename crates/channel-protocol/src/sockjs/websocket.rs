//! A SockJS session carried by one WebSocket (the `websocket` transport).
//!
//! The SockJS session writes its frames (`o`, `a[...]`, `h`, `c[...]`) as
//! WebSocket text messages and reads JSON arrays of messages. Around it,
//! this adds what the WebSocket itself needs: the closing handshake (the
//! session is finished only once the peer answered the close frame, or the
//! close timeout ran out) and a close code for the peer's protocol errors.

use super::session::{Attach, ReceiverKind, Session, SessionConfig};
use crate::close::{CloseReason, SendError};
use crate::close_code::NORMAL_CLOSURE;
use crate::engine::{Engine, Event, ReceiverId, Ticket, Transmit};
use crate::payload::Payload;
use crate::websocket::{Framed, Incoming};
use std::time::{Duration, Instant};

/// How long the server waits for the peer's answer to its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A SockJS session over one WebSocket.
///
/// ```
/// use channel_protocol::engine::{Engine, Transmit};
/// use channel_protocol::sockjs::{SessionConfig, WebSocketSession};
/// use channel_protocol::websocket::{Framed, Incoming};
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
    receiver: ReceiverId,
    /// A close frame the WebSocket must send before anything else.
    close_first: Option<(u16, String)>,
    close_sent_at: Option<Instant>,
    /// The SockJS session is gone; the WebSocket may still be closing.
    session_finished: bool,
    finished: bool,
}

impl WebSocketSession {
    /// A new session, opened by its WebSocket.
    pub fn new(now: Instant, config: SessionConfig) -> Self {
        let mut session = Session::new(now, config);
        let receiver = match session.attach_receiver(now, ReceiverKind::WebSocket) {
            Attach::Attached { id, .. } => id,
            // A new session has no other receiver and is not closed.
            Attach::Answered { .. } => ReceiverId(0),
        };
        Self {
            session,
            receiver,
            close_first: None,
            close_sent_at: None,
            session_finished: false,
            finished: false,
        }
    }

    /// How many messages wait to be written: at most
    /// [`SessionConfig::max_queued_messages`].
    pub fn pending_messages(&self) -> usize {
        self.session.pending_messages()
    }

    /// The WebSocket is done; the session ends with it (keeping an earlier close reason).
    fn finish(&mut self, now: Instant, reason: CloseReason) {
        self.finished = true;
        self.session.end(now, reason);
    }
}

impl Framed for WebSocketSession {
    fn poll_frame(&mut self, now: Instant) -> Option<Transmit> {
        if self.finished || self.close_sent_at.is_some() {
            return None;
        }
        if let Some((code, reason)) = self.close_first.take() {
            self.close_sent_at = Some(now);
            return Some(Transmit::Close { code, reason });
        }
        let transmit = self.session.poll_transmit(now, self.receiver)?;
        match &transmit {
            Transmit::Close { .. } => self.close_sent_at = Some(now),
            // The session ended this receiver without a close frame of its own.
            Transmit::End(_) => {
                self.close_sent_at = Some(now);
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
        !self.finished && self.close_first.is_none()
    }

    fn handle_incoming(&mut self, now: Instant, incoming: Incoming) {
        match incoming {
            Incoming::Text(text) => {
                if self.close_sent_at.is_none() {
                    self.session.handle_websocket_text(now, &text);
                }
            }
            // Binary messages have no meaning in SockJS; the framing answers pings.
            Incoming::Binary(_) | Incoming::Ping | Incoming::Pong(_) => {}
            Incoming::Close { code, reason } => {
                self.finish(now, CloseReason::Peer { code, reason });
            }
            Incoming::Failed { code, reason } => {
                self.close_first = Some((code, reason.clone()));
                self.session.detach_receiver(
                    now,
                    self.receiver,
                    CloseReason::Failed { code, reason },
                );
            }
            Incoming::Lost => self.finish(now, CloseReason::ConnectionLost),
        }
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
        if self.finished {
            return None;
        }
        if let Some(sent) = self.close_sent_at {
            return Some(sent + CLOSE_TIMEOUT);
        }
        self.session.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(sent) = self.close_sent_at {
            if now >= sent + CLOSE_TIMEOUT {
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
        if self.finished && std::mem::take(&mut self.session_finished) {
            return Some(Event::Finished);
        }
        None
    }

    fn close_reason(&self) -> Option<&CloseReason> {
        self.session.close_reason()
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
}
