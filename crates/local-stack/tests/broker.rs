//! The real Apache Kafka broker the project starts itself: the library's clients through its
//! PLAINTEXT, OAUTHBEARER and PLAIN listeners, re-authentication on live connections, ACLs,
//! tokens the broker must refuse, and data surviving a SIGKILL (read by a KIP-848 group).
//!
//! Each test starts a JVM; they run one at a time (two cores are shared). Built only with the
//! `real-broker` feature: `cargo test -p local-stack --features real-broker --test broker`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use grocery_events::{Client, Config, Consumer, ConsumerOptions, Order, PickList, topics};
use grocery_stack::{ADMIN, FULFILLMENT, ORDER_PRODUCER};
use local_stack::{BrokerKind, KafkaAuth, Stack, StackOptions};
use rdkafka::{
    ClientConfig, ClientContext,
    client::OAuthToken,
    producer::{FutureProducer, Producer as _},
};
use uuid::Uuid;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn real_stack(auth: KafkaAuth) -> Stack {
    Stack::start_with(StackOptions {
        broker: BrokerKind::Kafka { auth },
        ..grocery_stack::options()
    })
    .await
    .unwrap()
}

fn config(stack: &Stack, identity: &str) -> Config {
    Config::from_properties_str(&stack.client_properties_for(identity).unwrap()).unwrap()
}

fn order(run: Uuid, n: u32) -> Order {
    grocery_stack::sample::milk_order(Uuid::new_v5(&run, &n.to_be_bytes()), run, 2)
}

fn pick_list(order: &Order) -> PickList {
    grocery_stack::sample::pick_list_for(order)
}

/// Receives until `order_id` arrives (acking everything), within a minute.
async fn receive(consumer: &Consumer<Order>, order_id: Uuid) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("order {order_id} did not arrive within a minute"))
            .unwrap();
        consumer.ack(&received.meta).unwrap();
        if received.event.order_id == order_id {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_clients_authenticate_reauthenticate_and_are_refused_what_acls_deny() {
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::OAuth).await;
    let broker = stack.kafka_broker().unwrap();
    let idp = stack.identity_provider().unwrap();
    // Tokens live 6 s and the broker re-authenticates sessions at least every 10 s: a minute of
    // traffic needs several tokens and several re-authentications on the same connections.
    idp.set_token_lifetime(Duration::from_secs(6));

    let producer_config = config(&stack, ORDER_PRODUCER);
    let client = Client::from_config(producer_config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let consumer = Client::from_config(config(&stack, FULFILLMENT))
        .unwrap()
        .consumer::<Order>(ConsumerOptions::new("fulfillment-oauth-it"))
        .await
        .unwrap();

    let run = Uuid::new_v4();
    // The broker's SaslServerAuthenticator (at DEBUG) logs each completed re-authentication.
    let reauth = "COMPLETE during re-authentication";
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut n = 0;
    loop {
        let sent = order(run, n);
        producer.send(&sent).await.unwrap();
        receive(&consumer, sent.order_id).await;
        n += 1;
        let done = idp.tokens_issued(ORDER_PRODUCER) >= 3
            && idp.tokens_issued(FULFILLMENT) >= 3
            && broker.log_count(reauth) >= 4;
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {n} orders: tokens {} / {}, broker re-authentications {}",
            idp.tokens_issued(ORDER_PRODUCER),
            idp.tokens_issued(FULFILLMENT),
            broker.log_count(reauth)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{n} orders; tokens issued: order-producer {}, fulfillment {}; broker re-authentications {}",
        idp.tokens_issued(ORDER_PRODUCER),
        idp.tokens_issued(FULFILLMENT),
        broker.log_count(reauth)
    );
    assert_eq!(
        broker.log_count("Failed authentication"),
        0,
        "{}",
        broker.log_tail(40)
    );

    // ACLs: the order producer may not write pick lists.
    let error = producer
        .send_to(topics::PICKLISTS, &pick_list(&order(run, 0)))
        .await
        .unwrap_err();
    let message = error.to_string();
    eprintln!("order-producer writing pick lists: {message}");
    assert!(
        message.contains(topics::PICKLISTS) && message.contains("authorization"),
        "{message}"
    );
    // The authorizer's log line may be written after the client has its error: wait for it.
    let denied = format!(
        "User:{ORDER_PRODUCER} is Denied operation = DESCRIBE from host = 127.0.0.1 \
         on resource = Topic:LITERAL:{}",
        topics::PICKLISTS
    );
    assert!(
        broker
            .wait_for_log(&denied, 1, Duration::from_secs(30))
            .await,
        "{}",
        broker.log_tail(20)
    );
    consumer.close().await.unwrap();
    drop(consumer);
    drop(producer);
    stack.shutdown().await;
}

/// A client context that hands librdkafka one fixed OAUTHBEARER token (if set) and records the
/// errors librdkafka reports.
struct Recorder {
    token: String,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ClientContext for Recorder {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let expiry = std::time::SystemTime::now() + Duration::from_secs(300);
        Ok(OAuthToken {
            token: self.token.clone(),
            principal_name: "test".into(),
            lifetime_ms: i64::try_from(
                expiry
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            )
            .unwrap(),
        })
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors
            .lock()
            .unwrap()
            .push(format!("{error}: {reason}"));
    }
}

/// Asks the broker for metadata (within 10 s) as a client with `properties` (plus `token` for
/// OAUTHBEARER); on refusal, the errors librdkafka reported.
async fn metadata_as(properties: Vec<(String, String)>, token: String) -> Result<(), Vec<String>> {
    tokio::task::spawn_blocking(move || {
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut config = ClientConfig::new();
        for (key, value) in properties {
            config.set(key, value);
        }
        // A FutureProducer polls its events (the token refresh among them) on a thread of its own.
        let producer: FutureProducer<Recorder> = config
            .create_with_context(Recorder {
                token,
                errors: errors.clone(),
            })
            .unwrap();
        let result = producer
            .client()
            .fetch_metadata(Some(topics::ORDERS), Duration::from_secs(10));
        let mut errors = errors.lock().unwrap().clone();
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                errors.push(format!("metadata: {e}"));
                Err(errors)
            }
        }
    })
    .await
    .unwrap()
}

/// Asks the OAuth listener for metadata with `token`.
async fn metadata_with_token(bootstrap: &str, token: String) -> Result<(), Vec<String>> {
    let properties = [
        ("bootstrap.servers", bootstrap),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "OAUTHBEARER"),
    ];
    metadata_as(
        properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        token,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_refuses_expired_foreign_and_wrong_audience_tokens() {
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::OAuth).await;
    let broker = stack.kafka_broker().unwrap();
    let idp = stack.identity_provider().unwrap();
    let bootstrap = broker.oauth_bootstrap().unwrap();

    if let Err(e) = metadata_with_token(&bootstrap, idp.mint(ADMIN, "kafka")).await {
        panic!("a valid token is refused: {e:?}\n{}", broker.log_tail(40));
    }
    for (what, token, reason) in [
        ("expired", idp.mint_expired(ADMIN), "no longer valid"),
        ("foreign key", idp.mint_foreign_key(ADMIN), "signature"),
        ("wrong audience", idp.mint_wrong_audience(ADMIN), "audience"),
    ] {
        let before = broker.log_count("Failed authentication");
        let errors = metadata_with_token(&bootstrap, token).await.unwrap_err();
        let after = broker.log_count("Failed authentication");
        eprintln!("{what}: {errors:#?}; broker refusals {}", after - before);
        let auth_errors: Vec<&String> = errors
            .iter()
            .filter(|e| e.contains("SASL authentication error"))
            .collect();
        assert!(!auth_errors.is_empty(), "{what}: {errors:?}");
        assert!(after > before, "{what}: {}", broker.log_tail(20));
        // librdkafka backs off between attempts: a few refusals in 10 s, not a storm.
        assert!(after - before <= 10, "{what}: {} refusals", after - before);
        // Kafka's BrokerJwtValidator logs why it refused the token.
        let tail = broker.log_tail(400);
        let refusal = tail
            .lines()
            .rev()
            .find(|l| l.contains("WARN Could not validate the access token"))
            .unwrap_or_else(|| panic!("{what}: no validator warning in\n{tail}"));
        eprintln!("{what}: broker: {}", &refusal[..refusal.len().min(400)]);
        assert!(refusal.to_lowercase().contains(reason), "{what}: {refusal}");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_api_keys_right_password_works_wrong_password_is_a_clear_error() {
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::Plain).await;
    let broker = stack.kafka_broker().unwrap();

    let producer_config = config(&stack, ORDER_PRODUCER);
    assert_eq!(producer_config.get("sasl.mechanisms"), Some("PLAIN"));
    let client = Client::from_config(producer_config.clone()).unwrap();
    let producer = client.producer().await.unwrap();
    let consumer = Client::from_config(config(&stack, FULFILLMENT))
        .unwrap()
        .consumer::<Order>(ConsumerOptions::new("fulfillment-plain-it"))
        .await
        .unwrap();
    let sent = order(Uuid::new_v4(), 1);
    producer.send(&sent).await.unwrap();
    receive(&consumer, sent.order_id).await;
    consumer.close().await.unwrap();
    // Clients go before the broker: a consumer dropped after it waits for it to leave its group.
    drop(consumer);

    // The same key with a wrong password: librdkafka reports the broker's refusal.
    let wrong: Vec<(String, String)> = producer_config
        .rdkafka_config()
        .config_map()
        .iter()
        .map(|(&k, &v)| {
            let v = if k == "sasl.password" {
                "not-the-password"
            } else {
                v
            };
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let errors = metadata_as(wrong, String::new()).await.unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("SASL authentication error")
                && e.contains("Invalid username or password")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().all(|e| !e.contains("not-the-password")),
        "password in an error: {errors:?}"
    );
    assert!(
        broker
            .wait_for_log("Failed authentication", 1, Duration::from_secs(30))
            .await
    );
    let tail = broker.log_tail(40);
    assert!(tail.contains("Invalid username or password"), "{tail}");
    assert!(
        !tail.contains("not-the-password"),
        "password in the broker log"
    );
    let password = producer_config.get("sasl.password").unwrap();
    assert_eq!(
        broker.log_count(password),
        0,
        "a password in the broker log"
    );
    assert!(
        !format!("{stack:?}").contains(password),
        "a password in Debug"
    );
    drop(producer);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn records_survive_a_sigkill_and_restart_on_the_same_data() {
    let _serial = SERIAL.lock().await;
    let stack = real_stack(KafkaAuth::None).await;
    let broker = stack.kafka_broker().unwrap();
    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config.clone()).unwrap();
    let run = Uuid::new_v4();
    {
        let producer = client.producer().await.unwrap();
        for n in 0..50 {
            producer.send(&order(run, n)).await.unwrap();
        }
    }
    broker.kill().await.unwrap();
    broker.restart().await.unwrap();

    // A KIP-848 consumer group (`group.protocol=consumer`), which the broker enables.
    let consumer = Client::from_config(config.clone().set("group.protocol", "consumer"))
        .unwrap()
        .consumer::<Order>(ConsumerOptions::new(format!("after-restart-{run}")))
        .await
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 50 {
        let received = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of 50 records after the restart", seen.len()))
            .unwrap();
        consumer.ack(&received.meta).unwrap();
        assert_eq!(received.event.customer_id, run);
        seen.insert(received.event.order_id);
    }
    let joined = format!("[GroupId after-restart-{run}] Member ");
    assert!(
        broker.log_tail(5000).lines().any(|l| l.contains(&joined)
            && l.contains("joins the consumer group using the consumer protocol")),
        "the group did not use the KIP-848 consumer protocol"
    );
    consumer.close().await.unwrap();
    drop(consumer);
    let dir = broker.log_file().parent().unwrap().to_path_buf();
    stack.shutdown().await;
    assert!(!dir.exists(), "the broker's temporary directory is removed");
}
