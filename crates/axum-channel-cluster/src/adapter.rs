//! The `Adapter` trait: a pub/sub bus between the nodes of a cluster.

use crate::error::ClusterError;
use crate::future::BoxFuture;
use crate::log::RoomLog;
use crate::node::ClusterNode;
use axum_channel_protocol::cluster::Topic;
use bytes::Bytes;
use std::sync::Arc;

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
/// The crate documentation has a whole (loopback) adapter as an example.
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

    /// The log that keeps the rooms' histories across the cluster, if the
    /// adapter has one; without it, each node keeps its own.
    fn room_log(&self) -> Option<Arc<dyn RoomLog>> {
        None
    }
}
