//! A test identity provider: an OAuth 2.0 client-credentials token endpoint issuing RS256 JWTs
//! and the JWKS to check them, on an ephemeral port of 127.0.0.1.
//!
//! - `POST /token` (`grant_type=client_credentials`, optional `scope`; the client authenticates
//!   with HTTP basic auth — `client_secret_basic` — or with `client_id`/`client_secret` in the
//!   form — `client_secret_post`) answers `{"access_token", "token_type", "expires_in", "scope"}`.
//!   The token's claims: `iss`, `sub` (the client id), `aud`, `scope`, `iat`, `exp`, `jti`; its
//!   header names the key (`kid`), as Kafka's JWT validator requires.
//! - `GET /jwks` answers the public key as a JWK set.
//!
//! It runs on a thread and runtime of its own, so callers may block (e.g. while a broker that
//! fetches the JWKS starts). For tests: counters of tokens issued, [`IdentityProvider::set_available`]
//! to take it down (503) and back up, a settable token lifetime, helpers that mint
//! deliberately bad tokens (expired, foreign key, wrong audience), and
//! [`IdentityProvider::set_issue`] to make the token endpoint itself issue such tokens.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    rand::SystemRandom,
    rsa::KeySize,
    signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair},
};
use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde::Deserialize;
use serde_json::json;

/// How to start an [`IdentityProvider`].
#[derive(Clone)]
pub struct IdpOptions {
    /// `aud` of the tokens issued.
    pub audience: String,
    /// Lifetime (`exp - iat`, and `expires_in`) of the tokens issued.
    pub token_lifetime: Duration,
    /// Registered clients: client id (also the token's `sub`) and secret.
    pub clients: Vec<(String, String)>,
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            audience: "local-stack-kafka".into(),
            token_lifetime: Duration::from_secs(300),
            clients: Vec::new(),
        }
    }
}

impl std::fmt::Debug for IdpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.clients.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("IdpOptions")
            .field("audience", &self.audience)
            .field("token_lifetime", &self.token_lifetime)
            .field("clients", &ids)
            .finish()
    }
}

/// What kind of token the token endpoint issues ([`IdentityProvider::set_issue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenIssue {
    /// Valid tokens (the default).
    #[default]
    Valid,
    /// Tokens whose `exp` passed a minute ago, though `expires_in` announces the usual
    /// lifetime (an identity provider whose clock is wrong).
    Expired,
    /// Tokens signed by a key the JWKS does not publish (same `kid`).
    ForeignKey,
    /// Tokens for another audience.
    WrongAudience,
}

const KID: &str = "local-idp-1";
/// The scope of the deliberately bad tokens (so that only their one defect is wrong).
const SCOPE: &str = "kafka";

struct Shared {
    key: RsaKeyPair,
    /// Another key, for tokens signed by a key the JWKS does not have.
    foreign_key: RsaKeyPair,
    issuer: String,
    audience: String,
    clients: Mutex<HashMap<String, String>>,
    lifetime: Mutex<Duration>,
    available: AtomicBool,
    issue: Mutex<TokenIssue>,
    issued: Mutex<HashMap<String, u64>>,
    refused: Mutex<u64>,
}

/// A running identity provider; dropping it stops the server.
pub struct IdentityProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl IdentityProvider {
    /// Generates an RSA key and starts serving on an ephemeral port of 127.0.0.1.
    ///
    /// # Errors
    /// When the key cannot be generated or the port cannot be bound.
    pub fn start(options: IdpOptions) -> std::io::Result<Self> {
        let generate = || {
            RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| std::io::Error::other("cannot generate an RSA key"))
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            key: generate()?,
            foreign_key: generate()?,
            issuer: format!("http://{addr}"),
            audience: options.audience,
            clients: Mutex::new(options.clients.into_iter().collect()),
            lifetime: Mutex::new(options.token_lifetime),
            available: AtomicBool::new(true),
            issue: Mutex::default(),
            issued: Mutex::default(),
            refused: Mutex::default(),
        });
        let app = Router::new()
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("identity-provider".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Not a graceful shutdown: clients keep idle connections open, and
                    // dropping the runtime closes them.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The token endpoint (`sasl.oauthbearer.token.endpoint.url`).
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The JWKS endpoint (`sasl.oauthbearer.jwks.endpoint.url`).
    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// The `iss` of the tokens.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The `aud` of the tokens.
    pub fn audience(&self) -> &str {
        &self.shared.audience
    }

    /// Registers (or replaces) a client.
    pub fn add_client(&self, id: impl Into<String>, secret: impl Into<String>) {
        lock(&self.shared.clients).insert(id.into(), secret.into());
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.shared.lifetime) = lifetime;
    }

    /// Takes the provider down (`false`: every request gets 503) or brings it back up.
    pub fn set_available(&self, available: bool) {
        self.shared.available.store(available, Ordering::SeqCst);
    }

    /// Makes the token endpoint issue `issue` tokens from now on (they count as issued).
    pub fn set_issue(&self, issue: TokenIssue) {
        *lock(&self.shared.issue) = issue;
    }

    /// Tokens issued to `client_id` so far.
    pub fn tokens_issued(&self, client_id: &str) -> u64 {
        lock(&self.shared.issued)
            .get(client_id)
            .copied()
            .unwrap_or(0)
    }

    /// Tokens issued to all clients so far.
    pub fn total_tokens_issued(&self) -> u64 {
        lock(&self.shared.issued).values().sum()
    }

    /// Token requests refused (unknown client, wrong secret, provider down, bad grant).
    pub fn requests_refused(&self) -> u64 {
        *lock(&self.shared.refused)
    }

    /// A valid token for `sub` (not counted as issued), e.g. to hand to a client directly.
    pub fn mint(&self, sub: &str, scope: &str) -> String {
        let lifetime = *lock(&self.shared.lifetime);
        let now = now_secs();
        self.shared.sign(
            &self.shared.key,
            sub,
            &self.shared.audience,
            scope,
            now,
            now + lifetime.as_secs().max(1),
        )
    }

    /// A token for `sub` that expired a minute ago (otherwise valid; scope `kafka`).
    pub fn mint_expired(&self, sub: &str) -> String {
        let now = now_secs();
        let s = &self.shared;
        s.sign(&s.key, sub, &s.audience, SCOPE, now - 600, now - 60)
    }

    /// A token for `sub` signed by a key the JWKS does not publish (same `kid`).
    pub fn mint_foreign_key(&self, sub: &str) -> String {
        let now = now_secs();
        let s = &self.shared;
        s.sign(&s.foreign_key, sub, &s.audience, SCOPE, now, now + 300)
    }

    /// A token for `sub` for another audience.
    pub fn mint_wrong_audience(&self, sub: &str) -> String {
        let now = now_secs();
        let s = &self.shared;
        s.sign(&s.key, sub, "some-other-service", SCOPE, now, now + 300)
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn sign(
        &self,
        key: &RsaKeyPair,
        sub: &str,
        aud: &str,
        scope: &str,
        iat: u64,
        exp: u64,
    ) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID});
        let claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "scope": scope,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0; key.public_modulus_len()];
        // Signing with a freshly generated key into a buffer of its modulus size cannot fail.
        let signed = key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        );
        debug_assert!(signed.is_ok());
        format!("{signing_input}.{}", B64.encode(signature))
    }

    fn refuse(&self, status: StatusCode, error: &str) -> Response {
        *lock(&self.refused) += 1;
        (status, Json(json!({ "error": error }))).into_response()
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    if !s.available.load(Ordering::SeqCst) {
        return s.refuse(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    }
    if form.grant_type.as_deref() != Some("client_credentials") {
        return s.refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let credentials = basic_credentials(&headers)
        .or_else(|| form.client_id.clone().zip(form.client_secret.clone()));
    let Some((id, secret)) = credentials else {
        return s.refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let known = lock(&s.clients)
        .get(&id)
        .is_some_and(|want| *want == secret);
    if !known {
        return s.refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let lifetime = lock(&s.lifetime).as_secs().max(1);
    let scope = form.scope.unwrap_or_default();
    let now = now_secs();
    let issue = *lock(&s.issue);
    let token = match issue {
        TokenIssue::Valid => s.sign(&s.key, &id, &s.audience, &scope, now, now + lifetime),
        TokenIssue::Expired => s.sign(&s.key, &id, &s.audience, &scope, now - 600, now - 60),
        TokenIssue::ForeignKey => s.sign(
            &s.foreign_key,
            &id,
            &s.audience,
            &scope,
            now,
            now + lifetime,
        ),
        TokenIssue::WrongAudience => s.sign(
            &s.key,
            &id,
            "some-other-service",
            &scope,
            now,
            now + lifetime,
        ),
    };
    *lock(&s.issued).entry(id).or_default() += 1;
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        })),
    )
        .into_response()
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    if !s.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let public = s.key.public_key();
    let n = B64.encode(public.modulus().big_endian_without_leading_zero());
    let e = B64.encode(public.exponent().big_endian_without_leading_zero());
    Json(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID, "n": n, "e": e,
    }]}))
    .into_response()
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749, 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((percent_decode(id)?, percent_decode(secret)?))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
