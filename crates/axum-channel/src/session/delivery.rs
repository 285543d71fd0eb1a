//! Futures that report the fate of what the app sent.

use super::CloseReason;
use futures::future::BoxFuture;
use futures::FutureExt;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::{oneshot, watch};

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session closed before the client acknowledged the message.
    Closed(CloseReason),
    /// Too many messages are waiting for acknowledgement; this one was not queued.
    QueueFull {
        /// The bound that was reached.
        limit: usize,
    },
    /// The session's transport cannot carry this kind of message.
    Unsupported(&'static str),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(reason) => write!(f, "session closed: {reason}"),
            SendError::QueueFull { limit } => {
                write!(f, "{limit} messages are waiting for acknowledgement")
            }
            SendError::Unsupported(what) => write!(f, "this transport cannot send {what}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Resolves when the client has acknowledged a message, or with the reason
/// it never will.
#[must_use = "the message is sent anyway; await this to learn that it arrived"]
pub struct Delivery {
    state: DeliveryState,
}

enum DeliveryState {
    Waiting(oneshot::Receiver<Result<(), SendError>>),
    Done(Option<Result<(), SendError>>),
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery").finish_non_exhaustive()
    }
}

impl Delivery {
    /// A delivery that resolves once the sender half reports.
    pub(crate) fn waiting() -> (oneshot::Sender<Result<(), SendError>>, Self) {
        let (tx, rx) = oneshot::channel();
        (
            tx,
            Self {
                state: DeliveryState::Waiting(rx),
            },
        )
    }

    /// The error, when the message was refused outright and never queued
    /// (the session was closed, or its queue full).
    pub fn refused(&self) -> Option<&SendError> {
        match &self.state {
            DeliveryState::Done(Some(Err(error))) => Some(error),
            _ => None,
        }
    }

    /// A delivery that has already failed.
    pub(crate) fn failed(error: SendError) -> Self {
        Self {
            state: DeliveryState::Done(Some(Err(error))),
        }
    }
}

impl Future for Delivery {
    type Output = Result<(), SendError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            DeliveryState::Waiting(rx) => rx
                .poll_unpin(cx)
                .map(|result| result.unwrap_or(Err(SendError::Closed(CloseReason::Shutdown)))),
            // Like a fused future, a resolved delivery stays pending.
            DeliveryState::Done(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            },
        }
    }
}

/// Resolves with the reason once a session has closed.
#[must_use = "futures do nothing unless polled"]
pub struct Closed {
    inner: BoxFuture<'static, CloseReason>,
}

impl fmt::Debug for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

impl Closed {
    pub(crate) fn new(mut watch: watch::Receiver<Option<CloseReason>>) -> Self {
        let inner = async move {
            match watch.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().expect("waited for Some"),
                // The session's state is gone without a reason: only at shutdown.
                Err(_) => CloseReason::Shutdown,
            }
        }
        .boxed();
        Self { inner }
    }
}

impl Future for Closed {
    type Output = CloseReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.inner.poll_unpin(cx)
    }
}
