//! The test identity provider over HTTP: both client authentication styles, refusals, the
//! provider going down and up, and tokens that verify against its JWKS.

use std::time::Duration;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use local_stack::idp::{IdentityProvider, IdpOptions};
use serde_json::Value;

fn idp() -> IdentityProvider {
    IdentityProvider::start(IdpOptions {
        clients: vec![("svc".into(), "s3cret".into())],
        token_lifetime: Duration::from_secs(42),
        ..IdpOptions::default()
    })
    .unwrap()
}

fn part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

/// Verifies `token`'s RS256 signature with the key the JWKS publishes.
fn verifies(jwks: &Value, token: &str) -> bool {
    let key = &jwks["keys"][0];
    let n = B64.decode(key["n"].as_str().unwrap()).unwrap();
    let e = B64.decode(key["e"].as_str().unwrap()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &B64.decode(signature).unwrap(),
        )
        .is_ok()
}

#[tokio::test]
async fn issues_verifiable_tokens_to_registered_clients_only() {
    let idp = idp();
    let http = reqwest::Client::new();
    let jwks: Value = http
        .get(idp.jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "local-idp-1");

    // client_secret_basic
    let basic: Value = http
        .post(idp.token_url())
        .basic_auth("svc", Some("s3cret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "kafka")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(basic["expires_in"], 42);
    let token = basic["access_token"].as_str().unwrap();
    assert!(verifies(&jwks, token));
    let (header, claims) = (part(token, 0), part(token, 1));
    assert_eq!(header["kid"], "local-idp-1");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["aud"], idp.audience());
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["scope"], "kafka");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        42
    );

    // client_secret_post
    let post = http
        .post(idp.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret"),
        ])
        .send()
        .await
        .unwrap();
    assert!(post.status().is_success());
    assert_eq!(idp.tokens_issued("svc"), 2);

    // Refusals: wrong secret, unknown grant.
    let wrong = http
        .post(idp.token_url())
        .basic_auth("svc", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let grant = http
        .post(idp.token_url())
        .basic_auth("svc", Some("s3cret"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 400);

    // Down: 503 for tokens and keys; back up: tokens again.
    idp.set_available(false);
    let down = http
        .post(idp.token_url())
        .basic_auth("svc", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(http.get(idp.jwks_url()).send().await.unwrap().status(), 503);
    idp.set_available(true);
    let up = http
        .post(idp.token_url())
        .basic_auth("svc", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(up.status().is_success());
    assert_eq!(idp.tokens_issued("svc"), 3);
    assert_eq!(idp.requests_refused(), 3);

    // The deliberately bad tokens: only the foreign-key one fails the signature check.
    assert!(verifies(&jwks, &idp.mint("svc", "kafka")));
    assert!(verifies(&jwks, &idp.mint_expired("svc")));
    assert!(!verifies(&jwks, &idp.mint_foreign_key("svc")));
    assert_eq!(
        part(&idp.mint_wrong_audience("svc"), 1)["aud"],
        "some-other-service"
    );
    assert!(
        part(&idp.mint_expired("svc"), 1)["exp"].as_u64().unwrap()
            < std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
    );
    assert!(
        !format!(
            "{:?}",
            IdpOptions {
                clients: vec![("svc".into(), "s3cret".into())],
                ..IdpOptions::default()
            }
        )
        .contains("s3cret")
    );
}
