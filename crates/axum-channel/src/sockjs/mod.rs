//! SockJS 0.3 over HTTP and WebSocket, as sockjs-node serves it: `/info`,
//! the iframe page, and the websocket, xhr, xhr_streaming, eventsource,
//! htmlfile and jsonp transports, plus a raw WebSocket. Every protocol rule
//! is the protocol crate's (`axum_channel_protocol::sockjs`: the engine, and
//! `transport`'s table of what each transport allows, answers and wraps);
//! this module turns requests into the engine's inputs and its receivers
//! into responses.

mod http;

use crate::admission::{Admission, Admitted};
use crate::base::link::Link;
use crate::base::sync::now;
use crate::base::transport::Transport;
use crate::config::{SockJsConfig, WebSocketConfig};
use crate::live::body::ReceiverBody;
use crate::live::{Clock, Live};
use crate::reply::{read_body, reply, BodyError};
use crate::services::registry::Refused;
use crate::upgrade::handshake::{check_upgradable, negotiate_deflate, refused, upgrade};
use crate::upgrade::socket::Buffers;
use crate::upgrade::Upgrade;
use ::http::header::{self, HeaderMap, HeaderValue};
use ::http::request::Parts;
use ::http::{Method, Request, Response, StatusCode};
use axum::body::Body;
use axum_channel_protocol::sockjs::transport::{content_type, Cors, Role};
use axum_channel_protocol::sockjs::{
    pages, path, transport::websocket_handshake, Attach, Endpoint, Session as Engine,
    TransportKind, WebSocketSession,
};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// A live SockJS session over HTTP receivers.
type SjLive = Live<Engine>;

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
        let origin_allowed = !parts.headers.contains_key(header::ORIGIN)
            || self
                .admission
                .readable_by(&parts.headers, &parts.extensions)
                .is_some();
        http::Cors {
            request: &parts.headers,
            config: &self.sockjs,
            origin_allowed,
        }
    }

    /// Adds the CORS headers transport `kind` gives its replies.
    fn transport_cors(&self, headers: &mut HeaderMap, parts: &Parts, kind: TransportKind) {
        match kind.cors() {
            Cors::Standard => http::cors(headers, &self.cors(parts)),
            Cors::NullOriginAsAny => http::cors_event_source(headers, &self.cors(parts)),
            Cors::NoSniff => {
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
            }
            Cors::None => {}
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
        match path::endpoint(sub_path) {
            Endpoint::Welcome => match method {
                Method::GET => reply(StatusCode::OK, content_type::PLAIN, pages::WELCOME),
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
                Method::GET => self.websocket(parts, true).await,
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
        if kind.role() == Role::WebSocket && !self.sockjs.websocket {
            return http::not_found();
        }
        if !kind.allows(&method) {
            return http::method_not_allowed(kind.allow());
        }
        let mut response = if method == Method::OPTIONS {
            http::preflight(&self.cors(&parts), kind.allow())
        } else {
            match kind.role() {
                Role::WebSocket => return self.websocket(parts, false).await,
                Role::Send => self.send(&parts, body, &session, kind).await,
                Role::Receive => self.receive(&parts, session, kind).await,
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
        let engine = Engine::new(now(), self.sockjs.session);
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
        admitted.info.protocol = Some(Cow::Borrowed(protocol));
        Ok(admitted)
    }

    /// The receiving transports: xhr, xhr_streaming, eventsource, htmlfile, jsonp.
    async fn receive(&self, parts: &Parts, key: String, kind: TransportKind) -> Response<Body> {
        let receiver = match kind.receiver(parts.uri.query()) {
            Ok(receiver) => receiver,
            Err(error) => return reply(error.status(), content_type::PLAIN, error.message()),
        };
        let (session, created) = match self.session_for(parts, &key, kind).await {
            Ok(found) => found,
            Err(response) => return response,
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
        let mut response = reply(StatusCode::OK, kind.content_type(), body);
        http::no_cache(response.headers_mut());
        self.transport_cors(response.headers_mut(), parts, kind);
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
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    content_type::PLAIN,
                    "Payload too large.",
                )
            }
            Err(BodyError::Broken) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    content_type::PLAIN,
                    "Broken request body.",
                )
            }
        };
        let posted_as = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let messages = match kind.decode_send(posted_as, &body) {
            Ok(messages) => messages,
            Err(error) => {
                let mut response = reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    content_type::PLAIN,
                    error.to_string(),
                );
                self.transport_cors(response.headers_mut(), parts, kind);
                return response;
            }
        };
        let Some(session) = self.find(key) else {
            let mut response = http::not_found();
            self.transport_cors(response.headers_mut(), parts, kind);
            return response;
        };
        if !messages.is_empty() {
            session.room().await;
        }
        // A closed session that is not yet forgotten takes and drops
        // messages, as sockjs-node's does.
        session.with(|engine, now| engine.handle_messages(now, messages));
        let Some(sent) = kind.send_reply() else {
            return http::not_found();
        };
        let mut response = reply(sent.status, content_type::PLAIN, sent.body);
        self.transport_cors(response.headers_mut(), parts, kind);
        http::no_cache(response.headers_mut());
        response
    }

    /// `/<server>/<session>/websocket` (SockJS frames over a WebSocket; each
    /// connection is its own session, never found by its id) or, `raw`,
    /// `/websocket` (plain messages).
    async fn websocket(&self, mut parts: Parts, raw: bool) -> Response<Body> {
        let mut accepted = match websocket_handshake(&parts, raw) {
            Ok(accepted) => accepted,
            Err(refusal) => return refused(refusal),
        };
        if let Err(refusal) = check_upgradable(&parts) {
            return refused(refusal);
        }
        let name = if raw {
            "websocket-raw"
        } else {
            TransportKind::WebSocket.name()
        };
        let admitted = match self.admit(&parts, name).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
        let deflate = negotiate_deflate(&parts, &mut accepted, self.sockjs.deflate.as_ref());
        let upgrading = match upgrade(&mut parts, accepted, &HeaderMap::new()) {
            Ok(upgrading) => upgrading,
            Err(refusal) => return refused(refusal),
        };
        // The WebSocket defaults, with SockJS's message size limit.
        let connection = Upgrade {
            admission: self.admission.clone(),
            buffers: Buffers::new(&WebSocketConfig::new(), self.sockjs.max_message_size),
            deflate,
        };
        let session = self.sockjs.session;
        let (on_upgrade, handshake) = (upgrading.on_upgrade, upgrading.handshake);
        if raw {
            let websocket = WebSocketConfig::new().max_queued_messages(session.max_queued_messages);
            connection.spawn(on_upgrade, handshake, admitted, move |now, rfc6455| {
                axum_channel_protocol::websocket::Session::new(
                    now,
                    websocket.session(rfc6455, deflate.as_ref()),
                )
                .naming_normal_closure()
            });
        } else {
            connection.spawn(on_upgrade, handshake, admitted, move |now, _| {
                WebSocketSession::new(now, session)
            });
        }
        upgrading.response
    }
}
