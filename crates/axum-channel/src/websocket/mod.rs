//! Native WebSocket sessions: the RFC 6455 handshake inside the layer, and
//! the legacy hixie-75/76 handshake when enabled.

mod hixie;
mod rfc6455;
pub(crate) mod stream_session;

use crate::config::{remote_addr, ChannelConfig};
use crate::registry::Registry;
use crate::session::{Outbound, Session, SessionInfo, SessionSender, Transport};
use axum::body::Body;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
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
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.append(name, value);
        }
        self
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

/// Which handshake a request asks for.
enum Handshake {
    Rfc6455 { key: HeaderValue },
    Hixie76 { key1: String, key2: String },
    Hixie75,
}

/// Why a handshake request is refused.
enum Refusal {
    BadRequest(&'static str),
    /// A `Sec-WebSocket-Version` other than 13: 426 naming the one we speak.
    UnsupportedVersion,
}

impl Refusal {
    fn bad_request(message: &'static str) -> Self {
        Refusal::BadRequest(message)
    }

    fn response(self) -> Response<Body> {
        match self {
            Refusal::BadRequest(message) => plain(StatusCode::BAD_REQUEST, message),
            Refusal::UnsupportedVersion => {
                let mut response = plain(
                    StatusCode::UPGRADE_REQUIRED,
                    "Unsupported WebSocket version",
                );
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                response
            }
        }
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

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
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

    fn handshake_kind(&self, headers: &HeaderMap) -> Result<Handshake, Refusal> {
        let upgrade = header_str(headers, "upgrade").unwrap_or("");
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return Err(Refusal::bad_request(
                "Can \"Upgrade\" only to \"WebSocket\".",
            ));
        }
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(Refusal::bad_request("\"Connection\" must be \"Upgrade\"."));
        }
        let key1 = header_str(headers, "sec-websocket-key1");
        let key2 = header_str(headers, "sec-websocket-key2");
        let version = headers.get(header::SEC_WEBSOCKET_VERSION);
        match (version, key1, key2) {
            (Some(version), _, _) if version != "13" => Err(Refusal::UnsupportedVersion),
            (Some(_), _, _) => match headers.get(header::SEC_WEBSOCKET_KEY) {
                Some(key) => Ok(Handshake::Rfc6455 { key: key.clone() }),
                None => Err(Refusal::bad_request("Missing Sec-WebSocket-Key")),
            },
            (None, Some(key1), Some(key2)) if self.websocket.hixie76 => {
                for key in [key1, key2] {
                    if channel_protocol::hixie76::key_number(key).is_err() {
                        return Err(Refusal::bad_request("Invalid hixie-76 key"));
                    }
                }
                Ok(Handshake::Hixie76 {
                    key1: key1.to_owned(),
                    key2: key2.to_owned(),
                })
            }
            (None, None, None) if self.websocket.hixie76 => Ok(Handshake::Hixie75),
            _ => Err(Refusal::bad_request("Unsupported WebSocket version")),
        }
    }

    /// The first subprotocol of the app's list that the client offers.
    fn select_protocol(&self, headers: &HeaderMap) -> Option<String> {
        let offered: Vec<&str> = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        self.websocket
            .protocols
            .iter()
            .find(|protocol| offered.contains(&protocol.as_str()))
            .cloned()
    }

    /// Answers the handshake; the session starts once the connection is upgraded.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        if request.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        let (mut parts, _body) = request.into_parts();
        if let Some(allowed) = &self.websocket.allowed_origins {
            let origin = header_str(&parts.headers, "origin").unwrap_or("");
            if !allowed.iter().any(|allowed| allowed == origin) {
                return plain(StatusCode::FORBIDDEN, "Origin not allowed");
            }
        }
        let handshake = match self.handshake_kind(&parts.headers) {
            Ok(handshake) => handshake,
            Err(refusal) => return refusal.response(),
        };
        if !self.config.authorized(&parts).await {
            return plain(StatusCode::FORBIDDEN, "Forbidden");
        }
        if self.sessions.is_full() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }
        let protocol = self.select_protocol(&parts.headers);
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return plain(
                StatusCode::UPGRADE_REQUIRED,
                "This connection cannot be upgraded",
            );
        };

        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.extend(self.websocket.headers.clone());
        if let Some(protocol) = protocol
            .as_deref()
            .and_then(|p| HeaderValue::from_str(p).ok())
        {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        match &handshake {
            Handshake::Rfc6455 { key } => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                headers.insert(
                    header::SEC_WEBSOCKET_ACCEPT,
                    HeaderValue::from_str(&accept).expect("base64 is a valid header"),
                );
            }
            Handshake::Hixie76 { .. } | Handshake::Hixie75 => {
                let hixie76 = matches!(handshake, Handshake::Hixie76 { .. });
                let (origin_name, location_name, phrase) = if hixie76 {
                    (
                        "sec-websocket-origin",
                        "sec-websocket-location",
                        "WebSocket Protocol Handshake",
                    )
                } else {
                    (
                        "websocket-origin",
                        "websocket-location",
                        "Web Socket Protocol Handshake",
                    )
                };
                headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                if let Some(origin) = parts.headers.get(header::ORIGIN) {
                    headers.insert(HeaderName::from_static(origin_name), origin.clone());
                }
                let host = header_str(&parts.headers, "host").unwrap_or("localhost");
                let location = format!("ws://{host}{}", parts.uri);
                if let Ok(location) = HeaderValue::from_str(&location) {
                    headers.insert(HeaderName::from_static(location_name), location);
                }
                response
                    .extensions_mut()
                    .insert(hyper::ext::ReasonPhrase::from_static(phrase.as_bytes()));
            }
        }

        let mut info = SessionInfo::new(Transport::WebSocket, remote_addr(&parts), parts.headers);
        info.protocol = protocol;
        let context = Upgrade {
            config: self.config.clone(),
            websocket: self.websocket.clone(),
            sessions: self.sessions.clone(),
            info: Arc::new(info),
        };
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => context.run(TokioIo::new(upgraded), handshake).await,
                Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
            }
        });
        response
    }
}

/// What the connection task needs once the HTTP connection is upgraded.
struct Upgrade {
    config: Arc<ChannelConfig>,
    websocket: WebSocketConfig,
    sessions: Arc<Registry<dyn Outbound>>,
    info: Arc<SessionInfo>,
}

impl Upgrade {
    async fn run(self, mut io: TokioIo<hyper::upgrade::Upgraded>, handshake: Handshake) {
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
