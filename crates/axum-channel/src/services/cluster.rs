//! This node's side of the cluster: what it publishes, and the questions
//! it asks the other nodes.

use super::telemetry::ClusterMetrics;
use crate::base::sync::{lock, now};
use axum_channel_cluster::{Adapter, ClusterError, Topic};
use axum_channel_protocol::cluster::{
    Answer, Envelope, Queries, QueryId, Question, Reply, Request,
};
use std::fmt;
use std::sync::{Arc, Mutex};
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

    /// A reply heard on this node's topic joins its question.
    pub(crate) fn handle_reply(&self, reply: Reply) {
        let finished = lock(&self.queries).handle_reply(reply);
        if finished {
            self.replied.notify_waiters();
        }
    }
}
