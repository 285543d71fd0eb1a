//! One timer task for all the HTTP sessions of a layer.
//!
//! A session engine says when it wants to be woken (`poll_timeout`); the
//! driver files that deadline here, replacing the session's earlier one
//! only when the new one comes sooner. When a deadline passes, the session
//! runs its timers and files its next deadline. An idle session costs one
//! entry in a map, not a task.

use crate::base::sync::lock;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A session the timer task can wake.
pub(crate) trait Timed: Send + Sync + 'static {
    /// The deadline filed for this session has passed.
    fn fire(self: Arc<Self>, deadline: Instant);
}

type Queue = BTreeMap<(Instant, u64), Weak<dyn Timed>>;

/// Deadlines that passed, each with its session.
type Due = Vec<(Instant, Weak<dyn Timed>)>;

/// Deadlines of sessions, and the task that waits for the next one.
#[derive(Default)]
pub(crate) struct Timers {
    queue: Mutex<Queue>,
    changed: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("deadlines", &lock(&self.queue).len())
            .finish()
    }
}

impl Timers {
    /// Files `deadline` for session `key`, replacing its `previous` one.
    pub(crate) fn schedule(
        self: &Arc<Self>,
        key: u64,
        previous: Option<Instant>,
        deadline: Instant,
        session: Weak<dyn Timed>,
    ) {
        let earliest = {
            let mut queue = lock(&self.queue);
            if let Some(previous) = previous {
                queue.remove(&(previous, key));
            }
            queue.insert((deadline, key), session);
            queue.keys().next() == Some(&(deadline, key))
        };
        self.ensure_task();
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Starts the timer task on the current runtime unless it runs already.
    fn ensure_task(self: &Arc<Self>) {
        let mut task = lock(&self.task);
        if task.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!("session timers need a Tokio runtime");
            return;
        }
        *task = Some(tokio::spawn(run(
            Arc::downgrade(self),
            self.changed.clone(),
        )));
    }

    fn due(&self, now: Instant) -> (Due, Option<Instant>) {
        let mut queue = lock(&self.queue);
        let mut due = Vec::new();
        while let Some(entry) = queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((deadline, _), session) = entry.remove_entry();
            due.push((deadline, session));
        }
        (due, queue.keys().next().map(|(deadline, _)| *deadline))
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        // Lets the task see that the layer is gone.
        self.changed.notify_one();
    }
}

/// Waits for the next deadline and fires every session that is due, until
/// the layer is gone.
async fn run(timers: Weak<Timers>, changed: Arc<Notify>) {
    loop {
        let Some(strong) = timers.upgrade() else {
            return;
        };
        let changed = changed.notified();
        let now = crate::base::sync::now();
        let (due, next) = strong.due(now);
        for (deadline, session) in due {
            if let Some(session) = session.upgrade() {
                session.fire(deadline);
            }
        }
        drop(strong);
        match next {
            Some(next) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
}
