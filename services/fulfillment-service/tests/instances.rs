//! Two instances of the fulfillment service share the work in one consumer group.

use std::{collections::BTreeSet, process::Command, time::Duration};

use grocery_events::{Client, Config, ConsumerOptions, PickList};
use grocery_store::{Catalog, OrderSimulator};
use test_support::{Output, Process, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_fulfillment-service");
const WAIT: Duration = Duration::from_secs(90);
const ORDERS: usize = 60;

fn consumed(text: &str) -> u64 {
    test_support::metric(text, "fulfillment_orders_consumed_total").unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_in_one_group_share_the_orders() {
    let stack = grocery_stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config_file = write_config(dir.path(), &stack.client_properties()).unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();

    let start = || {
        let mut command = Command::new(BIN);
        command.arg("--config").arg(&config_file).args([
            "--listen",
            "127.0.0.1:0",
            "--group",
            "shared",
        ]);
        Process::start("fulfillment-service", &mut command, Output::default()).unwrap()
    };
    let mut instances = [start(), start()];
    let bases: Vec<String> = instances
        .iter()
        .map(|i| {
            format!(
                "http://{}",
                i.listening_addr(Duration::from_secs(60)).unwrap()
            )
        })
        .collect();
    // Both have joined once each has been assigned partitions.
    for instance in &instances {
        instance
            .stderr()
            .wait_for(WAIT, |l| l.contains("consumer subscribed"))
            .unwrap();
    }

    let catalog = Catalog::builtin();
    let mut simulator = OrderSimulator::new(11, &catalog);
    let producer = client.producer().await.unwrap();
    let mut order_ids = BTreeSet::new();
    let reader = client
        .consumer::<PickList>(ConsumerOptions::new("reader"))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    tokio::time::timeout(WAIT, async {
        // Orders keep coming while the group settles, as in a store.
        for _ in 0..ORDERS {
            let order = simulator.next_order(1_763_769_600_000);
            order_ids.insert(order.order_id);
            producer.send(&order).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while seen.len() < ORDERS {
            seen.insert(reader.recv().await.unwrap().event.order_id);
        }
    })
    .await
    .expect("a pick list for every order");
    assert_eq!(seen, order_ids);

    let http = reqwest::Client::new();
    let mut counts = Vec::new();
    for base in &bases {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        counts.push(consumed(&text));
    }
    assert!(
        counts.iter().sum::<u64>() >= ORDERS as u64,
        "consumed per instance: {counts:?}"
    );
    assert!(
        counts.iter().all(|&c| c > 0),
        "both instances did work: {counts:?}"
    );
    for instance in &mut instances {
        assert!(
            instance
                .terminate(Duration::from_secs(60))
                .unwrap()
                .success()
        );
    }
}
