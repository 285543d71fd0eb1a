//! A live SockJS session: the protocol state from `channel-protocol`, the
//! attached receiver, and the heartbeat and disconnect timers.

use super::receiver::Receiver;
use super::SockJsConfig;
use crate::registry::Registry;
use crate::session::{deliver, CloseReason, Delivery, Message, Outbound, SendError, SessionInfo};
use crate::timer::{lock, run_timers, Timed};
use channel_protocol::sockjs::session::{Phase, QueueError};
use channel_protocol::sockjs::{framing, Attach, SessionState};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

/// Resolves the app's `send` future once the message is written to a receiver.
type AckToken = oneshot::Sender<Result<(), SendError>>;

struct State {
    protocol: SessionState,
    /// One token per message buffered in `protocol`.
    tokens: Vec<AckToken>,
    receiver: Option<Receiver>,
    receivers_attached: u64,
    detached_since: Instant,
    last_write: Instant,
    flush_wanted: bool,
    incoming: Option<mpsc::Sender<Message>>,
    close_reason: Option<CloseReason>,
    forgotten: bool,
    /// How long the session outlives its last receiver: the disconnect
    /// delay, or nothing for WebSocket sessions, which have no next receiver.
    linger: std::time::Duration,
}

/// The outcome of attaching a receiver.
pub(crate) struct Attached {
    /// The receiver's serial; 0 when it was answered and ended at once.
    pub(crate) serial: u64,
    /// True when this receiver opened the session: start the app's callback.
    pub(crate) opened: bool,
}

/// One SockJS session.
pub(crate) struct SjSession {
    /// The registry key: the client's session id (or a random one for WebSockets).
    key: String,
    pub(crate) info: Arc<SessionInfo>,
    sockjs: Arc<SockJsConfig>,
    state: Mutex<State>,
    wake: Notify,
    closed: watch::Sender<Option<CloseReason>>,
    ingest: tokio::sync::Mutex<()>,
    registry: Weak<Registry<SjSession>>,
}

impl SjSession {
    /// A new session; its timers run in a spawned task.
    pub(crate) fn start(
        key: String,
        info: Arc<SessionInfo>,
        sockjs: Arc<SockJsConfig>,
        max_incoming: usize,
        registry: Weak<Registry<SjSession>>,
    ) -> (Arc<Self>, mpsc::Receiver<Message>) {
        let (incoming_tx, incoming_rx) = mpsc::channel(max_incoming);
        let now = Instant::now();
        let session = Arc::new(Self {
            key,
            info,
            state: Mutex::new(State {
                protocol: SessionState::new(sockjs.max_queued_messages),
                tokens: Vec::new(),
                receiver: None,
                receivers_attached: 0,
                detached_since: now,
                last_write: now,
                flush_wanted: false,
                incoming: Some(incoming_tx),
                close_reason: None,
                forgotten: false,
                linger: sockjs.disconnect_delay,
            }),
            sockjs,
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

    /// Writes a frame to the attached receiver, ending it when it is done.
    fn write_frame(&self, state: &mut State, frame: &str) {
        let Some(receiver) = state.receiver.as_mut() else {
            return;
        };
        state.last_write = Instant::now();
        if !receiver.write(frame) {
            self.end_receiver(state);
        }
    }

    fn end_receiver(&self, state: &mut State) {
        if let Some(receiver) = state.receiver.take() {
            receiver.end();
            state.protocol.detach();
            state.detached_since = Instant::now();
            self.wake.notify_one();
        }
    }

    fn resolve_tokens(state: &mut State) {
        for token in state.tokens.drain(..) {
            let _ = token.send(Ok(()));
        }
    }

    fn flush(&self, state: &mut State) {
        if state.receiver.is_none() {
            return;
        }
        if let Some(frame) = state.protocol.take_messages() {
            Self::resolve_tokens(state);
            self.write_frame(state, &frame);
        }
    }

    /// Attaches a receiving request or WebSocket.
    pub(crate) fn attach(&self, mut receiver: Receiver) -> Attached {
        let mut state = self.lock();
        if state.forgotten {
            receiver.write(&framing::close(3000, "Go away!"));
            receiver.end();
            return Attached {
                serial: 0,
                opened: false,
            };
        }
        match state.protocol.attach() {
            Attach::Busy(frames) | Attach::Closed(frames) => {
                if state.protocol.phase() == Phase::Closing {
                    // Pending messages went out with the close frame; the
                    // session lives on for another disconnect delay.
                    Self::resolve_tokens(&mut state);
                    state.detached_since = Instant::now();
                    self.wake.notify_one();
                }
                for frame in &frames {
                    if !receiver.write(frame) {
                        break;
                    }
                }
                receiver.end();
                Attached {
                    serial: 0,
                    opened: false,
                }
            }
            Attach::Attached { frames, opened } => {
                state.receivers_attached += 1;
                let serial = state.receivers_attached;
                if receiver.is_websocket() {
                    state.linger = std::time::Duration::ZERO;
                }
                receiver.serial = serial;
                state.receiver = Some(receiver);
                if frames.len() > usize::from(opened) {
                    Self::resolve_tokens(&mut state);
                }
                for frame in &frames {
                    self.write_frame(&mut state, frame);
                }
                state.last_write = Instant::now();
                self.wake.notify_one();
                Attached { serial, opened }
            }
        }
    }

    /// The client left receiver `serial` without the session ending it: as
    /// sockjs-node does, the session ends now, for `reason`.
    pub(crate) fn receiver_gone(&self, serial: u64, reason: CloseReason) {
        let current = {
            let mut state = self.lock();
            let current = state.receiver.as_ref().map(|r| r.serial) == Some(serial);
            if current {
                state.receiver = None;
                state.protocol.detach();
            }
            current
        };
        if current {
            self.forget(reason);
        }
    }

    /// Hands received messages to the app, in order; ignored unless open.
    pub(crate) async fn receive(&self, messages: Vec<String>) {
        let _in_order = self.ingest.lock().await;
        let incoming = {
            let state = self.lock();
            if state.protocol.phase() != Phase::Open || state.close_reason.is_some() {
                return;
            }
            state.incoming.clone()
        };
        if let Some(incoming) = incoming {
            let messages = messages.into_iter().map(Message::Text);
            deliver(&incoming, self.closed.subscribe(), messages).await;
        }
    }

    /// Closes the session with a close frame. It stays known for one more
    /// disconnect delay, answering receivers with the same frame.
    pub(crate) fn close_with(&self, code: u16, text: &str, reason: CloseReason) {
        let tokens = {
            let mut state = self.lock();
            if state.close_reason.is_some() || state.forgotten {
                return;
            }
            self.flush(&mut state);
            if let Some(frame) = state.protocol.close(code, text) {
                self.write_frame(&mut state, &frame);
                self.end_receiver(&mut state);
            }
            state.close_reason = Some(reason.clone());
            state.incoming = None;
            std::mem::take(&mut state.tokens)
        };
        tracing::debug!(session = %self.info.id, %reason, "SockJS session closed");
        for token in tokens {
            let _ = token.send(Err(SendError::Closed(reason.clone())));
        }
        self.closed.send_replace(Some(reason));
        self.wake.notify_one();
    }

    /// Forgets the session: it is gone for good.
    pub(crate) fn forget(&self, reason: CloseReason) {
        let (tokens, reason) = {
            let mut state = self.lock();
            if state.forgotten {
                return;
            }
            state.forgotten = true;
            self.end_receiver(&mut state);
            state.incoming = None;
            let reason = state.close_reason.get_or_insert(reason).clone();
            (std::mem::take(&mut state.tokens), reason)
        };
        for token in tokens {
            let _ = token.send(Err(SendError::Closed(reason.clone())));
        }
        if self.closed.borrow().is_none() {
            tracing::debug!(session = %self.info.id, %reason, "SockJS session ended");
            self.closed.send_replace(Some(reason));
        }
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(&self.key);
        }
        self.wake.notify_one();
    }
}

/// The close frame's code and reason for an app-side close.
fn close_frame_for(reason: &CloseReason) -> (u16, String) {
    match reason {
        CloseReason::Closed(text) if text.is_empty() => (3000, "Go away!".into()),
        CloseReason::Closed(text) => (3000, text.clone()),
        CloseReason::ClosedWithCode { code, reason } => (*code, reason.clone()),
        other => (3000, other.to_string()),
    }
}

impl Outbound for SjSession {
    fn send(&self, message: Value) -> Delivery {
        let text = match message {
            Value::String(text) => text,
            other => other.to_string(),
        };
        let mut state = self.lock();
        if let Some(reason) = &state.close_reason {
            return Delivery::failed(SendError::Closed(reason.clone()));
        }
        match state.protocol.queue(text) {
            Ok(()) => {
                let (token, delivery) = Delivery::waiting();
                state.tokens.push(token);
                state.flush_wanted = true;
                self.wake.notify_one();
                delivery
            }
            Err(QueueError::Full { limit }) => Delivery::failed(SendError::QueueFull { limit }),
            Err(QueueError::NotOpen) => {
                Delivery::failed(SendError::Closed(CloseReason::ConnectionLost))
            }
        }
    }

    fn close(&self, reason: CloseReason) {
        let (code, text) = close_frame_for(&reason);
        self.close_with(code, &text, reason);
    }

    fn close_watch(&self) -> watch::Receiver<Option<CloseReason>> {
        self.closed.subscribe()
    }
}

impl Timed for SjSession {
    fn wake(&self) -> &Notify {
        &self.wake
    }

    /// Heartbeats while a receiver is attached, the disconnect delay while
    /// none is; flushes messages that `send` queued meanwhile.
    fn next_deadline(&self) -> Option<Instant> {
        let mut state = self.lock();
        if state.forgotten {
            return None;
        }
        if std::mem::take(&mut state.flush_wanted) {
            self.flush(&mut state);
        }
        Some(match state.receiver {
            Some(_) => state.last_write + self.sockjs.heartbeat_delay,
            None => state.detached_since + state.linger,
        })
    }

    fn on_deadline(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        if state.receiver.is_some() {
            if now >= state.last_write + self.sockjs.heartbeat_delay {
                self.write_frame(&mut state, framing::HEARTBEAT);
            }
        } else if now >= state.detached_since + state.linger {
            drop(state);
            self.forget(CloseReason::TimedOut);
        }
    }
}
