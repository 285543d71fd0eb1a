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
    /// A native WebSocket (RFC 6455, or the legacy hixie-76 draft when enabled).
    WebSocket,
    /// Server-sent events (`text/event-stream`); the client cannot send.
    EventSource,
    /// SockJS 0.3; `Session::protocol` names the SockJS transport underneath.
    SockJs,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::BrowserChannel => f.write_str("browserchannel"),
            Transport::WebSocket => f.write_str("websocket"),
            Transport::EventSource => f.write_str("eventsource"),
            Transport::SockJs => f.write_str("sockjs"),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The app called `close` with this reason.
    Closed(String),
    /// The app called `close_with_code` (WebSocket close codes).
    ClosedWithCode {
        /// The close code sent to the peer.
        code: u16,
        /// The reason sent to the peer.
        reason: String,
    },
    /// The peer closed the session; WebSocket peers may give a code and reason.
    Peer {
        /// The peer's close code, if it sent one.
        code: Option<u16>,
        /// The peer's reason, empty if none.
        reason: String,
    },
    /// The peer broke the protocol or a limit; the server closed with `code`.
    Failed {
        /// The close code sent to the peer (1002, 1007, 1009, ...).
        code: u16,
        /// What went wrong.
        reason: String,
    },
    /// The peer stopped answering pings.
    PingTimeout,
    /// The connection dropped without a closing handshake.
    ConnectionLost,
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
            CloseReason::ClosedWithCode { code, reason } => write!(f, "{code} {reason}"),
            CloseReason::Peer {
                code: Some(code),
                reason,
            } => {
                write!(f, "closed by peer: {code} {reason}")
            }
            CloseReason::Peer { code: None, .. } => f.write_str("closed by peer"),
            CloseReason::Failed { code, reason } => write!(f, "{code} {reason}"),
            CloseReason::PingTimeout => f.write_str("Ping timeout"),
            CloseReason::ConnectionLost => f.write_str("Connection lost"),
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
    /// Sends binary data, where the transport carries it.
    fn send_binary(&self, _data: bytes::Bytes) -> Delivery {
        Delivery::failed(SendError::Unsupported("binary messages"))
    }
    /// Sends a server-sent event with an event type and id.
    fn send_event(&self, _data: String, _event: Option<String>, _id: Option<String>) -> Delivery {
        Delivery::failed(SendError::Unsupported("events"))
    }
    /// Pings the peer; resolves when the matching pong arrives.
    fn ping(&self, _payload: bytes::Bytes) -> Delivery {
        Delivery::failed(SendError::Unsupported("ping"))
    }
    /// Tells the client to stop reconnecting; the session stays open.
    fn stop(&self) {}
    /// Ends the session.
    fn close(&self, reason: CloseReason);
    /// Watches for the end of the session.
    fn close_watch(&self) -> watch::Receiver<Option<CloseReason>>;
}

/// Hands `messages` to the app in order, waiting while its queue is full;
/// stops early when the session closes or the app dropped its `Session`.
pub(crate) async fn deliver(
    incoming: &mpsc::Sender<Message>,
    mut closed: watch::Receiver<Option<CloseReason>>,
    messages: impl IntoIterator<Item = Message>,
) {
    for message in messages {
        tokio::select! {
            sent = incoming.send(message) => {
                if sent.is_err() {
                    return;
                }
            }
            _ = closed.wait_for(Option::is_some) => return,
        }
    }
}

/// What the app knows about a session's peer, fixed when the session opens.
#[derive(Debug)]
pub(crate) struct SessionInfo {
    pub(crate) id: String,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) headers: HeaderMap,
    pub(crate) app_version: Option<String>,
    pub(crate) transport: Transport,
    /// The negotiated WebSocket subprotocol.
    pub(crate) protocol: Option<String>,
    /// The EventSource client's `Last-Event-ID`.
    pub(crate) last_event_id: Option<String>,
    /// The URI of the request that opened the session.
    pub(crate) uri: http::Uri,
}

impl SessionInfo {
    /// Info for a new session with a random 128-bit id.
    pub(crate) fn new(
        transport: Transport,
        remote_addr: Option<SocketAddr>,
        uri: http::Uri,
        mut headers: HeaderMap,
    ) -> Self {
        // Cookies may carry credentials; the app never sees them on a session.
        headers.remove(http::header::COOKIE);
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            remote_addr,
            headers,
            app_version: None,
            transport,
            protocol: None,
            last_event_id: None,
            uri,
        }
    }
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

    /// Sends binary data (WebSocket only).
    pub fn send_binary(&self, data: impl Into<bytes::Bytes>) -> Delivery {
        self.outbound.send_binary(data.into())
    }

    /// Sends a server-sent event with an optional event type and id
    /// (EventSource only; `send` there sends a plain `message` event).
    pub fn send_event(&self, data: &str, event: Option<&str>, id: Option<&str>) -> Delivery {
        self.outbound.send_event(
            data.to_owned(),
            event.map(str::to_owned),
            id.map(str::to_owned),
        )
    }

    /// Pings the peer. On WebSocket the future resolves when the pong with
    /// the same payload arrives; on EventSource it writes a comment line the
    /// client ignores and resolves once written.
    pub fn ping(&self, payload: impl Into<bytes::Bytes>) -> Delivery {
        self.outbound.ping(payload.into())
    }

    /// Asks the client to stop reconnecting (BrowserChannel `["stop"]`). The
    /// session stays open and may still receive messages.
    pub fn stop(&self) {
        self.outbound.stop()
    }

    /// Closes the session with a WebSocket close code and reason; other
    /// transports close as with [`close`](Self::close).
    pub fn close_with_code(&self, code: u16, reason: impl Into<String>) {
        self.outbound.close(CloseReason::ClosedWithCode {
            code,
            reason: reason.into(),
        })
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

    /// The URI of the request that opened the session (its path and query).
    pub fn uri(&self) -> &http::Uri {
        &self.sender.info.uri
    }

    /// The WebSocket subprotocol both sides agreed on, if any; for SockJS
    /// sessions, the SockJS transport's name (`websocket`, `xhr-streaming`, ...).
    pub fn protocol(&self) -> Option<&str> {
        self.sender.info.protocol.as_deref()
    }

    /// The last event id an EventSource client reported when it reconnected
    /// (the `Last-Event-ID` header, or the `lastEventId` query parameter
    /// some polyfills send).
    pub fn last_event_id(&self) -> Option<&str> {
        self.sender.info.last_event_id.as_deref()
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

    /// See [`SessionSender::send_binary`].
    pub fn send_binary(&self, data: impl Into<bytes::Bytes>) -> Delivery {
        self.sender.send_binary(data)
    }

    /// See [`SessionSender::send_event`].
    pub fn send_event(&self, data: &str, event: Option<&str>, id: Option<&str>) -> Delivery {
        self.sender.send_event(data, event, id)
    }

    /// See [`SessionSender::ping`].
    pub fn ping(&self, payload: impl Into<bytes::Bytes>) -> Delivery {
        self.sender.ping(payload)
    }

    /// See [`SessionSender::close_with_code`].
    pub fn close_with_code(&self, code: u16, reason: impl Into<String>) {
        self.sender.close_with_code(code, reason)
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
