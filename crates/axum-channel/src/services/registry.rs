//! The open sessions of one layer, every transport together, with one bound
//! on their number.
//!
//! A request that may open a session takes a [`Slot`] first, before any
//! answer goes out (a WebSocket's `101` included): a full layer refuses
//! with 503 before it upgrades anything. The slot becomes the session's
//! place in the registry when the session opens, and is given back if it
//! never does.

use crate::base::info::SessionKey;
use crate::base::link::Link;
use crate::base::sync::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why the registry did not take a session.
pub(crate) enum Refused {
    /// A SockJS session of the same key is registered already (another
    /// request created it meanwhile); it is handed back to be joined.
    KeyTaken(Arc<dyn Link>),
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<SessionKey, Arc<dyn Link>>,
    /// SockJS sessions by the id their client chose, which its requests name.
    by_sockjs_key: HashMap<Box<str>, SessionKey>,
}

/// Why no place could be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crowded {
    /// Every place under `max_sessions` is taken.
    Full,
    /// The client's address holds its share of places already.
    Address,
}

/// How many places are taken, by open sessions and by requests about to
/// open one, in all and per client address.
#[derive(Debug)]
struct Places {
    taken: AtomicUsize,
    max: usize,
    /// Places per address, and the most one address may take.
    per_address: Option<(usize, Mutex<HashMap<IpAddr, usize>>)>,
}

impl Places {
    fn take(&self, address: Option<IpAddr>) -> Result<(), Crowded> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < self.max).then_some(taken + 1)
            })
            .map_err(|_| Crowded::Full)?;
        if let (Some((max, counts)), Some(address)) = (&self.per_address, address) {
            let mut counts = lock(counts);
            let count = counts.entry(address).or_insert(0);
            if *count >= *max {
                drop(counts);
                self.taken.fetch_sub(1, Ordering::AcqRel);
                return Err(Crowded::Address);
            }
            *count += 1;
        }
        Ok(())
    }

    fn give_back(&self, address: Option<IpAddr>) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
        if let (Some((_, counts)), Some(address)) = (&self.per_address, address) {
            let mut counts = lock(counts);
            if let Some(count) = counts.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&address);
                }
            }
        }
    }
}

/// A place for one session under the bounds, taken before the session
/// opens. Dropped unused, it is given back.
#[derive(Debug)]
pub(crate) struct Slot {
    places: Option<Arc<Places>>,
    address: Option<IpAddr>,
}

impl Slot {
    /// The place now belongs to a registered session, given back when it leaves.
    fn settle(mut self) {
        self.places = None;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(places) = self.places.take() {
            places.give_back(self.address);
        }
    }
}

/// Open sessions by id.
pub(crate) struct Registry {
    sessions: Mutex<Sessions>,
    places: Arc<Places>,
    /// Signalled whenever a session leaves, for shutdown to wait on.
    removed: Notify,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("sessions", &self.len())
            .field("max_sessions", &self.places.max)
            .finish()
    }
}

impl Registry {
    /// A registry of at most `max_sessions`, and at most
    /// `max_per_address` from one client address when set.
    pub(crate) fn new(max_sessions: usize, max_per_address: Option<usize>) -> Self {
        Self {
            sessions: Mutex::new(Sessions::default()),
            places: Arc::new(Places {
                taken: AtomicUsize::new(0),
                max: max_sessions,
                per_address: max_per_address.map(|max| (max, Mutex::default())),
            }),
            removed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.sessions)
    }

    /// Takes a place for a session about to open from `address`.
    pub(crate) fn reserve(&self, address: Option<IpAddr>) -> Result<Slot, Crowded> {
        self.places.take(address)?;
        Ok(Slot {
            places: Some(self.places.clone()),
            address,
        })
    }

    /// The session with this id.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<dyn Link>> {
        let key = SessionKey::parse(id)?;
        self.get_key(key)
    }

    /// The session with this key.
    pub(crate) fn get_key(&self, key: SessionKey) -> Option<Arc<dyn Link>> {
        self.lock().by_id.get(&key).cloned()
    }

    /// The SockJS session its client named `key`.
    pub(crate) fn get_sockjs(&self, key: &str) -> Option<Arc<dyn Link>> {
        let sessions = self.lock();
        let id = sessions.by_sockjs_key.get(key)?;
        sessions.by_id.get(id).cloned()
    }

    /// Adds a session in the place `slot` holds, unless a SockJS session of
    /// its key exists already (then the slot is given back: joining an
    /// existing session takes no place).
    pub(crate) fn insert(&self, link: Arc<dyn Link>, slot: Slot) -> Result<(), Refused> {
        let mut sessions = self.lock();
        let sockjs_key = link.info().sockjs_key.as_ref();
        if let Some(existing) = sockjs_key
            .and_then(|key| sessions.by_sockjs_key.get(key))
            .and_then(|id| sessions.by_id.get(id))
        {
            return Err(Refused::KeyTaken(existing.clone()));
        }
        let id = link.info().key();
        if let Some(key) = sockjs_key {
            sessions.by_sockjs_key.insert(key.clone(), id);
        }
        sessions.by_id.insert(id, link);
        slot.settle();
        Ok(())
    }

    /// Forgets session `id`; `sockjs_key` is the id its SockJS client chose.
    pub(crate) fn remove(&self, id: SessionKey, sockjs_key: Option<&str>) {
        let removed = {
            let mut sessions = self.lock();
            if let Some(key) = sockjs_key {
                if sessions.by_sockjs_key.get(key) == Some(&id) {
                    sessions.by_sockjs_key.remove(key);
                }
            }
            sessions.by_id.remove(&id)
        };
        if let Some(link) = removed {
            let address = link.info().remote_addr.map(|addr| addr.ip());
            self.places.give_back(address);
            self.removed.notify_waiters();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Every open session.
    pub(crate) fn all(&self) -> Vec<Arc<dyn Link>> {
        self.lock().by_id.values().cloned().collect()
    }

    /// Every open session but those of `except`.
    pub(crate) fn all_except(&self, except: &[SessionKey]) -> Vec<Arc<dyn Link>> {
        self.lock()
            .by_id
            .iter()
            .filter(|(key, _)| !except.contains(key))
            .map(|(_, link)| link.clone())
            .collect()
    }

    /// Waits until no session is left.
    pub(crate) async fn emptied(&self) {
        loop {
            let removed = self.removed.notified();
            if self.len() == 0 {
                return;
            }
            removed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_bound_what_may_open_and_come_back_when_unused() {
        let registry = Registry::new(2, None);
        let first = registry.reserve(None).expect("a place");
        let second = registry.reserve(None).expect("a second place");
        assert_eq!(registry.reserve(None).unwrap_err(), Crowded::Full);
        drop(first);
        let third = registry.reserve(None).expect("the first place came back");
        drop((second, third));
        assert_eq!(registry.places.taken.load(Ordering::Acquire), 0);
    }

    #[test]
    fn one_address_takes_at_most_its_share() {
        let registry = Registry::new(10, Some(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = registry.reserve(Some(a)).expect("a place");
        let _second = registry.reserve(Some(a)).expect("a second place");
        assert_eq!(registry.reserve(Some(a)).unwrap_err(), Crowded::Address);
        let _other = registry.reserve(Some(b)).expect("another address has room");
        drop(first);
        registry.reserve(Some(a)).expect("a place came back");
    }
}
