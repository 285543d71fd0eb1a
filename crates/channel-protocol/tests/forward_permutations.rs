//! Property: whatever order forward channel requests arrive in, and however
//! often a request is retried, each map reaches the application exactly once
//! and in map order.

use channel_protocol::browserchannel::{ForwardBatch, ForwardMessage, SessionLimits, SessionState};
use proptest::prelude::*;
use serde_json::{json, Value};

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

fn delivered_numbers(messages: &[ForwardMessage]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| match m {
            ForwardMessage::Json(Value::Number(n)) => n.as_u64().unwrap(),
            other => panic!("unexpected message {other:?}"),
        })
        .collect()
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

        let limits = SessionLimits { max_outgoing_arrays: 16, max_held_maps: 1024 };
        let mut state = SessionState::<()>::new("s", None, Some(first_rid), limits);
        let mut delivered = Vec::new();
        for index in arrival {
            let (rid, batch) = reqs[index].clone();
            let received = state.receive(Some(rid), Some(batch)).unwrap();
            prop_assert!(!received.terminated);
            delivered.extend(delivered_numbers(&received.messages));
        }
        prop_assert_eq!(delivered, (0..total as u64).collect::<Vec<_>>());
    }

    #[test]
    fn terminate_closes_only_after_every_earlier_request(
        count in 1usize..10,
        terminate_at in any::<prop::sample::Index>(),
    ) {
        let reqs = requests(&vec![1; count], 0);
        let mut state = SessionState::<()>::new("s", None, Some(0), SessionLimits::default());
        // Request 0 created the session.
        state.receive(Some(0), None).unwrap();
        // Terminate is numbered after the last forward channel request.
        let terminate_rid = count as u64 + 1;
        let position = terminate_at.index(count + 1);
        let mut closed_after = None;
        for (step, (rid, batch)) in reqs.into_iter().map(Some).chain([None]).map(|r| r.unzip()).enumerate() {
            if step == position && state.terminate(Some(terminate_rid)).unwrap() {
                closed_after = Some(step);
            }
            if let Some(rid) = rid {
                if state.receive(Some(rid), batch).unwrap().terminated {
                    closed_after = Some(step);
                }
            }
        }
        // The session closes exactly when the last earlier request has arrived.
        let expected = if position == count { count } else { count - 1 };
        prop_assert_eq!(closed_after, Some(expected));
    }
}
