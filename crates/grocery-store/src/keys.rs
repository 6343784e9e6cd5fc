//! The Order API's idempotency key store: for each key (`K`: in the Order API the order id
//! derived from the caller's `Client-Id` and `Idempotency-Key`) a digest of its request body
//! and where its request is ([`KeyState`]: in flight, accepted, failed), within a fixed bound.
//!
//! [`KeyStore`] is pure bookkeeping: the service decides what a key and a digest are (a
//! SHA-256 of the body's JSON), what the requests waiting on a key in flight wait on (`W`: a
//! channel in the Order API) and what is kept of an accepted request to answer its retries
//! (`R`: a receipt). Keys come from requests ([`KeyStore::claim`], then
//! [`KeyStore::finish`]) and, after a restart, from what the service reads back of the orders
//! it accepted earlier ([`KeyStore::remember`]).
//!
//! **States.** A new key is in flight with the `W` the claim makes; [`KeyStore::finish`] makes
//! it accepted (with its receipt) or failed, handing back the `W` so its waiters can be told.
//! A retry with the same body finds the waiters (in flight) or the receipt (accepted); one of a
//! failed key is in flight again (the order is sent again); one with another body conflicts,
//! whatever the state.
//!
//! **Size of an entry.** A finished key keeps no `W`: only the key, the first 16 bytes of its
//! body's digest ([`KEPT_DIGEST_BYTES`]) and `R`. The Order API's key is a 16-byte order id
//! and its receipt 28 bytes, so an entry is a 72-byte map bucket plus the key again in the
//! eviction order: some 120 bytes of heap per key with the map's spare capacity, 12 MB at the
//! default bound (the waiters' channel each key used to keep took about 520). The digest is
//! cut to 128 bits: two different bodies under one key are taken for the same request only if
//! their SHA-256s agree on their first 128 bits, a chance of 2^-128 for bodies not made to
//! collide; making such a pair takes about 2^64 hashes and gains nothing, since a key belongs
//! to one client (the Order API scopes keys by `Client-Id`) and the second body would only be
//! answered with that client's own first order.
//!
//! **Bound.** At most [`KeyStore::limit`] keys ([`DEFAULT_MAX_KEYS`] by default) are kept once
//! their request has **finished**; past it the oldest finished keys are forgotten first. A key
//! forgotten here is no longer known: a retry of it is taken for a new request (the Order API
//! then sends the order again under the same order id, which is a second record of it: the
//! store's limit, with the key window the service reads back at start, is how long a key is
//! honoured). Keys whose request is still **in flight** are never forgotten (their retries wait
//! on them), so the store can exceed the limit by the requests in flight at once, which the
//! server's connections bound.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
};

/// Finished keys a [`KeyStore`] keeps by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A request body's digest as the service computes it (SHA-256 in the Order API).
pub type BodyDigest = [u8; 32];

/// The bytes of a [`BodyDigest`] a [`KeyStore`] keeps and compares (see the module docs).
pub const KEPT_DIGEST_BYTES: usize = 16;

/// What is kept of a digest: its first [`KEPT_DIGEST_BYTES`] bytes.
type KeptDigest = [u8; KEPT_DIGEST_BYTES];

fn kept(digest: &BodyDigest) -> KeptDigest {
    let mut kept = [0; KEPT_DIGEST_BYTES];
    kept.copy_from_slice(&digest[..KEPT_DIGEST_BYTES]);
    kept
}

/// Where a key's request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState<W, R> {
    /// Being sent; what its retries wait on.
    InFlight(W),
    /// Accepted: what is kept to answer its retries.
    Accepted(R),
    /// The send failed (not just late): a retry sends it again.
    Failed,
}

/// What [`KeyStore::claim`] found for a key.
#[derive(Debug)]
pub enum KeyClaim<'a, W, R> {
    /// The key is new, or its earlier send failed: it is now in flight with the `W` the claim
    /// made, and the request is to be sent.
    Send,
    /// The same body is in flight: what to wait on.
    InFlight(&'a W),
    /// The same body was accepted (or a key remembered without its body's digest): the
    /// receipt.
    Accepted(&'a R),
    /// The key was used with another body.
    Conflict,
}

/// A key's entry: its body's digest and state. A key remembered without a digest is
/// [`Slot::AcceptedAnyBody`] (any body counts as the same): the digest's presence is in the
/// state's tag, so an entry is 16 bytes plus the state.
#[derive(Debug)]
struct Entry<W, R> {
    digest: KeptDigest,
    slot: Slot<W, R>,
}

/// A [`KeyState`] as an entry keeps it.
#[derive(Debug)]
enum Slot<W, R> {
    InFlight(W),
    Accepted(R),
    /// Accepted, remembered without its body's digest.
    AcceptedAnyBody(R),
    Failed,
}

impl<W, R> Slot<W, R> {
    fn finished(&self) -> bool {
        !matches!(self, Slot::InFlight(_))
    }

    fn state(&self) -> KeyState<&W, &R> {
        match self {
            Slot::InFlight(waiters) => KeyState::InFlight(waiters),
            Slot::Accepted(receipt) | Slot::AcceptedAnyBody(receipt) => KeyState::Accepted(receipt),
            Slot::Failed => KeyState::Failed,
        }
    }
}

/// Idempotency keys with their bodies' digests and states, bounded (see the module docs).
#[derive(Debug)]
pub struct KeyStore<K, W, R> {
    entries: HashMap<K, Entry<W, R>>,
    /// Keys in the order they were first claimed (the oldest first).
    order: VecDeque<K>,
    limit: usize,
}

impl<K: Eq + Hash + Clone, W, R> Default for KeyStore<K, W, R> {
    fn default() -> Self {
        Self::with_limit(DEFAULT_MAX_KEYS)
    }
}

impl<K: Eq + Hash + Clone, W, R> KeyStore<K, W, R> {
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

    /// The state of `key`, when it is stored.
    pub fn state(&self, key: &K) -> Option<KeyState<&W, &R>> {
        self.entries.get(key).map(|entry| entry.slot.state())
    }

    /// Claims `key` for a request whose body has `digest`. A new key (or a failed one with the
    /// same body) is put in flight with the `W` that `make` returns ([`KeyClaim::Send`]); a new
    /// key may make the oldest finished keys beyond the limit be forgotten.
    pub fn claim(
        &mut self,
        key: &K,
        digest: &BodyDigest,
        make: impl FnOnce() -> W,
    ) -> KeyClaim<'_, W, R> {
        let digest = kept(digest);
        if !self.entries.contains_key(key) {
            self.insert(key, digest, Slot::InFlight(make()));
            return KeyClaim::Send;
        }
        let entry = self.entries.get_mut(key).expect("checked above");
        if entry.digest != digest && !matches!(entry.slot, Slot::AcceptedAnyBody(_)) {
            return KeyClaim::Conflict;
        }
        match entry.slot {
            Slot::InFlight(ref waiters) => KeyClaim::InFlight(waiters),
            Slot::Accepted(ref receipt) | Slot::AcceptedAnyBody(ref receipt) => {
                KeyClaim::Accepted(receipt)
            }
            Slot::Failed => {
                entry.slot = Slot::InFlight(make());
                KeyClaim::Send
            }
        }
    }

    /// Records how the request of `key` ended: accepted with `receipt`, or failed (`None`).
    /// Returns what its waiters wait on (to tell them), if the key was in flight; a key not
    /// stored or not in flight is left as it is.
    pub fn finish(&mut self, key: &K, receipt: Option<R>) -> Option<W> {
        let entry = self.entries.get_mut(key)?;
        if entry.slot.finished() {
            return None;
        }
        let slot = match receipt {
            Some(receipt) => Slot::Accepted(receipt),
            None => Slot::Failed,
        };
        match std::mem::replace(&mut entry.slot, slot) {
            Slot::InFlight(waiters) => Some(waiters),
            Slot::Accepted(_) | Slot::AcceptedAnyBody(_) | Slot::Failed => None,
        }
    }

    /// Stores `key` as accepted with `digest` (`None`: unknown, any body counts as the same)
    /// and `receipt`, unless it is stored already: what a service read back of a request an
    /// earlier instance finished. Returns whether it was new. The oldest finished keys beyond
    /// the limit are then forgotten, as for [`KeyStore::claim`].
    pub fn remember(&mut self, key: &K, digest: Option<&BodyDigest>, receipt: R) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        let (digest, slot) = match digest {
            Some(digest) => (kept(digest), Slot::Accepted(receipt)),
            None => ([0; KEPT_DIGEST_BYTES], Slot::AcceptedAnyBody(receipt)),
        };
        self.insert(key, digest, slot);
        true
    }

    fn insert(&mut self, key: &K, digest: KeptDigest, slot: Slot<W, R>) {
        self.entries.insert(key.clone(), Entry { digest, slot });
        self.order.push_back(key.clone());
        self.forget_oldest();
    }

    /// Forgets the oldest finished keys beyond the limit (keys in flight stay, in order).
    fn forget_oldest(&mut self) {
        let mut kept = 0;
        while self.entries.len() > self.limit && kept < self.order.len() {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            let done = self
                .entries
                .get(&key)
                .is_none_or(|entry| entry.slot.finished());
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

    type Store<K> = KeyStore<K, u8, u32>;

    #[test]
    fn same_body_finds_the_state_another_body_conflicts() {
        let mut keys: Store<String> = KeyStore::with_limit(10);
        let k = "k".to_owned();
        assert!(matches!(keys.claim(&k, &digest(1), || 7), KeyClaim::Send));
        assert!(matches!(
            keys.claim(&k, &digest(1), || 0),
            KeyClaim::InFlight(7)
        ));
        assert!(matches!(
            keys.claim(&k, &digest(2), || 0),
            KeyClaim::Conflict
        ));
        assert_eq!(
            keys.finish(&k, Some(42)),
            Some(7),
            "the waiters are handed back"
        );
        assert_eq!(keys.finish(&k, None), None, "finished once");
        assert!(matches!(
            keys.claim(&k, &digest(1), || 0),
            KeyClaim::Accepted(42)
        ));
        assert!(matches!(
            keys.claim(&k, &digest(2), || 0),
            KeyClaim::Conflict
        ));
        assert_eq!(keys.finish(&"other".to_owned(), Some(1)), None);
    }

    /// A failed send is sent again by a retry with the same body (in flight again, with new
    /// waiters); another body still conflicts.
    #[test]
    fn a_failed_key_is_sent_again_by_a_retry_with_the_same_body() {
        let mut keys: Store<u32> = KeyStore::with_limit(10);
        assert!(matches!(keys.claim(&1, &digest(1), || 1), KeyClaim::Send));
        assert_eq!(keys.finish(&1, None), Some(1));
        assert_eq!(keys.state(&1), Some(KeyState::Failed));
        assert!(matches!(
            keys.claim(&1, &digest(2), || 2),
            KeyClaim::Conflict
        ));
        assert!(matches!(keys.claim(&1, &digest(1), || 3), KeyClaim::Send));
        assert_eq!(keys.state(&1), Some(KeyState::InFlight(&3)));
        assert_eq!(keys.finish(&1, Some(9)), Some(3));
        assert_eq!(keys.state(&1), Some(KeyState::Accepted(&9)));
    }

    /// Only the first 16 bytes of a digest are kept and compared: bodies whose digests differ
    /// there conflict (the last of those bytes included); beyond them they are not told apart.
    #[test]
    fn the_first_16_bytes_of_a_digest_are_compared() {
        let mut keys: Store<u32> = KeyStore::with_limit(10);
        let first = digest(1);
        keys.claim(&1, &first, || 0);
        let mut within = first;
        within[KEPT_DIGEST_BYTES - 1] ^= 1;
        assert!(matches!(keys.claim(&1, &within, || 0), KeyClaim::Conflict));
        let mut beyond = first;
        beyond[KEPT_DIGEST_BYTES] ^= 1;
        assert!(matches!(
            keys.claim(&1, &beyond, || 0),
            KeyClaim::InFlight(_)
        ));
    }

    /// Keys read back after a restart behave as accepted ones: the same body is the same
    /// request, another body conflicts; one remembered without a digest takes any body; they
    /// count towards the limit.
    #[test]
    fn remembered_keys_answer_as_accepted_ones() {
        let mut keys: Store<u32> = KeyStore::with_limit(2);
        assert!(keys.remember(&1, Some(&digest(1)), 10));
        assert!(!keys.remember(&1, Some(&digest(2)), 9), "stored already");
        assert!(matches!(
            keys.claim(&1, &digest(1), || 5),
            KeyClaim::Accepted(10)
        ));
        assert!(matches!(
            keys.claim(&1, &digest(2), || 5),
            KeyClaim::Conflict
        ));
        assert!(keys.remember(&2, None, 20));
        assert!(matches!(
            keys.claim(&2, &digest(7), || 5),
            KeyClaim::Accepted(20)
        ));
        assert!(keys.remember(&3, Some(&digest(3)), 30));
        assert_eq!(keys.len(), 2);
        assert!(!keys.contains(&1) && keys.contains(&3));
    }

    /// N > limit finished keys: the store stays at the limit and keeps the last ones.
    #[test]
    fn past_the_limit_the_oldest_finished_keys_are_forgotten() {
        const LIMIT: usize = 100;
        let mut keys: Store<String> = KeyStore::with_limit(LIMIT);
        for n in 0..1_000 {
            let key = format!("key-{n}");
            keys.claim(&key, &digest(0), || 0);
            keys.finish(&key, Some(n));
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
        let mut keys: Store<u32> = KeyStore::with_limit(3);
        // 0 and 1 in flight, the rest finished.
        for n in 0..10 {
            keys.claim(&n, &digest(0), || 0);
            if n >= 2 {
                keys.finish(&n, Some(n));
            }
        }
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&0) && keys.contains(&1) && keys.contains(&9));
        // Five in flight at once: the store holds them all (bounded by the requests in flight).
        for n in 10..13 {
            keys.claim(&n, &digest(0), || 0);
        }
        assert_eq!(keys.len(), 5);
        // They finish; the next claim brings the store back to its limit, oldest first.
        for n in [0, 1, 10, 11, 12] {
            keys.finish(&n, None);
        }
        keys.claim(&13, &digest(0), || 0);
        keys.finish(&13, Some(13));
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&11) && keys.contains(&12) && keys.contains(&13));
    }

    /// The Order API's entry (a 16-byte order id; a one-pointer waiters' handle; a 28-byte
    /// receipt of 8-byte alignment) is a 72-byte map bucket: what the module docs' figure of
    /// some 120 bytes per key rests on.
    #[test]
    fn an_order_api_entry_is_a_72_byte_bucket() {
        type Receipt = (i64, i32, [u8; 16]);
        let bucket = size_of::<([u8; 16], Entry<Box<u8>, Receipt>)>();
        assert!(bucket <= 72, "a bucket is {bucket} bytes");
    }
}
