//! Which rooms keep a history of their broadcasts, and how much.

use crate::services::history::HistorySettings;
use std::sync::Arc;
use std::time::Duration;

/// Rooms that keep their recent broadcasts, so a session that reconnects
/// can join with the last position it saw and get what it missed
/// ([`SessionSender::join_since`](crate::SessionSender::join_since)).
///
/// Off unless set with [`ChannelConfig::history`](crate::ChannelConfig::history).
/// Every broadcast to a room with a history gets a
/// [`Position`](crate::Position); EventSource members get it as the
/// event's `id:`, and with [`position_field`](Self::position_field) a JSON
/// object gets it as a field too, stamped once per broadcast (members still
/// share one encoding per wire format).
///
/// ```
/// use axum_channel::{ChannelConfig, HistoryConfig};
/// use std::time::Duration;
///
/// let config = ChannelConfig::new().history(
///     HistoryConfig::new()
///         .size(500)
///         .ttl(Duration::from_secs(120))
///         .position_field("pos")
///         .only(|room| room.starts_with("chat:")),
/// );
/// # let _ = config;
/// ```
#[derive(Clone, Debug, Default)]
pub struct HistoryConfig {
    pub(crate) settings: HistorySettings,
}

impl HistoryConfig {
    /// Every room keeps its last 1,000 broadcasts for 300 s, at most 1 MiB
    /// per room and 64 MiB, 10,000 rooms, in all.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many of its last broadcasts a room keeps.
    pub fn size(mut self, messages: usize) -> Self {
        self.settings.limits.max_messages = messages.max(1);
        self
    }

    /// How long a broadcast is kept.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.limits.max_age = ttl;
        self
    }

    /// Most bytes one room's kept broadcasts hold. A broadcast counts four
    /// times its WebSocket text plus 256 bytes: room for the encodings it
    /// caches for each wire format.
    pub fn max_room_bytes(mut self, bytes: usize) -> Self {
        self.settings.limits.max_room_bytes = bytes;
        self
    }

    /// Most bytes every room's kept broadcasts hold together; past it, the
    /// oldest go first.
    pub fn max_total_bytes(mut self, bytes: usize) -> Self {
        self.settings.limits.max_total_bytes = bytes;
        self
    }

    /// Most rooms with a history; broadcasts to further rooms get no position.
    pub fn max_rooms(mut self, rooms: usize) -> Self {
        self.settings.limits.max_rooms = rooms;
        self
    }

    /// Puts each broadcast's position into JSON object payloads as this
    /// field (a string), so clients of every transport see it.
    pub fn position_field(mut self, field: impl Into<String>) -> Self {
        self.settings.position_field = Some(field.into());
        self
    }

    /// Keeps a history only for the rooms `keep` accepts (every room by default).
    pub fn only(mut self, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.settings.rooms = Some(Arc::new(keep));
        self
    }
}
