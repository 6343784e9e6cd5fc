//! Neither the client secret nor an access token appears in `Debug` output or error messages.

mod utils;

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use avro_events::Error;
use avro_events::{
    auth::KafkaOAuth, auth::OAuthClientCredentials, auth::TokenProvider, registry::RegistryAuth,
};
use rdkafka::{ClientConfig, producer::BaseProducer};
use utils::token_server::{BODY_MARKER, CLIENT_ID, CLIENT_SECRET, Mode, TokenServer};

/// Log output of this thread, captured at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

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

/// A token endpoint's error body (an HTML page quoting the request, or an OAuth error answer
/// echoing the secret) reaches no error message, no `Debug` output, no log line and not
/// librdkafka (which gets the error text through `set_token_failure`). The status and the
/// RFC 6749 `error` code are reported.
#[tokio::test]
async fn error_bodies_reach_no_error_and_no_log() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    for (mode, expected) in [
        (Mode::ErrorPage, "HTTP 500"),
        (Mode::EchoingOAuthError, "HTTP 400"),
    ] {
        let tokens = TokenServer::start(Duration::from_secs(60), mode).await;
        let provider = Arc::new(
            TokenProvider::new(OAuthClientCredentials::new(
                &tokens.url,
                CLIENT_ID,
                CLIENT_SECRET,
            ))
            .unwrap(),
        );
        let err = provider.token().await.unwrap_err();
        let text = err.to_string();
        println!("{mode:?}: {text}");
        assert!(!text.contains(BODY_MARKER), "the body leaked: {text}");
        assert!(
            text.contains(&tokens.url) && text.contains(expected),
            "{text}"
        );
        if mode == Mode::EchoingOAuthError {
            assert!(text.contains("invalid_request"), "{text}");
            assert!(!err.is_transient(), "{err:?}");
        } else {
            assert!(err.is_transient(), "a 500 is worth retrying: {err:?}");
        }
        // The Kafka side: librdkafka is told why (a 500 is retried in the background, a
        // refused request fails the install).
        let client: Arc<BaseProducer> = Arc::new(
            ClientConfig::new()
                .set("bootstrap.servers", "127.0.0.1:9")
                .set("security.protocol", "SASL_PLAINTEXT")
                .set("sasl.mechanisms", "OAUTHBEARER")
                .create()
                .unwrap(),
        );
        let installed = KafkaOAuth::new(provider.clone(), "lkc-1", None)
            .install(&client)
            .await;
        let install_text = match &installed {
            Ok(_) => String::new(),
            Err(e) => format!("{e} {e:?}"),
        };
        assert_eq!(installed.is_ok(), mode == Mode::ErrorPage, "{install_text}");
        for shown in [text, format!("{err:?}"), install_text] {
            assert!(!shown.contains(BODY_MARKER), "the body leaked: {shown}");
            assert!(!shown.contains(CLIENT_SECRET), "the secret leaked: {shown}");
            assert!(!shown.contains("<html"), "the body leaked: {shown}");
        }
    }
    let logs = captured.text();
    assert!(
        logs.contains("cannot fetch the first OAUTHBEARER token"),
        "{logs}"
    );
    assert!(
        !logs.contains(BODY_MARKER),
        "the body reached a log: {logs}"
    );
    assert!(
        !logs.contains(CLIENT_SECRET),
        "the secret reached a log: {logs}"
    );
}

/// Token endpoints must be https://, except on loopback hosts (local test identity providers).
#[test]
fn refuses_clear_text_token_endpoints_off_loopback() {
    for url in [
        "http://idp.example/oauth2/token",
        "http://10.0.0.7:8080/token",
        "ftp://idp.example/token",
    ] {
        let err = TokenProvider::new(OAuthClientCredentials::new(url, CLIENT_ID, CLIENT_SECRET))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "sasl.oauthbearer.token.endpoint.url"),
            "{text}"
        );
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
    for url in [
        "https://idp.example/oauth2/token",
        "http://localhost:8080/token",
        "http://127.0.0.1:8080/token",
        "http://127.8.9.10/token",
        "http://[::1]:8080/token",
    ] {
        TokenProvider::new(OAuthClientCredentials::new(url, CLIENT_ID, CLIENT_SECRET))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // Userinfo and query of the endpoint are never shown.
    let err = TokenProvider::new(OAuthClientCredentials::new(
        "http://user:pa55word@idp.example/token?key=qu3ry",
        CLIENT_ID,
        CLIENT_SECRET,
    ))
    .unwrap_err()
    .to_string();
    assert!(!err.contains("pa55word") && !err.contains("qu3ry"), "{err}");
}

/// Registry credentials never cross a network in clear text: with basic auth, an API key in the
/// URL, a static token or OAuth, an `http://` `schema.registry.url` of a host that is not
/// loopback is a configuration error naming the key (from `client.properties` and from a
/// hand-built `RegistryConfig` alike), never quoting the secret. Loopback hosts, `https://`, and
/// `http://` without credentials are accepted.
#[test]
fn refuses_registry_credentials_over_clear_text_off_loopback() {
    use avro_events::Config;
    use avro_events::{registry::RegistryClient, registry::RegistryConfig};
    let idp = "http://127.0.0.1:9/oauth2/token";
    let credentials = [
        "basic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=SRKEY:Sr-S3cret-value\n"
            .to_owned(),
        "basic.auth.credentials.source=SASL_INHERIT\nsasl.username=K\nsasl.password=Sr-S3cret-value\n"
            .to_owned(),
        "bearer.auth.credentials.source=STATIC_TOKEN\nbearer.auth.token=Sr-S3cret-value\n".to_owned(),
        format!(
            "bearer.auth.credentials.source=OAUTHBEARER\nbearer.auth.issuer.endpoint.url={idp}\n\
             bearer.auth.client.id={CLIENT_ID}\nbearer.auth.client.secret=Sr-S3cret-value\n\
             bearer.auth.logical.cluster=lsrc-1\n"
        ),
    ];
    let properties = |url: &str, creds: &str| {
        Config::from_properties_str(&format!(
            "bootstrap.servers=127.0.0.1:9092\nschema.registry.url={url}\n{creds}"
        ))
        .unwrap()
    };
    let refused = |what: &str, result: avro_events::Result<()>| {
        let err = result.expect_err(what);
        let text = err.to_string();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "schema.registry.url"),
            "{what}: {text}"
        );
        assert!(text.contains("clear text"), "{what}: {text}");
        assert!(
            !text.contains("S3cret") && !text.contains("SRKEY"),
            "{what}: {text}"
        );
    };
    for creds in &credentials {
        for url in [
            "http://psrc.example:8081",
            "http://10.0.0.7:8081",
            "https://psrc.example,http://psrc-2.example",
        ] {
            let config = properties(url, creds);
            refused(
                &format!("{url} {creds}"),
                config.registry_config().map(drop),
            );
            refused(&format!("validate {url}"), config.validate());
        }
        for url in [
            "https://psrc.example",
            "http://localhost:8081",
            "http://127.0.0.1:8081",
            "http://[::1]:8081",
        ] {
            let config = properties(url, creds);
            let registry = config
                .registry_config()
                .unwrap_or_else(|e| panic!("{url} {creds}: {e}"));
            RegistryClient::new(&registry).unwrap_or_else(|e| panic!("{url} {creds}: {e}"));
        }
    }
    // An API key in the URL is basic auth too.
    let in_url = RegistryConfig::new("http://SRKEY:Sr-S3cret-value@psrc.example:8081");
    refused("key in the URL", RegistryClient::new(&in_url).map(drop));
    refused(
        "key in the URL, properties",
        properties("http://SRKEY:Sr-S3cret-value@psrc.example", "")
            .registry_config()
            .map(drop),
    );
    RegistryClient::new(&RegistryConfig::new(
        "http://SRKEY:Sr-S3cret-value@127.0.0.1:8081",
    ))
    .unwrap();
    // Without credentials, http:// is the user's choice.
    RegistryClient::new(&RegistryConfig::new("http://psrc.example:8081")).unwrap();
    properties("http://psrc.example:8081", "")
        .validate()
        .unwrap();
}

/// A description that quotes the client secret is checked before it is cut short: one whose
/// secret starts just before the cut (120 characters) showed the secret's first characters.
#[tokio::test]
async fn a_secret_across_the_cut_of_a_description_is_not_shown() {
    use utils::token_server::SECRET_AT;
    let tokens = TokenServer::start(Duration::from_secs(60), Mode::EchoingSecretAtTheCut).await;
    let provider = Arc::new(
        TokenProvider::new(OAuthClientCredentials::new(
            &tokens.url,
            CLIENT_ID,
            CLIENT_SECRET,
        ))
        .unwrap(),
    );
    let err = provider.token().await.unwrap_err();
    let client: Arc<BaseProducer> = Arc::new(
        ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9")
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "OAUTHBEARER")
            .create()
            .unwrap(),
    );
    let install = KafkaOAuth::new(provider, "lkc-1", None)
        .install(&client)
        .await
        .expect_err("a refused request fails the install");
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("invalid_request"), "{text}");
    assert!(text.contains("quotes the client secret"), "{text}");
    let head = &CLIENT_SECRET[..120 - SECRET_AT];
    for shown in [
        text,
        format!("{err:?}"),
        install.to_string(),
        format!("{install:?}"),
    ] {
        assert!(!shown.contains(head), "part of the secret leaked: {shown}");
    }
}
