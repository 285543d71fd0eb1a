//! EventSource (server-sent events) sessions: a `text/event-stream` response
//! the server writes to; the client cannot send.

use crate::config::{remote_addr, ChannelConfig};
use crate::registry::Registry;
use crate::session::{
    CloseReason, Delivery, Message, Outbound, SendError, Session, SessionInfo, SessionSender,
    Transport,
};
use axum::body::Body;
use bytes::Bytes;
use channel_protocol::event_stream;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Settings of the EventSource endpoint.
#[derive(Debug, Clone)]
pub struct EventSourceConfig {
    retry: Option<Duration>,
    ping_interval: Option<Duration>,
    headers: HeaderMap,
    max_queued_events: usize,
}

impl Default for EventSourceConfig {
    fn default() -> Self {
        Self {
            retry: None,
            ping_interval: None,
            headers: HeaderMap::new(),
            max_queued_events: 4096,
        }
    }
}

impl EventSourceConfig {
    /// The defaults: no `retry`, no pings, no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells clients how long to wait before reconnecting (`retry:`).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Writes a comment line this often, so proxies keep the stream open.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = Some(interval);
        self
    }

    /// Adds a header to every stream response (for example CORS headers).
    /// Invalid names or values are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        crate::http_util::append_header(&mut self.headers, name, value);
        self
    }

    /// Most events written and not yet taken by the connection; past it,
    /// `send` fails with `QueueFull` (default 4,096).
    pub fn max_queued_events(mut self, events: usize) -> Self {
        self.max_queued_events = events.max(1);
        self
    }
}

/// A piece of the stream and the app's future waiting for it to be written.
type Piece = (Bytes, Option<oneshot::Sender<Result<(), SendError>>>);

/// One EventSource session.
pub(crate) struct EsSession {
    info: Arc<SessionInfo>,
    /// The stream's writer, and the sender of the app's (always empty)
    /// message stream: both are dropped when the session closes, which ends
    /// the response and the app's stream.
    writer: Mutex<Option<(mpsc::Sender<Piece>, mpsc::Sender<Message>)>>,
    closed: watch::Sender<Option<CloseReason>>,
    sessions: Weak<Registry<dyn Outbound>>,
}

impl EsSession {
    fn write(&self, text: String) -> Delivery {
        let writer = crate::timer::lock(&self.writer);
        let Some((writer, _)) = writer.as_ref() else {
            let reason = self.closed.borrow().clone();
            return Delivery::failed(SendError::Closed(
                reason.unwrap_or(CloseReason::ConnectionLost),
            ));
        };
        let (token, delivery) = Delivery::waiting();
        match writer.try_send((Bytes::from(text), Some(token))) {
            Ok(()) => delivery,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::failed(SendError::QueueFull {
                limit: writer.max_capacity(),
            }),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Delivery::failed(SendError::Closed(CloseReason::ConnectionLost))
            }
        }
    }

    fn finish(&self, reason: CloseReason) {
        let writer = crate::timer::lock(&self.writer).take();
        if writer.is_none() {
            return;
        }
        // Dropping the writer ends the response once written events drain.
        drop(writer);
        tracing::debug!(session = %self.info.id, %reason, "EventSource session closed");
        self.closed.send_replace(Some(reason));
        if let Some(sessions) = self.sessions.upgrade() {
            sessions.remove(&self.info.id);
        }
    }
}

impl Outbound for EsSession {
    fn send(&self, message: Value) -> Delivery {
        let data = match message {
            Value::String(text) => text,
            other => other.to_string(),
        };
        self.write(event_stream::encode_event(&data, None, None))
    }

    fn send_event(&self, data: String, event: Option<String>, id: Option<String>) -> Delivery {
        self.write(event_stream::encode_event(
            &data,
            event.as_deref(),
            id.as_deref(),
        ))
    }

    fn ping(&self, payload: Bytes) -> Delivery {
        self.write(event_stream::encode_comment(&String::from_utf8_lossy(
            &payload,
        )))
    }

    fn close(&self, reason: CloseReason) {
        self.finish(reason);
    }

    fn close_watch(&self) -> watch::Receiver<Option<CloseReason>> {
        self.closed.subscribe()
    }
}

/// Closes the session when the response body is dropped (the client left).
struct GoneGuard(Weak<EsSession>);

impl Drop for GoneGuard {
    fn drop(&mut self) {
        if let Some(session) = self.0.upgrade() {
            session.finish(CloseReason::ConnectionLost);
        }
    }
}

/// Serves the EventSource endpoint of one layer.
pub(crate) struct EventSourceServer {
    config: Arc<ChannelConfig>,
    event_source: EventSourceConfig,
    sessions: Arc<Registry<dyn Outbound>>,
}

impl fmt::Debug for EventSourceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourceServer").finish_non_exhaustive()
    }
}

/// `lastEventId` from the query string, which some polyfills send instead of the header.
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
    pub(crate) fn new(
        config: Arc<ChannelConfig>,
        event_source: EventSourceConfig,
        sessions: Arc<Registry<dyn Outbound>>,
    ) -> Self {
        Self {
            config,
            event_source,
            sessions,
        }
    }

    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let plain = |status: StatusCode, body: &'static str| {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            response
        };
        if request.method() != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        let (parts, _body) = request.into_parts();
        if !self.config.authorized(&parts).await {
            return plain(StatusCode::FORBIDDEN, "Forbidden");
        }
        if self.sessions.is_full() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }
        let last_event_id = last_event_id(&parts);
        let mut info = SessionInfo::new(
            Transport::EventSource,
            remote_addr(&parts),
            parts.uri.clone(),
            parts.headers,
        );
        info.last_event_id = last_event_id;
        let info = Arc::new(info);

        let (writer, pieces) = mpsc::channel::<Piece>(self.event_source.max_queued_events);
        let mut opening = event_stream::padding();
        if let Some(retry) = self.event_source.retry {
            opening.push_str(&event_stream::encode_retry(retry.as_millis() as u64));
        }
        let _ = writer.try_send((Bytes::from(opening), None));
        let (incoming_tx, incoming) = mpsc::channel(1);
        let session = Arc::new(EsSession {
            info: info.clone(),
            writer: Mutex::new(Some((writer, incoming_tx))),
            closed: watch::Sender::new(None),
            sessions: Arc::downgrade(&self.sessions),
        });
        let outbound: Arc<dyn Outbound> = session.clone();
        if self
            .sessions
            .insert(info.id.clone(), outbound.clone())
            .is_err()
        {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions");
        }

        let guard = GoneGuard(Arc::downgrade(&session));
        let stream = futures::stream::unfold((pieces, guard), |(mut pieces, guard)| async move {
            let (bytes, token) = pieces.recv().await?;
            if let Some(token) = token {
                let _ = token.send(Ok(()));
            }
            Some((Ok::<_, Infallible>(bytes), (pieces, guard)))
        });
        if let Some(every) = self.event_source.ping_interval {
            tokio::spawn(ping_periodically(Arc::downgrade(&session), every));
        }
        self.config
            .start_handler(Session::new(SessionSender::new(info, outbound), incoming));

        let mut response = Response::new(Body::from_stream(stream));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        );
        headers.extend(self.event_source.headers.clone());
        response
    }
}

async fn ping_periodically(session: Weak<EsSession>, every: Duration) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        timer.tick().await;
        let Some(session) = session.upgrade() else {
            return;
        };
        if session.closed.borrow().is_some() {
            return;
        }
        // Fire and forget: a full queue means the stream is not idle anyway.
        drop(session.ping(Bytes::new()));
    }
}
