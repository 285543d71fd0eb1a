//! Reordering of numbered items that may arrive out of sequence.
//!
//! BrowserChannel numbers every client map (the `ofs` of a forward channel
//! POST plus the map's index) and every forward channel request (`RID`).
//! Requests travel over separate HTTP connections and may arrive in any order,
//! or twice when the client retries. The order buffer releases each sequence
//! number exactly once and strictly in order, and holds at most a fixed number
//! of early arrivals so a client cannot make the server buffer without bound.
//! A [`WeightedOrderBuffer`] bounds the bytes of those early arrivals too,
//! since a count alone leaves each of them as large as a request may be.

use std::collections::BTreeMap;
use std::fmt;

/// Why an item could not be accepted by an [`OrderBuffer`] or a
/// [`WeightedOrderBuffer`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderError {
    /// Holding this early item would exceed the buffer's bound.
    Overflow {
        /// The most early items the buffer holds.
        limit: usize,
    },
    /// Holding this early item would take the weight of the early items
    /// past the bound of a [`WeightedOrderBuffer`].
    Overweight {
        /// The most weight (bytes, as the caller weighs items) held.
        limit: usize,
    },
    /// The item is numbered `u64::MAX` (or a run reaches it): no number
    /// could follow it, so it is never released.
    OutOfRange,
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::Overflow { limit } => {
                write!(f, "more than {limit} out-of-order items are waiting")
            }
            OrderError::Overweight { limit } => {
                write!(
                    f,
                    "more than {limit} bytes of out-of-order items are waiting"
                )
            }
            OrderError::OutOfRange => f.write_str("a sequence number is out of range"),
        }
    }
}

impl std::error::Error for OrderError {}

/// What happened to one item offered to an [`OrderBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The item was new; it is released now or once the gap before it fills.
    Accepted,
    /// The sequence number was released or is held already; the item is dropped.
    Duplicate,
}

/// Releases items in sequence order, each sequence number once.
///
/// ```
/// use axum_channel_protocol::{OrderBuffer, Placement};
///
/// let mut buffer = OrderBuffer::new(0, 16);
/// let mut released = Vec::new();
/// buffer.offer(1, "second", &mut released).unwrap();
/// assert!(released.is_empty()); // waiting for 0
/// buffer.offer(0, "first", &mut released).unwrap();
/// assert_eq!(released, ["first", "second"]);
/// assert_eq!(buffer.offer(1, "again", &mut released), Ok(Placement::Duplicate));
/// ```
#[derive(Debug, Clone)]
pub struct OrderBuffer<T> {
    next: u64,
    held: BTreeMap<u64, T>,
    max_held: usize,
}

impl<T> OrderBuffer<T> {
    /// A buffer that releases `first` next and holds up to `max_held` early items.
    pub fn new(first: u64, max_held: usize) -> Self {
        Self {
            next: first,
            held: BTreeMap::new(),
            max_held,
        }
    }

    /// The sequence number the buffer releases next.
    pub fn next_expected(&self) -> u64 {
        self.next
    }

    /// How many early items are waiting for a gap to fill.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Checks whether `seq` could be offered without overflowing, without
    /// changing the buffer.
    pub fn check(&self, seq: u64) -> Result<Placement, OrderError> {
        if seq < self.next || self.held.contains_key(&seq) {
            Ok(Placement::Duplicate)
        } else if seq == u64::MAX {
            // Releasing it would leave no number to expect next.
            Err(OrderError::OutOfRange)
        } else if seq == self.next || self.held.len() < self.max_held {
            Ok(Placement::Accepted)
        } else {
            Err(OrderError::Overflow {
                limit: self.max_held,
            })
        }
    }

    /// Checks that `len` items numbered from `first` could all be offered
    /// without overflowing, without changing the buffer.
    pub fn check_run(&self, first: u64, len: usize) -> Result<(), OrderError> {
        if len == 0 {
            return Ok(());
        }
        // Every number of the run is below `end`, so below `u64::MAX`.
        let end = match first.checked_add(len as u64) {
            Some(end) => end,
            None => return Err(OrderError::OutOfRange),
        };
        // A run that reaches the next expected number releases itself.
        if first <= self.next {
            return Ok(());
        }
        let already_held = self.held.range(first..end).count();
        if self.held.len() + (len - already_held) <= self.max_held {
            Ok(())
        } else {
            Err(OrderError::Overflow {
                limit: self.max_held,
            })
        }
    }

    /// Offers item `seq`; every item that is now in order is pushed to `released`.
    pub fn offer(
        &mut self,
        seq: u64,
        item: T,
        released: &mut Vec<T>,
    ) -> Result<Placement, OrderError> {
        let placement = self.check(seq)?;
        if placement == Placement::Accepted {
            self.place(seq, item, |item| released.push(item));
        }
        Ok(placement)
    }

    /// Holds a new item `seq`, or passes it to `release` with every held
    /// item it brings into order.
    fn place(&mut self, seq: u64, item: T, mut release: impl FnMut(T)) {
        if seq == self.next {
            release(item);
            self.next += 1;
            while let Some(item) = self.held.remove(&self.next) {
                release(item);
                self.next += 1;
            }
        } else {
            self.held.insert(seq, item);
        }
    }
}

/// An [`OrderBuffer`] whose early items are bounded in weight as well as
/// in number: each item is offered with its weight (its size in bytes, as
/// the caller estimates it), and an early item that would take the weight
/// held past `max_weight` is refused with [`OrderError::Overweight`]. An
/// item released at once is never held, whatever its weight; an early item
/// heavier than the bound waits for the gap before it to fill, and is
/// taken then.
///
/// ```
/// use axum_channel_protocol::{OrderError, Placement, WeightedOrderBuffer};
///
/// let mut buffer = WeightedOrderBuffer::new(0, 16, 10);
/// let mut released = Vec::new();
/// buffer.offer(1, "early", 5, &mut released).unwrap();
/// assert_eq!(buffer.offer(2, "too heavy", 6, &mut released), Err(OrderError::Overweight { limit: 10 }));
/// assert_eq!(buffer.held_weight(), 5);
/// buffer.offer(0, "first", 100, &mut released).unwrap();
/// assert_eq!((released, buffer.held_weight()), (vec!["first", "early"], 0));
/// assert_eq!(buffer.offer(2, "now", 6, &mut Vec::new()), Ok(Placement::Accepted));
/// ```
#[derive(Debug, Clone)]
pub struct WeightedOrderBuffer<T> {
    /// The items, each held with its weight: nothing for one released at once.
    buffer: OrderBuffer<(T, usize)>,
    /// The weight of the held items, kept as they come and go.
    held_weight: usize,
    max_weight: usize,
}

impl<T> WeightedOrderBuffer<T> {
    /// A buffer that releases `first` next and holds up to `max_held` early
    /// items weighing `max_weight` together.
    pub fn new(first: u64, max_held: usize, max_weight: usize) -> Self {
        Self {
            buffer: OrderBuffer::new(first, max_held),
            held_weight: 0,
            max_weight,
        }
    }

    /// The sequence number the buffer releases next.
    pub fn next_expected(&self) -> u64 {
        self.buffer.next_expected()
    }

    /// How many early items are waiting for a gap to fill.
    pub fn held(&self) -> usize {
        self.buffer.held()
    }

    /// What the early items weigh together: at most the buffer's `max_weight`.
    pub fn held_weight(&self) -> usize {
        self.held_weight
    }

    /// Checks whether `seq`, weighing `weight`, could be offered without
    /// overflowing either bound, without changing the buffer.
    pub fn check(&self, seq: u64, weight: usize) -> Result<Placement, OrderError> {
        let placement = self.buffer.check(seq)?;
        if placement == Placement::Accepted && seq != self.buffer.next {
            self.fits(weight)?;
        }
        Ok(placement)
    }

    /// Checks that items numbered from `first`, weighing `weights` in
    /// order, could all be offered without overflowing either bound,
    /// without changing the buffer.
    pub fn check_run(&self, first: u64, weights: &[usize]) -> Result<(), OrderError> {
        self.buffer.check_run(first, weights.len())?;
        // A run that reaches the next expected number releases itself.
        if weights.is_empty() || first <= self.buffer.next {
            return Ok(());
        }
        // `check_run` accepted the run: every number fits below `u64::MAX`,
        // and so does `end` (an open range would step past it).
        let end = first + weights.len() as u64;
        let adding = (first..end)
            .zip(weights)
            .filter(|(seq, _)| !self.buffer.held.contains_key(seq))
            .fold(0, |sum: usize, (_, weight)| sum.saturating_add(*weight));
        self.fits(adding)
    }

    fn fits(&self, adding: usize) -> Result<(), OrderError> {
        if self.held_weight.saturating_add(adding) <= self.max_weight {
            Ok(())
        } else {
            Err(OrderError::Overweight {
                limit: self.max_weight,
            })
        }
    }

    /// Offers item `seq` weighing `weight`; every item that is now in order
    /// is pushed to `released`.
    pub fn offer(
        &mut self,
        seq: u64,
        item: T,
        weight: usize,
        released: &mut Vec<T>,
    ) -> Result<Placement, OrderError> {
        let placement = self.check(seq, weight)?;
        if placement == Placement::Accepted {
            let held = if seq == self.buffer.next { 0 } else { weight };
            self.held_weight += held;
            let held_weight = &mut self.held_weight;
            self.buffer.place(seq, (item, held), |(item, weight)| {
                *held_weight -= weight;
                released.push(item);
            });
        }
        Ok(placement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(buffer: &mut OrderBuffer<u64>, seq: u64) -> (Result<Placement, OrderError>, Vec<u64>) {
        let mut out = Vec::new();
        let result = buffer.offer(seq, seq, &mut out);
        (result, out)
    }

    #[test]
    fn in_order_items_pass_straight_through() {
        let mut buffer = OrderBuffer::new(0, 4);
        for seq in 0..10 {
            assert_eq!(
                offer(&mut buffer, seq),
                (Ok(Placement::Accepted), vec![seq])
            );
        }
        assert_eq!(buffer.held(), 0);
    }

    #[test]
    fn a_gap_holds_items_until_it_fills() {
        let mut buffer = OrderBuffer::new(5, 4);
        assert_eq!(offer(&mut buffer, 7).1, Vec::<u64>::new());
        assert_eq!(offer(&mut buffer, 6).1, Vec::<u64>::new());
        assert_eq!(buffer.held(), 2);
        assert_eq!(offer(&mut buffer, 5).1, vec![5, 6, 7]);
        assert_eq!(buffer.next_expected(), 8);
    }

    #[test]
    fn duplicates_are_never_released_twice() {
        let mut buffer = OrderBuffer::new(0, 4);
        assert_eq!(offer(&mut buffer, 0).0, Ok(Placement::Accepted));
        assert_eq!(offer(&mut buffer, 2).0, Ok(Placement::Accepted));
        assert_eq!(offer(&mut buffer, 0), (Ok(Placement::Duplicate), vec![]));
        assert_eq!(offer(&mut buffer, 2), (Ok(Placement::Duplicate), vec![]));
        assert_eq!(offer(&mut buffer, 1).1, vec![1, 2]);
    }

    #[test]
    fn overflow_is_an_error_and_leaves_the_buffer_usable() {
        let mut buffer = OrderBuffer::new(0, 2);
        assert_eq!(offer(&mut buffer, 1).0, Ok(Placement::Accepted));
        assert_eq!(offer(&mut buffer, 2).0, Ok(Placement::Accepted));
        assert_eq!(
            offer(&mut buffer, 3).0,
            Err(OrderError::Overflow { limit: 2 })
        );
        // The expected item is always accepted, even when the buffer is full.
        assert_eq!(offer(&mut buffer, 0).1, vec![0, 1, 2]);
        assert_eq!(offer(&mut buffer, 3).1, vec![3]);
    }

    #[test]
    fn check_run_accounts_for_the_whole_run() {
        let mut buffer = OrderBuffer::new(0, 3);
        assert_eq!(offer(&mut buffer, 5).0, Ok(Placement::Accepted));
        assert_eq!(buffer.check_run(0, 100), Ok(()));
        assert_eq!(buffer.check_run(4, 3), Ok(()));
        assert!(buffer.check_run(6, 3).is_err());
        assert_eq!(buffer.check_run(9, 0), Ok(()));
    }

    #[test]
    fn the_last_number_is_refused_instead_of_overflowing() {
        let mut buffer = OrderBuffer::new(u64::MAX, 4);
        assert_eq!(offer(&mut buffer, u64::MAX).0, Err(OrderError::OutOfRange));
        assert_eq!(buffer.next_expected(), u64::MAX);
        let mut buffer = OrderBuffer::new(u64::MAX - 1, 4);
        assert_eq!(offer(&mut buffer, u64::MAX - 1).1, vec![u64::MAX - 1]);
        assert_eq!(offer(&mut buffer, u64::MAX).0, Err(OrderError::OutOfRange));
        assert_eq!(buffer.check_run(u64::MAX - 2, 2), Ok(()));
        assert_eq!(
            buffer.check_run(u64::MAX - 2, 3),
            Err(OrderError::OutOfRange)
        );
        assert_eq!(buffer.check_run(u64::MAX, 1), Err(OrderError::OutOfRange));
    }

    fn offer_weighing(
        buffer: &mut WeightedOrderBuffer<u64>,
        seq: u64,
        weight: usize,
    ) -> (Result<Placement, OrderError>, Vec<u64>) {
        let mut out = Vec::new();
        let result = buffer.offer(seq, seq, weight, &mut out);
        (result, out)
    }

    #[test]
    fn early_items_are_bounded_in_weight_and_the_expected_one_never_is() {
        let mut buffer = WeightedOrderBuffer::new(0, 8, 10);
        let heavy = Err(OrderError::Overweight { limit: 10 });
        assert_eq!(offer_weighing(&mut buffer, 2, 11).0, heavy);
        assert_eq!(offer_weighing(&mut buffer, 2, 6).0, Ok(Placement::Accepted));
        assert_eq!(offer_weighing(&mut buffer, 3, 4).0, Ok(Placement::Accepted));
        assert_eq!(buffer.held_weight(), 10, "at the bound exactly");
        assert_eq!(offer_weighing(&mut buffer, 4, 1), (heavy.clone(), vec![]));
        assert_eq!(buffer.check(4, 0), Ok(Placement::Accepted));
        // A duplicate weighs nothing, whatever it claims.
        assert_eq!(
            offer_weighing(&mut buffer, 3, 99).0,
            Ok(Placement::Duplicate)
        );
        assert_eq!(buffer.held(), 2);
        // The expected item is taken at any weight, and frees what follows it.
        assert_eq!(offer_weighing(&mut buffer, 0, 1000).1, vec![0]);
        assert_eq!(buffer.held_weight(), 10);
        assert_eq!(offer_weighing(&mut buffer, 1, 1).1, vec![1, 2, 3]);
        assert_eq!(buffer.held_weight(), 0);
        assert_eq!(
            offer_weighing(&mut buffer, 5, 10).0,
            Ok(Placement::Accepted)
        );
    }

    #[test]
    fn a_weighted_run_counts_what_it_would_add() {
        let mut buffer = WeightedOrderBuffer::new(0, 8, 10);
        assert_eq!(offer_weighing(&mut buffer, 3, 4).0, Ok(Placement::Accepted));
        // 2 and 4 are new, 3 is held already: 3 + 3 more.
        assert_eq!(buffer.check_run(2, &[3, 50, 3]), Ok(()));
        assert_eq!(
            buffer.check_run(2, &[3, 0, 4]),
            Err(OrderError::Overweight { limit: 10 })
        );
        // A run from the expected number releases itself, at any weight.
        assert_eq!(buffer.check_run(0, &[100, 100]), Ok(()));
        assert_eq!(buffer.check_run(9, &[]), Ok(()));
        // A run that ends at the last number is weighed without stepping past it.
        let buffer = WeightedOrderBuffer::<u64>::new(u64::MAX - 4, 8, 10);
        assert_eq!(buffer.check_run(u64::MAX - 2, &[5, 5]), Ok(()));
        assert_eq!(
            buffer.check_run(u64::MAX - 2, &[5, 6]),
            Err(OrderError::Overweight { limit: 10 })
        );
        // Too many items is still an overflow.
        let mut buffer = WeightedOrderBuffer::new(0, 1, 100);
        assert_eq!(
            buffer.check_run(1, &[1, 1]),
            Err(OrderError::Overflow { limit: 1 })
        );
        assert_eq!(offer_weighing(&mut buffer, 1, 1).0, Ok(Placement::Accepted));
        assert_eq!(
            offer_weighing(&mut buffer, 2, 1).0,
            Err(OrderError::Overflow { limit: 1 })
        );
    }

    #[test]
    fn check_does_not_change_the_buffer() {
        let buffer = OrderBuffer::<u64>::new(3, 0);
        assert_eq!(buffer.check(2), Ok(Placement::Duplicate));
        assert_eq!(buffer.check(3), Ok(Placement::Accepted));
        assert!(buffer.check(4).is_err());
        assert_eq!(buffer.next_expected(), 3);
    }
}
