//! Sending one message to many sessions: the app's [`Broadcast`] builder.
//! The fan-out itself is the services' (`services::fanout`): encoded once
//! per wire format, queued for each member, never awaited.

use crate::base::info::SessionKey;
use crate::services::fanout::{self, Audience, BroadcastReport};
use crate::services::Services;
use crate::session::Delivery;
use axum_channel_cluster::ClusterError;
use axum_channel_protocol::cluster::{Envelope, Target};
use axum_channel_protocol::history::Position;
use axum_channel_protocol::{Payload, SendError};
use futures::stream::{FuturesUnordered, Stream};
use futures::FutureExt;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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
        if let Some(key) = SessionKey::parse(id) {
            self.except.push(key);
            self.except_ids.push(id.to_owned());
        }
        self
    }

    /// Queues the message for every member; resolves once it is queued on
    /// this node and, in a cluster, the bus took it for the other nodes
    /// (the report counts this node's members only).
    pub async fn send(mut self) -> Result<BroadcastReport, BroadcastError> {
        let logged = self.take_logged().await?;
        if self.rooms.as_ref().is_some_and(Vec::is_empty) {
            return Ok(BroadcastReport {
                positions: logged,
                ..Default::default()
            });
        }
        let (report, _) = self.fan_out(false);
        let mut report = self.publish(report).await?;
        report.positions.extend(logged);
        Ok(report)
    }

    /// In a cluster that keeps its rooms' histories in a log, appends the
    /// broadcast to the log of the addressed rooms that keep one (all of
    /// them or none) and takes those rooms out of this broadcast: every
    /// node, this one too, delivers the log's entries as it hears them.
    /// Returns the positions the log gave.
    async fn take_logged(&mut self) -> Result<Vec<(String, Position)>, BroadcastError> {
        let services = self.services.clone();
        let (Some(history), Some(cluster), Some(rooms)) =
            (&services.history, &services.cluster, &mut self.rooms)
        else {
            return Ok(Vec::new());
        };
        let Some(log) = &history.log else {
            return Ok(Vec::new());
        };
        let (named, plain): (Vec<String>, Vec<String>) =
            rooms.drain(..).partition(|room| history.keeps(room));
        *rooms = plain;
        // A room named twice is appended to once.
        let mut logged: Vec<String> = Vec::with_capacity(named.len());
        for room in named {
            if !logged.contains(&room) {
                logged.push(room);
            }
        }
        if logged.is_empty() {
            return Ok(Vec::new());
        }
        let envelope = Envelope {
            origin: cluster.node_id().to_owned(),
            target: Target::rooms(logged.clone()),
            except: self.except_ids.clone(),
            payload: self.payload.copy_unencoded(),
        };
        let positions = log
            .append(&logged, envelope.encode(), history.retention())
            .await
            .map_err(|error| BroadcastError::Cluster {
                local: BroadcastReport::default(),
                error,
            })?;
        Ok(logged.into_iter().zip(positions).collect())
    }

    /// Sends as [`send`](Self::send) does, and also yields each member's
    /// delivery (with the layer's delivery meaning per transport), each
    /// waiting at most `timeout`. In a cluster, only this node's members'
    /// deliveries are collected.
    pub async fn send_with_acks(
        self,
        timeout: Duration,
    ) -> Result<(BroadcastReport, AckStream), BroadcastError> {
        let mut this = self;
        let logged = this.take_logged().await?;
        let (report, deliveries) = this.fan_out(true);
        let mut report = this.publish(report).await?;
        report.positions.extend(logged);
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
        let services = &self.services;
        let (report, tickets) = match &self.rooms {
            Some(rooms) => services
                .fanout()
                .to_rooms(rooms, &self.except, &self.payload, acks),
            None => {
                let targets = fanout::members(
                    &services.registry,
                    &services.rooms,
                    Audience::Everyone,
                    &self.except,
                );
                fanout::deliver(
                    &services.telemetry,
                    services.overflow,
                    targets,
                    &self.payload,
                    acks,
                )
            }
        };
        let deliveries = tickets
            .into_iter()
            .map(|(link, ticket)| (link.info().id().to_owned(), Delivery::waiting(link, ticket)))
            .collect();
        (report, deliveries)
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
        if topics.is_empty() {
            return Ok(local);
        }
        match cluster
            .publish(&self.services.telemetry.cluster, &envelope, topics)
            .await
        {
            Ok(()) => Ok(BroadcastReport {
                at_most_once_elsewhere: true,
                ..local
            }),
            Err(error) => Err(BroadcastError::Cluster { local, error }),
        }
    }
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
