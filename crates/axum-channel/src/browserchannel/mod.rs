//! BrowserChannel v8 over HTTP: the connection test, the forward channel,
//! the back channel, and serving the client library. Every protocol rule is
//! the engine's (`axum_channel_protocol::browserchannel::Session`); this module
//! turns requests into its inputs and its back channels into responses.

mod client_library;
mod headers;

use crate::admission::{Admission, Refusal};
use crate::base::link::Link;
use crate::base::sync::now;
use crate::base::transport::Transport;
use crate::config::BrowserChannelConfig;
use crate::live::body::ReceiverBody;
use crate::live::{Clock, Live};
use crate::reply::{self, read_body, BodyError};
use axum::body::Body;
use axum_channel_protocol::browserchannel::connection_test::{self, ConnectionTest};
use axum_channel_protocol::browserchannel::{
    decode_forward_channel, BackChannelEncoder, ForwardBatch, Query, RequestId, RequestType,
    Session as Engine, FORWARD_CHANNEL_HOLD,
};
use axum_channel_protocol::{CloseReason, Transmit};
use headers::StandardHeaders;
use http::{header, Method, Request, Response, StatusCode};
use std::fmt;
use std::sync::Arc;

/// A live BrowserChannel session.
type BcLive = Live<Engine>;

/// Serves BrowserChannel requests for one layer.
pub(crate) struct BrowserChannelServer {
    admission: Admission,
    config: BrowserChannelConfig,
    headers: StandardHeaders,
}

impl fmt::Debug for BrowserChannelServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserChannelServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A shorthand for the 400 replies the protocol defines.
const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;

impl BrowserChannelServer {
    pub(crate) fn new(admission: Admission, config: BrowserChannelConfig) -> Self {
        Self {
            admission,
            config,
            headers: StandardHeaders::new(),
        }
    }

    /// The BrowserChannel session with this id.
    fn find(&self, id: &str) -> Option<Arc<BcLive>> {
        self.admission
            .services()
            .registry
            .get(id)?
            .as_any()
            .downcast::<BcLive>()
            .ok()
    }

    /// Answers one request; `sub_path` is the path after the prefix. Pages
    /// of origins the layer allows may read every reply (CORS).
    pub(crate) async fn handle(&self, request: Request<Body>, sub_path: &str) -> Response<Body> {
        let readable_by = self
            .admission
            .readable_by(request.headers(), request.extensions());
        let mut response = self.answer(request, sub_path).await;
        reply::readable_by(&mut response, readable_by);
        response
    }

    async fn answer(&self, request: Request<Body>, sub_path: &str) -> Response<Body> {
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
        connection_test::host_prefix(&self.config.host_prefixes, uuid::Uuid::new_v4().as_u128())
    }

    /// `GET test`: phase one answers the host prefix, phase two detects
    /// buffering proxies with two writes a phase delay apart (the rules and
    /// the timer are the protocol crate's `ConnectionTest`).
    fn connection_test(&self, request: &Request<Body>, query: &Query) -> Response<Body> {
        if request.method() != Method::GET {
            return self.method_not_allowed();
        }
        if !query.is_version_8() {
            return self.headers.error(BAD_REQUEST, "Version 8 required");
        }
        if connection_test::Phase::of(query) == connection_test::Phase::Init {
            let body = connection_test::init_body(self.host_prefix());
            let mut response = self.headers.text(StatusCode::OK, body);
            response
                .headers_mut()
                .insert(connection_test::X_ACCEPT, connection_test::X_ACCEPT_VALUE);
            return response;
        }
        let test = ConnectionTest::new(now(), query, self.config.test_phase_delay);
        let content_type = test.content_type();
        let stream = futures::stream::unfold(test, |mut test| async move {
            loop {
                match test.poll_transmit(now()) {
                    Some(Transmit::Data { bytes, .. } | Transmit::End(bytes)) => {
                        return Some((Ok::<_, std::convert::Infallible>(bytes), test));
                    }
                    Some(_) => return None,
                    None if test.is_done() => return None,
                    None => {
                        let deadline = test.poll_timeout()?;
                        tokio::time::sleep_until(deadline.into()).await;
                        test.handle_timeout(now());
                    }
                }
            }
        });
        self.headers
            .response(StatusCode::OK, content_type, Body::from_stream(stream))
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
            Some(id) => match self.find(id) {
                Some(session) => Some(session),
                None => return self.headers.error(BAD_REQUEST, "Unknown SID"),
            },
            None => None,
        };
        // Acknowledgements first: they must never wait on the app.
        if let (Some(session), Some(aid)) = (&session, query.acknowledged_array_id) {
            session.with(|engine, now| engine.acknowledge(now, aid));
        }
        match *request.method() {
            Method::POST => self.forward_channel(request, query, session).await,
            Method::GET => match session {
                Some(session) => self.back_channel_or_terminate(&query, session),
                None => self.headers.error(BAD_REQUEST, "Unknown SID"),
            },
            _ => self.method_not_allowed(),
        }
    }

    fn back_channel_or_terminate(&self, query: &Query, session: Arc<BcLive>) -> Response<Body> {
        let encoder = match &query.request_type {
            Some(RequestType::XmlHttp) => BackChannelEncoder::xmlhttp(),
            Some(RequestType::Html) => BackChannelEncoder::html(),
            Some(RequestType::Terminate) => {
                let rid = query.request_number();
                return match session.with(|engine, now| engine.terminate(now, rid)) {
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
        let (chunked, domain) = (query.is_chunked(), query.domain());
        match session.with(|engine, now| engine.attach_back_channel(now, encoder, chunked, domain))
        {
            Some(id) => self.headers.response(
                StatusCode::OK,
                content_type,
                Body::new(ReceiverBody::new(session, id)),
            ),
            None => self.headers.error(BAD_REQUEST, "Unknown SID"),
        }
    }

    async fn forward_channel(
        &self,
        request: Request<Body>,
        query: Query,
        session: Option<Arc<BcLive>>,
    ) -> Response<Body> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("application/json"));
        let (parts, body) = request.into_parts();
        let body = match read_body(body, self.admission.config().max_request_body).await {
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

    /// Hands a forward channel request's maps to the session. While the
    /// app's queue is full the request waits (the client sends its next one
    /// only after this one's answer). Past the hold the client would give up
    /// on it, so the maps are taken over the queue's bound, as long as the
    /// queue stays below that bound plus one request's worth; beyond that
    /// the request waits on (a client that retries sends the same maps, which
    /// are taken once).
    async fn forward_to(
        &self,
        session: &BcLive,
        query: &Query,
        batch: Option<ForwardBatch>,
    ) -> Response<Body> {
        if let Some(maps) = batch.as_ref().map(|batch| batch.messages.len()) {
            let hard_bound =
                self.admission.services().max_incoming + self.config.max_maps_per_request;
            let held = tokio::time::timeout(FORWARD_CHANNEL_HOLD, session.room()).await;
            if held.is_err() && session.backlog() + maps > hard_bound {
                session.room().await;
            }
        }
        let rid = query.request_number();
        if let Err(error) = session.with(|engine, now| engine.handle_forward(now, rid, batch)) {
            return self.headers.error(BAD_REQUEST, &error.to_string());
        }
        let reply = session.peek(|engine| engine.forward_reply());
        self.headers.text(StatusCode::OK, reply)
    }

    /// The first POST without `SID`: creates the session, hands it to the
    /// app, and answers with the `c` array.
    async fn open_session(
        &self,
        parts: http::request::Parts,
        query: Query,
        batch: Option<ForwardBatch>,
    ) -> Response<Body> {
        let mut admitted = match self
            .admission
            .admit(&parts, Transport::BrowserChannel, None)
            .await
        {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal.response(),
        };
        if let Some(old) = query.old_session_id.as_deref().and_then(|id| self.find(id)) {
            if let Some(aid) = query.old_acknowledged_array_id {
                old.with(|engine, now| engine.acknowledge(now, aid));
            }
            old.close(CloseReason::Reconnected);
        }
        admitted.info.app_version = query.app_version.clone().map(String::into_boxed_str);
        let rid = query.request_number();
        let engine = Engine::new(
            now(),
            admitted.info.id(),
            self.host_prefix(),
            rid,
            self.config.session,
        );
        // A BrowserChannel session has no SockJS key another request could share.
        let Ok(session) = self.admission.open(admitted, engine, Clock::Shared) else {
            return self
                .headers
                .error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error");
        };
        self.admission.start(&session);

        if let Err(error) = session.with(|engine, now| engine.handle_forward(now, rid, batch)) {
            session.close(CloseReason::Closed(error.to_string()));
            return self.headers.error(BAD_REQUEST, "Bad data");
        }
        if session.close_reason().is_some() {
            // The app closed it in its callback's first step: refused.
            let refusal = Refusal::Forbidden;
            self.admission.refused(
                Transport::BrowserChannel,
                &refusal,
                session.info().remote_addr,
            );
            return refusal.response();
        }
        let reply = session.with(|engine, now| engine.opening_reply(now));
        self.headers.text(StatusCode::OK, reply)
    }
}
