//! The lock and clock every part of the layer uses.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Locks `mutex`. A panic while it was held cannot leave the maps or a
/// session's state half-written in a way later requests would trip over, so
/// the data is used as it is rather than poisoning every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The current time as engines take it. It follows Tokio's clock, so tests
/// that pause that clock drive the engines' timers too.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
