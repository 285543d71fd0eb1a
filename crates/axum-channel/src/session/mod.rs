//! The transport-independent session API handed to the app.

mod delivery;
mod message;

pub use delivery::{Closed, Delivery, SendError};
pub use message::Message;

use futures::Stream;
use http::HeaderMap;
use serde_json::Value;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, watch};

/// Which protocol carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// Google's BrowserChannel, version 8 (forward channel POSTs, back channel GETs).
    BrowserChannel,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::BrowserChannel => f.write_str("browserchannel"),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The app called `close` with this reason.
    Closed(String),
    /// The client had no back channel for longer than the session timeout.
    TimedOut,
    /// The client asked to end the session (BrowserChannel `TYPE=terminate`).
    Disconnected,
    /// The client opened a new session naming this one as its old one (`OSID`).
    Reconnected,
    /// The server is shutting down.
    Shutdown,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Closed(reason) => f.write_str(reason),
            CloseReason::TimedOut => f.write_str("Timed out"),
            CloseReason::Disconnected => f.write_str("Disconnected"),
            CloseReason::Reconnected => f.write_str("Reconnected"),
            CloseReason::Shutdown => f.write_str("Server shutting down"),
        }
    }
}

/// What a transport does with what the app sends; one implementation per transport.
pub(crate) trait Outbound: Send + Sync + 'static {
    /// Queues `message`; the delivery resolves when the client confirms it.
    fn send(&self, message: Value) -> Delivery;
    /// Tells the client to stop reconnecting; the session stays open.
    fn stop(&self);
    /// Ends the session.
    fn close(&self, reason: CloseReason);
    /// Watches for the end of the session.
    fn close_watch(&self) -> watch::Receiver<Option<CloseReason>>;
}

/// What the app knows about a session's peer, fixed when the session opens.
#[derive(Debug)]
pub(crate) struct SessionInfo {
    pub(crate) id: String,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) headers: HeaderMap,
    pub(crate) app_version: Option<String>,
    pub(crate) transport: Transport,
}

/// A cloneable handle that sends to a session from any task.
#[derive(Clone)]
pub struct SessionSender {
    info: Arc<SessionInfo>,
    outbound: Arc<dyn Outbound>,
}

impl fmt::Debug for SessionSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSender")
            .field("id", &self.info.id)
            .finish_non_exhaustive()
    }
}

impl SessionSender {
    pub(crate) fn new(info: Arc<SessionInfo>, outbound: Arc<dyn Outbound>) -> Self {
        Self { info, outbound }
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Sends a JSON message. It is queued at once; the returned future
    /// resolves when the client acknowledges it, or fails if the session
    /// closes first. Dropping the future does not cancel the message.
    pub fn send(&self, message: impl Into<Value>) -> Delivery {
        self.outbound.send(message.into())
    }

    /// Asks the client to stop reconnecting (BrowserChannel `["stop"]`). The
    /// session stays open and may still receive messages.
    pub fn stop(&self) {
        self.outbound.stop()
    }

    /// Closes the session; arrays already queued are flushed first.
    pub fn close(&self, reason: impl Into<String>) {
        self.outbound.close(CloseReason::Closed(reason.into()))
    }

    /// Resolves with the reason once the session has closed.
    pub fn closed(&self) -> Closed {
        Closed::new(self.outbound.close_watch())
    }

    /// Why the session closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.outbound.close_watch().borrow().clone()
    }

    /// True once the session has closed.
    pub fn is_closed(&self) -> bool {
        self.outbound.close_watch().borrow().is_some()
    }
}

/// One client connection, whatever the transport underneath.
///
/// A `Session` is a [`Stream`] of the client's [`Message`]s, in the order the
/// client sent them; the stream ends when the session closes. Sending goes
/// through the same methods as [`SessionSender`], which
/// [`sender`](Session::sender) clones for other tasks.
pub struct Session {
    sender: SessionSender,
    incoming: mpsc::Receiver<Message>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.sender.info.id)
            .field("transport", &self.sender.info.transport)
            .field("remote_addr", &self.sender.info.remote_addr)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(sender: SessionSender, incoming: mpsc::Receiver<Message>) -> Self {
        Self { sender, incoming }
    }

    /// The session's id: 128 random bits, as hex.
    pub fn id(&self) -> &str {
        self.sender.id()
    }

    /// The peer's address, when the server was started with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.sender.info.remote_addr
    }

    /// The headers of the request that opened the session, without `Cookie`.
    pub fn headers(&self) -> &HeaderMap {
        &self.sender.info.headers
    }

    /// The application version the client reported (BrowserChannel `CVER`).
    pub fn app_version(&self) -> Option<&str> {
        self.sender.info.app_version.as_deref()
    }

    /// The protocol carrying this session.
    pub fn transport(&self) -> Transport {
        self.sender.info.transport
    }

    /// Receives the next message; `None` once the session has closed and every
    /// message received before has been read.
    pub async fn recv(&mut self) -> Option<Message> {
        self.incoming.recv().await
    }

    /// A handle that sends to this session from other tasks.
    pub fn sender(&self) -> SessionSender {
        self.sender.clone()
    }

    /// See [`SessionSender::send`].
    pub fn send(&self, message: impl Into<Value>) -> Delivery {
        self.sender.send(message)
    }

    /// See [`SessionSender::stop`].
    pub fn stop(&self) {
        self.sender.stop()
    }

    /// See [`SessionSender::close`].
    pub fn close(&self, reason: impl Into<String>) {
        self.sender.close(reason)
    }

    /// See [`SessionSender::closed`].
    pub fn closed(&self) -> Closed {
        self.sender.closed()
    }

    /// See [`SessionSender::close_reason`].
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.sender.close_reason()
    }

    /// See [`SessionSender::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Stream for Session {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.incoming.poll_recv(cx)
    }
}
