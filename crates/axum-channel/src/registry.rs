//! The open sessions of one layer, by id, with a bound on their number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Refusal to open one more session than the configured bound.
#[derive(Debug)]
pub(crate) struct RegistryFull;

/// Open sessions by id.
pub(crate) struct Registry<T: ?Sized> {
    sessions: Mutex<HashMap<String, Arc<T>>>,
    max_sessions: usize,
}

impl<T: ?Sized> std::fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("sessions", &self.len())
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

impl<T: ?Sized> Registry<T> {
    pub(crate) fn new(max_sessions: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            max_sessions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<T>>> {
        // A panic elsewhere cannot leave a HashMap half-updated, so the data is usable.
        crate::timer::lock(&self.sessions)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<T>> {
        self.lock().get(id).cloned()
    }

    /// Adds a session unless the bound is reached.
    pub(crate) fn insert(&self, id: String, session: Arc<T>) -> Result<(), RegistryFull> {
        let mut sessions = self.lock();
        if sessions.len() >= self.max_sessions {
            return Err(RegistryFull);
        }
        sessions.insert(id, session);
        Ok(())
    }

    /// True when no further session may open.
    pub(crate) fn is_full(&self) -> bool {
        self.lock().len() >= self.max_sessions
    }

    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Every open session, for shutting them all down.
    pub(crate) fn all(&self) -> Vec<Arc<T>> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_enforced_and_freed_by_removal() {
        let registry = Registry::new(1);
        registry.insert("a".into(), Arc::new(1)).unwrap();
        assert!(registry.is_full());
        assert!(registry.insert("b".into(), Arc::new(2)).is_err());
        registry.remove("a");
        registry.insert("b".into(), Arc::new(2)).unwrap();
        assert_eq!(registry.get("b").as_deref(), Some(&2));
        assert_eq!(registry.len(), 1);
    }
}
