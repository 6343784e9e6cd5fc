//! Store staff's steps against the local stack: the page's JSON endpoints write PICKING_STARTED,
//! PICKED and READY to `grocery.order-status.v1` (read back with `read_committed`), refuse
//! steps out of order (409), unknown orders (404) and bad bodies (400); `--simulate-staff`
//! walks every pick list through all three.

use std::{collections::BTreeMap, process::Command, time::Duration};

use grocery_events::{
    Client, ConsumerOptions, Event, Headers, OrderState, OrderStatus, PickLine, PickList,
    StockStatus,
};
use serde_json::{Value, json};
use test_support::{Output, Process, write_config};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_picklist-consumer");
const WAIT: Duration = Duration::from_secs(60);
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn pick_list(n: u128) -> PickList {
    let line = |sku: &str, quantity, quantity_to_pick, walk_sequence| PickLine {
        sku: sku.into(),
        name: sku.into(),
        quantity,
        quantity_to_pick,
        aisle: "Dairy".into(),
        walk_sequence,
        stock_status: if quantity == quantity_to_pick {
            StockStatus::InStock
        } else {
            StockStatus::Short
        },
        note: None,
    };
    PickList {
        picklist_id: Uuid::from_u128(1000 + n),
        order_id: Uuid::from_u128(n),
        items_to_pick: vec![line("PRD-00001", 2, 2, 1), line("PRD-00002", 3, 1, 2)],
        assigned_picker: "Ana".into(),
        created_time: 1_763_769_600_000,
        delivery_window: None,
    }
}

/// Reads `count` statuses from the topic (a fresh group, `read_committed`).
async fn read_statuses(client: &Client, count: usize) -> Vec<(OrderStatus, Headers)> {
    let consumer = client
        .consumer::<OrderStatus>(ConsumerOptions::new(format!(
            "reader-{}",
            Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let mut statuses = Vec::new();
    tokio::time::timeout(WAIT, async {
        while statuses.len() < count {
            let received = consumer.recv().await.unwrap();
            statuses.push((received.event, received.headers));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {count} statuses", statuses.len()));
    statuses
}

/// A step as the page takes it: always with `Content-Type: application/json` (the server
/// refuses a step without it).
async fn post(http: &reqwest::Client, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = http.post(url).header("content-type", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_steps_are_written_in_order_and_wrong_ones_refused() {
    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let list = pick_list(1);
    client
        .producer()
        .await
        .unwrap()
        .send_with(&list, &Headers::new().with("traceparent", TRACEPARENT))
        .await
        .unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"]);
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let base = format!("http://{}", consumer.listening_addr(WAIT).unwrap());
    consumer
        .stdout()
        .wait_for(WAIT, |l| l.contains(&list.picklist_id.to_string()))
        .unwrap();
    let http = reqwest::Client::new();
    let url = |step: &str| format!("{base}/picklists/{}/{step}", list.order_id);
    let lines = |a: i32, b: i32| {
        json!({"lines": [
            {"sku": "PRD-00001", "quantity_picked": a},
            {"sku": "PRD-00002", "quantity_picked": b},
        ]})
    };

    let page = http.get(&base).send().await.unwrap().text().await.unwrap();
    for button in ["Start picking", "Picked", "Ready"] {
        assert!(page.contains(button), "the page has a {button:?} button");
    }

    // Out of order, unknown, malformed: refused, nothing written.
    let (code, body) = post(&http, url("ready"), None).await;
    assert_eq!(code, 409, "{body}");
    // Problem JSON (RFC 9457), the error shape of every HTTP API of the services.
    assert_eq!(
        body,
        json!({
            "type": "tag:grocery-events,2026:problem:step_out_of_order",
            "title": "Conflict",
            "status": 409,
            "detail": "cannot mark the order READY: it is PICKLIST_CREATED, and READY can only follow PICKED",
            "code": "step_out_of_order",
        })
    );
    let (code, body) = post(&http, url("picked"), Some(lines(2, 1))).await;
    assert_eq!(code, 409, "{body}");
    let unknown = format!("{base}/picklists/{}/picking-started", Uuid::from_u128(99));
    let (code, body) = post(&http, unknown, None).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["code"], "unknown_picklist", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("no pick list"));
    let (code, body) = post(&http, format!("{base}/picklists/42/ready"), None).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["code"], "malformed_order_id", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not an order id"));

    let (code, started) = post(&http, url("picking-started"), None).await;
    assert_eq!(code, 200, "{started}");
    assert_eq!(started["state"], "PICKING_STARTED");
    assert_eq!(started["actor"], "staff:Ana");
    // A retried step: the same status answered again, nothing written (counted at the end).
    let (code, body) = post(&http, url("picking-started"), None).await;
    assert_eq!(code, 200, "a step taken twice: {body}");
    assert_eq!(body, started, "the status recorded the first time");

    for bad in [
        json!("nope"),
        json!({"lines": [{"sku": "PRD-00001", "quantity_picked": 1}]}),
        lines(3, 1),
        lines(2, -1),
        json!({"lines": [
            {"sku": "PRD-00002", "quantity_picked": 1},
            {"sku": "PRD-00001", "quantity_picked": 2},
        ]}),
    ] {
        let (code, body) = post(&http, url("picked"), Some(bad.clone())).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let (code, body) = post(&http, url("picked"), Some(lines(3, 0))).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        (&body["code"], &body["detail"]),
        (
            &json!("bad_lines"),
            &json!("line 1 (PRD-00001): picked 3 is outside 0 to 2 (the quantity ordered)")
        )
    );

    // Milk: 1 of 3 picked, 2 short.
    let (code, body) = post(&http, url("picked"), Some(lines(2, 1))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "PICKED");
    let (code, again) = post(&http, url("picked"), Some(lines(2, 1))).await;
    assert_eq!(
        (code, &again),
        (200, &body),
        "picked again, same quantities"
    );
    let (code, other) = post(&http, url("picked"), Some(lines(2, 2))).await;
    assert_eq!(code, 409, "picked again, other quantities: {other}");
    assert!(
        other["detail"].as_str().unwrap().contains("already PICKED"),
        "{other}"
    );
    let (code, late) = post(&http, url("picking-started"), None).await;
    assert_eq!(code, 409, "picking started again after picked: {late}");
    let (code, body) = post(&http, url("ready"), None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["state"], "READY");

    // The page hears of the latest state.
    let mut events = http.get(format!("{base}/events")).send().await.unwrap();
    let mut received = String::new();
    tokio::time::timeout(WAIT, async {
        while !received.contains(r#""state":"READY""#) {
            let chunk = events.chunk().await.unwrap().expect("stream open");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("events so far: {received}"));
    assert!(received.contains("event: status"), "{received}");
    drop(events);

    // Exactly three records: the repeated steps wrote nothing.
    let replay = client
        .replay::<OrderStatus>(format!("count-{}", Uuid::new_v4().simple()), WAIT)
        .await
        .unwrap();
    assert_eq!(replay.remaining(), 3, "records on {}", OrderStatus::TOPIC);
    let statuses = read_statuses(&client, 3).await;
    let states: Vec<_> = statuses.iter().map(|(s, _)| s.state).collect();
    assert_eq!(
        states,
        [
            OrderState::PickingStarted,
            OrderState::Picked,
            OrderState::Ready
        ]
    );
    for (status, headers) in &statuses {
        assert_eq!(status.order_id, list.order_id);
        assert_eq!(status.actor, "staff:Ana");
        assert_eq!(status.picklist_id, Some(list.picklist_id));
        assert_eq!(
            status.status_id,
            grocery_store::status_id(list.order_id, status.state)
        );
        // The pick list's trace, continued: same trace id, a span of its own.
        let traceparent = headers.get_str("traceparent").unwrap();
        assert_eq!(traceparent[..35], TRACEPARENT[..35], "{traceparent}");
        assert_ne!(traceparent, TRACEPARENT);
    }
    let picked = &statuses[1].0;
    let quantities: Vec<_> = picked
        .lines
        .iter()
        .map(|l| {
            (
                l.sku.as_str(),
                l.quantity,
                l.quantity_picked,
                l.quantity_short,
            )
        })
        .collect();
    assert_eq!(quantities, [("PRD-00001", 2, 2, 0), ("PRD-00002", 3, 1, 2)]);
    assert_eq!(picked.note.as_deref(), Some("PRD-00002 short 2"));
    let status = consumer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_staff_walk_every_pick_list_to_ready() {
    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let producer = client.producer().await.unwrap();
    let lists: Vec<_> = (1..=8).map(pick_list).collect();
    for list in &lists {
        producer.send(list).await.unwrap();
    }
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"])
        .env("PICKLIST_SIMULATE_STAFF", "true")
        .env("PICKLIST_STAFF_PACE_MS", "0");
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let statuses = read_statuses(&client, 3 * lists.len()).await;
    let mut by_order: BTreeMap<Uuid, Vec<OrderState>> = BTreeMap::new();
    for (status, _) in &statuses {
        by_order
            .entry(status.order_id)
            .or_default()
            .push(status.state);
        if status.state == OrderState::Picked {
            // As planned: the milk line short 2.
            assert_eq!(status.lines[1].quantity_short, 2);
        }
    }
    assert_eq!(by_order.len(), lists.len());
    for states in by_order.values() {
        assert_eq!(
            states,
            &[
                OrderState::PickingStarted,
                OrderState::Picked,
                OrderState::Ready
            ]
        );
    }
    let status = consumer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
}

/// A restarted screen puts back the pick lists its group had already read and that are not
/// READY yet, in the states `grocery.order-status.v1` holds: staff go on where they were (a
/// repeated step is answered as before), and READY lists are not put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_screen_puts_back_the_lists_not_yet_ready() {
    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let lists = [pick_list(1), pick_list(2), pick_list(3)];
    let producer = client.producer().await.unwrap();
    for list in &lists {
        producer.send(list).await.unwrap();
    }
    let start = || {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&config)
            .args(["--json", "--listen", "127.0.0.1:0"]);
        let process = Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
        let base = format!("http://{}", process.listening_addr(WAIT).unwrap());
        (process, base)
    };
    let http = reqwest::Client::new();
    let url = |base: &str, list: &PickList, step: &str| {
        format!("{base}/picklists/{}/{step}", list.order_id)
    };
    let as_planned = json!({"lines": [
        {"sku": "PRD-00001", "quantity_picked": 2},
        {"sku": "PRD-00002", "quantity_picked": 1},
    ]});

    // Before the restart: list 1 picking, list 2 through to READY, list 3 untouched.
    let (mut first, base) = start();
    for list in &lists {
        let id = list.picklist_id.to_string();
        first.stdout().wait_for(WAIT, |l| l.contains(&id)).unwrap();
    }
    let (code, started) = post(&http, url(&base, &lists[0], "picking-started"), None).await;
    assert_eq!(code, 200, "{started}");
    for (step, body) in [
        ("picking-started", None),
        ("picked", Some(as_planned.clone())),
        ("ready", None),
    ] {
        let (code, answer) = post(&http, url(&base, &lists[1], step), body).await;
        assert_eq!(code, 200, "{step}: {answer}");
    }
    let status = first.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");

    // After it: the group has committed past the three lists, so none is shown again, but
    // lists 1 and 3 are back on the board, each in its state.
    let (mut second, base) = start();
    second
        .stderr()
        .wait_for(WAIT, |l| {
            l.contains("pick lists not yet ready put back on the board") && l.contains("restored=2")
        })
        .unwrap();
    let response = http
        .post(url(&base, &lists[0], "picking-started"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers().get("idempotent-replayed").unwrap(),
        "true",
        "list 1 is back as PICKING_STARTED"
    );
    assert_eq!(response.json::<Value>().await.unwrap(), started);
    let (code, body) = post(&http, url(&base, &lists[0], "picked"), Some(as_planned)).await;
    assert_eq!(code, 200, "list 1 goes on to PICKED: {body}");
    let (code, body) = post(&http, url(&base, &lists[1], "ready"), None).await;
    assert_eq!(code, 404, "a READY list is not put back: {body}");
    let (code, body) = post(&http, url(&base, &lists[2], "picking-started"), None).await;
    assert_eq!(code, 200, "list 3 is back as PICKLIST_CREATED: {body}");
    let status = second.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    let shown_again: Vec<String> = second
        .stdout()
        .all()
        .into_iter()
        .filter(|l| l.contains("picklist_id"))
        .collect();
    assert!(shown_again.is_empty(), "{shown_again:#?}");

    // Six staff changes in all: nothing was written twice.
    let replay = client
        .replay::<OrderStatus>(format!("count-{}", Uuid::new_v4().simple()), WAIT)
        .await
        .unwrap();
    assert_eq!(replay.remaining(), 6, "records on {}", OrderStatus::TOPIC);
}

/// A step whose client goes away while its status cannot be written yet (the broker is down)
/// does not leave the pick list busy: the status is written once the broker is back, recorded,
/// and the step taken again is answered as a repeat; the next step goes on. (The list used to
/// stay busy, every later step answering 409, until a restart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_client_went_away_mid_send_does_not_leave_the_list_busy() {
    use tokio::io::AsyncWriteExt as _;

    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let list = pick_list(7);
    client.producer().await.unwrap().send(&list).await.unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"]);
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let addr = consumer.listening_addr(WAIT).unwrap();
    let base = format!("http://{addr}");
    consumer
        .stdout()
        .wait_for(WAIT, |l| l.contains(&list.picklist_id.to_string()))
        .unwrap();
    let http = reqwest::Client::new();
    let url = |step: &str| format!("{base}/picklists/{}/{step}", list.order_id);
    let being_recorded =
        |(code, body): &(u16, Value)| *code == 409 && body.to_string().contains("being recorded");

    // The broker goes away; a client asks for "start picking" on a connection of its own.
    stack.kafka().broker_down(1).unwrap();
    let mut step = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /picklists/{}/picking-started HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nContent-Length: 0\r\n\r\n",
        list.order_id
    );
    step.write_all(request.as_bytes()).await.unwrap();
    // The step is being written once another step on the list is refused for it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = post(&http, url("ready"), None).await;
        if being_recorded(&answer) {
            break;
        }
        assert_eq!(answer.0, 409, "READY before PICKED: {}", answer.1);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step never got under way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client goes away mid-send; then the broker comes back.
    drop(step);
    stack.kafka().broker_up(1).unwrap();

    // The status queued before the client left is written all the same …
    let statuses = read_statuses(&client, 1).await;
    assert_eq!(statuses[0].0.state, OrderState::PickingStarted);
    // … and recorded: the list is not busy for ever, and the step taken again is a repeat.
    let deadline = tokio::time::Instant::now() + WAIT;
    let again = loop {
        let response = http
            .post(url("picking-started"))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let replayed = response.headers().get("idempotent-replayed").cloned();
        let answer = (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        );
        if !being_recorded(&answer) {
            break (answer, replayed);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "every step still answers 409 {} after the status was written",
            answer.1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(again.0.0, 200, "{}", again.0.1);
    assert_eq!(again.1.as_ref().map(|v| v.as_bytes()), Some(&b"true"[..]));
    assert_eq!(again.0.1["status_id"], json!(statuses[0].0.status_id));
    let (code, body) = post(
        &http,
        url("picked"),
        Some(json!({"lines": [
            {"sku": "PRD-00001", "quantity_picked": 2},
            {"sku": "PRD-00002", "quantity_picked": 1},
        ]})),
    )
    .await;
    assert_eq!(code, 200, "the next step goes on: {body}");
    let status = consumer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    let replay = client
        .replay::<OrderStatus>(format!("count-{}", Uuid::new_v4().simple()), WAIT)
        .await
        .unwrap();
    assert_eq!(replay.remaining(), 2, "records on {}", OrderStatus::TOPIC);
}

/// Steps another web site's page can send are refused (403, problem JSON saying why) and write
/// nothing: a form's post (no body, `text/plain`, url-encoded), a JSON post from a foreign
/// `Origin`; so is reading the page or its events under a foreign `Host` (DNS rebinding). The
/// page's own step goes through. (A `text/plain` step used to be taken, 200.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_another_site_can_send_are_refused() {
    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let list = pick_list(3);
    client.producer().await.unwrap().send(&list).await.unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("--config")
        .arg(&config)
        .args(["--json", "--listen", "127.0.0.1:0"]);
    let mut consumer =
        Process::start("picklist-consumer", &mut command, Output::default()).unwrap();
    let base = format!("http://{}", consumer.listening_addr(WAIT).unwrap());
    consumer
        .stdout()
        .wait_for(WAIT, |l| l.contains(&list.picklist_id.to_string()))
        .unwrap();
    let http = reqwest::Client::new();
    let step = format!("{base}/picklists/{}/picking-started", list.order_id);
    let refused = async |request: reqwest::RequestBuilder, why: &str| {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 403, "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{detail}");
        assert_eq!(body["status"], 403, "{body}");
    };
    refused(http.post(&step), "JSON body").await;
    refused(
        http.post(&step)
            .header("content-type", "text/plain")
            .body("x"),
        "JSON body",
    )
    .await;
    refused(
        http.post(&step)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://evil.example")
            .body("a=b"),
        "http://evil.example",
    )
    .await;
    refused(
        http.post(&step)
            .header("content-type", "application/json")
            .header("origin", "http://127.0.0.2:8080"),
        "127.0.0.2",
    )
    .await;
    for path in ["/", "/events", "/metrics"] {
        refused(
            http.get(format!("{base}{path}"))
                .header("host", "rebound.evil.example"),
            "rebound.evil.example",
        )
        .await;
    }
    // The page's own step.
    let response = http
        .post(&step)
        .header("content-type", "application/json")
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let status = consumer.terminate(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    let replay = client
        .replay::<OrderStatus>(format!("count-{}", Uuid::new_v4().simple()), WAIT)
        .await
        .unwrap();
    assert_eq!(replay.remaining(), 1, "only the page's own step is written");
}
