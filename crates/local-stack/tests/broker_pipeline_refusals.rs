//! The `Pipeline` on the real broker when its outputs are refused, read back `read_committed`
//! by a second client:
//! - the pick-list subject not registered yet (`auto.register.schemas=false`), both modes: the
//!   orders wait, nothing is committed past them, `Pipeline::stalled` says why, and once the
//!   subject is registered every order has its pick list (transactional: exactly one);
//! - at-least-once: an input whose output is never delivered, followed by a poison record: the
//!   dead-lettered record's offset is not stored past the undelivered input;
//! - transactional: every other refusal the registry and the broker can give (401, 403, 503,
//!   registry down, a record larger than the topic takes, no right to write the topic): none
//!   loses an input; the registry's are waited out, the broker's stop the pipeline without
//!   committing past the input, which a restart processes once the limit or the ACL is changed.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_pipeline_refusals`.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU16, Ordering},
    },
    time::Duration,
};

use grocery_events::{
    Client, Config, Error, Event, Order, Outputs, PickList, Pipeline, PipelineOptions, topics,
};
use local_stack::{
    BrokerKind, KafkaAuth, Stack, StackOptions,
    broker::{AclOperation, AclResource, AclRule},
    verify::{committed_counts, committed_offsets, wait_for},
};
use rdkafka::{
    ClientConfig, Offset,
    admin::{
        AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
    },
    client::DefaultClientContext,
    producer::{FutureProducer, FutureRecord},
};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PICKLIST_SUBJECT: &str = "grocery.picklist.v1-value";

fn order(run: Uuid, n: u32) -> Order {
    grocery_stack::sample::milk_order(Uuid::new_v5(&run, &n.to_be_bytes()), run, 1)
}

async fn real_stack(auth: KafkaAuth) -> Stack {
    Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka { auth },
        ..grocery_stack::options()
    })
    .await
    .unwrap()
}

/// A pipeline running on its own task until stopped.
struct Running<In: Event> {
    pipeline: Arc<Pipeline<In>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<grocery_events::Result<()>>,
}

impl<In: Event> Running<In> {
    async fn start<O, F>(client: &Client, options: PipelineOptions, transform: F) -> Self
    where
        O: avro_events::IntoOutputs + 'static,
        F: FnMut(&grocery_events::Received<In>) -> O + Send + 'static,
    {
        let pipeline = Arc::new(client.pipeline::<In>(options).await.unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let pipeline = pipeline.clone();
            async move {
                pipeline
                    .run(transform, async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        let running = Self {
            pipeline,
            stop,
            task,
        };
        wait_for("a partition assigned", || {
            assert!(!running.task.is_finished(), "the pipeline ended");
            !running
                .pipeline
                .consumer()
                .context()
                .owned_partitions()
                .is_empty()
        })
        .await;
        running
    }

    /// Waits until the pipeline says it is stalled with a reason containing `needle`.
    async fn wait_stalled(&self, needle: &str) -> String {
        let mut reason = String::new();
        wait_for(&format!("the pipeline stalled on {needle}"), || {
            assert!(!self.task.is_finished(), "the pipeline ended");
            match self.pipeline.stalled() {
                Some(stalled) if stalled.contains(needle) => {
                    reason = stalled;
                    true
                }
                _ => false,
            }
        })
        .await;
        reason
    }

    async fn wait_produced(&self, topic: &str, at_least: u64) {
        let stats = self.pipeline.stats();
        wait_for(&format!("{at_least} outputs on {topic}"), || {
            assert!(!self.task.is_finished(), "the pipeline ended");
            stats.produced_to(topic) >= at_least
        })
        .await;
    }

    /// Stops the pipeline, which must end cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the pipeline stops within a minute")
            .expect("the task did not panic")
            .expect("the pipeline ends without an error");
    }

    /// Waits for the pipeline to end on its own, with an error.
    async fn failed(self) -> Error {
        tokio::time::timeout(Duration::from_secs(120), self.task)
            .await
            .expect("the pipeline stops within two minutes")
            .expect("the task did not panic")
            .expect_err("the pipeline ends with an error")
    }
}

/// Sends `orders` and waits for their acknowledgements.
async fn send_orders(client: &Client, orders: &[Order]) {
    let producer = client.producer().await.unwrap();
    for order in orders {
        producer.send(order).await.unwrap();
    }
}

/// The late-schema run: 20 orders while `grocery.picklist.v1-value` is not registered, then
/// the subject is registered and 5 more orders arrive.
async fn late_subject(transactional: bool) {
    const BEFORE: u32 = 20;
    const AFTER: u32 = 5;
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::None).await;
    let run = Uuid::new_v4();
    let mode = if transactional {
        "transactional"
    } else {
        "at-least-once"
    };
    let base = Config::from_properties_str(&stack.client_properties()).unwrap();
    // Orders are written by a client that registers their schema; fulfillment's does not.
    let order_client = Client::from_config(base.clone()).unwrap();
    let mut config = base.set("auto.register.schemas", "false");
    if transactional {
        config = config.set("transactional.id", format!("fulfillment-late-{run}"));
    }
    let client = Client::from_config(config).unwrap();
    let mut options = PipelineOptions::new(format!("fulfillment-late-{run}"));
    options.consumer.initial_backoff = Duration::from_millis(100);
    let running = Running::<Order>::start(&client, options, |received| {
        vec![grocery_stack::sample::pick_list_for(&received.event)]
    })
    .await;

    let orders: Vec<Order> = (0..BEFORE + AFTER).map(|n| order(run, n)).collect();
    send_orders(&order_client, &orders[..BEFORE as usize]).await;
    let reason = running.wait_stalled(PICKLIST_SUBJECT).await;
    if transactional {
        // More than one backoff step (each one an aborted transaction) before the subject comes.
        let stats = running.pipeline.stats();
        wait_for("three aborted transactions", || {
            stats.aborted.load(Ordering::Relaxed) >= 3
        })
        .await;
    }
    assert_eq!(running.pipeline.stats().produced_to(PickList::TOPIC), 0);
    let aborted_while_missing = running.pipeline.stats().aborted.load(Ordering::Relaxed);

    order_client
        .codec()
        .registry()
        .register(PICKLIST_SUBJECT, PickList::SCHEMA)
        .await
        .unwrap();
    send_orders(&order_client, &orders[BEFORE as usize..]).await;
    running
        .wait_produced(PickList::TOPIC, u64::from(BEFORE + AFTER))
        .await;
    assert_eq!(running.pipeline.stalled(), None, "no longer stalled");
    let pipeline = running.pipeline.clone();
    running.stop().await;

    let wanted: BTreeSet<Uuid> = orders.iter().map(|o| o.order_id).collect();
    let counts = committed_counts::<PickList>(
        stack.bootstrap_servers(),
        order_client.codec(),
        &wanted,
        |p| p.order_id,
    );
    let lists: u32 = counts.values().sum();
    let missing = wanted.len() - counts.len();
    let duplicates = lists - counts.len() as u32;
    eprintln!(
        "late subject ({mode}): {} orders in, {lists} pick lists out (read_committed), {missing} \
         orders without one, {duplicates} duplicates; {aborted_while_missing} transactions \
         aborted while the subject was missing ({} in all); stalled on: {reason}",
        wanted.len(),
        pipeline.stats().aborted.load(Ordering::Relaxed),
    );
    assert_eq!(missing, 0, "every order has its pick list");
    if transactional {
        assert_eq!(duplicates, 0, "exactly one pick list per order");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_output_subject_is_waited_out_at_least_once() {
    late_subject(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_output_subject_is_waited_out_in_transactions() {
    late_subject(true).await;
}

/// The input of the ordering test, on its own one-partition topic.
#[derive(serde::Serialize, serde::Deserialize)]
struct Probe {
    n: i32,
}

impl Event for Probe {
    const TOPIC: &'static str = "broker-pipeline.probes";
    const SCHEMA: &'static str =
        r#"{"type": "record", "name": "Probe", "fields": [{"name": "n", "type": "int"}]}"#;
    const FULL_NAME: &'static str = "Probe";
    fn key(&self) -> String {
        self.n.to_string()
    }
}

/// An output to a topic that does not exist (the broker does not create topics): its delivery
/// fails when `message.timeout.ms` passes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Undeliverable {
    n: i32,
}

impl Event for Undeliverable {
    const TOPIC: &'static str = "broker-pipeline.no-such-topic";
    const SCHEMA: &'static str =
        r#"{"type": "record", "name": "Undeliverable", "fields": [{"name": "n", "type": "int"}]}"#;
    const FULL_NAME: &'static str = "Undeliverable";
    fn key(&self) -> String {
        self.n.to_string()
    }
}

/// The offset `group` committed on `topic[0]`, if any.
fn committed_offset(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    match committed_offsets(bootstrap, group, topic, 1)[0].1 {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_least_once_dead_lettering_never_acknowledges_past_an_undelivered_input() {
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::None).await;
    let broker = stack.kafka_broker().unwrap();
    broker.create_topic(Probe::TOPIC, 1).await.unwrap();
    broker
        .create_topic(&topics::dead_letter(Probe::TOPIC), 1)
        .await
        .unwrap();
    let run = Uuid::new_v4();
    let group = format!("fulfillment-order-{run}");
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("message.timeout.ms", "5000");
    let client = Client::from_config(config).unwrap();
    // Offset 0: an input whose output is never delivered; offset 1: a poison record.
    client
        .producer()
        .await
        .unwrap()
        .send(&Probe { n: 0 })
        .await
        .unwrap();
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    raw.send(
        FutureRecord::<str, [u8]>::to(Probe::TOPIC)
            .key("poison")
            .payload(b"not Confluent-framed Avro"),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    let running =
        Running::<Probe>::start(&client, PipelineOptions::new(group.clone()), |received| {
            vec![Undeliverable {
                n: received.event.n,
            }]
        })
        .await;
    let pipeline = running.pipeline.clone();
    let error = running.failed().await;
    eprintln!("the pipeline stopped: {error}");
    assert!(
        matches!(&error, Error::Kafka { topic: Some(t), .. } if t == Undeliverable::TOPIC),
        "{error}"
    );
    // Whatever was acknowledged is committed now.
    pipeline.consumer().commit().await.unwrap();
    drop(pipeline);
    let committed = committed_offset(stack.bootstrap_servers(), &group, Probe::TOPIC);
    eprintln!("committed offset after the failed delivery of offset 0: {committed:?}");
    assert!(
        committed.is_none_or(|offset| offset <= 0),
        "the group committed offset {committed:?}, past the undelivered input at offset 0"
    );
    stack.shutdown().await;
}

/// How the test's registry proxy answers.
#[derive(Clone, Copy)]
enum Registry {
    /// Forwards every request to the real registry.
    Pass,
    /// Answers every request with this HTTP status.
    Refuse(u16),
    /// Not listening: connections are refused.
    Down,
}

/// An HTTP proxy in front of the stack's Schema Registry that can refuse or go away.
struct RegistryProxy {
    url: String,
    refuse: Arc<AtomicU16>,
    up: watch::Sender<bool>,
}

impl RegistryProxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refuse = Arc::new(AtomicU16::new(0));
        let (up, mut up_rx) = watch::channel(true);
        let state = (refuse.clone(), upstream, reqwest::Client::new());
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let listening = match listener.take() {
                    Some(listener) => listener,
                    None => tokio::net::TcpListener::bind(addr).await.unwrap(),
                };
                let app = axum::Router::new()
                    .fallback(forward)
                    .with_state(state.clone());
                let mut down = up_rx.clone();
                axum::serve(listening, app)
                    .with_graceful_shutdown(async move {
                        let _ = down.wait_for(|up| !*up).await;
                    })
                    .await
                    .unwrap();
                if up_rx.wait_for(|up| *up).await.is_err() {
                    return;
                }
            }
        });
        Self {
            url: format!("http://{addr}"),
            refuse,
            up,
        }
    }

    fn set(&self, registry: Registry) {
        match registry {
            Registry::Pass => {
                self.refuse.store(0, Ordering::SeqCst);
                self.up.send_replace(true);
            }
            Registry::Refuse(status) => {
                self.refuse.store(status, Ordering::SeqCst);
                self.up.send_replace(true);
            }
            Registry::Down => {
                self.up.send_replace(false);
            }
        }
    }
}

type ProxyState = (Arc<AtomicU16>, String, reqwest::Client);

async fn forward(
    axum::extract::State((refuse, upstream, client)): axum::extract::State<ProxyState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let status = refuse.load(Ordering::SeqCst);
    if status != 0 {
        let status = axum::http::StatusCode::from_u16(status).unwrap();
        let body = format!(
            r#"{{"error_code": {}, "message": "refused by the test proxy"}}"#,
            u32::from(status.as_u16()) * 100 + 1
        );
        return (status, body).into_response();
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut upstream_request = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            upstream_request = upstream_request.header(name, value);
        }
    }
    let answer = upstream_request.send().await.unwrap();
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .cloned();
    let bytes = answer.bytes().await.unwrap();
    let mut response = (status, bytes).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, content_type);
    }
    response
}

/// An output larger than the topic made for it takes (`max.message.bytes=1024`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Bulky {
    order_id: Uuid,
    filler: String,
}

impl Event for Bulky {
    const TOPIC: &'static str = "broker-pipeline.bulky";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Bulky", "fields": [
        {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "filler", "type": "string"}]}"#;
    const FULL_NAME: &'static str = "Bulky";
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

/// An output to a topic fulfillment's identity may not write until the test allows it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Guarded {
    order_id: Uuid,
}

impl Event for Guarded {
    const TOPIC: &'static str = "broker-pipeline.guarded";
    const SCHEMA: &'static str = r#"{"type": "record", "name": "Guarded", "fields": [
        {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}}]}"#;
    const FULL_NAME: &'static str = "Guarded";
    fn key(&self) -> String {
        self.order_id.to_string()
    }
}

/// What a refusal scenario's transform writes for each of its orders.
#[derive(Clone, Copy, Debug)]
enum Output {
    PickList,
    Bulky,
    Guarded,
}

impl Output {
    fn topic(self) -> &'static str {
        match self {
            Self::PickList => PickList::TOPIC,
            Self::Bulky => Bulky::TOPIC,
            Self::Guarded => Guarded::TOPIC,
        }
    }

    fn of(self, order: &Order) -> Outputs {
        let mut outputs = Outputs::new();
        match self {
            Self::PickList => outputs.push(grocery_stack::sample::pick_list_for(order)),
            Self::Bulky => outputs.push(Bulky {
                order_id: order.order_id,
                filler: "x".repeat(4096),
            }),
            Self::Guarded => outputs.push(Guarded {
                order_id: order.order_id,
            }),
        };
        outputs
    }
}

/// How a scenario's refusal ends.
enum Lift {
    /// The registry answers again: the same pipeline goes on.
    Registry,
    /// The broker refused for good: the pipeline stops; once `lift` ran, a new instance (same
    /// group, same `transactional.id`) processes the orders.
    Restart,
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_outputs_lose_nothing_in_transactions() {
    const ORDERS: u32 = 10;
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::Plain).await;
    let broker = stack.kafka_broker().unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.plaintext_bootstrap())
        .create()
        .unwrap();
    let admin_options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let bulky =
        NewTopic::new(Bulky::TOPIC, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "1024");
    let guarded = NewTopic::new(Guarded::TOPIC, 1, TopicReplication::Fixed(1));
    for result in admin
        .create_topics([&bulky, &guarded], &admin_options)
        .await
        .unwrap()
    {
        result.unwrap();
    }
    let fulfillment = grocery_stack::FULFILLMENT;
    let user = format!("User:{fulfillment}");
    broker
        .allow(
            [AclOperation::Write, AclOperation::Describe]
                .into_iter()
                .map(|op| AclRule::allow(user.clone(), AclResource::Topic, Bulky::TOPIC, op))
                .collect(),
        )
        .await
        .unwrap();

    let admin_client = stack.client().unwrap();
    let proxy = RegistryProxy::start(stack.registry_url()).await;
    let fulfillment_config =
        Config::from_properties_str(&stack.client_properties_for(fulfillment).unwrap())
            .unwrap()
            .set("schema.registry.url", proxy.url.clone());

    // Name, output, how the registry answers, what the pipeline reports, how it ends.
    let refused = "refused the credentials";
    let scenarios = [
        (
            "registry-401",
            Output::PickList,
            Some(Registry::Refuse(401)),
            refused,
            Lift::Registry,
        ),
        (
            "registry-403",
            Output::PickList,
            Some(Registry::Refuse(403)),
            refused,
            Lift::Registry,
        ),
        (
            "registry-503",
            Output::PickList,
            Some(Registry::Refuse(503)),
            "unreachable",
            Lift::Registry,
        ),
        (
            "registry-down",
            Output::PickList,
            Some(Registry::Down),
            "unreachable",
            Lift::Registry,
        ),
        ("too-large", Output::Bulky, None, "", Lift::Restart),
        (
            "unauthorized-topic",
            Output::Guarded,
            None,
            "",
            Lift::Restart,
        ),
    ];
    let mut figures = Vec::new();
    for (name, output, refusal, stalled_on, lift) in scenarios {
        let run = Uuid::new_v4();
        let warm_up = order(run, 0);
        let orders: Vec<Order> = (1..=ORDERS).map(|n| order(run, n)).collect();
        let wanted: BTreeSet<Uuid> = orders.iter().map(|o| o.order_id).collect();
        let config = fulfillment_config
            .clone()
            .set("transactional.id", format!("fulfillment-refusal-{name}"));
        let group = format!("fulfillment-refusal-{name}-{run}");
        let start = |client: Client, warmed: Arc<AtomicBool>| {
            let wanted = wanted.clone();
            let warm_up = warm_up.order_id;
            let group = group.clone();
            async move {
                let mut options = PipelineOptions::new(group);
                options.consumer.initial_backoff = Duration::from_millis(100);
                let running = Running::<Order>::start(&client, options, move |received| {
                    let order = &received.event;
                    if order.order_id == warm_up {
                        warmed.store(true, Ordering::SeqCst);
                    }
                    if wanted.contains(&order.order_id) {
                        output.of(order)
                    } else {
                        Outputs::new()
                    }
                })
                .await;
                (running, client)
            }
        };
        // A new client for each scenario: no schema cached. The warm-up order (no output)
        // caches the order schema while the registry still answers.
        proxy.set(Registry::Pass);
        let warmed = Arc::new(AtomicBool::new(false));
        let (running, _client) =
            start(Client::from_config(config.clone()).unwrap(), warmed.clone()).await;
        send_orders(&admin_client, std::slice::from_ref(&warm_up)).await;
        wait_for("the warm-up order", || warmed.load(Ordering::SeqCst)).await;
        if let Some(refusal) = refusal {
            proxy.set(refusal);
        }
        send_orders(&admin_client, &orders).await;
        let outcome = match lift {
            Lift::Registry => {
                let reason = running.wait_stalled(stalled_on).await;
                let stats = running.pipeline.stats();
                wait_for("two aborted transactions", || {
                    stats.aborted.load(Ordering::Relaxed) >= 2
                })
                .await;
                assert_eq!(stats.produced_to(output.topic()), 0);
                proxy.set(Registry::Pass);
                running
                    .wait_produced(output.topic(), u64::from(ORDERS))
                    .await;
                running.stop().await;
                format!("waited out ({reason})")
            }
            Lift::Restart => {
                let error = running.failed().await;
                match output {
                    Output::Bulky => {
                        assert!(error.to_string().contains("too large"), "{error}");
                        let raise = AlterConfig::new(ResourceSpecifier::Topic(Bulky::TOPIC))
                            .set("max.message.bytes", "1048588");
                        for result in admin.alter_configs([&raise], &admin_options).await.unwrap() {
                            result.unwrap();
                        }
                    }
                    _ => {
                        assert!(error.is_refused(), "{error}");
                        broker
                            .allow(
                                [AclOperation::Write, AclOperation::Describe]
                                    .into_iter()
                                    .map(|op| {
                                        AclRule::allow(
                                            user.clone(),
                                            AclResource::Topic,
                                            Guarded::TOPIC,
                                            op,
                                        )
                                    })
                                    .collect(),
                            )
                            .await
                            .unwrap();
                    }
                }
                let (again, _client) = start(
                    Client::from_config(config.clone()).unwrap(),
                    Arc::new(AtomicBool::new(false)),
                )
                .await;
                again.wait_produced(output.topic(), u64::from(ORDERS)).await;
                again.stop().await;
                format!("stopped ({error}), restarted after the fix")
            }
        };
        let counts = match output {
            Output::PickList => committed_counts::<PickList>(
                broker.plaintext_bootstrap().as_str(),
                admin_client.codec(),
                &wanted,
                |p| p.order_id,
            ),
            Output::Bulky => committed_counts::<Bulky>(
                broker.plaintext_bootstrap().as_str(),
                admin_client.codec(),
                &wanted,
                |b| b.order_id,
            ),
            Output::Guarded => committed_counts::<Guarded>(
                broker.plaintext_bootstrap().as_str(),
                admin_client.codec(),
                &wanted,
                |g| g.order_id,
            ),
        };
        let out: u32 = counts.values().sum();
        figures.push(format!(
            "{name}: {ORDERS} orders in, {out} outputs out (read_committed), {} orders without \
             one; {outcome}",
            wanted.len() - counts.len()
        ));
        assert_eq!(
            counts.len(),
            wanted.len(),
            "{name}: every order has its output"
        );
        assert!(
            counts.values().all(|c| *c == 1),
            "{name}: exactly one each: {counts:?}"
        );
    }
    for line in figures {
        eprintln!("refused outputs, transactional: {line}");
    }
    stack.shutdown().await;
}
