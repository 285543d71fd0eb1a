//! `OrderBuffer` under any sequence of offers, near its window, repeated,
//! far ahead and at the end of the number space: every sequence number is
//! released at most once and strictly in order, `held()` never exceeds its
//! bound, `check`/`check_run` predict what `offer` does, and an error
//! leaves the buffer as it was.
//!
//! The same for a `WeightedOrderBuffer`, each item offered with a weight:
//! besides, `held_weight()` never exceeds its bound and is the sum of the
//! weights of the items it holds.
#![no_main]

use arbitrary::Arbitrary;
use axum_channel_protocol::{OrderBuffer, Placement, WeightedOrderBuffer};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

#[derive(Arbitrary, Debug)]
enum Start {
    Zero,
    Small(u16),
    /// Just below the end of the number space.
    NearEnd(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Seq {
    /// Relative to the next expected number: behind it, at it, or ahead.
    Near(i8),
    /// A number near the end of the number space.
    NearEnd(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Offer(Seq),
    /// Offers a run of numbers in order, as a forward channel batch does,
    /// after `check_run` accepted it.
    Run(Seq, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    start: Start,
    max_held: u8,
    /// A weight bound: the weighted buffer is fuzzed instead.
    max_weight: Option<u8>,
    /// The weights of the offered items, in turn.
    weights: Vec<u8>,
    ops: Vec<Op>,
}

fn resolve(seq: &Seq, next: u64) -> u64 {
    match *seq {
        Seq::Near(delta) => next.saturating_add_signed(i64::from(delta)),
        Seq::NearEnd(back) => u64::MAX - u64::from(back),
        Seq::Any(n) => n,
    }
}

/// What the model knows: the next number to be released.
struct Model {
    next: u64,
    released: u64,
}

impl Model {
    fn take(&mut self, released: &mut Vec<u64>) {
        for seq in released.drain(..) {
            // Strictly in order, each once: released numbers are consecutive.
            assert_eq!(seq, self.next, "released out of order");
            self.next += 1;
            self.released += 1;
        }
    }
}

fuzz_target!(|input: Input| {
    let first = match input.start {
        Start::Zero => 0,
        Start::Small(n) => u64::from(n),
        Start::NearEnd(back) => u64::MAX - u64::from(back),
        Start::Any(n) => n,
    };
    let max_held = usize::from(input.max_held % 16);
    if let Some(max_weight) = input.max_weight {
        weighted(&input, first, max_held, usize::from(max_weight));
        return;
    }
    let mut buffer = OrderBuffer::new(first, max_held);
    let mut model = Model {
        next: first,
        released: 0,
    };
    let mut released = Vec::new();
    for op in input.ops.iter().take(512) {
        match op {
            Op::Offer(seq) => {
                let seq = resolve(seq, buffer.next_expected());
                let predicted = buffer.check(seq);
                let (before_next, before_held) = (buffer.next_expected(), buffer.held());
                let result = buffer.offer(seq, seq, &mut released);
                assert_eq!(result, predicted, "check disagrees with offer for {seq}");
                match result {
                    Ok(Placement::Accepted) => {}
                    Ok(Placement::Duplicate) | Err(_) => {
                        assert!(released.is_empty());
                        assert_eq!(buffer.next_expected(), before_next);
                        assert_eq!(buffer.held(), before_held);
                    }
                }
                if seq < before_next {
                    assert_eq!(result, Ok(Placement::Duplicate));
                }
                model.take(&mut released);
            }
            Op::Run(seq, len) => {
                let start = resolve(seq, buffer.next_expected());
                let len = usize::from(*len % 32);
                if buffer.check_run(start, len).is_err() {
                    continue;
                }
                // An accepted run is offered whole without an error.
                for index in 0..len as u64 {
                    let seq = start + index;
                    buffer
                        .offer(seq, seq, &mut released)
                        .expect("check_run accepted the run");
                    assert!(buffer.held() <= max_held);
                }
                model.take(&mut released);
            }
        }
        assert!(buffer.held() <= max_held, "{} held", buffer.held());
        assert_eq!(buffer.next_expected(), model.next);
    }
});

/// The weighted buffer under the same operations, each item weighing the
/// next of `input.weights` in turn.
fn weighted(input: &Input, first: u64, max_held: usize, max_weight: usize) {
    let mut buffer = WeightedOrderBuffer::new(first, max_held, max_weight);
    let mut model = Model {
        next: first,
        released: 0,
    };
    // What the buffer holds: each early item's weight.
    let mut held = BTreeMap::new();
    let mut weights = input.weights.iter().map(|&w| usize::from(w)).cycle();
    let mut weight = || weights.next().unwrap_or(0);
    let mut released = Vec::new();
    for op in input.ops.iter().take(512) {
        match op {
            Op::Offer(seq) => {
                let next = buffer.next_expected();
                let seq = resolve(seq, next);
                let weight = weight();
                let predicted = buffer.check(seq, weight);
                let (before_held, before_weight) = (buffer.held(), buffer.held_weight());
                let result = buffer.offer(seq, seq, weight, &mut released);
                assert_eq!(result, predicted, "check disagrees with offer for {seq}");
                match result {
                    Ok(Placement::Accepted) => {
                        if seq != next {
                            held.insert(seq, weight);
                        }
                    }
                    Ok(Placement::Duplicate) | Err(_) => {
                        assert!(released.is_empty());
                        assert_eq!(buffer.next_expected(), next);
                        assert_eq!(buffer.held(), before_held);
                        assert_eq!(buffer.held_weight(), before_weight);
                    }
                }
            }
            Op::Run(seq, len) => {
                let start = resolve(seq, buffer.next_expected());
                let run: Vec<usize> = (0..len % 32).map(|_| weight()).collect();
                if buffer.check_run(start, &run).is_err() {
                    continue;
                }
                // An accepted run is offered whole without an error.
                // Counted from the run's start: an open range would step
                // past `u64::MAX` after a run that ends there.
                for (seq, weight) in (start..start + run.len() as u64).zip(run) {
                    let next = buffer.next_expected();
                    let placement = buffer
                        .offer(seq, seq, weight, &mut released)
                        .expect("check_run accepted the run");
                    if placement == Placement::Accepted && seq != next {
                        held.insert(seq, weight);
                    }
                    assert!(buffer.held() <= max_held);
                    assert!(buffer.held_weight() <= max_weight);
                }
            }
        }
        for seq in &released {
            held.remove(seq);
        }
        model.take(&mut released);
        assert!(buffer.held() <= max_held, "{} held", buffer.held());
        assert!(
            buffer.held_weight() <= max_weight,
            "{} weight held",
            buffer.held_weight()
        );
        assert_eq!(buffer.held(), held.len());
        assert_eq!(buffer.held_weight(), held.values().sum::<usize>());
        assert_eq!(buffer.next_expected(), model.next);
    }
}
