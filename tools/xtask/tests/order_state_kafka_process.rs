//! The views come back complete after a restart from the latest-state topic: on a real Apache
//! Kafka broker (SASL PLAIN, each service under its own identity and the ACLs of
//! `grocery_stack::service_acls`), an Order API that starts from
//! `grocery.order-state.v1` and the statuses after it holds exactly what one reading every
//! status holds, and reads none of the statuses the state already covers; picklist-consumer's
//! board restored from the state equals the one restored from every status.
//!
//! Built only with the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test order_state_kafka_process`.

mod order_api_support;

use grocery_events::{Client, Config, OrderLatestState, Record};
use grocery_stack::{ADMIN, ORDER_PRODUCER, PICKLIST_CONSUMER};
use grocery_store::{Catalog, OrderSimulator, PickListBuilder, PickerRoster};
use order_api_support::{
    WAIT, binaries, histories, kafka_stack, properties, shown_board, start, start_picklist, stop,
    walk,
};
use test_support::{http_get, metric, wait_metric};
use uuid::Uuid;

/// Orders in the first part (before the state is written) and in the tail (after it).
const ORDERS: usize = 40;
const TAIL_ORDERS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_restarted_from_the_state_topic_equal_a_full_replay() {
    let stack = kafka_stack().await;
    let dir = tempfile::tempdir().unwrap();
    let api_props = properties(&stack, dir.path(), ORDER_PRODUCER);
    let picklist_props = properties(&stack, dir.path(), PICKLIST_CONSUMER);
    let admin_props = properties(&stack, dir.path(), ADMIN);
    let admin = Client::from_config(Config::from_file(&admin_props).unwrap()).unwrap();
    let producer = admin.producer().await.unwrap();
    let binaries = binaries();

    let catalog = Catalog::builtin();
    let builder = PickListBuilder::new(&catalog, PickerRoster::default());
    let mut simulator = OrderSimulator::new(7, &catalog);
    let orders: Vec<grocery_events::Order> = (0..ORDERS + TAIL_ORDERS)
        .map(|i| simulator.next_order(1_700_000_000_000 + i as i64 * 1000))
        .collect();
    let ids: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();

    // Part one: every order's pick list, and its statuses walked to 0..=3 staff steps; one
    // status in five written twice.
    let mut sent = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, order) in orders[..ORDERS].iter().enumerate() {
        let (pick_list, statuses) = walk(order, &builder, i % 4);
        producer.send(&pick_list).await.unwrap();
        for status in statuses {
            producer.send(&status).await.unwrap();
            seen.insert(status.status_id);
            sent += 1;
            if sent % 5 == 0 {
                producer.send(&status).await.unwrap();
            }
        }
    }

    // The first Order API from state: the state topic is empty, so it reads every status and
    // writes one state record per order (under its own identity and transactional id).
    let api_args = |from: &'static str| -> Vec<String> {
        [
            "--config",
            api_props.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--view-from",
            from,
        ]
        .map(str::to_owned)
        .into()
    };
    let args = api_args("state");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (first, addr) = start("order-api-first", &binaries.order_producer, &args);
    wait_metric(&addr, "order_api_view_ready", WAIT, |v| v == 1.0).unwrap();
    // Every status folded: the view has read them all and the writer has caught up.
    wait_metric(&addr, "order_api_status_records_total", WAIT, |n| {
        n >= f64::from(sent + sent / 5)
    })
    .unwrap();
    wait_metric(&addr, "order_api_state_written_total", WAIT, |n| {
        n >= ORDERS as f64
    })
    .unwrap();
    // Stopping commits what is still queued.
    stop(first);
    let written = {
        let mut replay = admin
            .replay::<OrderLatestState>("order-state-test-reader", WAIT)
            .await
            .unwrap();
        let mut records = 0u32;
        while let Some(record) = replay.recv_until_caught_up().await.unwrap() {
            if let Record::Event(_) = record {
                records += 1;
            }
        }
        f64::from(records)
    };

    // The tail: statuses written after the state (some orders moved on, new orders, a repeat
    // of an old status).
    let mut tail = 0;
    let mut tail_repeats = 0;
    for (i, order) in orders.iter().enumerate().skip(ORDERS / 2) {
        let steps = if i < ORDERS { 3 } else { i % 4 };
        let (pick_list, statuses) = walk(order, &builder, steps);
        if i >= ORDERS {
            producer.send(&pick_list).await.unwrap();
        }
        for status in statuses {
            producer.send(&status).await.unwrap();
            tail += 1;
            if seen.contains(&status.status_id) {
                tail_repeats += 1;
            }
        }
    }

    // From state and from history, side by side (the history one writes nothing).
    let args = api_args("state");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (from_state, state_addr) = start("order-api-state", &binaries.order_producer, &args);
    let args = api_args("history");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (from_history, history_addr) = start("order-api-history", &binaries.order_producer, &args);
    for addr in [&state_addr, &history_addr] {
        wait_metric(addr, "order_api_view_ready", WAIT, |v| v == 1.0).unwrap();
    }
    let state_metrics = http_get(&state_addr, "/metrics").unwrap();
    // Every state record the first instance wrote (no compaction yet on a fresh topic), and
    // of the statuses the tail, plus at most the repeats that followed a partition's last
    // change (they wrote no state record, so the state does not cover them): every status
    // read beyond the tail is a repeat, none the state covers was folded again.
    let count = |name: &str| metric(&state_metrics, name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(
        count("order_api_state_records_total"),
        written,
        "{state_metrics}"
    );
    let extra = count("order_api_status_records_total") - f64::from(tail);
    let extra_repeats = count("order_api_status_repeats_total") - f64::from(tail_repeats);
    assert!(extra >= 0.0, "{state_metrics}");
    assert_eq!(extra, extra_repeats, "{state_metrics}");
    assert!(extra <= f64::from(sent / 5), "{state_metrics}");
    let want = histories(&history_addr, &ids);
    let got = histories(&state_addr, &ids);
    for id in &ids {
        assert_eq!(got[id], want[id], "order {id}");
        assert_eq!(got[id]["order_id"], id.to_string(), "{}", got[id]);
    }
    stop(from_state);
    stop(from_history);

    // picklist-consumer: the board restored from state equals the one restored from every
    // status, once the live consumer has shown every pick list too.
    let mut boards = Vec::new();
    for from in ["state", "history"] {
        let (consumer, addr, _) = start_picklist(&picklist_props, from);
        boards.push(shown_board(&addr, ids.len()).await);
        stop(consumer);
    }
    assert_eq!(boards[0].len(), ids.len(), "{:?}", boards[0]);
    assert_eq!(boards[0], boards[1]);
    let moved_on = boards[0]
        .values()
        .filter(|state| *state != "PICKLIST_CREATED")
        .count();
    assert!(moved_on > 0, "{:?}", boards[0]);
    stack.shutdown().await;
}
