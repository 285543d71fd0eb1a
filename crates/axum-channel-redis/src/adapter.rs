//! The adapter: one Redis connection per node for publishing, subscribing
//! and liveness, and the tasks around it.

use crate::config::RedisConfig;
use crate::liveness::{self, Heartbeat};
use crate::log::{Backlog, RedisLog};
use crate::signals::{self, Heard, Signals};
use crate::subscriptions::{self, command_error, Subscriptions};
use axum_channel_cluster::{Adapter, ClusterError, ClusterNode, RoomLog, Topic};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// A cluster adapter over Redis pub/sub: give it to
/// `axum_channel::ChannelConfig::cluster`.
///
/// Each room has its own channel (`PREFIX:room:NAME`), subscribed while
/// this node has members in it; broadcasts to everyone use `PREFIX:all`.
/// The node renews a liveness key `PREFIX:node:ID` every heartbeat; counts
/// and lookups ask the nodes whose key is alive. When Redis goes away, the
/// node reconnects and subscribes again by itself, logs both and counts
/// them (`channel_redis_disconnects_total`, `channel_redis_reconnects_total`,
/// gauge `channel_redis_connected`); broadcasts made meanwhile fail with
/// `axum_channel::BroadcastError::Cluster` and
/// still reach this node's members. Pub/sub keeps nothing for a node that
/// is away: what was published while it was disconnected does not reach it.
///
/// Clones share the connection.
#[derive(Clone)]
pub struct RedisAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: String,
    label: String,
    prefix: String,
    command_timeout: Duration,
    heartbeat_key: String,
    manager: ConnectionManager,
    signals: Arc<Signals>,
    subscriptions: Arc<Mutex<Subscriptions>>,
    node: Arc<OnceLock<ClusterNode>>,
    /// The rooms' history logs.
    log: Arc<RedisLog>,
    /// Set once the node left: the heartbeat and recovery stop.
    left: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.left.store(true, Ordering::Release);
        // Wake the tasks so they see the adapter is gone.
        self.signals.lost.notify_one();
        self.signals.changed.notify_one();
    }
}

impl fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("node_id", &self.inner.node_id)
            .field("label", &self.inner.label)
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisAdapter {
    /// Connects to Redis (RESP3, which Redis 6 and later speak), subscribes
    /// to the node's own channels and writes its liveness key; fails if
    /// Redis cannot be reached now. Call it inside a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// use axum_channel::{ChannelConfig, ChannelLayer};
    /// use axum_channel_redis::{RedisAdapter, RedisConfig};
    ///
    /// let adapter = RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379/")).await?;
    /// let layer = ChannelLayer::new(ChannelConfig::new().cluster(adapter));
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: RedisConfig) -> redis::RedisResult<Self> {
        let node_id = uuid::Uuid::new_v4().simple().to_string();
        let label = config.node_name.clone().unwrap_or_else(|| node_id.clone());
        let span = tracing::info_span!("redis", node = %label);
        let info = config.url.as_str().into_connection_info()?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        let signals = Signals::new();
        let (heard, hearing) = mpsc::channel(config.max_pending_messages);
        let manager_config = ConnectionManagerConfig::new()
            .set_push_sender(signals::push_handler(signals.clone(), heard))
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let mut manager = client
            .get_connection_manager_with_config(manager_config)
            .await?;

        let prefix = config.prefix.clone();
        let own = [Topic::All, Topic::Requests, Topic::Node(node_id.clone())]
            .map(|topic| topic.channel(&prefix));
        manager.subscribe(&own).await?;
        let mut subscriptions = Subscriptions::default();
        for channel in own {
            // Confirmed just above, on the first connection (epoch 0).
            let _ = subscriptions.want(channel.clone(), 0);
        }
        let subscriptions = Arc::new(Mutex::new(subscriptions));
        signals.changed.notify_one();

        let heartbeat = Heartbeat {
            key: format!("{prefix}:node:{node_id}"),
            label: label.clone(),
            interval: config.heartbeat_interval,
            ttl: config.node_ttl,
            timeout: config.command_timeout,
        };
        heartbeat
            .beat(&mut manager)
            .await
            .map_err(|error| redis::RedisError::from((redis::ErrorKind::Io, "SET", error)))?;
        let heartbeat_key = heartbeat.key.clone();
        let node = Arc::new(OnceLock::new());
        let left = Arc::new(AtomicBool::new(false));

        tokio::spawn(read(hearing, prefix.clone(), node.clone()).instrument(span.clone()));
        tokio::spawn(
            subscriptions::run(
                Arc::downgrade(&subscriptions),
                signals.clone(),
                manager.clone(),
                config.command_timeout,
            )
            .instrument(span.clone()),
        );
        tokio::spawn(
            liveness::beat(
                heartbeat,
                manager.clone(),
                signals.clone(),
                Arc::downgrade(&left),
            )
            .instrument(span.clone()),
        );
        tokio::spawn(
            liveness::recover(
                signals.clone(),
                manager.clone(),
                config.command_timeout,
                Arc::downgrade(&left),
            )
            .instrument(span.clone()),
        );
        tokio::spawn(
            resume(signals.clone(), node.clone(), Arc::downgrade(&left)).instrument(span.clone()),
        );
        let log = Arc::new(RedisLog {
            prefix: prefix.clone(),
            manager: manager.clone(),
            timeout: config.command_timeout,
            signals: signals.clone(),
            backlog: Arc::new(Backlog::default()),
            max_held: config.max_held_broadcasts,
            max_held_bytes: config.max_held_bytes,
        });
        span.in_scope(|| tracing::info!(id = %node_id, "joined the cluster through Redis"));
        Ok(Self {
            inner: Arc::new(Inner {
                node_id,
                label,
                prefix,
                command_timeout: config.command_timeout,
                heartbeat_key,
                manager,
                signals,
                subscriptions,
                node,
                log,
                left,
            }),
        })
    }

    /// The node's label in logs (its name, or its id).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Leaves the cluster at once: stops the heartbeat and deletes the
    /// liveness key, so the other nodes stop counting this one without
    /// waiting for the key to expire. Call it at shutdown.
    pub async fn leave(&self) {
        self.inner.left.store(true, Ordering::Release);
        let mut manager = self.inner.manager.clone();
        let delete = redis::cmd("DEL").arg(&self.inner.heartbeat_key).to_owned();
        let _ = tokio::time::timeout(
            self.inner.command_timeout,
            delete.query_async::<()>(&mut manager),
        )
        .await;
    }
}

/// Hands what Redis pushes to the layer, in order.
async fn read(
    mut hearing: mpsc::Receiver<Heard>,
    prefix: String,
    node: Arc<OnceLock<ClusterNode>>,
) {
    while let Some(heard) = hearing.recv().await {
        let (Some(node), Some(topic)) = (node.get(), Topic::parse(&prefix, &heard.channel)) else {
            continue;
        };
        node.receive(&topic, &heard.payload);
    }
}

/// Tells the layer each time Redis is back, so it fetches what its rooms'
/// logs got meanwhile.
async fn resume(
    signals: Arc<Signals>,
    node: Arc<OnceLock<ClusterNode>>,
    left: std::sync::Weak<AtomicBool>,
) {
    loop {
        signals.resumed.notified().await;
        match left.upgrade() {
            Some(left) if !left.load(Ordering::Acquire) => {}
            _ => return,
        }
        if let Some(node) = node.get() {
            node.resumed();
        }
    }
}

/// `*`, `?`, `[` and `\` match literally in a `SCAN MATCH` pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl Adapter for RedisAdapter {
    fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    fn start(&self, node: ClusterNode) {
        if self.inner.node.set(node).is_err() {
            tracing::warn!("a Redis adapter serves one layer; this one is taken");
        }
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'static, Result<(), ClusterError>> {
        let channel = topic.channel(&self.inner.prefix);
        let epoch = self.inner.signals.epoch();
        let waiting = subscriptions::lock(&self.inner.subscriptions).want(channel, epoch);
        let Some(waiting) = waiting else {
            return futures::future::ready(Ok(())).boxed();
        };
        self.inner.signals.changed.notify_one();
        // Long enough for a batch to go through behind another one.
        let timeout = self.inner.command_timeout * 2;
        async move {
            match tokio::time::timeout(timeout, waiting).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(ClusterError::new(
                    "the room was left before Redis confirmed it",
                )),
                Err(_) => Err(ClusterError::new(
                    "Redis did not confirm the subscription in time",
                )),
            }
        }
        .boxed()
    }

    fn unsubscribe(&self, topic: Topic) {
        let channel = topic.channel(&self.inner.prefix);
        subscriptions::lock(&self.inner.subscriptions).unwant(&channel);
        self.inner.signals.changed.notify_one();
    }

    fn publish(&self, topic: Topic, frame: Bytes) -> BoxFuture<'static, Result<(), ClusterError>> {
        let mut manager = self.inner.manager.clone();
        let command = redis::cmd("PUBLISH")
            .arg(topic.channel(&self.inner.prefix))
            .arg(&frame[..])
            .to_owned();
        let timeout = self.inner.command_timeout;
        let signals = self.inner.signals.clone();
        async move {
            let outcome =
                tokio::time::timeout(timeout, command.query_async::<i64>(&mut manager)).await;
            match outcome {
                Ok(Ok(_)) => Ok(()),
                outcome => {
                    let error = command_error("PUBLISH", outcome);
                    signals.lost(&error.to_string());
                    Err(error)
                }
            }
        }
        .boxed()
    }

    fn room_log(&self) -> Option<Arc<dyn RoomLog>> {
        Some(self.inner.log.clone())
    }

    fn live_nodes(&self) -> BoxFuture<'static, Result<Vec<String>, ClusterError>> {
        let mut manager = self.inner.manager.clone();
        let key_prefix = format!("{}:node:", self.inner.prefix);
        let pattern = format!("{}*", glob_escape(&key_prefix));
        let own = self.inner.node_id.clone();
        let timeout = self.inner.command_timeout;
        async move {
            let scan = async {
                let mut nodes = vec![own];
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut manager)
                        .await?;
                    for key in keys {
                        if let Some(id) = key.strip_prefix(&key_prefix) {
                            if !nodes.iter().any(|node| node == id) {
                                nodes.push(id.to_owned());
                            }
                        }
                    }
                    if next == 0 {
                        return Ok(nodes);
                    }
                    cursor = next;
                }
            };
            let outcome: Result<redis::RedisResult<Vec<String>>, _> =
                tokio::time::timeout(timeout, scan).await;
            match outcome {
                Ok(Ok(nodes)) => Ok(nodes),
                outcome => Err(command_error("SCAN", outcome)),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn patterns_match_prefixes_literally() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
