//! Joining a room with the last position a session saw: the messages it
//! missed first, then live ones, with no gap and no repeat at the seam.

use super::delivery::Delivery;
use super::sender::{JoinError, SessionSender};
use crate::base::link::Link;
use crate::base::sync::now;
use crate::services::fanout::overflowed;
use crate::services::history::RoomHistories;
use crate::services::rooms::{Rooms, Subscription};
use axum_channel_protocol::cluster::Frame;
use axum_channel_protocol::history::{Lookup, Position, Unrecoverable};
use axum_channel_protocol::{CloseReason, Payload, SendError, Ticket};
use futures::future::BoxFuture;
use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

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

/// How long a recovery waits for this node's copy of a room's log to move
/// on before it asks the log again.
const CATCH_UP_WAIT: Duration = Duration::from_millis(200);

/// Most waits in a row for this node's copy to reach the log's end before
/// the recovery gives up (about ten seconds).
const CATCH_UP_TRIES: u32 = 50;

/// What one look at the history left to do.
enum Step {
    /// Everything was queued and the session joined.
    Caught(Option<Subscription>),
    /// A chunk was queued; more follow.
    Wait(Queued),
    /// The history here cannot vouch for what follows the position.
    Lost(Unrecoverable),
}

/// How far a chunk got.
#[derive(Clone, Copy)]
enum Queued {
    /// All of it; the next chunk waits for the one before it to arrive.
    All,
    /// The session's queue filled up; the next waits for it to empty.
    Full,
}

/// A replay under way.
struct Replay {
    /// The last position queued (or the one the session named).
    last: Position,
    replayed: usize,
    /// The history vouched for the position (and it was announced).
    started: bool,
    /// The newest message of the chunk before the last.
    previous: Option<Delivery>,
    /// The newest message of the last chunk.
    current: Option<Delivery>,
}

impl Replay {
    fn new(last: Position) -> Self {
        Self {
            last,
            replayed: 0,
            started: false,
            previous: None,
            current: None,
        }
    }

    /// Queues `items`, as the live broadcasts did (a transport that cannot
    /// carry one skips it), until the session's queue is full.
    fn queue(
        &mut self,
        sender: &SessionSender,
        items: impl IntoIterator<Item = (Position, Arc<Payload>)>,
    ) -> Result<Queued, JoinError> {
        let link = sender.link();
        let mut ticket = None;
        let mut queued = Queued::All;
        for (position, payload) in items {
            match link.send_or_refuse(&payload) {
                Ok(sent) => {
                    ticket = Some(sent);
                    self.last = position;
                    self.replayed += 1;
                }
                Err(error) if overflowed(&error) => {
                    queued = Queued::Full;
                    break;
                }
                Err(SendError::Unsupported(_)) => self.last = position,
                Err(error) => return Err(refused(sender, &error)),
            }
        }
        self.current = ticket.map(|ticket| Delivery::waiting(link.clone(), ticket));
        Ok(queued)
    }

    /// Waits before the next chunk: for the chunk before the last to
    /// arrive (two in flight at most), or, when the queue was full, for
    /// what is queued to arrive.
    async fn wait(&mut self, link: &Arc<dyn Link>, queued: Queued) -> Result<(), JoinError> {
        let current = self.current.take();
        let waited = match queued {
            Queued::All => std::mem::replace(&mut self.previous, current),
            Queued::Full => current.or_else(|| self.previous.take()),
        };
        match (waited, queued) {
            (Some(delivery), _) => delivery.await.map_err(|error| {
                // Not delivered (closed, or not confirmed in time): the
                // recovery cannot say it is complete, so the session ends.
                tracing::debug!(%error, "a replayed message was not delivered");
                link.close(CloseReason::Lagging);
                JoinError::Closed
            }),
            (None, Queued::All) => Ok(()),
            (None, Queued::Full) => {
                // Full of the app's own messages: nothing to wait on.
                link.close(CloseReason::Lagging);
                Err(JoinError::Closed)
            }
        }
    }
}

/// The message of a log entry, stamped with its position.
fn logged_payload(
    history: &RoomHistories,
    position: Position,
    frame: &[u8],
) -> Option<Arc<Payload>> {
    match Frame::decode(frame) {
        Ok(Frame::Broadcast(envelope)) => Some(history.stamp(&envelope.payload, position)),
        _ => None,
    }
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
        let (Some(history), Some(last), false) = (history, self.since, member) else {
            return self.unrecovered().await;
        };
        let link = sender.link();
        let mut replay = Replay::new(last);
        let room = self.room.clone();
        // Keeps the room's log heard here while the session is not a member yet.
        let mut pinned: Option<Pinned<'_>> = None;
        let mut catching_up = 0;
        loop {
            if sender.is_closed() {
                return Err(JoinError::Closed);
            }
            let step = {
                let mut store = history.lock();
                match store.lookup(now(), &self.room, replay.last, REPLAY_CHUNK) {
                    Lookup::Unrecoverable(why) => Step::Lost(why),
                    Lookup::Found { items, more } => {
                        self.announce_recovered(&mut replay)?;
                        match replay.queue(sender, items)? {
                            Queued::All if !more => {
                                // Joined under the lock: the next broadcast is live.
                                Step::Caught(services.rooms.join(link, &self.room))
                            }
                            queued => Step::Wait(queued),
                        }
                    }
                }
            };
            let why = match step {
                Step::Caught(subscription) => {
                    sender.joined(&self.room, subscription).await?;
                    return Ok(Recovery {
                        recovered: true,
                        replayed: replay.replayed,
                    });
                }
                Step::Wait(queued) => {
                    replay.wait(link, queued).await?;
                    continue;
                }
                Step::Lost(why) => why,
            };
            // Not here: in a cluster with a log, the log may have it.
            let Some(log) = &history.log else {
                return self.lost(&replay, why).await;
            };
            if pinned.is_none() {
                let subscription = services.rooms.pin(&self.room);
                pinned = Some(Pinned {
                    rooms: &services.rooms,
                    room: room.clone(),
                });
                if let Some(subscription) = subscription {
                    subscription.await.map_err(JoinError::Cluster)?;
                }
                continue;
            }
            // Waits for this node's copy to move on, when it is behind.
            let advanced = history.advanced.notified();
            let (items, more) = match log
                .read_after(&self.room, Some(replay.last), REPLAY_CHUNK)
                .await
            {
                Ok(Lookup::Found { items, more }) => (items, more),
                Ok(Lookup::Unrecoverable(why)) => return self.lost(&replay, why).await,
                Err(error) => {
                    tracing::debug!(room = %self.room, %error, "the room's log cannot be read");
                    return self.lost(&replay, Unrecoverable::NoHistory).await;
                }
            };
            if !items.is_empty() {
                catching_up = 0;
                let items: Vec<_> = items
                    .into_iter()
                    .map_while(|(position, frame)| {
                        Some((position, logged_payload(history, position, &frame)?))
                    })
                    .collect();
                if items.is_empty() {
                    // An entry this node cannot read: no replay spans it.
                    return self.lost(&replay, Unrecoverable::Trimmed).await;
                }
                self.announce_recovered(&mut replay)?;
                let queued = replay.queue(sender, items)?;
                if more || matches!(queued, Queued::Full) {
                    replay.wait(link, queued).await?;
                }
                continue;
            }
            // The log has nothing after the last position: this node hears
            // every later entry (the room is pinned). With nothing here
            // either, join now; otherwise go on from this node's copy.
            let subscription = {
                let mut store = history.lock();
                match store.lookup(now(), &self.room, replay.last, 1) {
                    Lookup::Unrecoverable(Unrecoverable::NoHistory) => {
                        self.announce_recovered(&mut replay)?;
                        Some(services.rooms.join(link, &self.room))
                    }
                    Lookup::Unrecoverable(Unrecoverable::Future | Unrecoverable::OtherEpoch) => {
                        // This node's copy is behind the log: it catches up
                        // from the log (the room may be quiet meanwhile).
                        drop(store);
                        services.fill(&self.room);
                        None
                    }
                    _ => None,
                }
            };
            match subscription {
                Some(subscription) => {
                    sender.joined(&self.room, subscription).await?;
                    return Ok(Recovery {
                        recovered: true,
                        replayed: replay.replayed,
                    });
                }
                None => {
                    // Behind the log, or about to start its copy here.
                    catching_up += 1;
                    if catching_up > CATCH_UP_TRIES {
                        tracing::debug!(room = %self.room, "this node's copy of the log did not catch up");
                        return self.lost(&replay, Unrecoverable::NoHistory).await;
                    }
                    let _ = tokio::time::timeout(CATCH_UP_WAIT, advanced).await;
                }
            }
        }
    }

    /// The history vouches for the position: the announcement, once.
    fn announce_recovered(&mut self, replay: &mut Replay) -> Result<(), JoinError> {
        replay.started = true;
        if let Some(announce) = self.announce.take() {
            queue(self.sender, &announce(true))?;
        }
        Ok(())
    }

    /// The history cannot vouch for what follows the position: before any
    /// replay, a plain join that says so; after, the session is let go.
    async fn lost(self, replay: &Replay, why: Unrecoverable) -> Result<Recovery, JoinError> {
        if !replay.started {
            tracing::debug!(room = %self.room, ?why, "nothing to recover from");
            return self.unrecovered().await;
        }
        // Trimmed while the replay was paced: the rest is gone.
        tracing::debug!(room = %self.room, ?why, "a replay fell behind its history");
        self.sender.link().close(CloseReason::Lagging);
        Err(JoinError::Closed)
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

/// A room kept heard on this node for a recovery; let go when dropped.
struct Pinned<'a> {
    rooms: &'a Rooms,
    room: String,
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        self.rooms.unpin(&self.room);
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
