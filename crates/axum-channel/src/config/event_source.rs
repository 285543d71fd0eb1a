//! Settings of the EventSource endpoint.

use http::header::HeaderMap;
use std::time::Duration;

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
    /// The protocol engine's settings.
    pub(crate) fn session(&self) -> channel_protocol::event_stream::SessionConfig {
        channel_protocol::event_stream::SessionConfig {
            retry: self.retry,
            ping_interval: self.ping_interval,
            max_queued_events: self.max_queued_events,
        }
    }

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
        self.retry = Some(retry);
        self
    }

    /// Writes a comment line after this long without a write, so proxies
    /// keep the stream open.
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

    /// Most events queued and not yet written to the stream (taken by its
    /// response body); past it, `send` fails with `QueueFull` (default 4,096).
    pub fn max_queued_events(mut self, events: usize) -> Self {
        self.max_queued_events = events.max(1);
        self
    }
}
