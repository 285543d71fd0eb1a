//! The open sessions of one layer, every transport together, with one bound
//! on their number.

use crate::session::{Link, SessionKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why the registry did not take a session.
pub(crate) enum Refused {
    /// One more session than the configured bound.
    Full,
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

/// Open sessions by id.
pub(crate) struct Registry {
    sessions: Mutex<Sessions>,
    max_sessions: usize,
    /// Signalled whenever a session leaves, for shutdown to wait on.
    removed: Notify,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("sessions", &self.len())
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

/// Locks `mutex`. A panic while it was held cannot leave the maps or a
/// session's state half-written in a way later requests would trip over, so
/// the data is used as it is rather than poisoning every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    pub(crate) fn new(max_sessions: usize) -> Self {
        Self {
            sessions: Mutex::new(Sessions::default()),
            max_sessions,
            removed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.sessions)
    }

    /// The session with this id.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<dyn Link>> {
        let key = SessionKey::parse(id)?;
        self.lock().by_id.get(&key).cloned()
    }

    /// The SockJS session its client named `key`.
    pub(crate) fn get_sockjs(&self, key: &str) -> Option<Arc<dyn Link>> {
        let sessions = self.lock();
        let id = sessions.by_sockjs_key.get(key)?;
        sessions.by_id.get(id).cloned()
    }

    /// Adds a session unless a SockJS session of its key exists already,
    /// or the bound is reached. The key is checked first: joining an
    /// existing session takes no place of the bound.
    pub(crate) fn insert(&self, link: Arc<dyn Link>) -> Result<(), Refused> {
        let mut sessions = self.lock();
        let sockjs_key = link.info().sockjs_key.as_ref();
        if let Some(existing) = sockjs_key
            .and_then(|key| sessions.by_sockjs_key.get(key))
            .and_then(|id| sessions.by_id.get(id))
        {
            return Err(Refused::KeyTaken(existing.clone()));
        }
        if sessions.by_id.len() >= self.max_sessions {
            return Err(Refused::Full);
        }
        let id = link.info().key();
        if let Some(key) = sockjs_key {
            sessions.by_sockjs_key.insert(key.clone(), id);
        }
        sessions.by_id.insert(id, link);
        Ok(())
    }

    /// True when no further session may open.
    pub(crate) fn is_full(&self) -> bool {
        self.lock().by_id.len() >= self.max_sessions
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
