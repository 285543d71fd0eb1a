//! SockJS 0.3 over HTTP and WebSocket, as sockjs-node serves it: `/info`,
//! the iframe page, and the websocket, xhr, xhr_streaming, eventsource,
//! htmlfile and jsonp transports, plus a raw WebSocket. Every protocol rule
//! is the engine's (`channel_protocol::sockjs`); this module turns requests
//! into its inputs and its receivers into responses.

mod http;

use crate::admission::{Admission, Admitted};
use crate::base::link::Link;
use crate::base::transport::Transport;
use crate::config::{SockJsConfig, WebSocketConfig};
use crate::live::body::{ReceiverBody, Receivers};
use crate::live::{Clock, Live};
use crate::reply::{read_body, BodyError};
use crate::services::registry::Refused;
use crate::upgrade::handshake::{self, HandshakeOptions};
use crate::upgrade::socket::Buffers;
use crate::upgrade::Upgrade;
use ::http::header::{self, HeaderMap, HeaderValue};
use ::http::request::Parts;
use ::http::{Method, Request, Response, StatusCode};
use axum::body::Body;
use channel_protocol::sockjs::{
    self as protocol, payload, receiver as encodings, Attach, Endpoint, ReceiverKind,
    Session as Engine, TransportKind, WebSocketSession,
};
use channel_protocol::{CloseReason, ReceiverId, Transmit};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// A live SockJS session over HTTP receivers.
type SjLive = Live<Engine>;

impl Receivers for Engine {
    fn transmit(&mut self, now: Instant, id: ReceiverId) -> Option<Transmit> {
        self.poll_transmit(now, id)
    }

    fn receiver_gone(&mut self, now: Instant, id: ReceiverId) {
        // A client that abandons a receiver ends the session, as in sockjs-node.
        self.detach_receiver(now, id, CloseReason::ConnectionLost);
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
    admission: Admission,
    sockjs: Arc<SockJsConfig>,
}

impl fmt::Debug for SockJsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockJsServer")
            .field("sockjs", &self.sockjs)
            .finish_non_exhaustive()
    }
}

fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The HTTP session behind a registered SockJS key (only those have keys).
fn downcast(link: Arc<dyn Link>) -> Option<Arc<SjLive>> {
    link.as_any().downcast::<SjLive>().ok()
}

impl SockJsServer {
    pub(crate) fn new(admission: Admission, sockjs: SockJsConfig) -> Self {
        Self {
            admission,
            sockjs: Arc::new(sockjs),
        }
    }

    /// What this request's CORS headers may say.
    fn cors<'a>(&'a self, parts: &'a Parts) -> http::Cors<'a> {
        let origin_allowed = match parts.headers.get(header::ORIGIN) {
            None => true,
            Some(origin) => origin
                .to_str()
                .is_ok_and(|origin| self.admission.allows_origin(parts, origin)),
        };
        http::Cors {
            request: &parts.headers,
            config: &self.sockjs,
            origin_allowed,
        }
    }

    /// The HTTP session its client named `key`.
    fn find(&self, key: &str) -> Option<Arc<SjLive>> {
        downcast(self.admission.services().registry.get_sockjs(key)?)
    }

    /// Answers one request; `sub_path` is the path after the prefix.
    pub(crate) async fn handle(&self, request: Request<Body>, sub_path: &str) -> Response<Body> {
        let method = request.method().clone();
        let (parts, body) = request.into_parts();
        match protocol::path::endpoint(sub_path) {
            Endpoint::Welcome => match method {
                Method::GET => http::reply(StatusCode::OK, http::PLAIN, protocol::pages::WELCOME),
                _ => http::method_not_allowed("GET"),
            },
            Endpoint::Info => match method {
                Method::GET => http::info(&self.cors(&parts)),
                Method::OPTIONS => http::preflight(&self.cors(&parts), "OPTIONS, GET"),
                _ => http::method_not_allowed("OPTIONS, GET"),
            },
            Endpoint::Iframe => match method {
                Method::GET => http::iframe(
                    &parts.headers,
                    &self.sockjs,
                    self.admission.frame_ancestors().as_deref(),
                ),
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
            http::preflight(&self.cors(&parts), "OPTIONS, POST")
        } else {
            match kind {
                WebSocket => return self.sockjs_websocket(parts).await,
                XhrSend | JsonpSend => self.send(&parts, body, &session, kind).await,
                _ => self.receive(&parts, session, kind).await,
            }
        };
        http::jsessionid(response.headers_mut(), &parts.headers, &self.sockjs);
        response
    }

    /// The session `key`, created if this request may open it; true when created.
    async fn session_for(
        &self,
        parts: &Parts,
        key: &str,
        kind: TransportKind,
    ) -> Result<(Arc<SjLive>, bool), Response<Body>> {
        if let Some(session) = self.find(key) {
            return Ok((session, false));
        }
        let mut admitted = self.admit(parts, kind.name()).await?;
        admitted.info.sockjs_key = Some(key.into());
        let engine = Engine::new(crate::base::sync::now(), self.sockjs.session);
        match self.admission.open(admitted, engine, Clock::Shared) {
            Ok(session) => Ok((session, true)),
            // Another request created it meanwhile: this one joins it, as
            // every request naming an existing session does.
            Err(Refused::KeyTaken(existing)) => match downcast(existing) {
                Some(session) => Ok((session, false)),
                None => Err(http::not_found()),
            },
        }
    }

    /// Admits a new session; what it knows of its peer is what sockjs-node
    /// exposes: the headers above, and the SockJS transport's name.
    async fn admit(
        &self,
        parts: &Parts,
        protocol: &'static str,
    ) -> Result<Admitted, Response<Body>> {
        let exposed = exposed_headers(&parts.headers);
        let mut admitted = self
            .admission
            .admit(parts, Transport::SockJs, Some(&exposed))
            .await
            .map_err(|refusal| refusal.response())?;
        admitted.info.protocol = Some(std::borrow::Cow::Borrowed(protocol));
        Ok(admitted)
    }

    /// The receiving transports: xhr, xhr_streaming, eventsource, htmlfile, jsonp.
    async fn receive(&self, parts: &Parts, key: String, kind: TransportKind) -> Response<Body> {
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
                http::EVENT_STREAM,
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
        let (session, created) = match self.session_for(parts, &key, kind).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        let receiver = ReceiverKind::Http {
            encoding,
            prelude,
            polling,
        };
        let body = match session.with(|engine, now| engine.attach_receiver(now, receiver)) {
            Attach::Attached { id, opened } => {
                if opened && created {
                    self.admission.start(&session);
                }
                Body::new(ReceiverBody::new(session, id))
            }
            Attach::Answered { pieces, confirms } => {
                if let Some(through) = confirms {
                    session.confirm(through);
                }
                // Each piece an HTTP chunk of its own, as sockjs-node writes them.
                Body::from_stream(futures::stream::iter(
                    pieces.into_iter().map(Ok::<_, std::convert::Infallible>),
                ))
            }
        };
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
            TransportKind::EventSource => http::cors_event_source(headers, &self.cors(parts)),
            _ => http::cors(headers, &self.cors(parts)),
        }
        response
    }

    /// `xhr_send` and `jsonp_send`: messages from the client. While the
    /// app's queue is full the request waits, which slows the client down.
    async fn send(
        &self,
        parts: &Parts,
        body: Body,
        key: &str,
        kind: TransportKind,
    ) -> Response<Body> {
        let body = match read_body(body, self.admission.config().max_request_body).await {
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
                    http::cors(response.headers_mut(), &self.cors(parts));
                }
                return response;
            }
        };
        let Some(session) = self.find(key) else {
            let mut response = http::not_found();
            if kind == TransportKind::XhrSend {
                http::cors(response.headers_mut(), &self.cors(parts));
            }
            return response;
        };
        if !messages.is_empty() {
            session.room().await;
        }
        // A closed session that is not yet forgotten takes and drops
        // messages, as sockjs-node's does.
        session.with(|engine, now| engine.handle_messages(now, messages));
        let mut response = if kind == TransportKind::XhrSend {
            let mut response = http::reply(StatusCode::NO_CONTENT, http::PLAIN, Body::empty());
            http::cors(response.headers_mut(), &self.cors(parts));
            response
        } else {
            http::reply(StatusCode::OK, http::PLAIN, "ok")
        };
        http::no_cache(response.headers_mut());
        response
    }

    /// The WebSocket settings SockJS endpoints use: the defaults, with
    /// SockJS's message size limit.
    fn upgrade(&self) -> Upgrade {
        Upgrade {
            admission: self.admission.clone(),
            buffers: Buffers::new(&WebSocketConfig::new(), self.sockjs.max_message_size),
        }
    }

    /// `/<server>/<session>/websocket`: SockJS frames over a WebSocket. Each
    /// connection is its own session, never found by its id.
    async fn sockjs_websocket(&self, mut parts: Parts) -> Response<Body> {
        let extra = HeaderMap::new();
        let options = HandshakeOptions {
            protocols: &[],
            headers: &extra,
            hixie: true,
        };
        let accepted = match handshake::accept(&mut parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal.response(),
        };
        let admitted = match self.admit(&parts, TransportKind::WebSocket.name()).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
        let session = self.sockjs.session;
        let (on_upgrade, kind) = (accepted.on_upgrade, accepted.handshake);
        self.upgrade()
            .spawn(on_upgrade, kind, admitted, move |now, _| {
                WebSocketSession::new(now, session)
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
        let extra = HeaderMap::new();
        let options = HandshakeOptions {
            protocols: &[],
            headers: &extra,
            hixie: false,
        };
        let accepted = match handshake::accept(&mut parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal.response(),
        };
        let admitted = match self.admit(&parts, "websocket-raw").await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
        let websocket =
            WebSocketConfig::new().max_queued_messages(self.sockjs.session.max_queued_messages);
        let (on_upgrade, kind) = (accepted.on_upgrade, accepted.handshake);
        self.upgrade()
            .spawn(on_upgrade, kind, admitted, move |now, rfc6455| {
                channel_protocol::websocket::Session::new(now, websocket.session(rfc6455))
                    .naming_normal_closure()
            });
        accepted.response
    }
}
