//! SASL/OAUTHBEARER on the wire: librdkafka authenticates to a fake broker with the token from
//! the local OAuth endpoint and Confluent's SASL extensions, and presents a refreshed token
//! before the first one expires.

mod utils;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use avro_events::Error;
use avro_events::{
    auth::ClientAuthMethod, auth::KafkaOAuth, auth::OAuthClientCredentials, auth::TokenProvider,
};
use rdkafka::{
    ClientConfig,
    producer::{BaseProducer, Producer},
};
use utils::{
    fake_kafka::FakeKafka,
    token_server::{CLIENT_ID, CLIENT_SECRET, ClientAuth, Mode, SUBJECT, TokenServer},
};

const LOGICAL_CLUSTER: &str = "lkc-gr0c3";
const POOL: &str = "pool-Ab1z";

fn producer(bootstrap: &str, mechanism: &str) -> BaseProducer {
    let mut config = ClientConfig::new();
    if mechanism == "PLAIN" {
        config
            .set("sasl.username", "key")
            .set("sasl.password", "not-used");
    }
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", mechanism)
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200")
        .set("log_level", "2")
        .create()
        .expect("client creation")
}

fn provider(tokens: &TokenServer, method: ClientAuthMethod) -> Arc<TokenProvider> {
    Arc::new(
        TokenProvider::new(
            OAuthClientCredentials::new(&tokens.url, CLIENT_ID, CLIENT_SECRET)
                .with_scope("kafka schema-registry")
                .with_auth_method(method),
        )
        .unwrap(),
    )
}

/// Keeps asking the cluster for metadata so that librdkafka keeps (re)connecting: the fake
/// broker closes each connection after authenticating it.
fn keep_connecting(
    client: Arc<BaseProducer>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let _ = client
                .client()
                .fetch_metadata(None, Duration::from_millis(300));
        }
    })
}

async fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_first_message_carries_token_and_extensions_and_is_refreshed() {
    let tokens = TokenServer::start(Duration::from_secs(2), Mode::Normal).await;
    let kafka = FakeKafka::start().await;
    let provider = provider(&tokens, ClientAuthMethod::Basic);
    let oauth = KafkaOAuth::new(provider.clone(), LOGICAL_CLUSTER, Some(POOL.to_owned()));

    let client = Arc::new(producer(&kafka.bootstrap, "OAUTHBEARER"));
    let handle = oauth.install(&client).await.expect("install");
    let stop = Arc::new(AtomicBool::new(false));
    let connector = keep_connecting(client.clone(), stop.clone());

    // The first authentication carries the first token and both extensions, exactly as
    // RFC 7628 frames them.
    assert!(
        wait_until(Duration::from_secs(10), || !kafka.messages().is_empty()).await,
        "no SaslAuthenticate reached the fake broker"
    );
    assert_eq!(kafka.mechanisms()[0], "OAUTHBEARER");
    let first = kafka.messages()[0].clone();
    let issued = tokens.issued();
    let first_token = &issued[0].token;
    assert_eq!(
        first.text(),
        format!(
            "n,,\u{1}auth=Bearer {first_token}\u{1}logicalCluster={LOGICAL_CLUSTER}\u{1}identityPoolId={POOL}\u{1}\u{1}"
        )
    );
    println!(
        "client-first message: {:?}",
        first.text().replace(first_token.as_str(), "<token>")
    );
    assert_eq!(issued[0].client_auth, ClientAuth::Basic);
    assert_eq!(issued[0].scope.as_deref(), Some("kafka schema-registry"));

    // With 2 s tokens, later authentications present a different, freshly issued token.
    assert!(
        wait_until(Duration::from_secs(8), || {
            kafka.messages().iter().any(|m| {
                m.token()
                    .is_some_and(|t| &t != first_token && tokens.find(&t).is_some())
            }) && kafka
                .messages()
                .iter()
                .filter_map(|m| m.token())
                .collect::<std::collections::HashSet<_>>()
                .len()
                >= 3
        })
        .await,
        "no refreshed token reached the broker; tokens seen: {}, issued: {}",
        kafka
            .messages()
            .iter()
            .filter_map(|m| m.token())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        tokens.issued().len()
    );
    stop.store(true, Ordering::Relaxed);
    connector.join().unwrap();

    // Every authentication used a token the endpoint issued, before it expired, with both
    // extensions.
    let messages = kafka.messages();
    for m in &messages {
        let token = m.token().expect("auth=Bearer");
        let issued = tokens.find(&token).expect("token issued by the endpoint");
        assert!(
            issued.valid_at(m.at),
            "an expired token was presented ({} ms after issue)",
            (m.at - issued.issued_at).as_millis()
        );
        let pairs = m.pairs();
        assert!(pairs.contains(&("logicalCluster".into(), LOGICAL_CLUSTER.into())));
        assert!(pairs.contains(&("identityPoolId".into(), POOL.into())));
    }
    println!(
        "{} authentications with {} distinct tokens; {} token requests",
        messages.len(),
        messages
            .iter()
            .filter_map(|m| m.token())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        tokens.requests()
    );

    // The refresh task holds only a weak reference: dropping the client stops it.
    assert!(!handle.is_finished());
    drop(client);
    assert!(
        wait_until(Duration::from_secs(4), || handle.is_finished()).await,
        "refresh task still running after the client was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_pool_is_optional_and_form_auth_works() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let kafka = FakeKafka::start().await;
    let oauth = KafkaOAuth::new(
        provider(&tokens, ClientAuthMethod::RequestBody),
        LOGICAL_CLUSTER,
        None,
    );
    let client = Arc::new(producer(&kafka.bootstrap, "OAUTHBEARER"));
    let _handle = oauth.install(&client).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let connector = keep_connecting(client.clone(), stop.clone());
    let arrived = wait_until(Duration::from_secs(10), || !kafka.messages().is_empty()).await;
    stop.store(true, Ordering::Relaxed);
    connector.join().unwrap();
    assert!(arrived, "no SaslAuthenticate reached the fake broker");
    let token = &tokens.issued()[0].token;
    assert_eq!(tokens.issued()[0].client_auth, ClientAuth::Form);
    assert_eq!(
        kafka.messages()[0].text(),
        format!("n,,\u{1}auth=Bearer {token}\u{1}logicalCluster={LOGICAL_CLUSTER}\u{1}\u{1}")
    );
    assert_eq!(provider_subject(&oauth).await, SUBJECT);
}

async fn provider_subject(oauth: &KafkaOAuth) -> String {
    oauth
        .provider()
        .token()
        .await
        .unwrap()
        .subject()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn install_reports_a_refused_client_without_the_secret() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let provider = Arc::new(
        TokenProvider::new(OAuthClientCredentials::new(
            &tokens.url,
            CLIENT_ID,
            "wrong-s3cret-Value",
        ))
        .unwrap(),
    );
    let client = Arc::new(producer("127.0.0.1:9", "OAUTHBEARER"));
    let err = KafkaOAuth::new(provider, LOGICAL_CLUSTER, None)
        .install(&client)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(text.contains(&tokens.url), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("wrong-s3cret"), "{text}");
}

#[tokio::test]
async fn install_refuses_a_client_without_oauthbearer() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let client = Arc::new(producer("127.0.0.1:9", "PLAIN"));
    let err = KafkaOAuth::new(
        provider(&tokens, ClientAuthMethod::Basic),
        LOGICAL_CLUSTER,
        None,
    )
    .install(&client)
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("SASL/OAUTHBEARER is not the configured authentication mechanism"),
        "{text}"
    );
    assert!(!text.contains(&tokens.issued()[0].token), "{text}");
}

/// Identity provider down when the client is created: `install` succeeds (the failure is
/// reported to librdkafka and logged), the refresh task retries with backoff, and once the
/// endpoint answers the token reaches the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_down_at_start_then_up_the_token_reaches_the_broker() {
    let idp = TokenServer::reserve_addr();
    let url = TokenServer::url_at(idp);
    let kafka = FakeKafka::start().await;
    let provider = Arc::new(
        TokenProvider::new(OAuthClientCredentials::new(&url, CLIENT_ID, CLIENT_SECRET)).unwrap(),
    );
    let oauth = KafkaOAuth::new(provider.clone(), LOGICAL_CLUSTER, None);
    let client = Arc::new(producer(&kafka.bootstrap, "OAUTHBEARER"));
    let handle = oauth
        .install(&client)
        .await
        .expect("an unreachable identity provider is not fatal");
    assert_eq!(provider.fetch_count().await, 1);
    assert!(!handle.is_finished());

    let tokens = TokenServer::start_on(idp, Duration::from_secs(60), Mode::Normal).await;
    let stop = Arc::new(AtomicBool::new(false));
    let connector = keep_connecting(client.clone(), stop.clone());
    let arrived = wait_until(Duration::from_secs(20), || {
        kafka
            .messages()
            .iter()
            .any(|m| m.token().is_some_and(|t| tokens.find(&t).is_some()))
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    connector.join().unwrap();
    assert!(
        arrived,
        "no token reached the broker after the identity provider came up ({} token requests)",
        tokens.requests()
    );
    assert!(provider.fetch_count().await >= 2);
    let first = &kafka.messages()[0];
    assert_eq!(
        first.text(),
        format!(
            "n,,\u{1}auth=Bearer {}\u{1}logicalCluster={LOGICAL_CLUSTER}\u{1}\u{1}",
            tokens.issued()[0].token
        )
    );
}

/// An endpoint that says its token lives `u64::MAX` seconds (`expires_in`, or a JWT's `exp`
/// when `expires_in` is missing) overflowed the clock arithmetic: the fetch panicked, in the
/// caller or in the refresh task. Such a token is kept for a day (and refreshed before that),
/// it reaches the broker, and the refresh task runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_said_to_live_forever_is_kept_for_a_day() {
    for mode in [Mode::ExpiresInMax, Mode::ExpMax] {
        let tokens = TokenServer::start(Duration::from_secs(60), mode).await;
        let kafka = FakeKafka::start().await;
        let provider = provider(&tokens, ClientAuthMethod::Basic);
        let token = provider.token().await.expect("a token");
        let day = Duration::from_secs(24 * 60 * 60);
        let kept = token
            .expires_at()
            .duration_since(std::time::SystemTime::now())
            .expect("expires in the future");
        assert!(
            kept <= day && kept > day - Duration::from_secs(3600),
            "{mode:?}: kept for {kept:?}"
        );
        let refresh_in = token.refresh_at().saturating_duration_since(Instant::now());
        assert!(
            refresh_in < kept && refresh_in > Duration::from_secs(3600),
            "{mode:?}: refreshed in {refresh_in:?}"
        );

        let client = Arc::new(producer(&kafka.bootstrap, "OAUTHBEARER"));
        let handle = KafkaOAuth::new(provider.clone(), LOGICAL_CLUSTER, None)
            .install(&client)
            .await
            .expect("install");
        let stop = Arc::new(AtomicBool::new(false));
        let connector = keep_connecting(client.clone(), stop.clone());
        assert!(
            wait_until(Duration::from_secs(10), || {
                kafka
                    .messages()
                    .iter()
                    .any(|m| m.token().as_deref() == Some(token.secret()))
            })
            .await,
            "{mode:?}: the token never reached the broker"
        );
        stop.store(true, Ordering::Relaxed);
        connector.join().unwrap();
        assert!(!handle.is_finished(), "{mode:?}: the refresh task stopped");
        assert_eq!(tokens.requests(), 1, "{mode:?}");
    }
}
