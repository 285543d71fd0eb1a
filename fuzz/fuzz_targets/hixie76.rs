//! hixie-76: `key_number` and `challenge_response` on any keys, and
//! `FrameDecoder` fed any byte stream in any chunk splits, with a small
//! frame limit. Nothing panics; the decoder finds the same frames and the
//! same error however the stream is split; and between reads it holds at
//! most `max_frame + 1` bytes: a partial frame within the limit (its
//! `0x00` and up to `max_frame` bytes of text) or the first byte of a
//! closing handshake.
#![no_main]

use arbitrary::Arbitrary;
use axum_channel_protocol::hixie76::{
    challenge_response, key_number, Frame, FrameDecoder, FrameError, KeyError,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    key1: String,
    key2: String,
    key3: [u8; 8],
    max_frame: u8,
    /// Chunk lengths, used in turn (0 means an empty read).
    splits: Vec<u8>,
    stream: Vec<u8>,
}

/// What `key_number` should make of a key, computed another way.
fn expected_key(key: &str) -> Result<u32, KeyError> {
    let digits: String = key.chars().filter(char::is_ascii_digit).collect();
    let spaces = key.chars().filter(|&c| c == ' ').count() as u64;
    let number = digits
        .trim_start_matches('0')
        .parse::<u64>()
        .ok()
        .or(digits.trim_start_matches('0').is_empty().then_some(0));
    let number = match number {
        Some(n) if n <= u64::from(u32::MAX) => n,
        _ => return Err(KeyError::TooLarge),
    };
    if spaces == 0 {
        return Err(KeyError::NoSpaces);
    }
    if number % spaces != 0 {
        return Err(KeyError::NotDivisible);
    }
    Ok((number / spaces) as u32)
}

/// Feeds `chunks` to a decoder; returns the frames and the error that ended them.
fn decode<'a>(
    max_frame: usize,
    chunks: impl Iterator<Item = &'a [u8]>,
) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.extend(chunk);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if let Frame::Text(text) = &frame {
                        assert!(text.len() <= max_frame, "a frame of {} bytes", text.len());
                    }
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
        assert!(
            decoder.buffered() <= max_frame + 1,
            "{} bytes held with max_frame {max_frame}",
            decoder.buffered()
        );
    }
    (frames, None)
}

fuzz_target!(|input: Input| {
    let k1 = key_number(&input.key1);
    let k2 = key_number(&input.key2);
    assert_eq!(k1, expected_key(&input.key1));
    assert_eq!(k2, expected_key(&input.key2));
    let response = challenge_response(&input.key1, &input.key2, &input.key3);
    assert_eq!(response.is_ok(), k1.is_ok() && k2.is_ok());

    let max_frame = usize::from(input.max_frame % 64);
    let whole = decode(max_frame, std::iter::once(&input.stream[..]));
    let mut rest = &input.stream[..];
    let mut chunks = Vec::new();
    let mut splits = input.splits.iter().cycle();
    while !rest.is_empty() {
        let take = match splits.next() {
            Some(&n) => usize::from(n % 80).min(rest.len()),
            None => rest.len(),
        };
        let (chunk, tail) = rest.split_at(take);
        chunks.push(chunk);
        rest = tail;
        if chunks.len() > 4 * input.stream.len() + 8 {
            // Only empty reads left in the cycle: read the rest at once.
            chunks.push(rest);
            break;
        }
    }
    let split = decode(max_frame, chunks.into_iter());
    assert_eq!(whole, split, "the split changed what was decoded");
});
