//! The legacy hixie-76 WebSocket handshake and framing (draft-hixie-
//! thewebsocketprotocol-76), which old SockJS clients and test suites still use.
//!
//! The handshake proves the server read the request: each of the headers
//! `Sec-WebSocket-Key1` and `Sec-WebSocket-Key2` hides a number (its digits)
//! multiplied by its count of spaces; the server divides, and answers with
//! the MD5 of both 32-bit big-endian quotients followed by the 8 bytes sent
//! after the request headers. Frames are `0x00`, UTF-8 text, `0xFF`; the
//! closing handshake is the two bytes `0xFF 0x00`.

use md5::{Digest, Md5};
use std::fmt;
use std::time::{Duration, Instant};

/// Why a hixie-76 key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The key has no spaces, so there is nothing to divide by.
    NoSpaces,
    /// The key's number is not a multiple of its space count.
    NotDivisible,
    /// The key's digits make a number above 2^32 - 1.
    TooLarge,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::NoSpaces => "the key contains no spaces",
            KeyError::NotDivisible => "the key's number is not divisible by its spaces",
            KeyError::TooLarge => "the key's number is too large",
        })
    }
}

impl std::error::Error for KeyError {}

/// The number a key hides: its digits, read as one number, divided by its spaces.
pub fn key_number(key: &str) -> Result<u32, KeyError> {
    let mut number: u64 = 0;
    let mut spaces: u64 = 0;
    for ch in key.chars() {
        if let Some(digit) = ch.to_digit(10) {
            number = number * 10 + u64::from(digit);
            if number > u64::from(u32::MAX) {
                return Err(KeyError::TooLarge);
            }
        } else if ch == ' ' {
            spaces += 1;
        }
    }
    if spaces == 0 {
        return Err(KeyError::NoSpaces);
    }
    if !number.is_multiple_of(spaces) {
        return Err(KeyError::NotDivisible);
    }
    Ok((number / spaces) as u32)
}

/// The 16 bytes the server sends after its handshake headers.
pub fn challenge_response(key1: &str, key2: &str, key3: &[u8; 8]) -> Result<[u8; 16], KeyError> {
    Ok(response(key_number(key1)?, key_number(key2)?, key3))
}

/// The MD5 of both key numbers, big-endian, and the 8 bytes of `key3`.
fn response(number1: u32, number2: u32, key3: &[u8; 8]) -> [u8; 16] {
    let mut challenge = [0u8; 16];
    challenge[..4].copy_from_slice(&number1.to_be_bytes());
    challenge[4..8].copy_from_slice(&number2.to_be_bytes());
    challenge[8..].copy_from_slice(key3);
    Md5::digest(challenge).into()
}

/// How long the server waits for the 8 bytes that follow a hixie-76
/// request's headers before it gives the connection up.
pub const KEY3_TIMEOUT: Duration = Duration::from_secs(10);

/// The last step of a hixie-76 handshake, without IO: after the 101
/// response's headers, the IO side reads the 8 bytes of `key3` until
/// [`deadline`](Self::deadline), writes [`answer`](Self::answer), and only
/// then starts framing. A client that sends nothing by the deadline is
/// dropped.
///
/// ```
/// use axum_channel_protocol::hixie76::{key_number, Challenge, KEY3_TIMEOUT};
/// use std::time::Instant;
///
/// // draft-hixie-thewebsocketprotocol-76, section 1.3.
/// let key1 = key_number("18x 6]8vM;54 *(5:  {   U1]8  z [  8").unwrap();
/// let key2 = key_number("1_ tx7X d  <  nw  334J702) 7]o}` 0").unwrap();
/// let now = Instant::now();
/// let challenge = Challenge::new(now, key1, key2);
/// assert_eq!(challenge.deadline(), now + KEY3_TIMEOUT);
/// assert_eq!(&challenge.answer(b"Tm[K T2u"), b"fQJ,fN/4F4!~K~MH");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    numbers: [u32; 2],
    deadline: Instant,
}

impl Challenge {
    /// The challenge of a request whose keys hide `key1` and `key2` (see
    /// [`key_number`]), started at `now`, when the 101 response went out.
    pub fn new(now: Instant, key1: u32, key2: u32) -> Self {
        Self {
            numbers: [key1, key2],
            deadline: now + KEY3_TIMEOUT,
        }
    }

    /// When the IO side stops waiting for `key3`: [`KEY3_TIMEOUT`] after the start.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once `key3` can no longer come in time.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// The 16 bytes that answer `key3`, to write right after it was read.
    pub fn answer(&self, key3: &[u8; 8]) -> [u8; 16] {
        response(self.numbers[0], self.numbers[1], key3)
    }
}

/// Encodes one text frame.
pub fn encode_text_frame(text: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(text.len() + 2);
    frame.push(0x00);
    frame.extend_from_slice(text.as_bytes());
    frame.push(0xFF);
    frame
}

/// The closing handshake both sides send.
pub const CLOSING_FRAME: [u8; 2] = [0xFF, 0x00];

/// What the decoder found in the bytes read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete text frame.
    Text(String),
    /// The peer's closing handshake.
    Close,
}

/// Why a byte stream is not valid hixie-76 framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A frame started with a byte other than `0x00` or `0xFF`.
    BadFrameType(u8),
    /// A text frame is not UTF-8.
    InvalidUtf8,
    /// A text frame grew past the size limit before its end byte.
    TooLong {
        /// The size limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadFrameType(byte) => write!(f, "unexpected frame type 0x{byte:02x}"),
            FrameError::InvalidUtf8 => f.write_str("a text frame is not UTF-8"),
            FrameError::TooLong { limit } => write!(f, "a frame is longer than {limit} bytes"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits a byte stream into hixie-76 frames, with a bound on frame size.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            buffer: Vec::new(),
            max_frame,
        }
    }

    /// Adds bytes read from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// How many bytes read from the peer wait for their frame to complete.
    /// Once [`next_frame`](Self::next_frame) has returned `Ok(None)`, this is
    /// at most `max_frame + 1`.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// An idle connection keeps no large buffer.
    fn shrink(&mut self) {
        if self.buffer.is_empty() && self.buffer.capacity() > 4096 {
            self.buffer = Vec::new();
        }
    }

    /// The next complete frame, if the bytes so far hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(&first) = self.buffer.first() else {
            return Ok(None);
        };
        match first {
            0x00 => match self.buffer.iter().position(|&b| b == 0xFF) {
                // The limit holds however the frame was split across reads.
                Some(end) if end - 1 > self.max_frame => Err(FrameError::TooLong {
                    limit: self.max_frame,
                }),
                Some(end) => {
                    let text = std::str::from_utf8(&self.buffer[1..end])
                        .map_err(|_| FrameError::InvalidUtf8)?
                        .to_owned();
                    self.buffer.drain(..=end);
                    self.shrink();
                    Ok(Some(Frame::Text(text)))
                }
                None if self.buffer.len() - 1 > self.max_frame => Err(FrameError::TooLong {
                    limit: self.max_frame,
                }),
                None => Ok(None),
            },
            0xFF => match self.buffer.get(1) {
                Some(0x00) => {
                    self.buffer.drain(..2);
                    self.shrink();
                    Ok(Some(Frame::Close))
                }
                Some(&other) => Err(FrameError::BadFrameType(other)),
                None => Ok(None),
            },
            other => Err(FrameError::BadFrameType(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The handshake example of draft-hixie-thewebsocketprotocol-76, section 1.3.
    const KEY1: &str = "18x 6]8vM;54 *(5:  {   U1]8  z [  8";
    const KEY2: &str = "1_ tx7X d  <  nw  334J702) 7]o}` 0";
    const KEY3: &[u8; 8] = b"Tm[K T2u";

    #[test]
    fn the_spec_example_gives_the_spec_answer() {
        assert_eq!(key_number(KEY1), Ok(155_712_099));
        assert_eq!(key_number(KEY2), Ok(173_347_027));
        assert_eq!(
            &challenge_response(KEY1, KEY2, KEY3).unwrap(),
            b"fQJ,fN/4F4!~K~MH"
        );
    }

    #[test]
    fn the_challenge_answers_as_the_spec_and_expires_after_ten_seconds() {
        let now = Instant::now();
        let challenge = Challenge::new(now, key_number(KEY1).unwrap(), key_number(KEY2).unwrap());
        assert_eq!(&challenge.answer(KEY3), b"fQJ,fN/4F4!~K~MH");
        assert!(!challenge.is_expired(now + Duration::from_millis(9_999)));
        assert!(challenge.is_expired(now + Duration::from_secs(10)));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(key_number("12345"), Err(KeyError::NoSpaces));
        assert_eq!(key_number("1 2 3"), Err(KeyError::NotDivisible));
        assert_eq!(key_number("9999999999 "), Err(KeyError::TooLarge));
        assert!(challenge_response("1 2 3", KEY2, KEY3).is_err());
    }

    #[test]
    fn frames_round_trip_across_reads() {
        let mut decoder = FrameDecoder::new(100);
        let mut bytes = encode_text_frame("héllo");
        bytes.extend(encode_text_frame(""));
        bytes.extend(CLOSING_FRAME);
        for byte in &bytes[..4] {
            decoder.extend(&[*byte]);
            assert_eq!(decoder.next_frame(), Ok(None));
        }
        decoder.extend(&bytes[4..]);
        assert_eq!(decoder.next_frame(), Ok(Some(Frame::Text("héllo".into()))));
        assert_eq!(decoder.next_frame(), Ok(Some(Frame::Text(String::new()))));
        assert_eq!(decoder.next_frame(), Ok(Some(Frame::Close)));
        assert_eq!(decoder.next_frame(), Ok(None));
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut decoder = FrameDecoder::new(4);
        decoder.extend(&[0x00, b'a', b'b', b'c', b'd', b'e']);
        assert_eq!(decoder.next_frame(), Err(FrameError::TooLong { limit: 4 }));
        let mut decoder = FrameDecoder::new(100);
        decoder.extend(&[0x80, 0x01]);
        assert_eq!(decoder.next_frame(), Err(FrameError::BadFrameType(0x80)));
        let mut decoder = FrameDecoder::new(100);
        decoder.extend(&[0x00, 0xC3, 0x28, 0xFF]);
        assert_eq!(decoder.next_frame(), Err(FrameError::InvalidUtf8));
    }

    #[test]
    fn a_long_frame_is_refused_even_when_it_arrives_in_one_read() {
        let mut decoder = FrameDecoder::new(4);
        decoder.extend(&encode_text_frame("abcd"));
        assert_eq!(decoder.next_frame(), Ok(Some(Frame::Text("abcd".into()))));
        decoder.extend(&encode_text_frame("abcde"));
        assert_eq!(decoder.next_frame(), Err(FrameError::TooLong { limit: 4 }));
    }
}
