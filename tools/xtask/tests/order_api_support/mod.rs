//! What the real-broker tests of the Order API and its views share: a stack on a real Apache
//! Kafka broker (SASL PLAIN, the local ACLs), a client properties file per identity, the
//! service binaries, an Order API run (its starts and logs), a `POST /orders` and its answer,
//! and the views' checks (an order's statuses walked on, every `GET /orders/{id}`,
//! picklist-consumer's board). Shared by `order_idempotency.rs`, `order_sender_failures.rs`,
//! `order_state_failures.rs` and `order_state_kafka_process.rs`; each uses part of it.
#![allow(dead_code)]

use std::{
    collections::BTreeMap, ffi::OsStr, path::Path, path::PathBuf, process::Command, sync::OnceLock,
    time::Duration,
};

use grocery_events::{OrderStatus, PickList};
use grocery_stack::ORDER_PRODUCER;
use grocery_store::{
    PickListBuilder, StaffStep, fulfillment_statuses, picked_status, staff_status,
};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, broker::AclRule};
use serde_json::Value;
use test_support::{Output, Process, http_get, wait_metric};
use uuid::Uuid;
use xtask::services::{self, Binaries};

/// How long a start, an answer or an exit may take on a loaded machine (a bound, not a pause).
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// The namespace of order ids made from idempotency keys (docs/services.md).
const KEY_NAMESPACE: Uuid = uuid::uuid!("6f1d1c2e-3b0a-4c55-9e44-8d3a1f0b7c21");

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

/// The order id of `key` sent by `client` (`None`: no `Client-Id` header), as documented.
pub(crate) fn order_id_of_key(client: Option<&str>, key: &str) -> Uuid {
    let scoped = match client {
        Some(client) => format!("{client}\n{key}"),
        None => key.to_owned(),
    };
    Uuid::new_v5(&KEY_NAMESPACE, scoped.as_bytes())
}

/// A stack, and the Order API started on it as often as a test asks (each start with its own
/// log in `dir`).
pub(crate) struct Run {
    pub(crate) stack: Stack,
    pub(crate) dir: tempfile::TempDir,
    /// The Order API's client properties.
    pub(crate) props: PathBuf,
    /// Order API starts so far.
    pub(crate) starts: usize,
}

impl Run {
    /// A stack on a real Apache Kafka broker with `acls`.
    pub(crate) async fn start(acls: Vec<AclRule>) -> Self {
        let stack = kafka_stack_with(acls).await;
        let dir = tempfile::tempdir().unwrap();
        let props = properties(&stack, dir.path(), ORDER_PRODUCER);
        Self {
            stack,
            dir,
            props,
            starts: 0,
        }
    }

    /// Starts the Order API (`serve` with `args`; `RUST_LOG=info` and `env`) and waits until
    /// it listens: the process and its base URL.
    pub(crate) fn start_api(&mut self, args: &[&str], env: &[(&str, &str)]) -> (Process, String) {
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("order-api.{}.log", self.starts));
        let mut all_env = vec![("RUST_LOG", "info")];
        all_env.extend_from_slice(env);
        let mut all_args: Vec<String> = vec![
            "--config".into(),
            self.props.display().to_string(),
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        all_args.extend(args.iter().map(|arg| (*arg).to_owned()));
        let api = services::start(
            &format!("order-api.{}", self.starts),
            &binaries().order_producer,
            &all_args,
            &all_env,
            &log,
        )
        .unwrap();
        let base = format!("http://{}", api.listening_addr(WAIT).unwrap());
        (api, base)
    }

    /// [`start_api`](Self::start_api), then waits until it has restored its idempotency keys
    /// (its transactions initialised: it sends and answers keyed requests from then on).
    pub(crate) fn start_ready_api(
        &mut self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Process, String) {
        let (api, base) = self.start_api(args, env);
        api.stderr()
            .wait_for(WAIT, |line| line.contains("idempotency keys restored"))
            .unwrap();
        (api, base)
    }
}

/// An answer: status, whether it is a replay, the body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) replayed: bool,
    pub(crate) body: Value,
}

/// `POST /orders` with `body`, from `client` (`Client-Id`) and under `key`
/// (`Idempotency-Key`) when given.
pub(crate) async fn post_order(
    base: &str,
    client: Option<&str>,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Result<Answer> {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/orders"))
        .json(body);
    if let Some(client) = client {
        request = request.header("client-id", client);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = response.json().await?;
    Ok(Answer {
        status,
        replayed,
        body,
    })
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

/// Starts picklist-consumer (group `picklist-consumer-{from}`, `--restore-from {from}`) and
/// waits until it has restored its board: the process, its address and the log line that
/// says it restored.
pub(crate) fn start_picklist(props: &Path, from: &str) -> (Process, String, String) {
    let group = format!("picklist-consumer-{from}");
    let args = [
        "--config",
        props.to_str().unwrap(),
        "--json",
        "--listen",
        "127.0.0.1:0",
        "--group",
        &group,
        "--restore-from",
        from,
    ];
    let (consumer, addr) = start(
        &format!("picklist-{from}"),
        &binaries().picklist_consumer,
        &args,
    );
    let restored = consumer
        .stderr()
        .wait_for(WAIT, |l| {
            l.contains("pick lists not yet ready put back on the board")
        })
        .unwrap();
    (consumer, addr, restored)
}

/// Waits until picklist-consumer at `addr` has shown `lists` pick lists, then returns the
/// board a page is sent on opening.
pub(crate) async fn shown_board(addr: &str, lists: usize) -> BTreeMap<String, String> {
    wait_metric(addr, "picklist_consumer_shown_total", WAIT, |n| {
        n >= lists as f64
    })
    .unwrap();
    board(addr, lists).await
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
