//! `Idempotency-Key` on `POST /orders`: one order per key and client, across restarts.
//!
//! **Scope.** A key belongs to the client that sent it: the `Client-Id` header (1 to 255
//! visible ASCII characters). The Order API has no authentication of its own: a gateway that
//! authenticates callers sets `Client-Id` from the authenticated principal (and drops a
//! caller's own), so two clients that pick the same key never share an order. A request
//! without `Client-Id` is in the anonymous scope, which every such caller shares.
//!
//! **Order id.** The order id of a keyed request is [`order_id_for`]`(client, key)`, a UUIDv5
//! in [`KEY_NAMESPACE`] of `client + "\n" + key` (of the key alone without `Client-Id`: the
//! ids of earlier releases), so the same key and client name the same order in every instance
//! and after every restart. Neither a key nor a client id can hold a newline, so two different
//! pairs never name the same string.
//!
//! **What is kept.** For each key the SHA-256 digest of its request body's JSON
//! ([`body_digest`]; the store keeps and compares its first 128 bits, argued in
//! [`grocery_store::keys`]) and its state ([`Keys`], a [`KeyStore`] keyed by order id): a retry
//! with the same body gets the first answer again (or waits for it while the order is in
//! flight); one with another body is refused. Only a key in flight has a channel its retries
//! wait on; a finished one keeps a 28-byte [`Receipt`] of its answer (partition, offset, trace
//! id; the order id is the key), about 120 bytes of heap per key in all (the channel each key
//! used to keep made it some 520). The order's record on `grocery.orders.v1` carries the
//! digest in its [`BODY_DIGEST`] header, in the same Kafka transaction as the order itself
//! (`crate::sender`), so what an instance accepted is on the topic with everything needed to
//! answer its retries.
//!
//! **After a restart** ([`crate::restore`]) the keys of the orders accepted within the key window
//! (`--idempotency-window-hours`, default 24) are read back from `grocery.orders.v1`,
//! read_committed, from the first offset of that window (`Client::replay_since`): not all
//! history. Until then keyed requests wait (within their deadline, then `503 keys_loading`).
//! The transaction the
//! previous instance left open was aborted when this one initialised its transactional
//! producer (same `transactional.id`), so what is read back is exactly what was committed: a
//! retry of an order whose transaction was aborted is sent again (once), one whose
//! transaction committed is replayed.
//!
//! **Bound.** At most [`DEFAULT_MAX_KEYS`](grocery_store::DEFAULT_MAX_KEYS) finished keys
//! (the oldest forgotten first; see [`KeyStore`]) plus the keys in flight: some 12 MB. A key is honoured
//! for the key window and while it is among the last that many keyed orders, whichever is
//! shorter; past that a retry is a new order.

use std::{sync::Mutex, time::Duration};

use axum::http::HeaderValue;
use grocery_store::{KeyClaim, KeyStore};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use uuid::{Uuid, uuid};

/// The namespace of order ids made from idempotency keys (fixed: changing it would let a
/// retry after an upgrade create a second order).
pub(crate) const KEY_NAMESPACE: Uuid = uuid!("6f1d1c2e-3b0a-4c55-9e44-8d3a1f0b7c21");

/// Longest key or client id accepted, in bytes.
pub(crate) const MAX_KEY_LEN: usize = 255;

/// The record header holding the hex SHA-256 of a keyed order's request body.
pub(crate) const BODY_DIGEST: &str = "idempotency-body-sha256";

/// The order id of a request with this idempotency key from `client` (`None`: no
/// `Client-Id`).
pub(crate) fn order_id_for(client: Option<&str>, key: &str) -> Uuid {
    match client {
        Some(client) => Uuid::new_v5(&KEY_NAMESPACE, format!("{client}\n{key}").as_bytes()),
        None => Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes()),
    }
}

/// The key in `value`, when it is 1 to [`MAX_KEY_LEN`] visible ASCII characters (`!` to `~`:
/// UUIDs, ULIDs, base64 and the like); otherwise why not.
pub(crate) fn parse_key(value: &HeaderValue) -> Result<String, String> {
    parse_token("Idempotency-Key", value)
}

/// The client id in `value` (`Client-Id`), by the same rules as a key.
pub(crate) fn parse_client(value: &HeaderValue) -> Result<String, String> {
    parse_token("Client-Id", value)
}

fn parse_token(name: &str, value: &HeaderValue) -> Result<String, String> {
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
        return Err(format!(
            "{name} must be 1 to {MAX_KEY_LEN} characters long, got {}",
            bytes.len()
        ));
    }
    if let Some(at) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!(
            "{name} may hold only visible ASCII characters (no spaces); character {} is not",
            at + 1
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// What is kept of a request body: the SHA-256 of its JSON as serde_json writes a
/// [`Value`] (object keys sorted, no whitespace), so bodies that mean the same compare equal.
pub(crate) use grocery_store::BodyDigest;

/// The digest of `body` (hashed as it is written: no copy of the body is made).
pub(crate) fn body_digest(body: &Value) -> BodyDigest {
    let mut hasher = Sha256::new();
    // Writing a `Value` into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut hasher, body);
    hasher.finalize().into()
}

/// `digest` as the [`BODY_DIGEST`] header's value: 64 lower-case hex digits.
pub(crate) fn digest_hex(digest: &BodyDigest) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The digest in a [`BODY_DIGEST`] header's value, if it is one.
pub(crate) fn parse_digest_hex(text: &[u8]) -> Option<BodyDigest> {
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(text.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

/// The first answer to a key's request: what a retry with the same body is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) order_id: Uuid,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// The W3C trace id, as its 16 bytes.
    pub(crate) trace_id: u128,
}

impl Accepted {
    /// The answer's body: `{"order_id", "partition", "offset", "trace_id"}`.
    pub(crate) fn body(&self) -> Value {
        json!({
            "order_id": self.order_id,
            "partition": self.partition,
            "offset": self.offset,
            "trace_id": format!("{:032x}", self.trace_id),
        })
    }
}

/// What the key store keeps of an [`Accepted`] (its order id is the key): 28 bytes of 8-byte
/// alignment, so a finished key's map bucket is 72 bytes (see [`KeyStore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Receipt {
    offset: i64,
    partition: i32,
    trace_id: [u8; 16],
}

impl Receipt {
    fn of(accepted: &Accepted) -> Self {
        Receipt {
            offset: accepted.offset,
            partition: accepted.partition,
            trace_id: accepted.trace_id.to_be_bytes(),
        }
    }

    fn accepted(&self, order_id: Uuid) -> Accepted {
        Accepted {
            order_id,
            partition: self.partition,
            offset: self.offset,
            trace_id: u128::from_be_bytes(self.trace_id),
        }
    }
}

/// How the order sent for a key ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The broker acknowledged it and its transaction committed; the first answer.
    Accepted(Accepted),
    /// The send failed and its transaction was aborted (not just late): a retry may send it
    /// again. Why, as the answer says it.
    Failed(crate::failure::Failure),
}

/// What a keyed request is to do.
pub(crate) enum Claim {
    /// The key is new (or its earlier send failed): send the order, then [`Keys::finish`].
    Send(watch::Receiver<Option<Outcome>>),
    /// The key was used with this body: wait for (or take) that outcome.
    Replay(watch::Receiver<Option<Outcome>>),
    /// The key was used with another body.
    Conflict,
}

/// How a key's request ended, for the requests waiting on it (`None`: in flight). Only a key
/// in flight has one; a finished key keeps its [`Receipt`].
type OutcomeSender = watch::Sender<Option<Outcome>>;

/// The key store: by order id, the waiters of a key in flight, the receipt of an accepted one.
type Store = KeyStore<Uuid, OutcomeSender, Receipt>;

/// The keys this process knows (claimed here or read back at start), by order id, with their
/// request bodies' digests and states.
pub(crate) struct Keys {
    inner: Mutex<Store>,
    /// Whether the keys of earlier runs have been read back ([`crate::restore`]).
    restored: watch::Sender<bool>,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            restored: watch::Sender::new(false),
        }
    }
}

/// A receiver already holding `outcome` (its sender dropped: `wait_for` answers at once).
fn finished(outcome: Outcome) -> watch::Receiver<Option<Outcome>> {
    watch::channel(Some(outcome)).1
}

impl Keys {
    /// Marks the keys of earlier runs read back ([`crate::restore`]), waking the waiting
    /// requests.
    pub(crate) fn mark_restored(&self) {
        self.restored.send_replace(true);
    }

    /// Waits up to `deadline` for the keys of earlier runs; whether they are known.
    pub(crate) async fn wait_restored(&self, deadline: Duration) -> bool {
        let mut restored = self.restored.subscribe();
        tokio::time::timeout(deadline, restored.wait_for(|done| *done))
            .await
            .is_ok_and(|done| done.is_ok())
    }

    /// Claims the key of `order_id` for a request with `body`.
    pub(crate) fn claim(&self, order_id: Uuid, body: &Value) -> Claim {
        let digest = body_digest(body);
        let mut inner = self.lock();
        let mut receiver = None;
        let claim = inner.claim(&order_id, &digest, || {
            let (outcome, rx) = watch::channel(None);
            receiver = Some(rx);
            outcome
        });
        match claim {
            // New, or the earlier send failed: this request sends, under the same order id.
            KeyClaim::Send => Claim::Send(receiver.expect("a claim to send makes its channel")),
            KeyClaim::InFlight(outcome) => Claim::Replay(outcome.subscribe()),
            KeyClaim::Accepted(receipt) => {
                Claim::Replay(finished(Outcome::Accepted(receipt.accepted(order_id))))
            }
            KeyClaim::Conflict => Claim::Conflict,
        }
    }

    /// Records how the order sent for `order_id`'s key ended, waking the requests waiting.
    pub(crate) fn finish(&self, order_id: Uuid, outcome: Outcome) {
        let receipt = match &outcome {
            Outcome::Accepted(accepted) => Some(Receipt::of(accepted)),
            Outcome::Failed(_) => None,
        };
        let waiters = self.lock().finish(&order_id, receipt);
        // Told after the store's lock is released; a waiter sees the value even though the
        // sender is dropped right after (the value's version changed before the close).
        if let Some(waiters) = waiters {
            waiters.send_replace(Some(outcome));
        }
    }

    /// Remembers an acceptance read back from the orders topic; whether it was new.
    pub(crate) fn remember(&self, digest: Option<BodyDigest>, accepted: Accepted) -> bool {
        self.lock()
            .remember(&accepted.order_id, digest.as_ref(), Receipt::of(&accepted))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_checked_and_map_to_fixed_order_ids() {
        assert!(parse_key(&HeaderValue::from_static("a1-B2_c3.d4~=/+")).is_ok());
        for bad in ["", "has space", &"k".repeat(MAX_KEY_LEN + 1)] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert!(parse_key(&value).is_err(), "{bad:?}");
        }
        let non_ascii = HeaderValue::from_bytes("clé".as_bytes()).unwrap();
        assert!(parse_key(&non_ascii).is_err());
        assert_eq!(order_id_for(None, "retry-1"), order_id_for(None, "retry-1"));
        assert_ne!(order_id_for(None, "retry-1"), order_id_for(None, "retry-2"));
        assert_eq!(order_id_for(None, "retry-1").get_version_num(), 5);
        // Scoped per client: the same key from two clients (or none) names three orders.
        let ids = [
            order_id_for(None, "retry-1"),
            order_id_for(Some("a"), "retry-1"),
            order_id_for(Some("b"), "retry-1"),
        ];
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        assert!(parse_client(&HeaderValue::from_static("shop-web")).is_ok());
        let bad = parse_client(&HeaderValue::from_static("a b")).unwrap_err();
        assert!(bad.starts_with("Client-Id"), "{bad}");
        let digest = body_digest(&json!({ "items": [] }));
        assert_eq!(
            parse_digest_hex(digest_hex(&digest).as_bytes()),
            Some(digest)
        );
        assert_eq!(parse_digest_hex(b"zz"), None);
    }

    const K: Uuid = Uuid::from_u128(7);

    #[test]
    fn same_body_replays_other_body_conflicts_failure_sends_again() {
        let keys = Keys::default();
        let body = json!({ "items": [{ "sku": "A", "quantity": 1 }] });
        let Claim::Send(_) = keys.claim(K, &body) else {
            panic!("a new key sends")
        };
        let Claim::Replay(waiting) = keys.claim(K, &body) else {
            panic!("same body replays")
        };
        assert!(waiting.borrow().is_none(), "still in flight");
        assert!(matches!(
            keys.claim(K, &json!({ "items": [] })),
            Claim::Conflict
        ));
        keys.finish(K, Outcome::Failed(crate::failure::Failure::Unavailable));
        assert!(
            matches!(*waiting.borrow(), Some(Outcome::Failed(_))),
            "the retry waiting is told"
        );
        let Claim::Send(_) = keys.claim(K, &body) else {
            panic!("a failed send is sent again")
        };
        let Claim::Replay(waiting) = keys.claim(K, &body) else {
            panic!("same body replays")
        };
        // The answer names the key's order id (what the store keeps is the rest of it).
        let accepted = Accepted {
            order_id: K,
            partition: 2,
            offset: 3,
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        };
        keys.finish(K, Outcome::Accepted(accepted));
        assert!(matches!(*waiting.borrow(), Some(Outcome::Accepted(a)) if a == accepted));
        let Claim::Replay(done) = keys.claim(K, &body) else {
            panic!("replay")
        };
        assert!(matches!(*done.borrow(), Some(Outcome::Accepted(a)) if a == accepted));
        assert_eq!(
            accepted.body(),
            json!({
                "order_id": "00000000-0000-0000-0000-000000000007",
                "partition": 2,
                "offset": 3,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            })
        );
        // The same body written another way (key order, spacing) is the same request.
        let reordered: Value =
            serde_json::from_str(r#"{ "items" : [ { "quantity":1, "sku":"A" } ] }"#).unwrap();
        assert!(matches!(keys.claim(K, &reordered), Claim::Replay(_)));
    }

    /// What a key keeps does not grow with its request body: claiming a key for a 1 MiB body
    /// keeps a few hundred bytes on the heap, as for a small one (the body used to be kept
    /// whole: up to axum's 2 MB limit × 100,000 keys). Measured by the heap this thread holds
    /// before and after the claim ([`counting`]).
    #[test]
    fn an_entry_keeps_a_digest_of_the_body_not_the_body() {
        let keys = Keys::default();
        let small = json!({ "items": [{ "sku": "A", "quantity": 1 }] });
        let big = json!({
            "items": [{ "sku": "A", "quantity": 1 }],
            "note": "x".repeat(1 << 20),
        });
        let kept = |key: Uuid, body: &Value| {
            let before = counting::held();
            assert!(matches!(keys.claim(key, body), Claim::Send(_)));
            counting::held() - before
        };
        let small_kept = kept(Uuid::from_u128(1), &small);
        let big_kept = kept(Uuid::from_u128(2), &big);
        assert!(
            big_kept < 1024,
            "claiming a key for a 1 MiB body kept {big_kept} bytes on the heap \
             ({small_kept} for a small body)"
        );
        // The large body is still told apart from another one, and replayed when the same.
        let mut other = big.clone();
        other["note"] = json!("x".repeat((1 << 20) - 1) + "y");
        assert!(matches!(
            keys.claim(Uuid::from_u128(2), &other),
            Claim::Conflict
        ));
        assert!(matches!(
            keys.claim(Uuid::from_u128(2), &big),
            Claim::Replay(_)
        ));
    }
}

/// The Order API under 64 MiB: what the key store holds per finished key, measured on the
/// heap (the bound is 100,000 keys). Each key is remembered as after a restart (the same
/// entry as a key whose request finished here), with a digest.
#[cfg(test)]
mod entry_size {
    use super::*;

    /// Heap bytes a finished key may hold, everything included (its map bucket at the map's
    /// worst load, its place in the eviction order): 100,000 keys in at most ~12 MiB.
    const MOST_PER_KEY: isize = 128;

    #[test]
    fn a_finished_key_holds_at_most_128_bytes() {
        const KEYS: u128 = 100_000;
        let before = counting::held();
        let keys = Keys::default();
        for n in 0..KEYS {
            let accepted = Accepted {
                order_id: Uuid::from_u128(n),
                partition: 1,
                offset: n as i64,
                trace_id: n,
            };
            assert!(keys.remember(Some([n as u8; 32]), accepted));
        }
        let per_key = (counting::held() - before) / KEYS as isize;
        assert!(
            per_key <= MOST_PER_KEY,
            "{KEYS} finished keys hold {per_key} bytes of heap each (at most {MOST_PER_KEY})"
        );
        // Still answered: the first, the last, another body.
        let body = json!({ "items": [] });
        assert!(matches!(
            keys.claim(Uuid::from_u128(0), &body),
            Claim::Conflict
        ));
    }
}

/// The test binary's allocator: the system's, counting the bytes each thread holds, so a test
/// can see what a call keeps on the heap.
#[cfg(test)]
mod counting {
    use std::{
        alloc::{GlobalAlloc, Layout, System},
        cell::Cell,
    };

    struct Counting;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    fn add(bytes: isize) {
        // Not reachable while the thread is being torn down; nothing is measured then.
        let _ = HELD.try_with(|held| held.set(held.get() + bytes));
    }

    /// Bytes allocated and not freed by this thread so far.
    pub(super) fn held() -> isize {
        HELD.with(Cell::get)
    }

    // SAFETY: every call is passed on to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as the caller's contract.
            let pointer = unsafe { System.alloc(layout) };
            if !pointer.is_null() {
                add(layout.size() as isize);
            }
            pointer
        }

        unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
            // SAFETY: as the caller's contract.
            unsafe { System.dealloc(pointer, layout) };
            add(-(layout.size() as isize));
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;
}
