//! The channels this node wants, the ones Redis confirmed, and the task
//! that brings the second in line with the first.
//!
//! The layer says which rooms it needs; the task subscribes and
//! unsubscribes in batches until Redis holds exactly that set. Working
//! from the wanted set rather than a queue of calls keeps the state bounded
//! by the number of rooms however fast sessions join and leave, and makes
//! resubscribing after a reconnection the same job as any other change.

use crate::signals::Signals;
use axum_channel_cluster::ClusterError;
use redis::aio::ConnectionManager;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), ClusterError>>;

#[derive(Default)]
pub(crate) struct Subscriptions {
    /// The channels the node needs.
    wanted: BTreeSet<String>,
    /// The channels Redis confirmed, on the connection of `epoch`.
    confirmed: BTreeSet<String>,
    epoch: u64,
    /// Joins waiting for their room's channel.
    waiters: HashMap<String, Vec<Waiter>>,
}

pub(crate) fn lock(subscriptions: &Mutex<Subscriptions>) -> MutexGuard<'_, Subscriptions> {
    subscriptions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Subscriptions {
    /// Wants `channel`; returns the receiver of its confirmation, or `None`
    /// when it is confirmed already.
    pub(crate) fn want(
        &mut self,
        channel: String,
        epoch: u64,
    ) -> Option<oneshot::Receiver<Result<(), ClusterError>>> {
        self.wanted.insert(channel.clone());
        if self.epoch == epoch && self.confirmed.contains(&channel) {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        let waiters = self.waiters.entry(channel).or_default();
        waiters.retain(|waiter| !waiter.is_closed());
        waiters.push(sender);
        Some(receiver)
    }

    /// No longer wants `channel`.
    pub(crate) fn unwant(&mut self, channel: &str) {
        self.wanted.remove(channel);
        self.waiters.remove(channel);
    }

    /// What to subscribe and unsubscribe to match the wanted set; forgets
    /// confirmations of an older connection.
    fn work(&mut self, epoch: u64) -> (Vec<String>, Vec<String>) {
        if self.epoch != epoch {
            self.confirmed.clear();
            self.epoch = epoch;
        }
        let subscribe = self.wanted.difference(&self.confirmed).cloned().collect();
        let unsubscribe = self.confirmed.difference(&self.wanted).cloned().collect();
        (subscribe, unsubscribe)
    }

    fn confirm(&mut self, channels: Vec<String>, epoch: u64) {
        if self.epoch != epoch {
            return;
        }
        for channel in channels {
            if let Some(waiters) = self.waiters.remove(&channel) {
                for waiter in waiters {
                    let _ = waiter.send(Ok(()));
                }
            }
            self.confirmed.insert(channel);
        }
    }

    fn fail(&mut self, channels: &[String], error: &ClusterError) {
        for channel in channels {
            if let Some(waiters) = self.waiters.remove(channel) {
                for waiter in waiters {
                    let _ = waiter.send(Err(error.clone()));
                }
            }
        }
    }

    fn forget(&mut self, channels: &[String], epoch: u64) {
        if self.epoch == epoch {
            for channel in channels {
                self.confirmed.remove(channel);
            }
        }
    }
}

/// The subscription task: wakes on every change and on every reconnection.
pub(crate) async fn run(
    subscriptions: Weak<Mutex<Subscriptions>>,
    signals: Arc<Signals>,
    manager: ConnectionManager,
    timeout: Duration,
) {
    loop {
        signals.changed.notified().await;
        let Some(subscriptions) = subscriptions.upgrade() else {
            return;
        };
        settle(&subscriptions, &signals, manager.clone(), timeout).await;
    }
}

/// Subscribes and unsubscribes until Redis holds the wanted set, or a
/// command fails (then recovery wakes this task again).
async fn settle(
    subscriptions: &Mutex<Subscriptions>,
    signals: &Signals,
    mut manager: ConnectionManager,
    timeout: Duration,
) {
    loop {
        let epoch = signals.epoch();
        let (subscribe, unsubscribe) = lock(subscriptions).work(epoch);
        if subscribe.is_empty() && unsubscribe.is_empty() {
            let channels = lock(subscriptions).confirmed.len();
            signals.settled(channels);
            return;
        }
        if !subscribe.is_empty() {
            match tokio::time::timeout(timeout, manager.subscribe(&subscribe)).await {
                Ok(Ok(())) => lock(subscriptions).confirm(subscribe, epoch),
                outcome => {
                    let error = command_error("SUBSCRIBE", outcome);
                    lock(subscriptions).fail(&subscribe, &error);
                    signals.lost(&error.to_string());
                    return;
                }
            }
        }
        if !unsubscribe.is_empty() {
            match tokio::time::timeout(timeout, manager.unsubscribe(&unsubscribe)).await {
                Ok(Ok(())) => lock(subscriptions).forget(&unsubscribe, epoch),
                outcome => {
                    signals.lost(&command_error("UNSUBSCRIBE", outcome).to_string());
                    return;
                }
            }
        }
    }
}

/// What went wrong with a command that failed or timed out.
pub(crate) fn command_error<T>(
    command: &str,
    outcome: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
) -> ClusterError {
    match outcome {
        Ok(Err(error)) => ClusterError::new(format!("Redis {command} failed: {error}")),
        Err(_) => ClusterError::new(format!("Redis {command} timed out")),
        Ok(Ok(_)) => ClusterError::new(format!("Redis {command} succeeded")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_needs_every_channel_again() {
        let mut subscriptions = Subscriptions::default();
        assert!(subscriptions.want("a".into(), 0).is_some());
        let (subscribe, _) = subscriptions.work(0);
        subscriptions.confirm(subscribe, 0);
        assert!(subscriptions.want("a".into(), 0).is_none());
        // The connection dropped: epoch 1 confirms nothing yet.
        assert!(subscriptions.want("a".into(), 1).is_some());
        assert_eq!(subscriptions.work(1), (vec!["a".to_string()], vec![]));
    }

    #[test]
    fn churn_leaves_only_the_last_wish() {
        let mut subscriptions = Subscriptions::default();
        for _ in 0..1000 {
            let _ = subscriptions.want("a".into(), 0);
            subscriptions.unwant("a");
        }
        let _ = subscriptions.want("b".into(), 0);
        assert_eq!(subscriptions.work(0), (vec!["b".to_string()], vec![]));
        subscriptions.confirm(vec!["b".into()], 0);
        subscriptions.unwant("b");
        assert_eq!(subscriptions.work(0), (vec![], vec!["b".to_string()]));
        assert!(subscriptions.waiters.is_empty());
    }

    #[test]
    fn a_failed_subscription_tells_its_waiters() {
        let mut subscriptions = Subscriptions::default();
        let mut waiter = subscriptions.want("a".into(), 0).unwrap();
        subscriptions.fail(&["a".into()], &ClusterError::new("down"));
        assert_eq!(waiter.try_recv().unwrap(), Err(ClusterError::new("down")));
        // Still wanted: the next connection subscribes it.
        assert_eq!(subscriptions.work(1).0, ["a"]);
    }
}
