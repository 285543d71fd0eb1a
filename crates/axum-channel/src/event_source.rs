//! The EventSource (server-sent events) endpoint: one `text/event-stream`
//! response the session writes to; the client cannot send. The engine is
//! `axum_channel_protocol::event_stream::Session`.

use crate::admission::Admission;
use crate::base::transport::Transport;
use crate::config::EventSourceConfig;
use crate::live::body::ReceiverBody;
use crate::live::Clock;
use crate::reply;
use axum::body::Body;
use axum_channel_protocol::event_stream::Session as Engine;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use std::fmt;

/// Serves the EventSource endpoint of one layer.
pub(crate) struct EventSourceServer {
    admission: Admission,
    event_source: EventSourceConfig,
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

impl EventSourceServer {
    pub(crate) fn new(admission: Admission, event_source: EventSourceConfig) -> Self {
        Self {
            admission,
            event_source,
        }
    }

    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        if request.method() != Method::GET {
            return reply::text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        let readable_by = self
            .admission
            .readable_by(request.headers(), request.extensions());
        let (parts, _body) = request.into_parts();
        let mut admitted = match self
            .admission
            .admit(&parts, Transport::EventSource, None)
            .await
        {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal.response(),
        };
        admitted.info.last_event_id = last_event_id(&parts).map(String::into_boxed_str);
        let engine = Engine::new(crate::base::sync::now(), self.event_source.session);
        let stream = engine.stream();
        // An EventSource session has no SockJS key another request could share.
        let Ok(session) = self.admission.open(admitted, engine, Clock::Shared) else {
            return reply::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error");
        };
        self.admission.start(&session);

        let body = Body::new(ReceiverBody::new(session, stream));
        let mut response = reply::reply(StatusCode::OK, "text/event-stream", body);
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        headers.extend(self.event_source.headers().clone());
        reply::readable_by(&mut response, readable_by);
        response
    }
}
