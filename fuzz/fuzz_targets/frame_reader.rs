//! `FrameReader`, the sans-IO reader of a client's frames with
//! permessage-deflate.
//!
//! (a) Any bytes, with and without the extension, in any read splits: it
//!     never panics, every message it returns is within the size limit, and
//!     it reads the same things (and fails the same way) whatever the splits.
//! (b) Messages compressed as a client would (with or without context
//!     takeover), fragmented anywhere, with control frames between
//!     fragments and uncompressed messages between them: it reads them back.
#![no_main]

use arbitrary::Arbitrary;
use axum_channel_protocol::websocket::frame_reader::{FrameReader, Read};
use axum_channel_protocol::websocket::permessage_deflate::{
    negotiate, Agreed, DeflateConfig, DeflateParams, Deflater,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Message {
    text: bool,
    body: Vec<u8>,
    compressed: bool,
    /// Where fragments end (offsets into the payload sent, modulo its length).
    cuts: Vec<u16>,
    ping_between: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw: Vec<u8>,
    deflate: bool,
    client_no_context_takeover: bool,
    window_bits: u8,
    max: u16,
    splits: Vec<u8>,
    messages: Vec<Message>,
    mask: [u8; 4],
}

fn read_all(
    stream: &[u8],
    splits: &[u8],
    max: usize,
    agreed: Option<&Agreed>,
) -> Vec<Result<Read, u16>> {
    let mut reader = FrameReader::new(max, agreed);
    let mut out = Vec::new();
    let mut sizes = splits.iter().cycle();
    let mut at = 0;
    while at < stream.len() {
        let size = sizes.next().map_or(stream.len(), |&n| usize::from(n).max(1));
        let end = (at + size).min(stream.len());
        let mut input = &stream[at..end];
        while let Some(read) = reader.read(&mut input) {
            if let Ok(Read::Text(text)) = &read {
                assert!(text.len() <= max);
            }
            if let Ok(Read::Binary(data)) = &read {
                assert!(data.len() <= max);
            }
            out.push(read.map_err(|violation| violation.code()));
        }
        assert!(input.is_empty() || matches!(out.last(), Some(Err(_))));
        at = end;
    }
    out
}

fn frame(out: &mut Vec<u8>, first: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(first);
    match payload.len() {
        len if len < 126 => out.push(0x80 | len as u8),
        len if len < 65_536 => {
            out.push(0x80 | 126);
            out.extend((len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend((len as u64).to_be_bytes());
        }
    }
    out.extend(mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

fuzz_target!(|input: Input| {
    let bits = 8 + input.window_bits % 8;
    let config = DeflateConfig {
        client_no_context_takeover: input.client_no_context_takeover,
        client_max_window_bits: bits,
        ..DeflateConfig::default()
    };
    let agreed = negotiate(["permessage-deflate; client_max_window_bits"], &config)
        .expect("a plain offer is accepted");
    let max = usize::from(input.max) + 1;

    // (a) Any bytes. The same messages whatever the splits, and the same
    // failure: when a compressed message holds several faults (text that is
    // not UTF-8, a size past the limit, a stream corrupt further on), the
    // first in the stream shows, however the inflater's input was split.
    let with = input.deflate.then_some(&agreed);
    let whole = read_all(&input.raw, &[], max, with);
    assert_eq!(whole, read_all(&input.raw, &input.splits, max, with));
    assert_eq!(whole, read_all(&input.raw, &[1], max, with));

    // (b) Well-formed compressed messages read back.
    let params = DeflateParams {
        level: 6,
        window_bits: agreed.client_max_window_bits,
        no_context_takeover: agreed.client_no_context_takeover,
    };
    let mut client = Deflater::new(params);
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for message in input.messages.iter().take(16) {
        let body = if message.text {
            String::from_utf8_lossy(&message.body).into_owned().into_bytes()
        } else {
            message.body.clone()
        };
        if body.len() > 4096 {
            continue;
        }
        let payload = if message.compressed {
            if agreed.client_no_context_takeover {
                // A fresh window for every message.
                Deflater::new(params).deflate(&body)
            } else {
                client.deflate(&body)
            }
        } else {
            body.clone().into()
        };
        let mut cuts: Vec<usize> = message
            .cuts
            .iter()
            .take(8)
            .map(|&cut| usize::from(cut) % (payload.len() + 1))
            .collect();
        cuts.sort_unstable();
        let opcode = if message.text { 0x1 } else { 0x2 };
        let mut first = opcode | if message.compressed { 0x40 } else { 0 };
        let mut start = 0;
        for cut in cuts {
            frame(&mut stream, first, &payload[start..cut], input.mask);
            if message.ping_between {
                frame(&mut stream, 0x89, b"p", input.mask);
                expected.push(Ok(Read::Ping(bytes::Bytes::from_static(b"p"))));
            }
            first = 0;
            start = cut;
        }
        frame(&mut stream, 0x80 | first, &payload[start..], input.mask);
        expected.push(Ok(if message.text {
            Read::Text(String::from_utf8(body).expect("made valid"))
        } else {
            Read::Binary(body.into())
        }));
    }
    assert_eq!(read_all(&stream, &input.splits, 4096, Some(&agreed)), expected);
});
