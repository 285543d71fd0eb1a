//! A WebSocket connection as the connection task sees it: frames in,
//! frames out, over either framing (RFC 6455 with tungstenite's codec, or
//! the hixie-76 codec).
//!
//! For RFC 6455, tungstenite reads and answers the peer's control frames
//! (pongs, the close handshake); the messages and pings the session sends
//! are framed here and written by [`Guarded`]'s own queue: a frame's header
//! is built inline, its payload is the session's bytes as they are (one
//! broadcast's bytes are shared by every member), and every frame waiting
//! goes out in one vectored write. What tungstenite writes joins the same
//! queue, in order, so frames never interleave.

use super::hixie::HixieSocket;
use axum_channel_protocol::websocket::{Incoming, TextGuard, Violation};
use axum_channel_protocol::Transmit;
use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{
    CloseFrame, Role, WebSocketConfig, WebSocketContext,
};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The upgraded HTTP connection.
pub(crate) type Io = TokioIo<Upgraded>;

/// How many bytes one read from the socket takes at most.
const READ_CHUNK: usize = 8 * 1024;

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
struct Frame {
    head: [u8; 10],
    head_len: u8,
    payload: Bytes,
}

impl Frame {
    /// An unmasked RFC 6455 frame, final, with `opcode`.
    fn new(opcode: u8, payload: Bytes) -> Self {
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

    /// Bytes framed already.
    fn raw(payload: Bytes) -> Self {
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

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const PING: u8 = 0x9;

/// Frames waiting to be written, in order.
#[derive(Default)]
struct Outgoing {
    frames: VecDeque<Frame>,
    /// Bytes not yet written.
    bytes: usize,
    /// How much of the first frame was written.
    offset: usize,
}

impl Outgoing {
    fn push(&mut self, frame: Frame) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    fn has_room(&self) -> bool {
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
    fn poll_write(&mut self, io: &mut Io, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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

/// The peer's bytes on their way to tungstenite, and every byte on its way
/// to the peer.
///
/// Reads pass through a [`TextGuard`], so invalid UTF-8 is caught while a
/// frame still arrives. They take up to [`READ_CHUNK`] bytes at once into
/// a stack buffer; what tungstenite's small buffer cannot take yet waits in
/// `spill`, which is freed once the connection has nothing more to read.
/// An idle connection thus holds no read buffer beyond tungstenite's few
/// bytes, and no write queue.
pub(crate) struct Guarded {
    io: Io,
    guard: TextGuard,
    invalid: bool,
    spill: Vec<u8>,
    /// How much of `spill` was handed over already.
    taken: usize,
    out: Outgoing,
}

impl Guarded {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.taken < self.spill.len() {
            let take = (self.spill.len() - self.taken).min(buf.remaining());
            buf.put_slice(&self.spill[self.taken..self.taken + take]);
            self.taken += take;
            if self.taken == self.spill.len() {
                self.spill.clear();
                self.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut read = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut self.io).poll_read(cx, &mut read) {
            Poll::Pending => {
                // Nothing more to read for now: keep no buffer while idle.
                self.spill = Vec::new();
                return Poll::Pending;
            }
            Poll::Ready(result) => result?,
        }
        let bytes = read.filled();
        if self.guard.inspect(bytes).is_err() {
            self.invalid = true;
        }
        let take = bytes.len().min(buf.remaining());
        buf.put_slice(&bytes[..take]);
        self.spill.extend_from_slice(&bytes[take..]);
        Poll::Ready(Ok(()))
    }

    /// Bytes tungstenite framed (pongs, close frames) join the queue
    /// after everything before them; past the queue's bounds they wait in
    /// tungstenite's buffer until it drains.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if !self.out.has_room() {
            ready!(self.out.poll_write(&mut self.io, cx))?;
        }
        self.out.push(Frame::raw(Bytes::copy_from_slice(buf)));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.out.poll_write(&mut self.io, cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

/// `Guarded` as tungstenite's blocking `Read + Write`, for the length of
/// one call: waiting is `WouldBlock`, and `cx` is woken when it is over.
struct Blocking<'a, 'b> {
    io: &'a mut Guarded,
    cx: &'a mut Context<'b>,
}

fn would_block<T>(poll: Poll<io::Result<T>>) -> io::Result<T> {
    match poll {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl Read for Blocking<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut read = ReadBuf::new(buf);
        would_block(self.io.poll_read(self.cx, &mut read))?;
        Ok(read.filled().len())
    }
}

impl Write for Blocking<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        would_block(self.io.poll_write(self.cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        would_block(self.io.poll_flush(self.cx))
    }
}

/// One RFC 6455 connection: tungstenite's codec and the guarded IO.
pub(crate) struct Rfc6455 {
    codec: WebSocketContext,
    io: Guarded,
    /// A read failed or the peer's close was read: nothing more comes.
    ended: bool,
    /// Tungstenite framed something (a pong, a close frame) that it still
    /// holds, or the codec must be flushed before the connection ends.
    codec_dirty: bool,
}

impl Rfc6455 {
    /// Runs `op` on the codec with the IO as a blocking stream.
    fn with<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut WebSocketContext, &mut Blocking<'_, '_>) -> R,
    ) -> R {
        let mut stream = Blocking {
            io: &mut self.io,
            cx,
        };
        op(&mut self.codec, &mut stream)
    }
}

/// One WebSocket connection.
pub(crate) enum Socket {
    Rfc6455(Box<Rfc6455>),
    Hixie(Box<HixieSocket<Io>>),
}

/// How an RFC 6455 connection reads and writes.
pub(crate) struct Buffers {
    pub(crate) max_message_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
}

impl Buffers {
    /// The buffers of an endpoint's connections: its WebSocket settings,
    /// with the endpoint's message size limit.
    pub(crate) fn new(websocket: &crate::config::WebSocketConfig, max_message_size: usize) -> Self {
        Self {
            max_message_size,
            read_buffer_size: websocket.read_buffer_size,
            write_buffer_size: websocket.write_buffer_size,
        }
    }
}

/// What a read error means: a rule the peer broke (the protocol crate
/// gives its close code), or a lost connection.
fn failure(error: WsError) -> Incoming {
    let violation = match error {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Violation::MessageTooBig {
                size: Some(size),
                max: max_size,
            }
        }
        WsError::Capacity(other) => Violation::LimitExceeded(other.to_string()),
        WsError::Utf8(_) => Violation::InvalidUtf8,
        WsError::Protocol(problem) => Violation::Protocol(problem.to_string()),
        _ => return Incoming::Lost,
    };
    violation.into()
}

/// Tungstenite's `WouldBlock`, as waiting.
fn pending<T>(result: Result<T, WsError>) -> Poll<Result<T, WsError>> {
    match result {
        Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl Socket {
    /// An RFC 6455 connection on `io`.
    pub(crate) fn rfc6455(io: Io, buffers: &Buffers) -> Self {
        // Messages and pings are framed and queued here; tungstenite frames
        // only its answers (pongs, the close frame), which go out with the
        // next flush.
        let config = WebSocketConfig::default()
            .max_message_size(Some(buffers.max_message_size))
            .max_frame_size(Some(buffers.max_message_size))
            .read_buffer_size(buffers.read_buffer_size)
            .write_buffer_size(buffers.write_buffer_size);
        let guarded = Guarded {
            io,
            guard: TextGuard::new(),
            invalid: false,
            spill: Vec::new(),
            taken: 0,
            out: Outgoing::default(),
        };
        Socket::Rfc6455(Box::new(Rfc6455 {
            codec: WebSocketContext::new(Role::Server, Some(config)),
            io: guarded,
            ended: false,
            codec_dirty: false,
        }))
    }

    /// True when the framing carries binary messages and pings.
    pub(crate) fn is_rfc6455(&self) -> bool {
        matches!(self, Socket::Rfc6455(_))
    }

    /// The next thing the peer sent.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        match self {
            Socket::Rfc6455(ws) => loop {
                if ws.io.invalid {
                    return Poll::Ready(Violation::InvalidUtf8.into());
                }
                if ws.ended {
                    return Poll::Ready(Incoming::Lost);
                }
                let read = ws.with(cx, |codec, stream| codec.read(stream));
                let Poll::Ready(read) = pending(read) else {
                    // Bytes of a frame still arriving may already be invalid.
                    if ws.io.invalid {
                        return Poll::Ready(Violation::InvalidUtf8.into());
                    }
                    return Poll::Pending;
                };
                return Poll::Ready(match read {
                    Ok(WsMessage::Text(text)) => Incoming::Text(text.as_str().to_owned()),
                    Ok(WsMessage::Binary(data)) => Incoming::Binary(data),
                    Ok(WsMessage::Ping(_)) => {
                        // Tungstenite queued the pong; it goes out with the next flush.
                        ws.codec_dirty = true;
                        Incoming::Ping
                    }
                    Ok(WsMessage::Pong(payload)) => Incoming::Pong(payload),
                    Ok(WsMessage::Close(frame)) => {
                        // Tungstenite queued its answer, if the peer closed first.
                        ws.codec_dirty = true;
                        Incoming::Close {
                            code: frame.as_ref().map(|f| f.code.into()),
                            reason: frame
                                .map(|f| f.reason.as_str().to_owned())
                                .unwrap_or_default(),
                        }
                    }
                    // Tungstenite reads whole messages only.
                    Ok(WsMessage::Frame(_)) => continue,
                    Err(error) => {
                        ws.ended = true;
                        if ws.io.invalid {
                            Violation::InvalidUtf8.into()
                        } else {
                            failure(error)
                        }
                    }
                });
            },
            Socket::Hixie(hixie) => hixie.poll_read(cx),
        }
    }

    /// True while the socket takes another frame without waiting.
    pub(crate) fn has_room(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        match self {
            Socket::Rfc6455(ws) => Ok(ws.io.out.has_room()),
            Socket::Hixie(hixie) => match hixie.poll_ready(cx) {
                Poll::Ready(Ok(())) => Ok(true),
                Poll::Ready(Err(())) => Err(()),
                Poll::Pending => Ok(false),
            },
        }
    }

    /// Queues one frame for writing.
    pub(crate) fn start_send(
        &mut self,
        cx: &mut Context<'_>,
        transmit: Transmit,
    ) -> Result<(), ()> {
        match self {
            Socket::Rfc6455(ws) => {
                let frame = match transmit {
                    // Engines queue text as UTF-8 only.
                    Transmit::Data { bytes, .. } => Frame::new(TEXT, bytes),
                    Transmit::Binary { bytes, .. } => Frame::new(BINARY, bytes),
                    Transmit::Ping(payload) => Frame::new(PING, payload),
                    Transmit::Close { code, reason } => {
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        };
                        return ws.close(cx, Some(frame));
                    }
                    Transmit::End(_) => return ws.close(cx, None),
                };
                ws.io.out.push(frame);
                Ok(())
            }
            Socket::Hixie(hixie) => {
                hixie.start_send(transmit);
                Ok(())
            }
        }
    }

    /// Writes everything queued.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        match self {
            Socket::Rfc6455(ws) => {
                if ws.codec_dirty {
                    match ready!(pending(ws.with(cx, |codec, stream| codec.flush(stream)))) {
                        // Tungstenite queued what it had (a closing
                        // handshake that completed says so with an error).
                        Ok(()) | Err(WsError::ConnectionClosed) => ws.codec_dirty = false,
                        Err(_) => return Poll::Ready(Err(())),
                    }
                }
                // What tungstenite queued last may not be written yet.
                ws.io.poll_flush(cx).map_err(|_| ())
            }
            Socket::Hixie(hixie) => hixie.poll_flush(cx),
        }
    }
}

impl Rfc6455 {
    /// Queues the close frame (tungstenite keeps the closing handshake's state).
    fn close(&mut self, cx: &mut Context<'_>, frame: Option<CloseFrame>) -> Result<(), ()> {
        self.codec_dirty = true;
        match self.with(cx, |codec, stream| codec.close(stream, frame)) {
            Ok(()) | Err(WsError::ConnectionClosed) => Ok(()),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(_) => Err(()),
        }
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
