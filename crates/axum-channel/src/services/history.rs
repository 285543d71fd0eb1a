//! Room history on this node: the kept broadcasts of the rooms the layer's
//! [`HistoryConfig`](crate::HistoryConfig) names, and their positions.
//!
//! A broadcast to such a room is given its position, stamped and queued
//! for the room's members under the histories' lock, so members receive a
//! room's messages in position order and a session recovering with
//! `join_since` joins between two broadcasts, never in the middle of one.

use crate::base::sync::lock;
use axum_channel_cluster::{Retention, RoomLog};
use axum_channel_protocol::history::{Histories, HistoryLimits, Position};
use axum_channel_protocol::{Payload, WireFormat};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Which rooms keep a history (all when none is given).
pub(crate) type RoomFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which rooms keep a history, how much, and where positions go in payloads.
#[derive(Clone, Default)]
pub(crate) struct HistorySettings {
    pub(crate) limits: HistoryLimits,
    pub(crate) position_field: Option<String>,
    pub(crate) rooms: Option<RoomFilter>,
}

impl fmt::Debug for HistorySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistorySettings")
            .field("limits", &self.limits)
            .field("position_field", &self.position_field)
            .field("every_room", &self.rooms.is_none())
            .finish()
    }
}

/// The histories of this node's rooms. In a cluster whose adapter has a
/// [`RoomLog`], the log is the history and gives the positions; the store
/// here keeps this node's copy of its recent part, in the log's positions.
pub(crate) struct RoomHistories {
    settings: HistorySettings,
    store: Mutex<Histories<Arc<Payload>>>,
    pub(crate) log: Option<Arc<dyn RoomLog>>,
    /// Rooms whose missing entries are being fetched from the log, and
    /// whether more went missing meanwhile.
    fills: Mutex<HashMap<String, bool>>,
    /// Signalled whenever the store took an entry from the log.
    pub(crate) advanced: Notify,
    /// Rooms this node stopped hearing the log of: their copies go before
    /// the store is next used (the rooms' index cannot take the store's
    /// lock, which is taken before it).
    forgotten: Mutex<Vec<String>>,
}

impl fmt::Debug for RoomHistories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomHistories")
            .field("store", &*lock(&self.store))
            .finish_non_exhaustive()
    }
}

impl RoomHistories {
    pub(crate) fn new(settings: HistorySettings, log: Option<Arc<dyn RoomLog>>) -> Self {
        // Epochs derive from a random seed, so no two runs share one.
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        let store = Histories::new(settings.limits, seed);
        // A copy of a log stays while the node hears the log, idle or not.
        let store = if log.is_some() {
            store.keep_idle_rooms()
        } else {
            store
        };
        Self {
            store: Mutex::new(store),
            settings,
            log,
            fills: Mutex::default(),
            advanced: Notify::new(),
            forgotten: Mutex::default(),
        }
    }

    /// This node no longer hears `room`'s log: its copy would go stale, so
    /// it goes (before the store is next locked).
    pub(crate) fn forget(&self, room: &str) {
        lock(&self.forgotten).push(room.to_owned());
    }

    /// What the log keeps of a room.
    pub(crate) fn retention(&self) -> Retention {
        Retention {
            max_messages: self.settings.limits.max_messages,
            max_age: self.settings.limits.max_age,
        }
    }

    /// Marks `room` as being filled from the log; false when a fill runs
    /// already (which is then told to look again before it ends).
    pub(crate) fn start_fill(&self, room: &str) -> bool {
        let mut fills = lock(&self.fills);
        match fills.get_mut(room) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                fills.insert(room.to_owned(), false);
                true
            }
        }
    }

    /// Ends a fill of `room`, unless entries went missing while it ran:
    /// then it must look again (true).
    pub(crate) fn end_fill(&self, room: &str) -> bool {
        let mut fills = lock(&self.fills);
        match fills.get_mut(room) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                fills.remove(room);
                false
            }
        }
    }

    /// True when broadcasts to `room` are kept.
    pub(crate) fn keeps(&self, room: &str) -> bool {
        self.settings.rooms.as_ref().is_none_or(|keep| keep(room))
    }

    /// The store, locked: hold it while a room's broadcast is stamped and
    /// queued, or while a recovering session reads and joins.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Histories<Arc<Payload>>> {
        let mut store = lock(&self.store);
        let forgotten = std::mem::take(&mut *lock(&self.forgotten));
        for room in forgotten {
            store.drop_room(&room);
        }
        store
    }

    /// `payload` at `position`, as every member (and every replay) gets it.
    pub(crate) fn stamp(&self, payload: &Payload, position: Position) -> Arc<Payload> {
        Arc::new(payload.at_position(
            self.settings.position_field.as_deref(),
            &position.to_string(),
        ))
    }
}

/// What a kept broadcast counts against the bounds: four times its
/// WebSocket form (room for each wire format's cached encoding) and 256
/// bytes for the entry itself.
pub(crate) fn kept_bytes(payload: &Payload) -> usize {
    let text = payload.encode(WireFormat::WebSocket).map_or(0, |b| b.len());
    text.saturating_mul(4).saturating_add(256)
}
