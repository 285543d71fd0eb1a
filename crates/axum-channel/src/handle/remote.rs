//! Sessions found on other nodes.

use crate::services::Services;
use crate::session::SessionSender;
use axum_channel_cluster::{ClusterError, Topic};
use axum_channel_protocol::cluster::{Envelope, Target};
use axum_channel_protocol::Payload;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// Where a session lives, as [`ChannelHandle::find_session`](crate::ChannelHandle::find_session) found it.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionLookup {
    /// On this node.
    Here(SessionSender),
    /// On another node of the cluster.
    Elsewhere(RemoteSession),
    /// Nowhere: `complete` is false when some node did not answer in time,
    /// so the session may be on it.
    Nowhere {
        /// Every live node answered.
        complete: bool,
    },
}

/// A session on another node: it can be sent to through the cluster.
pub struct RemoteSession {
    services: Arc<Services>,
    node: String,
    id: String,
}

impl fmt::Debug for RemoteSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSession")
            .field("node", &self.node)
            .field("id", &self.id)
            .finish()
    }
}

impl RemoteSession {
    pub(crate) fn new(services: Arc<Services>, node: String, id: &str) -> Self {
        Self {
            services,
            node,
            id: id.to_owned(),
        }
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id of the node it lives on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Sends a JSON message, as [`SessionSender::send`] would on its node.
    /// Resolves once the bus took it; the session's own delivery is not
    /// reported back.
    ///
    /// ```no_run
    /// # async fn run(channels: axum_channel::ChannelHandle) {
    /// use axum_channel::cluster::SessionLookup;
    /// if let SessionLookup::Elsewhere(remote) = channels.find_session("0123456789abcdef0123456789abcdef").await {
    ///     remote.send(serde_json::json!({"type": "poke"})).await.ok();
    /// }
    /// # }
    /// ```
    pub async fn send(&self, message: impl Into<Value>) -> Result<(), ClusterError> {
        self.send_payload(Payload::json(message.into())).await
    }

    /// Sends any payload.
    pub async fn send_payload(&self, payload: Payload) -> Result<(), ClusterError> {
        let cluster = self
            .services
            .cluster
            .as_ref()
            .ok_or_else(|| ClusterError::new("this layer has no cluster"))?;
        let envelope = Envelope {
            origin: cluster.node_id().to_owned(),
            target: Target::Session(self.id.clone()),
            except: Vec::new(),
            payload,
        };
        cluster
            .publish(
                &self.services.telemetry.cluster,
                &envelope,
                vec![Topic::Node(self.node.clone())],
            )
            .await
    }
}
