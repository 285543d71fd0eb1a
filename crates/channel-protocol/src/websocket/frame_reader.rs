//! A sans-IO reader of the frames a client sends (RFC 6455 section 5),
//! with the permessage-deflate extension (RFC 7692) when it was agreed.
//!
//! tungstenite refuses any frame with RSV1 set, which a compressed message
//! carries, so a session with permessage-deflate reads its frames here.
//! The reader takes bytes as they come, keeps no more of them than a frame
//! header, and holds one message at a time, bounded by the message size
//! limit whether it arrived compressed or not: inflation stops at the
//! limit. Text is checked as it arrives, so invalid UTF-8 fails at once.
//!
//! ```
//! use axum_channel_protocol::websocket::frame_reader::{FrameReader, Read};
//!
//! let mut reader = FrameReader::new(1024, None);
//! // A masked text frame "Hi" (mask 0, so the payload is as it is).
//! let mut input = &[0x81, 0x82, 0, 0, 0, 0, b'H', b'i'][..];
//! assert_eq!(reader.read(&mut input), Some(Ok(Read::Text("Hi".into()))));
//! assert!(input.is_empty());
//! ```

use super::permessage_deflate::{Agreed, InflateError, Inflater};
use super::violation::Violation;
use bytes::Bytes;

/// What the reader found: one whole message or control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping, with its payload to answer with.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame: its code (none when empty) and reason.
    Close {
        /// The code, if the frame carried one.
        code: Option<u16>,
        /// The reason, empty if none.
        reason: String,
    },
}

/// Continuation frame (RFC 6455 section 5.2).
pub const OPCODE_CONTINUATION: u8 = 0x0;
/// Text frame (RFC 6455 section 5.2).
pub const OPCODE_TEXT: u8 = 0x1;
/// Binary frame (RFC 6455 section 5.2).
pub const OPCODE_BINARY: u8 = 0x2;
/// Close frame (RFC 6455 section 5.5.1).
pub const OPCODE_CLOSE: u8 = 0x8;
/// Ping frame (RFC 6455 section 5.5.2).
pub const OPCODE_PING: u8 = 0x9;
/// Pong frame (RFC 6455 section 5.5.3).
pub const OPCODE_PONG: u8 = 0xA;

/// Control frames carry at most this many payload bytes (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// True for a close code a peer may send (RFC 6455 section 7.4): the
/// defined ones that are not reserved for local use, and 3000–4999.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload,
    Failed,
}

/// The frame being read.
#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    remaining: u64,
    /// Payload bytes unmasked so far, for the mask's phase.
    offset: usize,
}

/// The data message being assembled.
#[derive(Debug)]
struct Message {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
    /// How much of `data` is known to be UTF-8 so far.
    checked: usize,
}

/// Reads a client's frames into messages; see the [module](self).
#[derive(Debug)]
pub struct FrameReader {
    max_message_size: usize,
    inflater: Option<Inflater>,
    state: State,
    header: [u8; 14],
    header_len: usize,
    frame: Frame,
    message: Option<Message>,
    control: Vec<u8>,
}

fn protocol(words: &str) -> Violation {
    Violation::Protocol(words.to_owned())
}

impl FrameReader {
    /// A reader of messages up to `max_message_size` bytes (inflated), with
    /// permessage-deflate when `agreed`.
    pub fn new(max_message_size: usize, agreed: Option<&Agreed>) -> Self {
        Self {
            max_message_size,
            inflater: agreed.map(Inflater::new),
            state: State::Header,
            header: [0; 14],
            header_len: 0,
            frame: Frame::default(),
            message: None,
            control: Vec::new(),
        }
    }

    /// True when no frame is partly read and no message partly assembled.
    pub fn is_idle(&self) -> bool {
        self.state == State::Header && self.header_len == 0 && self.message.is_none()
    }

    /// Reads from `input` (advancing it) until a message or control frame
    /// is whole, or the input runs out (`None`). After an error, the
    /// reader takes nothing more.
    pub fn read(&mut self, input: &mut &[u8]) -> Option<Result<Read, Violation>> {
        loop {
            match self.state {
                State::Failed => return None,
                State::Header => {
                    if input.is_empty() {
                        return None;
                    }
                    match self.read_header(input) {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(violation) => return Some(self.fail(violation)),
                    }
                    if self.frame.remaining == 0 {
                        match self.end_frame() {
                            Ok(Some(read)) => return Some(Ok(read)),
                            Ok(None) => {}
                            Err(violation) => return Some(self.fail(violation)),
                        }
                    }
                }
                State::Payload => {
                    if input.is_empty() {
                        return None;
                    }
                    let take = self.frame.remaining.min(input.len() as u64) as usize;
                    let (chunk, rest) = input.split_at(take);
                    *input = rest;
                    if let Err(violation) = self.payload(chunk) {
                        return Some(self.fail(violation));
                    }
                    self.frame.remaining -= take as u64;
                    if self.frame.remaining == 0 {
                        match self.end_frame() {
                            Ok(Some(read)) => return Some(Ok(read)),
                            Ok(None) => {}
                            Err(violation) => return Some(self.fail(violation)),
                        }
                    }
                }
            }
        }
    }

    fn fail(&mut self, violation: Violation) -> Result<Read, Violation> {
        self.state = State::Failed;
        self.message = None;
        self.control = Vec::new();
        Err(violation)
    }

    /// Takes header bytes; true once the header is whole and checked.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<bool, Violation> {
        while self.header_len < self.needed() {
            let Some((&byte, rest)) = input.split_first() else {
                return Ok(false);
            };
            *input = rest;
            self.header[self.header_len] = byte;
            self.header_len += 1;
            if self.header_len == 2 {
                self.check_first_bytes()?;
            }
        }
        let (b0, b1) = (self.header[0], self.header[1]);
        let (length, mask_at) = match b1 & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                4,
            ),
            127 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&self.header[2..10]);
                (u64::from_be_bytes(bytes), 10)
            }
            short => (u64::from(short), 2),
        };
        if length >> 63 != 0 {
            // RFC 6455 section 5.2: the most significant bit must be 0.
            return Err(protocol("Frame length has its most significant bit set"));
        }
        let opcode = b0 & 0x0f;
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&self.header[mask_at..mask_at + 4]);
        self.frame = Frame {
            fin: b0 & 0x80 != 0,
            opcode,
            mask,
            remaining: length,
            offset: 0,
        };
        self.header_len = 0;
        if opcode >= OPCODE_CLOSE {
            if length > MAX_CONTROL_PAYLOAD as u64 {
                return Err(protocol("Control frame too big"));
            }
            self.control.clear();
        } else {
            self.start_data(b0 & 0x40 != 0, length)?;
        }
        self.state = State::Payload;
        Ok(true)
    }

    /// The header's length, as far as its first two bytes tell.
    fn needed(&self) -> usize {
        if self.header_len < 2 {
            return 2;
        }
        match self.header[1] & 0x7f {
            126 => 8,
            127 => 14,
            _ => 6,
        }
    }

    /// The rules the first two bytes of a header must follow.
    fn check_first_bytes(&self) -> Result<(), Violation> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let opcode = b0 & 0x0f;
        // RFC 6455 section 5.2: RSV2 and RSV3 mean nothing here; RSV1 only
        // with permessage-deflate (RFC 7692 section 6), and only on the
        // first frame of a data message.
        if b0 & 0x30 != 0 {
            return Err(protocol("Reserved bits are non-zero"));
        }
        let rsv1 = b0 & 0x40 != 0;
        if rsv1 && (self.inflater.is_none() || !matches!(opcode, OPCODE_TEXT | OPCODE_BINARY)) {
            return Err(protocol("Reserved bits are non-zero"));
        }
        match opcode {
            OPCODE_CONTINUATION | OPCODE_TEXT | OPCODE_BINARY => {}
            OPCODE_CLOSE | OPCODE_PING | OPCODE_PONG => {
                // RFC 6455 section 5.5: control frames are never fragmented.
                if b0 & 0x80 == 0 {
                    return Err(protocol("Fragmented control frame"));
                }
            }
            other => return Err(Violation::Protocol(format!("Unknown opcode {other}"))),
        }
        // RFC 6455 section 5.1: a client masks every frame.
        if b1 & 0x80 == 0 {
            return Err(protocol("Received an unmasked frame from client"));
        }
        Ok(())
    }

    /// Starts a data frame of `length` bytes.
    fn start_data(&mut self, rsv1: bool, length: u64) -> Result<(), Violation> {
        let opcode = self.frame.opcode;
        match (&self.message, opcode) {
            (None, OPCODE_CONTINUATION) => {
                return Err(protocol("Continue frame but nothing to continue"))
            }
            (Some(_), OPCODE_TEXT | OPCODE_BINARY) => {
                return Err(protocol(
                    "Received a new message while a fragmented one is unfinished",
                ))
            }
            (None, _) => {
                self.message = Some(Message {
                    text: opcode == OPCODE_TEXT,
                    compressed: rsv1,
                    data: Vec::new(),
                    checked: 0,
                });
            }
            (Some(_), _) => {}
        }
        let message = self.message.as_ref().expect("started above");
        // Uncompressed, the frame's length counts whole against the limit;
        // compressed, inflation counts what it makes.
        if !message.compressed {
            let size = message.data.len() as u64 + length;
            if size > self.max_message_size as u64 {
                return Err(Violation::MessageTooBig {
                    size: usize::try_from(size).ok(),
                    max: self.max_message_size,
                });
            }
        } else if length > self.max_message_size as u64 {
            return Err(Violation::MessageTooBig {
                size: usize::try_from(length).ok(),
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    /// Takes a piece of the current frame's payload.
    fn payload(&mut self, chunk: &[u8]) -> Result<(), Violation> {
        let mut unmasked = [0u8; 4096];
        for piece in chunk.chunks(unmasked.len()) {
            let bytes = &mut unmasked[..piece.len()];
            for (index, (out, byte)) in bytes.iter_mut().zip(piece).enumerate() {
                *out = byte ^ self.frame.mask[(self.frame.offset + index) % 4];
            }
            self.frame.offset = (self.frame.offset + piece.len()) % 4;
            if self.frame.opcode >= OPCODE_CLOSE {
                self.control.extend_from_slice(bytes);
                continue;
            }
            let max = self.max_message_size;
            let Some(message) = self.message.as_mut() else {
                return Err(protocol("Data without a message"));
            };
            if message.compressed {
                let inflater = self
                    .inflater
                    .as_mut()
                    .ok_or_else(|| protocol("Reserved bits are non-zero"))?;
                let inflated = inflater.inflate(bytes, &mut message.data, max);
                // Text inflated before a fault is checked first.
                message.check_utf8(false)?;
                inflated.map_err(|error| inflate_violation(error, max))?;
            } else {
                message.data.extend_from_slice(bytes);
                message.check_utf8(false)?;
            }
        }
        Ok(())
    }

    /// The current frame is whole: a control frame, or a message's end.
    fn end_frame(&mut self) -> Result<Option<Read>, Violation> {
        self.state = State::Header;
        let opcode = self.frame.opcode;
        if opcode >= OPCODE_CLOSE {
            let payload = std::mem::take(&mut self.control);
            return match opcode {
                OPCODE_PING => Ok(Some(Read::Ping(Bytes::from(payload)))),
                OPCODE_PONG => Ok(Some(Read::Pong(Bytes::from(payload)))),
                _ => close_frame(&payload).map(Some),
            };
        }
        if !self.frame.fin {
            return Ok(None);
        }
        let max = self.max_message_size;
        let Some(mut message) = self.message.take() else {
            return Err(protocol("Data without a message"));
        };
        if message.compressed {
            if let Some(inflater) = self.inflater.as_mut() {
                let inflated = inflater.finish(&mut message.data, max);
                message.check_utf8(false)?;
                inflated.map_err(|error| inflate_violation(error, max))?;
            }
        }
        message.check_utf8(true)?;
        // The app's queue counts a message by its length, not by the room
        // its assembly grew into.
        message.data.shrink_to_fit();
        if message.text {
            String::from_utf8(message.data)
                .map(|text| Some(Read::Text(text)))
                .map_err(|_| Violation::InvalidUtf8)
        } else {
            Ok(Some(Read::Binary(Bytes::from(message.data))))
        }
    }
}

fn inflate_violation(error: InflateError, max: usize) -> Violation {
    match error {
        InflateError::TooBig(size) => Violation::MessageTooBig {
            size: Some(size),
            max,
        },
        InflateError::Corrupt => protocol("Invalid compressed data"),
    }
}

impl Message {
    /// Checks the text received so far; `whole` when the message ended
    /// (a character cut short is then invalid too).
    fn check_utf8(&mut self, whole: bool) -> Result<(), Violation> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(error) if error.error_len().is_none() && !whole => {
                self.checked += error.valid_up_to();
            }
            Err(_) => return Err(Violation::InvalidUtf8),
        }
        Ok(())
    }
}

/// A close frame's payload: empty, or a code a peer may send and a UTF-8
/// reason (RFC 6455 sections 5.5.1 and 7.4).
fn close_frame(payload: &[u8]) -> Result<Read, Violation> {
    match payload {
        [] => Ok(Read::Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(protocol("Close frame with a one-byte payload")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !is_sendable_close_code(code) {
                return Err(Violation::Protocol(format!("Invalid close code {code}")));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Violation::InvalidUtf8)?;
            Ok(Read::Close {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::permessage_deflate::{deflate_message, negotiate, DeflateConfig};
    use super::*;

    /// A client frame: masked with a fixed key.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![first];
        match payload.len() {
            len if len < 126 => out.push(0x80 | len as u8),
            len if len < 65_536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn read_all(reader: &mut FrameReader, bytes: &[u8]) -> Vec<Result<Read, Violation>> {
        let mut out = Vec::new();
        // Byte by byte: the reader must not care how input is cut.
        for byte in bytes.chunks(1) {
            let mut input = byte;
            while let Some(read) = reader.read(&mut input) {
                out.push(read);
            }
        }
        out
    }

    fn agreed() -> Agreed {
        negotiate(["permessage-deflate"], &DeflateConfig::default()).unwrap()
    }

    #[test]
    fn fragmented_messages_and_interleaved_control_frames_are_read() {
        let mut bytes = frame(0x01, b"Hel");
        bytes.extend(frame(0x89, b"p"));
        bytes.extend(frame(0x80, b"lo"));
        bytes.extend(frame(0x82, &[1, 2, 3]));
        bytes.extend(frame(0x88, &[0x03, 0xe8, b'o', b'k']));
        let mut reader = FrameReader::new(100, None);
        assert_eq!(
            read_all(&mut reader, &bytes),
            vec![
                Ok(Read::Ping(Bytes::from_static(b"p"))),
                Ok(Read::Text("Hello".into())),
                Ok(Read::Binary(Bytes::from_static(&[1, 2, 3]))),
                Ok(Read::Close {
                    code: Some(1000),
                    reason: "ok".into()
                }),
            ]
        );
        assert!(reader.is_idle());
    }

    #[test]
    fn compressed_messages_are_inflated_across_fragments() {
        let agreed = agreed();
        let compressed = deflate_message(agreed.outgoing(), b"Hello, Hello, Hello");
        let (a, b) = compressed.split_at(3);
        let mut bytes = frame(0x41, a);
        bytes.extend(frame(0x80, b));
        bytes.extend(frame(0x82, b"plain"));
        let mut reader = FrameReader::new(100, Some(&agreed));
        assert_eq!(
            read_all(&mut reader, &bytes),
            vec![
                Ok(Read::Text("Hello, Hello, Hello".into())),
                Ok(Read::Binary(Bytes::from_static(b"plain"))),
            ]
        );
    }

    #[test]
    fn broken_frames_are_refused_with_their_code() {
        let agreed = agreed();
        let cases: Vec<(Vec<u8>, bool, u16)> = vec![
            (frame(0xC1, b"x"), false, 1002),      // RSV1 without the extension
            (frame(0xA1, b"x"), true, 1002),       // RSV2
            (frame(0xC9, b""), true, 1002),        // RSV1 on a ping
            (frame(0x83, b""), false, 1002),       // reserved opcode
            (frame(0x09, b""), false, 1002),       // fragmented ping
            (frame(0x80, b"x"), false, 1002),      // nothing to continue
            (vec![0x81, 0x01, b'x'], false, 1002), // unmasked
            (frame(0x88, &[3]), false, 1002),      // one-byte close
            (frame(0x88, &[0x03, 0xed]), false, 1002), // close code 1005
            (frame(0x88, &[0x03, 0xe8, 0xff]), false, 1007),
            (frame(0x81, &[0xce, 0xba, 0xff]), false, 1007),
            (frame(0x81, &[b'x'; 101]), false, 1009),
            (frame(0xC1, &[0xff, 0xff]), true, 1002), // corrupt deflate data
        ];
        for (bytes, deflate, code) in cases {
            let mut reader = FrameReader::new(100, deflate.then_some(&agreed));
            let reads = read_all(&mut reader, &bytes);
            assert_eq!(reads.len(), 1, "{bytes:?}");
            assert_eq!(reads[0].as_ref().unwrap_err().code(), code, "{bytes:?}");
        }
        let mut reader = FrameReader::new(100, None);
        let mut bytes = frame(0x01, b"a");
        bytes.extend(frame(0x81, b"b"));
        assert_eq!(
            read_all(&mut reader, &bytes)[0]
                .as_ref()
                .unwrap_err()
                .code(),
            1002
        );
    }

    #[test]
    fn invalid_utf8_fails_before_the_message_ends() {
        let mut reader = FrameReader::new(1000, None);
        let bytes = frame(0x01, &[b'a', 0xff]);
        assert_eq!(
            read_all(&mut reader, &bytes)[0]
                .as_ref()
                .unwrap_err()
                .code(),
            1007
        );
    }

    #[test]
    fn an_inflate_bomb_stops_at_the_limit() {
        let agreed = agreed();
        let bomb = deflate_message(agreed.outgoing(), &vec![b'a'; 1 << 20]);
        let mut reader = FrameReader::new(10_000, Some(&agreed));
        let reads = read_all(&mut reader, &frame(0xC1, &bomb));
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].as_ref().unwrap_err().code(), 1009);
    }
}
