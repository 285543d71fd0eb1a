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

/// How many places are taken, by open sessions and by requests about to
/// open one.
#[derive(Debug)]
struct Places {
    taken: AtomicUsize,
    max: usize,
}

/// A place for one session under the bound, taken before the session opens.
/// Dropped unused, it is given back.
#[derive(Debug)]
pub(crate) struct Slot {
    places: Option<Arc<Places>>,
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
            places.taken.fetch_sub(1, Ordering::AcqRel);
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
    pub(crate) fn new(max_sessions: usize) -> Self {
        Self {
            sessions: Mutex::new(Sessions::default()),
            places: Arc::new(Places {
                taken: AtomicUsize::new(0),
                max: max_sessions,
            }),
            removed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.sessions)
    }

    /// Takes a place for a session about to open; `None` when every place
    /// is taken.
    pub(crate) fn reserve(&self) -> Option<Slot> {
        let places = &self.places;
        places
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < places.max).then_some(taken + 1)
            })
            .ok()?;
        Some(Slot {
            places: Some(places.clone()),
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
        if removed.is_some() {
            self.places.taken.fetch_sub(1, Ordering::AcqRel);
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
        let registry = Registry::new(2);
        let first = registry.reserve().expect("a place");
        let second = registry.reserve().expect("a second place");
        assert!(registry.reserve().is_none(), "both places are taken");
        drop(first);
        let third = registry.reserve().expect("the first place came back");
        drop((second, third));
        assert_eq!(registry.places.taken.load(Ordering::Acquire), 0);
    }
}
