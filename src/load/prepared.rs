//! What a driver works out once per payload of the plan (its wire form, its destination) and
//! looks up on every later send. The plan builds payloads as plain structs shared by `Arc`, so an
//! entry is keyed by the payload's address and holds the payload: no other can take the address
//! while the entry lives.

use std::sync::{Arc, Mutex};

use super::intmap::IntMap;

/// Payloads kept prepared; a plan with more variants than this prepares the rest on every send.
const MAX_ENTRIES: usize = 1 << 16;

/// Payloads of type `P`, each with what was prepared from it, `V` (cheap to clone).
pub(super) struct PreparedCache<P, V> {
    entries: Mutex<IntMap<usize, (Arc<P>, V)>>,
}

impl<P, V: Clone> PreparedCache<P, V> {
    pub(super) fn new() -> Self {
        PreparedCache {
            entries: Mutex::new(IntMap::default()),
        }
    }

    /// What was prepared from `payload`, made by `prepare` on its first send.
    pub(super) fn get_or_prepare<E>(
        &self,
        payload: &Arc<P>,
        prepare: impl FnOnce(&P) -> Result<V, E>,
    ) -> Result<V, E> {
        let address = Arc::as_ptr(payload) as usize;
        if let Some((_, prepared)) = lock(&self.entries).get(&address) {
            return Ok(prepared.clone());
        }
        // Prepared outside the lock; two first sends of one payload may both prepare it.
        let prepared = prepare(payload)?;
        let mut entries = lock(&self.entries);
        if entries.len() < MAX_ENTRIES {
            entries.insert(address, (Arc::clone(payload), prepared.clone()));
        }
        Ok(prepared)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Entries are inserted whole: a panic elsewhere cannot leave one half written.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_prepared_once_and_another_on_its_own() {
        let cache = PreparedCache::<String, usize>::new();
        let (a, b) = (Arc::new("a".to_owned()), Arc::new("bb".to_owned()));
        let mut made = 0;
        let mut prepare = |p: &String| -> Result<usize, ()> {
            made += 1;
            Ok(p.len())
        };
        assert_eq!(cache.get_or_prepare(&a, &mut prepare), Ok(1));
        assert_eq!(cache.get_or_prepare(&a, &mut prepare), Ok(1));
        assert_eq!(cache.get_or_prepare(&b, &mut prepare), Ok(2));
        assert_eq!(made, 2);
    }

    #[test]
    fn a_failed_preparation_is_not_kept() {
        let cache = PreparedCache::<String, usize>::new();
        let a = Arc::new("a".to_owned());
        assert_eq!(cache.get_or_prepare(&a, |_| Err("no")), Err("no"));
        assert_eq!(cache.get_or_prepare(&a, |p| Ok::<_, &str>(p.len())), Ok(1));
    }
}
