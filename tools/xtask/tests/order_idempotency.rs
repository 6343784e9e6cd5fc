//! No second order, ever (issue 22 item 2), on a real Apache Kafka broker: the Order API
//! (`order-producer serve`, as its own least-privilege identity, SASL PLAIN with the local
//! ACLs) is restarted at each point of a keyed request's life, and the same request is retried
//! after each restart. Every time, a second client reading `grocery.orders.v1` read_committed
//! finds the order exactly once, and the answer says what happened: `202` for a first-time
//! acceptance, `200` with `Idempotent-Replayed: true` for the replay of an earlier one.
//!
//! The points, each driven by an event (a log line, a process's exit), never by a sleep:
//! - **before the send**: the debug build's failpoint `before-send` aborts the process once the
//!   key is claimed, before the order is handed to the producer;
//! - **during the send**: failpoint `before-commit` aborts it once the broker has acknowledged
//!   the order's record inside the open transaction (the record is on the log, uncommitted);
//! - **after the send, before the answer**: failpoint `after-commit` aborts it once the
//!   transaction is committed, before the HTTP answer is written;
//! - **after the answer, before RECEIVED**: no fulfillment runs, the `202` arrives, and the
//!   process is SIGKILLed.
//!
//! Also: the same key from another client (`Client-Id`) is another order, and another body
//! under the same key is refused (`422 idempotency_key_reused`) after a restart too.
//!
//! Built only with the `real-broker` feature; run it with
//! `cargo test -p xtask --features real-broker --test order_idempotency -- --nocapture`.

mod order_api_support;

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::process::ExitStatusExt as _,
    process::ExitStatus,
    time::Duration,
};

use grocery_events::Order;
use local_stack::verify;
use order_api_support::{Answer, Run, WAIT, order_id_of_key, post_order};
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
};
use serde_json::{Value, json};
use uuid::Uuid;
use xtask::services::Process;

impl Run {
    /// Starts the Order API, with `failpoint` armed when given, and waits until it has
    /// restored its idempotency keys (it answers keyed requests from then on).
    fn api(&mut self, failpoint: Option<&str>) -> (Process, String) {
        let env: Vec<_> = failpoint
            .map(|point| ("ORDER_API_FAILPOINT", point))
            .into_iter()
            .collect();
        self.start_ready_api(&[], &env)
    }

    /// Per order id, every record of it on the log, committed or not (read_uncommitted, from
    /// the beginning until every wanted id has been seen and the topic stays quiet for two
    /// seconds, as `verify::committed_counts` reads): shows that a send interrupted inside its
    /// transaction really reached the broker.
    fn on_the_log(&self, wanted: &BTreeSet<Uuid>) -> BTreeMap<Uuid, u32> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.stack.bootstrap_servers())
            .set("group.id", format!("uncommitted-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("a read_uncommitted reader");
        let mut partitions = TopicPartitionList::new();
        for partition in 0..grocery_events::topics::PARTITIONS {
            partitions
                .add_partition_offset(grocery_events::topics::ORDERS, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&partitions).unwrap();
        let mut counts = BTreeMap::<Uuid, u32>::new();
        let mut quiet = 0;
        let deadline = std::time::Instant::now() + WAIT;
        while quiet < 4 && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => {
                    quiet = 0;
                    let id = message
                        .key()
                        .and_then(|key| Uuid::try_parse_ascii(key).ok());
                    if let Some(id) = id.filter(|id| wanted.contains(id)) {
                        *counts.entry(id).or_default() += 1;
                    }
                }
                Some(Err(error)) => panic!("reading {}: {error}", grocery_events::topics::ORDERS),
                None if counts.len() >= wanted.len() => quiet += 1,
                None => {}
            }
        }
        counts
    }

    /// Per order id, the records a second client reads back read_committed.
    fn committed(&self, wanted: &BTreeSet<Uuid>) -> BTreeMap<Uuid, u32> {
        let client = self.stack.client().unwrap();
        tokio::task::block_in_place(|| {
            verify::committed_counts::<Order>(
                self.stack.bootstrap_servers(),
                client.codec(),
                wanted,
                |order| order.order_id,
            )
        })
    }
}

/// `POST /orders` from `client` under `key`.
async fn post(
    base: &str,
    client: Option<&str>,
    key: &str,
    body: &Value,
) -> reqwest::Result<Answer> {
    post_order(base, client, Some(key), body).await
}

fn assert_aborted(status: ExitStatus, what: &str) {
    assert_eq!(
        status.signal(),
        Some(6),
        "{what}: the failpoint aborts the process (SIGABRT), got {status:?}"
    );
}

fn assert_killed(status: ExitStatus) {
    assert_eq!(status.signal(), Some(9), "SIGKILLed: {status:?}");
}

/// A failpoint that aborts the process before it answers: the request gets no answer, the
/// process's log names the failpoint and its exit status is SIGABRT's.
async fn abort_at(run: &mut Run, point: &str, client: &str, key: &str, body: &Value) {
    let (mut api, base) = run.api(Some(point));
    let answer = post(&base, Some(client), key, body).await;
    assert!(
        answer.is_err(),
        "the process aborts before it answers at {point}: {answer:?}"
    );
    api.stderr()
        .wait_for(WAIT, |line| {
            line.contains(&format!("failpoint {point} reached"))
        })
        .unwrap();
    assert_aborted(api.wait(WAIT).unwrap(), point);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_per_key_whatever_the_restarts() {
    let mut run = Run::start(grocery_stack::service_acls()).await;
    let catalog = grocery_store::Catalog::builtin();
    let items = catalog.items();
    let body = json!({ "items": [{ "sku": items[0].sku, "quantity": 2 }] });
    let other_body = json!({ "items": [{ "sku": items[1].sku, "quantity": 1 }] });
    let client = "shop-web";
    let mut wanted = BTreeSet::new();
    let mut expected: Vec<(&str, Uuid)> = Vec::new();

    // After the answer, before RECEIVED (no fulfillment runs): 202, SIGKILL, then the retry
    // is a replay of that acceptance.
    let key = "after-answer";
    let id = order_id_of_key(Some(client), key);
    let (mut api, base) = run.api(None);
    let first = post(&base, Some(client), key, &body).await.unwrap();
    assert_eq!((first.status, first.replayed), (202, false), "{first:?}");
    assert_eq!(first.body["order_id"], id.to_string(), "{first:?}");
    assert_killed(api.kill().unwrap());
    let (mut api, base) = run.api(None);
    let retry = post(&base, Some(client), key, &body).await.unwrap();
    assert_eq!((retry.status, retry.replayed), (200, true), "{retry:?}");
    assert_eq!(
        retry.body, first.body,
        "the replay repeats the first answer"
    );
    // Another body under the same key, after the restart: refused.
    let refused = post(&base, Some(client), key, &other_body).await.unwrap();
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(
        refused.body["code"], "idempotency_key_reused",
        "{refused:?}"
    );
    // The same key from another client (and from a caller naming none) is another order.
    let other_client = post(&base, Some("shop-app"), key, &body).await.unwrap();
    assert_eq!(
        (other_client.status, other_client.replayed),
        (202, false),
        "{other_client:?}"
    );
    let other_id = order_id_of_key(Some("shop-app"), key);
    assert_eq!(other_client.body["order_id"], other_id.to_string());
    assert_ne!(other_id, id);
    wanted.extend([id, other_id]);
    expected.extend([("after the answer", id), ("another client", other_id)]);
    let status = api.terminate(WAIT).unwrap();
    assert!(status.success(), "order-api stopped by SIGTERM: {status:?}");

    // Before the send, during it, after it and before the answer: the process aborts at the
    // failpoint; a restart and a retry of the same request follow.
    for (point, replay) in [
        ("before-send", false),
        ("before-commit", false),
        ("after-commit", true),
    ] {
        let key = format!("at-{point}");
        let id = order_id_of_key(Some(client), &key);
        abort_at(&mut run, point, client, &key, &body).await;
        let (mut api, base) = run.api(None);
        let retry = post(&base, Some(client), &key, &body).await.unwrap();
        let expect = if replay { (200, true) } else { (202, false) };
        assert_eq!(
            (retry.status, retry.replayed),
            expect,
            "retry after an abort at {point}: {retry:?}"
        );
        assert_eq!(retry.body["order_id"], id.to_string(), "{retry:?}");
        let again = post(&base, Some(client), &key, &body).await.unwrap();
        assert_eq!((again.status, again.replayed), (200, true), "{again:?}");
        let status = api.terminate(WAIT).unwrap();
        assert!(status.success(), "order-api stopped by SIGTERM: {status:?}");
        wanted.insert(id);
        expected.push((point, id));
    }

    let counts = run.committed(&wanted);
    for (point, id) in &expected {
        assert_eq!(
            counts.get(id).copied().unwrap_or(0),
            1,
            "order {id} ({point}) on {} read_committed: {counts:?}",
            grocery_events::topics::ORDERS
        );
    }
    // The send interrupted inside its transaction reached the log, aborted: two records of
    // that order there, one of them committed. Every other order has one record.
    let logged = run.on_the_log(&wanted);
    for (point, id) in &expected {
        let records = if *point == "before-commit" { 2 } else { 1 };
        assert_eq!(
            logged.get(id).copied().unwrap_or(0),
            records,
            "records of order {id} ({point}) on the log, committed or not: {logged:?}"
        );
    }
    println!(
        "{} keyed orders across {} Order API starts: each once on {} read_committed",
        expected.len(),
        run.starts,
        grocery_events::topics::ORDERS
    );
}
