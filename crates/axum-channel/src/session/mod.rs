//! The transport-independent session API handed to the app.
//!
//! A [`Session`] is a stream of the client's messages plus ways to send,
//! close and learn about the peer; a [`SessionSender`] is its cloneable
//! sending half. Both talk to the live session through [`Link`], which the
//! one live-session driver implements for every transport.

mod delivery;
mod info;

pub use channel_protocol::{CloseReason, Message, SendError};
pub use delivery::{Closed, Delivery};
pub(crate) use info::{SessionInfo, SessionKey};

use crate::handle::ChannelHandle;
use crate::live::Services;
use bytes::Bytes;
use channel_protocol::{Payload, Ticket};
use futures::Stream;
use http::HeaderMap;
use serde_json::Value;
use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Which protocol carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
        f.write_str(match self {
            Transport::BrowserChannel => "browserchannel",
            Transport::WebSocket => "websocket",
            Transport::EventSource => "eventsource",
            Transport::SockJs => "sockjs",
        })
    }
}

/// What the session API needs of a live session, whatever its transport.
pub(crate) trait Link: Send + Sync + 'static {
    fn info(&self) -> &SessionInfo;
    /// Queues a message; the ticket names it for its delivery.
    fn send(&self, payload: &Payload) -> Result<Ticket, SendError>;
    fn ping(&self, payload: Bytes) -> Result<Ticket, SendError>;
    fn stop(&self);
    fn close(&self, reason: CloseReason);
    /// The next received message; `None` once closed and drained.
    fn poll_message(&self, cx: &mut Context<'_>) -> Poll<Option<Message>>;
    /// Resolves once `ticket` is confirmed, or with why it never will be.
    fn poll_confirmed(&self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<Result<(), SendError>>;
    /// A delivery future went away before it resolved.
    fn forget_delivery(&self, ticket: Ticket);
    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseReason>;
    fn close_reason(&self) -> Option<CloseReason>;
    /// How long deliveries wait for their confirmation by default.
    fn delivery_timeout(&self) -> Option<Duration>;
    /// What every session of the layer shares.
    fn services(&self) -> &Arc<Services>;
    /// A delivery failed (closed, timed out): for the metrics.
    fn delivery_failed(&self);
    /// The live session itself, for the transport that made it.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// Why a session could not join a room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The session has closed.
    Closed,
    /// The cluster did not confirm the membership: the session is in the
    /// room on this node, and broadcasts from other nodes reach it once the
    /// cluster's bus is back.
    Cluster(crate::cluster::ClusterError),
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Closed => f.write_str("the session has closed"),
            JoinError::Cluster(error) => write!(f, "the cluster did not confirm the join: {error}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// A cloneable handle that sends to a session from any task.
#[derive(Clone)]
pub struct SessionSender {
    link: Arc<dyn Link>,
}

impl fmt::Debug for SessionSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSender")
            .field("id", &self.id())
            .field("transport", &self.transport())
            .finish_non_exhaustive()
    }
}

impl SessionSender {
    pub(crate) fn new(link: Arc<dyn Link>) -> Self {
        Self { link }
    }

    fn info(&self) -> &SessionInfo {
        self.link.info()
    }

    fn deliver(&self, result: Result<Ticket, SendError>) -> Delivery {
        match result {
            Ok(ticket) => Delivery::waiting(self.link.clone(), ticket),
            Err(error) => Delivery::failed(error),
        }
    }

    /// The session's id: 128 random bits, as hex.
    pub fn id(&self) -> &str {
        self.info().id()
    }

    /// The protocol carrying this session.
    pub fn transport(&self) -> Transport {
        self.info().transport
    }

    /// What the authorisation hook attached to the session
    /// ([`ChannelConfig::authorize_with`](crate::ChannelConfig::authorize_with)):
    /// the authenticated user, a tenant...
    ///
    /// ```no_run
    /// # #[derive(Clone)] struct User(String);
    /// # fn run(session: axum_channel::Session) {
    /// if let Some(User(name)) = session.extensions().get::<User>() {
    ///     println!("{name} connected");
    /// }
    /// # }
    /// ```
    pub fn extensions(&self) -> &http::Extensions {
        &self.info().extensions
    }

    /// The session's tracing span (id, transport, remote address); the
    /// layer's logs about the session and its callback run in it.
    pub fn span(&self) -> &tracing::Span {
        &self.info().span
    }

    /// A handle on all the sessions and rooms of this session's layer.
    pub fn channels(&self) -> ChannelHandle {
        ChannelHandle::new(self.link.services().clone())
    }

    /// Puts the session in `room` (a session may be in many; closing takes
    /// it out of all). Resolves once the membership is in effect, on every
    /// node of a cluster.
    ///
    /// ```no_run
    /// # async fn run(session: axum_channel::Session) {
    /// session.join("lobby").await.expect("joined");
    /// session.channels().broadcast("someone joined").to("lobby").except(session.id()).send().await.ok();
    /// # }
    /// ```
    pub async fn join(&self, room: &str) -> Result<(), JoinError> {
        if self.is_closed() {
            return Err(JoinError::Closed);
        }
        let rooms = &self.link.services().rooms;
        let subscription = rooms.join(&self.link, room);
        // A session that closed meanwhile must not stay behind in the room.
        if self.is_closed() {
            rooms.leave(self.info().key(), room);
            return Err(JoinError::Closed);
        }
        // The session is a member here either way; the cluster's adapter
        // subscribes again by itself once its bus is back.
        if let Some(subscription) = subscription {
            subscription.await.map_err(JoinError::Cluster)?;
        }
        Ok(())
    }

    /// Takes the session out of `room`; true when it was in it.
    pub async fn leave(&self, room: &str) -> bool {
        self.link.services().rooms.leave(self.info().key(), room)
    }

    /// The rooms the session is in.
    pub fn rooms(&self) -> Vec<String> {
        self.link.services().rooms.rooms_of(self.info().key())
    }

    /// True when the session is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.link.services().rooms.contains(self.info().key(), room)
    }

    /// Sends a JSON message: a JSON value on BrowserChannel, its JSON text
    /// as a text message on SockJS and WebSocket (a JSON string is sent as
    /// its text), a `message` event on EventSource.
    ///
    /// It is queued at once; the returned [`Delivery`] resolves when the
    /// message has arrived (see [`Delivery`] for what that means on each
    /// transport). Dropping it does not cancel the message.
    pub fn send(&self, message: impl Into<Value>) -> Delivery {
        self.deliver(self.link.send(&Payload::json(message.into())))
    }

    /// Sends any serializable value as JSON, with the meaning of [`send`](Self::send).
    ///
    /// ```no_run
    /// # async fn run(session: axum_channel::Session) {
    /// #[derive(serde::Serialize)]
    /// struct Joined<'a> { room: &'a str, members: usize }
    /// session.send_json(&Joined { room: "lobby", members: 3 }).await.ok();
    /// # }
    /// ```
    pub fn send_json<T: serde::Serialize + ?Sized>(&self, message: &T) -> Delivery {
        match serde_json::to_value(message) {
            Ok(value) => self.send(value),
            Err(_) => Delivery::failed(SendError::Unsupported("values that are not JSON")),
        }
    }

    /// Sends text: a text message on SockJS and WebSocket, a JSON string on
    /// BrowserChannel, an event's data on EventSource.
    pub fn send_text(&self, text: impl Into<String>) -> Delivery {
        self.deliver(self.link.send(&Payload::text(text)))
    }

    /// Sends binary data (RFC 6455 WebSocket only).
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Delivery {
        self.deliver(self.link.send(&Payload::binary(data)))
    }

    /// Sends a server-sent event with an optional event type and id
    /// (EventSource only; `send` there sends a plain `message` event).
    pub fn send_event(&self, data: &str, event: Option<&str>, id: Option<&str>) -> Delivery {
        self.deliver(self.link.send(&Payload::event(
            data,
            event.map(str::to_owned),
            id.map(str::to_owned),
        )))
    }

    /// Sends a payload made once for many sessions (see
    /// [`Payload`](channel_protocol::Payload)): each wire format is encoded
    /// only the first time a session of that format needs it.
    pub fn send_payload(&self, payload: &Payload) -> Delivery {
        self.deliver(self.link.send(payload))
    }

    /// Pings the peer. On WebSocket the delivery resolves when the pong
    /// with the same payload arrives; on EventSource it writes a comment
    /// line the client ignores and resolves once written.
    pub fn ping(&self, payload: impl Into<Bytes>) -> Delivery {
        self.deliver(self.link.ping(payload.into()))
    }

    /// Asks the client to stop reconnecting (BrowserChannel `["stop"]`). The
    /// session stays open and may still receive messages.
    pub fn stop(&self) {
        self.link.stop()
    }

    /// Closes the session with a close code and reason (WebSocket and
    /// SockJS); other transports close as with [`close`](Self::close).
    pub fn close_with_code(&self, code: u16, reason: impl Into<String>) {
        self.link.close(CloseReason::ClosedWithCode {
            code,
            reason: reason.into(),
        })
    }

    /// Closes the session; messages already queued are written first.
    /// WebSocket peers get the close code 1000 with `reason`, SockJS peers
    /// `c[3000,reason]`. On SockJS an empty `reason` is sockjs-node's
    /// argument-less close: `c[1000,"Normal closure"]`, and on its raw
    /// `/websocket` endpoint the close frame 1000 `Normal closure`.
    pub fn close(&self, reason: impl Into<String>) {
        self.link.close(CloseReason::Closed(reason.into()))
    }

    /// Resolves with the reason once the session has closed.
    pub fn closed(&self) -> Closed {
        Closed::new(self.link.clone())
    }

    /// Why the session closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.link.close_reason()
    }

    /// True once the session has closed.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }
}

/// One client connection, whatever the transport underneath.
///
/// A `Session` is a [`Stream`] of the client's [`Message`]s, in the order the
/// client sent them; the stream ends when the session closes. Sending goes
/// through [`SessionSender`]'s methods (a `Session` dereferences to one), which
/// [`sender`](Session::sender) clones for other tasks.
///
/// While the app does not read, received messages wait in a bounded queue
/// (`ChannelConfig::max_incoming_messages`); once it is full the layer stops
/// reading from the client, but writes, pings and acknowledgements go on.
pub struct Session {
    sender: SessionSender,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("transport", &self.transport())
            .field("remote_addr", &self.remote_addr())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Session {
    type Target = SessionSender;

    fn deref(&self) -> &SessionSender {
        &self.sender
    }
}

impl Session {
    pub(crate) fn new(link: Arc<dyn Link>) -> Self {
        Self {
            sender: SessionSender::new(link),
        }
    }

    fn info(&self) -> &SessionInfo {
        self.sender.info()
    }

    /// The peer's address, when the server was started with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.info().remote_addr
    }

    /// The headers of the request that opened the session, without `Cookie`
    /// (SockJS sessions show only the headers sockjs-node exposes).
    pub fn headers(&self) -> &HeaderMap {
        self.info().headers()
    }

    /// The application version the client reported (BrowserChannel `CVER`).
    pub fn app_version(&self) -> Option<&str> {
        self.info().app_version.as_deref()
    }

    /// The URI of the request that opened the session (its path and query).
    pub fn uri(&self) -> &http::Uri {
        self.info().uri()
    }

    /// The WebSocket subprotocol both sides agreed on, if any; for SockJS
    /// sessions, the SockJS transport's name (`websocket`, `xhr-streaming`, ...).
    pub fn protocol(&self) -> Option<&str> {
        self.info().protocol.as_deref()
    }

    /// The last event id an EventSource client reported when it reconnected
    /// (the `Last-Event-ID` header, or the `lastEventId` query parameter
    /// some polyfills send).
    pub fn last_event_id(&self) -> Option<&str> {
        self.info().last_event_id.as_deref()
    }

    /// Receives the next message; `None` once the session has closed and every
    /// message received before has been read.
    pub async fn recv(&mut self) -> Option<Message> {
        futures::StreamExt::next(self).await
    }

    /// A handle that sends to this session from other tasks.
    pub fn sender(&self) -> SessionSender {
        self.sender.clone()
    }
}

impl Stream for Session {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.sender.link.poll_message(cx)
    }
}
