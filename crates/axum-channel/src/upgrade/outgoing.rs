//! The frames a WebSocket connection writes, in order: each frame's header
//! built inline, its payload the session's bytes as they are (one
//! broadcast's bytes are shared by every member), and every frame waiting
//! written together.

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;

/// The upgraded HTTP connection.
pub(crate) type Io = TokioIo<Upgraded>;

/// Frames taken from the session wait here until written; past these
/// bounds the connection task takes no more until the socket drains.
const QUEUE_BYTES: usize = 64 * 1024;
const QUEUE_FRAMES: usize = 64;

/// Frames up to this size are copied together into one write: on the
/// stack up to [`SMALL`] bytes in all, else into a buffer of at most
/// [`COPY`] bytes; a larger payload is written from where it is.
const LARGE: usize = 16 * 1024;
const SMALL: usize = 512;
const COPY: usize = 64 * 1024;

/// One frame waiting to be written: its header (empty for bytes tungstenite
/// framed itself) and its payload.
pub(crate) struct Frame {
    head: [u8; 10],
    head_len: u8,
    payload: Bytes,
}

impl Frame {
    /// An unmasked RFC 6455 frame, final, with `opcode`.
    pub(crate) fn new(opcode: u8, payload: Bytes) -> Self {
        let mut head = [0u8; 10];
        head[0] = 0x80 | opcode;
        let len = payload.len();
        let head_len = if len < 126 {
            head[1] = len as u8;
            2
        } else if let Ok(short) = u16::try_from(len) {
            head[1] = 126;
            head[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        Self {
            head,
            head_len,
            payload,
        }
    }

    /// An unmasked RFC 6455 frame, final, with `opcode`, whose payload is
    /// compressed: RSV1 says so (RFC 7692 section 6).
    pub(crate) fn deflated(opcode: u8, payload: Bytes) -> Self {
        let mut frame = Self::new(opcode, payload);
        frame.head[0] |= 0x40;
        frame
    }

    /// Bytes framed already.
    pub(crate) fn raw(payload: Bytes) -> Self {
        Self {
            head: [0; 10],
            head_len: 0,
            payload,
        }
    }

    fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    fn len(&self) -> usize {
        usize::from(self.head_len) + self.payload.len()
    }
}

pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const PING: u8 = 0x9;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PONG: u8 = 0xA;

/// Frames waiting to be written, in order.
#[derive(Default)]
pub(crate) struct Outgoing {
    frames: VecDeque<Frame>,
    /// Bytes not yet written.
    bytes: usize,
    /// How much of the first frame was written.
    offset: usize,
}

impl Outgoing {
    pub(crate) fn push(&mut self, frame: Frame) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    pub(crate) fn has_room(&self) -> bool {
        self.bytes < QUEUE_BYTES && self.frames.len() < QUEUE_FRAMES
    }

    /// Counts `written` bytes off the front.
    fn advance(&mut self, mut written: usize) {
        self.bytes -= written;
        while written > 0 {
            let Some(front) = self.frames.front() else {
                break;
            };
            let left = front.len() - self.offset;
            if written < left {
                self.offset += written;
                return;
            }
            written -= left;
            self.offset = 0;
            self.frames.pop_front();
        }
    }

    /// Hands the bytes of the small frames at the front, at most [`COPY`]
    /// of them (the first frame whatever its size), to `put`, in order.
    fn gather(&self, mut put: impl FnMut(&[u8])) {
        let mut gathered = 0;
        let mut skip = self.offset;
        for frame in &self.frames {
            if gathered > 0 && (frame.payload.len() >= LARGE || gathered + frame.len() > COPY) {
                break;
            }
            let head = frame.head();
            if skip < head.len() {
                put(&head[skip..]);
            }
            put(&frame.payload[skip.saturating_sub(head.len())..]);
            gathered += frame.len() - skip;
            skip = 0;
        }
    }

    /// Writes every frame, several in each write: small frames are copied
    /// together and sent with one `send` (a vectored write costs more in
    /// the kernel than copying a few hundred bytes), a large payload goes
    /// out with its header in one vectored write, without a copy.
    pub(crate) fn poll_write(&mut self, io: &mut Io, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(front) = self.frames.front() {
            let written = if front.payload.len() >= LARGE {
                let head = front.head();
                let skip = self.offset;
                let slices = if skip < head.len() {
                    [IoSlice::new(&head[skip..]), IoSlice::new(&front.payload)]
                } else {
                    [
                        IoSlice::new(&front.payload[skip - head.len()..]),
                        IoSlice::new(&[]),
                    ]
                };
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))?
            } else if self.bytes <= SMALL {
                let mut small = [0u8; SMALL];
                let mut filled = 0;
                self.gather(|bytes| {
                    small[filled..filled + bytes.len()].copy_from_slice(bytes);
                    filled += bytes.len();
                });
                ready!(Pin::new(&mut *io).poll_write(cx, &small[..filled]))?
            } else {
                let mut large = Vec::with_capacity(self.bytes.min(COPY));
                self.gather(|bytes| large.extend_from_slice(bytes));
                ready!(Pin::new(&mut *io).poll_write(cx, &large))?
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(written);
        }
        if self.frames.capacity() > 0 {
            // An idle connection keeps no queue.
            self.frames = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_carry_the_length_in_the_shortest_form() {
        let frame = Frame::new(TEXT, Bytes::from_static(b"hi"));
        assert_eq!(frame.head(), [0x81, 2]);
        let frame = Frame::new(BINARY, Bytes::from(vec![0u8; 126]));
        assert_eq!(frame.head(), [0x82, 126, 0, 126]);
        let frame = Frame::new(TEXT, Bytes::from(vec![0u8; 65_536]));
        assert_eq!(frame.head(), [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(frame.len(), 65_546);
    }

    #[test]
    fn written_bytes_are_counted_off_the_front_across_frames() {
        let mut out = Outgoing::default();
        out.push(Frame::new(TEXT, Bytes::from_static(b"abc")));
        out.push(Frame::raw(Bytes::from_static(b"xyz")));
        assert_eq!(out.bytes, 8);
        out.advance(4);
        assert_eq!((out.frames.len(), out.offset, out.bytes), (2, 4, 4));
        out.advance(2);
        assert_eq!((out.frames.len(), out.offset, out.bytes), (1, 1, 2));
        out.advance(2);
        assert!(out.frames.is_empty());
        assert_eq!((out.offset, out.bytes), (0, 0));
    }
}
