//! Many nodes, one set of rooms: the seam between the layer and a pub/sub
//! bus.
//!
//! Without an [`Adapter`] a layer is a single node and nothing here runs.
//! With one (the Redis adapter of the `axum-channel-redis` crate, say), a
//! broadcast is delivered to this node's members at once and published for
//! the others as a frame (see `channel_protocol::cluster`); each room has
//! its own topic, and a node subscribes to a room's topic while it has
//! members in it, so it only hears traffic it has members for. Counts and
//! session lookups ask every live node and wait, at most the configured
//! timeout, for their replies.
//!
//! An adapter only moves bytes between topics; every rule (who a copy is
//! for, when a question is answered) lives in the layer and the protocol
//! crate, so adapters for other buses stay small.

pub(crate) mod node;
mod remote;

pub use node::ClusterNode;
pub use remote::{RemoteSession, SessionLookup};

pub(crate) use node::Cluster;

pub use channel_protocol::cluster::Topic;

use bytes::Bytes;
use futures::future::BoxFuture;
use std::fmt;
use std::sync::Arc;

/// Why the cluster could not do what was asked: the bus is unreachable, it
/// refused, or it did not answer in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError(Arc<str>);

impl ClusterError {
    /// An error with this explanation.
    ///
    /// ```
    /// let error = axum_channel::cluster::ClusterError::new("Redis is unreachable");
    /// assert_eq!(error.to_string(), "Redis is unreachable");
    /// ```
    pub fn new(message: impl fmt::Display) -> Self {
        Self(Arc::from(message.to_string()))
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

/// A pub/sub bus that carries frames between the nodes of a cluster.
///
/// The layer calls it; the adapter only moves bytes. It must:
/// - listen on [`Topic::All`], [`Topic::Requests`] and its own
///   [`Topic::Node`] from the start, and on each room topic between
///   [`subscribe`](Adapter::subscribe) and [`unsubscribe`](Adapter::unsubscribe);
///   those calls come in the order the rooms changed and must take effect in
///   that order; they are made under the rooms' lock, so they return at once
///   (queueing the work) and never call back into the layer;
/// - hand every message heard on a topic to [`ClusterNode::receive`];
/// - keep its subscriptions across reconnections by itself;
/// - answer [`live_nodes`](Adapter::live_nodes) with the nodes whose
///   liveness it saw recently, so a crashed node is forgotten.
///
/// ```no_run
/// # async fn run(adapter: impl axum_channel::cluster::Adapter) {
/// use axum_channel::{ChannelConfig, ChannelLayer};
/// let layer = ChannelLayer::new(ChannelConfig::new().cluster(adapter));
/// # }
/// ```
pub trait Adapter: Send + Sync + 'static {
    /// This node's id, unique in the cluster.
    fn node_id(&self) -> &str;

    /// Hands the adapter the node it serves; called once, when the layer is
    /// built.
    fn start(&self, node: ClusterNode);

    /// Starts hearing `topic`; resolves once the bus confirmed it.
    fn subscribe(&self, topic: Topic) -> BoxFuture<'static, Result<(), ClusterError>>;

    /// Stops hearing `topic`.
    fn unsubscribe(&self, topic: Topic);

    /// Publishes one frame on `topic`; resolves once the bus took it.
    fn publish(&self, topic: Topic, frame: Bytes) -> BoxFuture<'static, Result<(), ClusterError>>;

    /// The ids of the nodes alive now, this one included.
    fn live_nodes(&self) -> BoxFuture<'static, Result<Vec<String>, ClusterError>>;
}
