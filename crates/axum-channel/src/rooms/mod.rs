//! Rooms: named groups of sessions, on every transport alike, and the
//! broadcasts that reach them.
//!
//! The index maps each room to its members and each session to its rooms,
//! so a session that closes leaves all its rooms at once. A session in no
//! room costs nothing here.

pub(crate) mod broadcast;

use crate::registry::lock;
use crate::session::{Link, SessionKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The members of one room.
type Members = HashMap<SessionKey, Arc<dyn Link>>;

#[derive(Default)]
struct Index {
    rooms: HashMap<Arc<str>, Members>,
    rooms_of: HashMap<SessionKey, Vec<Arc<str>>>,
}

/// Which sessions are in which rooms, on this node.
#[derive(Default)]
pub(crate) struct Rooms {
    index: Mutex<Index>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("rooms", &lock(&self.index).rooms.len())
            .finish()
    }
}

/// What a join changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Joined {
    /// The session was not in the room before.
    pub(crate) added: bool,
    /// The room had no member on this node before.
    pub(crate) first_here: bool,
}

impl Rooms {
    /// Adds `session` to `room`.
    pub(crate) fn join(&self, session: &Arc<dyn Link>, room: &str) -> Joined {
        let key = session.info().key();
        let mut index = lock(&self.index);
        let first_here = !index.rooms.contains_key(room);
        let name: Arc<str> = match index.rooms.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => Arc::from(room),
        };
        let members = index.rooms.entry(name.clone()).or_default();
        let added = members.insert(key, session.clone()).is_none();
        if added {
            index.rooms_of.entry(key).or_default().push(name);
        }
        Joined { added, first_here }
    }

    /// Takes `session` out of `room`; returns whether it was in it and
    /// whether the room has no member on this node any more.
    pub(crate) fn leave(&self, key: SessionKey, room: &str) -> (bool, bool) {
        let mut index = lock(&self.index);
        let Some(members) = index.rooms.get_mut(room) else {
            return (false, false);
        };
        let was_member = members.remove(&key).is_some();
        let emptied = members.is_empty();
        if emptied {
            index.rooms.remove(room);
        }
        if was_member {
            if let Some(rooms) = index.rooms_of.get_mut(&key) {
                rooms.retain(|name| &**name != room);
                if rooms.is_empty() {
                    index.rooms_of.remove(&key);
                }
            }
        }
        (was_member, emptied)
    }

    /// Takes `key` out of every room; returns the rooms left with no member
    /// on this node.
    pub(crate) fn leave_all(&self, key: SessionKey) -> Vec<Arc<str>> {
        let mut index = lock(&self.index);
        let Some(rooms) = index.rooms_of.remove(&key) else {
            return Vec::new();
        };
        let mut emptied = Vec::new();
        for room in rooms {
            if let Some(members) = index.rooms.get_mut(&room) {
                members.remove(&key);
                if members.is_empty() {
                    index.rooms.remove(&room);
                    emptied.push(room);
                }
            }
        }
        emptied
    }

    /// How many sessions of this node are in `room`.
    pub(crate) fn count(&self, room: &str) -> usize {
        lock(&self.index).rooms.get(room).map_or(0, HashMap::len)
    }

    /// The rooms `key` is in.
    pub(crate) fn rooms_of(&self, key: SessionKey) -> Vec<String> {
        lock(&self.index)
            .rooms_of
            .get(&key)
            .map(|rooms| rooms.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default()
    }

    /// True when `key` is in `room`.
    pub(crate) fn contains(&self, key: SessionKey, room: &str) -> bool {
        lock(&self.index)
            .rooms
            .get(room)
            .is_some_and(|members| members.contains_key(&key))
    }

    /// The rooms with members on this node.
    pub(crate) fn names(&self) -> Vec<String> {
        lock(&self.index)
            .rooms
            .keys()
            .map(|r| r.to_string())
            .collect()
    }

    /// Every member of any of `rooms`, each once, without `except`.
    pub(crate) fn members_of(&self, rooms: &[String], except: &[SessionKey]) -> Vec<Arc<dyn Link>> {
        let index = lock(&self.index);
        let mut seen: HashMap<SessionKey, Arc<dyn Link>> = HashMap::new();
        for room in rooms {
            if let Some(members) = index.rooms.get(room.as_str()) {
                for (key, link) in members {
                    if !except.contains(key) {
                        seen.entry(*key).or_insert_with(|| link.clone());
                    }
                }
            }
        }
        seen.into_values().collect()
    }
}
