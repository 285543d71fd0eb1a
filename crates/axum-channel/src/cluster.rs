//! Many nodes, one set of rooms: the seam between the layer and a pub/sub
//! bus.
//!
//! Without an [`Adapter`] a layer is a single node and nothing here runs.
//! With one (the Redis adapter of the `axum-channel-redis` crate, say), a
//! broadcast is delivered to this node's members at once and published for
//! the others as a frame (see `axum_channel_protocol::cluster`); each room has
//! its own topic, and a node subscribes to a room's topic while it has
//! members in it, so it only hears traffic it has members for. Counts and
//! session lookups ask every live node and wait, at most the configured
//! timeout, for their replies.
//!
//! An adapter only moves bytes between topics; every rule (who a copy is
//! for, when a question is answered) lives in the layer and the protocol
//! crate. The trait and what crosses it live in the small `axum-channel-cluster`
//! crate, re-exported here, so an adapter crate depends on that seam alone.

pub use crate::handle::remote::{RemoteSession, SessionLookup};
pub use axum_channel_cluster::{Adapter, BoxFuture, ClusterError, ClusterNode, FrameSink, Topic};
