//! Settings of the EventSource endpoint (the engine's own settings are
//! `axum_channel_protocol`'s `event_stream::SessionConfig`, held here as they are).

use axum_channel_protocol::event_stream::SessionConfig;
use http::header::HeaderMap;
use std::time::Duration;

/// Settings of the EventSource endpoint.
#[derive(Debug, Clone, Default)]
pub struct EventSourceConfig {
    pub(crate) session: SessionConfig,
    headers: HeaderMap,
}

impl EventSourceConfig {
    /// Extra headers of every stream response.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The defaults: no `retry`, no pings, no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells clients how long to wait before reconnecting (`retry:`).
    pub fn retry(mut self, retry: Duration) -> Self {
        self.session.retry = Some(retry);
        self
    }

    /// Writes a comment line after this long without a write, so proxies
    /// keep the stream open.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.session.ping_interval = Some(interval);
        self
    }

    /// Adds a header to every stream response (for example CORS headers).
    /// Invalid names or values are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        crate::reply::append_header(&mut self.headers, name, value);
        self
    }

    /// Most events queued and not yet written to the stream (taken by its
    /// response body); past it, `send` fails with `QueueFull` (default 4,096).
    pub fn max_queued_events(mut self, events: usize) -> Self {
        self.session.max_queued_events = events.max(1);
        self
    }

    /// Most bytes queued for the peer and not yet written; past it, `send`
    /// fails with `QueueTooLarge` and the layer's overflow policy applies
    /// (default 1 MiB; one larger message still goes out alone when nothing
    /// waits).
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.session.max_queued_bytes = bytes;
        self
    }
}
