//! Where an adapter hands what it hears on the bus.

use axum_channel_protocol::cluster::Topic;
use std::fmt;
use std::sync::Weak;

/// What takes the frames a node hears: the layer implements it.
pub trait FrameSink: Send + Sync + 'static {
    /// One message heard on `topic` (a frame of `axum_channel_protocol::cluster`,
    /// or anything else, which the sink counts and drops).
    fn receive(&self, topic: &Topic, frame: &[u8]);

    /// The bus is back after an outage: what was published meanwhile may
    /// have been missed.
    fn resumed(&self) {}
}

/// This node, as its adapter sees it: where frames heard on the bus go.
///
/// It holds the layer weakly, so an adapter that outlives its layer does no
/// harm: frames heard after the layer is gone are dropped.
#[derive(Clone)]
pub struct ClusterNode {
    sink: Weak<dyn FrameSink>,
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("alive", &(self.sink.strong_count() > 0))
            .finish()
    }
}

impl ClusterNode {
    /// A node whose frames go to `sink` while it lives (the layer makes
    /// one when it starts; an adapter's tests may make their own).
    ///
    /// ```
    /// use axum_channel_cluster::{ClusterNode, FrameSink, Topic};
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Default)]
    /// struct Heard(Mutex<Vec<Vec<u8>>>);
    /// impl FrameSink for Heard {
    ///     fn receive(&self, _topic: &Topic, frame: &[u8]) {
    ///         self.0.lock().unwrap().push(frame.to_vec());
    ///     }
    /// }
    ///
    /// let heard = Arc::new(Heard::default());
    /// let sink: Arc<dyn FrameSink> = heard.clone();
    /// let node = ClusterNode::new(Arc::downgrade(&sink));
    /// node.receive(&Topic::All, b"frame");
    /// assert_eq!(heard.0.lock().unwrap().len(), 1);
    /// ```
    pub fn new(sink: Weak<dyn FrameSink>) -> Self {
        Self { sink }
    }

    /// Takes in one message heard on `topic`: a broadcast goes to this
    /// node's members it is for, a question is answered, a reply joins its
    /// question. A message that is not a frame is counted and dropped.
    pub fn receive(&self, topic: &Topic, frame: &[u8]) {
        if let Some(sink) = self.sink.upgrade() {
            sink.receive(topic, frame);
        }
    }

    /// Tells the layer the bus is back after an outage, so it fetches from
    /// the rooms' logs what it missed meanwhile.
    pub fn resumed(&self) {
        if let Some(sink) = self.sink.upgrade() {
            sink.resumed();
        }
    }

    /// True while the layer it serves lives.
    pub fn is_alive(&self) -> bool {
        self.sink.strong_count() > 0
    }
}
