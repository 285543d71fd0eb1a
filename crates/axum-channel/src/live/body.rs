//! The streamed HTTP response of a receiver (a BrowserChannel back
//! channel, a SockJS receiving request, an EventSource stream).
//!
//! The body pulls its bytes from the session when hyper is ready to write
//! them, so a receiver holds no buffer of its own: what waits, waits in the
//! engine's queue. Dropping the body (the response ended, or the client
//! left) tells the engine the receiver is gone.

use crate::base::sync::now;
use crate::live::Live;
use axum_channel_protocol::{HttpReceivers, ReceiverId, Transmit};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The response body of receiver `id`.
pub(crate) struct ReceiverBody<E: HttpReceivers + Send + 'static> {
    live: Arc<Live<E>>,
    id: ReceiverId,
    /// What the engine gave after the last piece, kept for the next poll.
    next: Option<Transmit>,
    done: bool,
}

impl<E: HttpReceivers + Send + 'static> ReceiverBody<E> {
    pub(crate) fn new(live: Arc<Live<E>>, id: ReceiverId) -> Self {
        Self {
            live,
            id,
            next: None,
            done: false,
        }
    }
}

impl<E: HttpReceivers + Send + 'static> ReceiverBody<E> {
    fn take(&self, cx: &mut Context<'_>) -> Option<Transmit> {
        let id = self.id;
        self.live.poll_transmit(now(), id, cx, true, |engine, now| {
            engine.poll_receiver(now, id)
        })
    }
}

impl<E: HttpReceivers + Send + 'static> Body for ReceiverBody<E> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let transmit = match self.next.take() {
            Some(next) => Some(next),
            None => self.take(cx),
        };
        match transmit {
            None => Poll::Pending,
            Some(Transmit::Data { bytes, .. }) => {
                // When this piece is the last, say so with it: hyper then
                // writes it and the response's end at once, which spares
                // the client a wait on a second small packet.
                match self.take(cx) {
                    Some(Transmit::End(tail)) => {
                        self.done = true;
                        if tail.is_empty() {
                            Poll::Ready(Some(Ok(Frame::data(bytes))))
                        } else {
                            let mut last = bytes::BytesMut::with_capacity(bytes.len() + tail.len());
                            last.extend_from_slice(&bytes);
                            last.extend_from_slice(&tail);
                            Poll::Ready(Some(Ok(Frame::data(last.freeze()))))
                        }
                    }
                    next => {
                        self.next = next;
                        Poll::Ready(Some(Ok(Frame::data(bytes))))
                    }
                }
            }
            Some(Transmit::End(tail)) => {
                self.done = true;
                if tail.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(Frame::data(tail))))
                }
            }
            // HTTP receivers carry neither pings nor WebSocket messages; a close ends them.
            Some(
                Transmit::Binary { .. }
                | Transmit::Deflated { .. }
                | Transmit::Ping(_)
                | Transmit::Close { .. },
            ) => {
                self.done = true;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl<E: HttpReceivers + Send + 'static> Drop for ReceiverBody<E> {
    fn drop(&mut self) {
        let id = self.id;
        self.live.with(|engine, now| engine.receiver_gone(now, id));
    }
}
