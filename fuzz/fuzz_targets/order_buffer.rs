//! `OrderBuffer` under any sequence of offers, near its window, repeated,
//! far ahead and at the end of the number space: every sequence number is
//! released at most once and strictly in order, `held()` never exceeds its
//! bound, `check`/`check_run` predict what `offer` does, and an error
//! leaves the buffer as it was.
#![no_main]

use arbitrary::Arbitrary;
use channel_protocol::{OrderBuffer, Placement};
use libfuzzer_sys::fuzz_target;

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
