//! The queue of messages for the peer every engine keeps: numbered in the
//! order the app sent them, bounded in items and in bytes.
//!
//! A message that would take the queue past its byte bound is refused,
//! unless nothing waits: one message larger than the bound still goes out
//! alone, so the queue holds at most the bound and one message.

use crate::close::SendError;
use bytes::Bytes;
use std::collections::VecDeque;

/// What an item of a queue weighs, in bytes.
pub(crate) trait Weighed {
    /// The bytes the item holds.
    fn weight(&self) -> usize;
}

impl Weighed for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// Refuses `adding` more bytes to `queued` past `limit`, unless nothing
/// waits (`empty`).
pub(crate) fn check_queued_bytes(
    empty: bool,
    queued: usize,
    adding: usize,
    limit: usize,
) -> Result<(), SendError> {
    if empty || queued.saturating_add(adding) <= limit {
        Ok(())
    } else {
        Err(SendError::QueueTooLarge { limit_bytes: limit })
    }
}

/// Messages for the peer, oldest first.
#[derive(Debug)]
pub(crate) struct SendQueue<T> {
    items: VecDeque<T>,
    /// The number of the oldest item: every one below it was taken.
    taken: u64,
    /// The bytes of the items, and of whatever else the engine holds for
    /// the peer against the same bound (WebSocket pings): kept as they
    /// change, so a send need not add them up.
    bytes: usize,
}

impl<T> Default for SendQueue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            taken: 0,
            bytes: 0,
        }
    }
}

impl<T: Weighed> SendQueue<T> {
    /// Refuses an item of `weight` bytes past `max_items` or `max_bytes`.
    pub(crate) fn check(
        &self,
        weight: usize,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<(), SendError> {
        if self.items.len() >= max_items {
            return Err(SendError::QueueFull { limit: max_items });
        }
        self.check_bytes(weight, max_bytes)
    }

    /// Refuses `weight` more bytes past `max_bytes`, unless nothing waits.
    pub(crate) fn check_bytes(&self, weight: usize, max_bytes: usize) -> Result<(), SendError> {
        check_queued_bytes(self.bytes == 0, self.bytes, weight, max_bytes)
    }

    /// Queues `item` unless it would pass a bound; its number.
    pub(crate) fn push(
        &mut self,
        item: T,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<u64, SendError> {
        let weight = item.weight();
        self.check(weight, max_items, max_bytes)?;
        let seq = self.taken + self.items.len() as u64;
        self.bytes += weight;
        self.items.push_back(item);
        Ok(seq)
    }

    /// Counts `bytes` the engine holds for the peer beside the items.
    pub(crate) fn hold(&mut self, bytes: usize) {
        self.bytes += bytes;
    }

    /// The engine no longer holds `bytes` counted with [`hold`](Self::hold).
    pub(crate) fn release(&mut self, bytes: usize) {
        self.bytes -= bytes;
    }

    /// Takes the oldest item, and the number every item below is taken
    /// through.
    pub(crate) fn pop(&mut self) -> Option<(T, u64)> {
        let item = self.items.pop_front()?;
        self.taken += 1;
        self.bytes -= item.weight();
        self.shrink();
        Some((item, self.taken))
    }

    /// Takes every item at once: `read` sees them, oldest first; returns
    /// what it made and the number every item below is taken through.
    /// `None` when nothing waits.
    pub(crate) fn take_all<R>(&mut self, read: impl FnOnce(&VecDeque<T>) -> R) -> Option<(R, u64)> {
        if self.items.is_empty() {
            return None;
        }
        let made = read(&self.items);
        self.taken += self.items.len() as u64;
        self.bytes -= self.items.iter().map(Weighed::weight).sum::<usize>();
        self.items.clear();
        self.shrink();
        Some((made, self.taken))
    }

    /// Forgets everything queued and held, and frees the queue's memory.
    pub(crate) fn clear(&mut self) {
        self.items = VecDeque::new();
        self.bytes = 0;
    }

    /// An idle session keeps no buffer it does not need.
    fn shrink(&mut self) {
        if self.items.is_empty() && self.items.capacity() > 64 {
            self.items = VecDeque::new();
        }
    }

    /// How many items wait.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The bytes held: the items', and what was held beside them.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_numbered_bounded_and_taken_in_order() {
        let mut queue = SendQueue::<Bytes>::default();
        assert_eq!(queue.push(Bytes::from_static(b"ab"), 3, 4), Ok(0));
        assert_eq!(queue.push(Bytes::from_static(b"cd"), 3, 4), Ok(1));
        assert_eq!(
            queue.push(Bytes::from_static(b"e"), 3, 4),
            Err(SendError::QueueTooLarge { limit_bytes: 4 })
        );
        assert_eq!(queue.pop(), Some((Bytes::from_static(b"ab"), 1)));
        assert_eq!(queue.push(Bytes::from_static(b"e"), 3, 4), Ok(2));
        assert_eq!(
            queue.push(Bytes::new(), 2, 4),
            Err(SendError::QueueFull { limit: 2 })
        );
        let (joined, through) = queue
            .take_all(|items| {
                items
                    .iter()
                    .flat_map(|item| item.to_vec())
                    .collect::<Vec<u8>>()
            })
            .unwrap();
        assert_eq!((joined, through), (b"cde".to_vec(), 3));
        assert_eq!((queue.len(), queue.bytes()), (0, 0));
        // Alone, a message larger than the byte bound still goes out.
        assert_eq!(queue.push(Bytes::from(vec![0; 10]), 3, 4), Ok(3));
        queue.hold(5);
        queue.pop();
        assert_eq!(queue.bytes(), 5, "held bytes count until released");
        queue.release(5);
        assert_eq!(queue.bytes(), 0);
    }
}
