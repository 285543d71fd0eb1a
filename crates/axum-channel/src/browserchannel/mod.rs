//! BrowserChannel v8 over HTTP: the connection test, the forward channel,
//! the back channel, and serving the client library.

mod back_channel;
mod client_library;
mod session;

use crate::config::{remote_addr, ChannelConfig};
use crate::http_util::{read_body, with_header, BodyError, StandardHeaders};
use crate::registry::Registry;
use crate::session::{CloseReason, Session, SessionInfo, SessionSender, Transport};
use axum::body::Body;
use channel_protocol::browserchannel::{
    back_channel as encoding, decode_forward_channel, BackChannelEncoder, ForwardBatch, Query,
    RequestId, RequestType,
};
use futures::StreamExt;
use http::{header, Method, Request, Response, StatusCode};
use session::BcSession;
use std::fmt;
use std::sync::Arc;

/// Serves BrowserChannel requests for one layer.
pub(crate) struct BrowserChannelServer {
    config: Arc<ChannelConfig>,
    headers: StandardHeaders,
    sessions: Arc<Registry<BcSession>>,
}

impl fmt::Debug for BrowserChannelServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserChannelServer")
            .field("prefix", &self.config.prefix)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// A shorthand for the 400 replies the protocol defines.
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;

impl BrowserChannelServer {
    pub(crate) fn new(config: Arc<ChannelConfig>) -> Self {
        let headers =
            StandardHeaders::new(config.cors_origin.as_deref(), config.cors_allow_credentials);
        let sessions = Arc::new(Registry::new(config.max_sessions));
        Self {
            config,
            headers,
            sessions,
        }
    }

    pub(crate) fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn close_all(&self, reason: CloseReason) {
        for session in self.sessions.all() {
            session.close_with(reason.clone());
        }
    }

    /// Answers one request; `sub_path` is the path after the prefix.
    pub(crate) async fn handle(&self, request: Request<Body>, sub_path: &str) -> Response<Body> {
        let query = Query::parse(request.uri().query().unwrap_or(""));
        match sub_path {
            "/bcsocket.js" => match &self.config.client_library {
                Some(path) => {
                    client_library::serve(path, request.method(), request.headers()).await
                }
                None => self.headers.text(StatusCode::NOT_FOUND, "Not found"),
            },
            "/test" => self.connection_test(&request, &query),
            "/bind" => self.bind(request, query).await,
            _ => self.headers.text(StatusCode::NOT_FOUND, "Not found"),
        }
    }

    fn host_prefix(&self) -> Option<&str> {
        let prefixes = &self.config.host_prefixes;
        if prefixes.is_empty() {
            return None;
        }
        let pick = uuid::Uuid::new_v4().as_u128() % prefixes.len() as u128;
        Some(prefixes[pick as usize].as_str())
    }

    /// `GET test`: phase one answers the host prefix, phase two detects
    /// buffering proxies with two writes `test_phase_delay` apart.
    fn connection_test(&self, request: &Request<Body>, query: &Query) -> Response<Body> {
        if request.method() != Method::GET {
            return self.method_not_allowed();
        }
        if !query.is_version_8() {
            return self.headers.error(BAD_REQUEST, "Version 8 required");
        }
        if query.is_test_init() {
            let body = encoding::test_init_body(self.host_prefix());
            let response = self.headers.text(StatusCode::OK, body);
            return with_header(
                response,
                header::HeaderName::from_static("x-accept"),
                "application/json; application/x-www-form-urlencoded",
            );
        }
        let mut encoder = match query.request_type {
            Some(RequestType::Html) => BackChannelEncoder::html(),
            _ => BackChannelEncoder::xmlhttp(),
        };
        let first = encoder.prelude(query.domain()) + &encoder.raw(encoding::TEST_FIRST_CHUNK);
        let second = encoder.raw(encoding::TEST_SECOND_CHUNK) + encoder.end();
        let delay = self.config.test_phase_delay;
        let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(first) })
            .chain(futures::stream::once(async move {
                tokio::time::sleep(delay).await;
                Ok(second)
            }));
        self.headers.response(
            StatusCode::OK,
            encoder.content_type(),
            Body::from_stream(stream),
        )
    }

    fn method_not_allowed(&self) -> Response<Body> {
        self.headers
            .text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    }

    /// `bind`: forward channel POSTs, back channel GETs and `terminate`.
    async fn bind(&self, request: Request<Body>, query: Query) -> Response<Body> {
        if !query.is_version_8() {
            return self.headers.error(BAD_REQUEST, "Version 8 required");
        }
        let session = match &query.session_id {
            Some(id) => match self.sessions.get(id) {
                Some(session) => Some(session),
                None => return self.headers.error(BAD_REQUEST, "Unknown SID"),
            },
            None => None,
        };
        if let (Some(session), Some(aid)) = (&session, query.acknowledged_array_id) {
            session.acknowledge(aid);
        }
        match *request.method() {
            Method::POST => self.forward_channel(request, query, session).await,
            Method::GET => match session {
                Some(session) => self.back_channel_or_terminate(&query, &session),
                None => self.headers.error(BAD_REQUEST, "Unknown SID"),
            },
            _ => self.method_not_allowed(),
        }
    }

    fn back_channel_or_terminate(&self, query: &Query, session: &Arc<BcSession>) -> Response<Body> {
        let encoder = match &query.request_type {
            Some(RequestType::XmlHttp) => BackChannelEncoder::xmlhttp(),
            Some(RequestType::Html) => BackChannelEncoder::html(),
            Some(RequestType::Terminate) => {
                return match session.terminate(query.request_number()) {
                    Ok(()) => self.headers.text(StatusCode::OK, ""),
                    Err(error) => self.headers.error(BAD_REQUEST, &error.to_string()),
                };
            }
            _ => return self.headers.error(BAD_REQUEST, "Unknown TYPE"),
        };
        if query.request_id != Some(RequestId::Rpc) {
            return self.headers.error(BAD_REQUEST, "Expected RPC");
        }
        let content_type = encoder.content_type();
        match session.open_back_channel(encoder, query.is_chunked(), query.domain()) {
            Some(body) => self.headers.response(StatusCode::OK, content_type, body),
            None => self.headers.error(BAD_REQUEST, "Unknown SID"),
        }
    }

    async fn forward_channel(
        &self,
        request: Request<Body>,
        query: Query,
        session: Option<Arc<BcSession>>,
    ) -> Response<Body> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
        let (parts, body) = request.into_parts();
        let body = match read_body(body, self.config.max_post_body).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return self
                    .headers
                    .error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            }
            Err(BodyError::Broken) => return self.headers.error(BAD_REQUEST, "Bad data"),
        };
        let batch = match decode_forward_channel(is_json, &body, self.config.max_maps_per_request) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::debug!(%error, "refusing forward channel data");
                return self.headers.error(BAD_REQUEST, "Bad data");
            }
        };
        match session {
            Some(session) => self.forward_to(&session, &query, batch).await,
            None => self.open_session(parts, query, batch).await,
        }
    }

    async fn forward_to(
        &self,
        session: &BcSession,
        query: &Query,
        batch: Option<ForwardBatch>,
    ) -> Response<Body> {
        if let Err(error) = session.receive_forward(query.request_number(), batch).await {
            return self.headers.error(BAD_REQUEST, &error.to_string());
        }
        self.headers.text(StatusCode::OK, session.forward_reply())
    }

    /// The first POST without `SID`: creates the session, hands it to the
    /// app, and answers with the `c` array.
    async fn open_session(
        &self,
        parts: http::request::Parts,
        query: Query,
        batch: Option<ForwardBatch>,
    ) -> Response<Body> {
        let remote_addr = remote_addr(&parts);
        if !self.config.authorized(&parts).await {
            return self.headers.error(StatusCode::FORBIDDEN, "Forbidden");
        }
        if self.sessions.is_full() {
            return self
                .headers
                .error(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }
        if let Some(old) = query
            .old_session_id
            .as_deref()
            .and_then(|id| self.sessions.get(id))
        {
            if let Some(aid) = query.old_acknowledged_array_id {
                old.acknowledge(aid);
            }
            old.close_with(CloseReason::Reconnected);
        }

        let mut info = SessionInfo::new(
            Transport::BrowserChannel,
            remote_addr,
            parts.uri,
            parts.headers,
        );
        info.app_version = query.app_version.clone();
        let info = Arc::new(info);
        let (session, incoming) = BcSession::start(
            info.clone(),
            self.config.clone(),
            self.host_prefix(),
            query.request_number(),
            Arc::downgrade(&self.sessions),
        );
        if self
            .sessions
            .insert(info.id.clone(), session.clone())
            .is_err()
        {
            session.close_with(CloseReason::Shutdown);
            return self
                .headers
                .error(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }
        tracing::debug!(session = %info.id, "session opened");

        let app_session = Session::new(SessionSender::new(info, session.clone()), incoming);
        self.config.start_handler(app_session);

        if let Err(error) = session.receive_forward(query.request_number(), batch).await {
            session.close_with(CloseReason::Closed(error.to_string()));
            return self.headers.error(BAD_REQUEST, "Bad data");
        }
        if session.is_closed() {
            return self.headers.error(StatusCode::FORBIDDEN, "Forbidden");
        }
        self.headers.text(StatusCode::OK, session.opening_reply())
    }
}
