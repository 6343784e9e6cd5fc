//! Client metrics from librdkafka's statistics callback, against the local stack: the consumer
//! lag of an assigned partition drains to 0 once the application has read its records (the
//! lag arithmetic has unit tests in `src/stats.rs`), and the metrics encoded by
//! `prometheus-client` name the clients' traffic.

use std::time::Duration;

use grocery_events::{Client, Config, Order, OrderLine};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

fn order(n: u32) -> Order {
    Order {
        order_id: Uuid::from_u128(u128::from(n) + 1),
        customer_id: Uuid::from_u128(7),
        items: vec![OrderLine {
            sku: "PRD-00001".into(),
            name: "Bananas".into(),
            quantity: 1,
            unit_price_cents: 59,
        }],
        order_total_cents: 59,
        currency: "USD".into(),
        order_time: 1_763_769_600_000,
        substitution: None,
        delivery_window: None,
    }
}

/// Waits (polling the snapshot librdkafka refreshes every 100 ms) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_lag_and_traffic_come_from_librdkafka_statistics() {
    let stack = grocery_stack::start().await.unwrap();
    let topic = stack.unique_topic("stats", 1).unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("statistics.interval.ms", "100");
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    for n in 0..10 {
        producer.send_to(&topic, &order(n)).await.unwrap();
    }
    let consumer = client
        .consumer_subscribed_to::<Order>(format!("stats-{}", Uuid::new_v4().simple()), &[&topic])
        .await
        .unwrap();
    for _ in 0..10 {
        let received = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap()
            .unwrap();
        consumer.ack(&received.meta).unwrap();
    }
    // librdkafka hands statistics to a consumer while it polls: one more `recv`, pending (no
    // eleventh record), keeps it polling.
    let consumer = std::sync::Arc::new(consumer);
    let polling = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.recv().await.map(|r| r.meta) }
    });
    until("lag 0 after all ten", || {
        service_kit::stats::consumer_lag(consumer.context()) == Some(0)
            && consumer.context().statistics().is_some_and(|s| {
                s.topics
                    .get(&topic)
                    .and_then(|t| t.partitions.get(&0))
                    .is_some_and(|p| p.hi_offset == 10 && p.app_offset == 10)
            })
    })
    .await;
    until("the producer's statistics count its ten records", || {
        producer
            .context()
            .statistics()
            .is_some_and(|s| s.txmsgs >= 10)
    })
    .await;

    let mut metrics = service_kit::metrics::Metrics::new();
    metrics.clients([
        ("producer", producer.context().clone()),
        ("consumer", consumer.context().clone()),
    ]);
    let text = metrics.encode();
    println!("{text}");
    let value = |series: &str| -> f64 {
        test_support::metric(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(value("kafka_client_tx_messages_total{client=\"producer\"}") >= 10.0);
    assert!(value("kafka_client_rx_messages_total{client=\"consumer\"}") >= 10.0);
    assert!(value("kafka_client_tx_message_bytes_total{client=\"producer\"}") > 0.0);
    assert_eq!(
        value(&format!(
            "kafka_consumer_lag{{client=\"consumer\",topic=\"{topic}\",partition=\"0\"}}"
        )),
        0.0
    );
    // OpenMetrics: the counter family is named without `_total`, its samples with it.
    assert!(text.contains("# TYPE kafka_client_tx_messages counter"));
    assert!(text.contains("kafka_client_broker_rtt_avg_seconds{client=\"producer\",broker=\""));
    polling.abort();
    consumer.close().await.unwrap();
}

/// A replaced client (as a pipeline's watchdog replaces a stuck transactional producer):
/// the new librdkafka client counts from zero, the metrics go on from the old one's counts.
#[tokio::test(flavor = "multi_thread")]
async fn client_counters_stay_monotonic_when_the_client_is_replaced() {
    use std::sync::{Arc, Mutex};

    let stack = grocery_stack::start().await.unwrap();
    let topic = stack.unique_topic("stats-replaced", 1).unwrap();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("statistics.interval.ms", "100");
    let client = Client::from_config(config).unwrap();
    let first = client.producer().await.unwrap();
    let current = Arc::new(Mutex::new(first.context().clone()));
    let mut metrics = service_kit::metrics::Metrics::new();
    metrics.client_metrics(service_kit::stats::ClientMetrics::default().with_current(
        "producer",
        {
            let current = current.clone();
            move || current.lock().unwrap().clone()
        },
    ));
    let sent = |metrics: &service_kit::metrics::Metrics| {
        let text = metrics.encode();
        test_support::metric(&text, "kafka_client_tx_messages_total{client=\"producer\"}")
            .unwrap_or_else(|| panic!("no producer counter in\n{text}"))
    };

    for n in 0..10 {
        first.send_to(&topic, &order(n)).await.unwrap();
    }
    until(
        "the first producer's statistics count its ten records",
        || first.context().statistics().is_some_and(|s| s.txmsgs >= 10),
    )
    .await;
    let before = sent(&metrics);
    assert!(before >= 10.0, "{before}");

    let second = client.producer().await.unwrap();
    *current.lock().unwrap() = second.context().clone();
    for n in 10..13 {
        second.send_to(&topic, &order(n)).await.unwrap();
    }
    until(
        "the second producer's statistics count its three records",
        || second.context().statistics().is_some_and(|s| s.txmsgs >= 3),
    )
    .await;
    let own = second.context().statistics().unwrap().txmsgs as f64;
    let after = sent(&metrics);
    assert_eq!(
        after,
        before + own,
        "the counter goes on from the replaced client's {before}"
    );
    drop(first);
    drop(second);
}
