//! The delivery guarantees on a real Apache Kafka broker, with the services as real processes:
//! transactions under SIGKILL, a fenced zombie, instances joining and leaving under load in both
//! modes, a broker crash, a 100,000-order backlog, and malformed records among good ones.
//!
//! Every guarantee is checked on the topic itself: a raw rdkafka reader (`read_committed`
//! unless said otherwise) of `grocery.picklist.v1` decodes each pick list and counts them per
//! order id, with no dedup in between.
//!
//! Each test starts its own stack (broker, registry): the services use the application's fixed
//! topic names, so two tests on one broker would read each other's orders and pick lists.
//! Built only with the `real-broker` feature (Java 17 and Maven needed); run it with
//! `cargo test -p xtask --features real-broker --test real_broker_guarantees -- --nocapture
//! --test-threads=1`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, atomic::Ordering},
    time::{Duration, Instant},
};

use avro_events::{Codec, dlq::headers as dlq};
use grocery_events::{Client, Config, PickList, topics};
use grocery_store::{Catalog, OrderSimulator};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, verify::LiveKeys};
use rdkafka::{
    ClientConfig, Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
    message::Headers as _,
};
use xtask::services::{self, Binaries, Process};

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries::build().expect("services build"))
}

/// splitmix64: a seeded generator for the kill moments (reproducible from the printed seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A fresh real-broker stack (PLAINTEXT listener) and a directory for the test's files.
struct Suite {
    stack: Stack,
    dir: PathBuf,
    config: PathBuf,
    started: Instant,
}

impl Suite {
    async fn start(name: &str) -> Self {
        let started = Instant::now();
        let stack = Stack::start_with(StackOptions {
            broker: BrokerKind::Kafka {
                auth: KafkaAuth::None,
            },
            ..grocery_stack::options()
        })
        .await
        .expect("real-broker stack starts");
        let dir = services::workspace_dir()
            .join("target/real-broker-guarantees")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("client.properties");
        // A SIGKILLed member holds its partitions until its session times out (45 s by
        // default); 6 s keeps the kill-and-restart tests short.
        std::fs::write(
            &config,
            format!(
                "{}session.timeout.ms=6000\nheartbeat.interval.ms=1000\n",
                stack.client_properties()
            ),
        )
        .unwrap();
        eprintln!(
            "[{name}] broker up in {:.1}s; files in {}",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        Self {
            stack,
            dir,
            config,
            started,
        }
    }

    fn library_config(&self) -> Config {
        Config::from_file(&self.config).unwrap()
    }

    fn bootstrap(&self) -> String {
        self.stack.bootstrap_servers().to_owned()
    }

    /// Starts a fulfillment-service instance named `name` (its own log file per start).
    fn fulfillment(&self, name: &str, transactional_id: Option<&str>) -> Instance {
        let generation = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                e.as_ref().is_ok_and(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{name}."))
                })
            })
            .count();
        let log = self.dir.join(format!("{name}.{generation}.log"));
        std::fs::write(&log, "").unwrap();
        let metrics = format!(
            "127.0.0.1:{}",
            services::FreePorts::default().pick().unwrap()
        );
        let mut env = vec![("RUST_LOG", "info")];
        if let Some(id) = transactional_id {
            env.push(("GROCERY_TRANSACTIONAL_ID", id));
        }
        let service = services::start(
            name,
            &binaries().fulfillment_service,
            &[
                "--config".into(),
                self.config.display().to_string(),
                "--listen".into(),
                metrics.clone(),
            ],
            &env,
            &log,
        )
        .unwrap();
        Instance {
            name: name.to_owned(),
            service,
            log,
            metrics,
        }
    }
}

/// A running fulfillment-service process.
struct Instance {
    name: String,
    service: Process,
    log: PathBuf,
    metrics: String,
}

impl Instance {
    /// The `grocery.orders.v1` partitions this process holds according to its own log lines
    /// ("partitions assigned" / "partitions revoked", applied in order).
    fn held_partitions(&self) -> BTreeSet<i32> {
        held_partitions(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// `fulfillment_picklists_produced_total` now (0 while the endpoint is not up yet).
    fn produced(&self) -> f64 {
        services::http_get(&self.metrics, "/metrics")
            .ok()
            .and_then(|text| services::metric(&text, "fulfillment_picklists_produced_total"))
            .unwrap_or(0.0)
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.service.try_wait() {
            panic!(
                "{} exited ({status}) unexpectedly:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
    }

    /// Waits until the process holds partitions and has produced pick lists since it started;
    /// returns what it holds and its produced count.
    fn wait_working(&mut self, timeout: Duration) -> (BTreeSet<i32>, f64) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            let held = self.held_partitions();
            if !held.is_empty() {
                let produced = self.produced();
                if produced > 0.0 && self.held_partitions() == held {
                    return (held, produced);
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not hold partitions and produce within {timeout:?} (holds {held:?}):\n{}",
                self.name,
                log_tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the process holds at least one partition.
    fn wait_assigned(&mut self, timeout: Duration) -> BTreeSet<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            let held = self.held_partitions();
            if !held.is_empty() {
                return held;
            }
            assert!(
                Instant::now() < deadline,
                "{} got no partitions within {timeout:?}:\n{}",
                self.name,
                log_tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and expect exit status 0.
    fn stop(mut self) {
        let status = self.service.terminate(Duration::from_secs(60)).unwrap();
        assert!(
            status.success(),
            "{} exited {status} on SIGTERM:\n{}",
            self.name,
            log_tail(&self.log)
        );
    }

    fn signal(&self, signal: services::Signal) {
        self.service.signal(signal).unwrap();
    }

    /// `/health` status: true for 200, false for 503; panics on anything else.
    fn healthy(&self) -> bool {
        match services::http_get(&self.metrics, "/health") {
            Ok(_) => true,
            Err(error) if error.to_string().contains("503") => false,
            Err(error) => panic!("{} /health: {error}", self.name),
        }
    }
}

fn held_partitions(log: &str) -> BTreeSet<i32> {
    let mut held = BTreeSet::new();
    for line in log.lines() {
        let assigned = line.contains("partitions assigned");
        if !assigned && !line.contains("partitions revoked") {
            continue;
        }
        let Some((_, list)) = line.split_once("partitions=") else {
            continue;
        };
        for item in list.split(", ") {
            let Some(rest) = item.trim().strip_prefix(&format!("{}[", topics::ORDERS)) else {
                continue;
            };
            let Some(p) = rest.split(']').next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if assigned {
                held.insert(p);
            } else {
                held.remove(&p);
            }
        }
    }
    held
}

fn log_tail(log: &Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let start = log.len().saturating_sub(3000);
    log[log.floor_char_boundary(start)..].to_owned()
}

/// Produces `count` simulated orders (seed `seed`) through the library's idempotent producer,
/// at about `rate` per second (0: as fast as possible); returns the acknowledged order ids.
/// With `gate`, no more than `gate.allowed` orders are sent at any time (`gate.sent` counts
/// them), so a test can keep orders for later.
async fn produce_orders(
    config: Config,
    seed: u64,
    count: usize,
    rate: u32,
    gate: Option<Arc<Gate>>,
) -> HashSet<String> {
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let catalog = Catalog::builtin();
    let mut simulator = OrderSimulator::new(seed, &catalog);
    let chunk = if rate == 0 {
        2000
    } else {
        (rate as usize / 20).max(1)
    };
    let mut ticker = tokio::time::interval(if rate == 0 {
        Duration::from_millis(1)
    } else {
        Duration::from_secs_f64(chunk as f64 / f64::from(rate))
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut acked = HashSet::with_capacity(count);
    let mut background = Vec::new();
    let mut sent = 0;
    while sent < count {
        ticker.tick().await;
        let allowed = gate
            .as_ref()
            .map_or(count, |g| g.allowed.load(Ordering::Relaxed).min(count));
        if sent >= allowed {
            continue;
        }
        let mut pending = Vec::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        for _ in 0..chunk.min(allowed - sent) {
            let order = simulator.next_order(now);
            let id = order.order_id.to_string();
            let delivery = producer.enqueue_to(topics::ORDERS, &order).await.unwrap();
            pending.push((id, delivery));
            sent += 1;
        }
        if let Some(gate) = &gate {
            gate.sent.store(sent, Ordering::Relaxed);
        }
        if rate == 0 {
            for (id, delivery) in pending {
                delivery.await.unwrap();
                acked.insert(id);
            }
        } else {
            // Acknowledgements are awaited in the background so the rate holds through an
            // outage; librdkafka retries until message.timeout.ms.
            let acks = tokio::spawn(async move {
                let mut ids = Vec::new();
                for (id, delivery) in pending {
                    delivery.await.unwrap();
                    ids.push(id);
                }
                ids
            });
            background.push(acks);
        }
    }
    for handle in background {
        acked.extend(handle.await.unwrap());
    }
    producer.flush(Duration::from_secs(60)).await.unwrap();
    assert_eq!(acked.len(), count, "every order acknowledged");
    acked
}

/// Produces orders on a task of its own; see [`produce_orders`].
fn spawn_orders(
    suite: &Suite,
    seed: u64,
    count: usize,
    rate: u32,
) -> tokio::task::JoinHandle<HashSet<String>> {
    spawn_orders_held(suite, seed, count, rate, None)
}

/// How many orders a producer may send, and has sent.
#[derive(Default)]
struct Gate {
    allowed: std::sync::atomic::AtomicUsize,
    sent: std::sync::atomic::AtomicUsize,
}

/// [`spawn_orders`] through a [`Gate`]; see [`produce_orders`].
fn spawn_orders_held(
    suite: &Suite,
    seed: u64,
    count: usize,
    rate: u32,
    gate: Option<Arc<Gate>>,
) -> tokio::task::JoinHandle<HashSet<String>> {
    let config = suite.library_config();
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(produce_orders(config, seed, count, rate, gate))
    })
}

/// A record read from a topic.
struct Record {
    partition: i32,
    offset: i64,
    key: Option<String>,
    payload: Option<Vec<u8>>,
    headers: HashMap<String, String>,
}

fn reader(bootstrap: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("guarantees-reader-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .unwrap()
}

fn assign_all(consumer: &BaseConsumer, topic: &str) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..topics::PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
}

/// Every record of `topic` from the beginning to the end of each partition (for
/// `read_committed`: to the last stable offset), read by a fresh consumer.
fn read_topic(bootstrap: &str, topic: &str, isolation: &str) -> Vec<Record> {
    let consumer = reader(bootstrap, isolation);
    assign_all(&consumer, topic);
    let mut at_end = HashSet::new();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while at_end.len() < topics::PARTITIONS as usize {
        assert!(Instant::now() < deadline, "reading {topic} did not finish");
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(Record {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
        }
    }
    records
}

/// What a full read of `grocery.picklist.v1` shows.
#[derive(Debug)]
struct PickListCount {
    records: usize,
    /// Pick lists per order id.
    per_order: HashMap<String, usize>,
}

impl PickListCount {
    fn duplicates(&self) -> usize {
        self.per_order.values().map(|n| n - 1).sum()
    }
}

/// Reads the whole pick-list topic with `isolation`, decodes every record and counts them per
/// order id (checking each pick list's key, order id and id agree).
async fn count_pick_lists(suite: &Suite, isolation: &str) -> PickListCount {
    let bootstrap = suite.bootstrap();
    let isolation_owned = isolation.to_owned();
    let records = tokio::task::spawn_blocking(move || {
        read_topic(&bootstrap, topics::PICKLISTS, &isolation_owned)
    })
    .await
    .unwrap();
    let codec = Codec::from_config(&suite.library_config()).unwrap();
    let mut per_order = HashMap::new();
    for record in &records {
        let payload = record.payload.as_deref().expect("pick list payload");
        let pick_list: PickList = codec.decode(payload).await.unwrap_or_else(|e| {
            panic!(
                "pick list at [{}]@{} does not decode: {e}",
                record.partition, record.offset
            )
        });
        let order_id = pick_list.order_id.to_string();
        assert_eq!(record.key.as_deref(), Some(order_id.as_str()));
        assert_eq!(
            pick_list.picklist_id,
            grocery_store::picklist_id(pick_list.order_id),
            "picklist_id derives from the order id"
        );
        *per_order.entry(order_id).or_insert(0) += 1;
    }
    PickListCount {
        records: records.len(),
        per_order,
    }
}

/// Asserts every order in `orders` has exactly one pick list under `read_committed`, and no
/// pick list names an unknown order; returns the read_committed and read_uncommitted counts.
async fn assert_exactly_once(
    suite: &Suite,
    orders: &HashSet<String>,
) -> (PickListCount, PickListCount) {
    let committed = count_pick_lists(suite, "read_committed").await;
    let uncommitted = count_pick_lists(suite, "read_uncommitted").await;
    assert_every_order_has_a_pick_list(&committed, orders);
    let twice: Vec<_> = committed
        .per_order
        .iter()
        .filter(|(_, n)| **n > 1)
        .take(10)
        .collect();
    assert!(
        twice.is_empty(),
        "{} duplicate pick lists on the topic (read_committed), e.g. {twice:?}",
        committed.duplicates()
    );
    assert_eq!(committed.records, orders.len());
    (committed, uncommitted)
}

fn assert_every_order_has_a_pick_list(count: &PickListCount, orders: &HashSet<String>) {
    let missing: Vec<_> = orders
        .iter()
        .filter(|id| !count.per_order.contains_key(*id))
        .take(10)
        .collect();
    let unknown: Vec<_> = count
        .per_order
        .keys()
        .filter(|id| !orders.contains(*id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "{} orders have no pick list, e.g. {missing:?}",
        orders
            .iter()
            .filter(|id| !count.per_order.contains_key(*id))
            .count()
    );
    assert!(
        unknown.is_empty(),
        "pick lists of unknown orders: {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_sigkills_of_transactional_instances_leave_exactly_one_pick_list_per_order() {
    const ORDERS: usize = 10_000;
    const KILLS: usize = 10;
    const SEED: u64 = 0x5EED_0010;
    let suite = Suite::start("sigkill").await;
    let live = LiveKeys::start(&suite.bootstrap(), topics::PICKLISTS, topics::PARTITIONS);
    let ids = ["fulfillment-0", "fulfillment-1"];
    let mut instances: Vec<Instance> = ids
        .iter()
        .map(|id| suite.fulfillment(id, Some(id)))
        .collect();
    // A dead member keeps its partitions until its session times out (10 s), so each kill
    // costs seconds: orders flow slowly, and the last 1,000 are let out 100 at a time only when
    // no instance is working, so that there is always work for an instance to be caught doing.
    let gate = Arc::new(Gate::default());
    gate.allowed.store(ORDERS - 1000, Ordering::Relaxed);
    let producing = spawn_orders_held(&suite, SEED, ORDERS, 60, Some(gate.clone()));
    let mut rng = Rng(SEED);
    let mut kill = 0;
    let deadline = Instant::now() + Duration::from_secs(400);
    while kill < KILLS {
        assert!(Instant::now() < deadline, "{kill} kills only");
        // Proof it works: partitions held (assigned, not revoked since) and pick lists
        // committed since this process started; the victim is drawn among the instances
        // working now, killed a random moment later if it still holds partitions.
        let working: Vec<usize> = (0..instances.len())
            .filter(|&i| {
                instances[i].assert_running();
                !instances[i].held_partitions().is_empty() && instances[i].produced() > 0.0
            })
            .collect();
        let draw = rng.next();
        if working.is_empty() {
            let allowed = gate.allowed.load(Ordering::Relaxed);
            if gate.sent.load(Ordering::Relaxed) >= allowed && live.count() >= allowed {
                gate.allowed
                    .store((allowed + 100).min(ORDERS - 1), Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let victim = working[(draw % working.len() as u64) as usize];
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        let instance = &mut instances[victim];
        let held = instance.held_partitions();
        let produced = instance.produced();
        if held.is_empty() || produced == 0.0 {
            continue;
        }
        let status = instance.service.kill().unwrap();
        assert_eq!(status.signal(), Some(9), "{} died of SIGKILL", ids[victim]);
        kill += 1;
        eprintln!(
            "[sigkill] kill {kill} at {:.0}s: {} (txn id {}) held {}{held:?}, had committed \
             {produced} pick lists; {} orders done so far",
            suite.started.elapsed().as_secs_f64(),
            instance.name,
            ids[victim],
            topics::ORDERS,
            live.count()
        );
        instances[victim] = suite.fulfillment(ids[victim], Some(ids[victim]));
    }
    gate.allowed.store(ORDERS, Ordering::Relaxed);
    let orders = producing.await.unwrap();
    live.wait_for(ORDERS, Duration::from_secs(300), || {
        for instance in &mut instances {
            instance.assert_running();
        }
    });
    for instance in instances {
        instance.stop();
    }
    let (committed, uncommitted) = assert_exactly_once(&suite, &orders).await;
    eprintln!(
        "[sigkill] {KILLS} kills; read_committed: {} pick lists, {} distinct orders, {} \
         duplicates; read_uncommitted: {} records ({} in aborted transactions); {:.0}s",
        committed.records,
        committed.per_order.len(),
        committed.duplicates(),
        uncommitted.records,
        uncommitted.records - committed.records,
        suite.started.elapsed().as_secs_f64()
    );
    assert!(
        uncommitted.records >= committed.records,
        "read_uncommitted sees at least what read_committed sees"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fenced_zombie_fails_and_nothing_it_produced_is_visible() {
    const SEED: u64 = 0x5EED_0020;
    let suite = Suite::start("zombie").await;
    let live = LiveKeys::start(&suite.bootstrap(), topics::PICKLISTS, topics::PARTITIONS);
    let mut a = suite.fulfillment("zombie-a", Some("fulfillment-zombie"));
    let first = spawn_orders(&suite, SEED, 3000, 300);
    let (held, produced) = a.wait_working(Duration::from_secs(120));
    a.signal(services::Signal::SIGSTOP);
    eprintln!("[zombie] A stopped holding {held:?} after {produced} committed pick lists");
    let mut b = suite.fulfillment("zombie-b", Some("fulfillment-zombie"));
    let b_held = b.wait_working(Duration::from_secs(120));
    eprintln!("[zombie] B (same transactional id) took over: {b_held:?}");
    a.signal(services::Signal::SIGCONT);
    // More orders, so the zombie has work to try (if it was idle when stopped).
    let second = spawn_orders(&suite, SEED + 1, 2000, 300);
    let status = a
        .service
        .wait(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("the zombie did not exit: {e}\n{}", log_tail(&a.log)));
    let a_log = std::fs::read_to_string(&a.log).unwrap();
    let error_line = a_log
        .lines()
        .rev()
        .find(|l| l.starts_with("error:") || l.contains("ERROR"))
        .unwrap_or_default()
        .to_owned();
    eprintln!("[zombie] A exited {status}; last error: {error_line}");
    assert!(!status.success(), "the zombie exits non-zero");
    assert_eq!(status.code(), Some(1), "fenced: a fatal error, exit 1");
    assert!(
        a_log.to_lowercase().contains("fenc"),
        "the zombie's error names the fencing:\n{}",
        log_tail(&a.log)
    );
    let mut orders = first.await.unwrap();
    orders.extend(second.await.unwrap());
    live.wait_for(orders.len(), Duration::from_secs(180), || {
        b.assert_running()
    });
    b.stop();
    let (committed, uncommitted) = assert_exactly_once(&suite, &orders).await;
    eprintln!(
        "[zombie] {} orders, {} pick lists read_committed (0 duplicates), {} records \
         read_uncommitted ({} aborted, the zombie's open transactions among them); {:.0}s",
        orders.len(),
        committed.records,
        uncommitted.records,
        uncommitted.records - committed.records,
        suite.started.elapsed().as_secs_f64()
    );
}

/// 2 → 3 → 1 instances while 6,000 orders flow; returns the duplicates on the topic.
async fn scale(name: &str, transactional: bool, seed: u64) -> usize {
    const ORDERS: usize = 6_000;
    let suite = Suite::start(name).await;
    let live = LiveKeys::start(&suite.bootstrap(), topics::PICKLISTS, topics::PARTITIONS);
    let txn = |i: usize| transactional.then(|| format!("fulfillment-{i}"));
    let start = |i: usize| {
        let id = txn(i);
        suite.fulfillment(&format!("{name}-{i}"), id.as_deref())
    };
    let mut instances = vec![start(0), start(1)];
    for instance in &mut instances {
        instance.wait_assigned(Duration::from_secs(120));
    }
    let producing = spawn_orders(&suite, seed, ORDERS, 300);
    let alive = |instances: &mut Vec<Instance>| {
        for instance in instances.iter_mut() {
            instance.assert_running();
        }
    };
    live.wait_for(1_500, Duration::from_secs(180), || alive(&mut instances));
    instances.push(start(2));
    let (held, _) = instances[2].wait_working(Duration::from_secs(120));
    eprintln!(
        "[{name}] third instance joined at {} orders and holds {held:?}",
        live.count()
    );
    live.wait_for(3_500, Duration::from_secs(180), || alive(&mut instances));
    let leaving: Vec<Instance> = instances.drain(..2).collect();
    let at = live.count();
    for instance in leaving {
        instance.stop();
    }
    eprintln!("[{name}] two instances left with SIGTERM (exit 0) at {at} orders");
    let orders = producing.await.unwrap();
    live.wait_for(ORDERS, Duration::from_secs(180), || alive(&mut instances));
    for instance in instances {
        instance.stop();
    }
    let committed = count_pick_lists(&suite, "read_committed").await;
    assert_every_order_has_a_pick_list(&committed, &orders);
    let duplicates = committed.duplicates();
    eprintln!(
        "[{name}] {} mode: {ORDERS} orders, {} pick lists on the topic, {duplicates} \
         duplicates; {:.0}s",
        if transactional {
            "transactional"
        } else {
            "at-least-once"
        },
        committed.records,
        suite.started.elapsed().as_secs_f64()
    );
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_join_and_leave_under_load_at_least_once() {
    let duplicates = scale("scale-plain", false, 0x5EED_0030).await;
    eprintln!("[scale-plain] duplicates allowed in at-least-once mode: {duplicates}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_join_and_leave_under_load_transactional() {
    let duplicates = scale("scale-txn", true, 0x5EED_0031).await;
    assert_eq!(
        duplicates, 0,
        "transactional mode: no duplicates on the topic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_crash_loses_nothing_and_duplicates_nothing() {
    const ORDERS: usize = 10_000;
    let suite = Suite::start("broker-crash").await;
    let broker = suite.stack.kafka_broker().unwrap();
    let live = LiveKeys::start(&suite.bootstrap(), topics::PICKLISTS, topics::PARTITIONS);
    let mut instances = vec![
        suite.fulfillment("crash-0", Some("fulfillment-0")),
        suite.fulfillment("crash-1", Some("fulfillment-1")),
    ];
    let producing = spawn_orders(&suite, 0x5EED_0040, ORDERS, 300);
    live.wait_for(3_000, Duration::from_secs(180), || {
        for instance in &mut instances {
            instance.assert_running();
        }
    });
    let killed_at = Instant::now();
    broker.kill().await.unwrap();
    eprintln!(
        "[broker-crash] broker SIGKILLed at {} orders done",
        live.count()
    );
    for instance in &mut instances {
        let deadline = Instant::now() + Duration::from_secs(90);
        while instance.healthy() {
            instance.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} /health never reported the outage",
                instance.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        instance.assert_running();
    }
    let outage = killed_at.elapsed();
    broker.restart().await.unwrap();
    eprintln!(
        "[broker-crash] every instance answered 503 within {:.1}s; broker restarted after \
         {:.1}s",
        outage.as_secs_f64(),
        killed_at.elapsed().as_secs_f64()
    );
    for instance in &mut instances {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !instance.healthy() {
            instance.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} stays unhealthy",
                instance.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(&instance.log).unwrap();
        assert!(
            log.contains("all brokers are down"),
            "{} logs the outage",
            instance.name
        );
    }
    let orders = producing.await.unwrap();
    live.wait_for(ORDERS, Duration::from_secs(300), || {
        for instance in &mut instances {
            instance.assert_running();
        }
    });
    for instance in instances {
        instance.stop();
    }
    let (committed, uncommitted) = assert_exactly_once(&suite, &orders).await;
    eprintln!(
        "[broker-crash] {} orders: {} pick lists read_committed, 0 lost, 0 duplicates; {} \
         aborted records; {:.0}s",
        orders.len(),
        committed.records,
        uncommitted.records - committed.records,
        suite.started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_of_100_000_orders_becomes_100_000_pick_lists() {
    const ORDERS: usize = 100_000;
    let suite = Suite::start("backlog").await;
    let producing = Instant::now();
    let orders = spawn_orders(&suite, 0x5EED_0050, ORDERS, 0).await.unwrap();
    let produced_in = producing.elapsed();
    let live = LiveKeys::start(&suite.bootstrap(), topics::PICKLISTS, topics::PARTITIONS);
    let processing = Instant::now();
    let mut instance = suite.fulfillment("backlog-0", Some("fulfillment-0"));
    live.wait_for(ORDERS, Duration::from_secs(600), || {
        instance.assert_running()
    });
    let processed_in = processing.elapsed();
    instance.stop();
    let (committed, _) = assert_exactly_once(&suite, &orders).await;
    eprintln!(
        "[backlog] {ORDERS} orders queued in {:.1}s, {} pick lists in {:.1}s ({:.0}/s); {:.0}s",
        produced_in.as_secs_f64(),
        committed.records,
        processed_in.as_secs_f64(),
        ORDERS as f64 / processed_in.as_secs_f64(),
        suite.started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_records_among_good_ones_are_dead_lettered_once() {
    const GOOD: usize = 10_000;
    const BAD: usize = 1_000;
    let suite = Suite::start("malformed").await;
    let raw: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", suite.bootstrap())
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let good = spawn_orders(&suite, 0x5EED_0060, GOOD, 1000);
    let mut kinds = BTreeMap::new();
    for i in 0..BAD {
        let (kind, payload): (&str, Vec<u8>) = match i % 4 {
            0 => ("json", format!("{{\"order_id\": {i}}}").into_bytes()),
            1 => ("wrong magic", vec![1, 0, 0, 0, 1, 2, 4, 6]),
            // (An unknown schema id is not malformed: the consumer waits for the schema.)
            2 => ("truncated header", vec![0, 0, 0]),
            _ => ("truncated avro", vec![0, 0, 0, 0, 1, 0xff]),
        };
        *kinds.entry(kind).or_insert(0) += 1;
        raw.send(
            rdkafka::producer::FutureRecord::to(topics::ORDERS)
                .key(&format!("malformed-{i}"))
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    }
    let mut instance = suite.fulfillment("malformed-0", Some("fulfillment-0"));
    let orders = good.await.unwrap();
    let live = LiveKeys::start(&suite.bootstrap(), topics::PICKLISTS, topics::PARTITIONS);
    live.wait_for(GOOD, Duration::from_secs(300), || instance.assert_running());
    // The DLQ records of the malformed ones commit in the same transactions as the pick lists
    // of the good ones around them: once every good order has its pick list and the instance
    // stopped cleanly, the DLQ topic is complete.
    instance.stop();
    let (committed, _) = assert_exactly_once(&suite, &orders).await;
    let bootstrap = suite.bootstrap();
    let dead = tokio::task::spawn_blocking(move || {
        read_topic(
            &bootstrap,
            &topics::dead_letter(topics::ORDERS),
            "read_committed",
        )
    })
    .await
    .unwrap();
    let mut sources = HashSet::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for record in &dead {
        let kind = record.headers.get(dlq::ERROR_KIND).expect("dlq.error.kind");
        let message = record
            .headers
            .get(dlq::ERROR_MESSAGE)
            .expect("dlq.error.message");
        assert!(!kind.is_empty() && !message.is_empty());
        assert_eq!(
            record.headers.get(dlq::SOURCE_TOPIC).map(String::as_str),
            Some(topics::ORDERS)
        );
        let source = (
            record.headers[dlq::SOURCE_PARTITION].clone(),
            record.headers[dlq::SOURCE_OFFSET].clone(),
        );
        assert!(
            sources.insert(source.clone()),
            "record {source:?} dead-lettered twice"
        );
        assert!(
            record
                .key
                .as_deref()
                .is_some_and(|k| k.starts_with("malformed-")),
            "only malformed records are dead-lettered: {:?}",
            record.key
        );
        *by_kind.entry(kind.clone()).or_insert(0) += 1;
    }
    eprintln!(
        "[malformed] sent {kinds:?}; {} pick lists; {} DLQ records (read_committed), {} \
         distinct sources, reasons {by_kind:?}; {:.0}s",
        committed.records,
        dead.len(),
        sources.len(),
        suite.started.elapsed().as_secs_f64()
    );
    assert_eq!(dead.len(), BAD, "every malformed record dead-lettered once");
}
