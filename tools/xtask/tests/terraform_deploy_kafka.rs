//! The deployment as `terraform/` writes it, on a real Apache Kafka broker: the services run
//! with the settings Terraform appends to every service's `client_properties` output
//! (`local.client_settings` in `terraform/client_properties.tf`, evaluated here from the
//! HCL; `tofu test` in `.ci/terraform-check` checks the rendered outputs carry the same lines),
//! each under its own API key (SASL PLAIN) and the least-privilege ACLs that mirror the role
//! bindings of `terraform/access.tf`, with the subjects and schemas of `terraform/main.tf`
//! registered beforehand, as `tofu apply` registers them, and the registry then READONLY: no
//! service may write a subject, as under DeveloperRead. Orders placed through the Order API
//! become READY.
//!
//! The connection lines of the rendered properties (Confluent Cloud endpoints, the secrets
//! Terraform creates) cannot reach a local broker; they are the stack's, for the same
//! identities. Built only with the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test terraform_deploy_kafka -- --nocapture`.

mod terraform_hcl;

use std::{
    collections::HashMap,
    process::Command,
    time::{Duration, Instant},
};

use grocery_stack::{FULFILLMENT, ORDER_PRODUCER, PICKLIST_CONSUMER};
use grocery_store::{Catalog, OrderSimulator};
use hcl::Value;
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions};
use serde_json::json;
use terraform_hcl::{Config, repo_root};
use test_support::{Output, Process, write_config};
use xtask::services::Binaries;

/// Orders placed.
const ORDERS: usize = 20;

/// The lines of `local.client_settings`, without the empty one.
fn terraform_client_settings(config: &Config) -> Vec<String> {
    let expr = config
        .locals
        .get("client_settings")
        .expect("local.client_settings in terraform/client_properties.tf");
    let Ok(Value::Array(lines)) = config.eval(expr, 0) else {
        panic!("local.client_settings is not a list");
    };
    lines
        .into_iter()
        .map(|line| match line {
            Value::String(s) => s,
            other => panic!("local.client_settings holds {other:?}"),
        })
        .filter(|line| !line.is_empty())
        .collect()
}

/// `local.subjects` of `terraform/main.tf`: each subject and the text of its schema file.
fn terraform_subjects(config: &Config) -> Vec<(String, String)> {
    let expr = config.locals.get("subjects").expect("local.subjects");
    let Ok(Value::Object(subjects)) = config.eval(expr, 0) else {
        panic!("local.subjects is not an object");
    };
    subjects
        .values()
        .map(|subject| {
            let Value::Object(subject) = subject else {
                panic!("a subject that is not an object: {subject:?}");
            };
            let (Some(Value::String(name)), Some(Value::String(file))) =
                (subject.get("name"), subject.get("schema_file"))
            else {
                panic!("a subject without name or schema_file: {subject:?}");
            };
            let path = repo_root().join("schemas").join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name.clone(), text)
        })
        .collect()
}

fn start(
    name: &str,
    program: &std::path::Path,
    args: &[&str],
    config: &std::path::Path,
) -> Process {
    let mut command = Command::new(program);
    command.args(args).arg("--config").arg(config);
    command.env("RUST_LOG", "info");
    Process::start(name, &mut command, Output::default()).unwrap()
}

fn assert_running(processes: &[&Process]) {
    for process in processes {
        assert!(
            process.try_wait().is_none(),
            "{} exited: {:?}",
            process.name(),
            process.try_wait()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_with_terraforms_settings_run_under_read_only_subjects() {
    let terraform = Config::load(&repo_root().join("terraform"));
    let settings = terraform_client_settings(&terraform);
    eprintln!("settings Terraform writes for every service: {settings:?}");
    let binaries = Binaries::build().unwrap();
    let stack = Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka {
            auth: KafkaAuth::Plain,
        },
        ..grocery_stack::options()
    })
    .await
    .unwrap();

    // The subjects and schemas, registered as `tofu apply` registers them; then no client may
    // write a subject.
    let http = reqwest::Client::new();
    let registry = stack.registry_url();
    let subjects = terraform_subjects(&terraform);
    // Orders, pick lists, statuses and the orders' latest states.
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    for (subject, schema) in &subjects {
        let response = http
            .post(format!("{registry}/subjects/{subject}/versions"))
            .json(&json!({ "schema": schema }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "registering {subject}");
    }
    let response = http
        .put(format!("{registry}/mode"))
        .json(&json!({ "mode": "READONLY" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Each service's properties: the stack's connection and credentials for its identity,
    // then Terraform's settings.
    let dir = tempfile::tempdir().unwrap();
    let config = |identity: &str| {
        let mut text = stack.client_properties_for(identity).unwrap();
        text.push('\n');
        for line in &settings {
            text.push_str(line);
            text.push('\n');
        }
        let sub = dir.path().join(identity);
        std::fs::create_dir_all(&sub).unwrap();
        write_config(&sub, &text).unwrap()
    };
    let mut fulfillment = start(
        "fulfillment-service",
        &binaries.fulfillment_service,
        &["--listen", "127.0.0.1:0"],
        &config(FULFILLMENT),
    );
    let mut staff = start(
        "picklist-consumer",
        &binaries.picklist_consumer,
        &[
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--simulate-staff",
            "--staff-pace-ms",
            "0",
        ],
        &config(PICKLIST_CONSUMER),
    );
    let mut api = start(
        "order-api",
        &binaries.order_producer,
        &["serve", "--listen", "127.0.0.1:0"],
        &config(ORDER_PRODUCER),
    );
    let base = format!(
        "http://{}",
        api.listening_addr(Duration::from_secs(60)).unwrap()
    );
    api.stderr()
        .wait_for(Duration::from_secs(60), |line| {
            line.contains("order history rebuilt")
        })
        .unwrap();

    let catalog = Catalog::builtin();
    let mut simulator = OrderSimulator::new(11, &catalog);
    let mut placed = Vec::with_capacity(ORDERS);
    for i in 0..ORDERS {
        let order = simulator.next_order(0);
        let items: Vec<_> = order
            .items
            .iter()
            .map(|line| json!({ "sku": line.sku, "quantity": line.quantity }))
            .collect();
        let response = http
            .post(format!("{base}/orders"))
            .header("idempotency-key", format!("terraform-{i}"))
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap();
        assert!(
            matches!(status, 200 | 202),
            "POST /orders: {status} {answer}"
        );
        placed.push(answer["order_id"].as_str().unwrap().to_owned());
    }

    // Every order becomes READY: RECEIVED and PICKLIST_CREATED by fulfillment-service, the
    // staff's steps by picklist-consumer, all read back by the Order API's history view.
    let mut states: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    while states.values().filter(|s| *s == "READY").count() < ORDERS {
        poll.tick().await;
        assert_running(&[&api, &fulfillment, &staff]);
        assert!(
            Instant::now() < deadline,
            "orders not READY in 120 s: {states:?}"
        );
        for id in &placed {
            let response = http
                .get(format!("{base}/orders/{id}"))
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                let history: serde_json::Value = response.json().await.unwrap();
                states.insert(
                    id.clone(),
                    history["state"].as_str().unwrap_or("").to_owned(),
                );
            }
        }
    }
    eprintln!("{ORDERS} orders READY with Terraform's settings and read-only subjects");

    for (name, process) in [
        ("order-api", &mut api),
        ("picklist-consumer", &mut staff),
        ("fulfillment-service", &mut fulfillment),
    ] {
        let status = process.terminate(Duration::from_secs(60)).unwrap();
        assert!(status.success(), "{name} exited with {status}");
    }
    // Nothing was registered meanwhile: still one version per subject.
    for (subject, _) in &subjects {
        let versions: serde_json::Value = http
            .get(format!("{registry}/subjects/{subject}/versions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(versions, json!([1]), "{subject}");
    }
    stack.shutdown().await;
}
