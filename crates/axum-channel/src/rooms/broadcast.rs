//! Sending one message to many sessions.
//!
//! A broadcast is one [`Payload`]: each wire format is encoded the first
//! time a member of that format needs it, and every other member gets the
//! same bytes. Each member's message is only queued, never awaited, so a
//! slow member cannot hold the others up; a member whose queue is full gets
//! the layer's [`Overflow`] policy.

use crate::cluster::ClusterError;
use crate::live::Services;
use crate::session::{Delivery, Link, SendError, SessionKey};
use channel_protocol::cluster::{Envelope, Target};
use channel_protocol::Payload;
use futures::stream::{FuturesUnordered, Stream};
use futures::FutureExt;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a broadcast does with a member whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// The member misses this message (counted as dropped); it stays open.
    #[default]
    Drop,
    /// The member is closed with [`CloseReason::Lagging`](crate::CloseReason::Lagging).
    Close,
}

/// What a broadcast did on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastReport {
    /// Members the message was queued for.
    pub reached: usize,
    /// Members whose queue was full, who miss the message.
    pub dropped: usize,
    /// Members closed because their queue was full ([`Overflow::Close`]).
    pub closed: usize,
    /// Members whose transport cannot carry the message (binary data to a
    /// SockJS session, say).
    pub unsupported: usize,
    /// Encodings made: at most one per wire format, however many members.
    pub encodings: usize,
    /// Bytes those encodings hold together.
    pub encoded_bytes: usize,
}

/// Why a broadcast did not reach everyone it was meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The cluster could not carry it to the other nodes (it may have
    /// reached some); this node's members got it as `local` says.
    Cluster {
        /// What happened on this node.
        local: BroadcastReport,
        /// What went wrong.
        error: ClusterError,
    },
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BroadcastError::Cluster { local, error } => write!(
                f,
                "the broadcast reached {} members here but not the cluster: {error}",
                local.reached
            ),
        }
    }
}

impl std::error::Error for BroadcastError {}

/// A broadcast being addressed: to everyone, to rooms, minus some sessions.
///
/// ```no_run
/// # async fn run(channels: axum_channel::ChannelHandle, sender_id: &str) {
/// use serde_json::json;
///
/// let report = channels
///     .broadcast(json!({"type": "said", "text": "hi"}))
///     .to("lobby")
///     .except(sender_id)
///     .send()
///     .await
///     .expect("the cluster carried it");
/// println!("reached {} members", report.reached);
/// # }
/// ```
#[must_use = "a broadcast is sent by `send` or `send_with_acks`"]
pub struct Broadcast {
    services: Arc<Services>,
    payload: Payload,
    rooms: Option<Vec<String>>,
    except: Vec<SessionKey>,
    /// The same sessions by id, for the other nodes.
    except_ids: Vec<String>,
}

impl fmt::Debug for Broadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("rooms", &self.rooms)
            .field("except", &self.except.len())
            .finish_non_exhaustive()
    }
}

impl Broadcast {
    pub(crate) fn new(services: Arc<Services>, payload: Payload) -> Self {
        Self {
            services,
            payload,
            rooms: None,
            except: Vec::new(),
            except_ids: Vec::new(),
        }
    }

    /// Sends to the members of `room` (and of every other room named);
    /// without a room, the broadcast goes to every session.
    pub fn to(mut self, room: impl Into<String>) -> Self {
        self.rooms.get_or_insert_with(Vec::new).push(room.into());
        self
    }

    /// Sends to the members of all these rooms; a session in several of
    /// them gets the message once.
    pub fn to_rooms<I, S>(mut self, rooms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rooms
            .get_or_insert_with(Vec::new)
            .extend(rooms.into_iter().map(Into::into));
        self
    }

    /// Leaves out the session with this id (the sender, say).
    pub fn except(mut self, id: &str) -> Self {
        if let Some(key) = crate::session::SessionKey::parse(id) {
            self.except.push(key);
            self.except_ids.push(id.to_owned());
        }
        self
    }

    /// Queues the message for every member; resolves once it is queued on
    /// this node and, in a cluster, the bus took it for the other nodes
    /// (the report counts this node's members only).
    pub async fn send(self) -> Result<BroadcastReport, BroadcastError> {
        let (report, _) = self.fan_out(false);
        self.publish(report).await
    }

    /// Sends as [`send`](Self::send) does, and also yields each member's
    /// delivery (with the layer's delivery meaning per transport), each
    /// waiting at most `timeout`. In a cluster, only this node's members'
    /// deliveries are collected.
    pub async fn send_with_acks(
        self,
        timeout: Duration,
    ) -> Result<(BroadcastReport, AckStream), BroadcastError> {
        let (report, deliveries) = self.fan_out(true);
        let report = self.publish(report).await?;
        let pending = deliveries
            .into_iter()
            .map(|(id, delivery)| {
                let tag: AckFn = Box::new(move |result| (id, result));
                delivery.timeout(timeout).map(tag)
            })
            .collect();
        Ok((report, AckStream { pending }))
    }

    /// Queues the message for the members on this node.
    fn fan_out(&self, acks: bool) -> (BroadcastReport, Vec<(String, Delivery)>) {
        let targets: Vec<Arc<dyn Link>> = match &self.rooms {
            Some(rooms) => self.services.rooms.members_of(rooms, &self.except),
            None => self
                .services
                .registry
                .all()
                .into_iter()
                .filter(|link| !self.except.contains(&link.info().key()))
                .collect(),
        };
        deliver(&self.services, targets, &self.payload, acks)
    }

    /// Hands the broadcast to the cluster, if there is one.
    async fn publish(self, local: BroadcastReport) -> Result<BroadcastReport, BroadcastError> {
        let Some(cluster) = &self.services.cluster else {
            return Ok(local);
        };
        let envelope = Envelope {
            origin: cluster.node_id().to_owned(),
            target: match self.rooms {
                Some(rooms) => Target::rooms(rooms),
                None => Target::All,
            },
            except: self.except_ids,
            payload: self.payload,
        };
        let topics = envelope.topics();
        match cluster
            .publish(&self.services.telemetry.cluster, &envelope, topics)
            .await
        {
            Ok(()) => Ok(local),
            Err(error) => Err(BroadcastError::Cluster { local, error }),
        }
    }
}

/// Queues `payload` for each of `targets`, each member's full queue getting
/// the layer's overflow policy; with `acks`, returns their deliveries.
pub(crate) fn deliver(
    services: &Services,
    targets: Vec<Arc<dyn Link>>,
    payload: &Payload,
    acks: bool,
) -> (BroadcastReport, Vec<(String, Delivery)>) {
    let mut report = BroadcastReport::default();
    let mut deliveries = Vec::new();
    for link in targets {
        match link.send(payload) {
            Ok(ticket) => {
                report.reached += 1;
                if acks {
                    let id = link.info().id().to_owned();
                    deliveries.push((id, Delivery::waiting(link, ticket)));
                }
            }
            Err(SendError::QueueFull { .. }) => match services.overflow {
                Overflow::Drop => report.dropped += 1,
                Overflow::Close => {
                    link.close(crate::CloseReason::Lagging);
                    report.closed += 1;
                }
            },
            Err(SendError::Unsupported(_)) => report.unsupported += 1,
            // Closed meanwhile: no longer a member.
            Err(_) => {}
        }
    }
    report.encodings = payload.encodings();
    report.encoded_bytes = payload.encoded_bytes();
    let telemetry = &services.telemetry;
    telemetry.broadcasts.increment(1);
    telemetry
        .broadcast_recipients
        .increment(report.reached as u64);
    telemetry
        .broadcast_dropped
        .increment((report.dropped + report.closed) as u64);
    telemetry
        .broadcast_encoded_bytes
        .increment(report.encoded_bytes as u64);
    (report, deliveries)
}

/// Each member's delivery of a broadcast, as it resolves: the member's
/// session id and how its delivery ended.
pub struct AckStream {
    pending: FuturesUnordered<futures::future::Map<Delivery, AckFn>>,
}

type AckFn = Box<dyn FnOnce(Result<(), SendError>) -> (String, Result<(), SendError>) + Send>;

impl fmt::Debug for AckStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckStream")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Stream for AckStream {
    type Item = (String, Result<(), SendError>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.pending).poll_next(cx)
    }
}
