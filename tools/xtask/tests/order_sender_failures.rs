//! The Order API's transactional sender when the broker says no, or the caller leaves, on a
//! real Apache Kafka broker (the Order API as its own least-privilege identity, SASL PLAIN
//! with the local ACLs; `--view-from history`, so that no latest-state writer shares its
//! transactional-id grant):
//!
//! - **its transactional id refused**: never granted, the requests waiting (a keyed one for
//!   the keys of earlier runs, one without a key in the sender's queue) are answered
//!   `503 transactional_id_refused` and the API stops with exit status 3 and an error naming
//!   the refusal; granted and then revoked while it runs, the request that
//!   meets the refusal is answered `503 transactional_id_refused` (its order not stored), the
//!   API stops with exit status 3, and once the grant is back a restarted API sends the retry
//!   of that request once (`202`) and replays the order accepted before (`200`); the same
//!   for its write on the orders topic revoked (`503 orders_topic_refused`, exit status 3);
//! - **an order larger than the broker accepts** (`max.message.bytes` of the orders topic set
//!   below it): `413 order_too_large`, retried the same; the API keeps accepting other orders,
//!   also ones sent beside it (a transaction that meets a record too large is aborted and its
//!   other orders sent again, each alone if need be);
//! - **a request whose client leaves before the commit** (the debug build's failpoint
//!   `hold:before-commit` holds the transaction until SIGUSR1): the API logs that the client
//!   left, commits the order all the same, and a retry of the same key replays it.
//!
//! Every time, a second client reading `grocery.orders.v1` read_committed finds each accepted
//! order once and no refused one; the exit status of every process is checked.
//!
//! Built only with the `real-broker` feature; run it with
//! `cargo test -p xtask --features real-broker --test order_sender_failures -- --test-threads=1 --nocapture`.

mod order_api_support;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read as _, Write as _},
    time::Duration,
};

use grocery_stack::ORDER_PRODUCER;
use local_stack::broker::{AclOperation, AclResource, AclRule};
use order_api_support::{Answer, Run, WAIT, order_id_of_key, post_order};
use rdkafka::{
    ClientConfig, Message as _,
    admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier},
    client::DefaultClientContext,
    producer::{BaseProducer, Producer as _},
};
use serde_json::{Value, json};
use uuid::Uuid;
use xtask::services::Process;

/// The Order API's exit status when the brokers refuse it (service-kit's `EXIT_REFUSED`).
const EXIT_REFUSED: i32 = 3;

/// The ACLs that let the Order API use its transactional ids (`order-api-*`).
fn transactional_id_grants() -> Vec<AclRule> {
    [AclOperation::Write, AclOperation::Describe]
        .into_iter()
        .map(|op| {
            AclRule::allow(
                format!("User:{ORDER_PRODUCER}"),
                AclResource::TransactionalId,
                "order-api-",
                op,
            )
            .prefixed()
        })
        .collect()
}

impl Run {
    /// Starts the Order API (with `env` besides `RUST_LOG`) and waits until it listens.
    fn api(&mut self, env: &[(&str, &str)]) -> (Process, String) {
        self.start_api(
            &[
                "--view-from",
                "history",
                // Long enough that no answer below is the deadline's.
                "--deadline-ms",
                "60000",
            ],
            env,
        )
    }

    /// [`api`](Self::api), then waits until it has restored its idempotency keys (its
    /// transactions initialised: it sends from then on).
    fn ready_api(&mut self, env: &[(&str, &str)]) -> (Process, String) {
        let (api, base) = self.api(env);
        api.stderr()
            .wait_for(WAIT, |line| line.contains("idempotency keys restored"))
            .unwrap();
        (api, base)
    }

    /// Whether the broker refuses (`true`) or grants (`false`) a transactional id under
    /// `order-api-` to the Order API's identity: a producer of its own initialises
    /// transactions as `order-api-probe`.
    fn probe_refused(&self) -> bool {
        let mut config = ClientConfig::new();
        for line in std::fs::read_to_string(&self.props).unwrap().lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').unwrap();
            if key.trim().starts_with("schema.registry")
                || key.trim().starts_with("basic.auth")
                || key.trim().starts_with("bearer.auth")
            {
                continue;
            }
            config.set(key.trim(), value.trim());
        }
        let producer: BaseProducer = config
            .set("transactional.id", "order-api-probe")
            .create()
            .expect("a probe producer");
        match producer.init_transactions(WAIT) {
            Ok(()) => false,
            Err(error) => {
                let refused = error.to_string().contains("authorization failed");
                assert!(refused, "the probe failed otherwise: {error}");
                true
            }
        }
    }

    /// Waits until the broker's authorizer says `refused` for the Order API's transactional
    /// ids (an ACL change reaches the broker's authorizer after the admin call returns).
    fn wait_probe(&self, refused: bool) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.probe_refused() != refused {
            assert!(
                std::time::Instant::now() < deadline,
                "the broker never {} the transactional ids",
                if refused { "refused" } else { "granted" }
            );
        }
    }

    /// Sets the orders topic's `max.message.bytes`.
    async fn limit_record_size(&self, bytes: usize) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.stack.bootstrap_servers())
            .create()
            .unwrap();
        let value = bytes.to_string();
        let config = AlterConfig::new(ResourceSpecifier::Topic(grocery_events::topics::ORDERS))
            .set("max.message.bytes", &value);
        let results = admin
            .alter_configs([&config], &AdminOptions::new())
            .await
            .unwrap();
        for result in results {
            result.unwrap();
        }
    }

    /// Per order id, the records a second client reads back read_committed from the
    /// beginning, every key counted: until each of `present` has been seen and the topic has
    /// stayed quiet for two seconds.
    fn committed(&self, present: &BTreeSet<Uuid>) -> BTreeMap<Uuid, u32> {
        let consumer = local_stack::verify::read_committed_reader(
            self.stack.bootstrap_servers(),
            grocery_events::topics::ORDERS,
        );
        let mut counts = BTreeMap::<Uuid, u32>::new();
        let mut quiet = 0;
        let deadline = std::time::Instant::now() + WAIT;
        while quiet < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "orders {present:?} not all read back: {counts:?}"
            );
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => {
                    quiet = 0;
                    let id = message
                        .key()
                        .and_then(|key| Uuid::try_parse_ascii(key).ok())
                        .expect("an order keyed by its id");
                    *counts.entry(id).or_default() += 1;
                }
                Some(Err(error)) => panic!("reading {}: {error}", grocery_events::topics::ORDERS),
                None if present.iter().all(|id| counts.contains_key(id)) => quiet += 1,
                None => {}
            }
        }
        counts
    }
}

async fn post(base: &str, key: Option<&str>, body: &Value) -> Answer {
    try_post(base, key, body).await.expect("an answer")
}

/// `POST /orders` from `shop-web`, under `key` when given.
async fn try_post(base: &str, key: Option<&str>, body: &Value) -> reqwest::Result<Answer> {
    post_order(base, Some("shop-web"), key, body).await
}

fn order_id(answer: &Answer) -> Uuid {
    answer.body["order_id"]
        .as_str()
        .and_then(|id| Uuid::try_parse(id).ok())
        .unwrap_or_else(|| panic!("an order id in {answer:?}"))
}

fn one_line(sku_index: usize) -> Value {
    let items = grocery_store::Catalog::builtin().items().to_vec();
    json!({ "items": [{ "sku": items[sku_index].sku, "quantity": 1 }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_id_never_granted_stops_the_api_with_an_error_naming_it() {
    let grants = transactional_id_grants();
    let acls = grocery_stack::service_acls()
        .into_iter()
        .filter(|rule| !grants.contains(rule))
        .collect();
    let mut run = Run::start(acls).await;
    // Held before its transactions are initialised, so that a keyed request (waiting for the
    // keys of earlier runs) and one without a key (queued for the sender) are waiting when
    // the broker refuses.
    let (mut api, base) = run.api(&[
        ("ORDER_API_FAILPOINT", "hold:before-init"),
        ("RUST_LOG", "info,order_producer=debug"),
    ]);
    api.stderr()
        .wait_for(WAIT, |line| line.contains("failpoint before-init holding"))
        .unwrap();
    let keyed = tokio::spawn({
        let base = base.clone();
        async move { try_post(&base, Some("keyed"), &one_line(0)).await }
    });
    api.stderr()
        .wait_for(WAIT, |line| line.contains("the keys of earlier runs first"))
        .unwrap();
    let unkeyed = tokio::spawn({
        let base = base.clone();
        async move { try_post(&base, None, &one_line(1)).await }
    });
    api.stderr()
        .wait_for(WAIT, |line| line.contains("order queued for the sender"))
        .unwrap();
    release(&api);
    for (what, answer) in [("keyed", keyed), ("unkeyed", unkeyed)] {
        let answer = answer
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("{what}: {error}; {:#?}", problems(&api)));
        assert_eq!(
            (answer.status, &answer.body["code"]),
            (503, &json!("transactional_id_refused")),
            "{what}: {answer:?}"
        );
    }
    let status = api.wait(WAIT).unwrap();
    assert_eq!(
        status.code(),
        Some(EXIT_REFUSED),
        "exit status of an Order API refused its transactional id: {status:?}; {:?}",
        api.stderr().all()
    );
    let error = api
        .stderr()
        .find("error: ")
        .unwrap_or_else(|| panic!("no error line: {:?}", api.stderr().all()));
    assert!(
        error.contains("Transactional Id authorization failed"),
        "the error names the refusal: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_id_revoked_while_running_is_answered_and_stops_the_api() {
    let mut run = Run::start(grocery_stack::service_acls()).await;
    let (mut api, base) = run.ready_api(&[]);
    let before = post(&base, Some("before-revoke"), &one_line(0)).await;
    assert_eq!((before.status, before.replayed), (202, false), "{before:?}");

    run.stack
        .kafka_broker()
        .unwrap()
        .revoke(transactional_id_grants())
        .await
        .unwrap();
    run.wait_probe(true);
    let refused = post(&base, Some("after-revoke"), &one_line(1)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        refused.body["code"], "transactional_id_refused",
        "{refused:?}"
    );
    let status = api.wait(WAIT).unwrap();
    assert_eq!(
        status.code(),
        Some(EXIT_REFUSED),
        "exit status once the transactional id is refused: {status:?}; {:?}",
        api.stderr().all()
    );
    assert!(
        api.stderr()
            .find("error: ")
            .is_some_and(|line| line.contains("Transactional Id authorization failed")),
        "an error line names the refusal: {:?}",
        api.stderr().all()
    );

    // The grant is back: the refused request's retry is sent once, the earlier one replayed.
    run.stack
        .kafka_broker()
        .unwrap()
        .allow(transactional_id_grants())
        .await
        .unwrap();
    run.wait_probe(false);
    let (mut api, base) = run.ready_api(&[]);
    let retry = post(&base, Some("after-revoke"), &one_line(1)).await;
    assert_eq!((retry.status, retry.replayed), (202, false), "{retry:?}");
    let again = post(&base, Some("before-revoke"), &one_line(0)).await;
    assert_eq!((again.status, again.replayed), (200, true), "{again:?}");
    assert_eq!(again.body, before.body);
    let status = api.terminate(WAIT).unwrap();
    assert!(status.success(), "order-api stopped by SIGTERM: {status:?}");

    let (first, second) = (order_id(&before), order_id(&retry));
    let counts = run.committed(&BTreeSet::from([first, second]));
    assert_eq!(
        (counts.get(&first), counts.get(&second)),
        (Some(&1), Some(&1)),
        "each order once read_committed: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_topic_write_revoked_while_running_is_answered_and_stops_the_api() {
    let mut run = Run::start(grocery_stack::service_acls()).await;
    let (mut api, base) = run.ready_api(&[]);
    let before = post(&base, Some("before-revoke"), &one_line(0)).await;
    assert_eq!((before.status, before.replayed), (202, false), "{before:?}");
    let write = AclRule::allow(
        format!("User:{ORDER_PRODUCER}"),
        AclResource::Topic,
        grocery_events::topics::ORDERS,
        AclOperation::Write,
    );
    run.stack
        .kafka_broker()
        .unwrap()
        .revoke(vec![write])
        .await
        .unwrap();
    // Each request until the broker's authorizer has the change is accepted (and counted).
    let mut accepted = BTreeSet::from([order_id(&before)]);
    let refused = loop {
        let answer = try_post(&base, None, &one_line(1))
            .await
            .unwrap_or_else(|error| panic!("{error}: {:#?}", api.stderr().all()));
        if answer.status != 202 {
            break answer;
        }
        accepted.insert(order_id(&answer));
        assert!(
            accepted.len() < 100,
            "the revocation never reached the broker"
        );
    };
    assert_eq!(
        (refused.status, &refused.body["code"]),
        (503, &json!("orders_topic_refused")),
        "{refused:?}; {:#?}",
        problems(&api)
    );
    let status = api.wait(WAIT).unwrap();
    assert_eq!(
        status.code(),
        Some(EXIT_REFUSED),
        "exit status once the topic write is refused: {status:?}; {:#?}",
        problems(&api)
    );
    let counts = run.committed(&accepted);
    for id in &accepted {
        assert_eq!(counts.get(id), Some(&1), "order {id}: {counts:?}");
    }
    assert_eq!(counts.len(), accepted.len(), "no refused order: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_too_large_for_the_broker_is_refused_and_the_others_go_on() {
    let run = &mut Run::start(grocery_stack::service_acls()).await;
    // One order line is well under a kilobyte on the wire; every catalog item in one order
    // (200 lines of SKU and name) is several.
    run.limit_record_size(1024).await;
    // The first transaction is held open, so that the orders sent meanwhile (the large one
    // among small ones) go out together in the next.
    let (api, base) = run.ready_api(&[
        ("ORDER_API_FAILPOINT", "hold:before-commit"),
        ("RUST_LOG", "info,order_producer::sender=debug"),
    ]);
    let mut api = api;
    let items: Vec<Value> = grocery_store::Catalog::builtin()
        .items()
        .iter()
        .take(200)
        .map(|item| json!({ "sku": item.sku, "quantity": 1 }))
        .collect();
    let large = json!({ "items": items });

    let held = tokio::spawn({
        let base = base.clone();
        async move { post(&base, Some("held"), &one_line(0)).await }
    });
    api.stderr()
        .wait_for(WAIT, |line| {
            line.contains("failpoint before-commit holding")
        })
        .unwrap();
    let beside = tokio::spawn({
        let (base, large) = (base.clone(), large.clone());
        async move {
            let (first, second) = (one_line(1), one_line(2));
            tokio::join!(
                post(&base, Some("large"), &large),
                post(&base, None, &first),
                post(&base, None, &second),
            )
        }
    });
    // Queued: the held order and the three sent beside it (read line by line as they come).
    let mut queued = 0;
    let mut index = 0;
    while queued < 4 {
        let line = api
            .stderr()
            .line(index, WAIT)
            .unwrap_or_else(|| panic!("4 orders queued: {:#?}", problems(&api)));
        queued += usize::from(line.contains("order queued for the sender"));
        index += 1;
    }
    release(&api);
    let held = held.await.unwrap();
    assert_eq!(held.status, 202, "{held:?}");
    let (too_large, small_1, small_2) = beside.await.unwrap();
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert_eq!(too_large.body["code"], "order_too_large", "{too_large:?}");
    let mut accepted = BTreeSet::from([order_id(&held)]);
    for answer in [&small_1, &small_2] {
        assert_eq!(answer.status, 202, "{answer:?}; {:#?}", problems(&api));
        accepted.insert(order_id(answer));
    }
    assert!(
        api.stderr()
            .contains("sending the transaction's orders again one by one"),
        "the large order and the small ones were in one transaction: {:#?}",
        problems(&api)
    );
    // The same request again, alone: the same answer (nothing was stored under its key).
    let again = post(&base, Some("large"), &large).await;
    assert_eq!(
        (again.status, &again.body["code"]),
        (413, &json!("order_too_large")),
        "{again:?}"
    );
    // And an order afterwards.
    let after = post(&base, Some("small-after"), &one_line(5)).await;
    assert_eq!(after.status, 202, "{after:?}; {:#?}", problems(&api));
    accepted.insert(order_id(&after));
    let status = api.terminate(WAIT).unwrap();
    assert!(status.success(), "order-api stopped by SIGTERM: {status:?}");

    let counts = run.committed(&accepted);
    let large_id = order_id_of_key(Some("shop-web"), "large");
    assert_eq!(counts.get(&large_id), None, "the large order is not stored");
    for id in &accepted {
        assert_eq!(counts.get(id), Some(&1), "order {id}: {counts:?}");
    }
    assert_eq!(
        counts.len(),
        accepted.len(),
        "no other order on the topic: {counts:?}"
    );
}

/// Sends SIGUSR1 to `process` (releases the `hold:` failpoint).
fn release(process: &Process) {
    let status = std::process::Command::new("kill")
        .args(["-USR1", &process.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -USR1: {status:?}");
}

/// The warnings and errors the process logged so far.
fn problems(process: &Process) -> Vec<String> {
    process
        .stderr()
        .all()
        .into_iter()
        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_leaves_before_the_commit_still_gets_its_order_once() {
    let run = &mut Run::start(grocery_stack::service_acls()).await;
    let (mut api, base) = run.ready_api(&[("ORDER_API_FAILPOINT", "hold:before-commit")]);
    let address = base.trim_start_matches("http://").to_owned();
    let body = one_line(2).to_string();
    let key = "client-leaves";
    let id = order_id_of_key(Some("shop-web"), key);

    // A raw connection, so that the test closes it exactly when the transaction is held.
    let mut connection = std::net::TcpStream::connect(&address).unwrap();
    write!(
        connection,
        "POST /orders HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Client-Id: shop-web\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    api.stderr()
        .wait_for(WAIT, |line| {
            line.contains("failpoint before-commit holding")
        })
        .unwrap();
    connection.shutdown(std::net::Shutdown::Both).unwrap();
    let mut rest = Vec::new();
    let _ = connection.read_to_end(&mut rest);
    drop(connection);
    let gone = api
        .stderr()
        .wait_for(WAIT, |line| line.contains("client gone before the answer"))
        .unwrap();
    assert!(gone.contains(&id.to_string()), "{gone}");

    // The transaction goes on: committed, then a retry replays it.
    release(&api);
    api.stderr()
        .wait_for(WAIT, |line| {
            line.contains("order accepted") && line.contains(&id.to_string())
        })
        .unwrap();
    let retry = post(&base, Some(key), &one_line(2)).await;
    assert_eq!((retry.status, retry.replayed), (200, true), "{retry:?}");
    assert_eq!(order_id(&retry), id);
    let status = api.terminate(WAIT).unwrap();
    assert!(status.success(), "order-api stopped by SIGTERM: {status:?}");

    let counts = run.committed(&BTreeSet::from([id]));
    assert_eq!(counts.get(&id), Some(&1), "{counts:?}");
    assert_eq!(counts.len(), 1, "no other order: {counts:?}");
}
