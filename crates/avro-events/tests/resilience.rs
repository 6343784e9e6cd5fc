//! Regression tests for the consumer and pipeline defects found under rebalances, outages and
//! cancellation (issue 10), on the local stack. Each fails on the code before the fix.

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use avro_events::{Client, Config, Consumer, PipelineOptions};
use local_stack::Stack;
use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use utils::{
    fake_registry::FakeRegistry,
    token_server::{CLIENT_ID, CLIENT_SECRET, Mode, TokenServer},
};
use uuid::Uuid;

use utils::events::{self, group, produce_raw, stack};
/// The made-up events of these tests: a reading in, an alert out.
type Order = events::Reading;
type PickList = events::Alert;

mod utils;

const WAIT: Duration = Duration::from_secs(30);

fn order(n: u32) -> Order {
    events::reading(n)
}

fn pick_list(order: &Order) -> PickList {
    events::alert_for(order)
}

/// Counts the records on `topic` (all partitions) by reading it from the start.
fn count_records(stack: &Stack, topic: &str, expect_at_least: usize) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", format!("count-{}", Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut count = 0;
    let deadline = std::time::Instant::now() + WAIT;
    let mut quiet_polls = 0;
    // Reads until at least `expect_at_least` arrived and then three empty polls in a row.
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(_)) => {
                count += 1;
                quiet_polls = 0;
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None if count >= expect_at_least => {
                quiet_polls += 1;
                if quiet_polls >= 3 {
                    break;
                }
            }
            None => {}
        }
    }
    count
}

/// An acknowledgement that arrives after its partition was revoked used to fail with
/// `Store offset error: State`, which ended `Pipeline::run` and the instance.
#[tokio::test(flavor = "multi_thread")]
async fn an_ack_after_revocation_is_dropped_not_an_error() {
    let stack = stack().await;
    let topic = stack.unique_topic("late-ack", 1).unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    producer.send_to(&topic, &order(1)).await.unwrap();

    let consumer = client
        .consumer_subscribed_to::<Order>(group("late-ack"), &[&topic])
        .await
        .unwrap();
    let received = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        consumer.context().owned_partitions(),
        vec![(topic.clone(), 0)]
    );

    // Leave the group: the revocation is served by the next poll.
    consumer.rdkafka().unsubscribe();
    while !consumer.context().owned_partitions().is_empty() {
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
    }
    consumer
        .ack(&received.meta)
        .expect("a late ack is not an error");
    assert_eq!(consumer.late_acks(), 1);
}

/// A `Producer` built from a configuration with `transactional.id` (the fulfillment
/// service's) could not send: librdkafka refuses a transactional producer's records outside a
/// transaction.
#[tokio::test(flavor = "multi_thread")]
async fn a_producer_from_a_transactional_config_sends() {
    let stack = stack().await;
    let topic = stack.unique_topic("txn-config", 1).unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("transactional.id", format!("t-{}", Uuid::new_v4().simple()));
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let delivered = tokio::time::timeout(WAIT, producer.send_to(&topic, &order(2)))
        .await
        .expect("delivered in time")
        .expect("a plain producer sends outside transactions");
    assert_eq!(delivered.offset, 0);
}

/// A `recv` cancelled while it awaited the dead-letter delivery (as in `select!` with a
/// timeout) used to dead-letter the same record again on the next call.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_recv_does_not_dead_letter_twice() {
    let stack = stack().await;
    let topic = stack.unique_topic("dlq-cancel", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    producer.send_to(&topic, &order(1)).await.unwrap();
    produce_raw(&stack, &topic, "poison", b"not avro at all").await;
    producer.send_to(&topic, &order(3)).await.unwrap();

    let consumer = client
        .consumer_subscribed_to::<Order>(group("dlq-cancel"), &[&topic])
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event, order(1));
    // Every answer of the broker now takes 1.5 s: the dead-letter produce stays in flight
    // while each `recv` below is cancelled after 200 ms.
    stack
        .kafka()
        .set_round_trip_time(1, Duration::from_millis(1500))
        .unwrap();
    let mut cancelled = 0;
    let third = loop {
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Ok(received) => break received.unwrap(),
            Err(_) => cancelled += 1,
        }
        assert!(cancelled < 300, "the third record never arrived");
    };
    stack
        .kafka()
        .set_round_trip_time(1, Duration::ZERO)
        .unwrap();
    assert_eq!(third.event, order(3));
    assert!(
        cancelled >= 3,
        "recv was cancelled mid-delivery ({cancelled} times)"
    );
    assert_eq!(consumer.dead_lettered(), 1);
    assert_eq!(
        count_records(&stack, &dlq, 1),
        1,
        "one dead-letter copy on {dlq}"
    );
}

/// Reads pick lists until `n` distinct orders have one.
async fn read(reader: &Consumer<PickList>, seen: &mut BTreeMap<Uuid, PickList>, n: usize) {
    while seen.len() < n {
        let received = tokio::time::timeout(Duration::from_secs(60), reader.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} pick lists", seen.len()))
            .unwrap();
        reader.ack(&received.meta).unwrap();
        seen.insert(received.event.reading_id, received.event);
    }
}

/// With every broker unreachable for a moment the pipeline used to end with `AllBrokersDown`,
/// which librdkafka reports as transient; it now reports the outage and goes on.
#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_rides_out_a_broker_outage() {
    let stack = stack().await;
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let mut options = PipelineOptions::new(format!("outage-{}", Uuid::new_v4().simple()));
    options.consumer.initial_backoff = Duration::from_millis(50);
    let pipeline = Arc::new(client.pipeline::<Order>(options).await.unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .run(|received| vec![pick_list(&received.event)], async {
                    let _ = stop_rx.await;
                })
                .await
        }
    });
    let reader = client
        .consumer::<PickList>(group("outage-reader"))
        .await
        .unwrap();
    let mut seen = BTreeMap::new();
    for n in 0..20 {
        producer.send(&order(n)).await.unwrap();
    }
    read(&reader, &mut seen, 20).await;

    stack.kafka().broker_down(1).unwrap();
    while pipeline.brokers_reachable() {
        assert!(
            !running.is_finished(),
            "the pipeline ended during the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !running.is_finished(),
        "the pipeline ended during the outage"
    );
    stack.kafka().broker_up(1).unwrap();
    for n in 20..40 {
        producer.send(&order(n)).await.unwrap();
    }
    read(&reader, &mut seen, 40).await;
    assert!(!running.is_finished(), "the pipeline kept running");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pipeline.stats().consumed.load(Ordering::Relaxed), 40);
}

/// A Schema Registry 401 during a cold decode (a token revoked or expired early) used to end
/// `recv` and so the pipeline; it is now retried, the next attempt fetches a new token, and the
/// record is handled (here: dead-lettered, since the fake registry's schema is not an order).
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_401_during_a_cold_decode_is_retried() {
    let stack = stack().await;
    let topic = stack.unique_topic("sr-401", 1).unwrap();
    let tokens = TokenServer::start(Duration::from_secs(600), Mode::Normal).await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let config = Config::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("schema.registry.url", &registry.url)
        .set("bearer.auth.credentials.source", "OAUTHBEARER")
        .set("bearer.auth.issuer.endpoint.url", &tokens.url)
        .set("bearer.auth.client.id", CLIENT_ID)
        .set("bearer.auth.client.secret", CLIENT_SECRET)
        .set("bearer.auth.logical.cluster", "lsrc-gr0c");
    let client = Client::from_config(config.clone()).unwrap();
    // Warm the token up on another schema id, then have the registry refuse it.
    let _ = client.codec().decode::<Order>(&[0, 0, 0, 0, 1, 0]).await;
    let first = tokens.issued()[0].token.clone();
    registry.revoke(&first);

    // Schema id 7, not cached: the first fetch meets the 401.
    produce_raw(&stack, &topic, "k", &[0, 0, 0, 0, 7, 1, 2, 3, 4]).await;
    produce_raw(&stack, &topic, "k", &[0, 0, 0, 0, 7, 5, 6, 7, 8]).await;
    let mut options = group("sr-401");
    options.initial_backoff = Duration::from_millis(20);
    let consumer = client
        .consumer_subscribed_to::<Order>(options, &[&topic])
        .await
        .unwrap();
    // recv must not fail: it handles both records and waits for a good one.
    let handled = async {
        while consumer.dead_lettered() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        outcome = consumer.recv() => panic!("recv returned: {:?}", outcome.map(|r| r.meta)),
        done = tokio::time::timeout(WAIT, handled) => done.expect("both records handled in time"),
    }
    assert_eq!(consumer.dead_lettered(), 2, "both records were handled");
    let refused = registry.seen().iter().filter(|s| !s.accepted).count();
    assert!(refused >= 1, "the registry refused the revoked token");
    assert_eq!(tokens.requests(), 2, "one new token after the 401");
}

/// `dlq.topic.suffix` used to be accepted and never read: records that cannot be decoded
/// always went to `<topic>.dlq`. The suffix now names the dead-letter topic, and one that
/// cannot end a topic name is refused when the client is built.
#[tokio::test(flavor = "multi_thread")]
async fn dlq_topic_suffix_names_the_dead_letter_topic() {
    let stack = stack().await;
    let topic = stack.unique_topic("dlq-suffix", 1).unwrap();
    let dead = format!("{topic}.dead-letters");
    stack.kafka().create_topic(&dead, 1).unwrap();
    stack
        .kafka()
        .create_topic(&format!("{topic}.dlq"), 1)
        .unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("dlq.topic.suffix", ".dead-letters");
    let hooks = Recording::default();
    let client = Client::builder(config.clone())
        .hooks(hooks.clone())
        .build()
        .unwrap();
    assert_eq!(client.dead_letter_suffix(), ".dead-letters");
    let producer = client.producer().await.unwrap();
    produce_raw(&stack, &topic, "poison", b"not avro at all").await;
    producer.send_to(&topic, &order(4)).await.unwrap();

    let consumer = client
        .consumer_subscribed_to::<Order>(group("dlq-suffix"), &[&topic])
        .await
        .unwrap();
    let received = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.event, order(4));
    assert_eq!(consumer.dead_lettered(), 1);
    assert_eq!(count_records(&stack, &dead, 1), 1, "the copy is on {dead}");
    assert_eq!(count_records(&stack, &format!("{topic}.dlq"), 0), 0);
    // The application's hooks were told, instead of the default log lines.
    assert_eq!(
        *hooks.dead_lettered.lock().unwrap(),
        std::slice::from_ref(&dead)
    );
    assert!(hooks.assigned.lock().unwrap().contains(&(topic.clone(), 0)));

    for bad in ["", "/dlq", ".dlq letters"] {
        let err = Client::from_config(config.clone().set("dlq.topic.suffix", bad)).unwrap_err();
        assert!(
            matches!(&err, avro_events::Error::Config { key, .. } if key == "dlq.topic.suffix"),
            "{bad:?}: {err}"
        );
    }
}

/// Hooks that record what they are told.
#[derive(Clone, Default)]
struct Recording {
    assigned: Arc<std::sync::Mutex<Vec<(String, i32)>>>,
    dead_lettered: Arc<std::sync::Mutex<Vec<String>>>,
}

impl avro_events::Hooks for Recording {
    fn assigned(&self, _client: &str, partitions: &rdkafka::TopicPartitionList) {
        self.assigned.lock().unwrap().extend(
            partitions
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition())),
        );
    }

    fn dead_lettered(&self, record: &avro_events::DeadLettered<'_>) {
        self.dead_lettered
            .lock()
            .unwrap()
            .push(record.dlq_topic.to_owned());
    }
}

/// Dropping a producer with records queued used to flush them (for up to 30 s) on the thread
/// that dropped it: on a runtime worker, so here, on a current-thread runtime, nothing else ran
/// meanwhile, and the broker coming back after the drop was seen only once the flush had given
/// up and the records were purged. Now the drop returns at once, the flush runs on the blocking
/// pool, and the record queued while the broker was down is delivered once it is back.
#[tokio::test(flavor = "current_thread")]
async fn dropping_a_producer_does_not_block_the_runtime() {
    let stack = stack().await;
    let topic = stack.unique_topic("dropped-producer", 1).unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200");
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    producer.send_to(&topic, &order(1)).await.unwrap();

    stack.kafka().broker_down(1).unwrap();
    let pending = producer.enqueue_to(&topic, &order(2)).await.unwrap();
    drop(producer);
    // Runs only once the drop has returned: on a current-thread runtime, nothing runs while
    // the dropping task blocks.
    stack.kafka().broker_up(1).unwrap();
    let delivered = pending
        .await
        .expect("the record queued before the drop is delivered once the broker is back");
    assert_eq!(delivered.offset, 1);
    assert_eq!(count_records(&stack, &topic, 2), 2);
}
