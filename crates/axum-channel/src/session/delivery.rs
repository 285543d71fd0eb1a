//! Futures that report the fate of what the app sent, and of the session.

use crate::base::link::Link;
use axum_channel_protocol::{CloseReason, SendError, Ticket};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// Resolves once a message has arrived, or with the reason it will not.
///
/// One meaning per transport:
/// - **BrowserChannel**: the client acknowledged the array that carries it
///   (its `AID`).
/// - **WebSocket**, and **SockJS** over its `websocket` transport: the
///   frame that carries it was written and flushed to the socket.
/// - **SockJS** over HTTP: the response body of an attached receiver took
///   the frame that carries it to hand to hyper, which writes it to the
///   socket afterwards. A request that finds the session closed is
///   answered with the messages still pending, which resolve as soon as
///   that reply is built.
/// - **EventSource**: the stream's response body took the event to hand
///   to hyper, as for SockJS.
/// - A **ping** resolves when its pong arrives (WebSocket), or as an event
///   does (EventSource).
///
/// A delivery fails with [`SendError::Closed`] once the session has ended
/// without confirming it, and with [`SendError::TimedOut`] past its timeout
/// (the layer's `delivery_timeout`, or [`timeout`](Self::timeout)): it is
/// never pending forever. Dropping it does not cancel the message.
///
/// ```no_run
/// # async fn run(session: axum_channel::Session) -> Result<(), axum_channel::SendError> {
/// use std::time::Duration;
/// session.send("hello").timeout(Duration::from_secs(2)).await?;
/// # Ok(()) }
/// ```
#[must_use = "the message is sent anyway; await this to learn that it arrived"]
pub struct Delivery {
    state: State,
}

enum State {
    Waiting {
        link: Arc<dyn Link>,
        ticket: Ticket,
        timeout: Option<Duration>,
        sleep: Option<Pin<Box<Sleep>>>,
        /// A waker is registered for it and must be removed if it goes away.
        registered: bool,
    },
    Done(Option<Result<(), SendError>>),
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Waiting { ticket, .. } => {
                f.debug_struct("Delivery").field("ticket", ticket).finish()
            }
            State::Done(result) => f.debug_struct("Delivery").field("result", result).finish(),
        }
    }
}

impl Delivery {
    pub(crate) fn waiting(link: Arc<dyn Link>, ticket: Ticket) -> Self {
        let timeout = link.delivery_timeout();
        Self {
            state: State::Waiting {
                link,
                ticket,
                timeout,
                sleep: None,
                registered: false,
            },
        }
    }

    /// A delivery that has already failed.
    pub(crate) fn failed(error: SendError) -> Self {
        Self {
            state: State::Done(Some(Err(error))),
        }
    }

    /// The error, when the message was refused outright and never queued
    /// (the session was closed, its queue full, or the transport cannot
    /// carry it).
    pub fn refused(&self) -> Option<&SendError> {
        match &self.state {
            State::Done(Some(Err(error))) => Some(error),
            _ => None,
        }
    }

    /// Waits at most `timeout` (from the first poll) for the confirmation,
    /// instead of the layer's default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let State::Waiting {
            timeout: current,
            sleep,
            ..
        } = &mut self.state
        {
            *current = Some(timeout);
            *sleep = None;
        }
        self
    }
}

impl Future for Delivery {
    type Output = Result<(), SendError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let State::Waiting {
            link,
            ticket,
            timeout,
            sleep,
            registered,
        } = &mut this.state
        else {
            // Like a fused future, a resolved delivery stays pending.
            let State::Done(result) = &mut this.state else {
                unreachable!()
            };
            return result.take().map_or(Poll::Pending, Poll::Ready);
        };
        if let Poll::Ready(result) = link.poll_confirmed(*ticket, cx) {
            if result.is_err() {
                link.delivery_failed();
            }
            this.state = State::Done(None);
            return Poll::Ready(result);
        }
        *registered = true;
        if let Some(timeout) = *timeout {
            let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            if sleep.as_mut().poll(cx).is_ready() {
                link.forget_delivery(*ticket);
                link.delivery_failed();
                this.state = State::Done(None);
                return Poll::Ready(Err(SendError::TimedOut));
            }
        }
        Poll::Pending
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let State::Waiting {
            link,
            ticket,
            registered: true,
            ..
        } = &self.state
        {
            link.forget_delivery(*ticket);
        }
    }
}

/// Resolves with the reason once a session has closed.
#[must_use = "futures do nothing unless polled"]
pub struct Closed {
    link: Arc<dyn Link>,
}

impl fmt::Debug for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

impl Closed {
    pub(crate) fn new(link: Arc<dyn Link>) -> Self {
        Self { link }
    }
}

impl Future for Closed {
    type Output = CloseReason;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.link.poll_closed(cx)
    }
}
