//! The state of one BrowserChannel session, without IO.
//!
//! Server to client, the session queues *arrays*, each with the next array
//! id. An array stays queued until the client acknowledges it (`AID`), so a
//! new back channel sends again whatever the last one may have lost. A
//! message's delivery is confirmed by that acknowledgement.
//!
//! Client to server, the session releases maps in map-number order, each
//! once, and processes `terminate` only after every forward channel request
//! numbered before it has arrived.
//!
//! Timers: a `["noop"]` heartbeat every keep-alive interval while a back
//! channel is open, the session timeout while none is, and the
//! acknowledgement timeout. A client acknowledges only with its next
//! request, and a client with nothing to send makes none; so arrays left
//! unacknowledged that long end the back channel, and the client's
//! immediate new back channel request carries its `AID`. A back channel is
//! only ever ended after it wrote something: the client takes an empty
//! response for a failure.

use super::back_channel::BackChannelEncoder;
use super::forward_channel::{ForwardBatch, ForwardMessage};
use super::query::PROTOCOL_VERSION;
use crate::close::{CloseReason, SendError};
use crate::engine::{
    Counter, Engine, Event, HttpReceivers, Outbox, ReceiverId, Ticket, Transmit,
    DEFAULT_MAX_QUEUED_BYTES,
};
use crate::json;
use crate::message::Message;
use crate::order_buffer::{OrderBuffer, OrderError, WeightedOrderBuffer};
use crate::payload::{Payload, WireFormat};
use crate::queue::check_queued_bytes;
use crate::timer::{self, TimerTable};
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The settings of one session: its bounds and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Most application arrays queued and not yet acknowledged.
    pub max_outgoing_arrays: usize,
    /// Most bytes of array data queued and not yet acknowledged, control
    /// arrays (`c`, `noop`, `stop`) included. A message that would pass it
    /// is refused unless no app array waits ([`SendError::QueueTooLarge`]).
    pub max_queued_bytes: usize,
    /// Most maps (and forward channel requests) held while a gap before them fills.
    pub max_held_maps: usize,
    /// Most bytes of maps held while a gap before them fills, as
    /// [`ForwardMessage::size`] weighs them: a request that would pass it
    /// is refused ([`OrderError::Overweight`]) and changes nothing.
    pub max_held_bytes: usize,
    /// How often a `["noop"]` goes down an open back channel.
    pub keep_alive_interval: Duration,
    /// How long the session lives without a back channel.
    pub session_timeout: Duration,
    /// Bytes after which a streaming back channel ends so the client opens a new one.
    pub back_channel_chunk_limit: usize,
    /// How long sent arrays wait for the client's acknowledgement before
    /// the back channel ends to ask for it.
    pub acknowledgement_timeout: Duration,
}

impl Default for SessionConfig {
    /// node-browserchannel's defaults.
    fn default() -> Self {
        Self {
            max_outgoing_arrays: 4096,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_held_maps: 1024,
            // As much as one forward channel request may carry by default
            // (axum-channel's `max_request_body`): one request held
            // whole, not a thousand.
            max_held_bytes: 1 << 20,
            keep_alive_interval: Duration::from_secs(20),
            session_timeout: Duration::from_secs(30),
            back_channel_chunk_limit: 10 * 1024,
            acknowledgement_timeout: Duration::from_secs(1),
        }
    }
}

/// The timers of a BrowserChannel session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// A `["noop"]` goes down the open back channel every keep-alive interval.
    Heartbeat,
    /// A session without a back channel closes after this long.
    SessionTimeout,
    /// Sent arrays that carry messages have waited this long for their
    /// acknowledgement: the back channel ends to ask for it.
    Acknowledgement,
}

impl timer::Timer for Timer {
    const ALL: &'static [Self] = &[
        Timer::Heartbeat,
        Timer::SessionTimeout,
        Timer::Acknowledgement,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Heartbeats and other control arrays left unacknowledged before the back
/// channel ends to ask for an acknowledgement.
const MAX_UNACKNOWLEDGED_CONTROL: usize = 8;

#[derive(Debug)]
struct OutgoingArray {
    id: u64,
    /// The array's data, encoded once and reused on every resend.
    json: Bytes,
    /// The app message this array carries; control arrays carry none.
    app_seq: Option<u64>,
}

/// The open back channel.
#[derive(Debug)]
struct BackChannel {
    id: ReceiverId,
    encoder: BackChannelEncoder,
    /// `CI=0`: the back channel stays open across chunks.
    chunked: bool,
    bytes_sent: usize,
    /// What opens the response (the html page start), until written.
    prelude: Option<String>,
    /// The back channel has written its last chunk and ends next.
    ending: bool,
}

/// One BrowserChannel session's protocol state.
///
/// ```
/// use axum_channel_protocol::browserchannel::{BackChannelEncoder, Session, SessionConfig};
/// use axum_channel_protocol::engine::{Engine, Event, HttpReceivers, Transmit};
/// use axum_channel_protocol::payload::Payload;
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut session = Session::new(now, "sid", None, Some(1), SessionConfig::default());
/// assert_eq!(session.opening_reply(now), "25\n[[0,[\"c\",\"sid\",null,8]]]\n");
/// session.acknowledge(now, 0); // the client's next request carries AID=0
/// let back_channel = session.attach_back_channel(now, BackChannelEncoder::xmlhttp(), true, None).unwrap();
/// let ticket = session.send(now, &Payload::text("hi")).unwrap();
/// let Some(Transmit::Data { bytes, .. }) = session.poll_receiver(now, back_channel) else { panic!() };
/// assert_eq!(&bytes[..], b"11\n[[1,\"hi\"]]\n");
/// session.acknowledge(now, 1);
/// while let Some(event) = session.poll_event() {
///     if let Event::Confirmed { through, .. } = event {
///         assert!(through > ticket.seq);
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Session {
    outgoing: VecDeque<OutgoingArray>,
    /// Id of the last queued array; -1 before the first.
    last_array_id: i64,
    /// Id of the last array written to a back channel; -1 before the first.
    last_sent_array_id: i64,
    /// Application arrays among `outgoing`, bounded by the config.
    queued_app_arrays: usize,
    /// The bytes of array data in `outgoing`, kept as it changes so a send
    /// need not add them up.
    queued_bytes: usize,
    next_app_seq: u64,
    maps: WeightedOrderBuffer<ForwardMessage>,
    /// Forward channel request numbers; `true` marks a `terminate`.
    requests: Option<OrderBuffer<bool>>,
    back_channel: Option<BackChannel>,
    /// Back channels replaced by a newer one, each with what ends it.
    retired: Vec<(ReceiverId, &'static str)>,
    receivers_opened: u64,
    /// The heartbeat and acknowledgement timers count while a back channel
    /// is open, the session timeout while none is; the acknowledgement
    /// timer runs from when sent arrays that carry messages began to wait.
    timers: TimerTable<Timer, 3>,
    /// The app's inbound queue is full: forward channel requests wait.
    backpressure: bool,
    outbox: Outbox,
    config: SessionConfig,
}

impl Session {
    /// A new session; it queues the `["c", sid, hostPrefix, 8]` array that
    /// tells the client its session id. `first_request` is the `RID` of the
    /// request that created it.
    pub fn new(
        now: Instant,
        session_id: &str,
        host_prefix: Option<&str>,
        first_request: Option<u64>,
        config: SessionConfig,
    ) -> Self {
        let mut timers = TimerTable::new(now);
        timers.set(Timer::Heartbeat, now + config.keep_alive_interval);
        timers.set(Timer::SessionTimeout, now + config.session_timeout);
        let mut session = Self {
            outgoing: VecDeque::new(),
            last_array_id: -1,
            last_sent_array_id: -1,
            queued_app_arrays: 0,
            queued_bytes: 0,
            next_app_seq: 0,
            maps: WeightedOrderBuffer::new(0, config.max_held_maps, config.max_held_bytes),
            requests: first_request.map(|rid| OrderBuffer::new(rid, config.max_held_maps)),
            back_channel: None,
            retired: Vec::new(),
            receivers_opened: 0,
            timers,
            backpressure: false,
            outbox: Outbox::default(),
            config,
        };
        let created = Value::Array(vec![
            "c".into(),
            session_id.into(),
            host_prefix.map_or(Value::Null, Value::from),
            PROTOCOL_VERSION.into(),
        ]);
        session.push(Bytes::from(json::to_ascii_string(&created)), None);
        session
    }

    fn push(&mut self, json: Bytes, app_seq: Option<u64>) {
        self.last_array_id += 1;
        self.queued_bytes += json.len();
        self.outgoing.push_back(OutgoingArray {
            id: self.last_array_id as u64,
            json,
            app_seq,
        });
        if self.back_channel.is_some() {
            self.outbox.push(Event::Transmit);
        }
    }

    fn push_control(&mut self, name: &'static str) {
        self.push(Bytes::from(format!("[\"{name}\"]")), None);
    }

    /// The client has every array up to `last_received` (`AID`); the
    /// messages they carry are delivered.
    pub fn acknowledge(&mut self, now: Instant, last_received: i64) {
        // The client cannot acknowledge what was never sent.
        let last = last_received.min(self.last_sent_array_id);
        let mut through = None;
        while let Some(front) = self.outgoing.front() {
            if front.id as i64 > last {
                break;
            }
            let array = self.outgoing.pop_front().expect("front exists");
            self.queued_bytes -= array.json.len();
            if let Some(seq) = array.app_seq {
                self.queued_app_arrays -= 1;
                through = Some(seq + 1);
            }
        }
        if !self.awaits_acknowledgement() {
            self.timers.stop(Timer::Acknowledgement);
        } else if through.is_some() {
            self.wait_for_acknowledgement(now);
        }
        if let Some(through) = through {
            self.outbox.push(Event::Confirmed {
                counter: Counter::Messages,
                through,
            });
        }
        if self.outgoing.is_empty() {
            // An idle session keeps no buffer (its first array's, say).
            self.outgoing = VecDeque::new();
        }
    }

    /// The reply to the request that created the session: every queued
    /// array, starting with `c`, as one length-prefixed chunk. It serves as
    /// the first, unchunked back channel.
    pub fn opening_reply(&mut self, now: Instant) -> String {
        self.no_back_channel(now);
        let chunk = self.take_unsent().unwrap_or_default();
        BackChannelEncoder::xmlhttp().chunk(&chunk)
    }

    /// The forward channel reply, `[backChannelLive, lastSentArrayId,
    /// outstandingBytes]`, length-prefixed: it tells the client whether to
    /// reopen its back channel. Outstanding bytes count the JSON of the
    /// arrays sent but not yet acknowledged.
    pub fn forward_reply(&self) -> String {
        let unsent = (self.last_array_id - self.last_sent_array_id) as usize;
        let sent = self.outgoing.len() - unsent;
        let outstanding_bytes = if sent == 0 {
            0
        } else {
            let data: usize = self.outgoing.range(..sent).map(|a| a.json.len()).sum();
            data + (sent - 1) + 2
        };
        let reply = format!(
            "[{},{},{}]",
            u8::from(self.back_channel.is_some()),
            self.last_sent_array_id,
            outstanding_bytes
        );
        BackChannelEncoder::xmlhttp().chunk(&reply)
    }

    /// Takes in one forward channel request; the maps now in order become
    /// [`Event::Message`]s. Nothing changes when it is refused. A closed
    /// session ignores what arrives.
    pub fn handle_forward(
        &mut self,
        now: Instant,
        request: Option<u64>,
        batch: Option<ForwardBatch>,
    ) -> Result<(), OrderError> {
        if self.outbox.is_closed() {
            return Ok(());
        }
        let weights: Vec<usize> = batch.as_ref().map_or_else(Vec::new, |batch| {
            batch.messages.iter().map(ForwardMessage::size).collect()
        });
        if let Some(batch) = &batch {
            self.maps.check_run(batch.offset, &weights)?;
        }
        if let (Some(rid), Some(requests)) = (request, &self.requests) {
            requests.check(rid)?;
        }
        let terminated = match request {
            Some(rid) => self.note_request(rid, false)?,
            None => false,
        };
        if let Some(batch) = batch {
            let mut released = Vec::new();
            // `check_run` accepted the run: every number fits below `u64::MAX`.
            for ((index, message), weight) in batch.messages.into_iter().enumerate().zip(weights) {
                self.maps
                    .offer(batch.offset + index as u64, message, weight, &mut released)?;
            }
            self.outbox.extend(released.into_iter().map(|message| {
                Event::Message(match message {
                    ForwardMessage::Json(value) => Message::Json(value),
                    ForwardMessage::Map(map) => Message::Map(map),
                })
            }));
        }
        if terminated {
            self.close(now, CloseReason::Disconnected);
        }
        Ok(())
    }

    /// The client asked to close the session at request number `request`
    /// (`TYPE=terminate`); it closes once every earlier request has arrived.
    pub fn terminate(&mut self, now: Instant, request: Option<u64>) -> Result<(), OrderError> {
        let due = match request {
            Some(rid) => self.note_request(rid, true)?,
            None => true,
        };
        if due {
            self.close(now, CloseReason::Disconnected);
        }
        Ok(())
    }

    fn note_request(&mut self, rid: u64, is_terminate: bool) -> Result<bool, OrderError> {
        let Some(requests) = &mut self.requests else {
            return Ok(is_terminate);
        };
        if is_terminate && rid < requests.next_expected() {
            // A terminate for a request number already passed is due at once.
            return Ok(true);
        }
        let mut released = Vec::new();
        requests.offer(rid, is_terminate, &mut released)?;
        Ok(released.contains(&true))
    }

    /// Opens a back channel, replacing any other, and rewinds so that every
    /// array not yet acknowledged is sent again (the old one may have lost
    /// them). `None` once the session has closed.
    pub fn attach_back_channel(
        &mut self,
        now: Instant,
        encoder: BackChannelEncoder,
        chunked: bool,
        domain: Option<&str>,
    ) -> Option<ReceiverId> {
        if self.outbox.is_closed() {
            return None;
        }
        if let Some(old) = self.back_channel.take() {
            self.retired.push((old.id, old.encoder.end()));
        }
        self.receivers_opened += 1;
        let id = ReceiverId(self.receivers_opened);
        let prelude = encoder.prelude(domain);
        self.back_channel = Some(BackChannel {
            id,
            encoder,
            chunked,
            bytes_sent: 0,
            prelude: (!prelude.is_empty()).then_some(prelude),
            ending: false,
        });
        if let Some(front) = self.outgoing.front() {
            self.last_sent_array_id = front.id as i64 - 1;
        }
        self.timers
            .set(Timer::Heartbeat, now + self.config.keep_alive_interval);
        self.outbox.push(Event::Transmit);
        Some(id)
    }

    /// Back channel `id` is gone (the client left, or its response ended).
    /// Unless a newer one replaced it, the session timeout starts.
    pub fn detach_back_channel(&mut self, now: Instant, id: ReceiverId) {
        self.retired.retain(|(retired, _)| *retired != id);
        if self.back_channel.as_ref().is_some_and(|b| b.id == id) {
            self.back_channel = None;
            self.no_back_channel(now);
        }
    }

    /// No back channel is open since `now`: the session timeout starts.
    fn no_back_channel(&mut self, now: Instant) {
        self.timers
            .set(Timer::SessionTimeout, now + self.config.session_timeout);
    }

    /// Sent arrays that carry messages wait for acknowledgement since `now`.
    fn wait_for_acknowledgement(&mut self, now: Instant) {
        self.timers.set(
            Timer::Acknowledgement,
            now + self.config.acknowledgement_timeout,
        );
    }

    /// When `timer` fires, if it runs (see [`Timer`] for when each counts).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// True while a back channel is open.
    pub fn has_back_channel(&self) -> bool {
        self.back_channel.is_some()
    }

    /// True when an array that carries an app message was sent but not acknowledged.
    fn awaits_acknowledgement(&self) -> bool {
        let unsent = (self.last_array_id - self.last_sent_array_id) as usize;
        let sent = self.outgoing.len() - unsent;
        self.outgoing
            .range(..sent)
            .any(|array| array.app_seq.is_some())
    }

    /// Takes every unsent array as one chunk, `[[id,data],...]\n`.
    fn take_unsent(&mut self) -> Option<String> {
        let unsent = (self.last_array_id - self.last_sent_array_id) as usize;
        if unsent == 0 {
            return None;
        }
        let start = self.outgoing.len() - unsent;
        let mut chunk = String::from("[");
        for (index, array) in self.outgoing.range(start..).enumerate() {
            if index > 0 {
                chunk.push(',');
            }
            chunk.push('[');
            chunk.push_str(&array.id.to_string());
            chunk.push(',');
            // Array data is ASCII JSON, made by this crate's encoders.
            chunk.push_str(std::str::from_utf8(&array.json).unwrap_or("null"));
            chunk.push(']');
        }
        chunk.push_str("]\n");
        self.last_sent_array_id = self.last_array_id;
        Some(chunk)
    }

    /// Ends the back channel once it has written something, so the client's
    /// next back channel request acknowledges what it received.
    fn request_acknowledgement(&mut self) {
        if let Some(back_channel) = &mut self.back_channel {
            if back_channel.bytes_sent > 0 && !back_channel.ending {
                back_channel.ending = true;
                self.outbox.push(Event::Transmit);
            }
        }
    }

    /// True while the acknowledgement timer counts: a back channel is open,
    /// has written something, and is not ending already.
    fn acknowledgement_counts(&self) -> bool {
        self.back_channel
            .as_ref()
            .is_some_and(|b| !b.ending && b.bytes_sent > 0)
    }

    /// The id of the last array written to a back channel (-1 if none).
    pub fn last_sent_array_id(&self) -> i64 {
        self.last_sent_array_id
    }

    /// How many arrays wait for acknowledgement, sent or not.
    pub fn outstanding_arrays(&self) -> usize {
        self.outgoing.len()
    }

    /// How many of those carry an app message: at most
    /// [`SessionConfig::max_outgoing_arrays`].
    pub fn outstanding_app_arrays(&self) -> usize {
        self.queued_app_arrays
    }

    /// How many bytes of array data wait for acknowledgement, sent or not,
    /// control arrays included: at most [`SessionConfig::max_queued_bytes`]
    /// and the control arrays queued since, or one message and those when
    /// that message alone is larger.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// How many out-of-order maps wait for a gap to fill.
    pub fn held_maps(&self) -> usize {
        self.maps.held() + self.requests.as_ref().map_or(0, OrderBuffer::held)
    }

    /// How many bytes those maps hold, as [`ForwardMessage::size`] weighs
    /// them: at most [`SessionConfig::max_held_bytes`].
    pub fn held_bytes(&self) -> usize {
        self.maps.held_weight()
    }
}

/// A back channel's response is gone: the session waits for the next one
/// until its session timeout.
impl HttpReceivers for Session {
    /// What back channel `id` writes next: its prelude, a chunk of arrays,
    /// or its end. `None` while there is nothing to write.
    ///
    /// A back channel ends after one chunk when it is not chunked (`CI=1`),
    /// after the chunk limit, when the session closed, and, while the app's
    /// queue holds the forward channel up, after every chunk that carries a
    /// message: the client's next back channel request brings its `AID`,
    /// the one acknowledgement it can still send.
    fn poll_receiver(&mut self, now: Instant, id: ReceiverId) -> Option<Transmit> {
        if let Some(index) = self.retired.iter().position(|(r, _)| *r == id) {
            let (_, tail) = self.retired.swap_remove(index);
            return Some(Transmit::End(Bytes::from_static(tail.as_bytes())));
        }
        let closed = self.outbox.is_closed();
        let blocked = self.backpressure;
        let limit = self.config.back_channel_chunk_limit;
        let back_channel = match &mut self.back_channel {
            Some(back_channel) if back_channel.id == id => back_channel,
            // A back channel this session does not know: end it.
            _ => return Some(Transmit::End(Bytes::new())),
        };
        if let Some(prelude) = back_channel.prelude.take() {
            return Some(Transmit::Data {
                bytes: Bytes::from(prelude),
                confirms: None,
            });
        }
        if back_channel.ending {
            let tail = back_channel.encoder.end();
            self.back_channel = None;
            self.no_back_channel(now);
            return Some(Transmit::End(Bytes::from_static(tail.as_bytes())));
        }
        let Some(chunk) = self.take_unsent() else {
            if closed {
                let back_channel = self.back_channel.take().expect("matched above");
                self.no_back_channel(now);
                return Some(Transmit::End(Bytes::from_static(
                    back_channel.encoder.end().as_bytes(),
                )));
            }
            return None;
        };
        let awaits = self.awaits_acknowledgement();
        if awaits && !self.timers.is_set(Timer::Acknowledgement) {
            self.wait_for_acknowledgement(now);
        }
        let solicit = blocked && awaits;
        let back_channel = self.back_channel.as_mut().expect("matched above");
        let encoded = back_channel.encoder.chunk(&chunk);
        back_channel.bytes_sent += encoded.len();
        if !back_channel.chunked || back_channel.bytes_sent > limit || closed || solicit {
            back_channel.ending = true;
        }
        Some(Transmit::Data {
            bytes: Bytes::from(encoded),
            confirms: None,
        })
    }

    fn receiver_gone(&mut self, now: Instant, id: ReceiverId) {
        self.detach_back_channel(now, id);
    }
}

impl Engine for Session {
    fn send(&mut self, _now: Instant, payload: &Payload) -> Result<Ticket, SendError> {
        if self.outbox.is_closed() {
            return Err(self.outbox.closed_error());
        }
        let json = payload
            .encode(WireFormat::BrowserChannel)
            .ok_or(SendError::Unsupported(payload.kind()))?;
        if self.queued_app_arrays >= self.config.max_outgoing_arrays {
            return Err(SendError::QueueFull {
                limit: self.config.max_outgoing_arrays,
            });
        }
        // Control arrays count, but a session always has some waiting
        // (its `c` array until the first acknowledgement, heartbeats): the
        // queue is empty when no app array waits.
        check_queued_bytes(
            self.queued_app_arrays == 0,
            self.queued_bytes,
            json.len(),
            self.config.max_queued_bytes,
        )?;
        self.queued_app_arrays += 1;
        let seq = self.next_app_seq;
        self.next_app_seq += 1;
        self.push(json, Some(seq));
        Ok(Ticket {
            counter: Counter::Messages,
            seq,
        })
    }

    /// Queues `["stop"]`, which tells the client to stop reconnecting.
    fn stop(&mut self, _now: Instant) {
        if !self.outbox.is_closed() {
            self.push_control("stop");
        }
    }

    /// Closes the session: queued arrays are still written to the open back
    /// channel, which then ends; arrays not acknowledged by then are lost.
    fn close(&mut self, _now: Instant, reason: CloseReason) {
        if !self.outbox.close(reason) {
            return;
        }
        self.timers.stop_all();
        self.maps = WeightedOrderBuffer::new(self.maps.next_expected(), 0, 0);
        self.outbox.push(Event::Finished);
        if self.back_channel.is_some() {
            self.outbox.push(Event::Transmit);
        }
    }

    fn set_backpressure(&mut self, _now: Instant, blocked: bool) {
        self.backpressure = blocked;
        if blocked && self.awaits_acknowledgement() {
            self.request_acknowledgement();
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.outbox.is_closed() {
            return None;
        }
        let open = self.back_channel.is_some();
        let acknowledgement = self.acknowledgement_counts();
        self.timers
            .next_among(|timer| match timer {
                Timer::Heartbeat => open,
                Timer::SessionTimeout => !open,
                Timer::Acknowledgement => acknowledgement,
            })
            .map(|(_, deadline)| deadline)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.outbox.is_closed() {
            return;
        }
        if self.back_channel.is_some() {
            if self.timers.expired(Timer::Heartbeat, now) {
                self.push_control("noop");
                self.timers
                    .set(Timer::Heartbeat, now + self.config.keep_alive_interval);
                // A client with nothing to send never acknowledges the
                // heartbeats either; past a few, ask, so they cannot pile up.
                if self.outgoing.len() - self.queued_app_arrays > MAX_UNACKNOWLEDGED_CONTROL {
                    self.request_acknowledgement();
                }
            }
            // The timer keeps its deadline: a later back channel that
            // writes while the arrays still wait asks at once.
            if self.acknowledgement_counts() && self.timers.expired(Timer::Acknowledgement, now) {
                self.request_acknowledgement();
            }
        } else if self.timers.expired(Timer::SessionTimeout, now) {
            self.close(now, CloseReason::TimedOut);
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
    use serde_json::json;

    fn start() -> (Instant, Session) {
        let now = Instant::now();
        (
            now,
            Session::new(now, "sid1", None, Some(10), SessionConfig::default()),
        )
    }

    fn batch(offset: u64, texts: &[&str]) -> Option<ForwardBatch> {
        Some(ForwardBatch {
            offset,
            messages: texts
                .iter()
                .map(|t| ForwardMessage::Json(json!(t)))
                .collect(),
        })
    }

    fn events(session: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    fn texts(session: &mut Session) -> Vec<String> {
        events(session)
            .into_iter()
            .filter_map(|event| match event {
                Event::Message(Message::Json(Value::String(s))) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn data(transmit: Option<Transmit>) -> String {
        match transmit {
            Some(Transmit::Data { bytes, .. }) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    fn is_end(transmit: Option<Transmit>) -> bool {
        matches!(transmit, Some(Transmit::End(_)))
    }

    fn open(session: &mut Session, now: Instant, chunked: bool) -> ReceiverId {
        session
            .attach_back_channel(now, BackChannelEncoder::xmlhttp(), chunked, None)
            .unwrap()
    }

    #[test]
    fn the_first_array_announces_the_session() {
        let now = Instant::now();
        let mut session = Session::new(now, "abc", Some("h1"), None, SessionConfig::default());
        assert_eq!(
            session.opening_reply(now),
            "25\n[[0,[\"c\",\"abc\",\"h1\",8]]]\n"
        );
        assert_eq!(session.forward_reply(), "8\n[0,0,20]");
    }

    #[test]
    fn sends_are_written_together_and_confirmed_by_acknowledgement() {
        let (now, mut session) = start();
        session.opening_reply(now);
        let back = open(&mut session, now, true);
        let a = session.send(now, &Payload::text("a")).unwrap();
        let b = session.send(now, &Payload::json(json!({"b": 1}))).unwrap();
        assert_eq!((a.seq, b.seq), (0, 1));
        assert_eq!(
            data(session.poll_receiver(now, back)),
            "46\n[[0,[\"c\",\"sid1\",null,8]],[1,\"a\"],[2,{\"b\":1}]]\n"
        );
        assert_eq!(session.poll_receiver(now, back), None);
        events(&mut session);
        session.acknowledge(now, 1);
        assert_eq!(
            events(&mut session),
            [Event::Confirmed {
                counter: Counter::Messages,
                through: 1
            }]
        );
        session.acknowledge(now, 2);
        assert_eq!(session.outstanding_arrays(), 0);
    }

    #[test]
    fn unsent_arrays_cannot_be_acknowledged() {
        let (now, mut session) = start();
        session.opening_reply(now);
        session.send(now, &Payload::json(json!(1))).unwrap();
        session.acknowledge(now, 99);
        assert_eq!(session.outstanding_arrays(), 1);
        assert!(events(&mut session).is_empty());
    }

    #[test]
    fn a_new_back_channel_resends_unacknowledged_arrays_and_ends_the_old() {
        let (now, mut session) = start();
        session.opening_reply(now);
        session.acknowledge(now, 0);
        let first = open(&mut session, now, true);
        session.send(now, &Payload::text("x")).unwrap();
        session.send(now, &Payload::text("y")).unwrap();
        data(session.poll_receiver(now, first));
        session.acknowledge(now, 1);
        let second = open(&mut session, now, true);
        assert!(is_end(session.poll_receiver(now, first)));
        assert_eq!(
            data(session.poll_receiver(now, second)),
            "10\n[[2,\"y\"]]\n"
        );
        session.detach_back_channel(now, first);
        assert!(session.has_back_channel());
    }

    #[test]
    fn html_back_channels_start_with_a_page_and_end_with_a_script() {
        let (now, mut session) = start();
        let back = session
            .attach_back_channel(now, BackChannelEncoder::html(), false, Some("x.com"))
            .unwrap();
        assert!(data(session.poll_receiver(now, back)).contains("document.domain="));
        assert!(data(session.poll_receiver(now, back)).starts_with("<script>try{parent.m("));
        assert_eq!(
            session.poll_receiver(now, back),
            Some(Transmit::End(Bytes::from_static(
                b"<script>try{parent.d()}catch(e){}</script>\n"
            )))
        );
        assert!(!session.has_back_channel());
    }

    #[test]
    fn ci_1_and_the_chunk_limit_end_the_back_channel() {
        let (now, mut session) = start();
        let back = open(&mut session, now, false);
        data(session.poll_receiver(now, back));
        assert!(is_end(session.poll_receiver(now, back)));

        let config = SessionConfig {
            back_channel_chunk_limit: 40,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, "s", None, None, config);
        let back = open(&mut session, now, true);
        data(session.poll_receiver(now, back));
        session.send(now, &Payload::text("0123456789")).unwrap();
        data(session.poll_receiver(now, back));
        assert!(is_end(session.poll_receiver(now, back)));
    }

    #[test]
    fn forward_reply_reports_sent_but_unacknowledged_bytes() {
        let (now, mut session) = start();
        assert_eq!(session.forward_reply(), "8\n[0,-1,0]");
        session.opening_reply(now);
        session.acknowledge(now, 0);
        let back = open(&mut session, now, true);
        session.send(now, &Payload::text("ab")).unwrap();
        session.send(now, &Payload::json(json!(12))).unwrap();
        data(session.poll_receiver(now, back));
        session.send(now, &Payload::text("unsent")).unwrap();
        // JSON of the sent data list: ["ab",12] is 9 characters.
        assert_eq!(session.forward_reply(), "7\n[1,2,9]");
    }

    #[test]
    fn the_outgoing_queue_is_bounded_in_bytes_until_acknowledged() {
        let now = Instant::now();
        let config = SessionConfig {
            max_queued_bytes: 30,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, "s", None, None, config);
        let created = r#"["c","s",null,8]"#.len();
        assert_eq!(session.queued_bytes(), created);
        let too_large = Err(SendError::QueueTooLarge { limit_bytes: 30 });
        // No app array waits: one larger than the bound is queued alone.
        session.send(now, &Payload::text("x".repeat(40))).unwrap();
        assert_eq!(session.queued_bytes(), created + 42);
        assert_eq!(session.send(now, &Payload::json(json!(1))), too_large);
        // Written is not enough: the client's acknowledgement frees it.
        session.opening_reply(now);
        assert_eq!(session.send(now, &Payload::json(json!(1))), too_large);
        session.acknowledge(now, 1);
        assert_eq!(session.queued_bytes(), 0);
        for _ in 0..6 {
            session.send(now, &Payload::text("abc")).unwrap();
        }
        assert_eq!(session.queued_bytes(), 30, "at the bound exactly");
        assert_eq!(session.send(now, &Payload::json(json!(1))), too_large);
        // Control arrays are never refused, and count.
        session.stop(now);
        assert_eq!(session.queued_bytes(), 30 + r#"["stop"]"#.len());
        session.opening_reply(now);
        session.acknowledge(now, 4);
        assert_eq!(session.queued_bytes(), 3 * 5 + 8);
        session.send(now, &Payload::text("a")).unwrap();
    }

    #[test]
    fn the_outgoing_queue_is_bounded_but_control_arrays_are_not() {
        let now = Instant::now();
        let config = SessionConfig {
            max_outgoing_arrays: 2,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, "s", None, None, config);
        session.send(now, &Payload::json(json!(1))).unwrap();
        session.send(now, &Payload::json(json!(2))).unwrap();
        assert_eq!(
            session.send(now, &Payload::json(json!(3))),
            Err(SendError::QueueFull { limit: 2 })
        );
        session.stop(now);
        assert_eq!(
            session.opening_reply(now),
            "48\n[[0,[\"c\",\"s\",null,8]],[1,1],[2,2],[3,[\"stop\"]]]\n"
        );
        assert_eq!(
            session.send(now, &Payload::binary(vec![1u8])),
            Err(SendError::Unsupported("binary messages"))
        );
    }

    #[test]
    fn maps_are_released_in_order_once() {
        let (now, mut session) = start();
        session
            .handle_forward(now, Some(12), batch(2, &["c", "d"]))
            .unwrap();
        assert!(texts(&mut session).is_empty());
        session
            .handle_forward(now, Some(10), batch(0, &["a"]))
            .unwrap();
        assert_eq!(texts(&mut session), ["a"]);
        session
            .handle_forward(now, Some(11), batch(1, &["b"]))
            .unwrap();
        assert_eq!(texts(&mut session), ["b", "c", "d"]);
        // A retry that repeats maps and adds one delivers only the new one.
        session
            .handle_forward(now, Some(12), batch(2, &["c", "d", "e"]))
            .unwrap();
        assert_eq!(texts(&mut session), ["e"]);
    }

    #[test]
    fn too_many_held_maps_are_refused_without_side_effects() {
        let now = Instant::now();
        let config = SessionConfig {
            max_held_maps: 2,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, "s", None, Some(0), config);
        assert!(session
            .handle_forward(now, Some(1), batch(5, &["x", "y", "z"]))
            .is_err());
        assert_eq!(session.held_maps(), 0);
        session
            .handle_forward(now, Some(1), batch(1, &["b"]))
            .unwrap();
        assert!(texts(&mut session).is_empty());
        session
            .handle_forward(now, Some(0), batch(0, &["a"]))
            .unwrap();
        assert_eq!(texts(&mut session), ["a", "b"]);
    }

    #[test]
    fn held_maps_are_bounded_in_bytes_and_a_refusal_changes_nothing() {
        let now = Instant::now();
        let config = SessionConfig {
            max_held_bytes: 10,
            ..SessionConfig::default()
        };
        let mut session = Session::new(now, "s", None, Some(0), config);
        let heavy = Err(OrderError::Overweight { limit: 10 });
        // Maps far ahead, each small, but 12 bytes together.
        assert_eq!(
            session.handle_forward(now, Some(1), batch(5, &["abcd", "efgh", "ijkl"])),
            heavy
        );
        assert_eq!((session.held_maps(), session.held_bytes()), (0, 0));
        session
            .handle_forward(now, Some(1), batch(2, &["cc", "dddd"]))
            .unwrap();
        assert_eq!(session.held_bytes(), 6);
        // A retry of held maps adds nothing; a new one that does not fit is
        // refused, with its request number.
        assert_eq!(
            session.handle_forward(now, Some(2), batch(2, &["cc", "dddd", "eeeee"])),
            heavy
        );
        assert_eq!(session.held_bytes(), 6);
        assert_eq!(
            session.held_maps(),
            3,
            "maps 2 and 3, and request 1; request 2 was refused"
        );
        // The gap fills: in order, maps go through at any size.
        session
            .handle_forward(now, Some(0), batch(0, &["a", &"b".repeat(100)]))
            .unwrap();
        assert_eq!(texts(&mut session).len(), 4);
        assert_eq!((session.held_maps(), session.held_bytes()), (0, 0));
        session
            .handle_forward(now, Some(2), batch(2, &["cc", "dddd", "eeeee"]))
            .unwrap();
        assert_eq!(texts(&mut session), ["eeeee"]);
    }

    #[test]
    fn numbers_at_the_end_of_the_range_are_refused_not_a_panic() {
        let now = Instant::now();
        let config = SessionConfig::default();
        let mut session = Session::new(now, "s", None, Some(u64::MAX), config);
        assert_eq!(
            session.handle_forward(now, Some(u64::MAX), None),
            Err(OrderError::OutOfRange)
        );
        let (now, mut session) = start();
        session
            .handle_forward(now, Some(10), batch(u64::MAX - 1, &["a"]))
            .unwrap();
        assert_eq!(session.held_maps(), 1);
        assert_eq!(
            session.handle_forward(now, Some(11), batch(u64::MAX - 1, &["a", "b"])),
            Err(OrderError::OutOfRange)
        );
        assert_eq!(session.held_maps(), 1);
    }

    #[test]
    fn terminate_waits_for_earlier_requests() {
        let (now, mut session) = start();
        session.handle_forward(now, Some(10), None).unwrap();
        session.terminate(now, Some(12)).unwrap();
        assert_eq!(session.close_reason(), None);
        session
            .handle_forward(now, Some(11), batch(0, &["last"]))
            .unwrap();
        let events = events(&mut session);
        assert_eq!(events[0], Event::Message(Message::Json(json!("last"))));
        assert!(events.contains(&Event::Closed(CloseReason::Disconnected)));
        assert!(events.contains(&Event::Finished));
    }

    #[test]
    fn terminate_for_a_passed_request_is_due_at_once() {
        let (now, mut session) = start();
        session.handle_forward(now, Some(10), None).unwrap();
        session.handle_forward(now, Some(11), None).unwrap();
        session.terminate(now, Some(11)).unwrap();
        assert_eq!(session.close_reason(), Some(&CloseReason::Disconnected));
        let (now, mut session) = start();
        session.terminate(now, None).unwrap();
        assert!(session.close_reason().is_some());
    }

    #[test]
    fn heartbeats_go_down_an_open_back_channel_only() {
        let (now, mut session) = start();
        let back = open(&mut session, now, true);
        data(session.poll_receiver(now, back));
        let due = session.poll_timeout().unwrap();
        assert_eq!(due, now + Duration::from_secs(20));
        session.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(session.poll_receiver(due, back), None);
        session.handle_timeout(due);
        assert_eq!(
            data(session.poll_receiver(due, back)),
            "15\n[[1,[\"noop\"]]]\n"
        );
        assert_eq!(session.poll_timeout(), Some(due + Duration::from_secs(20)));
    }

    #[test]
    fn heartbeats_nobody_acknowledges_do_not_pile_up() {
        let (now, mut session) = start();
        session.opening_reply(now);
        session.acknowledge(now, 0);
        let back = open(&mut session, now, true);
        let mut at = now;
        let mut ended = false;
        for _ in 0..20 {
            at += Duration::from_secs(20);
            session.handle_timeout(at);
            if let Some(Transmit::End(_)) = session.poll_receiver(at, back) {
                ended = true;
                break;
            }
        }
        assert!(ended, "the back channel ends to ask for an acknowledgement");
        assert!(session.outstanding_arrays() <= MAX_UNACKNOWLEDGED_CONTROL + 1);
    }

    #[test]
    fn a_session_without_back_channel_times_out() {
        let (now, mut session) = start();
        session.opening_reply(now);
        let back = open(&mut session, now, true);
        let later = now + Duration::from_secs(100);
        session.detach_back_channel(later, back);
        assert_eq!(
            session.poll_timeout(),
            Some(later + Duration::from_secs(30))
        );
        session.handle_timeout(later + Duration::from_secs(29));
        assert_eq!(session.close_reason(), None);
        session.handle_timeout(later + Duration::from_secs(30));
        assert_eq!(session.close_reason(), Some(&CloseReason::TimedOut));
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn close_flushes_then_ends_the_back_channel() {
        let (now, mut session) = start();
        let back = open(&mut session, now, true);
        data(session.poll_receiver(now, back));
        session.send(now, &Payload::text("last")).unwrap();
        session.close(now, CloseReason::Closed("bye".into()));
        assert_eq!(
            data(session.poll_receiver(now, back)),
            "13\n[[1,\"last\"]]\n"
        );
        assert!(is_end(session.poll_receiver(now, back)));
        assert!(matches!(
            session.send(now, &Payload::text("late")),
            Err(SendError::Closed(CloseReason::Closed(_)))
        ));
        assert_eq!(
            session.attach_back_channel(now, BackChannelEncoder::xmlhttp(), true, None),
            None
        );
    }

    #[test]
    fn unacknowledged_arrays_end_the_back_channel_after_the_timeout() {
        let (now, mut session) = start();
        session.opening_reply(now);
        session.acknowledge(now, 0);
        let back = open(&mut session, now, true);
        // Nothing written yet: no timer for acknowledgements.
        assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(20)));
        session.send(now, &Payload::text("a")).unwrap();
        data(session.poll_receiver(now, back));
        let due = now + Duration::from_secs(1);
        assert_eq!(session.poll_timeout(), Some(due));
        session.handle_timeout(due);
        assert!(is_end(session.poll_receiver(due, back)));
        // The client's new back channel acknowledges; nothing more is due.
        session.acknowledge(due, 1);
        let next = open(&mut session, due, true);
        assert_eq!(session.poll_receiver(due, next), None);
        assert_eq!(session.poll_timeout(), Some(due + Duration::from_secs(20)));
    }

    #[test]
    fn a_back_channel_that_wrote_nothing_is_never_ended_early() {
        let (now, mut session) = start();
        session.opening_reply(now);
        session.send(now, &Payload::text("a")).unwrap();
        let back = open(&mut session, now, true);
        session.set_backpressure(now, true);
        // It resends `c` and `a`, then ends to ask for their acknowledgement.
        let chunk = data(session.poll_receiver(now, back));
        assert!(chunk.contains("\"a\""));
        assert!(is_end(session.poll_receiver(now, back)));
    }

    #[test]
    fn backpressure_ends_the_back_channel_to_ask_for_an_acknowledgement() {
        let (now, mut session) = start();
        session.opening_reply(now);
        session.acknowledge(now, 0);
        let back = open(&mut session, now, true);
        session.send(now, &Payload::text("echo")).unwrap();
        session.set_backpressure(now, true);
        data(session.poll_receiver(now, back));
        assert!(is_end(session.poll_receiver(now, back)));
        // The next back channel brings the acknowledgement and stays open.
        session.acknowledge(now, 1);
        let next = open(&mut session, now, true);
        assert_eq!(session.poll_receiver(now, next), None);
        session.set_backpressure(now, false);
        session.send(now, &Payload::text("more")).unwrap();
        data(session.poll_receiver(now, next));
        assert_eq!(session.poll_receiver(now, next), None);
    }

    #[test]
    fn each_timer_counts_only_in_its_state() {
        let (now, mut session) = start();
        assert_eq!(
            session.timer(Timer::SessionTimeout),
            Some(now + Duration::from_secs(30))
        );
        // Without a back channel the heartbeat waits; the session timeout counts.
        assert_eq!(session.poll_timeout(), session.timer(Timer::SessionTimeout));
        session.opening_reply(now);
        session.acknowledge(now, 0);
        let back = open(&mut session, now, true);
        assert_eq!(session.poll_timeout(), session.timer(Timer::Heartbeat));
        session.send(now, &Payload::text("a")).unwrap();
        data(session.poll_receiver(now, back));
        assert_eq!(
            session.timer(Timer::Acknowledgement),
            Some(now + Duration::from_secs(1))
        );
        assert_eq!(
            session.poll_timeout(),
            session.timer(Timer::Acknowledgement)
        );
        session.acknowledge(now, 1);
        assert_eq!(session.timer(Timer::Acknowledgement), None);
        session.close(now, CloseReason::Closed("bye".into()));
        assert_eq!(session.poll_timeout(), None);
        assert_eq!(session.timer(Timer::Heartbeat), None);
    }
}
