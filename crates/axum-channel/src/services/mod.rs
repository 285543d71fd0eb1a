//! What every session of a layer shares: the registry of open sessions, the
//! rooms, the timer task of the HTTP sessions, the metrics, the fan-out of
//! broadcasts and, in a cluster, this node's side of the bus.
//!
//! [`Services`] ties them together and is what the cluster's adapter hands
//! frames to ([`FrameSink`]): a broadcast heard from another node goes to
//! this node's members it is for, a question is answered, a reply joins its
//! question.

pub(crate) mod cluster;
pub(crate) mod fanout;
pub(crate) mod history;
pub(crate) mod rate;
pub(crate) mod registry;
pub(crate) mod rooms;
pub(crate) mod telemetry;
pub(crate) mod timers;

use crate::base::info::SessionKey;
use axum_channel_cluster::{Adapter, ClusterNode, FrameSink, Topic};
use axum_channel_protocol::cluster::{
    entry, Answer, Audience as CopyAudience, Envelope, Frame, Question, Reply, Request,
};
use axum_channel_protocol::history::{Lookup, Position, Unrecoverable};
use axum_channel_protocol::CloseReason;
use cluster::Cluster;
use fanout::{Audience, Fanout, Overflow};
use history::{HistorySettings, RoomHistories};
use rate::AddressRate;
use registry::Registry;
use rooms::Rooms;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use telemetry::Telemetry;
use timers::Timers;

/// What every session of a layer shares.
#[derive(Debug)]
pub(crate) struct Services {
    /// This, for the tasks it starts.
    me: std::sync::Weak<Services>,
    pub(crate) registry: Registry,
    /// How often one address may open sessions, when limited.
    pub(crate) rate: Option<AddressRate>,
    pub(crate) rooms: Rooms,
    /// The kept broadcasts of the rooms with a history.
    pub(crate) history: Option<Arc<RoomHistories>>,
    /// The other nodes, when there are any.
    pub(crate) cluster: Option<Cluster>,
    pub(crate) timers: Arc<Timers>,
    pub(crate) telemetry: Telemetry,
    /// Most received messages waiting for the app.
    pub(crate) max_incoming: usize,
    /// Most bytes of received messages waiting for the app.
    pub(crate) max_incoming_bytes: usize,
    /// How long a delivery waits for its confirmation by default.
    pub(crate) delivery_timeout: Option<Duration>,
    /// What a broadcast does with a member whose queue is full.
    pub(crate) overflow: Overflow,
    /// Set once shutdown began: no new sessions.
    pub(crate) shutting_down: AtomicBool,
}

/// The layer-wide settings the services run with.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_address: Option<usize>,
    /// Sessions a second one address may open, and its burst.
    pub(crate) session_rate: Option<(f64, u32)>,
    pub(crate) max_incoming: usize,
    pub(crate) max_incoming_bytes: usize,
    pub(crate) delivery_timeout: Option<Duration>,
    pub(crate) overflow: Overflow,
    pub(crate) cluster: Option<Arc<dyn Adapter>>,
    pub(crate) cluster_timeout: Duration,
    pub(crate) history: Option<HistorySettings>,
}

impl Services {
    /// The services of a new layer. In a cluster, the adapter is started
    /// and hears the bus from now on.
    pub(crate) fn start(settings: Settings) -> Arc<Self> {
        let history = settings.history.clone().map(|history| {
            let log = settings.cluster.as_ref().and_then(|a| a.room_log());
            Arc::new(RoomHistories::new(history, log))
        });
        // Rooms follow their log where the cluster keeps one.
        let logged = history.clone().filter(|h| h.log.is_some());
        let services = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            registry: Registry::new(settings.max_sessions, settings.max_sessions_per_address),
            rate: settings
                .session_rate
                .map(|(per_second, burst)| AddressRate::new(per_second, burst)),
            rooms: Rooms::new(settings.cluster.clone(), logged),
            history,
            cluster: settings
                .cluster
                .clone()
                .map(|adapter| Cluster::new(adapter, settings.cluster_timeout)),
            timers: Arc::new(Timers::default()),
            telemetry: Telemetry::new(),
            max_incoming: settings.max_incoming.max(1),
            max_incoming_bytes: settings.max_incoming_bytes.max(1),
            delivery_timeout: settings.delivery_timeout,
            overflow: settings.overflow,
            shutting_down: AtomicBool::new(false),
        });
        if let Some(adapter) = &settings.cluster {
            let sink: Arc<dyn FrameSink> = services.clone();
            adapter.start(ClusterNode::new(Arc::downgrade(&sink)));
        }
        services
    }

    /// The fan-out of this node's broadcasts.
    pub(crate) fn fanout(&self) -> Fanout<'_> {
        Fanout {
            registry: &self.registry,
            rooms: &self.rooms,
            telemetry: &self.telemetry,
            overflow: self.overflow,
            history: self.history.as_deref(),
        }
    }

    /// True once shutdown began: no new sessions.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// This node's answer to `question`.
    pub(crate) fn answer(&self, question: &Question) -> Answer {
        match question {
            Question::RoomMembers(room) => Answer::Count(self.rooms.count(room)),
            Question::Sessions => Answer::Count(self.registry.len()),
            Question::FindSession(id) => Answer::Found(self.registry.get(id).is_some()),
        }
    }

    /// Delivers the copy of `envelope` heard on `topic` to this node's
    /// members it is for.
    fn deliver_copy(&self, envelope: &Envelope, topic: &Topic) {
        let except: Vec<SessionKey> = envelope
            .except
            .iter()
            .filter_map(|id| SessionKey::parse(id))
            .collect();
        let audience = match envelope.audience(topic) {
            CopyAudience::Everyone => Audience::Everyone,
            CopyAudience::Room { room, not_in } => {
                // This node's history gives the copy this node's position.
                self.fanout().to_room_copy(
                    self.history.as_deref(),
                    room,
                    not_in,
                    &except,
                    &envelope.payload,
                    false,
                );
                return;
            }
            CopyAudience::Session(id) => Audience::Session(id),
            CopyAudience::Nobody => Audience::Nobody,
        };
        let targets = fanout::members(&self.registry, &self.rooms, audience, &except);
        fanout::deliver(
            &self.telemetry,
            self.overflow,
            targets,
            &envelope.payload,
            false,
        );
    }

    /// Answers a question another node asked.
    fn reply_to(&self, cluster: &Cluster, request: Request) {
        let reply = Reply {
            id: request.id,
            from: cluster.node_id().to_owned(),
            answer: self.answer(&request.question),
        };
        let sent = cluster
            .adapter
            .publish(Topic::Node(request.from), reply.encode());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = sent.await {
                        tracing::debug!(%error, "a reply did not reach the cluster");
                    }
                });
            }
            Err(_) => tracing::warn!("a cluster question arrived outside a Tokio runtime"),
        }
    }
}

impl Services {
    /// An entry heard on `room`'s log: delivered in the log's order, the
    /// missing ones fetched first.
    fn take_entry(&self, room: &str, bytes: &[u8]) {
        match entry::decode(bytes) {
            Ok((position, frame)) => self.take_logged(room, position, frame, false),
            Err(error) => {
                self.telemetry.cluster.refused_frames.increment(1);
                tracing::debug!(room, %error, "dropped a log entry");
            }
        }
    }

    /// The frame of `room`'s log at `position`, heard or fetched; with
    /// `restart`, the oldest of a log that started again.
    fn take_logged(&self, room: &str, position: Position, frame: &[u8], restart: bool) {
        let Some(history) = &self.history else {
            return;
        };
        let metrics = &self.telemetry.cluster;
        let envelope = match Frame::decode(frame) {
            Ok(Frame::Broadcast(envelope)) => {
                metrics.received.increment(1);
                Some(envelope)
            }
            Ok(_) => None,
            Err(error) => {
                metrics.refused_frames.increment(1);
                tracing::debug!(room, %error, "a log entry cannot be read");
                None
            }
        };
        // An entry that cannot be read still takes its place in the log's
        // order, or every later one would wait for it.
        if self
            .fanout()
            .logged(history, room, position, envelope.as_deref(), restart)
            .is_some()
        {
            self.fill(room);
        }
    }

    /// Fetches from the log what this node misses of `room`, unless a
    /// fetch runs already.
    pub(crate) fn fill(&self, room: &str) {
        let Some(history) = &self.history else {
            return;
        };
        if !history.start_fill(room) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(fill(self.me.clone(), room.to_owned()));
            }
            Err(_) => {
                history.end_fill(room);
                tracing::warn!("a log entry arrived outside a Tokio runtime");
            }
        }
    }
}

/// Most entries one read of a log brings.
const FILL_CHUNK: usize = 256;

/// How long a fill waits before it reads a log again after a failed read,
/// doubling up to [`FILL_RETRY_MAX`].
const FILL_RETRY_FIRST: Duration = Duration::from_millis(100);
const FILL_RETRY_MAX: Duration = Duration::from_secs(5);

/// Fetches the entries of `room` after the last one this node has, and
/// delivers them in order, until it has them all (a fetch that is asked
/// for again while it runs goes round once more).
async fn fill(services: std::sync::Weak<Services>, room: String) {
    let mut retry = FILL_RETRY_FIRST;
    loop {
        let failed = {
            let Some(services) = services.upgrade() else {
                return;
            };
            fill_once(&services, &room).await
        };
        // The services are let go while waiting, so a layer that is gone
        // ends its fills.
        if failed {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(FILL_RETRY_MAX);
            continue;
        }
        let Some(history) = services.upgrade().and_then(|s| s.history.clone()) else {
            return;
        };
        if !history.end_fill(&room) {
            return;
        }
    }
}

/// Reads `room`'s log after the last entry this node has, to its end, and
/// takes what it finds; true when the log could not be read (try again).
async fn fill_once(services: &Services, room: &str) -> bool {
    let (Some(history), true) = (&services.history, services.rooms.is_here(room)) else {
        return false;
    };
    let Some(log) = history.log.clone() else {
        return false;
    };
    let Some(after) = history.lock().last_position(room) else {
        // Nothing here yet: the next entry heard starts this node's copy.
        return false;
    };
    let mut since = Some(after);
    loop {
        match log.read_after(room, since, FILL_CHUNK).await {
            Ok(Lookup::Found { items, more }) => {
                // Read from the log's start: this node's copy starts again.
                let mut restart = since.is_none();
                since = items.last().map(|(position, _)| *position).or(since);
                for (position, frame) in items {
                    services.take_logged(room, position, &frame, restart);
                    restart = false;
                }
                if !more {
                    return false;
                }
            }
            Ok(Lookup::Unrecoverable(Unrecoverable::OtherEpoch)) if since.is_some() => {
                // The log lost its data and started again: this node's
                // copy starts again with the new history, from its start
                // (as its first entry is taken). What the old one had
                // after `after` is gone.
                services.telemetry.cluster.lost_history.increment(1);
                tracing::warn!(
                    room,
                    "a room's log started again; entries it had may be lost"
                );
                since = None;
            }
            Ok(Lookup::Unrecoverable(Unrecoverable::NoHistory))
                if !history.lock().is_missing(room) =>
            {
                // The log expired (nothing was added to it for its age
                // bound) or its store started empty, and no entry past this
                // node's copy was heard: its members are owed nothing. The
                // log's next entry starts a new epoch, read from its start.
                tracing::debug!(
                    room,
                    "a room's log is gone; nothing followed this node's copy"
                );
                return false;
            }
            Ok(Lookup::Unrecoverable(why)) => {
                // Gone before this node had them: its members missed
                // messages, so they are let go to recover elsewhere.
                services.telemetry.cluster.lost_history.increment(1);
                tracing::warn!(
                    room,
                    ?why,
                    "entries of a room's log were lost before this node read them"
                );
                history.lock().drop_room(room);
                for member in services.rooms.members_of(&[room.to_owned()], &[]) {
                    member.close(CloseReason::Lagging);
                }
                return false;
            }
            Err(error) => {
                tracing::warn!(room, %error, "cannot read a room's log; trying again");
                return true;
            }
        }
    }
}

impl FrameSink for Services {
    fn resumed(&self) {
        let Some(history) = &self.history else {
            return;
        };
        let rooms: Vec<String> = history.lock().room_names().map(str::to_owned).collect();
        for room in rooms {
            self.fill(&room);
        }
    }

    fn receive(&self, topic: &Topic, frame: &[u8]) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if let Topic::Log(room) = topic {
            return self.take_entry(room, frame);
        }
        let metrics = &self.telemetry.cluster;
        let frame = match Frame::decode(frame) {
            Ok(frame) => frame,
            Err(error) => {
                metrics.refused_frames.increment(1);
                tracing::debug!(%topic, %error, "dropped a bus message");
                return;
            }
        };
        match frame {
            Frame::Broadcast(envelope) => {
                // Its own node delivered it before publishing.
                if envelope.origin != cluster.node_id() {
                    metrics.received.increment(1);
                    self.deliver_copy(&envelope, topic);
                }
            }
            Frame::Request(request) => {
                if request.from != cluster.node_id() {
                    metrics.received.increment(1);
                    self.reply_to(cluster, request);
                }
            }
            Frame::Reply(reply) => {
                metrics.received.increment(1);
                cluster.handle_reply(reply);
            }
        }
    }
}
