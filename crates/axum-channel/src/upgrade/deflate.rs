//! An RFC 6455 connection with permessage-deflate (RFC 7692). tungstenite
//! refuses compressed frames, so such a connection reads its frames with
//! the protocol crate's `FrameReader`, answers pings and the closing
//! handshake itself, and compresses what the session sends.
//!
//! Memory while idle: no read buffer (bytes a message did not take wait
//! in a spill buffer freed once the socket has nothing more), no write
//! queue, no compressor when the server has no context takeover (the
//! protocol crate pools them per thread), and an inflater only when the
//! client takes its context over (its window must survive).

use super::outgoing::{Frame, Io, Outgoing, BINARY, CLOSE, PING, PONG, TEXT};
use axum_channel_protocol::websocket::frame_reader::{FrameReader, Read};
use axum_channel_protocol::websocket::permessage_deflate::{deflate_message, Agreed, Deflater};
use axum_channel_protocol::websocket::Incoming;
use axum_channel_protocol::Transmit;
use bytes::{BufMut, Bytes, BytesMut};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes one read from the socket takes at most.
const READ_CHUNK: usize = 8 * 1024;

/// How many reads one poll drops, after a violation, before it yields.
const DROP_ROUNDS: usize = 16;

/// The longest close reason that fits a control frame with its code.
const MAX_CLOSE_REASON: usize = 123;

/// One compressed connection.
pub(crate) struct DeflateSocket {
    io: Io,
    reader: FrameReader,
    /// Bytes read and not yet taken by the reader.
    spill: Vec<u8>,
    taken: usize,
    out: Outgoing,
    agreed: Agreed,
    /// The compressor, kept only with server context takeover.
    deflater: Option<Deflater>,
    /// Our close frame is queued: nothing more is sent.
    close_sent: bool,
    /// Nothing more will be read.
    ended: bool,
    /// The peer broke the protocol: what it still sends is read and
    /// dropped until it closes, so that our close frame is not lost to a
    /// reset (closing a socket with unread bytes sends one).
    failed: bool,
}

impl DeflateSocket {
    pub(crate) fn new(io: Io, max_message_size: usize, agreed: Agreed) -> Self {
        Self {
            io,
            reader: FrameReader::new(max_message_size, Some(&agreed)),
            spill: Vec::new(),
            taken: 0,
            out: Outgoing::default(),
            agreed,
            deflater: None,
            close_sent: false,
            ended: false,
            failed: false,
        }
    }

    /// The next thing the peer sent.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        let mut dropped = 0;
        loop {
            if self.ended {
                return Poll::Ready(Incoming::Lost);
            }
            if self.failed {
                self.spill = Vec::new();
                self.taken = 0;
            }
            if self.taken < self.spill.len() {
                let mut input = &self.spill[self.taken..];
                let read = self.reader.read(&mut input);
                self.taken = self.spill.len() - input.len();
                if self.taken == self.spill.len() {
                    self.spill.clear();
                    self.taken = 0;
                }
                if let Some(read) = read {
                    return Poll::Ready(self.handle(read));
                }
                continue;
            }
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => {
                    // Nothing more to read for now: keep no buffer while idle.
                    self.spill = Vec::new();
                    return Poll::Pending;
                }
                Poll::Ready(Err(_)) => {
                    self.ended = true;
                    return Poll::Ready(Incoming::Lost);
                }
                Poll::Ready(Ok(())) => {}
            }
            let filled = buf.filled();
            if filled.is_empty() {
                self.ended = true;
                return Poll::Ready(Incoming::Lost);
            }
            if self.failed {
                dropped += 1;
                if dropped == DROP_ROUNDS {
                    // A peer that keeps sending does not hold the task.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            let mut input = filled;
            let read = self.reader.read(&mut input);
            self.spill.extend_from_slice(input);
            if let Some(read) = read {
                return Poll::Ready(self.handle(read));
            }
        }
    }

    /// What the reader found, answered where the protocol says so.
    fn handle(
        &mut self,
        read: Result<Read, axum_channel_protocol::websocket::Violation>,
    ) -> Incoming {
        match read {
            Ok(Read::Text(text)) => Incoming::Text(text),
            Ok(Read::Binary(data)) => Incoming::Binary(data),
            Ok(Read::Ping(payload)) => {
                // RFC 6455 section 5.5.2: answer with the same payload.
                if !self.close_sent {
                    self.out.push(Frame::new(PONG, payload));
                }
                Incoming::Ping
            }
            Ok(Read::Pong(payload)) => Incoming::Pong(payload),
            Ok(Read::Close { code, reason }) => {
                // RFC 6455 section 5.5.1: a close frame is answered with
                // one, echoing the code; then nothing more is read.
                if !self.close_sent {
                    self.queue_close(code, "");
                }
                self.ended = true;
                Incoming::Close { code, reason }
            }
            Err(violation) => {
                self.failed = true;
                tracing::debug!(%violation, "WebSocket peer broke the protocol");
                violation.into()
            }
        }
    }

    fn queue_close(&mut self, code: Option<u16>, reason: &str) {
        let mut payload = BytesMut::new();
        if let Some(code) = code {
            payload.put_u16(code);
            let mut end = reason.len().min(MAX_CLOSE_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload.put_slice(&reason.as_bytes()[..end]);
        }
        self.out.push(Frame::new(CLOSE, payload.freeze()));
        self.close_sent = true;
    }

    /// A data message, compressed when long enough (RFC 7692 section 6).
    fn data(&mut self, opcode: u8, bytes: Bytes) -> Frame {
        if !self.agreed.compresses(bytes.len()) {
            return Frame::new(opcode, bytes);
        }
        let params = self.agreed.outgoing();
        let compressed = if params.no_context_takeover {
            deflate_message(params, &bytes)
        } else {
            self.deflater
                .get_or_insert_with(|| Deflater::new(params))
                .deflate(&bytes)
        };
        Frame::deflated(opcode, compressed)
    }

    pub(crate) fn has_room(&self) -> bool {
        self.out.has_room()
    }

    /// Queues one frame for writing.
    pub(crate) fn start_send(&mut self, transmit: Transmit) {
        if self.close_sent {
            return;
        }
        let frame = match transmit {
            Transmit::Data { bytes, .. } => self.data(TEXT, bytes),
            Transmit::Binary { bytes, .. } => self.data(BINARY, bytes),
            Transmit::Deflated { bytes, binary, .. } => {
                Frame::deflated(if binary { BINARY } else { TEXT }, bytes)
            }
            Transmit::Ping(payload) => Frame::new(PING, payload),
            Transmit::Close { code, reason } => return self.queue_close(Some(code), &reason),
            Transmit::End(_) => return self.queue_close(None, ""),
        };
        self.out.push(frame);
    }

    /// Writes everything queued.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        ready!(self.out.poll_write(&mut self.io, cx)).map_err(|_| ())?;
        Pin::new(&mut self.io).poll_flush(cx).map_err(|_| ())
    }
}
