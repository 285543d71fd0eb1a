//! The seam between an `axum-channel` layer and a cluster bus.
//!
//! A layer with an [`Adapter`] is one node of a cluster: it publishes its
//! broadcasts and questions as frames on [`Topic`]s, and the adapter hands
//! what it hears back through a [`ClusterNode`]. The adapter only moves
//! bytes; every rule (who a copy of a broadcast is for, when a question is
//! answered) lives in the layer and in `axum-channel-protocol`. An adapter crate
//! depends on this crate alone, not on the whole layer.
//!
//! ```
//! use axum_channel_cluster::{Adapter, BoxFuture, ClusterError, ClusterNode, Topic};
//! use bytes::Bytes;
//! use std::sync::{Arc, Mutex};
//!
//! /// A bus of one node: what it publishes comes straight back.
//! #[derive(Default)]
//! struct Loopback { node: Mutex<Option<ClusterNode>> }
//!
//! impl Adapter for Loopback {
//!     fn node_id(&self) -> &str { "solo" }
//!     fn start(&self, node: ClusterNode) { *self.node.lock().unwrap() = Some(node); }
//!     fn subscribe(&self, _topic: Topic) -> BoxFuture<'static, Result<(), ClusterError>> {
//!         Box::pin(async { Ok(()) })
//!     }
//!     fn unsubscribe(&self, _topic: Topic) {}
//!     fn publish(&self, topic: Topic, frame: Bytes) -> BoxFuture<'static, Result<(), ClusterError>> {
//!         if let Some(node) = self.node.lock().unwrap().as_ref() {
//!             node.receive(&topic, &frame);
//!         }
//!         Box::pin(async { Ok(()) })
//!     }
//!     fn live_nodes(&self) -> BoxFuture<'static, Result<Vec<String>, ClusterError>> {
//!         Box::pin(async { Ok(vec!["solo".to_owned()]) })
//!     }
//! }
//! # let _ = Arc::new(Loopback::default());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adapter;
mod error;
mod future;
mod log;
mod node;

pub use adapter::Adapter;
pub use axum_channel_protocol::cluster::Topic;
pub use axum_channel_protocol::history::{Lookup, Position, Unrecoverable};
pub use error::ClusterError;
pub use future::BoxFuture;
pub use log::{Retention, RoomLog};
pub use node::{ClusterNode, FrameSink};
