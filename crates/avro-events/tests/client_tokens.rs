//! One [`Client`], one token source per identity: a service-like setup (a producer, a consumer,
//! a pipeline and Schema Registry lookups, all from one client) asks the OAuth token endpoint
//! once when Kafka and the registry use the same identity, twice when they use two, and every
//! SASL/OAUTHBEARER login and every registry request carries a token of that source.
//!
//! Before the client root every `Producer::new` / `Consumer::new` built its own token
//! provider: the same setup asked the endpoint 7 times (see the issue 11 report).

mod utils;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use avro_events::{Client, Config};
use utils::{
    events::Reading,
    fake_kafka::FakeKafka,
    fake_registry::FakeRegistry,
    token_server::{CLIENT_ID, CLIENT_SECRET, Mode, TokenServer},
};

/// librdkafka clients the setup below creates: the producer, the consumer and its dead-letter
/// producer, the pipeline's producer and consumer (the pipeline dead-letters through its own
/// producer).
const KAFKA_CLIENTS: usize = 5;

fn config(
    tokens: &TokenServer,
    kafka: &FakeKafka,
    registry: &FakeRegistry,
    kafka_scope: &str,
    registry_scope: &str,
) -> Config {
    Config::new()
        .set("bootstrap.servers", &kafka.bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", "OAUTHBEARER")
        .set("sasl.oauthbearer.method", "oidc")
        .set("sasl.oauthbearer.token.endpoint.url", &tokens.url)
        .set("sasl.oauthbearer.client.id", CLIENT_ID)
        .set("sasl.oauthbearer.client.secret", CLIENT_SECRET)
        .set("sasl.oauthbearer.scope", kafka_scope)
        .set(
            "sasl.oauthbearer.extensions",
            "logicalCluster=lkc-1,identityPoolId=pool-1",
        )
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200")
        .set("log_level", "2")
        .set("schema.registry.url", &registry.url)
        .set("bearer.auth.credentials.source", "OAUTHBEARER")
        .set("bearer.auth.issuer.endpoint.url", &tokens.url)
        .set("bearer.auth.client.id", CLIENT_ID)
        .set("bearer.auth.client.secret", CLIENT_SECRET)
        .set("bearer.auth.scope", registry_scope)
        .set("bearer.auth.logical.cluster", "lsrc-1")
}

/// Creates what a fulfillment instance and its neighbours create from one client, asks the
/// registry twice, and waits until every Kafka client has logged in to the fake broker.
/// Returns the tokens the broker and the registry saw.
async fn run_service(client: &Client, kafka: &FakeKafka, registry: &FakeRegistry) -> Seen {
    let producer = client.producer().await.unwrap();
    let consumer = client.consumer::<Reading>("tokens-consumer").await.unwrap();
    let pipeline = client.pipeline::<Reading>("tokens-pipeline").await.unwrap();
    for id in [1, 2] {
        client.codec().registry().schema_by_id(id).await.unwrap();
    }
    // The fake broker records each SASL login; every client logs in at least once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while kafka.messages().len() < KAFKA_CLIENTS {
        assert!(
            Instant::now() < deadline,
            "only {} SASL logins reached the fake broker",
            kafka.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((producer, consumer, pipeline));
    Seen {
        kafka: kafka.messages().iter().filter_map(|m| m.token()).collect(),
        registry: registry.seen().iter().filter_map(|s| s.bearer()).collect(),
    }
}

struct Seen {
    kafka: BTreeSet<String>,
    registry: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_identity_for_kafka_and_the_registry_is_one_token_request() {
    let tokens = TokenServer::start(Duration::from_secs(600), Mode::Normal).await;
    let kafka = FakeKafka::start().await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let scope = "kafka schema-registry";
    let client = Client::from_config(config(&tokens, &kafka, &registry, scope, scope)).unwrap();

    let seen = run_service(&client, &kafka, &registry).await;
    println!(
        "token requests: {} for {KAFKA_CLIENTS} Kafka clients and 2 registry lookups",
        tokens.requests()
    );
    assert_eq!(tokens.requests(), 1, "one token request for one identity");
    let issued = tokens.issued();
    let only = BTreeSet::from([issued[0].token.clone()]);
    assert_eq!(seen.kafka, only, "every SASL login carried the one token");
    assert_eq!(seen.registry, only, "every registry request carried it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identities_are_two_token_requests() {
    let tokens = TokenServer::start(Duration::from_secs(600), Mode::Normal).await;
    let kafka = FakeKafka::start().await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let client = Client::from_config(config(
        &tokens,
        &kafka,
        &registry,
        "kafka",
        "schema-registry",
    ))
    .unwrap();
    let seen = run_service(&client, &kafka, &registry).await;
    assert_eq!(tokens.requests(), 2, "one token request per identity");
    let scoped = |scope: &str| -> BTreeSet<String> {
        tokens
            .issued()
            .into_iter()
            .filter(|i| i.scope.as_deref() == Some(scope))
            .map(|i| i.token)
            .collect()
    };
    assert_eq!(seen.kafka, scoped("kafka"));
    assert_eq!(seen.registry, scoped("schema-registry"));
}

/// The application's hooks hear of a token endpoint that refuses the client credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_hear_of_a_refused_token_request() {
    #[derive(Clone, Default)]
    struct Failures(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
    impl avro_events::Hooks for Failures {
        fn auth_failed(&self, failure: &avro_events::AuthFailure<'_>) {
            if let avro_events::AuthFailure::TokenEndpoint { error } = failure {
                self.0.lock().unwrap().push(error.to_string());
            }
        }
    }
    let tokens = TokenServer::start(Duration::from_secs(600), Mode::Normal).await;
    let kafka = FakeKafka::start().await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let scope = "schema-registry";
    let config = config(&tokens, &kafka, &registry, scope, scope)
        .set("bearer.auth.client.secret", "not-the-secret");
    let failures = Failures::default();
    let client = Client::builder(config)
        .hooks(failures.clone())
        .build()
        .unwrap();
    let error = client.codec().registry().schema_by_id(1).await.unwrap_err();
    let told = failures.0.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("invalid_client"), "{told:?}");
    assert!(!told[0].contains("not-the-secret"));
    assert!(
        matches!(error, avro_events::Error::Auth { .. }),
        "{error:?}"
    );
}
