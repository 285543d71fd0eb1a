//! Rooms: named groups of sessions, on every transport alike.
//!
//! The index maps each room to its members and each session to its rooms,
//! so a session that closes leaves all its rooms at once. A session in no
//! room costs nothing here.
//!
//! In a cluster, a room's first member on this node subscribes the node to
//! the room's topic and its last member unsubscribes it, under the index's
//! lock, so the adapter sees the changes in the order they happened. Every
//! member that joins while the subscription is on its way waits for it.

use super::history::RoomHistories;
use crate::base::info::SessionKey;
use crate::base::link::Link;
use crate::base::sync::lock;
use axum_channel_cluster::{Adapter, ClusterError, Topic};
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The members of one room.
type Members = HashMap<SessionKey, Arc<dyn Link>>;

/// The node's subscription to a room's topic, shared by the members that
/// wait for it.
pub(crate) type Subscription = Shared<BoxFuture<'static, Result<(), ClusterError>>>;

/// One room on this node.
struct Room {
    members: Members,
    subscription: Option<Subscription>,
    /// Recoveries that need the room's topics heard before their session
    /// is a member.
    pins: usize,
    /// Which time the room appeared on this node, so a subscription made
    /// for an earlier time does nothing to this one.
    generation: u64,
}

impl Room {
    fn is_unused(&self) -> bool {
        self.members.is_empty() && self.pins == 0
    }
}

#[derive(Default)]
struct Index {
    rooms: HashMap<Arc<str>, Room>,
    rooms_of: HashMap<SessionKey, Vec<Arc<str>>>,
    /// Rooms that appeared on this node so far.
    generations: u64,
}

/// Which sessions are in which rooms, on this node.
#[derive(Default)]
pub(crate) struct Rooms {
    /// Shared with the subscriptions, which look up whether their room is
    /// still here once they are made.
    index: Arc<Mutex<Index>>,
    /// The cluster's bus, told when a room appears on or leaves this node.
    adapter: Option<Arc<dyn Adapter>>,
    /// The rooms whose history log this node follows while it has members
    /// in them, when the cluster keeps histories in a log.
    logged: Option<Arc<RoomHistories>>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("rooms", &lock(&self.index).rooms.len())
            .finish()
    }
}

impl Rooms {
    pub(crate) fn new(
        adapter: Option<Arc<dyn Adapter>>,
        logged: Option<Arc<RoomHistories>>,
    ) -> Self {
        Self {
            index: Arc::default(),
            adapter,
            logged,
        }
    }

    /// True when this node hears `room`'s history log along with its topic.
    fn follows_log(&self, room: &str) -> bool {
        self.logged.as_ref().is_some_and(|h| h.keeps(room))
    }

    /// Subscribes the node to `room`'s topic (and log), for the room's
    /// `generation` here.
    fn subscribe(&self, adapter: &Arc<dyn Adapter>, room: &str, generation: u64) -> Subscription {
        let topic = adapter.subscribe(Topic::Room(room.to_owned()));
        if !self.follows_log(room) {
            return topic.shared();
        }
        let log = adapter.subscribe(Topic::Log(room.to_owned()));
        let history = self.logged.clone();
        let index = self.index.clone();
        let room = room.to_owned();
        async move {
            topic.await?;
            log.await?;
            let Some((history, room_log)) = history.and_then(|h| Some((h.clone(), h.log.clone()?)))
            else {
                return Ok(());
            };
            // Read once the node listens: every entry after it is heard.
            let last = room_log.last_position(&room).await?;
            let mut store = history.lock();
            let same = lock(&index)
                .rooms
                .get(room.as_str())
                .is_some_and(|entry| entry.generation == generation);
            if same {
                store.start_at(crate::base::sync::now(), &room, last);
            }
            Ok(())
        }
        .boxed()
        .shared()
    }

    /// True while `room` has members or pins here (in a cluster, while the
    /// node hears its topics).
    pub(crate) fn is_here(&self, room: &str) -> bool {
        lock(&self.index).rooms.contains_key(room)
    }

    /// `room`'s entry, made (and subscribed) if it is new; its name shared.
    fn entry<'a>(&self, index: &'a mut Index, room: &str) -> (Arc<str>, &'a mut Room) {
        let name: Arc<str> = match index.rooms.get_key_value(room) {
            Some((name, _)) => name.clone(),
            None => {
                index.generations += 1;
                Arc::from(room)
            }
        };
        let generation = index.generations;
        let entry = index.rooms.entry(name.clone()).or_insert_with(|| Room {
            members: Members::new(),
            subscription: self
                .adapter
                .as_ref()
                .map(|a| self.subscribe(a, room, generation)),
            pins: 0,
            generation,
        });
        // A subscription that failed (the bus was down) is asked for again.
        if let (Some(adapter), Some(Err(_))) = (
            &self.adapter,
            entry.subscription.as_ref().and_then(|s| s.peek()),
        ) {
            entry.subscription = Some(self.subscribe(adapter, room, entry.generation));
        }
        (name, entry)
    }

    /// Adds `session` to `room`; in a cluster, returns the subscription the
    /// membership waits for.
    pub(crate) fn join(&self, session: &Arc<dyn Link>, room: &str) -> Option<Subscription> {
        let key = session.info().key();
        let mut index = lock(&self.index);
        let (name, entry) = self.entry(&mut index, room);
        let subscription = entry.subscription.clone();
        if entry.members.insert(key, session.clone()).is_none() {
            index.rooms_of.entry(key).or_default().push(name);
        }
        subscription
    }

    /// Keeps `room`'s topics heard on this node until [`unpin`](Self::unpin),
    /// members or not; returns the subscription to wait for.
    pub(crate) fn pin(&self, room: &str) -> Option<Subscription> {
        let mut index = lock(&self.index);
        let (_, entry) = self.entry(&mut index, room);
        entry.pins += 1;
        entry.subscription.clone()
    }

    /// Lets go of a [`pin`](Self::pin).
    pub(crate) fn unpin(&self, room: &str) {
        let mut index = lock(&self.index);
        let Some(entry) = index.rooms.get_mut(room) else {
            return;
        };
        entry.pins = entry.pins.saturating_sub(1);
        if entry.is_unused() {
            index.rooms.remove(room);
            self.emptied(room);
        }
    }

    /// The room left this node: its topics are no longer needed here.
    fn emptied(&self, room: &str) {
        if let Some(adapter) = &self.adapter {
            adapter.unsubscribe(Topic::Room(room.to_owned()));
            if let Some(history) = self.logged.as_ref().filter(|h| h.keeps(room)) {
                adapter.unsubscribe(Topic::Log(room.to_owned()));
                history.forget(room);
            }
        }
    }

    /// Takes `session` out of `room`; returns whether it was in it.
    pub(crate) fn leave(&self, key: SessionKey, room: &str) -> bool {
        let mut index = lock(&self.index);
        let Some(entry) = index.rooms.get_mut(room) else {
            return false;
        };
        let was_member = entry.members.remove(&key).is_some();
        if entry.is_unused() {
            index.rooms.remove(room);
            self.emptied(room);
        }
        if was_member {
            if let Some(rooms) = index.rooms_of.get_mut(&key) {
                rooms.retain(|name| &**name != room);
                if rooms.is_empty() {
                    index.rooms_of.remove(&key);
                }
            }
        }
        was_member
    }

    /// Takes `key` out of every room.
    pub(crate) fn leave_all(&self, key: SessionKey) {
        let mut index = lock(&self.index);
        let Some(rooms) = index.rooms_of.remove(&key) else {
            return;
        };
        for room in rooms {
            if let Some(entry) = index.rooms.get_mut(&room) {
                entry.members.remove(&key);
                if entry.is_unused() {
                    index.rooms.remove(&room);
                    self.emptied(&room);
                }
            }
        }
    }

    /// How many sessions of this node are in `room`.
    pub(crate) fn count(&self, room: &str) -> usize {
        lock(&self.index)
            .rooms
            .get(room)
            .map_or(0, |entry| entry.members.len())
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
            .is_some_and(|entry| entry.members.contains_key(&key))
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
        if let [room] = rooms {
            // One room: its members are distinct already.
            let Some(entry) = index.rooms.get(room.as_str()) else {
                return Vec::new();
            };
            let mut members = Vec::with_capacity(entry.members.len());
            members.extend(
                entry
                    .members
                    .iter()
                    .filter(|(key, _)| !except.contains(key))
                    .map(|(_, link)| link.clone()),
            );
            return members;
        }
        let mut seen: HashMap<SessionKey, Arc<dyn Link>> = HashMap::new();
        for room in rooms {
            if let Some(entry) = index.rooms.get(room.as_str()) {
                for (key, link) in &entry.members {
                    if !except.contains(key) {
                        seen.entry(*key).or_insert_with(|| link.clone());
                    }
                }
            }
        }
        seen.into_values().collect()
    }

    /// The members of `room` in none of the rooms `not_in`, without
    /// `except`: who the copy of a broadcast heard on `room`'s topic is for.
    pub(crate) fn members_of_copy(
        &self,
        room: &str,
        not_in: &[String],
        except: &[SessionKey],
    ) -> Vec<Arc<dyn Link>> {
        let index = lock(&self.index);
        let Some(entry) = index.rooms.get(room) else {
            return Vec::new();
        };
        let in_earlier = |key: &SessionKey| {
            not_in.iter().any(|other| {
                index
                    .rooms
                    .get(other.as_str())
                    .is_some_and(|entry| entry.members.contains_key(key))
            })
        };
        entry
            .members
            .iter()
            .filter(|(key, _)| !except.contains(key) && !in_earlier(key))
            .map(|(_, link)| link.clone())
            .collect()
    }
}
