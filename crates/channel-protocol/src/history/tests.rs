use super::*;
use std::time::{Duration, Instant};

fn limits() -> HistoryLimits {
    HistoryLimits {
        max_messages: 3,
        max_age: Duration::from_secs(60),
        max_room_bytes: 100,
        max_total_bytes: 150,
        max_rooms: 2,
    }
}

fn say(
    histories: &mut Histories<u32>,
    now: Instant,
    room: &str,
    item: u32,
    bytes: usize,
) -> Position {
    let position = histories.reserve(now, room).expect("a history");
    assert!(histories.record(now, room, position, item, bytes));
    position
}

fn found(lookup: Lookup<u32>) -> (Vec<u32>, bool) {
    match lookup {
        Lookup::Found { items, more } => (items.into_iter().map(|(_, i)| i).collect(), more),
        Lookup::Unrecoverable(why) => panic!("unrecoverable: {why:?}"),
    }
}

#[test]
fn replays_what_came_after_in_order_and_in_chunks() {
    let now = Instant::now();
    let mut histories = Histories::new(limits(), 1);
    let first = say(&mut histories, now, "r", 1, 10);
    say(&mut histories, now, "r", 2, 10);
    let third = say(&mut histories, now, "r", 3, 10);
    assert_eq!(third.offset, 3);
    assert_eq!(
        found(histories.lookup(now, "r", first, 10)),
        (vec![2, 3], false)
    );
    assert_eq!(found(histories.lookup(now, "r", first, 1)), (vec![2], true));
    assert_eq!(
        found(histories.lookup(now, "r", third, 10)),
        (vec![], false)
    );
}

#[test]
fn a_position_it_cannot_vouch_for_is_unrecoverable() {
    let now = Instant::now();
    let mut histories = Histories::new(limits(), 1);
    let first = say(&mut histories, now, "r", 1, 10);
    for item in 2..=4 {
        say(&mut histories, now, "r", item, 10);
    }
    // Four messages, three kept: after the first is the second, still kept.
    assert_eq!(
        found(histories.lookup(now, "r", first, 10)),
        (vec![2, 3, 4], false)
    );
    say(&mut histories, now, "r", 5, 10);
    assert_eq!(
        histories.lookup(now, "r", first, 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    let future = Position::new(first.epoch, 99);
    assert_eq!(
        histories.lookup(now, "r", future, 10),
        Lookup::Unrecoverable(Unrecoverable::Future)
    );
    let other = Position::new(first.epoch ^ 1, 2);
    assert_eq!(
        histories.lookup(now, "r", other, 10),
        Lookup::Unrecoverable(Unrecoverable::OtherEpoch)
    );
    assert_eq!(
        histories.lookup(now, "elsewhere", first, 10),
        Lookup::Unrecoverable(Unrecoverable::NoHistory)
    );
}

#[test]
fn messages_expire_and_idle_rooms_start_a_new_epoch() {
    let start = Instant::now();
    let mut histories = Histories::new(limits(), 1);
    let first = say(&mut histories, start, "r", 1, 10);
    let second = say(&mut histories, start, "r", 2, 10);
    let later = start + Duration::from_secs(61);
    // Both expired: the second is the last, so nothing is missing after it.
    assert_eq!(
        found(histories.lookup(later, "r", second, 10)),
        (vec![], false)
    );
    assert_eq!(
        histories.lookup(later, "r", first, 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    // Idle past the age bound: the next message starts another history.
    let much_later = later + Duration::from_secs(61);
    let again = histories.reserve(much_later, "r").unwrap();
    assert_ne!(again.epoch, first.epoch);
    assert_eq!(again.offset, 1);
}

#[test]
fn bytes_are_bounded_per_room_and_in_total() {
    let now = Instant::now();
    let mut histories = Histories::new(limits(), 1);
    let a = say(&mut histories, now, "a", 1, 60);
    say(&mut histories, now, "a", 2, 60);
    // 120 bytes > 100 for the room: the oldest went.
    let before_first = Position::new(a.epoch, 0);
    assert_eq!(
        histories.lookup(now, "a", before_first, 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    assert_eq!(found(histories.lookup(now, "a", a, 10)), (vec![2], false));
    assert_eq!(histories.total_bytes(), 60);
    let b = say(&mut histories, now, "b", 1, 60);
    say(&mut histories, now, "b", 2, 40);
    // 160 > 150 in all: room a gave up its oldest.
    assert_eq!(histories.total_bytes(), 100);
    assert_eq!(found(histories.lookup(now, "b", b, 10)), (vec![2], false));
    assert_eq!(
        histories.lookup(now, "a", a, 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    // A third room is over the room bound: no position.
    assert_eq!(histories.reserve(now, "c"), None);
}

#[test]
fn a_message_too_large_to_keep_ends_the_history() {
    let now = Instant::now();
    let mut histories = Histories::new(limits(), 1);
    let first = say(&mut histories, now, "r", 1, 10);
    let big = histories.reserve(now, "r").unwrap();
    assert!(!histories.record(now, "r", big, 2, 101));
    assert_eq!(
        histories.lookup(now, "r", first, 10),
        Lookup::Unrecoverable(Unrecoverable::NoHistory)
    );
    assert_eq!(histories.total_bytes(), 0);
    let next = histories.reserve(now, "r").unwrap();
    assert_ne!(next.epoch, first.epoch);
}

#[test]
fn epochs_differ_between_seeds_and_rooms() {
    let now = Instant::now();
    let mut one = Histories::<u32>::new(limits(), 1);
    let mut two = Histories::<u32>::new(limits(), 2);
    let a = one.reserve(now, "r").unwrap();
    let b = two.reserve(now, "r").unwrap();
    let c = one.reserve(now, "s").unwrap();
    assert_ne!(a.epoch, b.epoch);
    assert_ne!(a.epoch, c.epoch);
}

#[test]
fn a_copy_started_at_the_log_end_takes_what_follows_and_knows_what_it_misses() {
    let now = Instant::now();
    let mut copies = Histories::new(limits(), 1).keep_idle_rooms();
    assert!(copies.start_at(now, "r", Some(Position::new(5, 10))));
    assert!(!copies.start_at(now, "r", Some(Position::new(5, 12))));
    assert_eq!(
        copies.accept(now, "r", Position::new(5, 10), 10, 1),
        Accepted::Duplicate
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(5, 11), 11, 1),
        Accepted::Next
    );
    assert!(!copies.is_missing("r"));
    assert_eq!(
        copies.accept(now, "r", Position::new(5, 13), 13, 1),
        Accepted::Gap {
            after: Position::new(5, 11)
        }
    );
    assert!(copies.is_missing("r"), "13 was heard, 12 is owed");
    assert_eq!(
        copies.accept(now, "r", Position::new(5, 12), 12, 1),
        Accepted::Next
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(5, 13), 13, 1),
        Accepted::Next
    );
    assert!(!copies.is_missing("r"));
    // Nothing before the start can be vouched for.
    assert_eq!(
        copies.lookup(now, "r", Position::new(5, 9), 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    assert_eq!(
        found(copies.lookup(now, "r", Position::new(5, 10), 10)),
        (vec![11, 12, 13], false)
    );
}

#[test]
fn a_copy_started_before_its_log_had_an_entry_takes_the_first_epoch() {
    let now = Instant::now();
    let mut copies = Histories::new(limits(), 1).keep_idle_rooms();
    assert!(copies.start_at(now, "r", None));
    // Before its first entry, it vouches for no position.
    assert_eq!(
        copies.lookup(now, "r", Position::new(0, 0), 10),
        Lookup::Unrecoverable(Unrecoverable::NoHistory)
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(8, 2), 2, 1),
        Accepted::Gap {
            after: Position::new(8, 0)
        }
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(8, 1), 1, 1),
        Accepted::Next
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(8, 2), 2, 1),
        Accepted::Next
    );
    assert_eq!(copies.last_position("r"), Some(Position::new(8, 2)));
}

#[test]
fn copies_of_a_log_are_not_swept_when_idle() {
    let start = Instant::now();
    let mut copies = Histories::new(limits(), 1).keep_idle_rooms();
    assert_eq!(
        copies.accept(start, "r", Position::new(3, 7), 7, 10),
        Accepted::Started
    );
    let later = start + Duration::from_secs(600);
    // Another room's entry runs the sweep; the idle copy keeps its place.
    assert_eq!(
        copies.accept(later, "s", Position::new(4, 1), 1, 10),
        Accepted::Started
    );
    assert_eq!(copies.last_position("r"), Some(Position::new(3, 7)));
    assert_eq!(
        copies.accept(later, "r", Position::new(3, 9), 9, 10),
        Accepted::Gap {
            after: Position::new(3, 7)
        }
    );
}

#[test]
fn an_unreadable_entry_moves_the_copy_past_it_and_ends_replays_across_it() {
    let now = Instant::now();
    let mut copies = Histories::new(limits(), 1).keep_idle_rooms();
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 1), 1, 10),
        Accepted::Started
    );
    assert_eq!(copies.skip(now, "r", Position::new(3, 2)), Accepted::Next);
    assert_eq!(
        copies.skip(now, "r", Position::new(3, 2)),
        Accepted::Duplicate
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 3), 3, 10),
        Accepted::Next
    );
    assert_eq!(
        copies.lookup(now, "r", Position::new(3, 1), 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    assert_eq!(
        found(copies.lookup(now, "r", Position::new(3, 2), 10)),
        (vec![3], false)
    );
    assert_eq!(copies.total_bytes(), 10);
}

#[test]
fn offsets_at_the_end_of_the_range_do_not_overflow() {
    let now = Instant::now();
    let mut copies = Histories::new(limits(), 1).keep_idle_rooms();
    let end = Position::new(3, u64::MAX);
    assert_eq!(copies.accept(now, "r", end, 1, 10), Accepted::Started);
    assert_eq!(copies.accept(now, "r", end, 1, 10), Accepted::Duplicate);
    assert_eq!(found(copies.lookup(now, "r", end, 10)), (vec![], false));
}

#[test]
fn a_log_entry_too_large_to_keep_is_delivered_once_and_ends_replays_across_it() {
    let now = Instant::now();
    let mut copies = Histories::new(limits(), 1).keep_idle_rooms();
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 1), 1, 10),
        Accepted::Started
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 2), 2, 500),
        Accepted::Next
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 2), 2, 500),
        Accepted::Duplicate
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 3), 3, 10),
        Accepted::Next
    );
    assert_eq!(
        copies.lookup(now, "r", Position::new(3, 1), 10),
        Lookup::Unrecoverable(Unrecoverable::Trimmed)
    );
    assert_eq!(
        copies.accept(now, "r", Position::new(3, 0), 0, 10),
        Accepted::Duplicate
    );
}
