//! What the real-broker tests of the Order API and its views share: a stack on a real Apache
//! Kafka broker (SASL PLAIN, the local ACLs), a client properties file per identity, the
//! service binaries, and the views' checks (an order's statuses walked on, every
//! `GET /orders/{id}`, picklist-consumer's board). Shared by `order_state_failures.rs` and
//! `order_state_kafka_process.rs`; each uses part of it.
#![allow(dead_code)]

use std::{
    collections::BTreeMap, ffi::OsStr, path::Path, path::PathBuf, process::Command, sync::OnceLock,
    time::Duration,
};

use grocery_events::{OrderStatus, PickList};
use grocery_store::{
    PickListBuilder, StaffStep, fulfillment_statuses, picked_status, staff_status,
};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, broker::AclRule};
use serde_json::Value;
use test_support::{Output, Process, http_get};
use uuid::Uuid;
use xtask::services::Binaries;

/// How long a start, an answer or an exit may take on a loaded machine (a bound, not a pause).
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// The service binaries, built once per test binary.
pub(crate) fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries::build().expect("services build"))
}

/// The grocery stack on a real Apache Kafka broker (SASL PLAIN) with the services' ACLs.
pub(crate) async fn kafka_stack() -> Stack {
    kafka_stack_with(grocery_stack::service_acls()).await
}

/// [`kafka_stack`] with `acls` instead of the services' ACLs.
pub(crate) async fn kafka_stack_with(acls: Vec<AclRule>) -> Stack {
    Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::Plain,
        },
        acls,
        ..grocery_stack::options()
    })
    .await
    .expect("real-broker stack starts")
}

/// Writes `identity`'s client properties into `dir` and returns the file's path.
pub(crate) fn properties(stack: &Stack, dir: &Path, identity: &str) -> PathBuf {
    let path = dir.join(format!("client.{identity}.properties"));
    std::fs::write(&path, stack.client_properties_for(identity).unwrap()).unwrap();
    path
}

/// Starts `bin` with `args` and waits until it listens: the process and its address.
pub(crate) fn start<S: AsRef<OsStr>>(name: &str, bin: &Path, args: &[S]) -> (Process, String) {
    let process = Process::start(name, Command::new(bin).args(args), Output::default()).unwrap();
    let addr = process.listening_addr(WAIT).unwrap();
    (process, addr)
}

/// Stops `process` with SIGTERM and checks that it exited successfully.
pub(crate) fn stop(mut process: Process) {
    let status = process.terminate(WAIT).unwrap();
    assert!(status.success(), "{} exited with {status}", process.name());
}

/// The statuses of an order walked to `steps` staff steps (0 to 3), with the pick list.
pub(crate) fn walk(
    order: &grocery_events::Order,
    builder: &PickListBuilder,
    steps: usize,
) -> (PickList, Vec<OrderStatus>) {
    let pick_list = builder.build(order, order.order_time + 1);
    let mut statuses: Vec<OrderStatus> =
        fulfillment_statuses(order, &pick_list, order.order_time).into();
    for (n, step) in [StaffStep::StartPicking, StaffStep::Picked, StaffStep::Ready]
        .into_iter()
        .take(steps)
        .enumerate()
    {
        let time = order.order_time + 10 + n as i64;
        statuses.push(match step {
            StaffStep::Picked => picked_status(&pick_list, None, time).unwrap(),
            _ => staff_status(&pick_list, step, time),
        });
    }
    (pick_list, statuses)
}

/// Every order's `GET /orders/{id}` answer.
pub(crate) fn histories(addr: &str, orders: &[Uuid]) -> BTreeMap<Uuid, Value> {
    orders
        .iter()
        .map(|id| {
            let body = http_get(addr, &format!("/orders/{id}")).unwrap();
            (*id, serde_json::from_str(&body).unwrap())
        })
        .collect()
}

/// The board a page is sent on opening: each list's order id and state.
pub(crate) async fn board(addr: &str, lists: usize) -> BTreeMap<String, String> {
    let mut response = reqwest::get(format!("http://{addr}/events")).await.unwrap();
    let mut text = String::new();
    let mut board = BTreeMap::new();
    // The snapshot: one picklist event per list, each followed by its state when staff moved
    // it on; read until every list came.
    while text.matches("event: picklist").count() < lists {
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The last list's state event is sent right after it, in the same write or the next.
    if let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_millis(500), response.chunk()).await
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut event = "";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("event: ") {
            event = name;
        } else if let Some(data) = line.strip_prefix("data: ") {
            let json: Value = serde_json::from_str(data).unwrap();
            let order_id = json["order_id"].as_str().unwrap().to_owned();
            match event {
                "picklist" => {
                    board
                        .entry(order_id)
                        .or_insert("PICKLIST_CREATED".to_owned());
                }
                "status" => {
                    board.insert(order_id, json["state"].as_str().unwrap().to_owned());
                }
                _ => {}
            }
        }
    }
    board
}
