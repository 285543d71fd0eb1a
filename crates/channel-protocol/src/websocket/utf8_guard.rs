//! Fail-fast UTF-8 checking of text messages as their bytes arrive.
//!
//! RFC 6455 section 8.1: an endpoint that finds invalid UTF-8 in a text
//! message must fail the connection. Frame decoders check a frame once it
//! has arrived whole; a peer that sends a long frame (or many fragments)
//! whose first bytes are already invalid would be answered only at the end.
//! [`TextGuard`] watches the client-to-server byte stream, follows frame
//! headers, unmasks text payloads and reports the first byte that can never
//! be UTF-8, so the server can close with 1007 at once. It never buffers
//! more than a frame header and three bytes of a partial character.

/// The guard found bytes that are not UTF-8 in a text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl std::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a text message is not UTF-8")
    }
}

impl std::error::Error for InvalidUtf8 {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a frame header into `header`.
    Header,
    /// Reading `remaining` payload bytes of the current frame.
    Payload {
        remaining: u64,
        text: bool,
    },
    /// The stream broke the framing rules; the decoder will say so.
    Done,
    Invalid,
}

/// Follows client frames and checks text payloads as they arrive.
///
/// ```
/// use axum_channel_protocol::websocket::TextGuard;
///
/// let mut guard = TextGuard::new();
/// // A masked text frame of 4 bytes (mask 0), first fragment, then 0xFF: never UTF-8.
/// assert!(guard.inspect(&[0x01, 0x84, 0, 0, 0, 0, b'o', b'k']).is_ok());
/// assert!(guard.inspect(&[0xFF]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TextGuard {
    state: State,
    header: [u8; 14],
    header_len: usize,
    mask: [u8; 4],
    /// Position in the current frame's payload, for the mask.
    offset: u64,
    /// Inside a fragmented text message.
    in_text: bool,
    /// The current frame ends its message.
    fin: bool,
    partial: [u8; 4],
    partial_len: usize,
    /// The current text message is left to the frame decoder.
    unchecked: bool,
    /// The current frame is a whole (unfragmented) text message.
    single: bool,
}

impl Default for TextGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl TextGuard {
    /// A guard at the start of a connection's frames.
    pub fn new() -> Self {
        Self {
            state: State::Header,
            header: [0; 14],
            header_len: 0,
            mask: [0; 4],
            offset: 0,
            in_text: false,
            fin: false,
            partial: [0; 4],
            partial_len: 0,
            unchecked: false,
            single: false,
        }
    }

    /// Looks at the next bytes read from the peer.
    pub fn inspect(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        while !bytes.is_empty() {
            match self.state {
                State::Invalid => return Err(InvalidUtf8),
                State::Done => return Ok(()),
                State::Header => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.header[self.header_len] = byte;
                    self.header_len += 1;
                    self.try_header();
                }
                State::Payload { remaining, text } => {
                    // A whole message that arrives in one read is checked by
                    // the frame decoder as soon as it takes it: nothing to
                    // gain here by checking it first.
                    if text
                        && self.single
                        && self.offset == 0
                        && remaining > 1
                        && remaining <= bytes.len() as u64
                    {
                        self.unchecked = true;
                    }
                    let take = remaining.min(bytes.len() as u64) as usize;
                    let (chunk, rest) = bytes.split_at(take);
                    bytes = rest;
                    if text && !self.unchecked {
                        self.check_text(chunk)?;
                    } else {
                        self.offset += take as u64;
                    }
                    let remaining = remaining - take as u64;
                    if remaining == 0 {
                        self.end_frame()?;
                    } else {
                        self.state = State::Payload { remaining, text };
                    }
                }
            }
        }
        if self.state == State::Invalid {
            return Err(InvalidUtf8);
        }
        Ok(())
    }

    /// Parses the header once it is complete.
    fn try_header(&mut self) {
        let h = &self.header[..self.header_len];
        if h.len() < 2 {
            return;
        }
        let short = u64::from(h[1] & 0x7F);
        let masked = h[1] & 0x80 != 0;
        let length_bytes = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let needed = 2 + length_bytes + if masked { 4 } else { 0 };
        if h.len() < needed {
            return;
        }
        let length = match length_bytes {
            2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            8 => u64::from_be_bytes(h[2..10].try_into().expect("eight bytes")),
            _ => short,
        };
        self.mask = if masked {
            h[needed - 4..needed].try_into().expect("four bytes")
        } else {
            [0; 4]
        };
        self.fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0F;
        self.single = self.fin && opcode == 0x1;
        self.header_len = 0;
        self.offset = 0;
        let text = match opcode {
            0x1 => {
                if self.in_text {
                    // A new text message inside another: the decoder fails it.
                    self.state = State::Done;
                    return;
                }
                self.in_text = true;
                self.partial_len = 0;
                self.unchecked = false;
                true
            }
            0x0 => self.in_text,
            0x2 | 0x8..=0xF => false,
            _ => {
                self.state = State::Done;
                return;
            }
        };
        if opcode >= 0x8 {
            // Control frames do not end or continue a data message.
            self.fin = false;
        }
        if opcode == 0x2 {
            self.in_text = false;
        }
        self.state = State::Payload {
            remaining: length,
            text,
        };
        if length == 0 {
            // Nothing follows; the frame ends here.
            let _ = self.end_frame();
        }
    }

    fn end_frame(&mut self) -> Result<(), InvalidUtf8> {
        let ends_text = self.fin && self.in_text;
        self.state = State::Header;
        if ends_text {
            self.in_text = false;
            if self.partial_len > 0 && !self.unchecked {
                // A message that stops inside a character is not UTF-8.
                self.state = State::Invalid;
                return Err(InvalidUtf8);
            }
        }
        Ok(())
    }

    fn check_text(&mut self, masked: &[u8]) -> Result<(), InvalidUtf8> {
        let mut buffer = [0u8; 256];
        for piece in masked.chunks(buffer.len()) {
            let plain = &mut buffer[..piece.len()];
            for (index, (out, byte)) in plain.iter_mut().zip(piece).enumerate() {
                *out = byte ^ self.mask[((self.offset + index as u64) % 4) as usize];
            }
            self.offset += piece.len() as u64;
            if self.validate(plain).is_err() {
                self.state = State::Invalid;
                return Err(InvalidUtf8);
            }
        }
        Ok(())
    }

    fn validate(&mut self, mut plain: &[u8]) -> Result<(), InvalidUtf8> {
        // Complete a character split across reads first.
        while self.partial_len > 0 && !plain.is_empty() {
            self.partial[self.partial_len] = plain[0];
            self.partial_len += 1;
            plain = &plain[1..];
            match std::str::from_utf8(&self.partial[..self.partial_len]) {
                Ok(_) => self.partial_len = 0,
                Err(error) if error.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) if self.partial_len == 4 => return Err(InvalidUtf8),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(plain) {
            Ok(_) => Ok(()),
            Err(error) if error.error_len().is_some() => Err(InvalidUtf8),
            Err(error) => {
                let tail = &plain[error.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame with mask `key` around `payload`.
    fn frame(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend((n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend((n as u64).to_be_bytes());
            }
        }
        out.extend(key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        out
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    #[test]
    fn valid_text_split_anywhere_passes() {
        let text = "κόσμε 😀 — ok".as_bytes();
        let mut stream = frame(false, 1, &text[..5], KEY);
        stream.extend(frame(false, 9, b"ping", KEY));
        stream.extend(frame(true, 0, &text[5..], KEY));
        stream.extend(frame(true, 2, &[0xFF, 0xFE], KEY));
        for split in 0..stream.len() {
            let mut guard = TextGuard::new();
            assert_eq!(guard.inspect(&stream[..split]), Ok(()), "split at {split}");
            assert_eq!(guard.inspect(&stream[split..]), Ok(()), "split at {split}");
        }
    }

    #[test]
    fn invalid_bytes_are_found_before_the_frame_ends() {
        let mut payload = b"hello".to_vec();
        payload.extend([0xCE, 0xBA, 0xED, 0xA0, 0x80]); // a surrogate: never UTF-8
        payload.extend(b"rest of a long frame");
        let stream = frame(true, 1, &payload, KEY);
        let mut guard = TextGuard::new();
        let header = 6;
        assert_eq!(guard.inspect(&stream[..header + 8]), Ok(()));
        assert_eq!(
            guard.inspect(&stream[header + 8..header + 9]),
            Err(InvalidUtf8)
        );
        assert_eq!(guard.inspect(b"more"), Err(InvalidUtf8));
    }

    #[test]
    fn a_message_ending_inside_a_character_is_invalid() {
        let stream = frame(true, 1, &[b'a', 0xE2, 0x82], KEY);
        let mut guard = TextGuard::new();
        assert_eq!(guard.inspect(&stream[..7]), Ok(()));
        assert_eq!(guard.inspect(&stream[7..]), Err(InvalidUtf8));
    }

    #[test]
    fn frames_that_arrive_whole_are_left_to_the_decoder() {
        // The decoder checks a whole frame at once; only frames still
        // arriving need the guard.
        let stream = frame(true, 1, &[b'a', 0xFF], KEY);
        assert_eq!(TextGuard::new().inspect(&stream), Ok(()));
        // Fragments are always checked.
        let stream = frame(false, 1, &[b'a', 0xFF], KEY);
        assert_eq!(TextGuard::new().inspect(&stream), Err(InvalidUtf8));
    }

    #[test]
    fn long_lengths_and_binary_frames_are_skipped() {
        let binary = vec![0xFFu8; 70_000];
        let mut stream = frame(true, 2, &binary, KEY);
        stream.extend(frame(true, 1, "after".as_bytes(), KEY));
        let mut guard = TextGuard::new();
        for piece in stream.chunks(1000) {
            assert_eq!(guard.inspect(piece), Ok(()));
        }
        assert_eq!(guard.state, State::Header);
    }

    #[test]
    fn broken_framing_is_left_to_the_decoder() {
        let mut guard = TextGuard::new();
        assert_eq!(guard.inspect(&[0x03, 0x80, 0, 0, 0, 0, 0xFF]), Ok(()));
        assert_eq!(guard.state, State::Done);
    }
}
