//! Opt-in: the library against a real Kafka cluster or Confluent Cloud.
//!
//! These tests are `#[ignore]`d, so `cargo test` reports them as ignored rather than passed.
//! Run them with a client.properties for a cluster where the application's topics exist
//! (`terraform apply`), with credentials allowed to write and read them:
//!
//! ```sh
//! GROCERY_REAL_KAFKA_CONFIG=/path/to/client.properties \
//!     cargo test -p grocery-events --test real_kafka -- --ignored
//! ```
//!
//! Without the variable they fail with a message saying so. They check what the local mock
//! cluster cannot: SASL/SSL or OAuth against a real broker, and that records of an aborted
//! transaction stay invisible to `read_committed` consumers.

use std::{collections::BTreeSet, time::Duration};

use avro_events::KafkaContext;
use grocery_events::{Client, Config, Consumer, ConsumerOptions, Order, OrderLine};
use rdkafka::{
    config::FromClientConfigAndContext,
    producer::{FutureProducer, FutureRecord, Producer as _},
};
use uuid::Uuid;

fn config() -> Config {
    let path = std::env::var("GROCERY_REAL_KAFKA_CONFIG").expect(
        "set GROCERY_REAL_KAFKA_CONFIG to the client.properties of a real cluster to run this suite",
    );
    let config = Config::from_file(path)
        .unwrap()
        .with_env_overrides(grocery_events::ENV_PREFIX);
    config.validate().unwrap();
    config
}

fn order(run: Uuid, n: u32) -> Order {
    Order {
        order_id: Uuid::new_v5(&run, &n.to_be_bytes()),
        customer_id: run,
        items: vec![OrderLine {
            sku: "PRD-01001".into(),
            name: "Bananas (per lb)".into(),
            quantity: 1,
            unit_price_cents: 59,
        }],
        order_total_cents: 59,
        currency: "USD".into(),
        order_time: 0,
        substitution: None,
        delivery_window: None,
    }
}

/// Reads from the orders topic until every id in `want` was seen (other records are skipped).
async fn read_ids(consumer: &Consumer<Order>, run: Uuid, want: usize) -> BTreeSet<Uuid> {
    let mut seen = BTreeSet::new();
    while seen.len() < want {
        let received = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {want} records arrived", seen.len()))
            .unwrap();
        if received.event.customer_id == run {
            seen.insert(received.event.order_id);
        }
        consumer.ack(&received.meta).unwrap();
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "opt-in: needs GROCERY_REAL_KAFKA_CONFIG (a real cluster)"]
async fn typed_round_trip_on_a_real_cluster() {
    let config = config();
    let run = Uuid::new_v4();
    let client = Client::from_config(config.clone()).unwrap();
    let consumer = Client::from_config(config.set("auto.offset.reset", "latest"))
        .unwrap()
        .consumer::<Order>(ConsumerOptions::new(format!("grocery-events-it-{run}")))
        .await
        .unwrap();
    // Give the group its assignment before producing, since it starts at the latest offset.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let producer = client.producer().await.unwrap();
    for n in 0..20 {
        producer.send(&order(run, n)).await.unwrap();
    }
    assert_eq!(read_ids(&consumer, run, 20).await.len(), 20);
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "opt-in: needs GROCERY_REAL_KAFKA_CONFIG (a real cluster)"]
async fn aborted_transactions_stay_invisible_to_read_committed_consumers() {
    let base = config();
    let run = Uuid::new_v4();
    let client = Client::from_config(base.clone().set("auto.offset.reset", "latest")).unwrap();
    let consumer = client
        .consumer::<Order>(ConsumerOptions::new(format!("grocery-events-it-{run}")))
        .await
        .unwrap();
    let codec = client.codec().clone();
    tokio::time::sleep(Duration::from_secs(10)).await;

    let mut rd = base.rdkafka_config();
    rd.set("transactional.id", format!("grocery-events-it-{run}"));
    let producer: FutureProducer<KafkaContext> =
        FutureProducer::from_config_and_context(&rd, KafkaContext::new("it")).unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();

    let send = |n: u32| {
        let producer = producer.clone();
        let codec = codec.clone();
        async move {
            let order = order(run, n);
            let bytes = codec.encode(&order).await.unwrap();
            producer
                .send(
                    FutureRecord::to("grocery.orders.v1")
                        .key(&order.order_id.to_string())
                        .payload(&bytes),
                    Duration::from_secs(30),
                )
                .await
                .unwrap();
        }
    };
    producer.begin_transaction().unwrap();
    send(1).await;
    producer.abort_transaction(Duration::from_secs(30)).unwrap();
    producer.begin_transaction().unwrap();
    send(2).await;
    producer
        .commit_transaction(Duration::from_secs(30))
        .unwrap();

    let seen = read_ids(&consumer, run, 1).await;
    assert_eq!(seen, BTreeSet::from([order(run, 2).order_id]));
    // Nothing else of this run arrives: the aborted record stays invisible.
    if let Ok(Ok(extra)) = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await {
        assert_ne!(extra.event.customer_id, run, "aborted record was delivered");
    }
    consumer.close().await.unwrap();
}
