//! SockJS 0.3 over HTTP and WebSocket, as sockjs-node serves it: `/info`,
//! the iframe page, and the websocket, xhr, xhr_streaming, eventsource,
//! htmlfile and jsonp transports, plus a raw WebSocket.

mod http;
mod receiver;
mod session;

use crate::config::{remote_addr, ChannelConfig};
use crate::http_util::{read_body, BodyError};
use crate::registry::Registry;
use crate::session::{CloseReason, Outbound, Session, SessionInfo, SessionSender, Transport};
use crate::websocket::handshake::{self, HandshakeOptions};
use crate::websocket::text_socket::{Received, TextSocket};
use crate::websocket::{Upgrade, WebSocketConfig};
use ::http::header::{self, HeaderMap, HeaderValue};
use ::http::request::Parts;
use ::http::{Method, Request, Response, StatusCode};
use axum::body::Body;
use channel_protocol::sockjs::payload::{self, WebSocketPayload};
use channel_protocol::sockjs::{self as protocol, receiver as encodings, Endpoint, TransportKind};
use hyper_util::rt::TokioIo;
use receiver::{Receiver, Sink, WsOut};
use session::SjSession;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Makes the `Set-Cookie` value for a request, or `None` to set none.
pub type JSessionIdFn = Arc<dyn Fn(&HeaderMap) -> Option<String> + Send + Sync>;

/// Whether and how replies set the `JSESSIONID` cookie.
#[derive(Clone, Default)]
pub(crate) enum JSessionId {
    #[default]
    Off,
    /// `JSESSIONID=<the request's, or dummy>; path=/`.
    Dummy,
    Custom(JSessionIdFn),
}

/// Settings of a SockJS endpoint, with sockjs-node's option names and defaults.
#[derive(Clone)]
pub struct SockJsConfig {
    pub(crate) sockjs_url: String,
    pub(crate) response_limit: usize,
    pub(crate) websocket: bool,
    pub(crate) jsessionid: JSessionId,
    pub(crate) heartbeat_delay: Duration,
    pub(crate) disconnect_delay: Duration,
    pub(crate) disable_cors: bool,
    pub(crate) max_queued_messages: usize,
    pub(crate) max_message_size: usize,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        Self {
            sockjs_url: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js".into(),
            response_limit: 128 * 1024,
            websocket: true,
            jsessionid: JSessionId::Off,
            heartbeat_delay: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            disable_cors: false,
            max_queued_messages: 4096,
            max_message_size: 1024 * 1024,
        }
    }
}

impl fmt::Debug for SockJsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockJsConfig")
            .field("sockjs_url", &self.sockjs_url)
            .field("response_limit", &self.response_limit)
            .field("websocket", &self.websocket)
            .field("heartbeat_delay", &self.heartbeat_delay)
            .field("disconnect_delay", &self.disconnect_delay)
            .field("disable_cors", &self.disable_cors)
            .finish_non_exhaustive()
    }
}

impl SockJsConfig {
    /// sockjs-node's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The SockJS client the iframe page loads (`sockjs_url`).
    pub fn sockjs_url(mut self, url: impl Into<String>) -> Self {
        self.sockjs_url = url.into();
        self
    }

    /// Bytes after which a streaming response ends and the client opens a
    /// new one (`response_limit`, default 128 KiB).
    pub fn response_limit(mut self, bytes: usize) -> Self {
        self.response_limit = bytes;
        self
    }

    /// Serves the `websocket` transports (default on). Off, they answer 404
    /// and `/info` says `websocket: false`, so clients fall back.
    pub fn websocket(mut self, enabled: bool) -> Self {
        self.websocket = enabled;
        self
    }

    /// Sets `JSESSIONID=dummy; path=/` (or the request's own value) on
    /// transport replies, for load balancers with sticky sessions (`jsessionid`).
    pub fn jsessionid(mut self, enabled: bool) -> Self {
        self.jsessionid = if enabled {
            JSessionId::Dummy
        } else {
            JSessionId::Off
        };
        self
    }

    /// Makes the `Set-Cookie` value of transport replies from the request's headers.
    pub fn jsessionid_with<F>(mut self, make: F) -> Self
    where
        F: Fn(&HeaderMap) -> Option<String> + Send + Sync + 'static,
    {
        self.jsessionid = JSessionId::Custom(Arc::new(make));
        self
    }

    /// How long a receiver may go without a frame before an `h` heartbeat (default 25 s).
    pub fn heartbeat_delay(mut self, delay: Duration) -> Self {
        self.heartbeat_delay = delay;
        self
    }

    /// How long a session without a receiver lives (default 5 s).
    pub fn disconnect_delay(mut self, delay: Duration) -> Self {
        self.disconnect_delay = delay;
        self
    }

    /// Leaves out the CORS headers (`disable_cors`).
    pub fn disable_cors(mut self, disabled: bool) -> Self {
        self.disable_cors = disabled;
        self
    }

    /// Most messages buffered for a client between its requests (default 4,096).
    pub fn max_queued_messages(mut self, messages: usize) -> Self {
        self.max_queued_messages = messages;
        self
    }

    /// Largest WebSocket message accepted (default 1 MiB); send bodies are
    /// bounded by the layer's `max_post_body`.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
}

/// The headers sockjs-node exposes on a connection (and `origin`); others,
/// cookies above all, stay hidden.
const EXPOSED_HEADERS: [&str; 12] = [
    "referer",
    "x-client-ip",
    "x-forwarded-for",
    "x-cluster-client-ip",
    "via",
    "x-real-ip",
    "x-forwarded-proto",
    "x-ssl",
    "host",
    "user-agent",
    "accept-language",
    "origin",
];

fn exposed_headers(headers: &HeaderMap) -> HeaderMap {
    let mut exposed = HeaderMap::new();
    for name in EXPOSED_HEADERS {
        for value in headers.get_all(name) {
            exposed.append(header::HeaderName::from_static(name), value.clone());
        }
    }
    exposed
}

/// Serves one SockJS prefix.
pub(crate) struct SockJsServer {
    config: Arc<ChannelConfig>,
    sockjs: Arc<SockJsConfig>,
    sessions: Arc<Registry<SjSession>>,
    /// Raw WebSocket sessions, shared with the layer's other stream sessions.
    streams: Arc<Registry<dyn Outbound>>,
}

impl fmt::Debug for SockJsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockJsServer")
            .field("sockjs", &self.sockjs)
            .field("sessions", &self.sessions)
            .finish()
    }
}

fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

impl SockJsServer {
    pub(crate) fn new(
        config: Arc<ChannelConfig>,
        sockjs: SockJsConfig,
        streams: Arc<Registry<dyn Outbound>>,
    ) -> Self {
        let sessions = Arc::new(Registry::new(config.max_sessions));
        Self {
            config,
            sockjs: Arc::new(sockjs),
            sessions,
            streams,
        }
    }

    pub(crate) fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn close_all(&self) {
        for session in self.sessions.all() {
            session.close(CloseReason::Shutdown);
            session.forget(CloseReason::Shutdown);
        }
    }

    /// Answers one request; `sub_path` is the path after the prefix.
    pub(crate) async fn handle(&self, request: Request<Body>, sub_path: &str) -> Response<Body> {
        let method = request.method().clone();
        let (parts, body) = request.into_parts();
        match protocol::path::endpoint(sub_path) {
            Endpoint::Welcome => match method {
                Method::GET => http::reply(StatusCode::OK, http::PLAIN, "Welcome to SockJS!\n"),
                _ => http::method_not_allowed("GET"),
            },
            Endpoint::Info => match method {
                Method::GET => http::info(&parts.headers, &self.sockjs),
                Method::OPTIONS => http::preflight(&parts.headers, &self.sockjs, "OPTIONS, GET"),
                _ => http::method_not_allowed("OPTIONS, GET"),
            },
            Endpoint::Iframe => match method {
                Method::GET => http::iframe(&parts.headers, &self.sockjs),
                _ => http::method_not_allowed("GET"),
            },
            Endpoint::RawWebSocket if !self.sockjs.websocket => http::not_found(),
            Endpoint::RawWebSocket => match method {
                Method::GET => self.raw_websocket(parts).await,
                _ => http::method_not_allowed("GET"),
            },
            Endpoint::Transport { session, kind } => {
                self.transport(method, parts, body, session, kind).await
            }
            Endpoint::NotFound => http::not_found(),
        }
    }

    async fn transport(
        &self,
        method: Method,
        parts: Parts,
        body: Body,
        session: String,
        kind: TransportKind,
    ) -> Response<Body> {
        use TransportKind::*;
        let (allowed, allow) = match kind {
            WebSocket | EventSource | HtmlFile | JsonpPolling => (method == Method::GET, "GET"),
            XhrPolling | XhrStreaming | XhrSend => (
                method == Method::POST || method == Method::OPTIONS,
                "OPTIONS, POST",
            ),
            JsonpSend => (method == Method::POST, "POST"),
        };
        if kind == WebSocket && !self.sockjs.websocket {
            return http::not_found();
        }
        if !allowed {
            return http::method_not_allowed(allow);
        }
        let mut response = if method == Method::OPTIONS {
            http::preflight(&parts.headers, &self.sockjs, "OPTIONS, POST")
        } else {
            match kind {
                WebSocket => return self.sockjs_websocket(parts, session).await,
                XhrSend | JsonpSend => self.send(&parts, body, &session, kind).await,
                _ => self.receive(&parts, session, kind).await,
            }
        };
        http::jsessionid(response.headers_mut(), &parts.headers, &self.sockjs);
        response
    }

    /// The session `id`, created if this request may open it.
    async fn session_for(
        &self,
        parts: &Parts,
        id: &str,
        kind: TransportKind,
    ) -> Result<(Arc<SjSession>, Option<mpsc::Receiver<crate::Message>>), Response<Body>> {
        if let Some(session) = self.sessions.get(id) {
            return Ok((session, None));
        }
        if !self.config.authorized(parts).await {
            return Err(http::reply(StatusCode::FORBIDDEN, http::PLAIN, "Forbidden"));
        }
        if self.sessions.is_full() {
            return Err(http::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                http::PLAIN,
                "Too many sessions",
            ));
        }
        let (session, incoming) = self.new_session(parts, id.to_owned(), kind);
        if self
            .sessions
            .insert(id.to_owned(), session.clone())
            .is_err()
        {
            return Err(http::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                http::PLAIN,
                "Too many sessions",
            ));
        }
        Ok((session, Some(incoming)))
    }

    fn new_session(
        &self,
        parts: &Parts,
        key: String,
        kind: TransportKind,
    ) -> (Arc<SjSession>, mpsc::Receiver<crate::Message>) {
        let mut info = SessionInfo::new(
            Transport::SockJs,
            remote_addr(parts),
            parts.uri.clone(),
            exposed_headers(&parts.headers),
        );
        info.protocol = Some(kind.name().to_owned());
        SjSession::start(
            key,
            Arc::new(info),
            self.sockjs.clone(),
            self.config.max_incoming_messages,
            Arc::downgrade(&self.sessions),
        )
    }

    fn start_app(
        &self,
        session: &Arc<SjSession>,
        incoming: Option<mpsc::Receiver<crate::Message>>,
        opened: bool,
    ) {
        if let (true, Some(incoming)) = (opened, incoming) {
            let outbound: Arc<dyn Outbound> = session.clone();
            self.config.start_handler(Session::new(
                SessionSender::new(session.info.clone(), outbound),
                incoming,
            ));
        }
    }

    /// The receiving transports: xhr, xhr_streaming, eventsource, htmlfile, jsonp.
    async fn receive(&self, parts: &Parts, id: String, kind: TransportKind) -> Response<Body> {
        let callback = match kind {
            TransportKind::HtmlFile | TransportKind::JsonpPolling => {
                let Some(callback) =
                    query_param(parts, "c").or_else(|| query_param(parts, "callback"))
                else {
                    return http::reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        http::PLAIN,
                        "\"callback\" parameter required",
                    );
                };
                let max = (kind == TransportKind::JsonpPolling).then_some(32);
                if !encodings::valid_callback(&callback, max) {
                    return http::reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        http::PLAIN,
                        "invalid \"callback\" parameter",
                    );
                }
                callback
            }
            _ => String::new(),
        };
        let (session, incoming) = match self.session_for(parts, &id, kind).await {
            Ok(found) => found,
            Err(response) => return response,
        };

        let (writer, frames) = mpsc::unbounded_channel();
        let (content_type, prelude, encoding, polling) = match kind {
            TransportKind::XhrPolling => (
                http::JAVASCRIPT,
                String::new(),
                encodings::ReceiverEncoding::Xhr,
                true,
            ),
            TransportKind::XhrStreaming => (
                http::JAVASCRIPT,
                encodings::xhr_streaming_prelude(),
                encodings::ReceiverEncoding::Xhr,
                false,
            ),
            TransportKind::EventSource => (
                "text/event-stream",
                encodings::EVENTSOURCE_PRELUDE.to_owned(),
                encodings::ReceiverEncoding::EventSource,
                false,
            ),
            TransportKind::HtmlFile => (
                http::HTML,
                encodings::htmlfile_prelude(&callback),
                encodings::ReceiverEncoding::HtmlFile,
                false,
            ),
            _ => (
                http::JAVASCRIPT,
                String::new(),
                encodings::ReceiverEncoding::Jsonp { callback },
                true,
            ),
        };
        if !prelude.is_empty() {
            let _ = writer.send(bytes::Bytes::from(prelude));
        }
        let attached = session.attach(Receiver::new(Sink::Http {
            writer,
            encoding,
            bytes_sent: 0,
            limit: self.sockjs.response_limit,
            polling,
        }));
        self.start_app(&session, incoming, attached.opened);

        let body = receiver::body(frames, Arc::downgrade(&session), attached.serial);
        let mut response = http::reply(StatusCode::OK, content_type, body);
        let headers = response.headers_mut();
        http::no_cache(headers);
        match kind {
            TransportKind::JsonpPolling => {
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
            }
            TransportKind::HtmlFile => {}
            _ => http::cors(headers, &parts.headers, &self.sockjs),
        }
        response
    }

    /// `xhr_send` and `jsonp_send`: messages from the client.
    async fn send(
        &self,
        parts: &Parts,
        body: Body,
        id: &str,
        kind: TransportKind,
    ) -> Response<Body> {
        let body = match read_body(body, self.config.max_post_body).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return http::reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    http::PLAIN,
                    "Payload too large.",
                )
            }
            Err(BodyError::Broken) => {
                return http::reply(StatusCode::BAD_REQUEST, http::PLAIN, "Broken request body.")
            }
        };
        let decoded = if kind == TransportKind::JsonpSend {
            let is_form = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            payload::decode_jsonp_send(is_form, &body)
        } else {
            payload::decode_xhr_send(&body)
        };
        let messages = match decoded {
            Ok(messages) => messages,
            Err(error) => {
                let mut response = http::reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    http::PLAIN,
                    error.to_string(),
                );
                if kind == TransportKind::XhrSend {
                    http::cors(response.headers_mut(), &parts.headers, &self.sockjs);
                }
                return response;
            }
        };
        // A closed session that is not yet forgotten accepts and drops
        // messages, as sockjs-node's does.
        let Some(session) = self.sessions.get(id) else {
            let mut response = http::not_found();
            if kind == TransportKind::XhrSend {
                http::cors(response.headers_mut(), &parts.headers, &self.sockjs);
            }
            return response;
        };
        session.receive(messages).await;
        let mut response = if kind == TransportKind::XhrSend {
            let mut response = http::reply(StatusCode::NO_CONTENT, http::PLAIN, Body::empty());
            http::cors(response.headers_mut(), &parts.headers, &self.sockjs);
            response
        } else {
            http::reply(StatusCode::OK, http::PLAIN, "ok")
        };
        http::no_cache(response.headers_mut());
        response
    }

    fn handshake_options(&self, hixie: bool) -> (WebSocketConfig, HeaderMap) {
        let websocket = WebSocketConfig::new()
            .max_message_size(self.sockjs.max_message_size)
            .max_queued_messages(self.sockjs.max_queued_messages)
            .hixie76(hixie);
        (websocket, HeaderMap::new())
    }

    /// `/<server>/<session>/websocket`: SockJS frames over a WebSocket.
    async fn sockjs_websocket(&self, mut parts: Parts, id: String) -> Response<Body> {
        let (websocket, extra) = self.handshake_options(true);
        let options = HandshakeOptions {
            protocols: &[],
            allowed_origins: None,
            headers: &extra,
            hixie: true,
        };
        let accepted = match handshake::accept(&mut parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal.response(),
        };
        if !self.config.authorized(&parts).await {
            return http::reply(StatusCode::FORBIDDEN, http::PLAIN, "Forbidden");
        }
        if self.sessions.is_full() {
            return http::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                http::PLAIN,
                "Too many sessions",
            );
        }
        // WebSocket sessions are not found by id: each connection is its own session.
        let key = format!("{id}/{}", uuid::Uuid::new_v4().simple());
        let (session, incoming) = self.new_session(&parts, key.clone(), TransportKind::WebSocket);
        if self.sessions.insert(key, session.clone()).is_err() {
            return http::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                http::PLAIN,
                "Too many sessions",
            );
        }
        let server = ServerHandle {
            config: self.config.clone(),
        };
        let (on_upgrade, kind) = (accepted.on_upgrade, accepted.handshake);
        let max_message_size = websocket.max_message_size_bytes();
        tokio::spawn(async move {
            let socket = match on_upgrade.await {
                Ok(upgraded) => {
                    TextSocket::establish(TokioIo::new(upgraded), &kind, max_message_size).await
                }
                Err(_) => None,
            };
            let Some(socket) = socket else {
                session.forget(CloseReason::ConnectionLost);
                return;
            };
            run_websocket(server, session, incoming, socket).await;
        });
        accepted.response
    }

    /// `/websocket`: a plain WebSocket, no SockJS framing.
    async fn raw_websocket(&self, mut parts: Parts) -> Response<Body> {
        let version = parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .and_then(|v| v.to_str().ok());
        if parts.headers.get(header::UPGRADE).is_some() && !matches!(version, Some("8" | "13")) {
            return http::reply(
                StatusCode::BAD_REQUEST,
                http::PLAIN,
                "Only supported WebSocket protocol is RFC 6455.",
            );
        }
        let (websocket, extra) = self.handshake_options(false);
        let options = HandshakeOptions {
            protocols: &[],
            allowed_origins: None,
            headers: &extra,
            hixie: false,
        };
        let accepted = match handshake::accept(&mut parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal.response(),
        };
        if !self.config.authorized(&parts).await {
            return http::reply(StatusCode::FORBIDDEN, http::PLAIN, "Forbidden");
        }
        if self.streams.is_full() {
            return http::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                http::PLAIN,
                "Too many sessions",
            );
        }
        let mut info = SessionInfo::new(
            Transport::SockJs,
            remote_addr(&parts),
            parts.uri.clone(),
            exposed_headers(&parts.headers),
        );
        info.protocol = Some("websocket-raw".into());
        let upgrade = Upgrade::new(
            self.config.clone(),
            websocket,
            self.streams.clone(),
            Arc::new(info),
        );
        let (on_upgrade, kind) = (accepted.on_upgrade, accepted.handshake);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                upgrade.run(TokioIo::new(upgraded), kind).await;
            }
        });
        accepted.response
    }
}

/// What the WebSocket task needs of the server.
struct ServerHandle {
    config: Arc<ChannelConfig>,
}

/// Runs a SockJS session over a WebSocket until either side closes.
async fn run_websocket(
    server: ServerHandle,
    session: Arc<SjSession>,
    incoming: mpsc::Receiver<crate::Message>,
    mut socket: TextSocket,
) {
    let (writer, mut frames) = mpsc::unbounded_channel();
    let attached = session.attach(Receiver::new(Sink::WebSocket(writer)));
    if attached.opened {
        let outbound: Arc<dyn Outbound> = session.clone();
        server.config.start_handler(Session::new(
            SessionSender::new(session.info.clone(), outbound),
            incoming,
        ));
    }
    loop {
        tokio::select! {
            out = frames.recv() => match out {
                Some(WsOut::Frame(frame)) => {
                    if !socket.send(frame).await {
                        session.receiver_gone(attached.serial, CloseReason::ConnectionLost);
                        return;
                    }
                }
                Some(WsOut::End) | None => {
                    socket.close(1000, "Normal closure").await;
                    session.forget(CloseReason::ConnectionLost);
                    return;
                }
            },
            received = socket.recv() => match received {
                Received::Text(text) => match payload::decode_websocket(&text) {
                    WebSocketPayload::Messages(messages) => session.receive(messages).await,
                    WebSocketPayload::Broken => {
                        session.close_with(3000, "Broken framing.", CloseReason::Failed {
                            code: 3000,
                            reason: "Broken framing.".into(),
                        });
                    }
                },
                Received::Closed(reason) => {
                    session.receiver_gone(attached.serial, reason.clone());
                    session.forget(reason);
                    return;
                }
            },
        }
    }
}
