//! OAuth2 client-credentials tokens (RFC 6749 §4.4), cached and refreshed before they expire.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    time::{Duration, Instant, SystemTime},
};

use base64::Engine as _;
use oauth2::{
    AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl,
    basic::BasicClient,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::{Error, Result, redact::redact_url};

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
/// new one once 80% of its lifetime has passed. Share it through an `Arc`: concurrent callers
/// wait for one fetch instead of each sending their own.
pub struct TokenProvider {
    credentials: OAuthClientCredentials,
    /// The endpoint as errors and logs show it (no userinfo, no query).
    shown_endpoint: String,
    http: HttpClient,
    cache: Mutex<Cache>,
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
        check_token_endpoint(
            "sasl.oauthbearer.token.endpoint.url",
            &credentials.token_endpoint,
        )?;
        let client = reqwest::Client::builder()
            // The token endpoint must answer itself: following redirects would send the
            // credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config {
                key: "sasl.oauthbearer.token.endpoint.url".into(),
                reason: format!("cannot build the HTTP client: {e}"),
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
    /// is returned (and the endpoint asked again on a later call).
    ///
    /// # Errors
    /// [`Error::Auth`] naming the endpoint and what failed.
    pub async fn token(&self) -> Result<AccessToken> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(token) = &cache.token {
            let recently_failed = cache
                .last_failure
                .is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE);
            if !token.is_expired() && (now < token.refresh_at || recently_failed) {
                return Ok(token.clone());
            }
        }
        cache.fetches += 1;
        match self.fetch().await {
            Ok(token) => {
                cache.token = Some(token.clone());
                cache.last_failure = None;
                Ok(token)
            }
            Err(e) => {
                cache.last_failure = Some(Instant::now());
                if let Some(hooks) = &self.hooks {
                    hooks.auth_failed(&crate::context::AuthFailure::TokenEndpoint { error: &e });
                }
                match &cache.token {
                    Some(old) if !old.is_expired() => {
                        tracing::warn!(
                            endpoint = %self.shown_endpoint,
                            error = %e,
                            "OAuth token refresh failed; using the current token until it expires"
                        );
                        Ok(old.clone())
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// Forgets the cached token if it is `token` (e.g. after a server rejected it), so the next
    /// call to [`token`](Self::token) fetches a new one.
    pub async fn invalidate(&self, token: &AccessToken) {
        let mut cache = self.cache.lock().await;
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
        self.cache.lock().await.token = None;
    }

    /// How many times the token endpoint has been asked (for metrics and tests).
    pub async fn fetch_count(&self) -> u64 {
        self.cache.lock().await.fetches
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
        let lifetime = response
            .expires_in()
            .or_else(|| {
                let exp = claims.as_ref()?.get("exp")?.as_u64()?;
                (SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
                    .duration_since(wall)
                    .ok()
            })
            .unwrap_or(DEFAULT_LIFETIME);
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
            expires_at: wall + lifetime,
            refresh_at: fetched_at + refresh_after(lifetime),
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

/// Describes a failed token request, and whether asking again later may succeed. Never quotes
/// the answer's body (a non-OAuth error page may echo the request, a malformed answer may carry
/// a token) or the credentials: only the HTTP status and, for an RFC 6749 error answer, its
/// `error` code and a short `error_description` when that is plain text without the secret.
fn describe_token_error(
    e: RequestTokenError<HttpError, oauth2::basic::BasicErrorResponse>,
    client_secret: &str,
) -> (String, bool) {
    match e {
        RequestTokenError::ServerResponse(answer) => {
            let answer = OAuthErrorAnswer::sanitized(
                answer.error().as_ref(),
                answer.error_description().map(String::as_str),
            );
            let transient = answer.as_ref().is_some_and(OAuthErrorAnswer::is_transient);
            let text = format!(
                "the endpoint refused the request{}",
                describe_answer(answer.as_ref(), client_secret)
            );
            (text, transient)
        }
        RequestTokenError::Request(HttpError::Transport(t)) => {
            let transient = t.is_connect() || t.is_timeout() || t.is_request() || t.is_body();
            let t = t.without_url();
            let mut text = format!("unreachable: {t}");
            let mut source = std::error::Error::source(&t);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            (text, transient)
        }
        RequestTokenError::Request(HttpError::Status { status, answer }) => {
            let transient = matches!(status, 408 | 429 | 500..)
                || answer.as_ref().is_some_and(OAuthErrorAnswer::is_transient);
            let what = if answer.is_some() {
                "the endpoint refused the request"
            } else {
                "unexpected answer"
            };
            let text = format!(
                "{what} (HTTP {status}){}",
                describe_answer(answer.as_ref(), client_secret)
            );
            (text, transient)
        }
        RequestTokenError::Parse(e, _body) => {
            let inner = e.inner();
            let text = format!(
                "malformed token answer: {:?} error at `{}` (line {}, column {})",
                inner.classify(),
                e.path(),
                inner.line(),
                inner.column()
            );
            (text, false)
        }
        RequestTokenError::Other(reason) => (
            format!("unexpected answer: {}", printable(&reason, 120)),
            false,
        ),
    }
}

/// The part of a message describing an error answer.
fn describe_answer(answer: Option<&OAuthErrorAnswer>, client_secret: &str) -> String {
    let Some(answer) = answer else {
        return " (body not shown: not an OAuth error answer)".into();
    };
    let mut text = format!(": OAuth error `{}`", answer.code);
    if let Some(description) = &answer.description
        && (client_secret.is_empty() || !description.contains(client_secret))
    {
        text.push_str(" (");
        text.push_str(description);
        text.push(')');
    }
    text
}

/// Longest `error` code kept from an answer.
const MAX_ERROR_CODE: usize = 64;
/// Longest `error_description` kept from an answer.
const MAX_ERROR_DESCRIPTION: usize = 120;

/// The parts of an RFC 6749 §5.2 error answer the library shows.
#[derive(Debug)]
pub(crate) struct OAuthErrorAnswer {
    code: String,
    description: Option<String>,
}

impl OAuthErrorAnswer {
    /// The answer in `body` when it is a JSON object with a string `error` made of the
    /// characters RFC 6749 allows for it.
    fn parse(body: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let code = value.get("error")?.as_str()?;
        let description = value
            .get("error_description")
            .and_then(serde_json::Value::as_str);
        Self::sanitized(code, description)
    }

    /// The answer when `code` looks like an RFC 6749 error code (short, printable, no space);
    /// the description cut short and kept to printable ASCII.
    fn sanitized(code: &str, description: Option<&str>) -> Option<Self> {
        let code_ok = !code.is_empty()
            && code.len() <= MAX_ERROR_CODE
            && code
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !code_ok {
            return None;
        }
        let description = description
            .map(|d| printable(d, MAX_ERROR_DESCRIPTION))
            .filter(|d| !d.trim().is_empty());
        Some(Self {
            code: code.to_owned(),
            description,
        })
    }

    fn is_transient(&self) -> bool {
        matches!(
            self.code.as_str(),
            "temporarily_unavailable" | "server_error"
        )
    }
}

/// `text` with only printable ASCII kept, cut to `max` characters.
fn printable(text: &str, max: usize) -> String {
    let mut kept = text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ');
    let mut out: String = kept.by_ref().take(max).collect();
    if kept.next().is_some() {
        out.push('…');
    }
    out
}

/// Failures of the HTTP exchange itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Transport(reqwest::Error),
    /// A non-success status, with the answer when it is an OAuth error object. The body itself
    /// is never kept.
    #[error("HTTP {status} from the endpoint")]
    Status {
        status: u16,
        answer: Option<OAuthErrorAnswer>,
    },
}

/// oauth2's async HTTP client over the workspace's reqwest 0.13.
struct HttpClient(reqwest::Client);

type HttpFuture<'c> =
    Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = HttpFuture<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(HttpError::Transport)?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(HttpError::Transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(HttpError::Transport)?;
            if !status.is_success() {
                return Err(HttpError::Status {
                    status: status.as_u16(),
                    answer: OAuthErrorAnswer::parse(&body),
                });
            }
            let mut out = oauth2::http::Response::new(body.to_vec());
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

/// Checks a token endpoint URL read from `key`: an `https://` URL, or `http://` on a loopback
/// host (`localhost`, `127.0.0.0/8`, `::1`), as local test identity providers use. A client
/// secret never crosses a network in clear text.
///
/// # Errors
/// [`Error::Config`] naming `key`.
pub(crate) fn check_token_endpoint(key: &str, endpoint: &str) -> Result<()> {
    let shown = redact_url(endpoint);
    let config_err = |reason: String| Error::Config {
        key: key.into(),
        reason,
    };
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| config_err(format!("'{shown}' is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(config_err(format!(
            "'{shown}' is http://: the client secret would cross the network in clear text; \
             use https:// (http:// is accepted for localhost, 127.0.0.0/8 and ::1 only)"
        ))),
        _ => Err(config_err(format!("'{shown}' is not an https:// URL"))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
