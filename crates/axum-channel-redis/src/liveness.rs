//! Keeping the node known to the cluster, and getting Redis back when it
//! goes away.

use crate::signals::Signals;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What the heartbeat writes.
pub(crate) struct Heartbeat {
    pub(crate) key: String,
    pub(crate) label: String,
    pub(crate) interval: Duration,
    pub(crate) ttl: Duration,
    pub(crate) timeout: Duration,
}

impl Heartbeat {
    /// Writes the node's liveness key once.
    pub(crate) async fn beat(&self, manager: &mut ConnectionManager) -> Result<(), String> {
        let command = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.label)
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .to_owned();
        match tokio::time::timeout(self.timeout, command.query_async::<()>(manager)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

/// Renews the liveness key every interval until the node leaves; a failed
/// renewal counts as a lost connection.
pub(crate) async fn beat(
    heartbeat: Heartbeat,
    mut manager: ConnectionManager,
    signals: Arc<Signals>,
    left: Weak<AtomicBool>,
) {
    let mut ticks = tokio::time::interval(heartbeat.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match left.upgrade() {
            Some(left) if !left.load(Ordering::Acquire) => {}
            _ => return,
        }
        if let Err(error) = heartbeat.beat(&mut manager).await {
            tracing::debug!(%error, "cannot renew the node's liveness key");
            signals.lost(&error);
        }
    }
}

/// After each loss, pings Redis (backing off up to a second) until it
/// answers, then has the subscription task subscribe everything again.
pub(crate) async fn recover(
    signals: Arc<Signals>,
    mut manager: ConnectionManager,
    timeout: Duration,
    left: Weak<AtomicBool>,
) {
    loop {
        signals.lost.notified().await;
        let mut delay = Duration::from_millis(50);
        loop {
            match left.upgrade() {
                Some(left) if !left.load(Ordering::Acquire) => {}
                _ => return,
            }
            let ping = redis::cmd("PING").to_owned();
            if let Ok(Ok(())) =
                tokio::time::timeout(timeout, ping.query_async::<()>(&mut manager)).await
            {
                break;
            }
            // Backing off between attempts to reach a server that is down.
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
        signals.changed.notify_one();
    }
}
