//! The sending half of a session: cloneable, usable from any task.

use super::delivery::{Closed, Delivery};
use crate::base::info::SessionInfo;
use crate::base::link::Link;
use crate::base::transport::Transport;
use crate::services::rooms::Subscription;
use crate::services::Services;
use axum_channel_cluster::ClusterError;
use axum_channel_protocol::{CloseReason, Payload, SendError, Ticket};
use bytes::Bytes;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// Why a session could not join a room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The session has closed.
    Closed,
    /// The cluster did not confirm the membership: the session is in the
    /// room on this node, and broadcasts from other nodes reach it once the
    /// cluster's bus is back.
    Cluster(ClusterError),
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
    /// What the session's layer shares: its rooms, for `join`.
    services: Arc<Services>,
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
    pub(crate) fn new(link: Arc<dyn Link>, services: Arc<Services>) -> Self {
        Self { link, services }
    }

    /// The layer's shared services (for the handle built on them).
    pub(crate) fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// The live session behind this sender.
    pub(crate) fn link(&self) -> &Arc<dyn Link> {
        &self.link
    }

    pub(crate) fn info(&self) -> &SessionInfo {
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
    /// ([`ChannelConfig::authorize`](crate::ChannelConfig::authorize)):
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
        let subscription = self.services.rooms.join(&self.link, room);
        self.joined(room, subscription).await
    }

    /// Finishes a join the rooms took: a session that closed meanwhile
    /// leaves again; otherwise waits for the cluster's subscription.
    pub(crate) async fn joined(
        &self,
        room: &str,
        subscription: Option<Subscription>,
    ) -> Result<(), JoinError> {
        // A session that closed meanwhile must not stay behind in the room.
        if self.is_closed() {
            self.services.rooms.leave(self.info().key(), room);
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
        self.services.rooms.leave(self.info().key(), room)
    }

    /// The rooms the session is in.
    pub fn rooms(&self) -> Vec<String> {
        self.services.rooms.rooms_of(self.info().key())
    }

    /// True when the session is in `room`.
    pub fn in_room(&self, room: &str) -> bool {
        self.services.rooms.contains(self.info().key(), room)
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
    /// [`Payload`](axum_channel_protocol::Payload)): each wire format is encoded
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
