//! Fan-out: one message queued for many sessions.
//!
//! A broadcast is one [`Payload`]: each wire format is encoded the first
//! time a member of that format needs it, and every other member gets the
//! same bytes. Each member's message is only queued, never awaited, so a
//! slow member cannot hold the others up; a member whose queue is full gets
//! the layer's [`Overflow`] policy. Broadcasts made here and copies heard
//! from other nodes both go through [`members`] and [`deliver`].

use super::history::{kept_bytes, RoomHistories};
use super::registry::Registry;
use super::rooms::Rooms;
use super::telemetry::Telemetry;
use crate::base::info::SessionKey;
use crate::base::link::Link;
use axum_channel_protocol::cluster::{Audience as CopyAudience, Envelope, Topic};
use axum_channel_protocol::history::{Accepted, Histories, Position};
use axum_channel_protocol::{Payload, SendError, Ticket};
use std::sync::Arc;

/// What happens to a message for a session whose queue to its client is
/// full (in messages or in bytes): the same on every transport, for the
/// app's own sends and for broadcasts alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// The message is refused (`send` fails with the queue's error, a
    /// broadcast counts the member as dropped); the session stays open.
    #[default]
    Drop,
    /// The message is refused and the session closed with
    /// [`CloseReason::Lagging`](crate::CloseReason::Lagging): a client that
    /// does not read is let go.
    Close,
}

/// True when `error` says the session's queue is full, in messages or in
/// bytes (its overflow policy applies).
pub(crate) fn overflowed(error: &SendError) -> bool {
    matches!(
        error,
        SendError::QueueFull { .. } | SendError::QueueTooLarge { .. }
    )
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
    /// Bytes those encodings (and the compressed frames) hold together.
    pub encoded_bytes: usize,
    /// Compressed frames made for members with permessage-deflate and no
    /// server context takeover: at most one per set of compression
    /// parameters, shared by all of them.
    pub deflated_encodings: usize,
    /// Members with permessage-deflate and server context takeover, each
    /// of which compresses its own copy (its compressor's window is its own).
    pub member_deflates: usize,
    /// The position the broadcast got in each addressed room that keeps a
    /// history (see [`HistoryConfig`](crate::HistoryConfig)).
    pub positions: Vec<(String, Position)>,
    /// True when the broadcast went to the other nodes over the cluster's
    /// pub/sub (rooms without a history, or everyone): each of their members
    /// gets it at most once, and a node away from the bus at that moment
    /// misses it. Rooms with a history go through the cluster's log, which
    /// every node reads to the end.
    pub at_most_once_elsewhere: bool,
}

impl BroadcastReport {
    /// Adds what another part of the same broadcast did.
    fn absorb(&mut self, other: BroadcastReport) {
        self.reached += other.reached;
        self.dropped += other.dropped;
        self.closed += other.closed;
        self.unsupported += other.unsupported;
        self.encodings += other.encodings;
        self.encoded_bytes += other.encoded_bytes;
        self.deflated_encodings += other.deflated_encodings;
        self.member_deflates += other.member_deflates;
        self.positions.extend(other.positions);
        self.at_most_once_elsewhere |= other.at_most_once_elsewhere;
    }
}

/// Who a message is for on this node; `except` is always left out.
pub(crate) enum Audience<'a> {
    /// Every open session.
    Everyone,
    /// The members of any of these rooms, each once.
    Rooms(&'a [String]),
    /// The members of `room` in none of the rooms `not_in`: who the copy of
    /// a broadcast heard on `room`'s topic is for.
    RoomCopy { room: &'a str, not_in: &'a [String] },
    /// One session, by id.
    Session(&'a str),
    /// Nobody here.
    Nobody,
}

/// The sessions of this node `audience` names, without `except`.
pub(crate) fn members(
    registry: &Registry,
    rooms: &Rooms,
    audience: Audience<'_>,
    except: &[SessionKey],
) -> Vec<Arc<dyn Link>> {
    match audience {
        Audience::Everyone => registry.all_except(except),
        Audience::Rooms(names) => rooms.members_of(names, except),
        Audience::RoomCopy { room, not_in } => rooms.members_of_copy(room, not_in, except),
        Audience::Session(id) => SessionKey::parse(id)
            .filter(|key| !except.contains(key))
            .and_then(|key| registry.get_key(key))
            .into_iter()
            .collect(),
        Audience::Nobody => Vec::new(),
    }
}

/// A member a message was queued for, and the ticket naming it there.
pub(crate) type Queued = (Arc<dyn Link>, Ticket);

/// What [`deliver`] needs besides the message and its audience.
pub(crate) struct Fanout<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) rooms: &'a Rooms,
    pub(crate) telemetry: &'a Telemetry,
    pub(crate) overflow: Overflow,
    pub(crate) history: Option<&'a RoomHistories>,
}

impl Fanout<'_> {
    /// Queues `payload` for the members of `rooms` (each once, the first
    /// room that has it naming its copy), without `except`. A room with a
    /// history gives its copy a position first, so its members, and any
    /// later replay, get the stamped message.
    pub(crate) fn to_rooms(
        &self,
        rooms: &[String],
        except: &[SessionKey],
        payload: &Payload,
        acks: bool,
    ) -> (BroadcastReport, Vec<Queued>) {
        let history = self.history.filter(|h| rooms.iter().any(|r| h.keeps(r)));
        let Some(history) = history else {
            let targets = members(self.registry, self.rooms, Audience::Rooms(rooms), except);
            return deliver(self.telemetry, self.overflow, targets, payload, acks);
        };
        let mut report = BroadcastReport::default();
        let mut tickets = Vec::new();
        // One hold of the lock for every room's copy: a session joining or
        // leaving a room meanwhile cannot fall between two copies.
        let mut store = history.lock();
        for (index, room) in rooms.iter().enumerate() {
            let not_in = &rooms[..index];
            if not_in.contains(room) {
                continue;
            }
            let (part, queued) = self.copy_to_room(
                Some((history, &mut store)),
                room,
                not_in,
                except,
                payload,
                acks,
            );
            report.absorb(part);
            tickets.extend(queued);
        }
        (report, tickets)
    }

    /// Queues the copy of a broadcast for `room`: its members in none of
    /// the rooms `not_in`, without `except`; stamped with the room's next
    /// position when it keeps a history.
    pub(crate) fn to_room_copy(
        &self,
        history: Option<&RoomHistories>,
        room: &str,
        not_in: &[String],
        except: &[SessionKey],
        payload: &Payload,
        acks: bool,
    ) -> (BroadcastReport, Vec<Queued>) {
        match history.filter(|h| h.keeps(room)) {
            Some(history) => {
                // Held while the copy is stamped and queued: members get the
                // room's messages in position order, and no recovering
                // session joins in the middle of one.
                let mut store = history.lock();
                self.copy_to_room(
                    Some((history, &mut store)),
                    room,
                    not_in,
                    except,
                    payload,
                    acks,
                )
            }
            None => self.copy_to_room(None, room, not_in, except, payload, acks),
        }
    }

    /// [`to_room_copy`](Self::to_room_copy), with the histories' store
    /// locked by the caller.
    fn copy_to_room(
        &self,
        history: Option<(&RoomHistories, &mut Histories<Arc<Payload>>)>,
        room: &str,
        not_in: &[String],
        except: &[SessionKey],
        payload: &Payload,
        acks: bool,
    ) -> (BroadcastReport, Vec<Queued>) {
        let audience = || Audience::RoomCopy { room, not_in };
        let now = crate::base::sync::now();
        let kept = history
            .filter(|(h, _)| h.keeps(room))
            .and_then(|(history, store)| Some((history, store.reserve(now, room)?, store)));
        let Some((history, position, store)) = kept else {
            let targets = members(self.registry, self.rooms, audience(), except);
            return deliver(self.telemetry, self.overflow, targets, payload, acks);
        };
        let stamped = history.stamp(payload, position);
        let bytes = kept_bytes(&stamped);
        let targets = members(self.registry, self.rooms, audience(), except);
        let (mut report, tickets) = deliver(self.telemetry, self.overflow, targets, &stamped, acks);
        if !store.record(now, room, position, stamped, bytes) {
            tracing::debug!(
                room,
                bytes,
                "a broadcast too large for the room's history ended it"
            );
        }
        report.positions.push((room.to_owned(), position));
        (report, tickets)
    }
}

impl Fanout<'_> {
    /// Takes the entry of `room`'s log at `position` (from the cluster's
    /// log, which gave the position): the room's next entry is kept and
    /// queued for this node's members it is for, a duplicate is dropped.
    /// Returns the last position here when entries before this one are
    /// missing, or it is of another epoch: fetch from the log what follows
    /// that position, then this one comes again. With `restart`, the
    /// entry is the oldest of a log that started again, and this node's
    /// copy starts again with it. An entry this node cannot read
    /// (`envelope` is `None`) takes its place in the copy and reaches nobody.
    pub(crate) fn logged(
        &self,
        history: &RoomHistories,
        room: &str,
        position: Position,
        envelope: Option<&Envelope>,
        restart: bool,
    ) -> Option<Position> {
        let topic = Topic::Log(room.to_owned());
        let mut store = history.lock();
        if !self.rooms.is_here(room) {
            // Heard after the node stopped listening: no copy to keep up.
            return None;
        }
        if restart {
            // The log started again: so does this node's copy, from here.
            store.drop_room(room);
        }
        let now = crate::base::sync::now();
        let readable = envelope.and_then(|envelope| match envelope.audience(&topic) {
            CopyAudience::Room { not_in, .. } => Some((envelope, not_in)),
            _ => None,
        });
        let Some((envelope, not_in)) = readable else {
            return match store.skip(now, room, position) {
                Accepted::Duplicate => None,
                Accepted::Gap { after } => Some(after),
                Accepted::OtherEpoch => store.last_position(room),
                _ => {
                    tracing::warn!(
                        room,
                        %position,
                        "an entry of a room's log cannot be read here; it reaches no member, and no recovery spans it"
                    );
                    None
                }
            };
        };
        let stamped = history.stamp(&envelope.payload, position);
        let bytes = kept_bytes(&stamped);
        match store.accept(now, room, position, stamped.clone(), bytes) {
            Accepted::Duplicate => None,
            Accepted::Gap { after } => Some(after),
            Accepted::OtherEpoch => store.last_position(room),
            accepted => {
                if accepted == Accepted::Started {
                    tracing::debug!(room, %position, "following a room's log from here");
                }
                let except: Vec<SessionKey> = envelope
                    .except
                    .iter()
                    .filter_map(|id| SessionKey::parse(id))
                    .collect();
                let audience = Audience::RoomCopy { room, not_in };
                let targets = members(self.registry, self.rooms, audience, &except);
                deliver(self.telemetry, self.overflow, targets, &stamped, false);
                drop(store);
                history.advanced.notify_waiters();
                None
            }
        }
    }
}

/// Queues `payload` for each of `targets`, each member whose queue is full
/// getting the `overflow` policy; with `acks`, returns each reached
/// member's ticket, to follow its delivery.
pub(crate) fn deliver(
    telemetry: &Telemetry,
    overflow: Overflow,
    targets: Vec<Arc<dyn Link>>,
    payload: &Payload,
    acks: bool,
) -> (BroadcastReport, Vec<Queued>) {
    let mut report = BroadcastReport::default();
    let mut tickets = Vec::new();
    // One clock read for every member: they are queued at once.
    let now = crate::base::sync::now();
    for link in targets {
        match link.send_at(payload, now) {
            Ok(ticket) => {
                report.reached += 1;
                if acks {
                    tickets.push((link, ticket));
                }
            }
            // The session applied its overflow policy already.
            Err(error) if overflowed(&error) => match overflow {
                Overflow::Drop => report.dropped += 1,
                Overflow::Close => report.closed += 1,
            },
            Err(SendError::Unsupported(_)) => report.unsupported += 1,
            // Closed meanwhile: no longer a member.
            Err(_) => {}
        }
    }
    report.encodings = payload.encodings();
    report.encoded_bytes = payload.encoded_bytes();
    report.deflated_encodings = payload.deflated_encodings();
    report.member_deflates = payload.member_deflates();
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
    (report, tickets)
}
