//! The hanging GET that carries arrays to the client, as a streamed body.

use super::session::BcSession;
use crate::http_util::streamed_body;
use axum::body::Body;
use bytes::Bytes;
use channel_protocol::browserchannel::BackChannelEncoder;
use std::sync::Weak;
use tokio::sync::mpsc;

/// The server's end of an open back channel.
pub(crate) struct BackChannel {
    /// Tells this back channel from the ones that replaced it.
    pub(crate) serial: u64,
    /// Whether the back channel stays open across chunks (`CI=0`).
    pub(crate) chunked: bool,
    pub(crate) bytes_sent: usize,
    encoder: BackChannelEncoder,
    // Unbounded, but only ever holds arrays the session's outgoing queue
    // already bounds.
    writer: mpsc::UnboundedSender<Bytes>,
}

impl BackChannel {
    /// A back channel and the receiver its response body reads from; the
    /// encoding's prelude is written already.
    pub(crate) fn open(
        serial: u64,
        encoder: BackChannelEncoder,
        chunked: bool,
        domain: Option<&str>,
    ) -> (Self, mpsc::UnboundedReceiver<Bytes>) {
        let (writer, receiver) = mpsc::unbounded_channel();
        let prelude = encoder.prelude(domain);
        if !prelude.is_empty() {
            let _ = writer.send(Bytes::from(prelude));
        }
        let back_channel = Self {
            serial,
            chunked,
            bytes_sent: 0,
            encoder,
            writer,
        };
        (back_channel, receiver)
    }

    /// Writes one chunk of arrays; false when the client has gone.
    pub(crate) fn write_chunk(&mut self, chunk: &str) -> bool {
        let encoded = self.encoder.chunk(chunk);
        self.bytes_sent += encoded.len();
        self.writer.send(Bytes::from(encoded)).is_ok()
    }

    /// Ends the response; dropping the writer finishes the body.
    pub(crate) fn end(self) {
        let end = self.encoder.end();
        if !end.is_empty() {
            let _ = self.writer.send(Bytes::from_static(end.as_bytes()));
        }
    }
}

/// Tells the session when the response body is dropped: the client closed
/// the connection, or the body finished.
struct GoneGuard {
    session: Weak<BcSession>,
    serial: u64,
}

impl Drop for GoneGuard {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.back_channel_gone(self.serial);
        }
    }
}

/// The streamed response body of back channel `serial`.
pub(crate) fn back_channel_body(
    receiver: mpsc::UnboundedReceiver<Bytes>,
    session: Weak<BcSession>,
    serial: u64,
) -> Body {
    streamed_body(receiver, GoneGuard { session, serial })
}
