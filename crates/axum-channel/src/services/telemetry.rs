//! Counters and gauges, through the `metrics` facade: the app installs
//! whatever recorder it likes (a Prometheus exporter, say) before it builds
//! the layer; without one they cost next to nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `channel_sessions_open` | gauge | `transport` |
//! | `channel_sessions_opened_total` | counter | `transport` |
//! | `channel_sessions_closed_total` | counter | `transport`, `reason` |
//! | `channel_sessions_refused_total` | counter | `transport`, `reason` (`origin`, `rejected`, `forbidden`, `rate_limited`, `address_full`, `full`, `shutting_down`) |
//! | `channel_messages_received_total` | counter | `transport` |
//! | `channel_messages_sent_total` | counter | `transport` |
//! | `channel_bytes_sent_total` | counter | `transport` |
//! | `channel_deliveries_failed_total` | counter | `transport` |
//! | `channel_broadcasts_total` | counter | |
//! | `channel_broadcast_recipients_total` | counter | |
//! | `channel_broadcast_dropped_total` | counter | |
//! | `channel_broadcast_encoded_bytes_total` | counter | |
//! | `channel_cluster_published_total` | counter | |
//! | `channel_cluster_publish_failures_total` | counter | |
//! | `channel_cluster_history_lost_total` | counter | |
//! | `channel_cluster_received_total` | counter | |
//! | `channel_cluster_refused_frames_total` | counter | |
//! | `channel_cluster_queries_total` | counter | |
//! | `channel_cluster_queries_partial_total` | counter | |
//!
//! A cluster adapter may add its own (the Redis adapter counts its
//! disconnections and reconnections).

use crate::base::transport::Transport;
use axum_channel_protocol::CloseReason;
use metrics::{Counter, Gauge};

/// The metrics of one transport, registered once.
#[derive(Clone)]
pub(crate) struct TransportMetrics {
    pub(crate) open: Gauge,
    pub(crate) opened: Counter,
    pub(crate) received: Counter,
    pub(crate) sent: Counter,
    pub(crate) bytes_sent: Counter,
    pub(crate) deliveries_failed: Counter,
    /// `channel_sessions_closed_total`, one per reason label.
    closed: Vec<(&'static str, Counter)>,
    /// `channel_sessions_refused_total`, one per reason label.
    refused: Vec<(&'static str, Counter)>,
}

/// Every refusal label.
const REFUSALS: [&str; 7] = [
    "origin",
    "rejected",
    "forbidden",
    "rate_limited",
    "address_full",
    "full",
    "shutting_down",
];

/// Every close reason label.
const REASONS: [&str; 11] = [
    "closed",
    "peer",
    "failed",
    "ping_timeout",
    "connection_lost",
    "timed_out",
    "disconnected",
    "reconnected",
    "lagging",
    "shutdown",
    "other",
];

impl TransportMetrics {
    fn new(transport: Transport) -> Self {
        let name = transport.as_str();
        Self {
            open: metrics::gauge!("channel_sessions_open", "transport" => name),
            opened: metrics::counter!("channel_sessions_opened_total", "transport" => name),
            received: metrics::counter!("channel_messages_received_total", "transport" => name),
            sent: metrics::counter!("channel_messages_sent_total", "transport" => name),
            bytes_sent: metrics::counter!("channel_bytes_sent_total", "transport" => name),
            deliveries_failed: metrics::counter!(
                "channel_deliveries_failed_total",
                "transport" => name
            ),
            closed: REASONS
                .iter()
                .map(|&reason| {
                    let counter = metrics::counter!(
                        "channel_sessions_closed_total",
                        "transport" => name,
                        "reason" => reason
                    );
                    (reason, counter)
                })
                .collect(),
            refused: REFUSALS
                .iter()
                .map(|&reason| {
                    let counter = metrics::counter!(
                        "channel_sessions_refused_total",
                        "transport" => name,
                        "reason" => reason
                    );
                    (reason, counter)
                })
                .collect(),
        }
    }

    /// A request of this transport was refused a session for `reason`.
    pub(crate) fn refused(&self, reason: &str) {
        if let Some((_, counter)) = self.refused.iter().find(|(name, _)| *name == reason) {
            counter.increment(1);
        }
    }

    /// A session of this transport closed for `reason`.
    pub(crate) fn closed(&self, reason: &CloseReason) {
        let label = reason_label(reason);
        if let Some((_, counter)) = self.closed.iter().find(|(name, _)| *name == label) {
            counter.increment(1);
        }
    }
}

/// Every metric of one layer.
pub(crate) struct Telemetry {
    transports: [TransportMetrics; 4],
    pub(crate) broadcasts: Counter,
    pub(crate) broadcast_recipients: Counter,
    pub(crate) broadcast_dropped: Counter,
    pub(crate) broadcast_encoded_bytes: Counter,
    pub(crate) cluster: ClusterMetrics,
}

/// What crosses between nodes.
pub(crate) struct ClusterMetrics {
    /// Frames handed to the bus.
    pub(crate) published: Counter,
    /// Frames the bus refused: broadcasts that failed visibly.
    pub(crate) publish_failures: Counter,
    /// Times a room's log lost entries before this node read them.
    pub(crate) lost_history: Counter,
    /// Frames heard from other nodes.
    pub(crate) received: Counter,
    /// Bus messages that were not frames.
    pub(crate) refused_frames: Counter,
    /// Questions asked of the other nodes.
    pub(crate) queries: Counter,
    /// Questions answered without every node.
    pub(crate) queries_partial: Counter,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Registers every metric with the recorder installed now.
    pub(crate) fn new() -> Self {
        Self {
            transports: Transport::ALL.map(TransportMetrics::new),
            broadcasts: metrics::counter!("channel_broadcasts_total"),
            broadcast_recipients: metrics::counter!("channel_broadcast_recipients_total"),
            broadcast_dropped: metrics::counter!("channel_broadcast_dropped_total"),
            broadcast_encoded_bytes: metrics::counter!("channel_broadcast_encoded_bytes_total"),
            cluster: ClusterMetrics {
                published: metrics::counter!("channel_cluster_published_total"),
                publish_failures: metrics::counter!("channel_cluster_publish_failures_total"),
                lost_history: metrics::counter!("channel_cluster_history_lost_total"),
                received: metrics::counter!("channel_cluster_received_total"),
                refused_frames: metrics::counter!("channel_cluster_refused_frames_total"),
                queries: metrics::counter!("channel_cluster_queries_total"),
                queries_partial: metrics::counter!("channel_cluster_queries_partial_total"),
            },
        }
    }

    pub(crate) fn transport(&self, transport: Transport) -> &TransportMetrics {
        &self.transports[transport.index()]
    }
}

/// A short, bounded label for a close reason (never the app's free text).
fn reason_label(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::Closed(_) | CloseReason::ClosedWithCode { .. } => "closed",
        CloseReason::Peer { .. } => "peer",
        CloseReason::Failed { .. } => "failed",
        CloseReason::PingTimeout => "ping_timeout",
        CloseReason::ConnectionLost => "connection_lost",
        CloseReason::TimedOut => "timed_out",
        CloseReason::Disconnected => "disconnected",
        CloseReason::Reconnected => "reconnected",
        CloseReason::Lagging => "lagging",
        CloseReason::Shutdown => "shutdown",
        _ => "other",
    }
}
