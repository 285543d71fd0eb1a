//! Every session engine driven by any sequence of operations: the app's
//! (send, ping, stop, close, backpressure, idle), the client's (forward
//! channel batches with any offsets and request numbers, acknowledgements
//! with any AID, messages, WebSocket frames of every kind), the IO side's
//! (attach and detach receivers, poll for bytes, poll for events) and
//! time's (advances of any length, then `handle_timeout`).
//!
//! Asserted after every operation, besides "no panic":
//! - every bound holds: BrowserChannel's outstanding app arrays and held
//!   maps, SockJS's pending messages, WebSocket's queued messages and pings,
//!   EventSource's queued events;
//! - every byte bound holds: a send or ping is refused exactly when it
//!   would take the queue past `max_queued_bytes` while something waits;
//!   the queue holds at most the bound or the largest message queued
//!   (BrowserChannel: plus its control arrays); `queued_bytes()` is the
//!   sum of what the harness knows is queued (each message as encoded for
//!   the engine's wire format, ping payloads, control arrays), and so
//!   drops to zero as the queue drains; BrowserChannel's held maps stay
//!   within `max_held_bytes`, and a refused request leaves them as they
//!   were;
//! - the app's messages are numbered 0, 1, 2...; confirmations never go
//!   back and never confirm a message that was not sent;
//! - BrowserChannel releases client maps each once, in map order;
//! - `Closed` comes at most once and before `Finished`, which comes at most
//!   once; no client message follows `Closed`; once `Finished`, sends fail;
//! - `handle_timeout` at or after the deadline of `poll_timeout` moves the
//!   deadline past `now` (or removes it): the IO side never spins;
//! - a WebSocket engine is done (`Framed::is_done`) only once finished,
//!   and a finished one is done once the IO side flushed.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use axum_channel_protocol::browserchannel::{self, BackChannelEncoder, ForwardBatch, ForwardMessage};
use axum_channel_protocol::engine::{Counter, Engine, Event, HttpReceivers, ReceiverId, Transmit};
use axum_channel_protocol::payload::WireFormat;
use axum_channel_protocol::sockjs::{self, Attach, ReceiverEncoding, ReceiverKind};
use axum_channel_protocol::websocket::{self, Framed, Incoming};
use axum_channel_protocol::{event_stream, CloseReason, Message, Payload, SendError, Ticket};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Which {
    BrowserChannel,
    SockJs,
    SockJsWebSocket,
    WebSocket,
    EventSource,
}

#[derive(Arbitrary, Debug)]
struct Settings {
    bound_a: u8,
    bound_b: u8,
    time_a: u16,
    time_b: u16,
    time_c: u16,
    time_d: u16,
    limit: u16,
    flags: u8,
    /// The byte bounds: small, so that fuzzed messages reach them.
    bytes: u16,
}

/// A duration of 1 ms to about a minute: zero would make a timer due
/// again at once, which is a configuration error, not an input.
fn millis(value: u16) -> Duration {
    Duration::from_millis(u64::from(value) + 1)
}

#[derive(Arbitrary, Debug)]
enum PayloadSpec {
    Text(String),
    Number(i32),
    Binary(Vec<u8>),
    Event(String, Option<String>, Option<String>),
}

impl PayloadSpec {
    fn payload(&self) -> Payload {
        match self {
            PayloadSpec::Text(text) => Payload::text(text.clone()),
            PayloadSpec::Number(n) => Payload::json(Value::from(*n)),
            PayloadSpec::Binary(data) => Payload::binary(data.clone()),
            PayloadSpec::Event(data, event, id) => {
                Payload::event(data.clone(), event.clone(), id.clone())
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Reason {
    Closed(String),
    WithCode(u16),
    Peer(Option<u16>),
    Failed(u16),
    PingTimeout,
    Lost,
    TimedOut,
    Disconnected,
    Reconnected,
    Lagging,
    Shutdown,
}

impl Reason {
    fn reason(&self) -> CloseReason {
        match self {
            Reason::Closed(text) => CloseReason::Closed(text.clone()),
            Reason::WithCode(code) => CloseReason::ClosedWithCode {
                code: *code,
                reason: "r".into(),
            },
            Reason::Peer(code) => CloseReason::Peer {
                code: *code,
                reason: String::new(),
            },
            Reason::Failed(code) => CloseReason::Failed {
                code: *code,
                reason: "f".into(),
            },
            Reason::PingTimeout => CloseReason::PingTimeout,
            Reason::Lost => CloseReason::ConnectionLost,
            Reason::TimedOut => CloseReason::TimedOut,
            Reason::Disconnected => CloseReason::Disconnected,
            Reason::Reconnected => CloseReason::Reconnected,
            Reason::Lagging => CloseReason::Lagging,
            Reason::Shutdown => CloseReason::Shutdown,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Time {
    Millis(u16),
    Seconds(u16),
    /// To the engine's deadline, if it has one in the future.
    ToDeadline,
    /// Past the engine's deadline by some milliseconds.
    PastDeadline(u16),
}

/// A number relative to what the harness expects next, or any number.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Number {
    Near(i8),
    NearEnd(u8),
    Any(u64),
}

impl Number {
    fn resolve(self, base: u64) -> u64 {
        match self {
            Number::Near(delta) => base.saturating_add_signed(i64::from(delta)),
            Number::NearEnd(back) => u64::MAX - u64::from(back),
            Number::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Aid {
    Near(i8),
    Any(i64),
}

#[derive(Arbitrary, Debug)]
enum ReceiverSpec {
    Xhr { polling: bool, prelude: bool },
    EventSource,
    HtmlFile,
    Jsonp,
    WebSocket,
}

impl ReceiverSpec {
    fn kind(&self) -> ReceiverKind {
        let http = |encoding, prelude: &str, polling| ReceiverKind::Http {
            encoding,
            prelude: prelude.to_owned(),
            polling,
        };
        match self {
            ReceiverSpec::Xhr { polling, prelude } => http(
                ReceiverEncoding::Xhr,
                if *prelude { "hhh\n" } else { "" },
                *polling,
            ),
            ReceiverSpec::EventSource => http(ReceiverEncoding::EventSource, "\r\n", false),
            ReceiverSpec::HtmlFile => http(ReceiverEncoding::HtmlFile, "<html>", false),
            ReceiverSpec::Jsonp => http(
                ReceiverEncoding::Jsonp {
                    callback: "cb".into(),
                },
                "",
                true,
            ),
            ReceiverSpec::WebSocket => ReceiverKind::WebSocket,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum IncomingSpec {
    Text(String),
    Binary(Vec<u8>),
    Ping,
    Pong(Vec<u8>),
    /// A pong that answers one of the app's pings, picked by index.
    Answer(u8),
    Close(Option<u16>, String),
    Failed(u16),
    Lost,
}

impl IncomingSpec {
    /// The frame; `pings` are the payloads of the app's pings so far.
    fn incoming(&self, pings: &[Bytes]) -> Incoming {
        match self {
            IncomingSpec::Text(text) => Incoming::Text(text.clone()),
            IncomingSpec::Binary(data) => Incoming::Binary(Bytes::from(data.clone())),
            IncomingSpec::Ping => Incoming::Ping,
            IncomingSpec::Pong(data) => Incoming::Pong(Bytes::from(data.clone())),
            IncomingSpec::Answer(index) => {
                Incoming::Pong(pick_from(pings, *index).cloned().unwrap_or_default())
            }
            IncomingSpec::Close(code, reason) => Incoming::Close {
                code: *code,
                reason: reason.clone(),
            },
            IncomingSpec::Failed(code) => Incoming::Failed {
                code: *code,
                reason: "bad".into(),
            },
            IncomingSpec::Lost => Incoming::Lost,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Send(PayloadSpec),
    Ping(Vec<u8>),
    Stop,
    Close(Reason),
    Backpressure(bool),
    AppIdle,
    Time(Time),
    /// Polls a receiver for bytes: one the engine handed out, or one it never did.
    Transmit(u8),
    Attach {
        receiver: ReceiverSpec,
        html: bool,
        chunked: bool,
        domain: Option<String>,
    },
    Detach(u8, Reason),
    Acknowledge(Aid),
    Forward {
        rid: Option<Number>,
        offset: Number,
        maps: Option<u8>,
        raw_maps: bool,
    },
    Terminate(Option<Number>),
    OpeningReply,
    ForwardReply,
    Messages(Vec<String>),
    WebSocketText(String),
    End(Reason),
    Incoming(IncomingSpec),
    /// The IO side flushed everything it took from a WebSocket engine.
    Flushed,
}

#[derive(Arbitrary, Debug)]
struct Input {
    which: Which,
    settings: Settings,
    first_request: Option<Number>,
    ops: Vec<Op>,
}

/// What the harness knows of the engine, checked as outputs arrive.
struct Checks {
    now: Instant,
    /// Messages the app sent successfully (their numbers are 0..sent).
    sent: u64,
    confirmed: u64,
    pings_confirmed: u64,
    last_ping: Option<u64>,
    closed: bool,
    finished: bool,
    /// BrowserChannel: the next client map number to be released.
    next_map: u64,
    /// What the app's send or ping of the last operation returned.
    last_send: Option<Result<Ticket, SendError>>,
    /// The payloads of the app's pings, for pongs that answer them.
    pings: Vec<Bytes>,
}

impl Checks {
    fn ticket(&mut self, result: Result<axum_channel_protocol::Ticket, axum_channel_protocol::SendError>) {
        if let Ok(ticket) = result {
            assert!(!self.finished, "a send was accepted after Finished");
            match ticket.counter {
                Counter::Messages => {
                    assert_eq!(ticket.seq, self.sent, "messages are numbered in order");
                    self.sent += 1;
                }
                Counter::Pings => {
                    assert!(self.last_ping.is_none_or(|last| ticket.seq > last));
                    self.last_ping = Some(ticket.seq);
                }
            }
        }
    }

    fn confirms(&mut self, confirms: Option<u64>) {
        if let Some(through) = confirms {
            assert!(through >= self.confirmed, "confirmation went back");
            assert!(
                through <= self.sent,
                "confirmed {through} of {} sent",
                self.sent
            );
            self.confirmed = through;
        }
    }

    fn transmit(&mut self, transmit: &Option<Transmit>) {
        match transmit {
            Some(Transmit::Data { confirms, .. })
            | Some(Transmit::Binary { confirms, .. })
            | Some(Transmit::Deflated { confirms, .. }) => self.confirms(*confirms),
            _ => {}
        }
    }

    fn events(&mut self, engine: &mut dyn Engine) {
        while let Some(event) = engine.poll_event() {
            match event {
                Event::Message(message) => {
                    assert!(!self.closed, "a message after Closed");
                    let number = match message {
                        Message::Json(Value::Number(n)) => n.as_u64(),
                        Message::Map(map) => map.get("n").and_then(|n| n.parse().ok()),
                        _ => None,
                    };
                    if let Some(number) = number {
                        // Only BrowserChannel maps carry numbers.
                        assert_eq!(number, self.next_map, "maps released out of order");
                        self.next_map += 1;
                    }
                }
                Event::Confirmed {
                    counter: Counter::Messages,
                    through,
                } => self.confirms(Some(through)),
                Event::Confirmed {
                    counter: Counter::Pings,
                    through,
                } => {
                    assert!(
                        through >= self.pings_confirmed,
                        "ping confirmation went back"
                    );
                    self.pings_confirmed = through;
                }
                Event::Transmit => {}
                Event::Closed(_) => {
                    assert!(!self.closed, "Closed twice");
                    assert!(engine.close_reason().is_some());
                    self.closed = true;
                }
                Event::Finished => {
                    assert!(self.closed, "Finished before Closed");
                    assert!(!self.finished, "Finished twice");
                    self.finished = true;
                }
            }
        }
        if self.finished {
            let late = engine.send(self.now, &Payload::text("late"));
            assert!(late.is_err(), "a send was accepted after Finished");
        }
    }

    /// Advances time and runs the timers; the deadline must move past `now`.
    fn time(&mut self, engine: &mut dyn Engine, time: &Time) {
        let deadline = engine.poll_timeout();
        match *time {
            Time::Millis(ms) => self.now += Duration::from_millis(u64::from(ms)),
            Time::Seconds(s) => self.now += Duration::from_secs(u64::from(s)),
            Time::ToDeadline => {
                if let Some(deadline) = deadline {
                    self.now = self.now.max(deadline);
                }
            }
            Time::PastDeadline(ms) => {
                if let Some(deadline) = deadline {
                    self.now = self.now.max(deadline) + Duration::from_millis(u64::from(ms));
                }
            }
        }
        engine.handle_timeout(self.now);
        if deadline.is_some_and(|deadline| self.now >= deadline) {
            let next = engine.poll_timeout();
            assert!(
                next.is_none_or(|next| next > self.now),
                "handle_timeout left the deadline at {:?} ≤ now",
                next.map(|next| next.saturating_duration_since(self.now))
            );
        }
    }

    /// The operations every engine has; true if `op` was one.
    fn common(&mut self, engine: &mut dyn Engine, op: &Op) -> bool {
        let now = self.now;
        self.last_send = None;
        match op {
            Op::Send(spec) => {
                let result = engine.send(now, &spec.payload());
                self.last_send = Some(result.clone());
                self.ticket(result);
            }
            Op::Ping(data) => {
                let payload = Bytes::from(data.clone());
                self.pings.push(payload.clone());
                let result = engine.ping(now, payload);
                self.last_send = Some(result.clone());
                self.ticket(result);
            }
            Op::Stop => engine.stop(now),
            Op::Close(reason) => engine.close(now, reason.reason()),
            Op::Backpressure(blocked) => engine.set_backpressure(now, *blocked),
            Op::AppIdle => engine.app_idle(now),
            Op::Time(time) => self.time(engine, time),
            _ => return false,
        }
        true
    }
}

/// What the harness knows one queue for the peer holds: the bytes of each
/// item in order, `true` for what the app queued (a message or ping) and
/// `false` for a control array, and the largest item the app queued.
#[derive(Default)]
struct Queued {
    items: VecDeque<(usize, bool)>,
    largest: usize,
}

impl Queued {
    fn bytes(&self) -> usize {
        self.items.iter().map(|(len, _)| len).sum()
    }

    fn app_bytes(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, app)| *app)
            .map(|(len, _)| len)
            .sum()
    }

    fn has_app(&self) -> bool {
        self.items.iter().any(|(_, app)| *app)
    }

    /// Checks the byte bound's rule on the app's send or ping of `len`
    /// bytes, offered while the engine counted `before` bytes and now
    /// counts `after`: refused exactly when it would take the queue past
    /// `bound` while something waits (`empty` is false). A queued one is
    /// recorded.
    fn offered(
        &mut self,
        result: &Result<Ticket, SendError>,
        len: usize,
        (before, after): (usize, usize),
        empty: bool,
        bound: usize,
    ) {
        match result {
            Ok(_) => {
                assert!(
                    empty || before + len <= bound,
                    "{len} bytes queued on {before}, over {bound}"
                );
                assert_eq!(after, before + len, "the count moves by what was queued");
                self.items.push_back((len, true));
                self.largest = self.largest.max(len);
            }
            Err(SendError::QueueTooLarge { limit_bytes }) => {
                assert_eq!(*limit_bytes, bound);
                assert!(
                    !empty && before + len > bound,
                    "{len} bytes refused on {before} under {bound}"
                );
                assert_eq!(after, before);
            }
            Err(_) => assert_eq!(after, before),
        }
    }

    /// The engine's queue holds `count` items now: it only ever lets go of
    /// its oldest ones.
    fn drained_to(&mut self, count: usize) {
        while self.items.len() > count {
            self.items.pop_front();
        }
    }

    /// The engine's queue lets go of everything at once: `count` is all or nothing.
    fn taken_to(&mut self, count: usize) {
        if count < self.items.len() {
            assert_eq!(count, 0, "a queue taken whole");
            self.items.clear();
        }
    }

    /// The app's bytes stay within the bound, or one message larger.
    fn check_bound(&self, bound: usize) {
        assert!(
            self.app_bytes() <= bound.max(self.largest),
            "{} bytes queued, bound {bound}, largest {}",
            self.app_bytes(),
            self.largest
        );
    }
}

/// The bytes `op` would queue on an engine that writes `format`, if it
/// is a send or a ping (`ping` weighs a ping's payload).
fn offered_len(op: &Op, format: WireFormat, ping: impl Fn(&[u8]) -> usize) -> usize {
    match op {
        Op::Send(spec) => spec.payload().encode(format).map_or(0, |bytes| bytes.len()),
        Op::Ping(data) => ping(data),
        _ => 0,
    }
}

fn pick_from<T>(items: &[T], index: u8) -> Option<&T> {
    items.get(usize::from(index) % items.len().max(1))
}

fn pick(ids: &[ReceiverId], index: u8) -> ReceiverId {
    ids.get(usize::from(index) % (ids.len() + 1))
        .copied()
        .unwrap_or(ReceiverId(u64::MAX))
}

fn browserchannel(
    settings: &Settings,
    first_request: Option<Number>,
    ops: &[Op],
    checks: &mut Checks,
) {
    let config = browserchannel::SessionConfig {
        max_outgoing_arrays: usize::from(settings.bound_a % 8),
        max_queued_bytes: usize::from(settings.bytes % 512),
        max_held_maps: usize::from(settings.bound_b % 8),
        max_held_bytes: usize::from(settings.bytes / 512 % 64),
        keep_alive_interval: millis(settings.time_a),
        session_timeout: millis(settings.time_b),
        back_channel_chunk_limit: usize::from(settings.limit % 2048),
        acknowledgement_timeout: millis(settings.time_c),
    };
    let first_request = first_request.map(|rid| rid.resolve(1000));
    let mut session =
        browserchannel::Session::new(checks.now, "sid", Some("h"), first_request, config);
    let mut next_rid = first_request.unwrap_or(0);
    let mut ids = Vec::new();
    // The `c` array that announces the session waits first.
    let mut queued = Queued::default();
    let created = serde_json::json!(["c", "sid", "h", 8]).to_string();
    queued.items.push_back((created.len(), false));
    for op in ops {
        let now = checks.now;
        let len = offered_len(op, WireFormat::BrowserChannel, |_| 0);
        let (before, empty) = (session.queued_bytes(), !queued.has_app());
        if !checks.common(&mut session, op) {
            match op {
                Op::Transmit(index) => {
                    let transmit = session.poll_receiver(now, pick(&ids, *index));
                    checks.transmit(&transmit);
                }
                Op::Attach {
                    html,
                    chunked,
                    domain,
                    ..
                } => {
                    let encoder = if *html {
                        BackChannelEncoder::html()
                    } else {
                        BackChannelEncoder::xmlhttp()
                    };
                    let id = session.attach_back_channel(now, encoder, *chunked, domain.as_deref());
                    assert_eq!(id.is_none(), session.close_reason().is_some());
                    ids.extend(id);
                }
                Op::Detach(index, _) => session.detach_back_channel(now, pick(&ids, *index)),
                Op::Acknowledge(aid) => {
                    let aid = match *aid {
                        Aid::Near(delta) => session
                            .last_sent_array_id()
                            .saturating_add(i64::from(delta)),
                        Aid::Any(aid) => aid,
                    };
                    session.acknowledge(now, aid);
                }
                Op::Forward {
                    rid,
                    offset,
                    maps,
                    raw_maps,
                } => {
                    let rid = rid.map(|rid| rid.resolve(next_rid));
                    let batch = maps.map(|count| {
                        let offset = offset.resolve(checks.next_map);
                        let messages = (0..u64::from(count % 12))
                            .map(|index| {
                                // Numbered as the session numbers them, to check the order.
                                let number = offset.wrapping_add(index);
                                if *raw_maps {
                                    ForwardMessage::Map(BTreeMap::from([(
                                        "n".to_owned(),
                                        number.to_string(),
                                    )]))
                                } else {
                                    ForwardMessage::Json(Value::from(number))
                                }
                            })
                            .collect();
                        ForwardBatch { offset, messages }
                    });
                    let (held, held_bytes) = (session.held_maps(), session.held_bytes());
                    let result = session.handle_forward(now, rid, batch);
                    if result.is_err() {
                        // A refused request changes nothing.
                        assert_eq!(session.held_maps(), held);
                        assert_eq!(session.held_bytes(), held_bytes);
                    } else if let Some(rid) = rid {
                        next_rid = next_rid.max(rid.saturating_add(1));
                    }
                }
                Op::Terminate(rid) => {
                    let _ = session.terminate(now, rid.map(|rid| rid.resolve(next_rid)));
                }
                Op::OpeningReply => {
                    session.opening_reply(now);
                }
                Op::ForwardReply => {
                    session.forward_reply();
                }
                _ => {}
            }
        }
        if let Some(result) = checks.last_send.take() {
            let counts = (before, session.queued_bytes());
            queued.offered(&result, len, counts, empty, config.max_queued_bytes);
        }
        checks.events(&mut session);
        assert!(session.outstanding_app_arrays() <= config.max_outgoing_arrays);
        assert!(session.outstanding_app_arrays() <= session.outstanding_arrays());
        assert!(session.held_maps() <= 2 * config.max_held_maps);
        // Acknowledgements let go of the oldest arrays; heartbeats and
        // `stop` add control arrays of 8 bytes (`["noop"]`, `["stop"]`).
        queued.drained_to(session.outstanding_arrays());
        while queued.items.len() < session.outstanding_arrays() {
            queued.items.push_back((8, false));
        }
        assert_eq!(session.queued_bytes(), queued.bytes());
        queued.check_bound(config.max_queued_bytes);
        assert!(session.held_bytes() <= config.max_held_bytes);
        if session.held_maps() == 0 {
            assert_eq!(session.held_bytes(), 0);
        }
    }
}

fn sockjs_config(settings: &Settings) -> sockjs::SessionConfig {
    sockjs::SessionConfig {
        heartbeat_delay: millis(settings.time_a),
        disconnect_delay: millis(settings.time_b),
        response_limit: usize::from(settings.limit % 4096),
        max_queued_messages: usize::from(settings.bound_a % 8),
        max_queued_bytes: usize::from(settings.bytes % 512),
    }
}

fn sockjs(settings: &Settings, ops: &[Op], checks: &mut Checks) {
    let config = sockjs_config(settings);
    let mut session = sockjs::Session::new(checks.now, config);
    let mut ids = Vec::new();
    let mut opened = false;
    let mut queued = Queued::default();
    for op in ops {
        let now = checks.now;
        let len = offered_len(op, WireFormat::SockJs, |_| 0);
        let before = session.queued_bytes();
        if !checks.common(&mut session, op) {
            match op {
                Op::Transmit(index) => {
                    let transmit = session.poll_receiver(now, pick(&ids, *index));
                    checks.transmit(&transmit);
                }
                Op::Attach { receiver, .. } => {
                    match session.attach_receiver(now, receiver.kind()) {
                        Attach::Attached { id, opened: first } => {
                            assert!(!(first && opened), "opened twice");
                            opened |= first;
                            ids.push(id);
                        }
                        Attach::Answered { confirms, .. } => checks.confirms(confirms),
                    }
                }
                Op::Detach(index, reason) => {
                    session.detach_receiver(now, pick(&ids, *index), reason.reason())
                }
                Op::End(reason) => session.end(now, reason.reason()),
                Op::Messages(messages) => session.handle_messages(now, messages.clone()),
                Op::WebSocketText(text) => session.handle_websocket_text(now, text),
                _ => {}
            }
        }
        if let Some(result) = checks.last_send.take() {
            let counts = (before, session.queued_bytes());
            let empty = queued.items.is_empty();
            queued.offered(&result, len, counts, empty, config.max_queued_bytes);
        }
        checks.events(&mut session);
        assert!(session.pending_messages() <= config.max_queued_messages);
        // A frame takes every pending message; a forgotten session drops them.
        queued.taken_to(session.pending_messages());
        assert_eq!(session.queued_bytes(), queued.bytes());
        queued.check_bound(config.max_queued_bytes);
    }
}

/// The operations of an engine carried by one WebSocket.
fn framed(engine: &mut dyn Framed, op: &Op, checks: &mut Checks) {
    let now = checks.now;
    match op {
        Op::Transmit(_) => {
            let transmit = engine.poll_frame(now);
            checks.transmit(&transmit);
        }
        Op::Incoming(incoming) => {
            let _ = engine.wants_read();
            engine.handle_incoming(now, incoming.incoming(&checks.pings));
        }
        Op::WebSocketText(text) => engine.handle_incoming(now, Incoming::Text(text.clone())),
        Op::Flushed => {
            engine.handle_flushed(now);
            if checks.finished {
                assert!(engine.is_done(), "a finished connection flushed is done");
            }
        }
        _ => {}
    }
}

fn sockjs_websocket(settings: &Settings, ops: &[Op], checks: &mut Checks) {
    let config = sockjs_config(settings);
    let mut session = sockjs::WebSocketSession::new(checks.now, config);
    let mut queued = Queued::default();
    for op in ops {
        let len = offered_len(op, WireFormat::SockJs, |_| 0);
        let before = session.queued_bytes();
        if !checks.common(&mut session, op) {
            framed(&mut session, op, checks);
        }
        if let Some(result) = checks.last_send.take() {
            let counts = (before, session.queued_bytes());
            let empty = queued.items.is_empty();
            queued.offered(&result, len, counts, empty, config.max_queued_bytes);
        }
        checks.events(&mut session);
        assert!(session.pending_messages() <= config.max_queued_messages);
        queued.taken_to(session.pending_messages());
        assert_eq!(session.queued_bytes(), queued.bytes());
        queued.check_bound(config.max_queued_bytes);
        assert!(
            !session.is_done() || checks.finished,
            "done before Finished"
        );
    }
}

fn websocket(settings: &Settings, ops: &[Op], checks: &mut Checks) {
    let rfc6455 = settings.flags & 1 == 0;
    let config = websocket::SessionConfig {
        ping_interval: (settings.flags & 2 != 0).then(|| millis(settings.time_a)),
        max_queued_messages: usize::from(settings.bound_a % 8),
        max_queued_bytes: usize::from(settings.bytes % 512),
        close_timeout: millis(settings.time_b),
        failure_grace: millis(settings.time_c),
        binary: rfc6455,
        pings: rfc6455,
        // Queued bytes are modelled as the plain encoding's; compressed
        // messages are the frame_reader target's and tests/deflate.rs's.
        deflate: None,
    };
    let mut session = websocket::Session::new(checks.now, config);
    // Messages and pings are queued apart, and counted together.
    let (mut messages, mut pings) = (Queued::default(), Queued::default());
    for op in ops {
        let len = offered_len(op, WireFormat::WebSocket, <[u8]>::len);
        let before = session.queued_bytes();
        if !checks.common(&mut session, op) {
            framed(&mut session, op, checks);
        }
        if let Some(result) = checks.last_send.take() {
            let counts = (before, session.queued_bytes());
            let queue = if matches!(op, Op::Ping(_)) {
                &mut pings
            } else {
                &mut messages
            };
            queue.offered(&result, len, counts, before == 0, config.max_queued_bytes);
        }
        checks.events(&mut session);
        assert!(session.queued_messages() <= config.max_queued_messages);
        assert!(session.queued_pings() <= config.max_queued_messages.max(1));
        // Writes take the oldest message, pongs the oldest pings, the end
        // everything; automatic pings carry nothing.
        messages.drained_to(session.queued_messages());
        pings.drained_to(session.queued_pings());
        while pings.items.len() < session.queued_pings() {
            pings.items.push_back((0, false));
        }
        assert_eq!(session.queued_bytes(), messages.bytes() + pings.bytes());
        let largest = messages.largest.max(pings.largest);
        assert!(
            session.queued_bytes() <= config.max_queued_bytes.max(largest),
            "{} bytes queued",
            session.queued_bytes()
        );
        assert!(
            !session.is_done() || checks.finished,
            "done before Finished"
        );
    }
}

fn event_source(settings: &Settings, ops: &[Op], checks: &mut Checks) {
    let config = event_stream::SessionConfig {
        retry: (settings.flags & 1 != 0).then(|| millis(settings.time_d)),
        ping_interval: (settings.flags & 2 != 0).then(|| millis(settings.time_a)),
        max_queued_events: usize::from(settings.bound_a % 8),
        max_queued_bytes: usize::from(settings.bytes % 512),
    };
    let mut session = event_stream::Session::new(checks.now, config);
    let ids = [session.stream()];
    let mut queued = Queued::default();
    for op in ops {
        let now = checks.now;
        let len = offered_len(op, WireFormat::EventSource, |data| {
            event_stream::encode_comment(&String::from_utf8_lossy(data)).len()
        });
        let before = session.queued_bytes();
        if !checks.common(&mut session, op) {
            match op {
                Op::Transmit(index) => {
                    let transmit = session.poll_receiver(now, pick(&ids, *index));
                    checks.transmit(&transmit);
                }
                Op::Detach(index, _) => session.detach(now, pick(&ids, *index)),
                _ => {}
            }
        }
        if let Some(result) = checks.last_send.take() {
            let counts = (before, session.queued_bytes());
            let empty = queued.items.is_empty();
            queued.offered(&result, len, counts, empty, config.max_queued_bytes);
        }
        checks.events(&mut session);
        assert!(session.queued_events() <= config.max_queued_events);
        // A write takes every queued event; the end drops them.
        queued.taken_to(session.queued_events());
        assert_eq!(session.queued_bytes(), queued.bytes());
        queued.check_bound(config.max_queued_bytes);
    }
}

fuzz_target!(|input: Input| {
    let mut checks = Checks {
        now: Instant::now(),
        sent: 0,
        confirmed: 0,
        pings_confirmed: 0,
        last_ping: None,
        closed: false,
        finished: false,
        next_map: 0,
        last_send: None,
        pings: Vec::new(),
    };
    let ops = &input.ops[..input.ops.len().min(256)];
    match input.which {
        Which::BrowserChannel => {
            browserchannel(&input.settings, input.first_request, ops, &mut checks)
        }
        Which::SockJs => sockjs(&input.settings, ops, &mut checks),
        Which::SockJsWebSocket => sockjs_websocket(&input.settings, ops, &mut checks),
        Which::WebSocket => websocket(&input.settings, ops, &mut checks),
        Which::EventSource => event_source(&input.settings, ops, &mut checks),
    }
});
