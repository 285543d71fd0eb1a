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
