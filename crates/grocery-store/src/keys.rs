//! The Order API's idempotency key store: for each key (`K`: in the Order API the order id
//! derived from the caller's `Client-Id` and `Idempotency-Key`) the digest of its request body
//! and what the service keeps of the request's outcome (`V`), within a fixed bound.
//!
//! [`KeyStore`] is pure bookkeeping: the service decides what a key and a digest are (a
//! SHA-256 of the body's JSON) and what `V` holds (a channel the retries of the key wait on).
//! Keys come from requests ([`KeyStore::claim`]) and, after a restart, from what the service
//! reads back of the orders it accepted earlier ([`KeyStore::remember`]).
//!
//! **Bound.** At most [`KeyStore::limit`] keys ([`DEFAULT_MAX_KEYS`] by default) are kept once
//! their request has **finished**; past it the oldest finished keys are forgotten first. A key
//! forgotten here is no longer known: a retry of it is taken for a new request (the Order API
//! then sends the order again under the same order id, which is a second record of it: the
//! store's limit, with the key window the service reads back at start, is how long a key is
//! honoured). Keys whose request is still **in flight** are never forgotten (their retries wait
//! on them), so the store can exceed the limit by the requests in flight at once, which the
//! server's connections bound. An entry is a key, a 32-byte digest and `V`.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
};

/// Finished keys a [`KeyStore`] keeps by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// What is kept of a request body: a digest of it (SHA-256 in the Order API).
pub type BodyDigest = [u8; 32];

/// What [`KeyStore::claim`] found for a key.
#[derive(Debug)]
pub enum KeyClaim<'a, V> {
    /// The key is new; it is now stored with the body and `V`.
    New,
    /// The key was used with the same body (or remembered without its body's digest): its
    /// value.
    Same(&'a mut V),
    /// The key was used with another body.
    Conflict,
}

/// Idempotency keys with their bodies' digests and values, bounded (see the module docs).
/// A digest is `None` for a key remembered without one (an order accepted before digests were
/// kept with it): any body then counts as the same.
#[derive(Debug)]
pub struct KeyStore<K, V> {
    entries: HashMap<K, (Option<BodyDigest>, V)>,
    /// Keys in the order they were first claimed (the oldest first).
    order: VecDeque<K>,
    limit: usize,
}

impl<K: Eq + Hash + Clone, V> Default for KeyStore<K, V> {
    fn default() -> Self {
        Self::with_limit(DEFAULT_MAX_KEYS)
    }
}

impl<K: Eq + Hash + Clone, V> KeyStore<K, V> {
    /// An empty store keeping at most `limit` finished keys (at least 1).
    pub fn with_limit(limit: usize) -> Self {
        KeyStore {
            entries: HashMap::new(),
            order: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// The number of finished keys kept at most.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `key` is stored.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Keys stored, finished and in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`, when it is stored.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, value)| value)
    }

    /// Claims `key` for a request whose body has `digest`. A new key is stored with the value
    /// `make` returns, and then the oldest keys beyond the limit for which `finished` answers
    /// true are forgotten.
    pub fn claim(
        &mut self,
        key: &K,
        digest: BodyDigest,
        make: impl FnOnce() -> V,
        finished: impl Fn(&V) -> bool,
    ) -> KeyClaim<'_, V> {
        if self.entries.contains_key(key) {
            let (stored, value) = self.entries.get_mut(key).expect("checked above");
            return if stored.is_none_or(|stored| stored == digest) {
                KeyClaim::Same(value)
            } else {
                KeyClaim::Conflict
            };
        }
        self.insert(key, Some(digest), make(), finished);
        KeyClaim::New
    }

    /// Stores `key` with `digest` (`None`: unknown, any body counts as the same) and `value`,
    /// unless it is stored already: what a service read back of a request an earlier instance
    /// finished. Returns whether it was new. The oldest keys beyond the limit for which
    /// `finished` answers true are then forgotten, as for [`KeyStore::claim`].
    pub fn remember(
        &mut self,
        key: &K,
        digest: Option<BodyDigest>,
        value: V,
        finished: impl Fn(&V) -> bool,
    ) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        self.insert(key, digest, value, finished);
        true
    }

    fn insert(
        &mut self,
        key: &K,
        digest: Option<BodyDigest>,
        value: V,
        finished: impl Fn(&V) -> bool,
    ) {
        self.entries.insert(key.clone(), (digest, value));
        self.order.push_back(key.clone());
        self.forget_oldest(finished);
    }

    /// Forgets the oldest finished keys beyond the limit (keys in flight stay, in order).
    fn forget_oldest(&mut self, finished: impl Fn(&V) -> bool) {
        let mut kept = 0;
        while self.entries.len() > self.limit && kept < self.order.len() {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            let done = self
                .entries
                .get(&key)
                .is_none_or(|(_, value)| finished(value));
            if done {
                self.entries.remove(&key);
            } else {
                self.order.push_back(key);
                kept += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> BodyDigest {
        [n; 32]
    }

    #[test]
    fn same_body_finds_the_value_another_body_conflicts() {
        let mut keys = KeyStore::with_limit(10);
        assert!(matches!(
            keys.claim(&"k".to_owned(), digest(1), || 7, |_| true),
            KeyClaim::New
        ));
        match keys.claim(&"k".to_owned(), digest(1), || 0, |_| true) {
            KeyClaim::Same(value) => *value += 1,
            other => panic!("{other:?}"),
        }
        assert_eq!(keys.get(&"k".to_owned()), Some(&8));
        assert!(matches!(
            keys.claim(&"k".to_owned(), digest(2), || 0, |_| true),
            KeyClaim::Conflict
        ));
    }

    /// Keys read back after a restart behave as claimed ones: the same body is the same
    /// request, another body conflicts; one remembered without a digest takes any body; they
    /// count towards the limit.
    #[test]
    fn remembered_keys_answer_as_claimed_ones() {
        let mut keys: KeyStore<u32, u8> = KeyStore::with_limit(2);
        assert!(keys.remember(&1, Some(digest(1)), 0, |_| true));
        assert!(
            !keys.remember(&1, Some(digest(2)), 9, |_| true),
            "stored already"
        );
        assert!(matches!(
            keys.claim(&1, digest(1), || 5, |_| true),
            KeyClaim::Same(0)
        ));
        assert!(matches!(
            keys.claim(&1, digest(2), || 5, |_| true),
            KeyClaim::Conflict
        ));
        assert!(keys.remember(&2, None, 0, |_| true));
        assert!(matches!(
            keys.claim(&2, digest(7), || 5, |_| true),
            KeyClaim::Same(_)
        ));
        assert!(keys.remember(&3, Some(digest(3)), 0, |_| true));
        assert_eq!(keys.len(), 2);
        assert!(!keys.contains(&1) && keys.contains(&3));
    }

    /// N > limit finished keys: the store stays at the limit and keeps the last ones.
    #[test]
    fn past_the_limit_the_oldest_finished_keys_are_forgotten() {
        const LIMIT: usize = 100;
        let mut keys = KeyStore::with_limit(LIMIT);
        for n in 0..1_000 {
            keys.claim(&format!("key-{n}"), digest(0), || (), |()| true);
            assert!(keys.len() <= LIMIT);
        }
        assert_eq!(keys.len(), LIMIT);
        assert!((900..1_000).all(|n| keys.contains(&format!("key-{n}"))));
        assert!(!keys.contains(&"key-899".to_owned()));
    }

    /// Keys in flight are never forgotten: the oldest finished ones go instead, and once the
    /// in-flight ones finish they are forgotten in their turn.
    #[test]
    fn keys_in_flight_stay_past_the_limit() {
        let mut keys: KeyStore<String, bool> = KeyStore::with_limit(3);
        // key-0 and key-1 in flight (false), the rest finished.
        for n in 0..2 {
            keys.claim(&format!("key-{n}"), digest(0), || false, |done| *done);
        }
        for n in 2..10 {
            keys.claim(&format!("key-{n}"), digest(0), || true, |done| *done);
        }
        assert_eq!(keys.len(), 3);
        assert!(
            keys.contains(&"key-0".to_owned())
                && keys.contains(&"key-1".to_owned())
                && keys.contains(&"key-9".to_owned())
        );
        // Five in flight at once: the store holds them all (bounded by the requests in flight).
        for n in 10..13 {
            keys.claim(&format!("key-{n}"), digest(0), || false, |done| *done);
        }
        assert_eq!(keys.len(), 5);
        // They finish; the next claim brings the store back to its limit, oldest first.
        for n in [0, 1, 10, 11, 12] {
            if let KeyClaim::Same(done) =
                keys.claim(&format!("key-{n}"), digest(0), || false, |done| *done)
            {
                *done = true;
            }
        }
        keys.claim(&"key-13".to_owned(), digest(0), || true, |done| *done);
        assert_eq!(keys.len(), 3);
        assert!(
            keys.contains(&"key-11".to_owned())
                && keys.contains(&"key-12".to_owned())
                && keys.contains(&"key-13".to_owned())
        );
    }
}
