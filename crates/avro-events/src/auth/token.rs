//! OAuth2 client-credentials tokens (RFC 6749 §4.4), cached and refreshed before they expire.

use std::{
    fmt,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use base64::Engine as _;
use oauth2::{
    AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl, basic::BasicClient,
};
use secrecy::{ExposeSecret, SecretString};

use super::exchange::{HttpClient, describe_token_error};
use crate::{
    Error, Result,
    redact::{is_loopback, redact_url},
};

/// Share of a token's lifetime after which it is refreshed.
const REFRESH_FRACTION: f64 = 0.8;
/// A token is never refreshed sooner than this after it was fetched (guards against an
/// `expires_in` of 0 or 1 turning into a fetch loop), unless it has expired.
const MIN_REFRESH_AFTER: Duration = Duration::from_millis(500);
/// A token is refreshed at least this long before it expires when it lives long enough.
const REFRESH_BUFFER: Duration = Duration::from_secs(5 * 60);
/// The buffer is not kept when the token could then be used for less than this.
const MIN_REFRESH_PERIOD: Duration = Duration::from_secs(60);
/// Lifetime assumed when the endpoint sends no `expires_in` and the token is not a JWT with `exp`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// After a failed refresh, a still-valid cached token is served for this long before the
/// endpoint is asked again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The longest lifetime a token is kept for: one the endpoint says lives longer (an
/// `expires_in` or `exp` near `u64::MAX`, which no clock can add) is refreshed as if it lived
/// this long.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP basic auth with the client id and secret (`client_secret_basic`, the default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    RequestBody,
}

/// Client credentials for an OAuth2 token endpoint, as in librdkafka's
/// `sasl.oauthbearer.token.endpoint.url`, `sasl.oauthbearer.client.id`,
/// `sasl.oauthbearer.client.secret` and `sasl.oauthbearer.scope` (or the Schema Registry's
/// `bearer.auth.issuer.endpoint.url`, `bearer.auth.client.id`, …).
///
/// `Debug` never shows the secret.
#[derive(Clone)]
pub struct OAuthClientCredentials {
    token_endpoint: String,
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    auth_method: ClientAuthMethod,
}

impl OAuthClientCredentials {
    /// Credentials for `token_endpoint`, sent with HTTP basic auth and no scope.
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        Self {
            token_endpoint: token_endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            auth_method: ClientAuthMethod::Basic,
        }
    }

    /// Requests `scope` (space-separated scopes, as in `sasl.oauthbearer.scope`).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into()).filter(|s: &String| !s.trim().is_empty());
        self
    }

    /// Chooses how the client id and secret are sent.
    pub fn with_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The requested scope, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl fmt::Debug for OAuthClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientCredentials")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scope", &self.scope)
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// An access token and when it expires. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: SystemTime,
    refresh_at: Instant,
    principal: Option<String>,
}

impl AccessToken {
    /// The token itself, to put in an `Authorization: Bearer` header or a SASL message.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// When the token stops being valid (wall clock, as librdkafka wants it).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// When the provider will fetch a new token (monotonic clock).
    pub fn refresh_at(&self) -> Instant {
        self.refresh_at
    }

    /// The `sub` claim when the token is a JWT.
    pub fn subject(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    fn is_expired(&self) -> bool {
        SystemTime::now() >= self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("principal", &self.principal)
            .finish()
    }
}

struct Cache {
    token: Option<AccessToken>,
    last_failure: Option<Instant>,
    fetches: u64,
}

/// Fetches access tokens with the client-credentials grant, caches the current one and fetches a
/// new one once 80% of its lifetime has passed (a token said to live longer than a day is
/// refreshed as if it lived a day). Share it through an `Arc`: one fetch runs at a time. While
/// it runs, callers get the cached token if it has not expired (an identity provider that is
/// slow to answer delays nobody while the token is valid); without a valid token they wait for
/// the fetch.
pub struct TokenProvider {
    credentials: OAuthClientCredentials,
    /// The endpoint as errors and logs show it (no userinfo, no query).
    shown_endpoint: String,
    http: HttpClient,
    /// Never held across an `.await`.
    cache: Mutex<Cache>,
    /// Held by the one caller fetching a token.
    fetching: tokio::sync::Mutex<()>,
    /// Told of every failed fetch.
    hooks: Option<std::sync::Arc<dyn crate::context::Hooks>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider for `credentials`. No request is sent until a token is needed.
    ///
    /// # Errors
    /// [`Error::Config`] when the endpoint is not an `https://` URL (`http://` is accepted for
    /// loopback hosts only: `localhost`, `127.0.0.0/8`, `::1`, as local test identity providers
    /// use; a client secret never crosses a network in clear text) or the HTTP client cannot be
    /// built.
    pub fn new(credentials: OAuthClientCredentials) -> Result<Self> {
        let endpoint = check_token_endpoint(
            "sasl.oauthbearer.token.endpoint.url",
            &credentials.token_endpoint,
        )?;
        let client = crate::http::build(
            reqwest::Client::builder()
                // The token endpoint must answer itself: following redirects would send the
                // credentials elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30)),
            [&endpoint],
        )
        .map_err(|reason| Error::Config {
            key: "sasl.oauthbearer.token.endpoint.url".into(),
            reason,
        })?;
        Ok(Self {
            shown_endpoint: redact_url(&credentials.token_endpoint),
            credentials,
            http: HttpClient(client),
            cache: Mutex::new(Cache {
                token: None,
                last_failure: None,
                fetches: 0,
            }),
            fetching: tokio::sync::Mutex::new(()),
            hooks: None,
        })
    }

    /// Tells `hooks` of every failed fetch ([`Hooks::auth_failed`](crate::context::Hooks::auth_failed)).
    pub(crate) fn with_hooks(mut self, hooks: std::sync::Arc<dyn crate::context::Hooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// The credentials this provider uses.
    pub fn credentials(&self) -> &OAuthClientCredentials {
        &self.credentials
    }

    /// The token endpoint as errors and logs show it: without userinfo or query.
    pub fn shown_endpoint(&self) -> &str {
        &self.shown_endpoint
    }

    /// The current token, fetching a new one when none is cached or the cached one is due for
    /// refresh. When a refresh fails but the cached token has not expired yet, the cached token
    /// is returned (and the endpoint asked again on a later call). While another caller's fetch
    /// runs, a cached token that has not expired is returned at once.
    ///
    /// # Errors
    /// [`Error::Auth`] naming the endpoint and what failed.
    pub async fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.cached(false) {
            return Ok(token);
        }
        let _fetching = match self.fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another caller is fetching: the current token serves until it expires.
                if let Some(token) = self.cached(true) {
                    return Ok(token);
                }
                self.fetching.lock().await
            }
        };
        // The fetch just finished (ours waited for it, or ended between the look and the lock).
        if let Some(token) = self.cached(false) {
            return Ok(token);
        }
        self.cache().fetches += 1;
        let fetched = self.fetch().await;
        let mut cache = self.cache();
        match fetched {
            Ok(token) => {
                cache.token = Some(token.clone());
                cache.last_failure = None;
                Ok(token)
            }
            Err(e) => {
                cache.last_failure = Some(Instant::now());
                let old = cache.token.clone().filter(|old| !old.is_expired());
                drop(cache);
                if let Some(hooks) = &self.hooks {
                    hooks.auth_failed(&crate::context::AuthFailure::TokenEndpoint { error: &e });
                }
                match old {
                    Some(old) => {
                        tracing::warn!(
                            endpoint = %self.shown_endpoint,
                            error = %e,
                            "OAuth token refresh failed; using the current token until it expires"
                        );
                        Ok(old)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// The cached token if it can be served: it has not expired and, unless `while_fetching`,
    /// is not due for refresh (or its refresh failed a moment ago).
    fn cached(&self, while_fetching: bool) -> Option<AccessToken> {
        let cache = self.cache();
        let token = cache.token.as_ref().filter(|t| !t.is_expired())?;
        let now = Instant::now();
        let recently_failed = cache
            .last_failure
            .is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE);
        (while_fetching || now < token.refresh_at || recently_failed).then(|| token.clone())
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the cached token if it is `token` (e.g. after a server rejected it), so the next
    /// call to [`token`](Self::token) fetches a new one.
    pub async fn invalidate(&self, token: &AccessToken) {
        let mut cache = self.cache();
        if cache
            .token
            .as_ref()
            .is_some_and(|t| t.secret.expose_secret() == token.secret.expose_secret())
        {
            cache.token = None;
        }
    }

    /// Forgets the cached token, whichever it is (a broker refused the token it was given), so
    /// the next call to [`token`](Self::token) fetches a new one.
    pub(crate) async fn forget(&self) {
        self.cache().token = None;
    }

    /// How many times the token endpoint has been asked, answered or not (a metric: a count
    /// that climbs faster than tokens expire means tokens are refused or not cached).
    pub async fn fetch_count(&self) -> u64 {
        self.cache().fetches
    }

    async fn fetch(&self) -> Result<AccessToken> {
        let creds = &self.credentials;
        let auth_err = |reason: String| Error::Auth {
            endpoint: self.shown_endpoint.clone(),
            reason,
            transient: false,
        };
        let client = BasicClient::new(ClientId::new(creds.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                creds.client_secret.expose_secret().to_owned(),
            ))
            .set_token_uri(
                TokenUrl::new(creds.token_endpoint.clone())
                    .map_err(|_| auth_err("not a valid URL".into()))?,
            )
            .set_auth_type(match creds.auth_method {
                ClientAuthMethod::Basic => AuthType::BasicAuth,
                ClientAuthMethod::RequestBody => AuthType::RequestBody,
            });
        let mut request = client.exchange_client_credentials();
        if let Some(scope) = &creds.scope {
            for s in scope.split_whitespace() {
                request = request.add_scope(Scope::new(s.to_owned()));
            }
        }
        let fetched_at = Instant::now();
        let wall = SystemTime::now();
        let response = request.request_async(&self.http).await.map_err(|e| {
            let (reason, transient) = describe_token_error(e, creds.client_secret.expose_secret());
            Error::Auth {
                endpoint: self.shown_endpoint.clone(),
                reason,
                transient,
            }
        })?;
        let secret = response.access_token().secret();
        if secret.is_empty() {
            return Err(auth_err("the answer has an empty access_token".into()));
        }
        let claims = jwt_claims(secret);
        let stated = response
            .expires_in()
            .or_else(|| {
                let exp = claims.as_ref()?.get("exp")?.as_u64()?;
                match SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp)) {
                    Some(at) => at.duration_since(wall).ok(),
                    // Past what the clock can represent: longer than any lifetime kept.
                    None => Some(Duration::MAX),
                }
            })
            .unwrap_or(DEFAULT_LIFETIME);
        let lifetime = stated.min(MAX_LIFETIME);
        if stated > MAX_LIFETIME {
            tracing::warn!(
                endpoint = %self.shown_endpoint,
                stated_lifetime_s = stated.as_secs(),
                kept_lifetime_s = lifetime.as_secs(),
                "the OAuth token is said to live longer than a day; it is refreshed as if it lived a day"
            );
        }
        let (Some(expires_at), Some(refresh_at)) = (
            wall.checked_add(lifetime),
            fetched_at.checked_add(refresh_after(lifetime)),
        ) else {
            return Err(auth_err(format!(
                "the clock cannot represent a lifetime of {} s from now",
                lifetime.as_secs()
            )));
        };
        let principal = claims
            .as_ref()
            .and_then(|c| c.get("sub")?.as_str().map(str::to_owned));
        tracing::debug!(
            endpoint = %self.shown_endpoint,
            lifetime_ms = lifetime.as_millis() as u64,
            "fetched an OAuth access token"
        );
        Ok(AccessToken {
            secret: SecretString::from(secret.clone()),
            expires_at,
            refresh_at,
            principal,
        })
    }
}

/// When to refresh a token that lives `lifetime`: at 80% of it, earlier when that would leave
/// less than 5 minutes before expiry (as Kafka's `sasl.login.refresh.buffer.seconds`, unless the
/// token then could not be used for a minute), and never sooner than 500 ms after it was fetched
/// unless it expires sooner.
pub(crate) fn refresh_after(lifetime: Duration) -> Duration {
    let mut after = lifetime.mul_f64(REFRESH_FRACTION);
    let buffered = lifetime.saturating_sub(REFRESH_BUFFER);
    if buffered >= MIN_REFRESH_PERIOD {
        after = after.min(buffered);
    }
    after.max(MIN_REFRESH_AFTER.min(lifetime))
}

/// The claims of a JWT (not verified: only read for `sub` and `exp`).
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Checks a token endpoint URL read from `key`: an `https://` URL, or `http://` on a loopback
/// host (`localhost`, `127.0.0.0/8`, `::1`), as local test identity providers use. A client
/// secret never crosses a network in clear text. Returns the parsed URL.
///
/// # Errors
/// [`Error::Config`] naming `key`.
pub(crate) fn check_token_endpoint(key: &str, endpoint: &str) -> Result<reqwest::Url> {
    let shown = redact_url(endpoint);
    let config_err = |reason: String| Error::Config {
        key: key.into(),
        reason,
    };
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| config_err(format!("'{shown}' is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(config_err(format!(
            "'{shown}' is http://: the client secret would cross the network in clear text; \
             use https:// (http:// is accepted for localhost, 127.0.0.0/8 and ::1 only)"
        ))),
        _ => Err(config_err(format!("'{shown}' is not an https:// URL"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_at_eighty_percent_with_floor_and_margin() {
        assert_eq!(
            refresh_after(Duration::from_secs(2)),
            Duration::from_millis(1600)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        // Ten minutes: refreshed 5 minutes before expiry rather than 2.
        assert_eq!(
            refresh_after(Duration::from_secs(600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(360)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(330)),
            Duration::from_secs(264)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            refresh_after(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(1)),
            Duration::from_millis(800)
        );
    }

    #[test]
    fn reads_sub_and_exp_of_a_jwt() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"sa-123","exp":42}"#);
        let claims = jwt_claims(&format!("eyJhbGciOiJub25lIn0.{payload}.")).unwrap();
        assert_eq!(claims["sub"], "sa-123");
        assert_eq!(claims["exp"], 42);
        assert!(jwt_claims("opaque-token").is_none());
        assert!(jwt_claims("a.b.c.d").is_none());
    }

    /// A refresh that hangs on the identity provider delays no caller while the cached token is
    /// valid: another caller gets the cached token while the refresh is still waiting (before,
    /// the refresh held the lock through the HTTP call, so every caller waited for it).
    #[tokio::test]
    async fn a_valid_token_is_served_while_a_refresh_hangs() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (arrived, refresh_arrived) = tokio::sync::oneshot::channel();
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let endpoint = tokio::spawn({
            let release = release.clone();
            async move {
                // Accepts the refresh's connection and answers nothing until released.
                let (socket, _) = listener.accept().await.unwrap();
                arrived.send(()).unwrap();
                release.notified().await;
                drop(socket);
            }
        });
        let provider = std::sync::Arc::new(
            TokenProvider::new(OAuthClientCredentials::new(
                format!("http://{addr}/oauth2/token"),
                "client",
                "s3cret",
            ))
            .unwrap(),
        );
        // A token valid for an hour and due for refresh now.
        provider.cache().token = Some(AccessToken {
            secret: "cached-t0ken".into(),
            expires_at: SystemTime::now() + Duration::from_secs(3600),
            refresh_at: Instant::now(),
            principal: None,
        });
        let refreshing = tokio::spawn({
            let provider = provider.clone();
            async move { provider.token().await }
        });
        refresh_arrived.await.unwrap();
        let served = provider.token().await.unwrap();
        assert_eq!(served.secret(), "cached-t0ken");
        assert!(
            !refreshing.is_finished(),
            "the cached token was served only after the refresh ended"
        );
        release.notify_one();
        // The refresh failed (the endpoint hung up): the still-valid token is what it returns.
        let after = refreshing.await.unwrap().unwrap();
        assert_eq!(after.secret(), "cached-t0ken");
        assert_eq!(provider.fetch_count().await, 1);
        endpoint.await.unwrap();
    }

    #[test]
    fn debug_redacts() {
        let creds = OAuthClientCredentials::new("https://idp/token", "client", "sup3r-s3cret")
            .with_scope("kafka");
        let token = AccessToken {
            secret: "t0ken-value".into(),
            expires_at: SystemTime::now(),
            refresh_at: Instant::now(),
            principal: None,
        };
        let shown = format!("{creds:?} {token:?}");
        assert!(shown.contains("client") && shown.contains("kafka"));
        assert!(
            !shown.contains("sup3r") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
