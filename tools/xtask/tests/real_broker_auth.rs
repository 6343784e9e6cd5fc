//! Authentication and authorization against the real Apache Kafka broker, with the three
//! services as processes (each with its own identity file) and the library's clients:
//!
//! - OAuth end to end: orders flow to pick lists while tokens expire and live connections
//!   re-authenticate; the identity provider down at start (backoff, processes stay up) and down
//!   mid-run (the flow goes on on the cached token);
//! - tokens the broker refuses (expired, foreign key, wrong audience) issued by the identity
//!   provider itself: a clear error naming OAUTHBEARER, exit status 3, no retry storm;
//! - API keys (PLAIN): right and wrong password; ACLs: a principal without rights.
//!
//! Figures (tokens, re-authentications, attempts) are printed with `eprintln!`. Built only with
//! the `real-broker` feature:
//! `cargo test -p xtask --features real-broker --test real_broker_auth -- --nocapture --test-threads=1`.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::OnceLock,
    time::{Duration, Instant},
};

use grocery_events::{Client, Config, ConsumerOptions, Error, Order};
use grocery_stack::{FULFILLMENT, ORDER_PRODUCER, PICKLIST_CONSUMER};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions, idp::TokenIssue};
use serde_json::Value;
use xtask::services::{self, Binaries, Process};

/// The broker log line of a completed re-authentication (SaslServerAuthenticator at DEBUG).
const REAUTH: &str = "COMPLETE during re-authentication";
/// The broker log line of a refused authentication.
const FAILED_AUTH: &str = "Failed authentication";
/// What the library logs when it cannot fetch a client's first token.
const FIRST_TOKEN_FAILED: &str = "cannot fetch the first OAUTHBEARER token";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries::build().expect("services build"))
}

/// A real-broker stack and a directory for the identity files and the services' logs.
struct Run {
    stack: Stack,
    dir: tempfile::TempDir,
}

impl Run {
    async fn start(auth: KafkaAuth) -> Self {
        let stack = Stack::start_with(StackOptions {
            broker: BrokerKind::Kafka { auth },
            ..grocery_stack::options()
        })
        .await
        .unwrap();
        Self {
            stack,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `identity`'s client.properties (with `edit` applied) and returns its path.
    fn properties(&self, identity: &str, edit: impl Fn(&str) -> String) -> PathBuf {
        let text = self.stack.client_properties_for(identity).unwrap();
        let path = self.dir.path().join(format!(
            "client.{identity}.{}.properties",
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, edit(&text)).unwrap();
        path
    }

    fn identity(&self, identity: &str) -> PathBuf {
        self.properties(identity, str::to_owned)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn fulfillment(&self, props: &Path, group: &str, log: &Path) -> Process {
        let listen = format!(
            "127.0.0.1:{}",
            services::FreePorts::default().pick().unwrap()
        );
        services::start(
            "fulfillment-service",
            &binaries().fulfillment_service,
            &[
                "--config".into(),
                props.display().to_string(),
                "--group".into(),
                group.into(),
                "--listen".into(),
                listen,
            ],
            &[("RUST_LOG", "info")],
            log,
        )
        .unwrap()
    }

    fn picklist_consumer(&self, props: &Path, log: &Path) -> Process {
        services::start(
            "picklist-consumer",
            &binaries().picklist_consumer,
            &[
                "--config".into(),
                props.display().to_string(),
                "--json".into(),
            ],
            &[("RUST_LOG", "info")],
            log,
        )
        .unwrap()
    }

    fn order_producer(&self, props: &Path, count: u32, rate: u32, log: &Path) -> Process {
        services::start(
            "order-producer",
            &binaries().order_producer,
            &[
                "--config".into(),
                props.display().to_string(),
                "--count".into(),
                count.to_string(),
                "--rate".into(),
                rate.to_string(),
                "--report".into(),
                self.dir.path().join("report.jsonl").display().to_string(),
            ],
            &[("RUST_LOG", "info")],
            log,
        )
        .unwrap()
    }
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

fn tail(log: &Path) -> String {
    let text = read(log);
    let start = text.floor_char_boundary(text.len().saturating_sub(3000));
    text[start..].to_owned()
}

/// `key`'s value in a client.properties text.
fn property(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing"))
        .to_owned()
}

/// The lines starting with `error:` in a service's stderr.
fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("error:")).collect()
}

/// Reads pick lists from `consumer` for up to `wait`: order id of each shown line.
fn drain(consumer: &mut Process, shown: &mut Vec<String>, wait: Duration) {
    if let Some(line) = consumer.next_line(wait) {
        let v: Value = serde_json::from_str(&line).expect("a JSON pick list");
        shown.push(v["order_id"].as_str().unwrap().to_owned());
        while let Some(line) = consumer.next_line(Duration::ZERO) {
            let v: Value = serde_json::from_str(&line).expect("a JSON pick list");
            shown.push(v["order_id"].as_str().unwrap().to_owned());
        }
    }
}

fn assert_running(service: &mut Process, name: &str, log: &Path) {
    let status = service.try_wait();
    assert!(
        status.is_none(),
        "{name} exited ({status:?}):\n{}",
        tail(log)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_services_flow_through_token_expiry_and_identity_provider_outages() {
    let _serial = SERIAL.lock().await;
    let run = Run::start(KafkaAuth::OAuth).await;
    let broker = run.stack.kafka_broker().unwrap();
    let idp = run.stack.identity_provider().unwrap();
    // Tokens live 8 s (refreshed after 6.4 s) and the broker makes sessions re-authenticate at
    // least every 10 s: a run of half a minute needs several tokens per client and
    // re-authentications on live connections.
    idp.set_token_lifetime(Duration::from_secs(8));

    // 1. The identity provider is down when the consumers start.
    idp.set_available(false);
    let (flog, plog, olog) = (
        run.log("fulfillment"),
        run.log("picklist"),
        run.log("producer"),
    );
    let fulfillment_props = run.identity(FULFILLMENT);
    let mut fulfillment = run.fulfillment(&fulfillment_props, "fulfillment-service", &flog);
    let picklist_props = run.identity(PICKLIST_CONSUMER);
    let mut consumer = run.picklist_consumer(&picklist_props, &plog);
    let down_since = Instant::now();
    for service in [&fulfillment, &consumer] {
        service
            .stderr()
            .wait_for(Duration::from_secs(60), |l| l.contains(FIRST_TOKEN_FAILED))
            .unwrap();
    }
    // Let the backoff go on for a while: count refused requests, not seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while idp.requests_refused() < 20 {
        assert!(
            Instant::now() < deadline,
            "{} token requests refused\n--- fulfillment ---\n{}\n--- picklist ---\n{}",
            idp.requests_refused(),
            tail(&flog),
            tail(&plog)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused_at_start = idp.requests_refused();
    let down_for = down_since.elapsed();
    assert_running(&mut fulfillment, "fulfillment-service", &flog);
    assert_running(&mut consumer, "picklist-consumer", &plog);
    let clients = read(&flog).matches(FIRST_TOKEN_FAILED).count()
        + read(&plog).matches(FIRST_TOKEN_FAILED).count();
    eprintln!(
        "IdP down at start: {clients} clients, {refused_at_start} token requests refused in \
         {down_for:.1?} (jittered backoff from 0.5 s doubling); both services stay up"
    );
    // Backoff, not a storm: 0.5 s doubling gives at most ~8 attempts per client in a minute.
    assert!(
        refused_at_start as f64 <= clients as f64 * (3.0 + (down_for.as_secs_f64() / 0.25).log2()),
        "{refused_at_start} refused requests from {clients} clients in {down_for:?}"
    );
    let token_url = idp.token_url();
    for (log, props) in [(&flog, &fulfillment_props), (&plog, &picklist_props)] {
        let text = read(log);
        let line = text
            .lines()
            .find(|l| l.contains(FIRST_TOKEN_FAILED))
            .unwrap();
        eprintln!("  {}", &line[..line.len().min(300)]);
        assert!(line.contains(&token_url), "endpoint not named: {line}");
        let secret = property(&read(props), "sasl.oauthbearer.client.secret");
        assert!(!text.contains(&secret), "a client secret in the log");
    }
    idp.set_available(true);

    // 2. Orders flow; tokens expire during the run and live connections re-authenticate.
    let (count, rate) = (900usize, 30u32);
    let producer_props = run.identity(ORDER_PRODUCER);
    let mut producer = run.order_producer(&producer_props, count as u32, rate, &olog);
    let mut shown = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    // 3. Mid-run, the identity provider goes down until a refresh has failed and the flow has
    // gone on past it on the cached token.
    let mut outage: Option<(usize, u64)> = None; // shown and refused when it went down
    let mut after_failure: Option<usize> = None; // shown when the first refresh failed
    let mut during_outage = None;
    while shown.iter().collect::<HashSet<_>>().len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} pick lists shown\n--- fulfillment ---\n{}\n--- picklist ---\n{}\n--- producer ---\n{}",
            shown.len(),
            tail(&flog),
            tail(&plog),
            tail(&olog)
        );
        drain(&mut consumer, &mut shown, Duration::from_millis(200));
        match (outage, after_failure, during_outage) {
            (None, _, _) if shown.len() >= 300 => {
                idp.set_available(false);
                outage = Some((shown.len(), idp.requests_refused()));
            }
            (Some((_, refused)), None, _) if idp.requests_refused() > refused => {
                after_failure = Some(shown.len());
            }
            (Some((at_down, _)), Some(at_failure), None) if shown.len() >= at_failure + 10 => {
                idp.set_available(true);
                during_outage = Some((shown.len() - at_down, shown.len() - at_failure));
            }
            _ => {}
        }
    }
    let (down, after) = during_outage.expect("the mid-run outage ended");
    eprintln!(
        "IdP down mid-run: {down} pick lists shown while it was down, {after} of them after a \
         token refresh had failed (cached token); {} token requests refused",
        idp.requests_refused() - outage.unwrap().1
    );
    let status = producer.wait(Duration::from_secs(120)).unwrap();
    assert!(
        status.success(),
        "order-producer: {status}\n{}",
        tail(&olog)
    );
    let report = services::read_report(&run.dir.path().join("report.jsonl")).unwrap();
    assert_eq!(report.len(), count);
    let distinct: HashSet<&String> = shown.iter().collect();
    assert_eq!(distinct.len(), count);
    assert!(distinct.iter().all(|id| report.contains_key(*id)));

    let reauths = broker.log_count(REAUTH);
    eprintln!(
        "{count} orders → {count} pick lists ({} lines shown); tokens issued: order-producer {}, \
         fulfillment-service {}, picklist-consumer {}; broker re-authentications {reauths}; \
         failed authentications {}",
        shown.len(),
        idp.tokens_issued(ORDER_PRODUCER),
        idp.tokens_issued(FULFILLMENT),
        idp.tokens_issued(PICKLIST_CONSUMER),
        broker.log_count(FAILED_AUTH),
    );
    for identity in [ORDER_PRODUCER, FULFILLMENT, PICKLIST_CONSUMER] {
        assert!(
            idp.tokens_issued(identity) >= 3,
            "{identity}: too few tokens"
        );
    }
    assert!(reauths >= 3, "{reauths} re-authentications");
    assert_eq!(broker.log_count(FAILED_AUTH), 0, "{}", broker.log_tail(40));
    for (service, name, log) in [
        (&mut consumer, "picklist-consumer", &plog),
        (&mut fulfillment, "fulfillment-service", &flog),
    ] {
        let status = service.terminate(Duration::from_secs(60)).unwrap();
        assert!(status.success(), "{name}: {status}\n{}", tail(log));
    }
    run.stack.shutdown().await;
}

/// Exit status, stderr, token requests and broker refusals of one order-producer run.
struct Refused {
    status: ExitStatus,
    log: String,
    tokens: u64,
    broker_refusals: usize,
}

fn run_refused_producer(run: &Run, props: &Path, identity: &str, name: &str) -> Refused {
    let broker = run.stack.kafka_broker().unwrap();
    let idp = run.stack.identity_provider().unwrap();
    let (tokens, refusals) = (idp.tokens_issued(identity), broker.log_count(FAILED_AUTH));
    let log = run.log(name);
    let mut producer = run.order_producer(props, 200, 0, &log);
    let status = producer.wait(Duration::from_secs(120)).unwrap();
    Refused {
        status,
        log: read(&log),
        tokens: idp.tokens_issued(identity) - tokens,
        broker_refusals: broker.log_count(FAILED_AUTH) - refusals,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_the_broker_refuses_give_a_clear_error_exit_3_and_no_retry_storm() {
    let _serial = SERIAL.lock().await;
    let run = Run::start(KafkaAuth::OAuth).await;
    let broker = run.stack.kafka_broker().unwrap();
    let idp = run.stack.identity_provider().unwrap();
    let props = run.identity(ORDER_PRODUCER);
    let secret = property(&read(&props), "sasl.oauthbearer.client.secret");
    let config = Config::from_file(&props).unwrap();
    let client = Client::from_config(config.clone()).unwrap();

    for (issue, why) in [
        (TokenIssue::Expired, "no longer valid"),
        (TokenIssue::ForeignKey, "signature"),
        (TokenIssue::WrongAudience, "audience"),
    ] {
        idp.set_issue(issue);
        // The library: the delivery fails as soon as the broker refuses (message.timeout.ms is
        // five minutes; the watchdog below is one).
        let before = (
            idp.tokens_issued(ORDER_PRODUCER),
            broker.log_count(FAILED_AUTH),
        );
        let started = Instant::now();
        let producer = client.producer().await.unwrap();
        let order =
            grocery_store::OrderSimulator::new(1, &grocery_store::Catalog::builtin()).next_order(0);
        let error = tokio::time::timeout(Duration::from_secs(60), producer.send(&order))
            .await
            .expect("the refusal surfaces before message.timeout.ms")
            .unwrap_err();
        let elapsed = started.elapsed();
        drop(producer);
        let message = error.to_string();
        assert!(
            matches!(&error, Error::Authentication { mechanism, .. } if mechanism == "OAUTHBEARER"),
            "{issue:?}: {error:?}"
        );
        assert!(error.is_refused());
        assert!(message.contains("SASL/OAUTHBEARER"), "{message}");
        assert!(!message.contains(&secret));
        let library = (
            idp.tokens_issued(ORDER_PRODUCER) - before.0,
            broker.log_count(FAILED_AUTH) - before.1,
        );

        // The service: exit status 3 and one error line.
        let service = run_refused_producer(&run, &props, ORDER_PRODUCER, &format!("{issue:?}"));
        let errors = error_lines(&service.log);
        eprintln!(
            "{issue:?}: library error after {elapsed:.1?} ({} token requests, {} broker \
             refusals): {message}\n  order-producer: {} ({} token requests, {} broker \
             refusals): {errors:?}",
            library.0, library.1, service.status, service.tokens, service.broker_refusals
        );
        assert_eq!(service.status.code(), Some(3), "{}", service.log);
        assert_eq!(errors.len(), 1, "{}", service.log);
        assert!(errors[0].contains("SASL/OAUTHBEARER"), "{}", errors[0]);
        assert!(
            !service.log.contains(&secret),
            "a client secret in the output"
        );
        // No retry storm: one token per client and a few attempts, not one per order.
        assert!(
            library.0 <= 2 && service.tokens <= 2,
            "{library:?} {}",
            service.tokens
        );
        assert!(
            (1..=5).contains(&library.1) && (1..=5).contains(&service.broker_refusals),
            "{library:?} {}",
            service.broker_refusals
        );
        let tail = broker.log_tail(400);
        let refusal = tail
            .lines()
            .rev()
            .find(|l| l.contains("Could not validate the access token"))
            .unwrap_or_else(|| panic!("{issue:?}: no validator warning"));
        assert!(refusal.to_lowercase().contains(why), "{issue:?}: {refusal}");
    }

    // A consumer service with refused tokens: fulfillment-service exits 3 too.
    idp.set_issue(TokenIssue::WrongAudience);
    let log = run.log("fulfillment-refused");
    let mut fulfillment = run.fulfillment(&run.identity(FULFILLMENT), "fulfillment-x", &log);
    let status = fulfillment.wait(Duration::from_secs(120)).unwrap();
    let text = read(&log);
    eprintln!("fulfillment-service: {status}: {:?}", error_lines(&text));
    assert_eq!(status.code(), Some(3), "{text}");
    assert_eq!(error_lines(&text).len(), 1, "{text}");
    assert!(error_lines(&text)[0].contains("SASL/OAUTHBEARER"), "{text}");

    // And valid tokens again: the same identity file works.
    idp.set_issue(TokenIssue::Valid);
    let producer = client.producer().await.unwrap();
    let order =
        grocery_store::OrderSimulator::new(2, &grocery_store::Catalog::builtin()).next_order(0);
    producer.send(&order).await.unwrap();
    drop(producer);
    run.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_and_acls_refusals_exit_3_naming_the_mechanism_or_the_topic() {
    let _serial = SERIAL.lock().await;
    let run = Run::start(KafkaAuth::Plain).await;
    let broker = run.stack.kafka_broker().unwrap();

    // The right password works.
    let props = run.identity(ORDER_PRODUCER);
    let password = property(&read(&props), "sasl.password");
    let log = run.log("plain-ok");
    let mut producer = run.order_producer(&props, 20, 0, &log);
    let status = producer.wait(Duration::from_secs(120)).unwrap();
    assert!(status.success(), "{status}\n{}", read(&log));
    assert_eq!(
        services::read_report(&run.dir.path().join("report.jsonl"))
            .unwrap()
            .len(),
        20
    );

    // A wrong password: exit 3, one error naming SASL/PLAIN, no password anywhere.
    let wrong = "not-the-password-7f3a";
    let wrong_props = run.properties(ORDER_PRODUCER, |text| {
        text.replace(
            &format!("sasl.password={password}"),
            &format!("sasl.password={wrong}"),
        )
    });
    let before = broker.log_count(FAILED_AUTH);
    let log = run.log("plain-wrong");
    let mut producer = run.order_producer(&wrong_props, 200, 0, &log);
    let status = producer.wait(Duration::from_secs(120)).unwrap();
    let text = read(&log);
    let errors = error_lines(&text);
    let refusals = broker.log_count(FAILED_AUTH) - before;
    eprintln!("wrong password: {status}, {refusals} broker refusals: {errors:?}");
    assert_eq!(status.code(), Some(3), "{text}");
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains("SASL/PLAIN") && errors[0].contains("Invalid username or password"),
        "{}",
        errors[0]
    );
    assert!((1..=5).contains(&refusals), "{refusals} refusals");
    for secret in [wrong, password.as_str()] {
        assert!(!text.contains(secret), "a password in the output");
        assert_eq!(broker.log_count(secret), 0, "a password in the broker log");
    }

    // ACLs: picklist-consumer's identity may neither read orders nor write them.
    let picklist = run.identity(PICKLIST_CONSUMER);
    let log = run.log("acl-fulfillment");
    // A group the identity may use, so the topic is what is refused.
    let mut fulfillment = run.fulfillment(&picklist, "picklist-as-fulfillment", &log);
    let status = fulfillment.wait(Duration::from_secs(120)).unwrap();
    let text = read(&log);
    let errors = error_lines(&text);
    eprintln!("fulfillment-service as {PICKLIST_CONSUMER}: {status}: {errors:?}");
    assert_eq!(status.code(), Some(3), "{text}");
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains(grocery_events::topics::ORDERS)
            && errors[0].contains("consume")
            && errors[0].contains("Topic authorization failed"),
        "{}",
        errors[0]
    );
    let log = run.log("acl-producer");
    let mut producer = run.order_producer(&picklist, 200, 0, &log);
    let status = producer.wait(Duration::from_secs(120)).unwrap();
    let text = read(&log);
    let errors = error_lines(&text);
    eprintln!("order-producer as {PICKLIST_CONSUMER}: {status}: {errors:?}");
    assert_eq!(status.code(), Some(3), "{text}");
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains(grocery_events::topics::ORDERS)
            && errors[0].contains("produce")
            && errors[0].contains("Topic authorization failed"),
        "{}",
        errors[0]
    );

    // The library consumer, too: Consumer::recv names the topic and the operation.
    let config = Config::from_file(&picklist).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let consumer = client
        .consumer::<Order>(ConsumerOptions::new("picklist-lib"))
        .await
        .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .expect("the refusal surfaces")
        .unwrap_err();
    eprintln!("library consumer as {PICKLIST_CONSUMER}: {error}");
    assert!(error.is_refused(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(grocery_events::topics::ORDERS) && message.contains("consume"));
    drop(consumer);
    run.stack.shutdown().await;
}
