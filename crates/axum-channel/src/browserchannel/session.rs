//! A live BrowserChannel session: the protocol state machine from
//! `channel-protocol`, the current back channel, and the timers.

use super::back_channel::{back_channel_body, BackChannel};
use crate::config::ChannelConfig;
use crate::registry::Registry;
use crate::session::{deliver, CloseReason, Delivery, Message, Outbound, SendError, SessionInfo};
use crate::timer::{lock, run_timers, Timed};
use axum::body::Body;
use channel_protocol::browserchannel::{
    BackChannelEncoder, ForwardBatch, ForwardMessage, SessionLimits, SessionState,
};
use channel_protocol::OrderError;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

/// Resolves the app's `send` future when the client acknowledges the array.
type AckToken = oneshot::Sender<Result<(), SendError>>;

struct State {
    protocol: SessionState<AckToken>,
    back_channel: Option<BackChannel>,
    back_channels_opened: u64,
    /// When the last back channel went away; the session times out from here.
    no_back_channel_since: Instant,
    heartbeat_due: Instant,
    /// Set by `send`: the driver writes queued arrays on its next turn, so a
    /// burst of sends leaves in one chunk.
    flush_wanted: bool,
    incoming: Option<mpsc::Sender<Message>>,
    close_reason: Option<CloseReason>,
}

/// One BrowserChannel session, shared by its HTTP requests and its driver task.
pub(crate) struct BcSession {
    pub(crate) info: Arc<SessionInfo>,
    config: Arc<ChannelConfig>,
    state: Mutex<State>,
    /// Wakes the driver task when it has work: a flush, a new deadline, a close.
    wake: Notify,
    closed: watch::Sender<Option<CloseReason>>,
    /// Serializes delivery to the app so forward channel requests handled at
    /// the same time cannot reorder messages.
    ingest: tokio::sync::Mutex<()>,
    registry: Weak<Registry<BcSession>>,
}

impl BcSession {
    /// A new session that has queued its `c` array; the driver task is spawned.
    pub(crate) fn start(
        info: Arc<SessionInfo>,
        config: Arc<ChannelConfig>,
        host_prefix: Option<&str>,
        first_request: Option<u64>,
        registry: Weak<Registry<BcSession>>,
    ) -> (Arc<Self>, mpsc::Receiver<Message>) {
        let limits = SessionLimits {
            max_outgoing_arrays: config.max_outgoing_arrays,
            max_held_maps: config.max_held_maps,
        };
        let protocol = SessionState::new(&info.id, host_prefix, first_request, limits);
        let (incoming_tx, incoming_rx) = mpsc::channel(config.max_incoming_messages);
        let now = Instant::now();
        let session = Arc::new(Self {
            info,
            state: Mutex::new(State {
                protocol,
                back_channel: None,
                back_channels_opened: 0,
                no_back_channel_since: now,
                heartbeat_due: now + config.keep_alive_interval,
                flush_wanted: false,
                incoming: Some(incoming_tx),
                close_reason: None,
            }),
            config,
            wake: Notify::new(),
            closed: watch::Sender::new(None),
            ingest: tokio::sync::Mutex::new(()),
            registry,
        });
        tokio::spawn(run_timers(session.clone()));
        (session, incoming_rx)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().close_reason.is_some()
    }

    /// Writes every unsent array to the back channel, and ends the back
    /// channel when it is not chunked or has carried enough bytes.
    fn flush(&self, state: &mut State) {
        let Some(back_channel) = state.back_channel.as_mut() else {
            return;
        };
        let Some(chunk) = state.protocol.take_unsent() else {
            return;
        };
        let written = back_channel.write_chunk(&chunk);
        if !written
            || !back_channel.chunked
            || back_channel.bytes_sent > self.config.back_channel_chunk_limit
        {
            self.end_back_channel(state);
        }
    }

    fn end_back_channel(&self, state: &mut State) {
        if let Some(back_channel) = state.back_channel.take() {
            back_channel.end();
            state.no_back_channel_since = Instant::now();
            self.wake.notify_one();
        }
    }

    /// Acknowledges every array up to `aid` and resolves their `send` futures.
    pub(crate) fn acknowledge(&self, aid: i64) {
        let mut acknowledged = Vec::new();
        self.lock().protocol.acknowledge(aid, &mut acknowledged);
        for token in acknowledged {
            let _ = token.send(Ok(()));
        }
    }

    /// The reply to the request that created the session: every queued
    /// array, starting with `c`, as one length-prefixed chunk.
    pub(crate) fn opening_reply(&self) -> String {
        let mut state = self.lock();
        let chunk = state.protocol.take_unsent().unwrap_or_default();
        // The opening reply serves as the first, unchunked back channel.
        state.no_back_channel_since = Instant::now();
        BackChannelEncoder::xmlhttp().chunk(&chunk)
    }

    /// The forward channel reply, `[backChannelLive, lastSentArrayId, outstandingBytes]`.
    pub(crate) fn forward_reply(&self) -> String {
        let state = self.lock();
        let reply = state
            .protocol
            .forward_channel_reply(state.back_channel.is_some());
        BackChannelEncoder::xmlhttp().chunk(&reply)
    }

    /// Opens a new back channel, replacing any other, and re-sends whatever
    /// the client has not acknowledged. `None` when the session has closed.
    pub(crate) fn open_back_channel(
        self: &Arc<Self>,
        encoder: BackChannelEncoder,
        chunked: bool,
        domain: Option<&str>,
    ) -> Option<Body> {
        let mut state = self.lock();
        if state.close_reason.is_some() {
            return None;
        }
        self.end_back_channel(&mut state);
        state.back_channels_opened += 1;
        let serial = state.back_channels_opened;
        let (back_channel, receiver) = BackChannel::open(serial, encoder, chunked, domain);
        state.back_channel = Some(back_channel);
        state.protocol.back_channel_opened();
        state.heartbeat_due = Instant::now() + self.config.keep_alive_interval;
        self.flush(&mut state);
        self.wake.notify_one();
        Some(back_channel_body(receiver, Arc::downgrade(self), serial))
    }

    /// The client went away from back channel `serial`; unless a newer one
    /// replaced it, the session timeout starts.
    pub(crate) fn back_channel_gone(&self, serial: u64) {
        let mut state = self.lock();
        if state.back_channel.as_ref().map(|b| b.serial) == Some(serial) {
            state.back_channel = None;
            state.no_back_channel_since = Instant::now();
            self.wake.notify_one();
        }
    }

    /// Takes in one forward channel request and hands its maps to the app in
    /// order. Returns true when the session closed because of a deferred
    /// `terminate`. Nothing is delivered when the request is refused.
    pub(crate) async fn receive_forward(
        &self,
        request: Option<u64>,
        batch: Option<ForwardBatch>,
    ) -> Result<(), OrderError> {
        let _in_order = self.ingest.lock().await;
        let (received, incoming) = {
            let mut state = self.lock();
            if state.close_reason.is_some() {
                return Ok(());
            }
            let received = state.protocol.receive(request, batch)?;
            (received, state.incoming.clone())
        };
        if let Some(incoming) = incoming {
            let messages = received.messages.into_iter().map(|message| match message {
                ForwardMessage::Json(value) => Message::Json(value),
                ForwardMessage::Map(map) => Message::Map(map),
            });
            deliver(&incoming, self.closed.subscribe(), messages).await;
        }
        if received.terminated {
            self.close_with(CloseReason::Disconnected);
        }
        Ok(())
    }

    /// The client's `TYPE=terminate` at request number `request`.
    pub(crate) fn terminate(&self, request: Option<u64>) -> Result<(), OrderError> {
        let due = self.lock().protocol.terminate(request)?;
        if due {
            self.close_with(CloseReason::Disconnected);
        }
        Ok(())
    }

    /// Closes the session: queued arrays are flushed, the back channel ends,
    /// unacknowledged sends fail, and the session is forgotten.
    pub(crate) fn close_with(&self, reason: CloseReason) {
        let tokens: Vec<AckToken> = {
            let mut state = self.lock();
            if state.close_reason.is_some() {
                return;
            }
            self.flush(&mut state);
            self.end_back_channel(&mut state);
            state.incoming = None;
            state.close_reason = Some(reason.clone());
            state.protocol.drain_tokens().collect()
        };
        tracing::debug!(session = %self.info.id, %reason, "session closed");
        for token in tokens {
            let _ = token.send(Err(SendError::Closed(reason.clone())));
        }
        self.closed.send_replace(Some(reason));
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(&self.info.id);
        }
        self.wake.notify_one();
    }
}

impl Outbound for BcSession {
    fn send(&self, message: Value) -> Delivery {
        let mut state = self.lock();
        if let Some(reason) = &state.close_reason {
            return Delivery::failed(SendError::Closed(reason.clone()));
        }
        let (token, delivery) = Delivery::waiting();
        match state.protocol.queue(&message, Some(token)) {
            Ok(_) => {
                state.flush_wanted = true;
                self.wake.notify_one();
                delivery
            }
            Err(full) => Delivery::failed(SendError::QueueFull { limit: full.limit }),
        }
    }

    fn stop(&self) {
        let mut state = self.lock();
        if state.close_reason.is_none() {
            state.protocol.queue_stop();
            state.flush_wanted = true;
            self.wake.notify_one();
        }
    }

    fn close(&self, reason: CloseReason) {
        self.close_with(reason);
    }

    fn close_watch(&self) -> watch::Receiver<Option<CloseReason>> {
        self.closed.subscribe()
    }
}

impl Timed for BcSession {
    fn wake(&self) -> &Notify {
        &self.wake
    }

    /// Heartbeats while a back channel is open, the session timeout while
    /// none is; flushes arrays that `send` queued meanwhile.
    fn next_deadline(&self) -> Option<Instant> {
        let mut state = self.lock();
        if state.close_reason.is_some() {
            return None;
        }
        if std::mem::take(&mut state.flush_wanted) {
            self.flush(&mut state);
        }
        Some(match state.back_channel {
            Some(_) => state.heartbeat_due,
            None => state.no_back_channel_since + self.config.session_timeout,
        })
    }

    fn on_deadline(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        if state.back_channel.is_some() {
            if now >= state.heartbeat_due {
                state.protocol.queue_noop();
                state.heartbeat_due = now + self.config.keep_alive_interval;
                self.flush(&mut state);
            }
        } else if now >= state.no_back_channel_since + self.config.session_timeout {
            drop(state);
            tracing::debug!(session = %self.info.id, "session timed out");
            self.close_with(CloseReason::TimedOut);
        }
    }
}
