//! How a node reaches Redis and announces itself.

use std::time::Duration;

/// The settings of a [`RedisAdapter`](crate::RedisAdapter).
///
/// ```
/// use axum_channel_redis::RedisConfig;
/// use std::time::Duration;
/// let config = RedisConfig::new("redis://127.0.0.1:6379/")
///     .prefix("chat")
///     .node_name("node-a")
///     .heartbeat(Duration::from_secs(1), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) node_name: Option<String>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) node_ttl: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) max_pending_messages: usize,
    pub(crate) max_held_broadcasts: usize,
    pub(crate) max_held_bytes: usize,
}

impl RedisConfig {
    /// Nodes given the same Redis URL (and prefix) form one cluster.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "axum-channel".into(),
            node_name: None,
            heartbeat_interval: Duration::from_secs(1),
            node_ttl: Duration::from_secs(3),
            command_timeout: Duration::from_secs(1),
            max_pending_messages: 65_536,
            max_held_broadcasts: 10_000,
            max_held_bytes: 16 << 20,
        }
    }

    /// Starts every channel and key name (default `axum-channel`), so several
    /// clusters can share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// A label for this node in logs and in its liveness key (default: its
    /// id, unique per process).
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// How often the node renews its liveness key, and how long the key
    /// lives (defaults 1 s and 3 s): a node that stops renewing it leaves
    /// the cluster's counts once it expires.
    pub fn heartbeat(mut self, interval: Duration, ttl: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.node_ttl = ttl.max(interval);
        self
    }

    /// How long a Redis command may take before it counts as failed
    /// (default 1 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Most messages heard from Redis and not yet handed to the layer;
    /// past it, messages are dropped and counted (default 65,536).
    pub fn max_pending_messages(mut self, messages: usize) -> Self {
        self.max_pending_messages = messages.max(1);
        self
    }

    /// Most broadcasts to rooms with a history that wait for Redis while it
    /// is unreachable, and the bytes they hold (defaults 10,000 and 16 MiB);
    /// past either, a broadcast fails at once and reaches nobody. Those
    /// that wait are appended once Redis is back.
    pub fn max_held_broadcasts(mut self, broadcasts: usize, bytes: usize) -> Self {
        self.max_held_broadcasts = broadcasts.max(1);
        self.max_held_bytes = bytes.max(1);
        self
    }
}
