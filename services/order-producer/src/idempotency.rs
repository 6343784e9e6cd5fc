//! `Idempotency-Key` on `POST /orders`: one order per key.
//!
//! The order id of a keyed request is [`order_id_for`]`(key)`, a UUIDv5 of the key in
//! [`KEY_NAMESPACE`], so the same key names the same order in every instance and after every
//! restart. This process remembers each key's request body and outcome ([`Keys`]): a retry
//! with the same body gets the first answer again (or waits for it while the order is in
//! flight); one with another body is refused. After a restart, a key whose order the history
//! view already knows is answered from the view without producing again.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use axum::http::HeaderValue;
use serde_json::Value;
use tokio::sync::watch;
use uuid::{Uuid, uuid};

/// The namespace of order ids made from idempotency keys (fixed: changing it would let a
/// retry after an upgrade create a second order).
pub(crate) const KEY_NAMESPACE: Uuid = uuid!("6f1d1c2e-3b0a-4c55-9e44-8d3a1f0b7c21");

/// Longest key accepted, in bytes.
pub(crate) const MAX_KEY_LEN: usize = 255;

/// Keys remembered at most; the oldest finished ones are forgotten first.
const MAX_KEYS: usize = 100_000;

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

/// How the order sent for a key ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The broker acknowledged it; the first answer's body.
    Accepted(Value),
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

struct Entry {
    body: Value,
    outcome: watch::Sender<Option<Outcome>>,
}

/// The keys this process has seen, with their request bodies and outcomes.
#[derive(Default)]
pub(crate) struct Keys {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

impl Keys {
    /// Whether this process has seen `key` (sent or sending its order).
    pub(crate) fn knows(&self, key: &str) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// Claims `key` for a request with `body`.
    pub(crate) fn claim(&self, key: &str, body: &Value) -> Claim {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get(key) {
            if entry.body != *body {
                return Claim::Conflict;
            }
            let failed = matches!(*entry.outcome.borrow(), Some(Outcome::Failed));
            if !failed {
                return Claim::Replay(entry.outcome.subscribe());
            }
            // The earlier send failed: this request sends again, under the same order id.
            entry.outcome.send_replace(None);
            return Claim::Send(entry.outcome.subscribe());
        }
        let (outcome, receiver) = watch::channel(None);
        inner.entries.insert(
            key.to_owned(),
            Entry {
                body: body.clone(),
                outcome,
            },
        );
        inner.order.push_back(key.to_owned());
        inner.forget_oldest();
        Claim::Send(receiver)
    }

    /// Records how the order sent for `key` ended, waking the requests waiting for it.
    pub(crate) fn finish(&self, key: &str, outcome: Outcome) {
        if let Some(entry) = self.lock().entries.get(key) {
            entry.outcome.send_replace(Some(outcome));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Forgets the oldest finished keys beyond [`MAX_KEYS`] (keys still in flight stay).
    fn forget_oldest(&mut self) {
        let mut kept = 0;
        while self.entries.len() > MAX_KEYS && kept < self.order.len() {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            let finished = self
                .entries
                .get(&key)
                .is_none_or(|entry| entry.outcome.borrow().is_some());
            if finished {
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
        keys.finish("k", Outcome::Accepted(json!({ "order_id": "x" })));
        let Claim::Replay(done) = keys.claim("k", &body) else {
            panic!("replay")
        };
        assert!(matches!(*done.borrow(), Some(Outcome::Accepted(_))));
    }
}
