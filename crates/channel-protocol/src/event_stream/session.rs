//! The state of one EventSource session, without IO.
//!
//! The session is one streamed response: it opens with 2 KiB of padding
//! (and `retry:` when configured), then carries the app's events in order.
//! A comment goes out after every ping interval of silence, so proxies keep
//! the stream open. An event is delivered once it is written. The client
//! cannot send; the session ends when the response does.

use super::format::{encode_comment, encode_retry, padding};
use crate::close::{CloseReason, SendError};
use crate::engine::{
    Counter, Engine, Event, HttpReceivers, Outbox, ReceiverId, Ticket, Transmit,
    DEFAULT_MAX_QUEUED_BYTES,
};
use crate::payload::{Payload, WireFormat};
use crate::queue::SendQueue;
use crate::timer::{self, TimerTable};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The settings of one EventSource session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long the client waits before reconnecting (`retry:`), if set.
    pub retry: Option<Duration>,
    /// A comment goes out after this long without a write, if set.
    pub ping_interval: Option<Duration>,
    /// Most events queued and not yet written.
    pub max_queued_events: usize,
    /// Most bytes of encoded events and ping comments queued and not yet
    /// written. One that would pass it is refused unless nothing waits
    /// ([`SendError::QueueTooLarge`]).
    pub max_queued_bytes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            retry: None,
            ping_interval: None,
            max_queued_events: 4096,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

/// The timers of an EventSource session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A comment goes out after a ping interval without a write, so
    /// proxies keep the stream open.
    Ping,
}

impl timer::Timer for Timer {
    const ALL: &'static [Self] = &[Timer::Ping];

    fn index(self) -> usize {
        self as usize
    }
}

/// The one response of a session.
const STREAM: ReceiverId = ReceiverId(1);

/// One EventSource session's state.
///
/// ```
/// use axum_channel_protocol::engine::{Engine, HttpReceivers, Transmit};
/// use axum_channel_protocol::event_stream::{Session, SessionConfig};
/// use axum_channel_protocol::payload::Payload;
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut session = Session::new(now, SessionConfig::default());
/// let stream = session.stream();
/// session.poll_receiver(now, stream); // the padding
/// session.send(now, &Payload::text("hi")).unwrap();
/// let Some(Transmit::Data { bytes, confirms }) = session.poll_receiver(now, stream) else { panic!() };
/// assert_eq!((&bytes[..], confirms), (&b"data: hi\n\n"[..], Some(1)));
/// ```
#[derive(Debug)]
pub struct Session {
    /// The padding (and `retry:`) is still to be written; it is made only
    /// then, so a session keeps no copy of it.
    prelude_due: bool,
    /// Encoded events and ping comments not yet written.
    queue: SendQueue<Bytes>,
    attached: bool,
    /// Runs while attached and no ping is due; counts until the session closes.
    timers: TimerTable<Timer, 1>,
    ping_due: bool,
    finished: bool,
    outbox: Outbox,
    config: SessionConfig,
}

impl Session {
    /// A new session, its response attached.
    pub fn new(now: Instant, config: SessionConfig) -> Self {
        let mut session = Self {
            prelude_due: true,
            queue: SendQueue::default(),
            attached: true,
            timers: TimerTable::new(now),
            ping_due: false,
            finished: false,
            outbox: Outbox::default(),
            config,
        };
        session.wrote(now);
        session
    }

    /// The stream wrote at `now` (or opened): a ping is due after another
    /// ping interval of silence, unless one is due already.
    fn wrote(&mut self, now: Instant) {
        if let Some(every) = self.config.ping_interval {
            if self.attached && !self.ping_due {
                self.timers.set(Timer::Ping, now + every);
            }
        }
    }

    /// When `timer` fires, if it runs.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The session's response.
    pub fn stream(&self) -> ReceiverId {
        STREAM
    }

    /// How many events (and ping comments) are queued and not yet written:
    /// at most [`SessionConfig::max_queued_events`].
    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }

    /// How many bytes the queued events and ping comments hold: at most
    /// [`SessionConfig::max_queued_bytes`], or one event when that alone
    /// is larger.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    fn queue(&mut self, bytes: Bytes) -> Result<Ticket, SendError> {
        if self.outbox.is_closed() {
            return Err(self.outbox.closed_error());
        }
        let seq = self.queue.push(
            bytes,
            self.config.max_queued_events,
            self.config.max_queued_bytes,
        )?;
        self.outbox.push(Event::Transmit);
        Ok(Ticket {
            counter: Counter::Messages,
            seq,
        })
    }

    /// The response is gone (the client left, or it ended).
    pub fn detach(&mut self, now: Instant, id: ReceiverId) {
        if id == STREAM && self.attached {
            self.attached = false;
            self.timers.stop(Timer::Ping);
            self.close(now, CloseReason::ConnectionLost);
            self.finish();
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.queue.clear();
            self.outbox.push(Event::Finished);
        }
    }
}

/// Every queued piece as one write (one piece as it is).
fn join(pieces: &VecDeque<Bytes>) -> Bytes {
    if pieces.len() == 1 {
        return pieces[0].clone();
    }
    let mut joined = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in pieces {
        joined.extend_from_slice(piece);
    }
    joined.freeze()
}

/// The one stream going away ends the session.
impl HttpReceivers for Session {
    /// What the response writes next: every queued event at once, a ping
    /// comment, or its end once the session closed. `None` while idle.
    fn poll_receiver(&mut self, now: Instant, id: ReceiverId) -> Option<Transmit> {
        if id != STREAM || !self.attached {
            return Some(Transmit::End(Bytes::new()));
        }
        if std::mem::take(&mut self.prelude_due) {
            let mut prelude = padding();
            if let Some(retry) = self.config.retry {
                prelude.push_str(&encode_retry(retry.as_millis() as u64));
            }
            self.wrote(now);
            return Some(Transmit::Data {
                bytes: Bytes::from(prelude),
                confirms: None,
            });
        }
        let (bytes, confirms) = if let Some((bytes, through)) = self.queue.take_all(join) {
            (bytes, Some(through))
        } else if self.ping_due {
            (Bytes::from(encode_comment("")), None)
        } else if self.outbox.is_closed() {
            self.attached = false;
            self.timers.stop(Timer::Ping);
            self.finish();
            return Some(Transmit::End(Bytes::new()));
        } else {
            return None;
        };
        // Any write keeps the stream alive as well as a ping would.
        self.ping_due = false;
        self.wrote(now);
        Some(Transmit::Data { bytes, confirms })
    }

    fn receiver_gone(&mut self, now: Instant, id: ReceiverId) {
        self.detach(now, id);
    }
}

impl Engine for Session {
    fn send(&mut self, _now: Instant, payload: &Payload) -> Result<Ticket, SendError> {
        let bytes = payload
            .encode(WireFormat::EventSource)
            .ok_or(SendError::Unsupported(payload.kind()))?;
        self.queue(bytes)
    }

    /// Writes a comment line the client ignores; confirmed once written.
    fn ping(&mut self, _now: Instant, payload: Bytes) -> Result<Ticket, SendError> {
        self.queue(Bytes::from(encode_comment(&String::from_utf8_lossy(
            &payload,
        ))))
    }

    /// Ends the response once the queued events are written.
    fn close(&mut self, _now: Instant, reason: CloseReason) {
        if self.outbox.close(reason) {
            self.outbox.push(Event::Transmit);
        }
    }

    /// The ping, until the session closes.
    fn poll_timeout(&self) -> Option<Instant> {
        let open = !self.outbox.is_closed();
        self.timers
            .next_among(|_| open)
            .map(|(_, deadline)| deadline)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expire(Timer::Ping, now) {
            self.ping_due = true;
            self.outbox.push(Event::Transmit);
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

    fn data(transmit: Option<Transmit>) -> (String, Option<u64>) {
        match transmit {
            Some(Transmit::Data { bytes, confirms }) => {
                (String::from_utf8(bytes.to_vec()).unwrap(), confirms)
            }
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn the_stream_opens_with_padding_and_retry() {
        let now = Instant::now();
        let config = SessionConfig {
            retry: Some(Duration::from_millis(1500)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        let (prelude, confirms) = data(session.poll_receiver(now, STREAM));
        assert!(prelude.starts_with(':') && prelude.ends_with("\nretry: 1500\n\n"));
        assert_eq!(confirms, None);
        assert_eq!(session.poll_receiver(now, STREAM), None);
    }

    #[test]
    fn queued_events_leave_together_and_are_confirmed() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.poll_receiver(now, STREAM);
        session.send(now, &Payload::text("a")).unwrap();
        session
            .send(
                now,
                &Payload::event("b", Some("t".into()), Some("2".into())),
            )
            .unwrap();
        let ping = session.ping(now, Bytes::from_static(b"p")).unwrap();
        assert_eq!(ping.seq, 2);
        assert_eq!(
            data(session.poll_receiver(now, STREAM)),
            (
                "data: a\n\nevent: t\nid: 2\ndata: b\n\n:p\n\n".into(),
                Some(3)
            )
        );
        assert!(session.send(now, &Payload::binary(vec![1u8])).is_err());
    }

    #[test]
    fn pings_follow_silence() {
        let now = Instant::now();
        let config = SessionConfig {
            ping_interval: Some(Duration::from_secs(15)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        session.poll_receiver(now, STREAM);
        let due = session.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(15));
        session.handle_timeout(due);
        assert_eq!(
            data(session.poll_receiver(due, STREAM)),
            (":\n\n".into(), None)
        );
        assert_eq!(session.poll_timeout(), Some(due + Duration::from_secs(15)));
    }

    #[test]
    fn the_queue_is_bounded_and_close_ends_after_the_queue() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_events: 1,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        session.send(now, &Payload::text("a")).unwrap();
        assert_eq!(
            session.send(now, &Payload::text("b")),
            Err(SendError::QueueFull { limit: 1 })
        );
        session.close(now, CloseReason::Closed("bye".into()));
        session.poll_receiver(now, STREAM);
        assert_eq!(data(session.poll_receiver(now, STREAM)).1, Some(1));
        assert_eq!(
            session.poll_receiver(now, STREAM),
            Some(Transmit::End(Bytes::new()))
        );
        let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
        assert!(events.contains(&Event::Finished));
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_takes_one_large_event_alone() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_bytes: 13,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        session.poll_receiver(now, STREAM);
        let too_large = Err(SendError::QueueTooLarge { limit_bytes: 13 });
        // `data: ` and two newlines frame the text: 8 bytes more.
        session.send(now, &Payload::text("x".repeat(20))).unwrap();
        assert_eq!(session.queued_bytes(), 28);
        assert_eq!(session.ping(now, Bytes::new()), too_large);
        assert_eq!(data(session.poll_receiver(now, STREAM)).1, Some(1));
        assert_eq!(session.queued_bytes(), 0);
        session.send(now, &Payload::text("a")).unwrap();
        session.ping(now, Bytes::from_static(b"p")).unwrap();
        assert_eq!(session.queued_bytes(), 9 + 4, "at the bound exactly");
        assert_eq!(session.send(now, &Payload::text("")), too_large);
        // The session ends: what was queued is let go.
        session.detach(now, STREAM);
        assert_eq!((session.queued_bytes(), session.queued_events()), (0, 0));
    }

    #[test]
    fn a_client_that_leaves_ends_the_session() {
        let now = Instant::now();
        let mut session = Session::new(now, SessionConfig::default());
        session.detach(now, STREAM);
        assert_eq!(session.close_reason(), Some(&CloseReason::ConnectionLost));
        assert!(session.send(now, &Payload::text("late")).is_err());
    }

    #[test]
    fn the_ping_timer_stops_while_a_ping_is_due_and_after_the_close() {
        let now = Instant::now();
        let config = SessionConfig {
            ping_interval: Some(Duration::from_secs(15)),
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, config);
        assert_eq!(
            session.timer(Timer::Ping),
            Some(now + Duration::from_secs(15))
        );
        let due = now + Duration::from_secs(15);
        session.handle_timeout(due);
        assert_eq!(session.timer(Timer::Ping), None);
        assert_eq!(session.poll_timeout(), None);
        session.close(due, CloseReason::Closed("bye".into()));
        data(session.poll_receiver(due, STREAM));
        assert_eq!(session.poll_timeout(), None);
    }
}
