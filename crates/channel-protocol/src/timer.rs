//! Named deadlines, one table per engine, as quinn-proto keeps its timers.
//!
//! Each engine names its timers with a small enum ([`Timer`]) and keeps
//! their deadlines in a [`TimerTable`]. Its `poll_timeout` is the earliest
//! deadline of the timers that run in its current state, and its
//! `handle_timeout` fires the ones that are due, by name.
//!
//! An idle session is paid for in bytes, so the table stores each deadline
//! as nanoseconds after the instant the table was made: eight bytes a
//! timer instead of the sixteen of an `Option<Instant>`, and sixteen for
//! that first instant. A deadline keeps its full precision.
//!
//! ```
//! use axum_channel_protocol::timer::{Timer, TimerTable};
//! use std::time::{Duration, Instant};
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum Named {
//!     Ping,
//!     Idle,
//! }
//!
//! impl Timer for Named {
//!     const ALL: &'static [Self] = &[Named::Ping, Named::Idle];
//!     fn index(self) -> usize {
//!         self as usize
//!     }
//! }
//!
//! let now = Instant::now();
//! let mut timers = TimerTable::<Named, 2>::new(now);
//! timers.set(Named::Idle, now + Duration::from_secs(30));
//! timers.set(Named::Ping, now + Duration::from_secs(10));
//! assert_eq!(timers.next(), Some((Named::Ping, now + Duration::from_secs(10))));
//! assert!(!timers.expire(Named::Ping, now));
//! assert!(timers.expire(Named::Ping, now + Duration::from_secs(10)));
//! assert_eq!(timers.get(Named::Ping), None);
//! ```

use std::fmt;
use std::time::{Duration, Instant};

/// The names of one engine's timers.
pub trait Timer: Copy + Eq + fmt::Debug + 'static {
    /// Every timer, each at its [`index`](Self::index).
    const ALL: &'static [Self];

    /// The timer's slot in its table: below the table's size.
    fn index(self) -> usize;
}

/// The mark of a slot whose timer does not run.
const STOPPED: u64 = u64::MAX;

/// The deadlines of `N` named timers.
#[derive(Clone, PartialEq, Eq)]
pub struct TimerTable<T, const N: usize> {
    /// What every deadline is counted from.
    epoch: Instant,
    /// Nanoseconds after `epoch`, or [`STOPPED`].
    slots: [u64; N],
    names: std::marker::PhantomData<T>,
}

impl<T: Timer, const N: usize> TimerTable<T, N> {
    /// A table with every timer stopped. Deadlines count from `epoch`: the
    /// time the engine was made, before any deadline it will set.
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            slots: [STOPPED; N],
            names: std::marker::PhantomData,
        }
    }

    /// Runs `timer` until `deadline`, replacing its earlier deadline. A
    /// deadline before the table's epoch runs until the epoch.
    pub fn set(&mut self, timer: T, deadline: Instant) {
        let offset = deadline.saturating_duration_since(self.epoch).as_nanos();
        // Past 584 years, a deadline is as good as never; it stays armed.
        self.slots[timer.index()] = u64::try_from(offset)
            .unwrap_or(STOPPED - 1)
            .min(STOPPED - 1);
    }

    /// Stops `timer`.
    pub fn stop(&mut self, timer: T) {
        self.slots[timer.index()] = STOPPED;
    }

    /// Stops every timer.
    pub fn stop_all(&mut self) {
        self.slots = [STOPPED; N];
    }

    /// When `timer` fires, if it runs.
    pub fn get(&self, timer: T) -> Option<Instant> {
        self.at(self.slots[timer.index()])
    }

    /// True while `timer` runs.
    pub fn is_set(&self, timer: T) -> bool {
        self.slots[timer.index()] != STOPPED
    }

    /// The running timer that fires first, and when. Of two that fire
    /// together, the one listed first in [`Timer::ALL`].
    pub fn next(&self) -> Option<(T, Instant)> {
        self.next_among(|_| true)
    }

    /// The timer that fires first among the running ones `counts` picks:
    /// an engine whose state pauses some timers asks only for the others.
    pub fn next_among(&self, counts: impl Fn(T) -> bool) -> Option<(T, Instant)> {
        T::ALL
            .iter()
            .filter(|timer| counts(**timer) && self.is_set(**timer))
            .min_by_key(|timer| self.slots[timer.index()])
            .and_then(|timer| Some((*timer, self.get(*timer)?)))
    }

    /// True when `timer` runs and its deadline is at or before `now`.
    pub fn expired(&self, timer: T, now: Instant) -> bool {
        self.get(timer).is_some_and(|deadline| deadline <= now)
    }

    /// Stops `timer` and says true if it was due at `now`; a timer not yet
    /// due keeps running.
    pub fn expire(&mut self, timer: T, now: Instant) -> bool {
        let due = self.expired(timer, now);
        if due {
            self.stop(timer);
        }
        due
    }

    fn at(&self, slot: u64) -> Option<Instant> {
        if slot == STOPPED {
            return None;
        }
        self.epoch.checked_add(Duration::from_nanos(slot))
    }
}

impl<T: Timer, const N: usize> fmt::Debug for TimerTable<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for timer in T::ALL {
            if let Some(deadline) = self.get(*timer) {
                map.entry(timer, &deadline.saturating_duration_since(self.epoch));
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Named {
        A,
        B,
        C,
    }

    impl Timer for Named {
        const ALL: &'static [Self] = &[Named::A, Named::B, Named::C];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn deadlines_come_back_exactly() {
        let epoch = Instant::now();
        let mut timers = TimerTable::<Named, 3>::new(epoch);
        assert_eq!(timers.next(), None);
        let at = epoch + Duration::new(12_345, 678_901_234);
        timers.set(Named::B, at);
        assert_eq!(timers.get(Named::B), Some(at));
        assert!(timers.is_set(Named::B));
        assert!(!timers.is_set(Named::A));
        timers.set(Named::B, epoch);
        assert_eq!(timers.get(Named::B), Some(epoch));
    }

    #[test]
    fn the_earliest_running_timer_is_next() {
        let epoch = Instant::now();
        let mut timers = TimerTable::<Named, 3>::new(epoch);
        timers.set(Named::C, epoch + Duration::from_secs(1));
        timers.set(Named::A, epoch + Duration::from_secs(2));
        timers.set(Named::B, epoch + Duration::from_secs(1));
        assert_eq!(
            timers.next(),
            Some((Named::B, epoch + Duration::from_secs(1)))
        );
        assert_eq!(
            timers.next_among(|timer| timer == Named::A),
            Some((Named::A, epoch + Duration::from_secs(2)))
        );
        timers.stop(Named::B);
        assert_eq!(timers.next().map(|(timer, _)| timer), Some(Named::C));
        timers.stop_all();
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn only_a_due_timer_expires() {
        let epoch = Instant::now();
        let mut timers = TimerTable::<Named, 3>::new(epoch);
        let at = epoch + Duration::from_millis(5);
        timers.set(Named::A, at);
        assert!(!timers.expire(Named::A, at - Duration::from_nanos(1)));
        assert!(timers.expired(Named::A, at));
        assert!(timers.expire(Named::A, at));
        assert!(!timers.expire(Named::A, at));
        assert!(!timers.expire(Named::C, at));
    }

    #[test]
    fn a_deadline_before_the_epoch_runs_until_the_epoch() {
        let epoch = Instant::now() + Duration::from_secs(10);
        let mut timers = TimerTable::<Named, 3>::new(epoch);
        timers.set(Named::A, epoch - Duration::from_secs(5));
        assert_eq!(timers.get(Named::A), Some(epoch));
    }

    #[test]
    fn a_table_costs_eight_bytes_a_timer() {
        assert_eq!(
            std::mem::size_of::<TimerTable<Named, 3>>(),
            std::mem::size_of::<Instant>() + 3 * 8
        );
    }
}
