//! Settings of the SockJS endpoint, with sockjs-node's option names and
//! defaults (the engine's own settings are `axum_channel_protocol`'s
//! `sockjs::SessionConfig`, held here as they are).

use axum_channel_protocol::sockjs::SessionConfig;
use axum_channel_protocol::websocket::permessage_deflate::DeflateConfig;
use http::HeaderMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
    pub(crate) session: SessionConfig,
    pub(crate) sockjs_url: String,
    pub(crate) websocket: bool,
    pub(crate) jsessionid: JSessionId,
    pub(crate) disable_cors: bool,
    pub(crate) max_message_size: usize,
    pub(crate) deflate: Option<DeflateConfig>,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            sockjs_url: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js".into(),
            websocket: true,
            jsessionid: JSessionId::Off,
            disable_cors: false,
            // A realtime message limit (socket.io's is 1 MB), not
            // sockjs-node's 64 MiB, which would let one client pin that much.
            max_message_size: 1 << 20,
            deflate: None,
        }
    }
}

impl fmt::Debug for SockJsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockJsConfig")
            .field("session", &self.session)
            .field("sockjs_url", &self.sockjs_url)
            .field("websocket", &self.websocket)
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
        self.session.response_limit = bytes;
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
        self.session.heartbeat_delay = delay;
        self
    }

    /// How long a session without a receiver lives (default 5 s).
    pub fn disconnect_delay(mut self, delay: Duration) -> Self {
        self.session.disconnect_delay = delay;
        self
    }

    /// Leaves out the CORS headers (`disable_cors`).
    pub fn disable_cors(mut self, disabled: bool) -> Self {
        self.disable_cors = disabled;
        self
    }

    /// Most messages buffered for a client between its requests (default 4,096).
    pub fn max_queued_messages(mut self, messages: usize) -> Self {
        self.session.max_queued_messages = messages;
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

    /// Largest WebSocket message accepted (default 1 MiB; sockjs-node's is
    /// 2^26 - 1 bytes); a larger one closes with 1009. Send bodies are
    /// bounded by the layer's `max_request_body`.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Negotiates permessage-deflate (RFC 7692) on the `websocket`
    /// transport and the raw `/websocket` endpoint, with these settings
    /// (off by default). `max_message_size` then bounds a message once
    /// inflated.
    pub fn permessage_deflate(mut self, config: DeflateConfig) -> Self {
        self.deflate = Some(config);
        self
    }
}
