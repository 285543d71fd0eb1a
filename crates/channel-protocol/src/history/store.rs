//! The histories of a node's rooms, within their bounds.

use super::position::Position;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How much history is kept: per room, in messages, bytes and age, and in
/// total, in bytes and rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryLimits {
    /// Most messages a room keeps (its last ones).
    pub max_messages: usize,
    /// How long a message is kept.
    pub max_age: Duration,
    /// Most bytes a room's messages hold together.
    pub max_room_bytes: usize,
    /// Most bytes every room's messages hold together.
    pub max_total_bytes: usize,
    /// Most rooms with a history; a broadcast to a further room gets no
    /// position.
    pub max_rooms: usize,
}

impl Default for HistoryLimits {
    /// The last 1,000 messages of a room, for 300 s, at most 1 MiB per room,
    /// 64 MiB and 10,000 rooms in all.
    fn default() -> Self {
        Self {
            max_messages: 1000,
            max_age: Duration::from_secs(300),
            max_room_bytes: 1 << 20,
            max_total_bytes: 64 << 20,
            max_rooms: 10_000,
        }
    }
}

/// Why a history cannot replay what came after a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecoverable {
    /// The room has no history (none was kept, or it was dropped).
    NoHistory,
    /// The position belongs to a history that was lost.
    OtherEpoch,
    /// The position is past the room's last message.
    Future,
    /// Messages after the position are no longer kept.
    Trimmed,
}

/// What a history answers for "everything after this position".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The messages after the position, in order, at most the limit asked
    /// for; `more` when further ones follow them.
    Found {
        /// The messages and their positions.
        items: Vec<(Position, T)>,
        /// True when the limit left messages out.
        more: bool,
    },
    /// Nothing can be replayed: the history cannot prove it has every
    /// message after the position.
    Unrecoverable(Unrecoverable),
}

/// What [`Histories::accept`] made of an entry a log gave its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The next entry of the room: kept (or, too large to keep, the copy
    /// goes on past it keeping nothing before it); deliver it.
    Next,
    /// The room's first entry here: kept from here on; deliver it.
    Started,
    /// Already had (or at offset 0, where no entry is): drop it.
    Duplicate,
    /// Entries between the last one here (`after`) and this one are
    /// missing: fetch them from the log first, then this one again.
    Gap {
        /// The last entry this node has.
        after: Position,
    },
    /// The entry belongs to another epoch than the room's history here:
    /// ask the log which one is current (it may have started again).
    OtherEpoch,
    /// No further room may have a history: deliver it unkept.
    Untracked,
}

struct Entry<T> {
    offset: u64,
    at: Instant,
    bytes: usize,
    item: T,
}

/// One room's kept messages. Offsets are contiguous: trimming only ever
/// takes the oldest.
struct RoomHistory<T> {
    epoch: u64,
    /// The offset of the room's last message (0 before the first).
    last: u64,
    entries: VecDeque<Entry<T>>,
    bytes: usize,
    /// When a message was last recorded, so an idle, empty history goes.
    touched: Instant,
    /// The highest offset heard of this epoch, taken or not: past `last`
    /// when entries between were missed and are still to be fetched.
    heard: u64,
    /// A copy started before its log had any entry: it takes the epoch of
    /// the first entry it hears.
    epoch_unknown: bool,
}

impl<T> RoomHistory<T> {
    /// The offset of the oldest kept message, or the next one when none is kept.
    fn first_kept(&self) -> u64 {
        self.entries
            .front()
            .map_or(self.last.saturating_add(1), |e| e.offset)
    }

    /// The position the room's next message gets.
    fn next(&self) -> Position {
        Position::new(self.epoch, self.last.saturating_add(1))
    }

    fn empty(epoch: u64, last: u64, now: Instant) -> Self {
        Self {
            epoch,
            last,
            entries: VecDeque::new(),
            bytes: 0,
            touched: now,
            heard: last,
            epoch_unknown: false,
        }
    }

    /// Takes the oldest message out; its bytes.
    fn pop_oldest(&mut self) -> usize {
        let bytes = self.entries.pop_front().map_or(0, |e| e.bytes);
        self.bytes -= bytes;
        bytes
    }

    /// Drops what is too old or too much; the bytes freed.
    fn trim(&mut self, now: Instant, limits: &HistoryLimits) -> usize {
        let mut freed = 0;
        while let Some(oldest) = self.entries.front() {
            let too_old = now.saturating_duration_since(oldest.at) >= limits.max_age;
            if !(too_old
                || self.entries.len() > limits.max_messages
                || self.bytes > limits.max_room_bytes)
            {
                break;
            }
            freed += self.pop_oldest();
        }
        freed
    }
}

/// Every room's history on one node: positions are handed out with
/// [`reserve`](Self::reserve), messages kept with [`record`](Self::record)
/// and read back with [`lookup`](Self::lookup). Time comes in as `now`.
///
/// ```
/// use axum_channel_protocol::history::{Histories, HistoryLimits, Lookup};
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let mut histories = Histories::new(HistoryLimits::default(), 7);
/// let first = histories.reserve(now, "lobby").unwrap();
/// assert!(histories.record(now, "lobby", first, "hello", 5));
/// let second = histories.reserve(now, "lobby").unwrap();
/// assert!(histories.record(now, "lobby", second, "again", 5));
/// match histories.lookup(now, "lobby", first, 10) {
///     Lookup::Found { items, more } => {
///         assert_eq!(items, vec![(second, "again")]);
///         assert!(!more);
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
pub struct Histories<T> {
    limits: HistoryLimits,
    rooms: HashMap<String, RoomHistory<T>>,
    total_bytes: usize,
    /// Mixed into every epoch, so two processes (or two runs) never share one.
    seed: u64,
    epochs: u64,
    swept: Option<Instant>,
    /// Rooms that stayed empty and idle past the age bound go (not for a
    /// node's copies of a log, whose rooms go with `drop_room`).
    sweep_idle_rooms: bool,
}

impl<T> std::fmt::Debug for Histories<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histories")
            .field("rooms", &self.rooms.len())
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}

/// SplitMix64: spreads a counter over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<T: Clone> Histories<T> {
    /// No history yet; `seed` should be random (the epochs derive from it).
    pub fn new(limits: HistoryLimits, seed: u64) -> Self {
        Self {
            limits,
            rooms: HashMap::new(),
            total_bytes: 0,
            seed,
            epochs: 0,
            swept: None,
            sweep_idle_rooms: true,
        }
    }

    /// For a node's copies of a cluster's log ([`accept`](Self::accept)):
    /// a room's copy stays, however idle, until [`drop_room`](Self::drop_room),
    /// so the node always knows the last entry it had; only messages age out.
    pub fn keep_idle_rooms(mut self) -> Self {
        self.sweep_idle_rooms = false;
        self
    }

    /// The limits the histories keep to.
    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    /// Rooms with a history.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Bytes kept, every room together.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// The position the next message of `room` gets, starting the room's
    /// history if it has none; `None` when no further room may have one.
    /// Record the message with [`record`](Self::record) before reserving again.
    pub fn reserve(&mut self, now: Instant, room: &str) -> Option<Position> {
        self.sweep_if_due(now);
        if let Some(history) = self.rooms.get(room) {
            return Some(history.next());
        }
        if self.rooms.len() >= self.limits.max_rooms {
            return None;
        }
        self.epochs += 1;
        let epoch = mix(self.seed ^ mix(self.epochs));
        self.rooms
            .insert(room.to_owned(), RoomHistory::empty(epoch, 0, now));
        Some(Position::new(epoch, 1))
    }

    /// Keeps `item` (of `bytes`) at `position`, the one
    /// [`reserve`](Self::reserve) gave; true when kept. A message that
    /// cannot be kept (larger than a bound, or not the reserved position)
    /// ends the room's history, so no later lookup can skip over it.
    pub fn record(
        &mut self,
        now: Instant,
        room: &str,
        position: Position,
        item: T,
        bytes: usize,
    ) -> bool {
        let limits = self.limits;
        let Some(history) = self.rooms.get_mut(room) else {
            return false;
        };
        let fits = bytes <= limits.max_room_bytes && bytes <= limits.max_total_bytes;
        if !fits || position != history.next() {
            self.drop_room(room);
            return false;
        }
        history.last = position.offset;
        history.touched = now;
        history.bytes += bytes;
        history.entries.push_back(Entry {
            offset: position.offset,
            at: now,
            bytes,
            item,
        });
        self.total_bytes += bytes;
        let freed = history.trim(now, &limits);
        self.total_bytes -= freed;
        self.keep_total(room);
        true
    }

    /// Keeps an entry whose position a log gave (a cluster's history lives
    /// in the log; this is the node's copy of its recent part), if it is
    /// the room's next one; says what to do with it.
    ///
    /// ```
    /// use axum_channel_protocol::history::{Accepted, Histories, HistoryLimits, Position};
    /// use std::time::Instant;
    ///
    /// let now = Instant::now();
    /// let mut histories = Histories::new(HistoryLimits::default(), 7);
    /// assert_eq!(histories.accept(now, "r", Position::new(9, 4), "d", 1), Accepted::Started);
    /// assert_eq!(histories.accept(now, "r", Position::new(9, 4), "d", 1), Accepted::Duplicate);
    /// assert_eq!(histories.accept(now, "r", Position::new(9, 6), "f", 1),
    ///            Accepted::Gap { after: Position::new(9, 4) });
    /// assert_eq!(histories.accept(now, "r", Position::new(9, 5), "e", 1), Accepted::Next);
    /// ```
    pub fn accept(
        &mut self,
        now: Instant,
        room: &str,
        position: Position,
        item: T,
        bytes: usize,
    ) -> Accepted {
        self.sweep_if_due(now);
        let started = match self.place(room, position) {
            Ok(started) => started,
            Err(answer) => return answer,
        };
        if started {
            let last = position.offset - 1;
            self.rooms.insert(
                room.to_owned(),
                RoomHistory::empty(position.epoch, last, now),
            );
        }
        if !self.record(now, room, position, item, bytes) {
            // Too large to keep: the copy goes on after it, keeping nothing
            // before it, so no lookup replays across it.
            self.rooms.insert(
                room.to_owned(),
                RoomHistory::empty(position.epoch, position.offset, now),
            );
        }
        if started {
            Accepted::Started
        } else {
            Accepted::Next
        }
    }

    /// Starts `room`'s copy at the end of its log, `last` (`None` when the
    /// log has no entry yet), read once the node listens to it: the copy
    /// takes the entries after it, and ones at or before it (written while
    /// the node was starting to listen) are duplicates. False when the room
    /// has a copy already (an entry was heard first) or no further room may
    /// have one.
    ///
    /// ```
    /// use axum_channel_protocol::history::{Accepted, Histories, HistoryLimits, Position};
    /// use std::time::Instant;
    ///
    /// let now = Instant::now();
    /// let mut copies = Histories::new(HistoryLimits::default(), 7).keep_idle_rooms();
    /// assert!(copies.start_at(now, "r", Some(Position::new(9, 4))));
    /// assert_eq!(copies.accept(now, "r", Position::new(9, 4), "d", 1), Accepted::Duplicate);
    /// assert_eq!(copies.accept(now, "r", Position::new(9, 5), "e", 1), Accepted::Next);
    /// ```
    pub fn start_at(&mut self, now: Instant, room: &str, last: Option<Position>) -> bool {
        self.sweep_if_due(now);
        if self.rooms.contains_key(room) || self.rooms.len() >= self.limits.max_rooms {
            return false;
        }
        let mut history = match last {
            Some(last) => RoomHistory::empty(last.epoch, last.offset, now),
            None => RoomHistory::empty(0, 0, now),
        };
        history.epoch_unknown = last.is_none();
        self.rooms.insert(room.to_owned(), history);
        true
    }

    /// Takes the entry of `room`'s log at `position` that cannot be read
    /// (a frame this version does not know): if it is the room's next, the
    /// copy moves past it and forgets what it kept, so no lookup replays
    /// across the hole. Says what was made of it, as [`accept`](Self::accept).
    pub fn skip(&mut self, now: Instant, room: &str, position: Position) -> Accepted {
        self.sweep_if_due(now);
        let started = match self.place(room, position) {
            Ok(started) => started,
            Err(answer) => return answer,
        };
        self.drop_room(room);
        self.rooms.insert(
            room.to_owned(),
            RoomHistory::empty(position.epoch, position.offset, now),
        );
        if started {
            Accepted::Started
        } else {
            Accepted::Next
        }
    }

    /// Where the entry of `room`'s log at `position` goes in this node's
    /// copy: `Ok(false)` when it is the copy's next, `Ok(true)` when it
    /// starts a copy, or what to make of it otherwise.
    fn place(&mut self, room: &str, position: Position) -> Result<bool, Accepted> {
        if position.offset == 0 {
            // No entry is at offset 0: nothing to deliver.
            return Err(Accepted::Duplicate);
        }
        let full = self.rooms.len() >= self.limits.max_rooms;
        match self.rooms.get_mut(room) {
            Some(history) if history.epoch_unknown => {
                // Its log had no entry when the copy started: the first
                // one it ever had names the epoch.
                history.epoch = position.epoch;
                history.epoch_unknown = false;
                self.place(room, position)
            }
            Some(history) if history.epoch == position.epoch => {
                if position.offset <= history.last {
                    return Err(Accepted::Duplicate);
                }
                history.heard = history.heard.max(position.offset);
                if position.offset > history.last.saturating_add(1) {
                    return Err(Accepted::Gap {
                        after: Position::new(history.epoch, history.last),
                    });
                }
                Ok(false)
            }
            Some(_) => Err(Accepted::OtherEpoch),
            None if full => Err(Accepted::Untracked),
            None => Ok(true),
        }
    }

    /// The rooms with a history.
    pub fn room_names(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// True when an entry of `room` past a gap was heard and the entries
    /// before it are not here yet: members are owed them.
    pub fn is_missing(&self, room: &str) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|history| history.heard > history.last)
    }

    /// The position of the last entry of `room` here, if it has a history.
    pub fn last_position(&self, room: &str) -> Option<Position> {
        self.rooms
            .get(room)
            .map(|history| Position::new(history.epoch, history.last))
    }

    /// Every kept message of `room` after `since`, at most `limit` of them,
    /// or why the history cannot prove it has them all.
    pub fn lookup(&mut self, now: Instant, room: &str, since: Position, limit: usize) -> Lookup<T> {
        let limits = self.limits;
        let Some(history) = self.rooms.get_mut(room).filter(|h| !h.epoch_unknown) else {
            return Lookup::Unrecoverable(Unrecoverable::NoHistory);
        };
        let freed = history.trim(now, &limits);
        self.total_bytes -= freed;
        if since.epoch != history.epoch {
            return Lookup::Unrecoverable(Unrecoverable::OtherEpoch);
        }
        if since.offset > history.last {
            return Lookup::Unrecoverable(Unrecoverable::Future);
        }
        let first = history.first_kept();
        if since.offset.saturating_add(1) < first {
            return Lookup::Unrecoverable(Unrecoverable::Trimmed);
        }
        if since.offset == history.last {
            return Lookup::Found {
                items: Vec::new(),
                more: false,
            };
        }
        // Offsets are contiguous, so the message after `since` is at this index.
        let start = (since.offset + 1 - first) as usize;
        let items: Vec<_> = history
            .entries
            .iter()
            .skip(start)
            .take(limit)
            .map(|e| (Position::new(history.epoch, e.offset), e.item.clone()))
            .collect();
        let more = history.entries.len() > start + items.len();
        Lookup::Found { items, more }
    }

    /// Ends `room`'s history: its positions can no longer be recovered.
    pub fn drop_room(&mut self, room: &str) {
        if let Some(history) = self.rooms.remove(room) {
            self.total_bytes -= history.bytes;
        }
    }

    /// Takes the oldest messages of other rooms, then of `room`, until the
    /// total is within its bound.
    fn keep_total(&mut self, room: &str) {
        if self.total_bytes <= self.limits.max_total_bytes {
            return;
        }
        for (name, history) in self.rooms.iter_mut() {
            if name == room {
                continue;
            }
            while self.total_bytes > self.limits.max_total_bytes && !history.entries.is_empty() {
                self.total_bytes -= history.pop_oldest();
            }
            if self.total_bytes <= self.limits.max_total_bytes {
                return;
            }
        }
        if let Some(history) = self.rooms.get_mut(room) {
            // Its newest message fits the total bound (checked when recorded).
            while self.total_bytes > self.limits.max_total_bytes && history.entries.len() > 1 {
                self.total_bytes -= history.pop_oldest();
            }
        }
    }

    /// Now and then (every quarter of the age bound), drops expired
    /// messages and the rooms that stayed empty and idle past the age bound.
    fn sweep_if_due(&mut self, now: Instant) {
        let every = self.limits.max_age / 4;
        if self
            .swept
            .is_some_and(|swept| now.saturating_duration_since(swept) < every)
        {
            return;
        }
        self.swept = Some(now);
        let limits = self.limits;
        let mut freed = 0;
        let sweep_idle_rooms = self.sweep_idle_rooms;
        self.rooms.retain(|_, history| {
            freed += history.trim(now, &limits);
            !(sweep_idle_rooms
                && history.entries.is_empty()
                && now.saturating_duration_since(history.touched) >= limits.max_age)
        });
        self.total_bytes -= freed;
    }
}
