//! Settings of the BrowserChannel endpoint, with node-browserchannel's
//! defaults (the engine's own settings are `axum_channel_protocol`'s
//! `browserchannel::SessionConfig`, held here as they are).

use axum_channel_protocol::browserchannel::SessionConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the BrowserChannel endpoint.
///
/// ```
/// use axum_channel::{BrowserChannelConfig, ChannelConfig};
/// use std::time::Duration;
///
/// let config = ChannelConfig::new().browserchannel(
///     "/channel",
///     BrowserChannelConfig::new()
///         .keep_alive_interval(Duration::from_secs(30))
///         .client_library("node_modules/browserchannel/dist/bcsocket.js"),
/// );
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct BrowserChannelConfig {
    pub(crate) session: SessionConfig,
    pub(crate) host_prefixes: Vec<String>,
    pub(crate) test_phase_delay: Duration,
    pub(crate) max_maps_per_request: usize,
    pub(crate) client_library: Option<PathBuf>,
}

impl Default for BrowserChannelConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            host_prefixes: Vec::new(),
            test_phase_delay: Duration::from_secs(2),
            max_maps_per_request: 10_000,
            client_library: None,
        }
    }
}

impl BrowserChannelConfig {
    /// node-browserchannel's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Host prefixes handed to clients; each client picks one at random to
    /// get around per-host connection limits of old browsers.
    pub fn host_prefixes<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.host_prefixes = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// How often a `["noop"]` heartbeat goes down an open back channel (default 20 s).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.session.keep_alive_interval = interval;
        self
    }

    /// How long a session lives without a back channel (default 30 s).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session.session_timeout = timeout;
        self
    }

    /// The pause between `11111` and `2` in the buffering proxy test (default 2 s).
    pub fn test_phase_delay(mut self, delay: Duration) -> Self {
        self.test_phase_delay = delay;
        self
    }

    /// Bytes after which a streaming back channel is closed so the client
    /// opens a fresh one (default 10 KiB).
    pub fn back_channel_chunk_limit(mut self, bytes: usize) -> Self {
        self.session.back_channel_chunk_limit = bytes;
        self
    }

    /// Most maps in one forward channel POST (default 10,000).
    pub fn max_maps_per_request(mut self, maps: usize) -> Self {
        self.max_maps_per_request = maps;
        self
    }

    /// Most out-of-order maps held per session while a gap fills (default 1,024).
    pub fn max_held_maps(mut self, maps: usize) -> Self {
        self.session.max_held_maps = maps;
        self
    }

    /// Most bytes of out-of-order maps held per session while a gap fills;
    /// a request past it gets `400 Bad data` and the session stays as it was
    /// (default 1 MiB).
    pub fn max_held_bytes(mut self, bytes: usize) -> Self {
        self.session.max_held_bytes = bytes;
        self
    }

    /// Most arrays queued per session and not yet acknowledged; past it,
    /// `send` fails with [`SendError::QueueFull`](crate::SendError::QueueFull)
    /// (default 4,096).
    pub fn max_outgoing_arrays(mut self, arrays: usize) -> Self {
        self.session.max_outgoing_arrays = arrays;
        self
    }

    /// Most bytes of arrays queued for the client and not yet acknowledged; past it, `send`
    /// fails with `QueueTooLarge` and the layer's overflow policy applies
    /// (default 1 MiB; one larger message still goes out alone when nothing
    /// waits).
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.session.max_queued_bytes = bytes;
        self
    }

    /// How long arrays wait for the client's acknowledgement before the
    /// back channel ends so the client's next request carries it (default
    /// 1 s). A client with nothing to send acknowledges only then.
    pub fn acknowledgement_timeout(mut self, timeout: Duration) -> Self {
        self.session.acknowledgement_timeout = timeout;
        self
    }

    /// Serves this file (the `bcsocket.js` client of the npm package
    /// `browserchannel`) at `{path}/bcsocket.js`.
    pub fn client_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_library = Some(path.into());
        self
    }
}
