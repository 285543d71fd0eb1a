//! The receiver of a SockJS session: the one request (or WebSocket) its
//! frames are written to.

use super::session::SjSession;
use crate::http_util::streamed_body;
use crate::session::CloseReason;
use axum::body::Body;
use bytes::Bytes;
use channel_protocol::sockjs::ReceiverEncoding;
use std::sync::Weak;
use tokio::sync::mpsc;

/// What the SockJS WebSocket task is told to do.
pub(crate) enum WsOut {
    /// Send this frame as a text message.
    Frame(String),
    /// Close the WebSocket (1000), after the frames before.
    End,
}

/// Where frames go.
pub(crate) enum Sink {
    /// A streamed HTTP response.
    Http {
        writer: mpsc::UnboundedSender<Bytes>,
        encoding: ReceiverEncoding,
        bytes_sent: usize,
        /// The response ends once this many bytes were written (`response_limit`).
        limit: usize,
        /// Polling transports end the response after one frame.
        polling: bool,
    },
    /// A WebSocket connection task.
    WebSocket(mpsc::UnboundedSender<WsOut>),
}

/// The receiver currently attached to a session.
pub(crate) struct Receiver {
    /// Tells this receiver from later ones; 0 until attached.
    pub(crate) serial: u64,
    sink: Sink,
}

impl Receiver {
    pub(crate) fn new(sink: Sink) -> Self {
        Self { serial: 0, sink }
    }

    /// True for a WebSocket receiver, whose loss ends the session at once.
    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self.sink, Sink::WebSocket(_))
    }

    /// Writes one frame; false when the receiver must end (limit reached,
    /// polling done, or the client gone).
    pub(crate) fn write(&mut self, frame: &str) -> bool {
        match &mut self.sink {
            Sink::Http {
                writer,
                encoding,
                bytes_sent,
                limit,
                polling,
            } => {
                let wrapped = encoding.wrap(frame);
                *bytes_sent += wrapped.len();
                let written = writer.send(Bytes::from(wrapped)).is_ok();
                written && !*polling && *bytes_sent < *limit
            }
            Sink::WebSocket(writer) => writer.send(WsOut::Frame(frame.to_owned())).is_ok(),
        }
    }

    /// Ends the receiver: the response finishes, or the WebSocket closes.
    pub(crate) fn end(self) {
        if let Sink::WebSocket(writer) = self.sink {
            let _ = writer.send(WsOut::End);
        }
    }
}

/// Tells the session when a response body is dropped before the session
/// ended it: the client went away.
struct GoneGuard {
    session: Weak<SjSession>,
    serial: u64,
}

impl Drop for GoneGuard {
    fn drop(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.receiver_gone(self.serial, CloseReason::ConnectionLost);
        }
    }
}

/// The streamed body of an HTTP receiver.
pub(crate) fn body(
    receiver: mpsc::UnboundedReceiver<Bytes>,
    session: Weak<SjSession>,
    serial: u64,
) -> Body {
    streamed_body(receiver, GoneGuard { session, serial })
}
