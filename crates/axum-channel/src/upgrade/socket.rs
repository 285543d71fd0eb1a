//! A WebSocket connection as the connection task sees it: frames in,
//! frames out, over either framing (RFC 6455 through tokio-tungstenite, or
//! the hixie-76 codec).

use super::hixie::HixieSocket;
use axum_channel_protocol::websocket::{Incoming, TextGuard, Violation};
use axum_channel_protocol::Transmit;
use futures::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// The upgraded HTTP connection.
pub(crate) type Io = TokioIo<Upgraded>;

/// How many bytes one read from the socket takes at most.
const READ_CHUNK: usize = 8 * 1024;

/// The peer's bytes on their way to tungstenite. They pass through a
/// [`TextGuard`], so invalid UTF-8 is caught while a frame still arrives.
/// Reads from the socket take up to [`READ_CHUNK`] bytes at once into a
/// stack buffer; what tungstenite's small buffer cannot take yet waits in
/// `spill`, which is freed once the connection has nothing more to read.
/// An idle connection thus holds no read buffer beyond tungstenite's few
/// bytes.
pub(crate) struct Guarded {
    io: Io,
    guard: TextGuard,
    invalid: bool,
    spill: Vec<u8>,
    /// How much of `spill` was handed over already.
    taken: usize,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.taken < this.spill.len() {
            let take = (this.spill.len() - this.taken).min(buf.remaining());
            buf.put_slice(&this.spill[this.taken..this.taken + take]);
            this.taken += take;
            if this.taken == this.spill.len() {
                this.spill.clear();
                this.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut read = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut this.io).poll_read(cx, &mut read) {
            Poll::Pending => {
                // Nothing more to read for now: keep no buffer while idle.
                this.spill = Vec::new();
                return Poll::Pending;
            }
            Poll::Ready(result) => result?,
        }
        let bytes = read.filled();
        if this.guard.inspect(bytes).is_err() {
            this.invalid = true;
        }
        let take = bytes.len().min(buf.remaining());
        buf.put_slice(&bytes[..take]);
        this.spill.extend_from_slice(&bytes[take..]);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// One WebSocket connection.
pub(crate) enum Socket {
    Rfc6455(Box<WebSocketStream<Guarded>>),
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

impl Socket {
    /// An RFC 6455 connection on `io`.
    pub(crate) async fn rfc6455(io: Io, buffers: &Buffers) -> Self {
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
        };
        let ws = WebSocketStream::from_raw_socket(guarded, Role::Server, Some(config)).await;
        Socket::Rfc6455(Box::new(ws))
    }

    /// True when the framing carries binary messages and pings.
    pub(crate) fn is_rfc6455(&self) -> bool {
        matches!(self, Socket::Rfc6455(_))
    }

    /// The next thing the peer sent.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        match self {
            Socket::Rfc6455(ws) => loop {
                if ws.get_ref().invalid {
                    return Poll::Ready(Violation::InvalidUtf8.into());
                }
                let next = Pin::new(&mut **ws).poll_next(cx);
                let Poll::Ready(next) = next else {
                    // Bytes of a frame still arriving may already be invalid.
                    if ws.get_ref().invalid {
                        return Poll::Ready(Violation::InvalidUtf8.into());
                    }
                    return Poll::Pending;
                };
                return Poll::Ready(match next {
                    Some(Ok(WsMessage::Text(text))) => Incoming::Text(text.as_str().to_owned()),
                    Some(Ok(WsMessage::Binary(data))) => Incoming::Binary(data),
                    Some(Ok(WsMessage::Ping(_))) => Incoming::Ping,
                    Some(Ok(WsMessage::Pong(payload))) => Incoming::Pong(payload),
                    Some(Ok(WsMessage::Close(frame))) => Incoming::Close {
                        code: frame.as_ref().map(|f| f.code.into()),
                        reason: frame
                            .map(|f| f.reason.as_str().to_owned())
                            .unwrap_or_default(),
                    },
                    Some(Ok(WsMessage::Frame(_))) => continue,
                    Some(Err(error)) => failure(error),
                    None => Incoming::Lost,
                });
            },
            Socket::Hixie(hixie) => hixie.poll_read(cx),
        }
    }

    /// Ready when the socket takes another frame.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        match self {
            Socket::Rfc6455(ws) => Pin::new(&mut **ws).poll_ready(cx).map_err(|_| ()),
            Socket::Hixie(hixie) => hixie.poll_ready(cx),
        }
    }

    /// Queues one frame for writing.
    pub(crate) fn start_send(&mut self, transmit: Transmit) -> Result<(), ()> {
        match self {
            Socket::Rfc6455(ws) => {
                let message = match transmit {
                    // Engines frame text only, so this check never fails.
                    Transmit::Data { bytes, .. } => {
                        WsMessage::Text(Utf8Bytes::try_from(bytes).map_err(|_| ())?)
                    }
                    Transmit::Binary { bytes, .. } => WsMessage::binary(bytes),
                    Transmit::Ping(payload) => WsMessage::Ping(payload),
                    Transmit::Close { code, reason } => WsMessage::Close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    })),
                    Transmit::End(_) => WsMessage::Close(None),
                };
                Pin::new(&mut **ws).start_send(message).map_err(|_| ())
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
            Socket::Rfc6455(ws) => Pin::new(&mut **ws).poll_flush(cx).map_err(|_| ()),
            Socket::Hixie(hixie) => hixie.poll_flush(cx),
        }
    }
}
