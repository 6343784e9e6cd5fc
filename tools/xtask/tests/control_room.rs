//! The control room (`cargo xtask control`) clicked through in headless Chromium, as a person
//! would: start all → pick lists appear, the flow shows non-zero rates on its arrows, the
//! charts have points, and the status funnel reaches READY (simulated store staff) → stop
//! fulfillment → lag grows → stop the producer → start fulfillment again → lag drains to 0 →
//! inject a malformed record → the DLQ count rises by exactly one → fulfillment's log filtered
//! to WARN shows its dead-letter warning and hides the lines of other levels. Every wait is on
//! what the page shows (the DOM, polled with a deadline). Two screenshots are kept as artefacts
//! in the target directory (`control-room/control-room-<broker>-flowing.png` while orders flow,
//! `control-room/control-room-<broker>.png` at the end); every process's exit status is
//! checked at the end. The same click-through runs on a real Apache Kafka broker with the
//! `real-broker` feature.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use test_support::{Output, Process};
use xtask::{browser::Browser, services};

/// What the page shows, read from its DOM.
const SHOWN: &str = r##"(() => {
  const t = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
  return {
    live: t("live"),
    message: t("message"),
    rate: t("rate"),
    producer: t("state-order-producer"),
    fulfillment: t("state-fulfillment-service"),
    consumer: t("state-picklist-consumer"),
    orders_per_s: t("orders-per-s"),
    picklists_per_s: t("picklists-per-s"),
    lag: t("lag-total"),
    lag_rows: document.querySelectorAll("#lag tr").length,
    dlq: t("dlq"),
    p50: t("latency-p50"),
    p99: t("latency-p99"),
    latest: document.querySelectorAll("#latest tr").length,
    injected: t("injected"),
    funnel: t("funnel"),
    ready: t("funnel-READY"),
    flow_orders: t("flow-orders"),
    flow_picklists: t("flow-picklists"),
    flow_producer: (document.getElementById("flow-order-producer") || {dataset: {}}).dataset.state,
    chart_points: [...document.querySelectorAll("#chart-rates polyline")]
      .map((p) => p.getAttribute("points").trim().split(/\s+/).length),
    log_lines: document.querySelectorAll("#log .log-line").length,
    log_shown_levels: [...new Set([...document.querySelectorAll("#log .log-line")]
      .filter((l) => !l.hidden).map((l) => l.dataset.level))],
    log_shown: [...document.querySelectorAll("#log .log-line")].filter((l) => !l.hidden)
      .map((l) => l.textContent),
    log_hidden: [...document.querySelectorAll("#log .log-line")].filter((l) => l.hidden).length,
  };
})()"##;

struct Page {
    browser: Browser,
}

impl Page {
    fn shown(&mut self) -> Value {
        self.browser.eval(SHOWN).expect("reading the page")
    }

    /// Polls what the page shows until `done` holds; fails after `timeout` with what it shows.
    fn wait(&mut self, what: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let shown = self.shown();
            if done(&shown) {
                eprintln!("page: {what}: {shown}");
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what} within {timeout:?}; it shows {shown:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Clicks the button `id` once it is enabled.
    fn click(&mut self, id: &str) {
        let script = format!(
            "(() => {{ const b = document.getElementById({id:?}); \
             if (!b || b.disabled) return false; b.click(); return true; }})()"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.browser.eval(&script).unwrap() != Value::Bool(true) {
            assert!(Instant::now() < deadline, "button {id} never enabled");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn number(shown: &Value, field: &str) -> Option<f64> {
    shown[field].as_str()?.trim().parse().ok()
}

/// The number a text starts with (`"12.5 orders/s"` → 12.5).
fn leading_number(shown: &Value, field: &str) -> Option<f64> {
    shown[field]
        .as_str()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Saves a screenshot of the page as `control-room/<name>.png` in the target directory.
fn screenshot(page: &mut Page, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| services::workspace_dir().join("target"))
        .join("control-room");
    std::fs::create_dir_all(&target).unwrap();
    let path = target.join(format!("{name}.png"));
    std::fs::write(&path, page.browser.screenshot().unwrap()).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

fn text<'a>(shown: &'a Value, field: &str) -> &'a str {
    shown[field].as_str().unwrap_or_default()
}

#[test]
fn the_control_room_drives_the_services_and_shows_them_live() {
    click_through("mock", &[]);
}

/// The same click-through with the services on a real Apache Kafka broker (Java 17, Maven),
/// authenticating with SASL/PLAIN under the stack's ACLs.
#[cfg(feature = "real-broker")]
#[test]
fn the_control_room_drives_the_services_on_a_real_broker() {
    click_through("kafka", &["--broker", "kafka", "--auth", "plain"]);
}

/// Clicks through the page of a control room started with `broker_args`; `label` names the
/// screenshot.
fn click_through(label: &str, broker_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut control = Process::start(
        "control room",
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args([
                "control",
                "--listen",
                "127.0.0.1:0",
                "--rate",
                "25",
                "--dir",
            ])
            .arg(dir.path())
            .args(broker_args),
        Output::default(),
    )
    .unwrap();
    // The first run builds the three services.
    let line = control
        .stderr()
        .wait_for(Duration::from_secs(1200), |l| {
            l.starts_with("control room listening on http://")
        })
        .unwrap();
    let url = line["control room listening on ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let mut page = Page {
        browser: Browser::open(&url).unwrap(),
    };
    let shown = page.wait("that it is live", Duration::from_secs(30), |s| {
        text(s, "live").starts_with("live") && text(s, "lag") == "0"
    });
    assert_eq!(text(&shown, "producer"), "not started");
    assert_eq!(shown["lag_rows"], 3, "one lag row per partition");
    assert_eq!(text(&shown, "ready"), "0", "{shown}");

    // The rate is set before the producer starts; it starts with it.
    page.browser
        .eval("document.getElementById('rate-input').value = '40'")
        .unwrap();
    page.click("set-rate");
    page.wait("the new rate", Duration::from_secs(10), |s| {
        text(s, "rate") == "40"
    });

    page.click("start-all");
    page.wait("every service running", Duration::from_secs(120), |s| {
        ["producer", "fulfillment", "consumer"]
            .iter()
            .all(|f| text(s, f) == "running")
    });
    let shown = page.wait(
        "pick lists, their rate and latency",
        Duration::from_secs(90),
        |s| {
            s["latest"].as_u64() >= Some(3)
                && number(s, "picklists_per_s") > Some(0.0)
                && text(s, "p50").ends_with(" ms")
        },
    );
    assert!(number(&shown, "orders_per_s") > Some(0.0), "{shown}");
    // The flow: orders into grocery.orders.v1 and pick lists out of fulfillment, live.
    let shown = page.wait(
        "the flow's arrows with non-zero rates, the charts with points",
        Duration::from_secs(60),
        |s| {
            leading_number(s, "flow_orders") > Some(0.0)
                && leading_number(s, "flow_picklists") > Some(0.0)
                && s["chart_points"]
                    .as_array()
                    .is_some_and(|p| p.len() == 2 && p.iter().all(|n| n.as_u64() >= Some(2)))
        },
    );
    assert!(
        text(&shown, "flow_orders").ends_with(" orders/s"),
        "{shown}"
    );
    assert_eq!(text(&shown, "flow_producer"), "running", "{shown}");
    screenshot(&mut page, &format!("control-room-{label}-flowing"));
    page.wait(
        "orders in the funnel, some READY",
        Duration::from_secs(90),
        |s| number(s, "ready") > Some(0.0),
    );

    page.click("stop-fulfillment-service");
    let shown = page.wait("fulfillment stopped", Duration::from_secs(60), |s| {
        text(s, "fulfillment") == "stopped (exit status 0)"
    });
    let lag_at_stop = number(&shown, "lag").unwrap();
    page.wait("the lag growing", Duration::from_secs(60), |s| {
        number(s, "lag") >= Some(lag_at_stop + 40.0)
    });

    // With orders still coming the lag only touches 0 between commits: stop them first.
    page.click("stop-order-producer");
    page.wait("the producer stopped", Duration::from_secs(60), |s| {
        text(s, "producer") == "stopped (exit status 0)"
    });
    page.click("start-fulfillment-service");
    page.wait("the lag drained to 0", Duration::from_secs(120), |s| {
        text(s, "fulfillment") == "running" && text(s, "lag") == "0"
    });

    let dlq_before = number(&page.shown(), "dlq").unwrap();
    page.click("inject");
    page.wait("the injected record", Duration::from_secs(30), |s| {
        text(s, "injected").starts_with("1 malformed record(s) injected")
    });
    page.wait("the DLQ count risen", Duration::from_secs(60), |s| {
        number(s, "dlq") > Some(dlq_before)
    });
    // Once the group has committed past the malformed record, no more can come.
    let shown = page.wait("the lag back to 0", Duration::from_secs(60), |s| {
        text(s, "lag") == "0"
    });
    assert_eq!(
        number(&shown, "dlq"),
        Some(dlq_before + 1.0),
        "the DLQ count rises by exactly one: {shown}"
    );

    // Fulfillment's log (the service the page shows first), filtered to WARN: its dead-letter
    // warning shows, the lines of other levels are hidden.
    page.browser
        .eval(
            "(() => { const s = document.getElementById('log-level'); s.value = 'WARN'; \
             s.dispatchEvent(new Event('change')); })()",
        )
        .unwrap();
    let shown = page.wait(
        "fulfillment's WARN lines only",
        Duration::from_secs(30),
        |s| {
            s["log_shown_levels"] == serde_json::json!(["WARN"])
                && s["log_hidden"].as_u64() > Some(0)
                && s["log_shown"].as_array().is_some_and(|lines| {
                    lines.iter().any(|l| {
                        l.as_str()
                            .is_some_and(|l| l.contains("record sent to dead-letter topic"))
                    })
                })
        },
    );
    assert!(
        shown["log_lines"].as_u64() > shown["log_hidden"].as_u64(),
        "{shown}"
    );

    screenshot(&mut page, &format!("control-room-{label}"));
    eprintln!("the page says:\n{}", page.browser.text().unwrap());

    let chromium = page.browser.close().unwrap();
    assert!(chromium.success(), "chromium exited with {chromium}");
    let status = control.terminate(Duration::from_secs(90)).unwrap();
    let ended = control.stdout().all();
    assert!(
        status.success(),
        "control room exited with {status}: {ended:#?}"
    );
    // Every run of every service, each stopped from the page or at the end, with status 0.
    let mut runs: Vec<&str> = ended.iter().map(String::as_str).collect();
    runs.sort_unstable();
    assert_eq!(
        runs,
        [
            "fulfillment-service run ended: stopped, exit status 0",
            "fulfillment-service run ended: stopped, exit status 0",
            "order-producer run ended: stopped, exit status 0",
            "picklist-consumer run ended: stopped, exit status 0",
        ],
        "{ended:#?}"
    );
}
