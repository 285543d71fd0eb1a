//! `TextGuard`, the fail-fast UTF-8 check of a client's frames.
//!
//! (a) Any bytes, in any read splits: it never panics, and whatever it
//!     reports it also reports when the bytes come one at a time (frames
//!     that arrive whole in one read are left to the frame decoder, so
//!     byte-by-byte reads are the most it ever checks).
//! (b) A well-formed stream of masked client frames: text messages of valid
//!     UTF-8, binary messages, and control frames between fragments, with
//!     fragments and reads split anywhere (inside characters too) and any
//!     length encoding: the guard never reports an error. With one invalid
//!     sequence injected into one text message, it never reports an error
//!     before the read that carries the sequence's first byte, and, read
//!     byte by byte, it reports it no later than the message's last byte.
#![no_main]

use arbitrary::Arbitrary;
use axum_channel_protocol::websocket::TextGuard;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Control {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Body {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Message {
    body: Body,
    /// Where fragments end (byte offsets, taken modulo the length), each
    /// maybe followed by a control frame.
    cuts: Vec<(u16, Option<Control>)>,
}

#[derive(Arbitrary, Debug)]
struct Injection {
    /// Which text message (modulo their count).
    message: u8,
    /// Which character boundary of it (modulo their count).
    boundary: u16,
    /// Which invalid sequence.
    kind: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw: Vec<u8>,
    messages: Vec<Message>,
    /// Mask keys, used in turn.
    masks: Vec<[u8; 4]>,
    /// Length encodings, used in turn: minimal, 16-bit or 64-bit.
    lengths: Vec<u8>,
    /// Read sizes, used in turn.
    splits: Vec<u8>,
    injection: Option<Injection>,
    close: Option<u16>,
}

/// Sequences that are never UTF-8 where they are put: at a character
/// boundary, followed by a character's first byte or by the message's end.
const INVALID: &[&[u8]] = &[
    &[0x80],
    &[0xBF],
    &[0xFE],
    &[0xFF],
    &[0xC0, 0x80],
    &[0xC1, 0xBF],
    &[0xE0, 0x80, 0x80],
    &[0xE0, 0x9F, 0xBF],
    &[0xED, 0xA0, 0x80],
    &[0xED, 0xBF, 0xBF],
    &[0xF0, 0x80, 0x80, 0x80],
    &[0xF4, 0x90, 0x80, 0x80],
    &[0xF5, 0x80, 0x80, 0x80],
    &[0xF8, 0x88, 0x80, 0x80, 0x80],
    &[0xC3],
    &[0xE2, 0x82],
    &[0xF0, 0x9F, 0x98],
    &[0xC3, 0xC3],
    &[0xE2, 0x28, 0xA1],
];

struct Writer<'a> {
    out: Vec<u8>,
    masks: std::iter::Cycle<std::slice::Iter<'a, [u8; 4]>>,
    lengths: std::iter::Cycle<std::slice::Iter<'a, u8>>,
}

impl Writer<'_> {
    /// Appends one masked client frame; returns where its payload starts.
    fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> usize {
        let key = self
            .masks
            .next()
            .copied()
            .unwrap_or([0x12, 0x34, 0x56, 0x78]);
        let form = self.lengths.next().copied().unwrap_or(0) % 3;
        self.out.push((u8::from(fin) << 7) | opcode);
        let len = payload.len();
        match form {
            0 if len < 126 => self.out.push(0x80 | len as u8),
            0 | 1 if len < 65536 => {
                self.out.push(0x80 | 126);
                self.out.extend((len as u16).to_be_bytes());
            }
            _ => {
                self.out.push(0x80 | 127);
                self.out.extend((len as u64).to_be_bytes());
            }
        }
        self.out.extend(key);
        let start = self.out.len();
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        start
    }

    fn control(&mut self, control: &Control) {
        let (opcode, payload) = match control {
            Control::Ping(p) => (0x9, p),
            Control::Pong(p) => (0xA, p),
        };
        self.frame(true, opcode, &payload[..payload.len().min(125)]);
    }
}

/// Feeds `stream` in reads of the given sizes; returns each read's range and verdict.
fn feed(stream: &[u8], splits: &[u8]) -> Vec<(usize, usize, bool)> {
    let mut guard = TextGuard::new();
    let mut reads = Vec::new();
    let mut sizes = splits.iter().cycle();
    let mut at = 0;
    while at < stream.len() {
        let size = match sizes.next() {
            Some(&n) => usize::from(n).max(1),
            None => stream.len(),
        };
        let end = (at + size).min(stream.len());
        let ok = guard.inspect(&stream[at..end]).is_ok();
        reads.push((at, end, ok));
        at = end;
    }
    // An empty read changes nothing.
    let ok = guard.inspect(&[]).is_ok();
    if let Some(&(_, _, last)) = reads.last() {
        assert_eq!(ok, last, "an empty read changed the verdict");
    }
    reads
}

fn verdict(reads: &[(usize, usize, bool)]) -> bool {
    reads.iter().all(|&(_, _, ok)| ok)
}

fuzz_target!(|input: Input| {
    // (a) Any bytes: byte-by-byte reads check at least as much as any split.
    let bytewise = verdict(&feed(&input.raw, &[1]));
    let split = verdict(&feed(&input.raw, &input.splits));
    assert!(split || !bytewise, "a split found what byte-by-byte reads did not");

    // (b) A well-formed stream.
    let texts = input
        .messages
        .iter()
        .filter(|m| matches!(m.body, Body::Text(_)))
        .count();
    let injection = input.injection.as_ref().filter(|_| texts > 0);
    let mut writer = Writer {
        out: Vec::new(),
        masks: input.masks.iter().cycle(),
        lengths: input.lengths.iter().cycle(),
    };
    // Where the injected sequence starts and its message ends, in the stream.
    let mut invalid_at = None;
    let mut text_index = 0;
    for message in &input.messages {
        let (opcode, mut payload, inject) = match &message.body {
            Body::Text(text) => {
                let this = text_index;
                text_index += 1;
                (
                    0x1,
                    text.as_bytes().to_vec(),
                    injection
                        .filter(|i| usize::from(i.message) % texts == this)
                        .map(|i| (i, text)),
                )
            }
            Body::Binary(data) => (0x2, data.clone(), None),
        };
        let mut injected = None;
        if let Some((injection, text)) = inject {
            let boundaries: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect();
            let at = boundaries[usize::from(injection.boundary) % boundaries.len()];
            let sequence = INVALID[usize::from(injection.kind) % INVALID.len()];
            payload.splice(at..at, sequence.iter().copied());
            assert!(
                std::str::from_utf8(&payload).is_err(),
                "the harness injected valid UTF-8"
            );
            injected = Some(at);
        }
        let mut cuts: Vec<(usize, Option<&Control>)> = message
            .cuts
            .iter()
            .map(|(cut, control)| (usize::from(*cut) % (payload.len() + 1), control.as_ref()))
            .collect();
        cuts.sort_by_key(|(cut, _)| *cut);
        let mut start = 0;
        let mut first = true;
        for (cut, control) in cuts {
            // A fragment (maybe empty), then maybe a control frame.
            let at = writer.frame(
                false,
                if first { opcode } else { 0x0 },
                &payload[start..cut],
            );
            if let Some(offset) = injected.filter(|&i| (start..cut).contains(&i)) {
                invalid_at = Some(at + offset - start);
            }
            first = false;
            start = cut;
            if let Some(control) = control {
                writer.control(control);
            }
        }
        let at = writer.frame(true, if first { opcode } else { 0x0 }, &payload[start..]);
        if let Some(offset) = injected {
            if invalid_at.is_none() {
                invalid_at = Some(at + offset - start);
            }
            let message_end = writer.out.len();
            let reads = feed(&writer.out, &input.splits);
            let invalid_at = invalid_at.expect("the injection was placed");
            for &(read_start, read_end, ok) in &reads {
                if read_end <= invalid_at {
                    assert!(ok, "an error before the invalid bytes (at {invalid_at}, read {read_start}..{read_end})");
                }
            }
            let reported = feed(&writer.out, &[1])
                .iter()
                .find(|&&(_, _, ok)| !ok)
                .map(|&(read_start, _, _)| read_start);
            match reported {
                Some(read_start) => assert!(
                    read_start < message_end,
                    "reported in the read from {read_start}, after the message ended at {message_end}"
                ),
                None => panic!("invalid UTF-8 at {invalid_at} was never reported"),
            }
            return;
        }
    }
    if let Some(code) = input.close {
        writer.frame(true, 0x8, &code.to_be_bytes());
    }
    let reads = feed(&writer.out, &input.splits);
    assert!(verdict(&reads), "a valid stream was refused");
});
