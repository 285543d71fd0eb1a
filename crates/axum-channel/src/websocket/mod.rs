//! Native WebSocket sessions: the RFC 6455 handshake inside the layer (and
//! the legacy hixie-75/76 one when enabled), then one connection task per
//! session. SockJS's WebSocket transports use the same upgrade and task.

pub(crate) mod connection;
pub(crate) mod handshake;
mod hixie;
pub(crate) mod socket;

use crate::config::{remote_addr, ChannelConfig, WebSocketConfig};
use crate::live::{Clock, Live, Services};
use crate::session::{Session, SessionInfo, Transport};
use axum::body::Body;
use channel_protocol::websocket::{Framed, Session as Engine};
use futures::future::BoxFuture;
use handshake::{plain, Handshake, HandshakeOptions};
use hixie::HixieSocket;
use http::{Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use socket::{Buffers, Socket};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Serves the WebSocket endpoint of one layer.
pub(crate) struct WebSocketServer {
    config: Arc<ChannelConfig>,
    websocket: WebSocketConfig,
    services: Arc<Services>,
}

impl fmt::Debug for WebSocketServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketServer").finish_non_exhaustive()
    }
}

impl WebSocketServer {
    pub(crate) fn new(
        config: Arc<ChannelConfig>,
        websocket: WebSocketConfig,
        services: Arc<Services>,
    ) -> Self {
        Self {
            config,
            websocket,
            services,
        }
    }

    /// Answers the handshake; the session starts once the connection is upgraded.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        if request.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        let (mut parts, _body) = request.into_parts();
        let options = HandshakeOptions {
            protocols: &self.websocket.protocols,
            allowed_origins: self.websocket.allowed_origins.as_deref(),
            headers: &self.websocket.headers,
            hixie: self.websocket.hixie76,
        };
        let accepted = match handshake::accept(&mut parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal.response(),
        };
        let Some(extensions) = self.config.authorized(&parts).await else {
            return plain(StatusCode::FORBIDDEN, "Forbidden");
        };
        if self.services.registry.is_full() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }
        let mut info = SessionInfo::new(
            Transport::WebSocket,
            remote_addr(&parts),
            &parts.uri,
            &parts.headers,
        );
        info.protocol = accepted.protocol.map(std::borrow::Cow::Owned);
        info.extensions = extensions;
        let upgrade = Upgrade {
            config: self.config.clone(),
            services: self.services.clone(),
            buffers: buffers(&self.websocket, self.websocket.max_message_size),
        };
        let websocket = self.websocket.clone();
        let (on_upgrade, kind) = (accepted.on_upgrade, accepted.handshake);
        upgrade.spawn(on_upgrade, kind, info, move |now, rfc6455| {
            Engine::new(now, websocket.session(rfc6455))
        });
        accepted.response
    }
}

/// The read and write buffers of an endpoint's connections.
pub(crate) fn buffers(websocket: &WebSocketConfig, max_message_size: usize) -> Buffers {
    Buffers {
        max_message_size,
        read_buffer_size: websocket.read_buffer_size,
        write_buffer_size: websocket.write_buffer_size,
    }
}

/// What a connection needs once its HTTP connection is upgraded.
pub(crate) struct Upgrade {
    pub(crate) config: Arc<ChannelConfig>,
    pub(crate) services: Arc<Services>,
    pub(crate) buffers: Buffers,
}

/// A session ready to run on its connection.
type Opened<E> = (Arc<Live<E>>, Socket, Option<BoxFuture<'static, ()>>);

impl Upgrade {
    /// Spawns the connection task: it takes over the upgraded connection,
    /// opens the session with the engine `make` builds (told whether the
    /// framing is RFC 6455), and runs it. The opening steps live on the heap
    /// only until they are done, so an idle connection's task holds just
    /// what running the session needs.
    pub(crate) fn spawn<E, F>(
        self,
        on_upgrade: OnUpgrade,
        handshake: Handshake,
        info: SessionInfo,
        make: F,
    ) where
        E: Framed + Send + 'static,
        F: FnOnce(Instant, bool) -> E + Send + 'static,
    {
        let span = info.span.clone();
        let opening = Box::pin(self.open(on_upgrade, handshake, info, make));
        tokio::spawn(
            async move {
                if let Some((live, socket, app)) = opening.await {
                    connection::run(live, socket, app).await;
                }
            }
            .instrument(span),
        );
    }

    async fn open<E, F>(
        self,
        on_upgrade: OnUpgrade,
        handshake: Handshake,
        info: SessionInfo,
        make: F,
    ) -> Option<Opened<E>>
    where
        E: Framed + Send + 'static,
        F: FnOnce(Instant, bool) -> E,
    {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                return None;
            }
        };
        let Some(socket) = establish(TokioIo::new(upgraded), handshake, &self.buffers).await else {
            tracing::debug!("WebSocket handshake did not complete");
            return None;
        };
        let engine = make(crate::live::now(), socket.is_rfc6455());
        let Ok(live) = Live::open(info, engine, self.services.clone(), Clock::Connection) else {
            tracing::debug!("too many sessions; dropping an upgraded WebSocket");
            return None;
        };
        tracing::debug!(session = %live.info().id(), "WebSocket session opened");
        let app = self.config.handler_for(Session::new(live.clone()));
        Some((live, socket, app))
    }
}

/// The socket for an upgraded connection, once the handshake is complete
/// (hixie-76 answers a challenge first).
async fn establish(mut io: socket::Io, handshake: Handshake, buffers: &Buffers) -> Option<Socket> {
    match handshake {
        Handshake::Rfc6455 => Some(Socket::rfc6455(io, buffers).await),
        Handshake::Hixie76 { key1, key2 } => {
            hixie::answer_challenge(&mut io, &key1, &key2).await.ok()?;
            Some(Socket::Hixie(Box::new(HixieSocket::new(
                io,
                buffers.max_message_size,
            ))))
        }
        Handshake::Hixie75 => Some(Socket::Hixie(Box::new(HixieSocket::new(
            io,
            buffers.max_message_size,
        )))),
    }
}
