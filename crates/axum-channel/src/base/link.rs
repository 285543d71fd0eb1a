//! A live session as the layers above the driver see it, whatever its
//! transport: the session API, the registry, rooms and broadcasts all hold
//! sessions as `Arc<dyn Link>`.

use super::info::SessionInfo;
use axum_channel_protocol::{CloseReason, Message, Payload, SendError, Ticket};
use bytes::Bytes;
use std::any::Any;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What a live session offers, whatever its transport.
pub(crate) trait Link: Send + Sync + 'static {
    fn info(&self) -> &SessionInfo;
    /// Queues a message; the ticket names it for its delivery.
    fn send(&self, payload: &Payload) -> Result<Ticket, SendError>;
    /// The same at `now`, a time the caller read already (a broadcast
    /// reads the clock once for all its members).
    fn send_at(&self, payload: &Payload, now: Instant) -> Result<Ticket, SendError>;
    /// Queues a message; a full queue only refuses it, whatever the
    /// overflow policy (a paced replay waits and tries again).
    fn send_or_refuse(&self, payload: &Payload) -> Result<Ticket, SendError>;
    fn ping(&self, payload: Bytes) -> Result<Ticket, SendError>;
    fn stop(&self);
    fn close(&self, reason: CloseReason);
    /// The next received message; `None` once closed and drained.
    fn poll_message(&self, cx: &mut Context<'_>) -> Poll<Option<Message>>;
    /// Resolves once `ticket` is confirmed, or with why it never will be.
    fn poll_confirmed(&self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<Result<(), SendError>>;
    /// A delivery future went away before it resolved.
    fn forget_delivery(&self, ticket: Ticket);
    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseReason>;
    fn close_reason(&self) -> Option<CloseReason>;
    /// How long deliveries wait for their confirmation by default.
    fn delivery_timeout(&self) -> Option<Duration>;
    /// A delivery failed (closed, timed out): for the metrics.
    fn delivery_failed(&self);
    /// The live session itself, for the transport that made it.
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}
