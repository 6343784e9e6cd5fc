//! The library's HTTP clients and the platform's trust roots: a registry client of `http://`
//! registries only, and a token provider of a loopback `http://` identity provider, never make
//! a TLS connection, so they build on a system without CA certificates (a minimal container
//! image) and do not read them at start; `https://` URLs still need them.
//!
//! A test binary of its own: it points `SSL_CERT_FILE` and `SSL_CERT_DIR`, which the platform
//! verifier reads, at paths that do not exist, for the whole process.

use avro_events::{
    Codec, Config, Error,
    auth::{OAuthClientCredentials, TokenProvider},
};

#[test]
fn plain_http_clients_need_no_system_trust_roots_and_https_ones_still_do() {
    let missing = std::env::temp_dir().join(format!("no-trust-roots-{}", std::process::id()));
    // SAFETY: the only test of this binary, set before anything else runs or reads the
    // environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &missing);
        std::env::set_var("SSL_CERT_DIR", &missing);
    }
    let config = |url: &str| {
        Config::from_properties_str(&format!(
            "bootstrap.servers=127.0.0.1:9092\nschema.registry.url={url}\n"
        ))
        .unwrap()
    };

    let plain = Codec::from_config(&config("http://127.0.0.1:8081,http://localhost:8082"));
    assert!(
        plain.is_ok(),
        "an http:// registry client needs no trust roots: {:?}",
        plain.err()
    );

    // An https:// registry is verified against the system's roots: without any, the client
    // is refused at once with a typed error naming the setting, never built unverified.
    match Codec::from_config(&config("https://registry.example.com")) {
        Err(Error::Config { key, reason }) => {
            assert_eq!(key, "schema.registry.url");
            // The cause, not only reqwest's "builder error".
            assert!(
                reason.starts_with("cannot build the HTTP client: builder error: ")
                    && reason.contains("certificate"),
                "unexpected reason: {reason}"
            );
        }
        other => panic!(
            "an https:// registry without trust roots must be refused: {:?}",
            other.err()
        ),
    }
    // One https:// URL among plain ones: the roots are loaded (and missing) all the same.
    assert!(matches!(
        Codec::from_config(&config(
            "http://127.0.0.1:8081,https://registry.example.com"
        )),
        Err(Error::Config { .. })
    ));

    // The token provider of a local identity provider (loopback http://) likewise; an https://
    // identity provider is refused the same way.
    let provider = |endpoint: &str| {
        TokenProvider::new(OAuthClientCredentials::new(endpoint, "client", "secret"))
    };
    let local = provider("http://127.0.0.1:8080/token");
    assert!(
        local.is_ok(),
        "a loopback http:// identity provider needs no trust roots: {:?}",
        local.err()
    );
    match provider("https://idp.example.com/token") {
        Err(Error::Config { key, reason }) => {
            assert_eq!(key, "sasl.oauthbearer.token.endpoint.url");
            assert!(
                reason.contains("certificate"),
                "unexpected reason: {reason}"
            );
        }
        other => panic!(
            "an https:// identity provider without trust roots must be refused: {:?}",
            other.err()
        ),
    }
}
