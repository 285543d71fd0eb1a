//! What the connection's push messages tell the node's tasks: a message
//! arrived, or the connection dropped.

use metrics::{Counter, Gauge};
use redis::{PushInfo, PushKind, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// One message heard on a channel.
pub(crate) struct Heard {
    pub(crate) channel: String,
    pub(crate) payload: Vec<u8>,
}

/// The node's counters about Redis itself.
pub(crate) struct Metrics {
    pub(crate) connected: Gauge,
    pub(crate) disconnects: Counter,
    pub(crate) reconnects: Counter,
    pub(crate) dropped: Counter,
    /// Broadcasts that had to wait for Redis to come back.
    pub(crate) held_appends: Counter,
    /// Broadcasts refused because too many were waiting.
    pub(crate) refused_appends: Counter,
}

impl Metrics {
    fn new() -> Self {
        Self {
            connected: metrics::gauge!("channel_redis_connected"),
            disconnects: metrics::counter!("channel_redis_disconnects_total"),
            reconnects: metrics::counter!("channel_redis_reconnects_total"),
            dropped: metrics::counter!("channel_redis_dropped_messages_total"),
            held_appends: metrics::counter!("channel_redis_held_broadcasts_total"),
            refused_appends: metrics::counter!("channel_redis_refused_broadcasts_total"),
        }
    }
}

/// Shared by the connection's push handler and the node's tasks.
pub(crate) struct Signals {
    /// Counts connections: a subscription confirmed under an older epoch
    /// was made on a connection that is gone.
    pub(crate) epoch: AtomicU64,
    /// True while the connection is believed up.
    pub(crate) connected: AtomicBool,
    /// Wakes the recovery task.
    pub(crate) lost: Notify,
    /// Wakes the subscription task.
    pub(crate) changed: Notify,
    /// Signalled once Redis is back and every channel subscribed again, and
    /// when a message heard had to be dropped (the node's queue was full).
    pub(crate) resumed: Notify,
    pub(crate) metrics: Metrics,
}

impl Signals {
    pub(crate) fn new() -> Arc<Self> {
        let metrics = Metrics::new();
        metrics.connected.set(0.0);
        Arc::new(Self {
            epoch: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            lost: Notify::new(),
            changed: Notify::new(),
            resumed: Notify::new(),
            metrics,
        })
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The connection dropped, or a command found Redis unreachable: every
    /// subscription must be made again once it is back.
    pub(crate) fn lost(&self, why: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if self.connected.swap(false, Ordering::AcqRel) {
            tracing::warn!(why, "lost the connection to Redis; reconnecting");
            self.metrics.disconnects.increment(1);
            self.metrics.connected.set(0.0);
        }
        self.lost.notify_one();
    }

    /// Every subscription is in place on a live connection.
    pub(crate) fn settled(&self, channels: usize) {
        if !self.connected.swap(true, Ordering::AcqRel) {
            self.metrics.connected.set(1.0);
            if self.epoch() > 0 {
                tracing::info!(channels, "reconnected to Redis and subscribed again");
                self.metrics.reconnects.increment(1);
                self.resumed.notify_one();
            }
        }
    }
}

/// The connection's push handler: messages go to the bounded queue the
/// node's reader drains, a disconnection to the recovery task. It must not
/// block, so a full queue drops the message, counts it and has the node
/// read its rooms' logs again (a message of pub/sub alone stays lost).
pub(crate) fn push_handler(
    signals: Arc<Signals>,
    heard: mpsc::Sender<Heard>,
) -> impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static {
    move |push: PushInfo| {
        match push.kind {
            PushKind::Message => {
                let mut data = push.data.into_iter();
                let channel = data.next().and_then(into_bytes);
                let payload = data.next().and_then(into_bytes);
                if let (Some(channel), Some(payload)) = (channel, payload) {
                    let message = Heard {
                        channel: String::from_utf8_lossy(&channel).into_owned(),
                        payload,
                    };
                    if heard.try_send(message).is_err() {
                        signals.metrics.dropped.increment(1);
                        // The node reads what its rooms' logs got, this one
                        // included, as after an outage.
                        signals.resumed.notify_one();
                    }
                }
            }
            PushKind::Disconnection => signals.lost("the connection closed"),
            _ => {}
        }
        Ok(())
    }
}

fn into_bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}
