//! `Idempotency-Key` on `POST /orders`: one order per key.
//!
//! The order id of a keyed request is [`order_id_for`]`(key)`, a UUIDv5 of the key in
//! [`KEY_NAMESPACE`], so the same key names the same order in every instance and after every
//! restart. This process remembers each key's request body, as a SHA-256 digest of its JSON
//! ([`body_digest`]), and outcome ([`Keys`]): a retry with the same body gets the first answer
//! again (or waits for it while the order is in flight); one with another body is refused.
//! What an entry keeps is of fixed size whatever the body's (the digest, the answer's four
//! fields), and the store is a [`KeyStore`] (in `grocery-store`, where its bound and what
//! happens past it are documented): at most [`DEFAULT_MAX_KEYS`](grocery_store::DEFAULT_MAX_KEYS) finished keys, the oldest
//! forgotten first, plus the keys in flight. After a restart (or once a key is forgotten), a
//! key whose order the history view already knows is answered from the view without producing
//! again.

use std::sync::Mutex;

use axum::http::HeaderValue;
use grocery_store::{KeyClaim, KeyStore};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use uuid::{Uuid, uuid};

/// The namespace of order ids made from idempotency keys (fixed: changing it would let a
/// retry after an upgrade create a second order).
pub(crate) const KEY_NAMESPACE: Uuid = uuid!("6f1d1c2e-3b0a-4c55-9e44-8d3a1f0b7c21");

/// Longest key accepted, in bytes.
pub(crate) const MAX_KEY_LEN: usize = 255;

/// The order id of a request with this idempotency key.
pub(crate) fn order_id_for(key: &str) -> Uuid {
    Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes())
}

/// The key in `value`, when it is 1 to [`MAX_KEY_LEN`] visible ASCII characters (`!` to `~`:
/// UUIDs, ULIDs, base64 and the like); otherwise why not.
pub(crate) fn parse_key(value: &HeaderValue) -> Result<String, String> {
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters long, got {}",
            bytes.len()
        ));
    }
    if let Some(at) = bytes.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!(
            "Idempotency-Key may hold only visible ASCII characters (no spaces); character {} is not",
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

/// The first answer to a key's request, kept to answer its retries: four fixed-size fields.
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

/// How the order sent for a key ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The broker acknowledged it; the first answer.
    Accepted(Accepted),
    /// The send failed (not just late): a retry may send it again.
    Failed,
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

/// How a key's request ended, for the requests waiting on it (`None`: in flight).
type OutcomeSender = watch::Sender<Option<Outcome>>;

/// The keys this process has seen, with their request bodies' digests and outcomes.
#[derive(Default)]
pub(crate) struct Keys {
    inner: Mutex<KeyStore<OutcomeSender>>,
}

/// Whether a key's request has finished (a key in flight is never forgotten).
fn finished(outcome: &OutcomeSender) -> bool {
    outcome.borrow().is_some()
}

impl Keys {
    /// Whether this process has seen `key` (sent or sending its order).
    pub(crate) fn knows(&self, key: &str) -> bool {
        self.lock().contains(key)
    }

    /// Claims `key` for a request with `body`.
    pub(crate) fn claim(&self, key: &str, body: &Value) -> Claim {
        let digest = body_digest(body);
        let mut inner = self.lock();
        let mut receiver = None;
        let claim = inner.claim(
            key,
            digest,
            || {
                let (outcome, rx) = watch::channel(None);
                receiver = Some(rx);
                outcome
            },
            finished,
        );
        match claim {
            KeyClaim::New => Claim::Send(receiver.expect("a new key makes its channel")),
            KeyClaim::Conflict => Claim::Conflict,
            KeyClaim::Same(outcome) => {
                let failed = matches!(*outcome.borrow(), Some(Outcome::Failed));
                if !failed {
                    return Claim::Replay(outcome.subscribe());
                }
                // The earlier send failed: this request sends again, under the same order id.
                outcome.send_replace(None);
                Claim::Send(outcome.subscribe())
            }
        }
    }

    /// Records how the order sent for `key` ended, waking the requests waiting for it.
    pub(crate) fn finish(&self, key: &str, outcome: Outcome) {
        if let Some(sender) = self.lock().get(key) {
            sender.send_replace(Some(outcome));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyStore<OutcomeSender>> {
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
        assert_eq!(order_id_for("retry-1"), order_id_for("retry-1"));
        assert_ne!(order_id_for("retry-1"), order_id_for("retry-2"));
        assert_eq!(order_id_for("retry-1").get_version_num(), 5);
    }

    #[test]
    fn same_body_replays_other_body_conflicts_failure_sends_again() {
        let keys = Keys::default();
        let body = json!({ "items": [{ "sku": "A", "quantity": 1 }] });
        let Claim::Send(_) = keys.claim("k", &body) else {
            panic!("a new key sends")
        };
        let Claim::Replay(waiting) = keys.claim("k", &body) else {
            panic!("same body replays")
        };
        assert!(waiting.borrow().is_none(), "still in flight");
        assert!(matches!(
            keys.claim("k", &json!({ "items": [] })),
            Claim::Conflict
        ));
        keys.finish("k", Outcome::Failed);
        let Claim::Send(_) = keys.claim("k", &body) else {
            panic!("a failed send is sent again")
        };
        let accepted = Accepted {
            order_id: Uuid::from_u128(1),
            partition: 2,
            offset: 3,
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        };
        keys.finish("k", Outcome::Accepted(accepted));
        let Claim::Replay(done) = keys.claim("k", &body) else {
            panic!("replay")
        };
        assert!(matches!(*done.borrow(), Some(Outcome::Accepted(a)) if a == accepted));
        assert_eq!(
            accepted.body(),
            json!({
                "order_id": "00000000-0000-0000-0000-000000000001",
                "partition": 2,
                "offset": 3,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            })
        );
        // The same body written another way (key order, spacing) is the same request.
        let reordered: Value =
            serde_json::from_str(r#"{ "items" : [ { "quantity":1, "sku":"A" } ] }"#).unwrap();
        assert!(matches!(keys.claim("k", &reordered), Claim::Replay(_)));
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
        let kept = |key: &str, body: &Value| {
            let before = counting::held();
            assert!(matches!(keys.claim(key, body), Claim::Send(_)));
            counting::held() - before
        };
        let small_kept = kept("small", &small);
        let big_kept = kept("large", &big);
        assert!(
            big_kept < 1024,
            "claiming a key for a 1 MiB body kept {big_kept} bytes on the heap \
             ({small_kept} for a small body)"
        );
        // The large body is still told apart from another one, and replayed when the same.
        let mut other = big.clone();
        other["note"] = json!("x".repeat((1 << 20) - 1) + "y");
        assert!(matches!(keys.claim("large", &other), Claim::Conflict));
        assert!(matches!(keys.claim("large", &big), Claim::Replay(_)));
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
