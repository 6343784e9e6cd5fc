//! Neither the client secret nor an access token appears in `Debug` output or error messages.

mod support;

use std::{sync::Arc, time::Duration};

use grocery_events::{
    auth::{KafkaOAuth, OAuthClientCredentials, TokenProvider},
    registry::RegistryAuth,
};
use support::token_server::{CLIENT_ID, CLIENT_SECRET, Mode, TokenServer};

#[tokio::test]
async fn debug_output_never_shows_secret_or_token() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Normal).await;
    let creds = OAuthClientCredentials::new(&tokens.url, CLIENT_ID, CLIENT_SECRET);
    let provider = Arc::new(TokenProvider::new(creds.clone()).unwrap());
    let token = provider.token().await.unwrap();
    let issued = tokens.issued()[0].token.clone();
    assert_eq!(token.secret(), issued);

    let kafka = KafkaOAuth::new(provider.clone(), "lkc-1", Some("pool-1".into()));
    let registry = RegistryAuth::OAuth {
        provider: provider.clone(),
        logical_cluster: "lsrc-1".into(),
        identity_pool_id: None,
    };
    let shown = format!("{creds:?}\n{provider:?}\n{token:?}\n{kafka:?}\n{registry:?}");
    assert!(shown.contains(CLIENT_ID) && shown.contains("lsrc-1") && shown.contains("lkc-1"));
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    assert!(!shown.contains(&issued), "{shown}");
    // Not even a part of the token (its JWT payload).
    assert!(
        !shown.contains(issued.split('.').nth(1).unwrap()),
        "{shown}"
    );
}

#[tokio::test]
async fn a_malformed_answer_is_reported_without_its_body() {
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::Malformed).await;
    let provider = TokenProvider::new(OAuthClientCredentials::new(
        &tokens.url,
        CLIENT_ID,
        CLIENT_SECRET,
    ))
    .unwrap();
    let err = provider.token().await.unwrap_err();
    let text = err.to_string();
    let debug = format!("{err:?}");
    println!("malformed: {text}");
    assert!(text.contains(&tokens.url), "{text}");
    assert!(
        text.contains("malformed token answer") && text.contains("expires_in"),
        "{text}"
    );
    for shown in [&text, &debug] {
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
        assert!(!shown.contains("eyJ"), "the answer's token leaked: {shown}");
    }
}

#[test]
fn rejects_a_token_endpoint_that_is_not_http() {
    let err = TokenProvider::new(OAuthClientCredentials::new(
        "idp.example/token",
        CLIENT_ID,
        CLIENT_SECRET,
    ))
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("sasl.oauthbearer.token.endpoint.url"),
        "{text}"
    );
    assert!(!text.contains(CLIENT_SECRET), "{text}");
}
