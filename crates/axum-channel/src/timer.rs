//! Shared plumbing of stateful sessions: a lock that survives a panic
//! elsewhere, and the one task per session that runs its timers.

use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

/// Locks `mutex`. A panic while it was held cannot leave session state
/// half-written in a way later requests would trip over, so the data is used
/// as it is rather than poisoning every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A session whose timers one task runs.
pub(crate) trait Timed: Send + Sync + 'static {
    /// Wakes the task when the next deadline may have changed.
    fn wake(&self) -> &Notify;
    /// Does any deferred work and returns the next deadline; `None` when the
    /// session is over and the task must end.
    fn next_deadline(&self) -> Option<Instant>;
    /// Called once `next_deadline` has passed.
    fn on_deadline(&self);
}

/// Runs a session's timers until it is over.
pub(crate) async fn run_timers<T: Timed>(session: Arc<T>) {
    while let Some(deadline) = session.next_deadline() {
        tokio::select! {
            _ = session.wake().notified() => {}
            _ = sleep_until(deadline) => session.on_deadline(),
        }
    }
}
