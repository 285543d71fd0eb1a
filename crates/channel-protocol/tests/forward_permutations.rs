//! Property: whatever order forward channel requests arrive in, and however
//! often a request is retried, each map reaches the application exactly once
//! and in map order.

use axum_channel_protocol::browserchannel::{ForwardBatch, ForwardMessage, Session, SessionConfig};
use axum_channel_protocol::engine::{Engine, Event};
use axum_channel_protocol::Message;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::time::Instant;

/// Splits `total` maps into requests of the given sizes, numbered from `first_rid`.
fn requests(sizes: &[usize], first_rid: u64) -> Vec<(u64, ForwardBatch)> {
    let mut offset = 0u64;
    sizes
        .iter()
        .enumerate()
        .map(|(index, &size)| {
            let messages = (offset..offset + size as u64)
                .map(|n| ForwardMessage::Json(json!(n)))
                .collect();
            let batch = ForwardBatch { offset, messages };
            offset += size as u64;
            (first_rid + 1 + index as u64, batch)
        })
        .collect()
}

/// The numbers the session released to the app, and whether it closed.
fn released(session: &mut Session) -> (Vec<u64>, bool) {
    let mut numbers = Vec::new();
    let mut closed = false;
    while let Some(event) = session.poll_event() {
        match event {
            Event::Message(Message::Json(Value::Number(n))) => numbers.push(n.as_u64().unwrap()),
            Event::Closed(_) => closed = true,
            Event::Finished => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    (numbers, closed)
}

proptest! {
    #[test]
    fn any_permutation_delivers_each_map_once_in_order(
        sizes in prop::collection::vec(1usize..5, 1..12),
        order in any::<u64>(),
        retries in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        first_rid in 0u64..100_000,
    ) {
        let reqs = requests(&sizes, first_rid);
        let total: usize = sizes.iter().sum();
        // A deterministic shuffle driven by the generated seed.
        let mut arrival: Vec<usize> = (0..reqs.len()).collect();
        let mut seed = order | 1;
        for i in (1..arrival.len()).rev() {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
            arrival.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        // Retries repeat a request that has already been sent.
        for retry in &retries {
            let repeated = arrival[retry.index(arrival.len())];
            arrival.push(repeated);
        }

        let now = Instant::now();
        let mut session = Session::new(now, "s", None, Some(first_rid), SessionConfig::default());
        let mut delivered = Vec::new();
        for index in arrival {
            let (rid, batch) = reqs[index].clone();
            session.handle_forward(now, Some(rid), Some(batch)).unwrap();
            let (numbers, closed) = released(&mut session);
            prop_assert!(!closed);
            delivered.extend(numbers);
        }
        prop_assert_eq!(delivered, (0..total as u64).collect::<Vec<_>>());
    }

    #[test]
    fn terminate_closes_only_after_every_earlier_request(
        count in 1usize..10,
        terminate_at in any::<prop::sample::Index>(),
    ) {
        let reqs = requests(&vec![1; count], 0);
        let now = Instant::now();
        let mut session = Session::new(now, "s", None, Some(0), SessionConfig::default());
        // Request 0 created the session.
        session.handle_forward(now, Some(0), None).unwrap();
        // Terminate is numbered after the last forward channel request.
        let terminate_rid = count as u64 + 1;
        let position = terminate_at.index(count + 1);
        let mut closed_after = None;
        for (step, (rid, batch)) in reqs.into_iter().map(Some).chain([None]).map(|r| r.unzip()).enumerate() {
            if step == position {
                session.terminate(now, Some(terminate_rid)).unwrap();
                if released(&mut session).1 {
                    closed_after = Some(step);
                }
            }
            if let Some(rid) = rid {
                session.handle_forward(now, Some(rid), batch).unwrap();
                if released(&mut session).1 {
                    closed_after = Some(step);
                }
            }
        }
        // The session closes exactly when the last earlier request has arrived.
        let expected = if position == count { count } else { count - 1 };
        prop_assert_eq!(closed_after, Some(expected));
    }
}
