//! The state of one BrowserChannel session, without IO.
//!
//! Server to client, the session queues *arrays*, each with the next array id.
//! An array stays queued until the client acknowledges it (`AID`), so a new
//! back channel can send again whatever the last one may have lost.
//!
//! Client to server, the session releases maps in map-number order, each
//! once, and processes `terminate` only after every forward channel request
//! numbered before it has arrived.

use super::forward_channel::{ForwardBatch, ForwardMessage};
use super::PROTOCOL_VERSION;
use crate::json;
use crate::order_buffer::{OrderBuffer, OrderError};
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt;

/// The bounds of one session's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Most application arrays queued and not yet acknowledged.
    pub max_outgoing_arrays: usize,
    /// Most maps (and forward channel requests) held while a gap before them fills.
    pub max_held_maps: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            max_outgoing_arrays: 4096,
            max_held_maps: 1024,
        }
    }
}

/// Why an array was not queued.
#[derive(Debug)]
pub struct QueueFull<T> {
    /// The acknowledgement token that came with the array, handed back.
    pub token: Option<T>,
    /// The bound that was reached.
    pub limit: usize,
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} arrays are waiting for acknowledgement", self.limit)
    }
}

#[derive(Debug)]
struct OutgoingArray<T> {
    id: u64,
    /// The array's data, encoded once when queued and reused on every resend.
    json: String,
    token: Option<T>,
    /// Application arrays count against the bound; control arrays do not.
    is_app: bool,
}

/// What a forward channel request released.
#[derive(Debug, Default, PartialEq)]
pub struct Received {
    /// Messages now in order, to hand to the application.
    pub messages: Vec<ForwardMessage>,
    /// True when a deferred `terminate` became due: the session must close.
    pub terminated: bool,
}

/// One BrowserChannel session's protocol state.
///
/// `T` is a token the caller attaches to an array and gets back once the
/// client acknowledges it (or when the session closes without that).
#[derive(Debug)]
pub struct SessionState<T> {
    outgoing: VecDeque<OutgoingArray<T>>,
    /// Id of the last queued array; -1 before the first.
    last_array_id: i64,
    /// Id of the last array written to a back channel; -1 before the first.
    last_sent_array_id: i64,
    /// Application arrays among `outgoing`, bounded by the limits.
    queued_app_arrays: usize,
    maps: OrderBuffer<ForwardMessage>,
    /// Forward channel request numbers; `true` marks a `terminate`.
    requests: Option<OrderBuffer<bool>>,
    limits: SessionLimits,
}

impl<T> SessionState<T> {
    /// A new session; it queues the `["c", sid, hostPrefix, 8]` array that
    /// tells the client its session id. `first_request` is the `RID` of the
    /// request that created the session.
    pub fn new(
        session_id: &str,
        host_prefix: Option<&str>,
        first_request: Option<u64>,
        limits: SessionLimits,
    ) -> Self {
        let mut state = Self {
            outgoing: VecDeque::new(),
            last_array_id: -1,
            last_sent_array_id: -1,
            queued_app_arrays: 0,
            maps: OrderBuffer::new(0, limits.max_held_maps),
            requests: first_request.map(|rid| OrderBuffer::new(rid, limits.max_held_maps)),
            limits,
        };
        let created = Value::Array(vec![
            "c".into(),
            session_id.into(),
            host_prefix.map_or(Value::Null, Value::from),
            PROTOCOL_VERSION.into(),
        ]);
        state.push(&created, None, false);
        state
    }

    fn push(&mut self, data: &Value, token: Option<T>, is_app: bool) -> u64 {
        self.last_array_id += 1;
        let id = self.last_array_id as u64;
        self.outgoing.push_back(OutgoingArray {
            id,
            json: json::to_ascii_string(data),
            token,
            is_app,
        });
        id
    }

    /// Queues an application array; returns its array id.
    pub fn queue(&mut self, data: &Value, token: Option<T>) -> Result<u64, QueueFull<T>> {
        if self.queued_app_arrays >= self.limits.max_outgoing_arrays {
            return Err(QueueFull {
                token,
                limit: self.limits.max_outgoing_arrays,
            });
        }
        self.queued_app_arrays += 1;
        Ok(self.push(data, token, true))
    }

    /// Queues the `["noop"]` heartbeat; heartbeats do not count against the bound.
    pub fn queue_noop(&mut self) -> u64 {
        self.push(&Value::Array(vec!["noop".into()]), None, false)
    }

    /// Queues `["stop"]`, which tells the client to stop reconnecting.
    pub fn queue_stop(&mut self) -> u64 {
        self.push(&Value::Array(vec!["stop".into()]), None, false)
    }

    /// The client has every array up to `last_received` (`AID`); their tokens
    /// are pushed to `acknowledged`.
    pub fn acknowledge(&mut self, last_received: i64, acknowledged: &mut Vec<T>) {
        // The client cannot acknowledge what was never sent.
        let last = last_received.min(self.last_sent_array_id);
        while let Some(front) = self.outgoing.front() {
            if front.id as i64 > last {
                break;
            }
            let array = self.outgoing.pop_front().expect("front exists");
            if array.is_app {
                self.queued_app_arrays -= 1;
            }
            acknowledged.extend(array.token);
        }
    }

    /// A new back channel replaced the old one, which may have lost what it
    /// carried: everything not yet acknowledged will be sent again.
    pub fn back_channel_opened(&mut self) {
        if let Some(front) = self.outgoing.front() {
            self.last_sent_array_id = front.id as i64 - 1;
        }
    }

    /// True when some queued array has not been written to a back channel yet.
    pub fn has_unsent(&self) -> bool {
        self.last_sent_array_id < self.last_array_id
    }

    /// Takes every unsent array as one chunk, `[[id,data],...]\n`, and marks
    /// them sent.
    pub fn take_unsent(&mut self) -> Option<String> {
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
            chunk.push_str(&array.json);
            chunk.push(']');
        }
        chunk.push_str("]\n");
        self.last_sent_array_id = self.last_array_id;
        Some(chunk)
    }

    /// The id of the last array written to a back channel (-1 if none).
    pub fn last_sent_array_id(&self) -> i64 {
        self.last_sent_array_id
    }

    /// How many arrays are waiting for acknowledgement, sent or not.
    pub fn outstanding_arrays(&self) -> usize {
        self.outgoing.len()
    }

    /// The forward channel reply, `[backChannelLive, lastSentArrayId,
    /// outstandingBytes]`: it tells the client whether to reopen its back
    /// channel. Outstanding bytes count the JSON of the arrays sent but not
    /// yet acknowledged.
    pub fn forward_channel_reply(&self, back_channel_live: bool) -> String {
        let unsent = (self.last_array_id - self.last_sent_array_id) as usize;
        let sent = self.outgoing.len() - unsent;
        let outstanding_bytes = if sent == 0 {
            0
        } else {
            let data: usize = self.outgoing.range(..sent).map(|a| a.json.len()).sum();
            data + (sent - 1) + 2
        };
        format!(
            "[{},{},{}]",
            u8::from(back_channel_live),
            self.last_sent_array_id,
            outstanding_bytes
        )
    }

    /// Takes in one forward channel request. Nothing changes when it is refused.
    pub fn receive(
        &mut self,
        request: Option<u64>,
        batch: Option<ForwardBatch>,
    ) -> Result<Received, OrderError> {
        if let Some(batch) = &batch {
            self.maps.check_run(batch.offset, batch.messages.len())?;
        }
        let mut received = Received::default();
        if let Some(rid) = request {
            received.terminated = self.note_request(rid, false)?;
        }
        if let Some(batch) = batch {
            for (seq, message) in (batch.offset..).zip(batch.messages) {
                self.maps.offer(seq, message, &mut received.messages)?;
            }
        }
        Ok(received)
    }

    /// The client asked to close the session at request number `request`;
    /// returns true when every earlier request has arrived and it must close now.
    pub fn terminate(&mut self, request: Option<u64>) -> Result<bool, OrderError> {
        match request {
            Some(rid) => self.note_request(rid, true),
            None => Ok(true),
        }
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

    /// Takes every token still waiting for acknowledgement, for a session that closes.
    pub fn drain_tokens(&mut self) -> impl Iterator<Item = T> + '_ {
        self.queued_app_arrays = 0;
        self.outgoing.drain(..).filter_map(|array| array.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session() -> SessionState<&'static str> {
        SessionState::new("sid1", None, Some(10), SessionLimits::default())
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

    fn texts(received: &Received) -> Vec<String> {
        received
            .messages
            .iter()
            .map(|m| match m {
                ForwardMessage::Json(Value::String(s)) => s.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_first_array_announces_the_session() {
        let mut state = SessionState::<()>::new("abc", Some("h1"), None, SessionLimits::default());
        assert_eq!(
            state.take_unsent().unwrap(),
            "[[0,[\"c\",\"abc\",\"h1\",8]]]\n"
        );
        assert!(!state.has_unsent());
        assert_eq!(state.take_unsent(), None);
    }

    #[test]
    fn queued_arrays_are_sent_together_and_acknowledged() {
        let mut state = session();
        state.take_unsent();
        state.queue(&json!("a"), Some("ta")).unwrap();
        state.queue(&json!({"b": 1}), Some("tb")).unwrap();
        assert_eq!(state.take_unsent().unwrap(), "[[1,\"a\"],[2,{\"b\":1}]]\n");
        let mut acked = Vec::new();
        state.acknowledge(1, &mut acked);
        assert_eq!(acked, vec!["ta"]);
        state.acknowledge(2, &mut acked);
        assert_eq!(acked, vec!["ta", "tb"]);
        assert_eq!(state.outstanding_arrays(), 0);
    }

    #[test]
    fn unsent_arrays_cannot_be_acknowledged() {
        let mut state = session();
        state.take_unsent();
        state.queue(&json!(1), Some("t")).unwrap();
        let mut acked = Vec::new();
        state.acknowledge(99, &mut acked);
        assert!(acked.is_empty());
        assert!(state.has_unsent());
    }

    #[test]
    fn a_new_back_channel_resends_unacknowledged_arrays() {
        let mut state = session();
        state.take_unsent();
        state.acknowledge(0, &mut Vec::new());
        state.queue(&json!("x"), None).unwrap();
        state.queue(&json!("y"), None).unwrap();
        state.take_unsent();
        state.acknowledge(1, &mut Vec::new());
        state.back_channel_opened();
        assert_eq!(state.take_unsent().unwrap(), "[[2,\"y\"]]\n");
    }

    #[test]
    fn forward_reply_reports_sent_but_unacknowledged_bytes() {
        let mut state = session();
        assert_eq!(state.forward_channel_reply(false), "[0,-1,0]");
        state.take_unsent();
        state.acknowledge(0, &mut Vec::new());
        state.queue(&json!("ab"), None).unwrap();
        state.queue(&json!(12), None).unwrap();
        state.take_unsent();
        state.queue(&json!("unsent"), None).unwrap();
        // JSON of the sent data list: ["ab",12] is 9 characters.
        assert_eq!(state.forward_channel_reply(true), "[1,2,9]");
    }

    #[test]
    fn the_outgoing_queue_is_bounded_but_heartbeats_are_not() {
        let limits = SessionLimits {
            max_outgoing_arrays: 2,
            max_held_maps: 4,
        };
        let mut state = SessionState::new("s", None, None, limits);
        state.queue(&json!(1), Some(1)).unwrap();
        state.queue(&json!(2), Some(2)).unwrap();
        let full = state.queue(&json!(3), Some(3)).unwrap_err();
        assert_eq!((full.token, full.limit), (Some(3), 2));
        state.queue_noop();
        state.queue_stop();
        assert_eq!(
            state.take_unsent().unwrap(),
            "[[0,[\"c\",\"s\",null,8]],[1,1],[2,2],[3,[\"noop\"]],[4,[\"stop\"]]]\n"
        );
        let mut acked = Vec::new();
        state.acknowledge(1, &mut acked);
        assert_eq!(acked, vec![1]);
        state.queue(&json!(3), Some(3)).unwrap();
        let drained: Vec<_> = state.drain_tokens().collect();
        assert_eq!(drained, vec![2, 3]);
    }

    #[test]
    fn maps_are_released_in_order_once() {
        let mut state = session();
        assert!(texts(&state.receive(Some(12), batch(2, &["c", "d"])).unwrap()).is_empty());
        assert_eq!(
            texts(&state.receive(Some(10), batch(0, &["a"])).unwrap()),
            ["a"]
        );
        assert_eq!(
            texts(&state.receive(Some(11), batch(1, &["b"])).unwrap()),
            ["b", "c", "d"]
        );
        // A retry that repeats maps and adds one delivers only the new one.
        assert_eq!(
            texts(&state.receive(Some(12), batch(2, &["c", "d", "e"])).unwrap()),
            ["e"]
        );
    }

    #[test]
    fn too_many_held_maps_are_refused_without_side_effects() {
        let limits = SessionLimits {
            max_outgoing_arrays: 8,
            max_held_maps: 2,
        };
        let mut state = SessionState::<()>::new("s", None, Some(0), limits);
        assert!(state.receive(Some(1), batch(5, &["x", "y", "z"])).is_err());
        assert_eq!(
            state
                .receive(Some(1), batch(1, &["b"]))
                .unwrap()
                .messages
                .len(),
            0
        );
        assert_eq!(
            texts(&state.receive(Some(0), batch(0, &["a"])).unwrap()),
            ["a", "b"]
        );
    }

    #[test]
    fn terminate_waits_for_earlier_requests() {
        let mut state = session();
        state.receive(Some(10), None).unwrap();
        assert_eq!(state.terminate(Some(12)), Ok(false));
        let received = state.receive(Some(11), batch(0, &["last"])).unwrap();
        assert_eq!(texts(&received), ["last"]);
        assert!(received.terminated);
    }

    #[test]
    fn terminate_for_a_passed_request_is_due_at_once() {
        let mut state = session();
        state.receive(Some(10), None).unwrap();
        state.receive(Some(11), None).unwrap();
        assert_eq!(state.terminate(Some(11)), Ok(true));
        assert_eq!(session().terminate(None), Ok(true));
    }
}
