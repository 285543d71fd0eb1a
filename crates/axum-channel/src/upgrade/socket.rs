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

use super::deflate::DeflateSocket;
use super::hixie::HixieSocket;
use super::outgoing::{Frame, Outgoing, BINARY, PING, TEXT};
use axum_channel_protocol::websocket::permessage_deflate::Agreed;
use axum_channel_protocol::websocket::{Incoming, TextGuard, Violation};
use axum_channel_protocol::Transmit;
use bytes::Bytes;
use std::io::{self, Read, Write};
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

pub(crate) use super::outgoing::Io;

/// How many bytes one read from the socket takes at most.
const READ_CHUNK: usize = 8 * 1024;

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
    /// RFC 6455 with permessage-deflate, read and written here.
    Deflate(Box<DeflateSocket>),
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
        matches!(self, Socket::Rfc6455(_) | Socket::Deflate(_))
    }

    /// An RFC 6455 connection on `io` with permessage-deflate as `agreed`.
    pub(crate) fn deflate(io: Io, buffers: &Buffers, agreed: Agreed) -> Self {
        Socket::Deflate(Box::new(DeflateSocket::new(
            io,
            buffers.max_message_size,
            agreed,
        )))
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
            Socket::Deflate(deflate) => deflate.poll_read(cx),
        }
    }

    /// True while the socket takes another frame without waiting.
    pub(crate) fn has_room(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        match self {
            Socket::Rfc6455(ws) => Ok(ws.io.out.has_room()),
            Socket::Deflate(deflate) => Ok(deflate.has_room()),
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
                    // Only an engine told of permessage-deflate compresses,
                    // and its connection is a `Deflate` one.
                    Transmit::Deflated { .. } => return Err(()),
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
            Socket::Deflate(deflate) => {
                deflate.start_send(transmit);
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
            Socket::Deflate(deflate) => deflate.poll_flush(cx),
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
