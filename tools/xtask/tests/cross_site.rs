//! Another web site cannot drive the pages, checked in headless Chromium: a page served from
//! another origin (a small server on 127.0.0.2) tries every kind of state-changing `POST` a
//! page of another site can send, at the control room (start a service, set the rate, inject a
//! record), the staff page (take a step) and the Order API (place an order): an HTML form
//! posting `text/plain`, a `fetch` with a `text/plain` body (no preflight), a `fetch` with a
//! JSON body (preflighted). Then reads like a DNS-rebinding page's (the server reached under a
//! foreign name, `rebind.test`, mapped to 127.0.0.1 by Chromium's resolver rules). Every
//! attempt is refused (each server logs it; nothing changes: no service started, rate and
//! topics as before), while the real pages keep working: clicking set-rate and "Start
//! picking" has its effect. Every process's exit status is checked.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use grocery_events::{Order, OrderStatus};
use serde_json::{Value, json};
use test_support::{Output, Process, write_config};
use xtask::{
    browser::Browser,
    services::{Binaries, http_get},
};

const WAIT: Duration = Duration::from_secs(60);

/// The page of the other site: each target tried three ways, `window.settled` counting the
/// attempts answered (or failed) out of `window.attempts`.
fn attack_page(targets: &[(String, String)]) -> String {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(url, body)| json!({ "url": url, "body": body }))
        .collect();
    format!(
        r#"<!doctype html><html><head><title>another site</title></head><body>
<h1>Just another web site</h1>
<script>
const targets = {targets};
window.attempts = 0;
window.settled = 0;
const done = () => {{ window.settled += 1; }};
targets.forEach((t, i) => {{
  // An HTML form posting text/plain, into a frame of its own.
  const frame = document.createElement("iframe");
  frame.name = "frame" + i;
  document.body.appendChild(frame);
  frame.addEventListener("load", done, {{ once: true }});
  const form = document.createElement("form");
  form.method = "POST";
  form.action = t.url;
  form.enctype = "text/plain";
  form.target = frame.name;
  const input = document.createElement("input");
  input.name = t.body;
  input.value = "";
  form.appendChild(input);
  document.body.appendChild(form);
  form.submit();
  // A script posting text/plain: a "simple" request, sent without a preflight.
  fetch(t.url, {{ method: "POST", mode: "no-cors", headers: {{ "content-type": "text/plain" }},
                  body: t.body }}).then(done, done);
  // A script posting JSON: preflighted (OPTIONS) first.
  fetch(t.url, {{ method: "POST", headers: {{ "content-type": "application/json" }},
                  body: t.body }}).then(done, done);
  window.attempts += 3;
}});
</script></body></html>"#,
        targets = Value::Array(targets)
    )
}

/// Serves `page` at `/` on 127.0.0.2 (another origin than the services' 127.0.0.1); returns
/// its URL.
async fn serve_other_site(page: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

/// Evaluates `script` in the page until it is true; fails after `WAIT` with `what`.
fn wait_true(browser: &mut Browser, what: &str, script: &str) {
    let deadline = Instant::now() + WAIT;
    while browser.eval(script).unwrap() != Value::Bool(true) {
        assert!(Instant::now() < deadline, "the page never showed {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Requests `process` logged as refused, with `method` and `path`.
fn refused(process: &Process, method: &str, path: &str) -> usize {
    let (method, path) = (format!("method={method} "), format!("path={path} "));
    process
        .stderr()
        .all()
        .iter()
        .filter(|l| l.contains("request refused") && l.contains(&method) && l.contains(&path))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_sites_page_cannot_drive_the_pages_and_they_keep_working() {
    let bins = tokio::task::spawn_blocking(Binaries::build)
        .await
        .unwrap()
        .unwrap();
    let stack = grocery_stack::start().await.unwrap();
    let client = stack.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stack.client_properties()).unwrap();
    let pick_list = grocery_stack::sample::pick_list_for(&grocery_stack::sample::milk_order(
        uuid::Uuid::from_u128(1),
        uuid::Uuid::from_u128(2),
        2,
    ));
    client
        .producer()
        .await
        .unwrap()
        .send(&pick_list)
        .await
        .unwrap();

    let mut staff = Process::start(
        "picklist-consumer",
        Command::new(&bins.picklist_consumer)
            .arg("--config")
            .arg(&config)
            .args(["--json", "--listen", "127.0.0.1:0"]),
        Output::default(),
    )
    .unwrap();
    let mut api = Process::start(
        "order-api",
        Command::new(&bins.order_producer)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config),
        Output::default(),
    )
    .unwrap();
    let mut control = Process::start(
        "control room",
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["control", "--listen", "127.0.0.1:0", "--rate", "5", "--dir"])
            .arg(dir.path().join("control")),
        Output::default(),
    )
    .unwrap();
    let staff_addr = staff.listening_addr(WAIT).unwrap();
    let api_addr = api.listening_addr(WAIT).unwrap();
    let line = control
        .stderr()
        .wait_for(Duration::from_secs(600), |l| {
            l.starts_with("control room listening on http://")
        })
        .unwrap();
    let control_addr = line["control room listening on http://".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    staff
        .stdout()
        .wait_for(WAIT, |l| l.contains(&pick_list.picklist_id.to_string()))
        .unwrap();

    // The other site's page tries every state-changing request.
    let order = json!({ "items": [{ "sku": "PRD-00001", "quantity": 1 }] }).to_string();
    let targets = [
        (
            format!("http://{control_addr}/api/services/order-producer/start"),
            "{}".to_owned(),
        ),
        (
            format!("http://{control_addr}/api/rate"),
            r#"{"rate": 1}"#.to_owned(),
        ),
        (format!("http://{control_addr}/api/inject"), "{}".to_owned()),
        (
            format!(
                "http://{staff_addr}/picklists/{}/picking-started",
                pick_list.order_id
            ),
            "{}".to_owned(),
        ),
        (format!("http://{api_addr}/orders"), order),
    ];
    let other_site = serve_other_site(attack_page(&targets)).await;
    let mut browser = Browser::open_with(
        &other_site,
        &[
            "--host-resolver-rules=MAP rebind.test 127.0.0.1",
            "--disable-features=HttpsUpgrades",
        ],
    )
    .unwrap();
    wait_true(
        &mut browser,
        "every attempt answered",
        "window.attempts === 15 && window.settled === 15",
    );
    // Three attempts per target, each refused and logged by its server (a JSON post is
    // refused at its preflight).
    control
        .stderr()
        .wait_count(WAIT, 9, |l| l.contains("request refused"))
        .unwrap();
    staff
        .stderr()
        .wait_count(WAIT, 3, |l| l.contains("request refused"))
        .unwrap();
    api.stderr()
        .wait_count(WAIT, 3, |l| l.contains("request refused"))
        .unwrap();

    // Reads under a foreign name (a DNS-rebinding page's): refused.
    for (addr, path) in [
        (&control_addr, "/api/state"),
        (&control_addr, "/api/logs/fulfillment-service"),
        (&control_addr, "/"),
        (&staff_addr, "/events"),
        (&api_addr, "/metrics"),
    ] {
        let port = addr.rsplit(':').next().unwrap();
        let url = format!("http://rebind.test:{port}{path}");
        let status = browser.navigate(&url).unwrap();
        let text = browser.text().unwrap();
        assert_eq!(status, 403, "{url}: {text}");
        assert!(text.contains("rebind.test"), "{url}: {text}");
    }
    // Each way refused at each target: the form and the text/plain fetch as POSTs, the JSON
    // fetch at its preflight.
    let step = format!("/picklists/{}/picking-started", pick_list.order_id);
    let tried = [
        (&control, "/api/services/order-producer/start"),
        (&control, "/api/rate"),
        (&control, "/api/inject"),
        (&staff, step.as_str()),
        (&api, "/orders"),
    ];
    for (process, path) in tried {
        let counts = (
            refused(process, "POST", path),
            refused(process, "OPTIONS", path),
        );
        assert_eq!(counts, (2, 1), "{} {path}", process.name());
    }
    for (process, path) in [
        (&control, "/api/state"),
        (&control, "/api/logs/fulfillment-service"),
        (&staff, "/events"),
        (&api, "/metrics"),
    ] {
        assert_eq!(
            refused(process, "GET", path),
            1,
            "{} {path}",
            process.name()
        );
    }
    // Nothing changed.
    let state: Value =
        serde_json::from_str(&http_get(&control_addr, "/api/state").unwrap()).unwrap();
    assert_eq!(state["rate"], 5.0, "{state}");
    assert_eq!(state["injected"], json!([]), "{state}");
    let states: Vec<&str> = state["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["not started"; 3], "{state}");
    let orders = client
        .replay::<Order>("cross-site-orders", WAIT)
        .await
        .unwrap();
    assert_eq!(orders.remaining(), 0, "orders placed");

    // The real pages work: the control room's rate, the staff page's first step.
    let status = browser
        .navigate(&format!("http://{control_addr}/"))
        .unwrap();
    assert_eq!(status, 200);
    wait_true(
        &mut browser,
        "that it is live",
        "document.getElementById('live').textContent.startsWith('live')",
    );
    browser
        .eval(
            "document.getElementById('rate-input').value = '7'; \
             document.getElementById('set-rate').click(); true",
        )
        .unwrap();
    wait_true(
        &mut browser,
        "the new rate",
        "document.getElementById('rate').textContent === '7'",
    );
    let status = browser.navigate(&format!("http://{staff_addr}/")).unwrap();
    assert_eq!(status, 200);
    let card = format!("section.card[data-order-id='{}']", pick_list.order_id);
    wait_true(
        &mut browser,
        "the pick list",
        &format!("document.querySelector(\"{card}\") !== null"),
    );
    browser
        .eval(&format!(
            "document.querySelector(\"{card} .actions button\").click(); true"
        ))
        .unwrap();
    wait_true(
        &mut browser,
        "the list being picked",
        &format!("document.querySelector(\"{card} .state\").textContent === 'PICKING_STARTED'"),
    );
    let statuses = client
        .replay::<OrderStatus>("cross-site-statuses", WAIT)
        .await
        .unwrap();
    assert_eq!(statuses.remaining(), 1, "the one step clicked");
    assert_eq!(
        refused(&control, "POST", "/api/rate"),
        2,
        "the real page is not refused"
    );
    assert_eq!(
        refused(&staff, "POST", &step),
        2,
        "the real page is not refused"
    );

    // The request the issue confirmed (it used to answer 200 and start the producer), and a
    // rebinding read, as plain HTTP.
    let http = reqwest::Client::new();
    let response = http
        .post(format!(
            "http://{control_addr}/api/services/order-producer/start"
        ))
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let refusal: Value = response.json().await.unwrap();
    assert!(
        refusal["detail"]
            .as_str()
            .unwrap()
            .contains("http://evil.example"),
        "{refusal}"
    );
    let response = http
        .get(format!("http://{control_addr}/api/state"))
        .header("host", "rebind.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let state: Value =
        serde_json::from_str(&http_get(&control_addr, "/api/state").unwrap()).unwrap();
    assert_eq!(state["services"][0]["state"], "not started", "{state}");

    let chromium = browser.close().unwrap();
    assert!(chromium.success(), "chromium exited with {chromium}");
    for process in [&mut staff, &mut api, &mut control] {
        let status = process.terminate(WAIT).unwrap();
        assert!(status.success(), "{} exited with {status}", process.name());
    }
}
