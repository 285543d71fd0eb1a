//! Settings of the native WebSocket endpoint (the engine's own settings are
//! `axum_channel_protocol`'s `websocket::SessionConfig`, held here as they are).

use axum_channel_protocol::websocket::permessage_deflate::{Agreed, DeflateConfig};
use axum_channel_protocol::websocket::{SessionConfig, SessionDeflate};
use http::header::HeaderMap;
use std::time::Duration;

/// Settings of the native WebSocket endpoint.
///
/// ```
/// use axum_channel::WebSocketConfig;
/// use std::time::Duration;
///
/// let config = WebSocketConfig::new()
///     .protocols(["chat.v2", "chat.v1"])
///     .ping_interval(Duration::from_secs(30))
///     .max_message_size(1 << 20);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketConfig {
    pub(crate) session: SessionConfig,
    pub(crate) protocols: Vec<String>,
    pub(crate) max_message_size: usize,
    pub(crate) headers: HeaderMap,
    pub(crate) hixie76: bool,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) deflate: Option<DeflateConfig>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            protocols: Vec::new(),
            // A realtime message limit (socket.io's is 1 MB): faye-websocket's
            // 64 MiB would let one client pin that much per message.
            max_message_size: 1 << 20,
            headers: HeaderMap::new(),
            hixie76: false,
            read_buffer_size: 128,
            write_buffer_size: 0,
            deflate: None,
        }
    }
}

impl WebSocketConfig {
    /// The defaults: no subprotocols, 1 MiB messages, no automatic
    /// ping, hixie-76 off, a 128-byte read buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subprotocols the app speaks, in order of preference; the first one
    /// the client also offers is selected.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The largest message (and frame) accepted, default 1 MiB; a larger
    /// one closes the session with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Pings the peer this often; a peer that has not answered the previous
    /// ping by the next one is closed (1001).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.session.ping_interval = Some(interval);
        self
    }

    /// Adds a header to every handshake response. Invalid names or values are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        crate::reply::append_header(&mut self.headers, name, value);
        self
    }

    /// Also accepts the legacy hixie-75 and hixie-76 handshakes (off by default).
    pub fn hixie76(mut self, enabled: bool) -> Self {
        self.hixie76 = enabled;
        self
    }

    /// Most messages queued for the peer and not yet written; past it,
    /// `send` fails with `QueueFull` (default 4,096).
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

    /// The read buffer tungstenite keeps for the connection's life
    /// (`read_buffer_size`, default 128 bytes). Reads from the socket take
    /// up to 8 KiB at once whatever its size: bytes the buffer cannot hold
    /// yet wait in a spill buffer that is freed as soon as the connection
    /// goes quiet, so idle sessions stay light.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(64);
        self
    }

    /// How many bytes of outgoing frames are gathered before a write
    /// (tungstenite's `write_buffer_size`, default 0: every frame is written
    /// at once; a burst is still flushed together).
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Negotiates permessage-deflate (RFC 7692) with clients that offer it,
    /// with these settings (off by default). `max_message_size` then
    /// bounds a message once inflated.
    ///
    /// ```
    /// use axum_channel::{DeflateConfig, WebSocketConfig};
    ///
    /// let config = WebSocketConfig::new().permessage_deflate(DeflateConfig {
    ///     level: 1,
    ///     min_size: 64,
    ///     ..DeflateConfig::default()
    /// });
    /// # let _ = config;
    /// ```
    pub fn permessage_deflate(mut self, config: DeflateConfig) -> Self {
        self.deflate = Some(config);
        self
    }

    /// The engine's settings for a connection with this framing, and the
    /// permessage-deflate its handshake agreed on.
    pub(crate) fn session(&self, rfc6455: bool, deflate: Option<&Agreed>) -> SessionConfig {
        SessionConfig {
            binary: rfc6455,
            pings: rfc6455,
            deflate: deflate.map(SessionDeflate::from),
            ..self.session
        }
    }
}
