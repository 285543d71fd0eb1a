//! Native WebSocket sessions: the RFC 6455 handshake inside the layer, and
//! the legacy hixie-75/76 handshake when enabled.

pub(crate) mod handshake;
mod hixie;
mod rfc6455;
pub(crate) mod stream_session;
pub(crate) mod text_socket;

use crate::config::{remote_addr, ChannelConfig};
use crate::registry::Registry;
use crate::session::{Outbound, Session, SessionInfo, SessionSender, Transport};
use axum::body::Body;
use handshake::{plain, Handshake, HandshakeOptions};
use http::header::HeaderMap;
use http::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use stream_session::{Capabilities, StreamSession};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig as TungsteniteConfig};
use tokio_tungstenite::WebSocketStream;

/// Settings of the native WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct WebSocketConfig {
    protocols: Vec<String>,
    max_message_size: usize,
    ping_interval: Option<Duration>,
    allowed_origins: Option<Vec<String>>,
    headers: HeaderMap,
    hixie76: bool,
    max_queued_messages: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            // faye-websocket's default: 2^26 - 1 bytes.
            max_message_size: (1 << 26) - 1,
            ping_interval: None,
            allowed_origins: None,
            headers: HeaderMap::new(),
            hixie76: false,
            max_queued_messages: 4096,
        }
    }
}

impl WebSocketConfig {
    /// The defaults: no subprotocols, 64 MiB - 1 messages, no automatic
    /// ping, any origin, hixie-76 off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subprotocols the app speaks, in order of preference; the first one
    /// the client also offers is selected.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The largest message (and frame) accepted; a larger one closes the
    /// session with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Pings the peer this often; a peer that has not answered the previous
    /// ping by the next one is closed (1001).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = Some(interval);
        self
    }

    /// Accepts handshakes only from these `Origin`s; others get 403.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a header to every handshake response. Invalid names or values are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        crate::http_util::append_header(&mut self.headers, name, value);
        self
    }

    /// The largest message accepted, in bytes.
    pub(crate) fn max_message_size_bytes(&self) -> usize {
        self.max_message_size
    }

    /// Also accepts the legacy hixie-75 and hixie-76 handshakes (off by default).
    pub fn hixie76(mut self, enabled: bool) -> Self {
        self.hixie76 = enabled;
        self
    }

    /// Most messages queued for the peer and not yet written; past it,
    /// `send` fails with `QueueFull` (default 4,096).
    pub fn max_queued_messages(mut self, messages: usize) -> Self {
        self.max_queued_messages = messages;
        self
    }
}

/// Serves the WebSocket endpoint of one layer.
pub(crate) struct WebSocketServer {
    config: Arc<ChannelConfig>,
    websocket: WebSocketConfig,
    sessions: Arc<Registry<dyn Outbound>>,
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
        sessions: Arc<Registry<dyn Outbound>>,
    ) -> Self {
        Self {
            config,
            websocket,
            sessions,
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
        if !self.config.authorized(&parts).await {
            return plain(StatusCode::FORBIDDEN, "Forbidden");
        }
        if self.sessions.is_full() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }
        let mut info = SessionInfo::new(
            Transport::WebSocket,
            remote_addr(&parts),
            parts.uri.clone(),
            parts.headers,
        );
        info.protocol = accepted.protocol;
        let context = Upgrade {
            config: self.config.clone(),
            websocket: self.websocket.clone(),
            sessions: self.sessions.clone(),
            info: Arc::new(info),
        };
        let (on_upgrade, handshake) = (accepted.on_upgrade, accepted.handshake);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => context.run(TokioIo::new(upgraded), handshake).await,
                Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
            }
        });
        accepted.response
    }
}

/// What the connection task needs once the HTTP connection is upgraded.
pub(crate) struct Upgrade {
    config: Arc<ChannelConfig>,
    websocket: WebSocketConfig,
    sessions: Arc<Registry<dyn Outbound>>,
    info: Arc<SessionInfo>,
}

impl Upgrade {
    pub(crate) fn new(
        config: Arc<ChannelConfig>,
        websocket: WebSocketConfig,
        sessions: Arc<Registry<dyn Outbound>>,
        info: Arc<SessionInfo>,
    ) -> Self {
        Self {
            config,
            websocket,
            sessions,
            info,
        }
    }

    /// Runs the session on the upgraded connection until it closes.
    pub(crate) async fn run(self, mut io: TokioIo<hyper::upgrade::Upgraded>, handshake: Handshake) {
        if let Handshake::Hixie76 { key1, key2 } = &handshake {
            if let Err(error) = hixie::answer_challenge(&mut io, key1, key2).await {
                tracing::debug!(%error, "hixie-76 handshake failed");
                return;
            }
        }
        let capabilities = match handshake {
            Handshake::Rfc6455 { .. } => Capabilities {
                binary: true,
                ping: true,
            },
            _ => Capabilities {
                binary: false,
                ping: false,
            },
        };
        let id = self.info.id.clone();
        let (session, commands) = StreamSession::new(
            self.info.clone(),
            self.websocket.max_queued_messages,
            capabilities,
        );
        let outbound: Arc<dyn Outbound> = session.clone();
        if self.sessions.insert(id.clone(), outbound.clone()).is_err() {
            tracing::debug!("too many sessions; dropping an upgraded WebSocket");
            return;
        }
        let (incoming_tx, incoming) = mpsc::channel(self.config.max_incoming_messages);
        self.config.start_handler(Session::new(
            SessionSender::new(self.info, outbound),
            incoming,
        ));
        let reason = if capabilities.binary {
            let config = TungsteniteConfig::default()
                .max_message_size(Some(self.websocket.max_message_size))
                .max_frame_size(Some(self.websocket.max_message_size));
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            rfc6455::run(
                &session,
                ws,
                commands,
                incoming_tx,
                self.websocket.ping_interval,
            )
            .await
        } else {
            hixie::run(
                &session,
                io,
                commands,
                incoming_tx,
                self.websocket.max_message_size,
            )
            .await
        };
        tracing::debug!(session = %id, %reason, "WebSocket session closed");
        session.finish(reason);
        self.sessions.remove(&id);
    }
}
