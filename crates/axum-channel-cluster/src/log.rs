//! The `RoomLog` trait: where a cluster keeps its rooms' histories.

use crate::error::ClusterError;
use crate::future::BoxFuture;
use axum_channel_protocol::history::{Lookup, Position};
use bytes::Bytes;
use std::time::Duration;

/// How much of a room's log is kept: its last messages, for a while after
/// the room's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most entries a room keeps.
    pub max_messages: usize,
    /// How long a room's log is kept after its last entry.
    pub max_age: Duration,
}

/// A durable, ordered log per room, shared by every node: the history of a
/// cluster's rooms and the way their broadcasts travel.
///
/// The log gives each entry its [`Position`] (offsets contiguous within an
/// epoch; a log that lost its data starts a new epoch), so every node
/// stamps a message alike and a client may recover on any node. It must:
/// - hand each appended entry, with its position, to every node listening
///   on the room's [`Topic::Log`](crate::Topic::Log) (as the bytes of
///   `axum_channel_protocol::cluster::entry`), in position order;
/// - append once, even when a reply is lost and the append is tried again;
/// - while its store is unreachable, hold appends (bounded) and make them
///   when it returns; past the bound, refuse at once;
/// - call [`ClusterNode::resumed`](crate::ClusterNode::resumed) once it is
///   back, so nodes fetch what they missed meanwhile.
pub trait RoomLog: Send + Sync + 'static {
    /// Appends `frame` to the log of every room of `rooms`, all or none;
    /// resolves with the positions, in the order of `rooms`, once stored. An
    /// error means no room got it, and none ever will.
    fn append(
        &self,
        rooms: &[String],
        frame: Bytes,
        retention: Retention,
    ) -> BoxFuture<'static, Result<Vec<Position>, ClusterError>>;

    /// The entries of `room` after `since`, at most `limit` of them, or why
    /// the log cannot vouch for every one; with no position, from the
    /// oldest entry the log keeps, whatever its epoch.
    fn read_after(
        &self,
        room: &str,
        since: Option<Position>,
        limit: usize,
    ) -> BoxFuture<'static, Result<Lookup<Bytes>, ClusterError>>;

    /// The position of the last entry of `room`'s log, `None` when it has
    /// none. A node reads it once it listens to the room's log, so it knows
    /// from where its members are owed every entry.
    fn last_position(
        &self,
        room: &str,
    ) -> BoxFuture<'static, Result<Option<Position>, ClusterError>>;
}
