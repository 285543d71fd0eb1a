//! The session side of a connection-oriented transport (WebSocket, hixie-76):
//! the app's sends become commands for the connection task.

use crate::session::{CloseReason, Delivery, Outbound, SendError, SessionInfo};
use bytes::Bytes;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Resolves the app's future once the connection task has written the frame
/// (or received the pong).
pub(crate) type AckToken = oneshot::Sender<Result<(), SendError>>;

/// A message for the peer.
pub(crate) enum Outgoing {
    Text(String),
    Binary(Bytes),
}

/// What the app asks of the connection task.
pub(crate) enum Command {
    Send(Outgoing, AckToken),
    Ping(Bytes, AckToken),
    Close(CloseReason),
}

/// What the transport under a stream session can carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capabilities {
    pub(crate) binary: bool,
    pub(crate) ping: bool,
}

/// The app-facing half of a WebSocket connection.
pub(crate) struct StreamSession {
    pub(crate) info: Arc<SessionInfo>,
    commands: mpsc::UnboundedSender<Command>,
    /// Messages queued and not yet written; bounded by `max_queued`.
    queued: AtomicUsize,
    max_queued: usize,
    closed: watch::Sender<Option<CloseReason>>,
    capabilities: Capabilities,
}

impl StreamSession {
    pub(crate) fn new(
        info: Arc<SessionInfo>,
        max_queued: usize,
        capabilities: Capabilities,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Command>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        let session = Arc::new(Self {
            info,
            commands,
            queued: AtomicUsize::new(0),
            max_queued,
            closed: watch::Sender::new(None),
            capabilities,
        });
        (session, receiver)
    }

    /// Called by the connection task for every message it takes off the queue.
    pub(crate) fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Records the end of the session; the first reason wins.
    pub(crate) fn finish(&self, reason: CloseReason) {
        self.closed.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            true
        });
    }

    fn closed_error(&self) -> SendError {
        let reason = self.closed.borrow().clone();
        SendError::Closed(reason.unwrap_or(CloseReason::ConnectionLost))
    }

    fn enqueue(&self, message: Outgoing) -> Delivery {
        if self.closed.borrow().is_some() {
            return Delivery::failed(self.closed_error());
        }
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        if queued >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Delivery::failed(SendError::QueueFull {
                limit: self.max_queued,
            });
        }
        let (token, delivery) = Delivery::waiting();
        if self.commands.send(Command::Send(message, token)).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Delivery::failed(self.closed_error());
        }
        delivery
    }
}

impl Outbound for StreamSession {
    fn send(&self, message: Value) -> Delivery {
        let text = match message {
            Value::String(text) => text,
            other => other.to_string(),
        };
        self.enqueue(Outgoing::Text(text))
    }

    fn send_binary(&self, data: Bytes) -> Delivery {
        if !self.capabilities.binary {
            return Delivery::failed(SendError::Unsupported("binary messages"));
        }
        self.enqueue(Outgoing::Binary(data))
    }

    fn ping(&self, payload: Bytes) -> Delivery {
        if !self.capabilities.ping {
            return Delivery::failed(SendError::Unsupported("ping"));
        }
        let (token, delivery) = Delivery::waiting();
        if self.commands.send(Command::Ping(payload, token)).is_err() {
            return Delivery::failed(self.closed_error());
        }
        delivery
    }

    fn close(&self, reason: CloseReason) {
        let _ = self.commands.send(Command::Close(reason));
    }

    fn close_watch(&self) -> watch::Receiver<Option<CloseReason>> {
        self.closed.subscribe()
    }
}

/// The close code and reason sent to the peer when the server closes.
pub(crate) fn close_frame_for(reason: &CloseReason) -> (u16, String) {
    match reason {
        CloseReason::Closed(text) => (1000, text.clone()),
        CloseReason::ClosedWithCode { code, reason } | CloseReason::Failed { code, reason } => {
            (*code, reason.clone())
        }
        CloseReason::Shutdown => (1001, "Server shutting down".into()),
        CloseReason::PingTimeout => (1001, "Ping timeout".into()),
        other => (1000, other.to_string()),
    }
}

/// Fails every command still queued when the connection is gone.
pub(crate) fn fail_remaining(
    session: &StreamSession,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    reason: &CloseReason,
) {
    commands.close();
    while let Ok(command) = commands.try_recv() {
        match command {
            Command::Send(_, token) => {
                session.dequeued();
                let _ = token.send(Err(SendError::Closed(reason.clone())));
            }
            Command::Ping(_, token) => {
                let _ = token.send(Err(SendError::Closed(reason.clone())));
            }
            Command::Close(_) => {}
        }
    }
}
