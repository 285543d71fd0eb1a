//! This node's side of the cluster: what it publishes, what it hears, and
//! the questions it asks.

use super::{Adapter, ClusterError, Topic};
use crate::live::{now, Services};
use crate::registry::lock;
use crate::rooms::broadcast::deliver;
use crate::session::{Link, SessionKey};
use crate::telemetry::ClusterMetrics;
use channel_protocol::cluster::{
    Answer, Audience, Envelope, Frame, Queries, QueryId, Question, Reply, Request,
};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// The layer's cluster: its adapter and the questions in flight.
pub(crate) struct Cluster {
    pub(crate) adapter: Arc<dyn Adapter>,
    queries: Mutex<Queries>,
    /// Signalled when a reply arrives.
    replied: Notify,
    /// How long a question waits for the other nodes.
    query_timeout: Duration,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.adapter.node_id())
            .field("query_timeout", &self.query_timeout)
            .finish_non_exhaustive()
    }
}

/// What the nodes said to a question, this one included.
pub(crate) struct Asked {
    pub(crate) answers: Vec<(String, Answer)>,
    /// Every live node replied in time.
    pub(crate) complete: bool,
}

/// Forgets a question whose asker stopped waiting.
struct Pending<'a> {
    cluster: &'a Cluster,
    id: QueryId,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        lock(&self.cluster.queries).cancel(self.id);
    }
}

impl Cluster {
    pub(crate) fn new(adapter: Arc<dyn Adapter>, query_timeout: Duration) -> Self {
        Self {
            adapter,
            queries: Mutex::new(Queries::default()),
            replied: Notify::new(),
            query_timeout,
        }
    }

    pub(crate) fn node_id(&self) -> &str {
        self.adapter.node_id()
    }

    /// Publishes `envelope` on each of its topics.
    pub(crate) async fn publish(
        &self,
        metrics: &ClusterMetrics,
        envelope: &Envelope,
        topics: Vec<Topic>,
    ) -> Result<(), ClusterError> {
        let frame = envelope.encode();
        let sent = topics
            .into_iter()
            .map(|topic| self.adapter.publish(topic, frame.clone()));
        let results = futures::future::join_all(sent).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        metrics.published.increment((results.len() - failed) as u64);
        match results.into_iter().find_map(Result::err) {
            Some(error) => {
                metrics.publish_failures.increment(failed as u64);
                tracing::warn!(%error, "a broadcast did not reach the cluster");
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// Asks every other live node `question`; `here` is this node's answer.
    pub(crate) async fn ask(
        &self,
        metrics: &ClusterMetrics,
        question: Question,
        here: Answer,
    ) -> Asked {
        metrics.queries.increment(1);
        let mut asked = Asked {
            answers: vec![(self.node_id().to_owned(), here)],
            complete: false,
        };
        let nodes = match tokio::time::timeout(self.query_timeout, self.adapter.live_nodes()).await
        {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot list the cluster's nodes");
                metrics.queries_partial.increment(1);
                return asked;
            }
            Err(_) => {
                tracing::warn!("the cluster's node list did not come in time");
                metrics.queries_partial.increment(1);
                return asked;
            }
        };
        let others = nodes.into_iter().filter(|node| node != self.node_id());
        let id = lock(&self.queries).start(now(), others, self.query_timeout);
        let _pending = Pending { cluster: self, id };
        let request = Request {
            id,
            from: self.node_id().to_owned(),
            question,
        };
        if let Err(error) = self
            .adapter
            .publish(Topic::Requests, request.encode())
            .await
        {
            tracing::warn!(%error, "cannot ask the cluster");
            metrics.queries_partial.increment(1);
            return asked;
        }
        let outcome = loop {
            let replied = self.replied.notified();
            tokio::pin!(replied);
            replied.as_mut().enable();
            let deadline = {
                let mut queries = lock(&self.queries);
                if let Some(outcome) = queries.take(id) {
                    break outcome;
                }
                queries.poll_timeout()
            };
            match deadline {
                Some(deadline) => {
                    tokio::select! {
                        _ = replied => {}
                        _ = tokio::time::sleep_until(deadline.into()) => {
                            lock(&self.queries).handle_timeout(now());
                        }
                    }
                }
                None => replied.await,
            }
        };
        if !outcome.is_complete() {
            tracing::debug!(silent = ?outcome.silent, "nodes did not answer in time");
            metrics.queries_partial.increment(1);
        }
        asked.complete = outcome.is_complete();
        asked.answers.extend(outcome.answers);
        asked
    }

    fn handle_reply(&self, reply: Reply) {
        let finished = lock(&self.queries).handle_reply(reply);
        if finished {
            self.replied.notify_waiters();
        }
    }
}

/// This node, as its adapter sees it: where frames heard on the bus go.
/// It holds the layer weakly, so an adapter outliving its layer does no harm.
#[derive(Clone)]
pub struct ClusterNode {
    services: Weak<Services>,
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("alive", &(self.services.strong_count() > 0))
            .finish()
    }
}

impl ClusterNode {
    pub(crate) fn new(services: &Arc<Services>) -> Self {
        Self {
            services: Arc::downgrade(services),
        }
    }

    /// Takes in one message heard on `topic`: a broadcast goes to this
    /// node's members it is for, a question is answered, a reply joins its
    /// question. A message that is not a frame is counted and dropped.
    pub fn receive(&self, topic: &Topic, frame: &[u8]) {
        let Some(services) = self.services.upgrade() else {
            return;
        };
        let Some(cluster) = &services.cluster else {
            return;
        };
        let metrics = &services.telemetry.cluster;
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
                    let targets = audience(&services, &envelope, topic);
                    deliver(&services, targets, &envelope.payload, false);
                }
            }
            Frame::Request(request) => {
                if request.from != cluster.node_id() {
                    metrics.received.increment(1);
                    answer(&services, cluster, request);
                }
            }
            Frame::Reply(reply) => {
                metrics.received.increment(1);
                cluster.handle_reply(reply);
            }
        }
    }
}

/// This node's answer to `question`.
pub(crate) fn local_answer(services: &Services, question: &Question) -> Answer {
    match question {
        Question::RoomMembers(room) => Answer::Count(services.rooms.count(room)),
        Question::Sessions => Answer::Count(services.registry.len()),
        Question::FindSession(id) => Answer::Found(services.registry.get(id).is_some()),
    }
}

fn answer(services: &Services, cluster: &Cluster, request: Request) {
    let reply = Reply {
        id: request.id,
        from: cluster.node_id().to_owned(),
        answer: local_answer(services, &request.question),
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

/// The members of this node the copy heard on `topic` is for.
fn audience(services: &Services, envelope: &Envelope, topic: &Topic) -> Vec<Arc<dyn Link>> {
    let except: Vec<SessionKey> = envelope
        .except
        .iter()
        .filter_map(|id| SessionKey::parse(id))
        .collect();
    match envelope.audience(topic) {
        Audience::Everyone => services
            .registry
            .all()
            .into_iter()
            .filter(|link| !except.contains(&link.info().key()))
            .collect(),
        Audience::Room { room, not_in } => services.rooms.members_of_copy(room, not_in, &except),
        Audience::Session(id) => services
            .registry
            .get(id)
            .filter(|link| !except.contains(&link.info().key()))
            .into_iter()
            .collect(),
        Audience::Nobody => Vec::new(),
    }
}
