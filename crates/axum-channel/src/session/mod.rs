//! The transport-independent session API handed to the app.
//!
//! A [`Session`] is a stream of the client's messages plus ways to send,
//! close and learn about the peer; a [`SessionSender`] is its cloneable
//! sending half. Both talk to the live session through its `Link`, which
//! the one live-session driver implements for every transport.

mod delivery;
mod recovery;
mod sender;

pub use delivery::{Closed, Delivery};
pub use recovery::{JoinSince, Recovery};
pub use sender::{JoinError, SessionSender};

use crate::base::info::SessionInfo;
use crate::base::link::Link;
use crate::services::Services;
use axum_channel_protocol::Message;
use futures::Stream;
use http::HeaderMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
    pub(crate) fn new(link: Arc<dyn Link>, services: Arc<Services>) -> Self {
        Self {
            sender: SessionSender::new(link, services),
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
        self.sender.link().poll_message(cx)
    }
}
