//! The app's handle on a layer's sessions and rooms: finding and counting
//! sessions (on this node or across the cluster), broadcasts, shutdown.

pub(crate) mod broadcast;
pub(crate) mod remote;

use crate::services::Services;
use crate::session::SessionSender;
use axum_channel_protocol::cluster::{Answer, Question};
use axum_channel_protocol::{CloseReason, Payload};
use broadcast::Broadcast;
use remote::{RemoteSession, SessionLookup};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How many sessions a room has, and whether every node answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberCount {
    /// Members counted.
    pub members: usize,
    /// True when every node of the cluster answered in time; false when
    /// the count leaves out the nodes that did not.
    pub complete: bool,
}

/// A handle on the sessions and rooms of a [`ChannelLayer`](crate::ChannelLayer),
/// cheap to clone and keep. Get one from
/// [`ChannelLayer::handle`](crate::ChannelLayer::handle), or from any
/// session with [`SessionSender::channels`].
///
/// ```no_run
/// # async fn run(channels: axum_channel::ChannelHandle) {
/// use serde_json::json;
/// println!("{} sessions, {} in the lobby", channels.session_count(), channels.room_count("lobby"));
/// channels.broadcast(json!({"notice": "maintenance at noon"})).send().await.ok();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelHandle {
    services: Arc<Services>,
}

fn count_of(answer: Answer) -> usize {
    match answer {
        Answer::Count(count) => count,
        Answer::Found(found) => usize::from(found),
    }
}

impl ChannelHandle {
    pub(crate) fn new(services: Arc<Services>) -> Self {
        Self { services }
    }

    /// How many sessions are open on this node, every transport together.
    pub fn session_count(&self) -> usize {
        self.services.registry.len()
    }

    /// The open session with this id, to send to it or close it.
    pub fn session(&self, id: &str) -> Option<SessionSender> {
        self.services
            .registry
            .get(id)
            .map(|link| SessionSender::new(link, self.services.clone()))
    }

    /// Every open session.
    pub fn sessions(&self) -> Vec<SessionSender> {
        self.services
            .registry
            .all()
            .into_iter()
            .map(|link| SessionSender::new(link, self.services.clone()))
            .collect()
    }

    /// How many sessions of this node are in `room`.
    pub fn room_count(&self, room: &str) -> usize {
        self.services.rooms.count(room)
    }

    /// How many sessions are in `room` across the cluster (on a single
    /// node, the same as [`room_count`](Self::room_count)); the answer says
    /// whether every node replied in time.
    ///
    /// ```no_run
    /// # async fn run(channels: axum_channel::ChannelHandle) {
    /// let count = channels.room_members("lobby").await;
    /// if !count.complete {
    ///     println!("at least {} members (a node did not answer)", count.members);
    /// }
    /// # }
    /// ```
    pub async fn room_members(&self, room: &str) -> MemberCount {
        self.count(Question::RoomMembers(room.to_owned())).await
    }

    /// How many sessions are open across the cluster, every node together.
    pub async fn count_sessions(&self) -> MemberCount {
        self.count(Question::Sessions).await
    }

    async fn count(&self, question: Question) -> MemberCount {
        let here = self.services.answer(&question);
        let Some(cluster) = &self.services.cluster else {
            return MemberCount {
                members: count_of(here),
                complete: true,
            };
        };
        let asked = cluster
            .ask(&self.services.telemetry.cluster, question, here)
            .await;
        MemberCount {
            members: asked.answers.into_iter().map(|(_, a)| count_of(a)).sum(),
            complete: asked.complete,
        }
    }

    /// Finds the session with this id on any node of the cluster.
    ///
    /// ```no_run
    /// # async fn run(channels: axum_channel::ChannelHandle, id: &str) {
    /// use axum_channel::cluster::SessionLookup;
    /// match channels.find_session(id).await {
    ///     SessionLookup::Here(session) => { session.send("hello"); }
    ///     SessionLookup::Elsewhere(remote) => { remote.send("hello").await.ok(); }
    ///     SessionLookup::Nowhere { complete } => println!("gone (sure: {complete})"),
    ///     _ => {}
    /// }
    /// # }
    /// ```
    pub async fn find_session(&self, id: &str) -> SessionLookup {
        if let Some(session) = self.session(id) {
            return SessionLookup::Here(session);
        }
        let Some(cluster) = &self.services.cluster else {
            return SessionLookup::Nowhere { complete: true };
        };
        let asked = cluster
            .ask(
                &self.services.telemetry.cluster,
                Question::FindSession(id.to_owned()),
                Answer::Found(false),
            )
            .await;
        match asked
            .answers
            .into_iter()
            .find(|(_, answer)| *answer == Answer::Found(true))
        {
            Some((node, _)) => {
                SessionLookup::Elsewhere(RemoteSession::new(self.services.clone(), node, id))
            }
            None => SessionLookup::Nowhere {
                complete: asked.complete,
            },
        }
    }

    /// This node's id in the cluster; `None` on a single node.
    pub fn node_id(&self) -> Option<&str> {
        self.services.cluster.as_ref().map(|c| c.node_id())
    }

    /// The rooms that have members.
    pub fn rooms(&self) -> Vec<String> {
        self.services.rooms.names()
    }

    /// Starts a broadcast of a JSON message (sent as
    /// [`SessionSender::send`] would send it to each member); address it
    /// with [`Broadcast::to`] and [`Broadcast::except`], then `send` it.
    pub fn broadcast(&self, message: impl Into<Value>) -> Broadcast {
        self.broadcast_payload(Payload::json(message.into()))
    }

    /// Starts a broadcast of any payload (text, binary, an event, JSON with
    /// an EventSource event type).
    pub fn broadcast_payload(&self, payload: Payload) -> Broadcast {
        Broadcast::new(self.services.clone(), payload)
    }

    /// Closes every open session, ending their back channels, so a graceful
    /// shutdown does not wait on hanging requests. From then on the layer
    /// answers its paths with 503, so reconnecting clients cannot open new
    /// sessions.
    pub fn close_all(&self) {
        self.services.shutting_down.store(true, Ordering::Release);
        for session in self.services.registry.all() {
            session.close(CloseReason::Shutdown);
        }
    }

    /// Closes every session and waits, at most `grace`, until all of them
    /// have finished their closing handshakes. Upgraded WebSocket
    /// connections are outside axum's graceful shutdown, so call this before
    /// the server stops, or their peers see the connection drop (1006).
    pub async fn shutdown(&self, grace: Duration) {
        self.close_all();
        let _ = tokio::time::timeout(grace, self.services.registry.emptied()).await;
    }
}

impl SessionSender {
    /// A handle on all the sessions and rooms of this session's layer.
    ///
    /// ```no_run
    /// # async fn run(session: axum_channel::Session) {
    /// let channels = session.channels();
    /// println!("{} in the lobby", channels.room_count("lobby"));
    /// # }
    /// ```
    pub fn channels(&self) -> ChannelHandle {
        ChannelHandle::new(self.services().clone())
    }
}
