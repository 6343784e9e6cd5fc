//! Dropping a `Consumer` on the real broker: with the broker up the drop leaves the group and
//! commits what was acknowledged before it returns (a second client finds the group empty and
//! the offset committed); with the broker shut down the drop returns instead of waiting out
//! librdkafka's close (the group's session timeout, 45 s by default; 5 minutes here).
//!
//! Before the close was bounded the second drop held its thread for the whole session timeout
//! (librdkafka cannot leave a group whose coordinator is gone; rdkafka's drop polls until it
//! has), so a process dropping its consumer after its cluster stopped hung that long.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p local-stack --features real-broker --test broker_consumer_drop`.

use std::time::Duration;

use grocery_events::{Client, Config, Consumer, Order, topics};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, verify};
use rdkafka::{
    ClientConfig, Offset,
    consumer::{BaseConsumer, Consumer as _},
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);
/// What the second drop is given, against the 5-minute session timeout it used to wait out
/// (the drop now waits at most 10 s).
const DROP_RETURNS: Duration = Duration::from_secs(120);
const SESSION_TIMEOUT_MS: &str = "300000";

/// A consumer of its own group that has read and acknowledged the one order on the topic.
async fn reading_consumer(client: &Client, group: &str) -> Consumer<Order> {
    let consumer = client
        .consumer_subscribed_to::<Order>(group, &[topics::ORDERS])
        .await
        .unwrap();
    let received = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("the order arrives")
        .unwrap();
    consumer.ack(&received.meta).unwrap();
    consumer
}

/// Drops `consumer` on a thread of its own; whether the drop returned within `within`.
fn drop_returns(consumer: Consumer<Order>, within: Duration) -> bool {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        drop(consumer);
        drop(done);
    });
    matches!(
        wait.recv_timeout(within),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    )
}

/// The members of `group` as the broker lists them to another client.
fn members(bootstrap: &str, group: &str) -> usize {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let groups = reader.fetch_group_list(Some(group), WAIT).unwrap();
    groups
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .map_or(0, |g| g.members().len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_dropped_after_the_broker_stopped_does_not_hang() {
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::None,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();
    let bootstrap = stack.bootstrap_servers().to_owned();
    let run = Uuid::new_v4();
    let config = Config::from_properties_str(&stack.client_properties())
        .unwrap()
        .set("session.timeout.ms", SESSION_TIMEOUT_MS);
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    producer
        .send(&grocery_stack::sample::milk_order(run, run, 1))
        .await
        .unwrap();
    drop(producer);

    // Broker up: the drop leaves the group and commits before it returns.
    let group = format!("drop-up-{}", run.simple());
    let consumer = reading_consumer(&client, &group).await;
    assert_eq!(members(&bootstrap, &group), 1, "the consumer is a member");
    assert!(
        drop_returns(consumer, DROP_RETURNS),
        "the drop with the broker up"
    );
    assert_eq!(members(&bootstrap, &group), 0, "the group was left");
    let committed =
        verify::committed_offsets(&bootstrap, &group, topics::ORDERS, topics::PARTITIONS);
    assert!(
        committed.iter().any(|(_, o)| *o == Offset::Offset(1)),
        "the acknowledged order (offset 0 of its partition) was committed at the drop: \
         {committed:?}"
    );

    // Broker gone: the drop returns.
    let group = format!("drop-gone-{}", run.simple());
    let consumer = reading_consumer(&client, &group).await;
    stack.shutdown().await;
    assert!(
        drop_returns(consumer, DROP_RETURNS),
        "a consumer dropped after the broker stopped did not return within {DROP_RETURNS:?} \
         (session.timeout.ms={SESSION_TIMEOUT_MS})"
    );
}
