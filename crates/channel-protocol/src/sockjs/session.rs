//! The state of one SockJS session, without IO.
//!
//! A session has at most one *receiver* at a time: the request (or
//! WebSocket) that frames are written to. A receiver's prelude and each
//! frame are pieces of their own (one HTTP chunk each), as SockJS clients
//! and sockjs-node's conformance suite read them; the response limit counts
//! frames, not the prelude. Messages sent while none is
//! attached wait in a bounded buffer. The first receiver gets the open
//! frame `o`; an idle receiver gets `h` every heartbeat delay. Polling
//! receivers end after one frame, streaming ones after `response_limit`
//! bytes. After a close, every receiver gets the close frame
//! `c[code,"reason"]` until the session is forgotten, a disconnect delay
//! after its last receiver went away. A client that abandons a receiver
//! ends the session at once, as sockjs-node does.

use super::framing;
use super::payload::{decode_websocket, WebSocketPayload};
use super::receiver::ReceiverEncoding;
use crate::close::{CloseReason, SendError};
use crate::close_code::{NORMAL_CLOSURE, SOCKJS_GO_AWAY};
use crate::engine::{
    Counter, Engine, Event, HttpReceivers, Outbox, ReceiverId, Ticket, Transmit,
    DEFAULT_MAX_QUEUED_BYTES,
};
use crate::message::Message;
use crate::payload::{Payload, WireFormat};
use crate::queue::SendQueue;
use crate::timer::{self, TimerTable};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The settings of one session, with sockjs-node's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long a receiver may go without a frame before an `h` (`heartbeat_delay`).
    pub heartbeat_delay: Duration,
    /// How long a session outlives its last receiver (`disconnect_delay`).
    pub disconnect_delay: Duration,
    /// Bytes after which a streaming response ends (`response_limit`).
    pub response_limit: usize,
    /// Most messages buffered for the client.
    pub max_queued_messages: usize,
    /// Most bytes of quoted messages buffered for the client. A message
    /// that would pass it is refused unless nothing waits
    /// ([`SendError::QueueTooLarge`]).
    pub max_queued_bytes: usize,
}

impl Default for SessionConfig {
    /// sockjs-node's defaults.
    fn default() -> Self {
        Self {
            heartbeat_delay: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
            max_queued_messages: 4096,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

/// What kind of receiver a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverKind {
    /// An HTTP response: `xhr`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp`.
    Http {
        /// How frames are wrapped.
        encoding: ReceiverEncoding,
        /// What the response starts with (may be empty).
        prelude: String,
        /// Polling receivers end after one frame.
        polling: bool,
    },
    /// A WebSocket: each frame is one text message, and the session ends with it.
    WebSocket,
}

/// What a new receiver gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// It is attached: take its bytes with [`HttpReceivers::poll_receiver`].
    Attached {
        /// The receiver's id.
        id: ReceiverId,
        /// True when this receiver opened the session: the app learns of it now.
        opened: bool,
    },
    /// It is answered at once and must end: another receiver is attached
    /// (`c[2010,...]`), or the session is closed (pending messages, then its
    /// close frame; a polling request gets one of the two).
    Answered {
        /// The response body, a piece (an HTTP chunk) each: the prelude,
        /// then each frame.
        pieces: Vec<Bytes>,
        /// Once written, every message below this number is delivered.
        confirms: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Created; the open frame has not been sent.
    Connecting,
    /// Open: messages flow.
    Open,
    /// Closed: receivers get the close frame until the session is forgotten.
    Closing {
        frame: String,
        /// A WebSocket receiver closes with this code and reason and no close frame.
        websocket: Option<(u16, String)>,
    },
    /// Gone for good.
    Forgotten,
}

/// The timers of a SockJS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// An `h` frame goes to an attached receiver after this much silence
    /// (sockjs-node's `heartbeat_delay`).
    Heartbeat,
    /// A session without a receiver is forgotten after this long
    /// (sockjs-node's `disconnect_delay`).
    DisconnectDelay,
}

impl timer::Timer for Timer {
    const ALL: &'static [Self] = &[Timer::Heartbeat, Timer::DisconnectDelay];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug)]
enum Sink {
    Http {
        encoding: ReceiverEncoding,
        polling: bool,
        bytes_sent: usize,
    },
    WebSocket,
}

#[derive(Debug)]
struct Receiver {
    id: ReceiverId,
    sink: Sink,
    prelude: Option<Box<str>>,
    /// The open frame goes out next, in a piece of its own.
    open_due: bool,
    /// The receiver wrote its last frame and ends next.
    ending: bool,
    heartbeat_due: bool,
}

/// One SockJS session's protocol state.
///
/// ```
/// use axum_channel_protocol::engine::{Engine, HttpReceivers, Transmit};
/// use axum_channel_protocol::payload::Payload;
/// use axum_channel_protocol::sockjs::{Attach, ReceiverEncoding, ReceiverKind, Session, SessionConfig};
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut session = Session::new(now, SessionConfig::default());
/// let polling = ReceiverKind::Http { encoding: ReceiverEncoding::Xhr, prelude: String::new(), polling: true };
/// let Attach::Attached { id, opened: true } = session.attach_receiver(now, polling) else { panic!() };
/// let Some(Transmit::Data { bytes, .. }) = session.poll_receiver(now, id) else { panic!() };
/// assert_eq!(&bytes[..], b"o\n");
/// assert!(matches!(session.poll_receiver(now, id), Some(Transmit::End(_))));
/// session.send(now, &Payload::text("hi")).unwrap();
/// ```
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    /// Quoted messages not yet written, oldest first.
    pending: SendQueue<Bytes>,
    receiver: Option<Receiver>,
    receivers_attached: u64,
    timers: TimerTable<Timer, 2>,
    /// The session outlives its last receiver by the disconnect delay;
    /// not once a WebSocket carried it, nor at shutdown.
    lingers: bool,
    outbox: Outbox,
    config: SessionConfig,
}

impl Session {
    /// A new session, not yet opened: its first receiver opens it.
    pub fn new(now: Instant, config: SessionConfig) -> Self {
        let mut timers = TimerTable::new(now);
        // Created without a receiver: it waits for its first one.
        timers.set(Timer::DisconnectDelay, now + config.disconnect_delay);
        Self {
            phase: Phase::Connecting,
            pending: SendQueue::default(),
            receiver: None,
            receivers_attached: 0,
            timers,
            lingers: true,
            outbox: Outbox::default(),
            config,
        }
    }

    /// True while a receiver is attached.
    pub fn is_attached(&self) -> bool {
        self.receiver.is_some()
    }

    /// True once the session was forgotten.
    pub fn is_forgotten(&self) -> bool {
        self.phase == Phase::Forgotten
    }

    /// Takes every pending message as one `a[...]` frame.
    fn take_frame(&mut self) -> Option<(String, u64)> {
        self.pending.take_all(|pending| {
            let mut frame = String::from("a[");
            for (index, quoted) in pending.iter().enumerate() {
                if index > 0 {
                    frame.push(',');
                }
                // Quoted messages are JSON text this crate encoded.
                frame.push_str(std::str::from_utf8(quoted).unwrap_or("\"\""));
            }
            frame.push(']');
            frame
        })
    }

    /// A receiving request (or WebSocket) arrived.
    pub fn attach_receiver(&mut self, now: Instant, kind: ReceiverKind) -> Attach {
        let (sink, prelude) = match kind {
            ReceiverKind::Http {
                encoding,
                prelude,
                polling,
            } => (
                Sink::Http {
                    encoding,
                    polling,
                    bytes_sent: 0,
                },
                prelude,
            ),
            ReceiverKind::WebSocket => (Sink::WebSocket, String::new()),
        };
        let polling = matches!(sink, Sink::Http { polling: true, .. });
        let answer = |frames: &[String], confirms| {
            let mut pieces = Vec::with_capacity(frames.len() + 1);
            if !prelude.is_empty() {
                pieces.push(Bytes::from(prelude.clone()));
            }
            pieces.extend(frames.iter().map(|frame| Bytes::from(wrap(&sink, frame))));
            Attach::Answered { pieces, confirms }
        };
        match &self.phase {
            Phase::Forgotten => {
                // A request that found the session just before it was
                // forgotten gets its close frame once more.
                let (code, text) = self.outbox.close_reason().map_or_else(
                    || (NORMAL_CLOSURE, "Normal closure".into()),
                    CloseReason::sockjs_close,
                );
                return answer(&[framing::close(code, &text)], None);
            }
            _ if self.receiver.is_some() => {
                return answer(&[framing::another_connection_still_open()], None)
            }
            Phase::Closing { frame, .. } => {
                let close_frame = frame.clone();
                let mut frames = Vec::new();
                let mut confirms = None;
                if let Some((messages, written)) = self.take_frame() {
                    frames.push(messages);
                    confirms = Some(written);
                }
                // A polling request carries one frame: the messages first,
                // the close frame with the next request.
                if !(polling && confirms.is_some()) {
                    frames.push(close_frame);
                }
                // The session lives on for another disconnect delay.
                self.detached(now);
                return answer(&frames, confirms);
            }
            Phase::Connecting | Phase::Open => {}
        }
        let opened = self.phase == Phase::Connecting;
        self.phase = Phase::Open;
        if matches!(sink, Sink::WebSocket) {
            self.lingers = false;
        }
        self.receivers_attached += 1;
        let id = ReceiverId(self.receivers_attached);
        self.receiver = Some(Receiver {
            id,
            sink,
            prelude: (!prelude.is_empty()).then(|| prelude.into_boxed_str()),
            open_due: opened,
            ending: false,
            heartbeat_due: false,
        });
        self.timers.stop(Timer::DisconnectDelay);
        self.wrote(now);
        self.outbox.push(Event::Transmit);
        Attach::Attached { id, opened }
    }

    /// Receiver `id` went away. If it was still attached, its client
    /// abandoned it (or the WebSocket closed), and the session ends now
    /// for `reason`.
    pub fn detach_receiver(&mut self, now: Instant, id: ReceiverId, reason: CloseReason) {
        if self.receiver.as_ref().is_none_or(|r| r.id != id) {
            return;
        }
        self.receiver = None;
        self.detached(now);
        self.close(now, reason);
        self.forget();
    }

    /// Ends the session now, whatever its receivers: it closes (unless it
    /// had) and is forgotten.
    pub fn end(&mut self, now: Instant, reason: CloseReason) {
        self.receiver = None;
        self.close(now, reason);
        self.forget();
    }

    fn end_receiver(&mut self, now: Instant) {
        self.receiver = None;
        self.detached(now);
    }

    /// How long the session outlives its last receiver.
    fn linger(&self) -> Duration {
        if self.lingers {
            self.config.disconnect_delay
        } else {
            Duration::ZERO
        }
    }

    /// No receiver is attached since `now`: no heartbeats, and the
    /// session is forgotten unless another comes within its linger.
    fn detached(&mut self, now: Instant) {
        self.timers.stop(Timer::Heartbeat);
        self.timers.set(Timer::DisconnectDelay, now + self.linger());
    }

    /// The attached receiver wrote at `now`: an `h` is due after another
    /// heartbeat delay of silence, unless one is due already.
    fn wrote(&mut self, now: Instant) {
        if self.receiver.as_ref().is_some_and(|r| !r.heartbeat_due) {
            self.timers
                .set(Timer::Heartbeat, now + self.config.heartbeat_delay);
        }
    }

    /// When `timer` fires, if it runs.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    fn forget(&mut self) {
        if self.phase != Phase::Forgotten {
            self.phase = Phase::Forgotten;
            self.timers.stop_all();
            self.receiver = None;
            self.pending.clear();
            self.outbox.push(Event::Finished);
        }
    }

    /// Messages from an `xhr_send` or `jsonp_send` request. A closed session
    /// takes and drops them, as sockjs-node's does.
    pub fn handle_messages(&mut self, _now: Instant, messages: Vec<String>) {
        if self.phase == Phase::Open {
            self.outbox.extend(
                messages
                    .into_iter()
                    .map(|m| Event::Message(Message::Text(m))),
            );
        }
    }

    /// One text message of the `websocket` transport: a JSON array of
    /// messages, or one JSON string. Anything else closes the session with
    /// 3000 `Broken framing.`.
    pub fn handle_websocket_text(&mut self, now: Instant, text: &str) {
        match decode_websocket(text) {
            WebSocketPayload::Messages(messages) => self.handle_messages(now, messages),
            WebSocketPayload::Broken => {
                let (code, reason) = (SOCKJS_GO_AWAY, "Broken framing.");
                self.close_with(
                    CloseReason::Failed {
                        code,
                        reason: reason.into(),
                    },
                    Some((code, reason.into())),
                );
            }
        }
    }

    fn close_with(&mut self, reason: CloseReason, websocket: Option<(u16, String)>) {
        if matches!(self.phase, Phase::Closing { .. } | Phase::Forgotten) {
            return;
        }
        let (code, text) = reason.sockjs_close();
        self.phase = Phase::Closing {
            frame: framing::close(code, &text),
            websocket,
        };
        self.outbox.close(reason);
        if self.receiver.is_some() {
            self.outbox.push(Event::Transmit);
        }
    }

    /// How many messages wait for a receiver.
    pub fn pending_messages(&self) -> usize {
        self.pending.len()
    }

    /// How many bytes the messages waiting for a receiver hold, quoted: at
    /// most [`SessionConfig::max_queued_bytes`], or one message when that
    /// alone is larger.
    pub fn queued_bytes(&self) -> usize {
        self.pending.bytes()
    }
}

/// Wraps one frame for the receiver: WebSocket frames go as they are.
fn wrap(sink: &Sink, frame: &str) -> String {
    match sink {
        Sink::Http { encoding, .. } => encoding.wrap(frame),
        Sink::WebSocket => frame.to_owned(),
    }
}

/// A receiving request that goes away while attached was abandoned by its
/// client, which ends the session at once, as sockjs-node does.
impl HttpReceivers for Session {
    /// What receiver `id` writes next. `None` while there is nothing to write.
    fn poll_receiver(&mut self, now: Instant, id: ReceiverId) -> Option<Transmit> {
        let limit = self.config.response_limit;
        let receiver = match self.receiver.as_mut() {
            Some(receiver) if receiver.id == id => receiver,
            _ => return Some(Transmit::End(Bytes::new())),
        };
        if let Some(prelude) = receiver.prelude.take() {
            self.wrote(now);
            return Some(Transmit::Data {
                bytes: Bytes::from(prelude.into_boxed_bytes()),
                confirms: None,
            });
        }
        if receiver.ending {
            let end = match (&receiver.sink, &self.phase) {
                (
                    Sink::WebSocket,
                    Phase::Closing {
                        websocket: Some((code, reason)),
                        ..
                    },
                ) => Transmit::Close {
                    code: *code,
                    reason: reason.clone(),
                },
                (Sink::WebSocket, _) => Transmit::Close {
                    code: NORMAL_CLOSURE,
                    reason: "Normal closure".into(),
                },
                (Sink::Http { .. }, _) => Transmit::End(Bytes::new()),
            };
            self.end_receiver(now);
            return Some(end);
        }
        let heartbeat = std::mem::take(&mut receiver.heartbeat_due);
        let (frame, confirms) = if std::mem::take(&mut receiver.open_due) {
            // A polling request that opens the session carries the open frame alone.
            (framing::OPEN.to_owned(), None)
        } else if let Some((frame, written)) = self.take_frame() {
            (frame, Some(written))
        } else if let Phase::Closing { frame, websocket } = &self.phase {
            let frame = frame.clone();
            let broken = websocket.is_some();
            let receiver = self.receiver.as_mut().expect("attached");
            receiver.ending = true;
            if broken && matches!(receiver.sink, Sink::WebSocket) {
                // Broken framing: the WebSocket closes with the code alone.
                return self.poll_receiver(now, id);
            }
            (frame, None)
        } else if heartbeat {
            (framing::HEARTBEAT.to_owned(), None)
        } else {
            return None;
        };
        let receiver = self.receiver.as_mut().expect("attached");
        let wrapped = wrap(&receiver.sink, &frame);
        if let Sink::Http {
            polling,
            bytes_sent,
            ..
        } = &mut receiver.sink
        {
            *bytes_sent += wrapped.len();
            if *polling || *bytes_sent >= limit {
                receiver.ending = true;
            }
        }
        self.wrote(now);
        Some(Transmit::Data {
            bytes: Bytes::from(wrapped),
            confirms,
        })
    }

    fn receiver_gone(&mut self, now: Instant, id: ReceiverId) {
        self.detach_receiver(now, id, CloseReason::ConnectionLost);
    }
}

impl Engine for Session {
    fn send(&mut self, _now: Instant, payload: &Payload) -> Result<Ticket, SendError> {
        if self.phase != Phase::Open {
            return Err(self.outbox.closed_error());
        }
        let quoted = payload
            .encode(WireFormat::SockJs)
            .ok_or(SendError::Unsupported(payload.kind()))?;
        let seq = self.pending.push(
            quoted,
            self.config.max_queued_messages,
            self.config.max_queued_bytes,
        )?;
        if self.receiver.is_some() {
            self.outbox.push(Event::Transmit);
        }
        Ok(Ticket {
            counter: Counter::Messages,
            seq,
        })
    }

    /// Closes the session: pending messages and the close frame go to the
    /// attached receiver, or to the next one. At shutdown no next receiver
    /// will come: the session is forgotten once the close frame is out.
    fn close(&mut self, _now: Instant, reason: CloseReason) {
        if reason == CloseReason::Shutdown && self.lingers {
            self.lingers = false;
            // Counted from the same detachment, the disconnect delay is
            // now no delay at all.
            if let Some(deadline) = self.timers.get(Timer::DisconnectDelay) {
                let since = deadline
                    .checked_sub(self.config.disconnect_delay)
                    .unwrap_or(deadline);
                self.timers.set(Timer::DisconnectDelay, since);
            }
        }
        self.close_with(reason, None);
    }

    /// The heartbeat while a receiver is attached and has no `h` due; the
    /// disconnect delay while none is; nothing once forgotten.
    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(_, deadline)| deadline)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expire(Timer::Heartbeat, now) {
            if let Some(receiver) = &mut self.receiver {
                receiver.heartbeat_due = true;
                self.outbox.push(Event::Transmit);
            }
        }
        if self.timers.expire(Timer::DisconnectDelay, now) && self.phase != Phase::Forgotten {
            self.close(now, CloseReason::TimedOut);
            self.forget();
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

    fn polling() -> ReceiverKind {
        ReceiverKind::Http {
            encoding: ReceiverEncoding::Xhr,
            prelude: String::new(),
            polling: true,
        }
    }

    fn streaming(prelude: &str) -> ReceiverKind {
        ReceiverKind::Http {
            encoding: ReceiverEncoding::Xhr,
            prelude: prelude.into(),
            polling: false,
        }
    }

    fn attached(attach: Attach) -> ReceiverId {
        match attach {
            Attach::Attached { id, .. } => id,
            other => panic!("expected an attached receiver, got {other:?}"),
        }
    }

    fn text(transmit: Option<Transmit>) -> String {
        match transmit {
            Some(Transmit::Data { bytes, .. }) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    fn answered(attach: Attach) -> String {
        match attach {
            Attach::Answered { pieces, .. } => String::from_utf8(pieces.concat()).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn events(session: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    #[test]
    fn the_first_receiver_opens_the_session_and_polling_ends_after_one_frame() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        assert!(session.send(now, &Payload::text("early")).is_err());
        assert_eq!(
            session.attach_receiver(now, polling()),
            Attach::Attached {
                id: ReceiverId(1),
                opened: true
            }
        );
        assert_eq!(text(session.poll_receiver(now, ReceiverId(1))), "o\n");
        assert_eq!(
            session.poll_receiver(now, ReceiverId(1)),
            Some(Transmit::End(Bytes::new()))
        );
        assert!(!session.is_attached());
    }

    #[test]
    fn a_second_receiver_is_turned_away() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        attached(session.attach_receiver(now, streaming("")));
        assert_eq!(
            answered(session.attach_receiver(now, streaming("pre\n"))),
            "pre\nc[2010,\"Another connection still open\"]\n"
        );
        assert!(session.is_attached());
    }

    #[test]
    fn buffered_messages_go_to_the_next_receiver_in_one_frame_and_are_confirmed() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let first = attached(session.attach_receiver(now, polling()));
        text(session.poll_receiver(now, first));
        session.poll_receiver(now, first);
        session.send(now, &Payload::text("a")).unwrap();
        let b = session.send(now, &Payload::text("b\u{2028}")).unwrap();
        assert_eq!(b.seq, 1);
        let second = attached(session.attach_receiver(now, polling()));
        assert_eq!(
            session.poll_receiver(now, second),
            Some(Transmit::Data {
                bytes: Bytes::from_static(b"a[\"a\",\"b\\u2028\"]\n"),
                confirms: Some(2)
            })
        );
        assert_eq!(session.pending_messages(), 0);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_messages: 1,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        attached(session.attach_receiver(now, streaming("")));
        session.send(now, &Payload::text("a")).unwrap();
        assert_eq!(
            session.send(now, &Payload::text("b")),
            Err(SendError::QueueFull { limit: 1 })
        );
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes_and_takes_one_large_message_alone() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_bytes: 8,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        let first = attached(session.attach_receiver(now, polling()));
        text(session.poll_receiver(now, first));
        session.poll_receiver(now, first);
        let too_large = Err(SendError::QueueTooLarge { limit_bytes: 8 });
        // Counted quoted: `"abcdefghij"` is 12 bytes, alone in the buffer.
        session.send(now, &Payload::text("abcdefghij")).unwrap();
        assert_eq!(session.queued_bytes(), 12);
        assert_eq!(session.send(now, &Payload::text("")), too_large);
        // A receiver takes the whole buffer: it may fill again.
        let second = attached(session.attach_receiver(now, polling()));
        text(session.poll_receiver(now, second));
        assert_eq!(session.queued_bytes(), 0);
        session.send(now, &Payload::text("ab")).unwrap();
        session.send(now, &Payload::text("")).unwrap();
        assert_eq!(session.queued_bytes(), 6);
        session.send(now, &Payload::text("")).unwrap();
        assert_eq!(session.queued_bytes(), 8, "at the bound exactly");
        assert_eq!(session.send(now, &Payload::text("")), too_large);
        // A forgotten session keeps nothing.
        session.end(now, CloseReason::Shutdown);
        assert_eq!((session.queued_bytes(), session.pending_messages()), (0, 0));
    }

    #[test]
    fn streaming_receivers_end_at_the_response_limit() {
        let now = Instant::now();
        let config = SessionConfig {
            response_limit: 10,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        let id = attached(session.attach_receiver(now, streaming("hhh\n")));
        assert_eq!(text(session.poll_receiver(now, id)), "hhh\n");
        assert_eq!(text(session.poll_receiver(now, id)), "o\n");
        session.send(now, &Payload::text("0123456789")).unwrap();
        text(session.poll_receiver(now, id));
        assert_eq!(
            session.poll_receiver(now, id),
            Some(Transmit::End(Bytes::new()))
        );
        // The session waits for the client's next request.
        assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(5)));
    }

    #[test]
    fn heartbeats_follow_the_last_write() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, streaming("")));
        text(session.poll_receiver(now, id));
        let due = session.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(25));
        session.handle_timeout(due);
        assert_eq!(text(session.poll_receiver(due, id)), "h\n");
        assert_eq!(session.poll_timeout(), Some(due + Duration::from_secs(25)));
    }

    #[test]
    fn a_closed_session_answers_with_its_close_frame_until_forgotten() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, polling()));
        session.poll_receiver(now, id);
        session.poll_receiver(now, id);
        session.send(now, &Payload::text("last")).unwrap();
        session.close(now, CloseReason::Closed(String::new()));
        assert_eq!(
            answered(session.attach_receiver(now, polling())),
            "a[\"last\"]\n"
        );
        // An argument-less close, as sockjs-node's `conn.close()`.
        assert_eq!(
            answered(session.attach_receiver(now, polling())),
            "c[1000,\"Normal closure\"]\n"
        );
        assert!(session.send(now, &Payload::text("late")).is_err());
        let later = now + Duration::from_secs(5);
        assert_eq!(session.poll_timeout(), Some(later));
        session.handle_timeout(later);
        assert!(session.is_forgotten());
        assert!(events(&mut session).contains(&Event::Finished));
        // A request that found it just before it was forgotten still gets its frame.
        assert_eq!(
            answered(session.attach_receiver(later, polling())),
            "c[1000,\"Normal closure\"]\n"
        );
    }

    #[test]
    fn the_app_chooses_the_close_code() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, streaming("")));
        text(session.poll_receiver(now, id));
        session.close(
            now,
            CloseReason::ClosedWithCode {
                code: 4000,
                reason: "bye".into(),
            },
        );
        assert_eq!(text(session.poll_receiver(now, id)), "c[4000,\"bye\"]\n");
        assert_eq!(
            session.poll_receiver(now, id),
            Some(Transmit::End(Bytes::new()))
        );
    }

    #[test]
    fn an_abandoned_receiver_ends_the_session_and_an_idle_one_times_out() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, streaming("")));
        session.detach_receiver(now, ReceiverId(99), CloseReason::ConnectionLost);
        assert!(session.is_attached());
        session.detach_receiver(now, id, CloseReason::ConnectionLost);
        assert_eq!(session.close_reason(), Some(&CloseReason::ConnectionLost));
        assert!(session.is_forgotten());

        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, polling()));
        session.poll_receiver(now, id);
        session.poll_receiver(now, id);
        session.handle_timeout(now + Duration::from_secs(5));
        assert_eq!(session.close_reason(), Some(&CloseReason::TimedOut));
        assert!(session.is_forgotten());
    }

    #[test]
    fn websocket_receivers_carry_bare_frames() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, ReceiverKind::WebSocket));
        assert_eq!(text(session.poll_receiver(now, id)), "o");
        session.handle_websocket_text(now, r#"["a","b"]"#);
        session.handle_websocket_text(now, r#""c""#);
        let messages: Vec<_> = events(&mut session)
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(Message::Text(t)) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(messages, ["a", "b", "c"]);
        session.send(now, &Payload::text("x")).unwrap();
        session.close(now, CloseReason::Closed(String::new()));
        assert_eq!(text(session.poll_receiver(now, id)), "a[\"x\"]");
        assert_eq!(
            text(session.poll_receiver(now, id)),
            "c[1000,\"Normal closure\"]"
        );
        assert_eq!(
            session.poll_receiver(now, id),
            Some(Transmit::Close {
                code: 1000,
                reason: "Normal closure".into()
            })
        );
        // Without a next receiver, the session is forgotten at once.
        assert_eq!(session.poll_timeout(), Some(now));
    }

    #[test]
    fn broken_websocket_framing_closes_with_3000_and_no_close_frame() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, ReceiverKind::WebSocket));
        text(session.poll_receiver(now, id));
        session.handle_websocket_text(now, "[\"a");
        assert_eq!(
            session.poll_receiver(now, id),
            Some(Transmit::Close {
                code: 3000,
                reason: "Broken framing.".into()
            })
        );
        assert!(matches!(
            session.close_reason(),
            Some(CloseReason::Failed { code: 3000, .. })
        ));
    }

    #[test]
    fn the_heartbeat_runs_while_attached_and_the_disconnect_delay_while_not() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        assert_eq!(session.timer(Timer::Heartbeat), None);
        assert_eq!(
            session.timer(Timer::DisconnectDelay),
            Some(now + Duration::from_secs(5))
        );
        let id = attached(session.attach_receiver(now, streaming("")));
        assert_eq!(session.timer(Timer::DisconnectDelay), None);
        assert_eq!(text(session.poll_receiver(now, id)), "o\n");
        assert_eq!(
            session.timer(Timer::Heartbeat),
            Some(now + Duration::from_secs(25))
        );
        session.handle_timeout(now + Duration::from_secs(25));
        assert_eq!(session.timer(Timer::Heartbeat), None, "an h is due");
        assert_eq!(session.poll_timeout(), None);
        let later = now + Duration::from_secs(26);
        assert_eq!(text(session.poll_receiver(later, id)), "h\n");
        assert_eq!(
            session.timer(Timer::Heartbeat),
            Some(later + Duration::from_secs(25))
        );
    }

    #[test]
    fn shutdown_forgets_a_detached_session_from_its_detachment() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        let id = attached(session.attach_receiver(now, polling()));
        session.poll_receiver(now, id);
        let detached = now + Duration::from_secs(1);
        session.poll_receiver(detached, id);
        assert_eq!(
            session.poll_timeout(),
            Some(detached + Duration::from_secs(5))
        );
        session.close(detached + Duration::from_secs(2), CloseReason::Shutdown);
        assert_eq!(session.poll_timeout(), Some(detached));
        session.handle_timeout(detached + Duration::from_secs(2));
        assert!(session.is_forgotten());
        assert_eq!(session.poll_timeout(), None);
    }
}
