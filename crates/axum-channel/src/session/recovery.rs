//! Joining a room with the last position a session saw: the messages it
//! missed first, then live ones, with no gap and no repeat at the seam.

use super::delivery::Delivery;
use super::sender::{JoinError, SessionSender};
use crate::base::sync::now;
use crate::services::fanout::overflowed;
use crate::services::rooms::Subscription;
use axum_channel_protocol::history::{Lookup, Position, Unrecoverable};
use axum_channel_protocol::{CloseReason, Payload, SendError, Ticket};
use futures::future::BoxFuture;
use std::fmt;
use std::future::IntoFuture;

/// Most messages a replay queues at a time; the next chunk waits for the
/// one before the last to arrive, or for a full queue to empty.
const REPLAY_CHUNK: usize = 256;

/// How a [`join_since`](SessionSender::join_since) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// True when every message of the room after the position was replayed
    /// (none may have been missing); false when the history could not prove
    /// it had them all (position unknown, malformed, trimmed, from a lost
    /// history, or the room keeps none): then nothing was replayed.
    pub recovered: bool,
    /// Messages replayed.
    pub replayed: usize,
}

/// What one look at the history left to do.
enum Step {
    /// Everything was queued and the session joined.
    Caught(Option<Subscription>),
    /// A chunk was queued; more follow once the one before it arrived.
    More(Option<Delivery>),
    /// The session's queue filled up; more follow once it emptied.
    Full(Option<Delivery>),
    /// The history cannot vouch for what follows the position.
    Lost(Unrecoverable),
}

type Announce = Box<dyn FnOnce(bool) -> Payload + Send>;

/// A join that first replays what the session missed in the room; await it.
/// Built by [`SessionSender::join_since`].
#[must_use = "the session joins when this is awaited"]
pub struct JoinSince<'a> {
    sender: &'a SessionSender,
    room: String,
    since: Option<Position>,
    announce: Option<Announce>,
}

impl fmt::Debug for JoinSince<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSince")
            .field("room", &self.room)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl<'a> JoinSince<'a> {
    pub(crate) fn new(sender: &'a SessionSender, room: &str, since: &str) -> Self {
        Self {
            sender,
            room: room.to_owned(),
            since: since.parse().ok(),
            announce: None,
        }
    }

    /// The message the session gets before any replayed or live message
    /// of the room, made from whether the recovery is complete (a
    /// "joined" reply, say).
    pub fn announce(mut self, announce: impl FnOnce(bool) -> Payload + Send + 'static) -> Self {
        self.announce = Some(Box::new(announce));
        self
    }

    async fn run(mut self) -> Result<Recovery, JoinError> {
        let sender = self.sender;
        if sender.is_closed() {
            return Err(JoinError::Closed);
        }
        let services = sender.services().clone();
        let history = services.history.as_ref().filter(|h| h.keeps(&self.room));
        // Already a member: it gets live messages, and a replay would repeat them.
        let member = services.rooms.contains(sender.info().key(), &self.room);
        let (Some(history), Some(mut last), false) = (history, self.since, member) else {
            return self.unrecovered().await;
        };
        let link = sender.link();
        let mut replayed = 0;
        // The chunk before the last, which must arrive before another is queued.
        let mut in_flight: Option<Delivery> = None;
        // Whether the first look found the history whole (and announced it).
        let mut started = false;
        loop {
            let step = {
                let mut store = history.lock();
                match store.lookup(now(), &self.room, last, REPLAY_CHUNK) {
                    Lookup::Unrecoverable(why) => Step::Lost(why),
                    Lookup::Found { items, more } => {
                        started = true;
                        if let Some(announce) = self.announce.take() {
                            queue(sender, &announce(true))?;
                        }
                        let mut ticket = None;
                        let mut full = false;
                        for (position, payload) in &items {
                            match link.send_or_refuse(payload) {
                                Ok(queued) => {
                                    ticket = Some(queued);
                                    last = *position;
                                    replayed += 1;
                                }
                                Err(error) if overflowed(&error) => {
                                    full = true;
                                    break;
                                }
                                // Skipped as the live broadcast skipped it
                                // (binary data for a SockJS session, say).
                                Err(SendError::Unsupported(_)) => last = *position,
                                Err(error) => return Err(refused(sender, &error)),
                            }
                        }
                        let newest = ticket.map(|ticket| Delivery::waiting(link.clone(), ticket));
                        if full {
                            Step::Full(newest)
                        } else if more {
                            Step::More(newest)
                        } else {
                            // Joined under the lock: the next broadcast is live.
                            Step::Caught(services.rooms.join(link, &self.room))
                        }
                    }
                }
            };
            match step {
                Step::Caught(subscription) => {
                    sender.joined(&self.room, subscription).await?;
                    return Ok(Recovery {
                        recovered: true,
                        replayed,
                    });
                }
                Step::More(newest) => {
                    // Two chunks in flight at most.
                    if let Some(earlier) = std::mem::replace(&mut in_flight, newest) {
                        earlier.await.map_err(|_| JoinError::Closed)?;
                    }
                }
                Step::Full(newest) => {
                    // The queue is full: wait until what is in it arrived.
                    match newest.or_else(|| in_flight.take()) {
                        Some(delivery) => delivery.await.map_err(|_| JoinError::Closed)?,
                        None => {
                            // Full of the app's own messages: nothing to wait on.
                            link.close(CloseReason::Lagging);
                            return Err(JoinError::Closed);
                        }
                    }
                    in_flight = None;
                }
                Step::Lost(why) if !started => {
                    tracing::debug!(room = %self.room, ?why, "nothing to recover from");
                    return self.unrecovered().await;
                }
                Step::Lost(why) => {
                    // Trimmed while the replay was paced: the rest is gone.
                    tracing::debug!(room = %self.room, ?why, "a replay fell behind its history");
                    link.close(CloseReason::Lagging);
                    return Err(JoinError::Closed);
                }
            }
        }
    }

    /// Nothing to replay: the announcement, then a plain join.
    async fn unrecovered(mut self) -> Result<Recovery, JoinError> {
        if let Some(announce) = self.announce.take() {
            queue(self.sender, &announce(false))?;
        }
        self.sender.join(&self.room).await?;
        Ok(Recovery {
            recovered: false,
            replayed: 0,
        })
    }
}

/// Queues the announcement of a recovery.
fn queue(sender: &SessionSender, payload: &Payload) -> Result<Ticket, JoinError> {
    sender
        .link()
        .send_or_refuse(payload)
        .map_err(|error| refused(sender, &error))
}

/// A message of a recovery the session refused: the recovery cannot be
/// complete, so the session ends rather than go on with a gap.
fn refused(sender: &SessionSender, error: &SendError) -> JoinError {
    tracing::debug!(%error, "a recovering session refused a message");
    sender.link().close(CloseReason::Lagging);
    JoinError::Closed
}

impl SessionSender {
    /// Puts the session in `room` as [`join`](SessionSender::join) does, first
    /// replaying every message of the room it missed after `since`, the
    /// last [`Position`](crate::Position) it saw (as a string, the way
    /// clients hand it back): in order, each once, then live messages with
    /// no gap and no repeat. The [`Recovery`] says whether
    /// the replay was complete; when the room's history cannot prove it
    /// (position malformed, unknown, trimmed or from a lost history), nothing
    /// is replayed. A long replay is paced: a chunk waits for the one before
    /// the last to arrive. A replay the session's queue refuses, or one that
    /// falls behind the history's trimming, closes the session
    /// ([`CloseReason::Lagging`]) rather than leave a gap.
    ///
    /// ```no_run
    /// # async fn run(session: axum_channel::Session, since: &str) {
    /// use axum_channel::Payload;
    /// use serde_json::json;
    ///
    /// let recovery = session
    ///     .join_since("lobby", since)
    ///     .announce(|recovered| Payload::json(json!({"type": "joined", "recovered": recovered})))
    ///     .await
    ///     .expect("joined");
    /// println!("{} messages replayed", recovery.replayed);
    /// # }
    /// ```
    pub fn join_since<'a>(&'a self, room: &str, since: &str) -> JoinSince<'a> {
        JoinSince::new(self, room, since)
    }
}

impl<'a> IntoFuture for JoinSince<'a> {
    type Output = Result<Recovery, JoinError>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
