//! Room history under any input: a position read from any text writes back
//! as that same text, and any mix of broadcasts, lookups and clock steps
//! keeps the promise of a lookup: the messages right after the position,
//! in order, or nothing. A node's copy of a log, fed entries in any order,
//! again, unreadable or from another epoch, never lets one be delivered
//! twice.
#![no_main]

use axum_channel_protocol::history::{Accepted, Histories, HistoryLimits, Lookup, Position};
use std::collections::BTreeSet;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(position) = text.parse::<Position>() {
        assert_eq!(position.to_string(), text);
    }

    let mut limits = HistoryLimits::default();
    limits.max_messages = 8;
    limits.max_age = Duration::from_secs(10);
    limits.max_room_bytes = 400;
    limits.max_total_bytes = 1000;
    limits.max_rooms = 3;
    let start = Instant::now();
    let mut now = start;
    let mut histories = Histories::new(limits, 1);
    // What each room said, by epoch and offset: (epoch, offset) -> item.
    let mut said = std::collections::BTreeMap::new();
    for chunk in data.chunks(3) {
        let [op, a, b] = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let room = ["a", "b", "c", "d"][usize::from(a % 4)];
        match op % 3 {
            0 => {
                if let Some(position) = histories.reserve(now, room) {
                    let item = u32::from(a) << 8 | u32::from(b);
                    if histories.record(now, room, position, item, usize::from(b) * 2) {
                        said.insert((room, position.epoch, position.offset), item);
                    }
                }
            }
            1 => now += Duration::from_millis(u64::from(b) * 50),
            _ => {
                let Some(&(_, epoch, offset)) = said.keys().find(|(r, ..)| *r == room) else {
                    continue;
                };
                let since = Position::new(epoch, offset.saturating_sub(u64::from(b % 8)));
                if let Lookup::Found { items, .. } = histories.lookup(now, room, since, usize::from(b % 5) + 1) {
                    for (index, (position, item)) in items.iter().enumerate() {
                        assert_eq!(position.epoch, since.epoch);
                        assert_eq!(position.offset, since.offset + 1 + index as u64);
                        assert_eq!(said.get(&(room, position.epoch, position.offset)), Some(item));
                    }
                }
            }
        }
    }
    assert!(histories.total_bytes() <= 1000);
    assert!(histories.rooms() <= 3);

    // A node's copies: entries of two epochs, heard in any order.
    let mut copies = Histories::new(limits, 2).keep_idle_rooms();
    let mut delivered = BTreeSet::new();
    for chunk in data.chunks(2) {
        let [op, a] = [chunk[0], *chunk.get(1).unwrap_or(&0)];
        let room = ["a", "b"][usize::from(op & 1)];
        let position = Position::new(u64::from(op >> 7), u64::from(a % 32));
        let accepted = match (op >> 1) % 4 {
            0 | 1 => copies.accept(now, room, position, (), usize::from(a)),
            2 => copies.skip(now, room, position),
            _ => {
                let last = (a % 2 == 0).then_some(position);
                copies.start_at(now, room, last);
                continue;
            }
        };
        if matches!(accepted, Accepted::Next | Accepted::Started) {
            assert!(
                delivered.insert((room, position.epoch, position.offset)),
                "{position} of {room} taken twice"
            );
        }
        if let Accepted::Gap { after } = accepted {
            assert!(after.offset < position.offset);
        }
    }
    assert!(copies.total_bytes() <= 1000);
});
