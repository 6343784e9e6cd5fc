//! Broker fail-over on a three-broker Apache Kafka cluster (KRaft, replication factor 3,
//! `min.insync.replicas=2`, as on Confluent Cloud), with the services as real processes:
//! order-producer at 2,000 orders/s and one fulfillment-service. While orders flow, the
//! broker leading the most order and pick-list partitions is SIGKILLed and later restarted
//! (once every partition is back in sync), then the broker coordinating fulfillment's
//! transaction (at-least-once: its consumer group) likewise. Orders arrive at 2,000/s while a
//! broker is down, at 50/s while the killed broker restarts and its partitions catch up, and
//! stop (SIGTERM to order-producer) once the second kill was survived: the second kill always
//! lands while orders flow, however fast fulfillment keeps up, and the orders stay few enough
//! for a debug build to work through.
//!
//! Checked on the topic read back by a second client (`read_committed`): every acknowledged
//! order has exactly one pick list in transactional mode, at least one in at-least-once mode
//! (duplicates counted and printed); no pick list of an unknown order; both services run
//! throughout and exit 0 on SIGTERM; fulfillment's log and `/health` report the lost broker.
//! In transactional mode fulfillment may replace its transactional producer when librdkafka
//! leaves a transaction call waiting for a coordinator on the killed broker (the pipeline's
//! watchdog); the replacements are printed.
//!
//! Built only with the `real-broker` feature; run it with
//! `cargo test -p xtask --features real-broker --test real_broker_cluster -- --nocapture
//! --test-threads=1`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    sync::OnceLock,
    time::{Duration, Instant},
};

use avro_events::Codec;
use grocery_events::{Config, PickList, topics};
use local_stack::{
    BrokerKind, KafkaAuth, Stack, StackOptions,
    broker::{CoordinatorKind, KafkaCluster},
    verify::LiveKeys,
};
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
};
use xtask::services::{self, Binaries, Process};

/// The order rate, sustained while order-producer runs.
const RATE: u32 = 2_000;
/// The order rate while a killed broker restarts and its partitions catch up.
const IDLE_RATE: u32 = 50;
/// At most this many orders (200 s at [`RATE`]): order-producer is stopped by SIGTERM once
/// the second kill was survived, long before (it must still be sending at the second kill).
const MAX_ORDERS: usize = 400_000;
/// The first kill comes once order-producer has had this many acknowledged (it is still
/// sending then) and fulfillment committed pick lists.
const FIRST_KILL_AT: usize = 8_000;
/// Pick lists committed after a kill before the broker is restarted: proof the pipeline
/// works without it.
const PROGRESS: usize = 2_000;
/// The fulfillment group (the service's default).
const GROUP: &str = "fulfillment-service";
/// Fulfillment's `transactional.id` in transactional mode.
const TRANSACTIONAL_ID: &str = "fulfillment-0";

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries::build().expect("services build"))
}

/// A service process, its log and its HTTP address.
struct Service {
    name: String,
    process: Process,
    log: PathBuf,
    listen: String,
}

impl Service {
    fn assert_running(&self) {
        if let Some(status) = self.process.try_wait() {
            panic!(
                "{} exited ({status}) unexpectedly:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
    }

    /// `order_producer_orders_acked_total` now (0 while the endpoint is not up).
    fn acked(&self) -> f64 {
        services::http_get(&self.listen, "/metrics")
            .ok()
            .and_then(|text| services::metric(&text, "order_producer_orders_acked_total"))
            .unwrap_or(0.0)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/health`: (true, body) for 200, (false, error) otherwise.
    fn health(&self) -> (bool, String) {
        match services::http_get(&self.listen, "/health") {
            Ok(body) => (true, body),
            Err(error) => (false, error.to_string()),
        }
    }

    /// order-producer stops by itself once it sent its orders: running, or exited 0.
    fn assert_running_or_done(&self) {
        if let Some(status) = self.process.try_wait() {
            assert!(
                status.success(),
                "{} exited {status}:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
    }

    /// SIGTERM; asserts exit status 0.
    fn stop(mut self) {
        let status = self.process.terminate(Duration::from_secs(90)).unwrap();
        assert!(
            status.success(),
            "{} exited {status} on SIGTERM:\n{}",
            self.name,
            log_tail(&self.log)
        );
    }
}

fn log_tail(log: &Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let start = log.len().saturating_sub(3000);
    log[log.floor_char_boundary(start)..].to_owned()
}

/// A `read_committed` reader of every pick-list partition from the beginning.
fn reader(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("cluster-reader-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..topics::PARTITIONS {
        tpl.add_partition_offset(topics::PICKLISTS, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Pick lists per order id on the whole topic (`read_committed`), each decoded and checked
/// against its key.
async fn pick_lists_per_order(bootstrap: &str, config: &Config) -> (usize, HashMap<String, usize>) {
    let bootstrap = bootstrap.to_owned();
    let records = tokio::task::spawn_blocking(move || {
        let consumer = reader(&bootstrap);
        let mut at_end = HashSet::new();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while at_end.len() < topics::PARTITIONS as usize {
            assert!(
                Instant::now() < deadline,
                "reading the pick lists did not end"
            );
            match consumer.poll(Duration::from_millis(500)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Some(Err(error)) => panic!("reading the pick lists: {error}"),
                Some(Ok(m)) => {
                    at_end.remove(&m.partition());
                    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                    records.push((key, m.payload().map(<[u8]>::to_vec)));
                }
            }
        }
        records
    })
    .await
    .unwrap();
    let codec = Codec::from_config(config).unwrap();
    let mut per_order = HashMap::new();
    for (key, payload) in &records {
        let pick_list: PickList = codec
            .decode(payload.as_deref().expect("pick list payload"))
            .await
            .unwrap();
        let order_id = pick_list.order_id.to_string();
        assert_eq!(key.as_deref(), Some(order_id.as_str()));
        *per_order.entry(order_id).or_insert(0) += 1;
    }
    (records.len(), per_order)
}

/// What one kill showed.
#[derive(Debug)]
struct Kill {
    broker: i32,
    /// Why it was chosen and what it led.
    role: String,
    /// Seconds from the kill to fulfillment logging a failure naming the broker.
    logged_after: Option<f64>,
    /// Seconds from the kill to fulfillment's `/health` naming it, and what it said.
    health_after: Option<(f64, String)>,
}

/// What order-producer does once fulfillment made progress without the killed broker.
enum Then {
    /// Slows down to [`IDLE_RATE`] while the broker restarts.
    Idle,
    /// Stops (SIGTERM; exit status 0).
    Stop,
}

/// Sets order-producer's rate (`PUT /rate`).
async fn set_rate(producer: &Service, rate: u32) {
    let response = reqwest::Client::new()
        .put(format!("http://{}/rate", producer.listen))
        .json(&serde_json::json!({ "rate": rate }))
        .send()
        .await
        .expect("PUT /rate");
    assert!(
        response.status().is_success(),
        "PUT /rate: {}",
        response.status()
    );
}

/// Kills broker `id`, waits for fulfillment to report it and for `PROGRESS` pick lists more,
/// slows down or stops order-producer (`then`), restarts the broker and waits until every
/// partition has all its replicas in sync again.
async fn kill_and_restart(
    cluster: &KafkaCluster,
    id: i32,
    role: String,
    fulfillment: &Service,
    producer: &mut Service,
    then: Then,
    live: &LiveKeys,
) -> Kill {
    let address = cluster.broker_address(id).unwrap();
    let log_from = fulfillment.log_text().len();
    let at = live.count();
    let killed = Instant::now();
    cluster.kill_broker(id).await.unwrap();
    eprintln!("[cluster] broker {id} ({address}) SIGKILLed at {at} pick lists: {role}");
    let alive = |producer: &Service| {
        fulfillment.assert_running();
        producer.assert_running_or_done();
    };
    let (mut logged_after, mut health_after) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while logged_after.is_none() || health_after.is_none() || live.count() < at + PROGRESS {
        alive(producer);
        assert!(
            Instant::now() < deadline,
            "after killing broker {id}: logged {logged_after:?}, health {health_after:?}, \
             {} of {} pick lists:\n{}",
            live.count(),
            at + PROGRESS,
            log_tail(&fulfillment.log)
        );
        if logged_after.is_none() {
            let text = fulfillment.log_text();
            if let Some(line) = text[log_from.min(text.len())..]
                .lines()
                .find(|l| l.contains(&address))
            {
                logged_after = Some(killed.elapsed().as_secs_f64());
                eprintln!("[cluster] fulfillment logged: {line}");
            }
        }
        if health_after.is_none() {
            let (_, body) = fulfillment.health();
            if body.contains(&address) {
                health_after = Some((killed.elapsed().as_secs_f64(), body));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let progress_after = killed.elapsed().as_secs_f64();
    match then {
        Then::Idle => set_rate(producer, IDLE_RATE).await,
        Then::Stop => {
            let status = producer
                .process
                .terminate(Duration::from_secs(90))
                .expect("order-producer stops on SIGTERM");
            assert!(
                status.success(),
                "order-producer exited {status}:\n{}",
                log_tail(&producer.log)
            );
        }
    }
    let led_now: Vec<String> = cluster
        .partitions(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.leader == id)
        .map(|p| format!("{}[{}]", p.topic, p.partition))
        .collect();
    assert!(
        led_now.is_empty(),
        "the dead broker {id} still leads {led_now:?}"
    );
    let restarted = Instant::now();
    cluster.restart_broker(id).await.unwrap();
    cluster
        .wait_in_sync(Duration::from_secs(240))
        .await
        .unwrap();
    let in_sync_after = restarted.elapsed().as_secs_f64();
    alive(producer);
    let kill = Kill {
        broker: id,
        role,
        logged_after,
        health_after,
    };
    eprintln!(
        "[cluster] broker {id}: fulfillment logged it after {:.1?}s, /health said {:?}; \
         {PROGRESS} more pick lists {progress_after:.1}s after the kill; restarted, all \
         partitions in sync {in_sync_after:.1}s later",
        kill.logged_after, kill.health_after
    );
    kill
}

/// The broker leading the most `grocery.orders.v1` and `grocery.picklist.v1` partitions, and
/// what it leads.
async fn busiest_leader(cluster: &KafkaCluster) -> (i32, Vec<String>) {
    let mut led: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for topic in [topics::ORDERS, topics::PICKLISTS] {
        for p in cluster.partitions(Some(topic)).await.unwrap() {
            led.entry(p.leader)
                .or_default()
                .push(format!("{}[{}]", p.topic, p.partition));
        }
    }
    led.into_iter()
        .max_by_key(|(_, partitions)| partitions.len())
        .unwrap()
}

/// The whole run in one mode; returns (orders, pick lists, duplicates).
async fn fail_over(name: &str, transactional: bool, seed: u64) -> (usize, usize, usize) {
    let started = Instant::now();
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        brokers: 3,
        ..grocery_stack::options()
    })
    .await
    .expect("three-broker stack starts");
    let cluster = stack.kafka_cluster().expect("a cluster");
    cluster
        .wait_in_sync(Duration::from_secs(120))
        .await
        .unwrap();
    let dir = services::workspace_dir()
        .join("target/real-broker-cluster")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("client.properties");
    std::fs::write(
        &config,
        format!(
            "{}session.timeout.ms=6000\nheartbeat.interval.ms=1000\n",
            stack.client_properties()
        ),
    )
    .unwrap();
    eprintln!(
        "[{name}] 3 brokers up and in sync in {:.1}s; files in {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    let live = LiveKeys::start(
        stack.bootstrap_servers(),
        topics::PICKLISTS,
        topics::PARTITIONS,
    );
    let start = |service: &str, program: &Path, mut args: Vec<String>, env: &[(&str, &str)]| {
        let log = dir.join(format!("{service}.log"));
        let listen = format!(
            "127.0.0.1:{}",
            services::FreePorts::default().pick().unwrap()
        );
        args.extend([
            "--config".into(),
            config.display().to_string(),
            "--listen".into(),
            listen.clone(),
        ]);
        let process = services::start(service, program, &args, env, &log).unwrap();
        Service {
            name: service.to_owned(),
            process,
            log,
            listen,
        }
    };
    let mut env = vec![("RUST_LOG", "info")];
    if transactional {
        env.push(("GROCERY_TRANSACTIONAL_ID", TRANSACTIONAL_ID));
    }
    let fulfillment = start(
        "fulfillment-service",
        &binaries().fulfillment_service,
        Vec::new(),
        &env,
    );
    let report = dir.join("orders.jsonl");
    let mut producer = start(
        "order-producer",
        &binaries().order_producer,
        vec![
            "--count".into(),
            MAX_ORDERS.to_string(),
            "--rate".into(),
            RATE.to_string(),
            "--seed".into(),
            seed.to_string(),
            "--report".into(),
            report.display().to_string(),
        ],
        &[("RUST_LOG", "info")],
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    while producer.acked() < FIRST_KILL_AT as f64 || live.count() == 0 {
        fulfillment.assert_running();
        producer.assert_running();
        assert!(Instant::now() < deadline, "no orders flowing");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (kind, id) = if transactional {
        (CoordinatorKind::Transaction, TRANSACTIONAL_ID)
    } else {
        (CoordinatorKind::Group, GROUP)
    };
    let (leader, led) = busiest_leader(cluster).await;
    let before = cluster.coordinator(kind, id).await.unwrap();
    let first = kill_and_restart(
        cluster,
        leader,
        format!(
            "leader of {} order and pick-list partitions {led:?}; the {kind:?} coordinator of \
             {id} was broker {}",
            led.len(),
            before.broker
        ),
        &fulfillment,
        &mut producer,
        Then::Idle,
        &live,
    )
    .await;
    let coordinator = cluster.coordinator(kind, id).await.unwrap();
    assert!(
        producer.process.try_wait().is_none(),
        "order-producer stopped sending before the second kill:\n{}",
        log_tail(&producer.log)
    );
    set_rate(&producer, RATE).await;
    let second = kill_and_restart(
        cluster,
        coordinator.broker,
        format!("{kind:?} coordinator of {id} (state {})", coordinator.state),
        &fulfillment,
        &mut producer,
        Then::Stop,
        &live,
    )
    .await;
    let status = producer
        .process
        .wait(Duration::from_secs(5))
        .expect("order-producer stopped");
    assert!(
        status.success(),
        "order-producer exited {status}:\n{}",
        log_tail(&producer.log)
    );
    let summary = producer
        .process
        .stdout()
        .wait_for(Duration::from_secs(5), |l| l.starts_with("sent "))
        .unwrap_or_default();
    let orders: HashSet<String> = services::read_report(&report)
        .unwrap()
        .into_keys()
        .collect();
    assert!(
        orders.len() > FIRST_KILL_AT && orders.len() < MAX_ORDERS,
        "{} orders acknowledged",
        orders.len()
    );
    live.wait_for(orders.len(), Duration::from_secs(600), || {
        fulfillment.assert_running()
    });
    let (healthy, body) = fulfillment.health();
    assert!(healthy, "fulfillment /health after the restarts: {body}");
    let replaced = services::http_get(&fulfillment.listen, "/metrics")
        .ok()
        .and_then(|text| {
            services::metric(&text, "fulfillment_transactional_producers_replaced_total")
        })
        .expect("the replacement counter on /metrics");
    fulfillment.stop();

    let (records, per_order) = pick_lists_per_order(
        stack.bootstrap_servers(),
        &Config::from_file(&config).unwrap(),
    )
    .await;
    let missing = orders
        .iter()
        .filter(|id| !per_order.contains_key(*id))
        .count();
    let unknown: Vec<_> = per_order
        .keys()
        .filter(|id| !orders.contains(*id))
        .take(5)
        .collect();
    let duplicates: usize = per_order.values().map(|n| n - 1).sum();
    eprintln!(
        "[{name}] {} mode: order-producer: {summary}; {records} pick lists read_committed, \
         {missing} missing, {duplicates} duplicates; transactional producers replaced: \
         {replaced}; kills: broker {} ({}), broker {} ({}); {:.0}s in all",
        if transactional {
            "transactional"
        } else {
            "at-least-once"
        },
        first.broker,
        first.role,
        second.broker,
        second.role,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(missing, 0, "every order has a pick list");
    assert!(
        unknown.is_empty(),
        "pick lists of unknown orders: {unknown:?}"
    );
    for kill in [&first, &second] {
        assert!(
            kill.health_after.is_some(),
            "fulfillment's /health never named the dead broker {}",
            kill.broker
        );
    }
    stack.shutdown().await;
    (orders.len(), records, duplicates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_brokers_transactional_leader_and_coordinator_killed_exactly_one_pick_list() {
    let (orders, records, duplicates) = fail_over("cluster-txn", true, 0x5EED_0070).await;
    assert_eq!(duplicates, 0, "transactional: no duplicates read_committed");
    assert_eq!(records, orders, "transactional: one pick list per order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_brokers_at_least_once_leader_and_coordinator_killed_nothing_lost() {
    let (orders, records, duplicates) = fail_over("cluster-alo", false, 0x5EED_0071).await;
    eprintln!(
        "[cluster-alo] at-least-once: {orders} orders, {records} pick lists, {duplicates} \
         duplicates (allowed, counted)"
    );
}
