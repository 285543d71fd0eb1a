//! EventSource (server-sent events) sessions: one `text/event-stream`
//! response the session writes to; the client cannot send. The engine is
//! `channel_protocol::event_stream::Session`.

use crate::config::{remote_addr, ChannelConfig, EventSourceConfig};
use crate::live::{Clock, Live, ReceiverBody, Receivers, Services};
use crate::session::{Session, SessionInfo, Transport};
use axum::body::Body;
use channel_protocol::event_stream::Session as Engine;
use channel_protocol::{ReceiverId, Transmit};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

impl Receivers for Engine {
    fn transmit(&mut self, now: Instant, id: ReceiverId) -> Option<Transmit> {
        self.poll_transmit(now, id)
    }

    fn receiver_gone(&mut self, now: Instant, id: ReceiverId) {
        self.detach(now, id);
    }
}

/// Serves the EventSource endpoint of one layer.
pub(crate) struct EventSourceServer {
    config: Arc<ChannelConfig>,
    event_source: EventSourceConfig,
    services: Arc<Services>,
}

impl fmt::Debug for EventSourceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceServer").finish_non_exhaustive()
    }
}

/// `Last-Event-ID`, or the `lastEventId` query parameter some polyfills send instead.
fn last_event_id(parts: &http::request::Parts) -> Option<String> {
    if let Some(id) = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
    {
        return Some(id.to_owned());
    }
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "lastEventId")
        .map(|(_, value)| value.into_owned())
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

/// The answer the other transports give too once `max_sessions` are open.
fn too_many_sessions() -> Response<Body> {
    plain(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions")
}

impl EventSourceServer {
    pub(crate) fn new(
        config: Arc<ChannelConfig>,
        event_source: EventSourceConfig,
        services: Arc<Services>,
    ) -> Self {
        Self {
            config,
            event_source,
            services,
        }
    }

    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        if request.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        let (parts, _body) = request.into_parts();
        let Some(extensions) = self.config.authorized(&parts).await else {
            return plain(StatusCode::FORBIDDEN, "Forbidden");
        };
        if self.services.registry.is_full() {
            return too_many_sessions();
        }
        let mut info = SessionInfo::new(
            Transport::EventSource,
            remote_addr(&parts),
            &parts.uri,
            &parts.headers,
        );
        info.last_event_id = last_event_id(&parts).map(String::into_boxed_str);
        info.extensions = extensions;
        let engine = Engine::new(crate::live::now(), self.event_source.session());
        let stream = engine.stream();
        let Ok(session) = Live::open(info, engine, self.services.clone(), Clock::Shared) else {
            return too_many_sessions();
        };
        self.config.start_handler(Session::new(session.clone()));

        let mut response = Response::new(Body::new(ReceiverBody::new(session, stream)));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        headers.extend(self.event_source.headers().clone());
        response
    }
}
