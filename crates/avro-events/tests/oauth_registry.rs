//! Schema Registry bearer auth on the wire: `RegistryClient` with `RegistryAuth::OAuth` sends
//! `Authorization: Bearer <token>`, `target-sr-cluster` and `Confluent-Identity-Pool-Id`, and
//! refreshes an expired token. The fake registry rejects tokens it did not see issued or that
//! have expired.

mod utils;

use std::{sync::Arc, time::Duration};

use avro_events::Error;
use avro_events::{
    auth::OAuthClientCredentials, auth::TokenProvider, registry::RegistryAuth,
    registry::RegistryClient, registry::RegistryConfig,
};
use utils::{
    fake_registry::FakeRegistry,
    token_server::{CLIENT_ID, CLIENT_SECRET, Mode, TokenServer},
};

const SR_CLUSTER: &str = "lsrc-gr0c";
const POOL: &str = "pool-Sr42";

fn provider(endpoint: &str, secret: &str) -> Arc<TokenProvider> {
    Arc::new(TokenProvider::new(OAuthClientCredentials::new(endpoint, CLIENT_ID, secret)).unwrap())
}

fn client(
    registry: &FakeRegistry,
    provider: Arc<TokenProvider>,
    pool: Option<&str>,
) -> RegistryClient {
    RegistryClient::new(&RegistryConfig {
        auth: RegistryAuth::OAuth {
            provider,
            logical_cluster: SR_CLUSTER.into(),
            identity_pool_id: pool.map(str::to_owned),
        },
        ..RegistryConfig::new(&registry.url)
    })
    .unwrap()
}

#[tokio::test]
async fn sends_bearer_token_and_confluent_headers_and_refreshes_expired_tokens() {
    let tokens = TokenServer::start(Duration::from_secs(2), Mode::Normal).await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let provider = provider(&tokens.url, CLIENT_SECRET);
    let client = client(&registry, provider.clone(), Some(POOL));

    let schema = client.schema_by_id(7).await.expect("first call");
    assert!(schema.schema.contains("F7"), "{}", schema.schema);
    let seen = registry.seen();
    assert_eq!(seen.len(), 1);
    let first = &seen[0];
    assert!(first.accepted);
    assert_eq!(
        first.bearer().as_deref(),
        Some(tokens.issued()[0].token.as_str())
    );
    assert_eq!(
        first.header("target-sr-cluster").as_deref(),
        Some(SR_CLUSTER)
    );
    assert_eq!(
        first.header("confluent-identity-pool-id").as_deref(),
        Some(POOL)
    );

    // Within the token's life the cached token is reused.
    client.schema_by_id(8).await.expect("second call");
    assert_eq!(tokens.requests(), 1);
    assert_eq!(registry.seen()[1].bearer(), first.bearer());

    // Once it has expired (the fake registry would answer 401), a new one is fetched.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    client.schema_by_id(9).await.expect("call after expiry");
    let last = registry.seen().last().cloned().unwrap();
    assert!(last.accepted);
    assert_ne!(last.bearer(), first.bearer());
    assert_eq!(
        last.bearer().as_deref(),
        Some(tokens.issued()[1].token.as_str())
    );
    assert_eq!(tokens.requests(), 2);
    assert_eq!(provider.fetch_count().await, 2);
}

#[tokio::test]
async fn pool_header_is_optional_and_concurrent_calls_share_one_fetch() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let client = client(&registry, provider(&tokens.url, CLIENT_SECRET), None);
    let calls = (1..=16).map(|id| {
        let client = client.clone();
        async move { client.schema_by_id(id).await }
    });
    for result in futures::future::join_all(calls).await {
        result.expect("call");
    }
    assert_eq!(
        tokens.requests(),
        1,
        "concurrent callers must wait for one fetch"
    );
    let seen = registry.seen();
    assert_eq!(seen.len(), 16);
    assert!(seen.iter().all(|s| s.accepted
        && s.header("confluent-identity-pool-id").is_none()
        && s.header("target-sr-cluster").as_deref() == Some(SR_CLUSTER)));
}

#[tokio::test]
async fn token_endpoint_failures_surface_as_auth_errors() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let registry = FakeRegistry::start(tokens.clone()).await;

    // Wrong secret: the endpoint answers 401 invalid_client; the registry is never called.
    let err = client(&registry, provider(&tokens.url, "wr0ng-Secret"), Some(POOL))
        .schema_by_id(1)
        .await
        .unwrap_err();
    let text = err.to_string();
    println!("refused: {text}");
    assert!(
        matches!(err, Error::Auth { ref endpoint, .. } if endpoint == &tokens.url),
        "{err:?}"
    );
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("wr0ng-Secret"), "{text}");
    assert!(registry.seen().is_empty());

    // Unreachable endpoint.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/token", listener.local_addr().unwrap())
    };
    let err = client(&registry, provider(&closed, CLIENT_SECRET), None)
        .schema_by_id(1)
        .await
        .unwrap_err();
    let text = err.to_string();
    println!("unreachable: {text}");
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(
        text.contains(&closed) && text.contains("unreachable"),
        "{text}"
    );
    assert!(!text.contains(CLIENT_SECRET), "{text}");
}

#[tokio::test]
async fn a_rejected_token_is_dropped_and_the_next_call_fetches_a_new_one() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let client = client(&registry, provider(&tokens.url, CLIENT_SECRET), Some(POOL));
    client.schema_by_id(1).await.expect("first call");
    let first = tokens.issued()[0].token.clone();

    registry.revoke(&first);
    let err = client.schema_by_id(2).await.unwrap_err();
    println!("after revocation: {err}");
    assert!(
        matches!(err, Error::RegistryUnauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&first), "{err}");

    client.schema_by_id(3).await.expect("call with a new token");
    let last = registry.seen().last().cloned().unwrap();
    assert!(last.accepted);
    assert_ne!(last.bearer().as_deref(), Some(first.as_str()));
    assert_eq!(tokens.requests(), 2);
}

/// Identity provider down when the registry client starts: each request fails with a
/// transient `Error::Auth` naming the endpoint (so callers retry), and once the endpoint
/// answers the same client gets its token and the registry accepts it.
#[tokio::test]
async fn identity_provider_down_at_start_is_a_transient_error_per_request() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let registry = FakeRegistry::start(tokens.clone()).await;
    let idp = TokenServer::reserve_addr();
    let url = TokenServer::url_at(idp);
    let client = client(&registry, provider(&url, CLIENT_SECRET), None);
    for _ in 0..2 {
        let err = client.schema_by_id(7).await.unwrap_err();
        assert!(
            matches!(err, Error::Auth { ref endpoint, transient: true, .. } if endpoint == &url),
            "{err:?}"
        );
        assert!(err.is_transient());
        assert!(!err.to_string().contains(CLIENT_SECRET), "{err}");
    }
    assert!(registry.seen().is_empty());
    tokens.listen_also_on(idp).await;
    let schema = client.schema_by_id(7).await.expect("after the IdP came up");
    assert!(schema.schema.contains("F7"));
    assert!(registry.seen().iter().all(|s| s.accepted));
}
