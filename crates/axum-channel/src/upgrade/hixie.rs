//! The legacy hixie-75/76 WebSocket: the challenge that completes the
//! hixie-76 handshake, and a socket over the draft's framing.

use axum_channel_protocol::hixie76::{self, Challenge, Frame, FrameDecoder};
use axum_channel_protocol::websocket::{Incoming, Violation};
use axum_channel_protocol::Transmit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Completes the hixie-76 handshake: reads the 8 bytes sent after the
/// request headers (until the challenge's deadline) and answers them.
pub(crate) async fn answer_challenge<S>(io: &mut S, challenge: &Challenge) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut key3 = [0u8; 8];
    let deadline = tokio::time::Instant::from_std(challenge.deadline());
    tokio::time::timeout_at(deadline, io.read_exact(&mut key3))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hixie-76 key"))??;
    io.write_all(&challenge.answer(&key3)).await?;
    io.flush().await
}

/// Frames `0x00 text 0xFF` both ways; the closing handshake is `0xFF 0x00`.
pub(crate) struct HixieSocket<S> {
    io: S,
    decoder: FrameDecoder,
    /// Encoded frames not yet written, and how much of them was.
    out: Vec<u8>,
    written: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HixieSocket<S> {
    pub(crate) fn new(io: S, max_message_size: usize) -> Self {
        Self {
            io,
            decoder: FrameDecoder::new(max_message_size),
            out: Vec::new(),
            written: 0,
        }
    }

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(Frame::Text(text))) => return Poll::Ready(Incoming::Text(text)),
                Ok(Some(Frame::Close)) => {
                    // Answer the closing handshake; the draft has no codes.
                    self.out.extend_from_slice(&hixie76::CLOSING_FRAME);
                    return Poll::Ready(Incoming::Close {
                        code: None,
                        reason: String::new(),
                    });
                }
                Ok(None) => {}
                Err(error) => return Poll::Ready(Violation::from(error).into()),
            }
            let mut buffer = [0u8; 2048];
            let mut read = ReadBuf::new(&mut buffer);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut read)) {
                Ok(()) if read.filled().is_empty() => return Poll::Ready(Incoming::Lost),
                Ok(()) => self.decoder.extend(read.filled()),
                Err(_) => return Poll::Ready(Incoming::Lost),
            }
        }
    }

    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        // Keep at most one batch of frames waiting to be written.
        if self.out.len() - self.written > 64 * 1024 {
            return self.poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    pub(crate) fn start_send(&mut self, transmit: Transmit) {
        match transmit {
            Transmit::Data { bytes, .. } => {
                self.out.push(0x00);
                self.out.extend_from_slice(&bytes);
                self.out.push(0xFF);
            }
            Transmit::Close { .. } | Transmit::End(_) => {
                self.out.extend_from_slice(&hixie76::CLOSING_FRAME)
            }
            // The draft carries neither binary messages nor pings, nor
            // extensions.
            Transmit::Binary { .. } | Transmit::Deflated { .. } | Transmit::Ping(_) => {}
        }
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while self.written < self.out.len() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..])) {
                Ok(0) | Err(_) => return Poll::Ready(Err(())),
                Ok(n) => self.written += n,
            }
        }
        self.out.clear();
        self.written = 0;
        if self.out.capacity() > 4096 {
            self.out = Vec::new();
        }
        Pin::new(&mut self.io).poll_flush(cx).map_err(|_| ())
    }
}
