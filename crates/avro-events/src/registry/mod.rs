//! The Schema Registry client: one client for the codec and the tools alike.
//!
//! [`RegistryClient`] speaks Confluent's REST API over `reqwest`: schemas by id, register and
//! look up, the latest version (cached for [`RegistryConfig::latest_cache_ttl`]), subjects and
//! versions, compatibility levels (get and set), compatibility tests, and soft and permanent
//! deletes; schemas with references ([`RegistryClient::register_with_references`],
//! [`RegistryClient::lookup_with_references`], [`RegistryClient::referenced_by`], and
//! [`RegistryClient::referenced_schemas`], which fetches a schema's references recursively,
//! cached and bounded by [`MAX_REFERENCED_SCHEMAS`]) and schemas by GUID
//! ([`RegistryClient::schema_by_guid`]). Answers become typed [`Error`](crate::Error)s by HTTP status and Confluent's `error_code`:
//!
//! | status | `error_code` | error |
//! |---|---|---|
//! | 404 | 40401 subject not found | [`Error::SubjectNotFound`](crate::Error::SubjectNotFound) |
//! | 404 | 40402 version not found | [`Error::VersionNotFound`](crate::Error::VersionNotFound) |
//! | 404 | 40403 schema not found | [`Error::UnknownSchemaId`](crate::Error::UnknownSchemaId) (by id), [`Error::UnknownSchemaGuid`](crate::Error::UnknownSchemaGuid) (by GUID), [`Error::SchemaNotRegistered`](crate::Error::SchemaNotRegistered) (lookup) |
//! | 409 | 409, 40901 | [`Error::IncompatibleSchema`](crate::Error::IncompatibleSchema) |
//! | 422 | 422xx invalid schema, version or level | [`Error::RegistryRejected`](crate::Error::RegistryRejected) |
//! | 401, 403 | | [`Error::RegistryUnauthorized`](crate::Error::RegistryUnauthorized) |
//! | 429, 5xx | | retried with jittered exponential backoff, then [`Error::RegistryUnreachable`](crate::Error::RegistryUnreachable) |
//!
//! Credentials: none, HTTP basic (an API key, or the URL's userinfo), a static bearer token,
//! OAuth tokens from a [`TokenProvider`], or any [`BearerTokenSource`].

mod client;
mod http;
mod references;

use std::{fmt, sync::Arc, time::Duration};

use secrecy::SecretString;

#[cfg(feature = "kafka")]
use crate::auth::TokenProvider;
use crate::{Result, redact::redact_url};

pub use client::{
    CompatibilityAnswer, RegisteredSchema, RegistryClient, SchemaType, SubjectVersion, TestAgainst,
};
pub use references::{
    MAX_REFERENCED_SCHEMAS, ReferencedSchema, Registered, SchemaByGuid, SchemaReference,
};

/// Where bearer tokens for the Schema Registry come from: plug in a token source shared with
/// other clients (e.g. the one that also feeds Kafka's SASL/OAUTHBEARER login) through
/// [`RegistryAuth::Bearer`]. [`TokenProvider`] is one.
#[async_trait::async_trait]
pub trait BearerTokenSource: Send + Sync + fmt::Debug {
    /// The token to send now (`Authorization: Bearer <token>`).
    ///
    /// # Errors
    /// [`crate::Error::Auth`] when no token can be had; it is returned to the caller as is.
    async fn token(&self) -> Result<SecretString>;

    /// The registry refused `token` (HTTP 401): drop it, so the next call gets a new one.
    async fn rejected(&self, token: &SecretString) {
        let _ = token;
    }
}

#[cfg(feature = "kafka")]
#[async_trait::async_trait]
impl BearerTokenSource for TokenProvider {
    async fn token(&self) -> Result<SecretString> {
        TokenProvider::token(self)
            .await
            .map(|t| SecretString::from(t.secret()))
    }

    async fn rejected(&self, token: &SecretString) {
        use secrecy::ExposeSecret as _;
        // Only the cached token can be dropped; `token()` returns it unless it is due anyway.
        if let Ok(current) = TokenProvider::token(self).await
            && current.secret() == token.expose_secret()
        {
            self.invalidate(&current).await;
        }
    }
}

/// How the library authenticates to the Schema Registry.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum RegistryAuth {
    /// No credentials (the local registry).
    #[default]
    None,
    /// HTTP basic auth, e.g. a Confluent Cloud Schema Registry API key and secret
    /// (`basic.auth.user.info=KEY:SECRET`).
    Basic {
        /// The API key or user name.
        username: String,
        /// The API secret or password.
        password: SecretString,
    },
    /// A fixed bearer token (`bearer.auth.credentials.source=STATIC_TOKEN`).
    StaticToken(SecretString),
    /// OAuth bearer tokens from a token endpoint, refreshed before they expire
    /// (`bearer.auth.credentials.source=OAUTHBEARER`), sent with the `target-sr-cluster` and
    /// `Confluent-Identity-Pool-Id` headers.
    #[cfg(feature = "kafka")]
    OAuth {
        /// Where the tokens come from.
        provider: Arc<TokenProvider>,
        /// The Schema Registry logical cluster (`bearer.auth.logical.cluster`, `lsrc-…`).
        logical_cluster: String,
        /// The identity pool (`bearer.auth.identity.pool.id`, `pool-…`), unless auto-mapped.
        identity_pool_id: Option<String>,
    },
    /// Bearer tokens from any [`BearerTokenSource`] (e.g. one token source shared by every
    /// client of an identity), with Confluent Cloud's headers when given.
    Bearer {
        /// Where the tokens come from.
        source: Arc<dyn BearerTokenSource>,
        /// Sent as `target-sr-cluster` when given.
        logical_cluster: Option<String>,
        /// Sent as `Confluent-Identity-Pool-Id` when given.
        identity_pool_id: Option<String>,
    },
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .finish(),
            Self::StaticToken(_) => f.write_str("StaticToken([REDACTED])"),
            #[cfg(feature = "kafka")]
            Self::OAuth {
                provider,
                logical_cluster,
                identity_pool_id,
            } => f
                .debug_struct("OAuth")
                .field("provider", provider)
                .field("logical_cluster", logical_cluster)
                .field("identity_pool_id", identity_pool_id)
                .finish(),
            Self::Bearer {
                source,
                logical_cluster,
                identity_pool_id,
            } => f
                .debug_struct("Bearer")
                .field("source", source)
                .field("logical_cluster", logical_cluster)
                .field("identity_pool_id", identity_pool_id)
                .finish(),
        }
    }
}

/// Refuses credentials over clear text: an `http://` URL among `urls` whose host is not
/// loopback (`localhost`, `127.0.0.0/8`, `::1`) when `auth`, or a URL's userinfo, sends
/// credentials. The error names `schema.registry.url` and the URL without its userinfo, never a
/// secret.
///
/// # Errors
/// [`Error::Config`] for the first such URL.
pub(crate) fn check_clear_text(urls: &[String], auth: &RegistryAuth) -> Result<()> {
    check_clear_text_sending(urls, |in_url| auth.sent_credentials(in_url))
}

/// What the OAuth credentials send, as a configuration error names them.
#[cfg(feature = "kafka")]
pub(crate) const OAUTH_CREDENTIALS: &str = "the OAuth bearer tokens (bearer.auth.*)";

/// [`check_clear_text`] for credentials described by `sent` (given whether a URL carries
/// userinfo; `None` when nothing is sent).
///
/// # Errors
/// As [`check_clear_text`].
pub(crate) fn check_clear_text_sending(
    urls: &[String],
    sent: impl FnOnce(bool) -> Option<&'static str>,
) -> Result<()> {
    let parsed: Vec<reqwest::Url> = urls
        .iter()
        .filter_map(|u| reqwest::Url::parse(u.trim()).ok())
        .collect();
    let in_url = parsed
        .iter()
        .any(|u| !u.username().is_empty() || u.password().is_some());
    let Some(what) = sent(in_url) else {
        return Ok(());
    };
    match parsed
        .iter()
        .find(|u| u.scheme() == "http" && !crate::redact::is_loopback(u))
    {
        Some(clear) => Err(crate::Error::Config {
            key: "schema.registry.url".into(),
            reason: format!(
                "'{}' is http://: {what} would cross the network in clear text; use https:// \
                 (http:// is accepted with credentials for localhost, 127.0.0.0/8 and ::1 only)",
                redact_url(clear.as_str()).trim_end_matches('/')
            ),
        }),
        None => Ok(()),
    }
}

impl RegistryAuth {
    /// What these credentials (or, with `url_credentials`, a URL's userinfo) send to the
    /// registry, as a configuration error names them; `None` when nothing is sent.
    pub(crate) fn sent_credentials(&self, url_credentials: bool) -> Option<&'static str> {
        match self {
            Self::None if url_credentials => Some("the API key and secret in the URL"),
            Self::None => None,
            Self::Basic { .. } => Some("the basic auth credentials (basic.auth.*)"),
            Self::StaticToken(_) => Some("the bearer token (bearer.auth.token)"),
            #[cfg(feature = "kafka")]
            Self::OAuth { .. } => Some(OAUTH_CREDENTIALS),
            Self::Bearer { .. } => Some("the bearer tokens"),
        }
    }
}

/// Where the Schema Registry is and how to talk to it. `Debug` shows the URLs without their
/// userinfo.
#[derive(Clone)]
pub struct RegistryConfig {
    /// Base URL(s) of the registry (`schema.registry.url`, comma-separated there). A URL may
    /// carry credentials (`https://KEY:SECRET@host`): as with Confluent's clients they become
    /// HTTP basic auth when [`RegistryConfig::auth`] is [`RegistryAuth::None`], and are never
    /// shown in errors, logs or `Debug` output.
    pub urls: Vec<String>,
    /// Credentials.
    pub auth: RegistryAuth,
    /// Extra headers sent with every request, e.g. `target-sr-cluster`.
    pub headers: Vec<(String, String)>,
    /// Timeout of each HTTP request.
    pub timeout: Duration,
    /// How many times an answer 429 or 5xx is retried (`schema.registry.max.retries`,
    /// default 3, as Confluent's clients).
    pub max_retries: usize,
    /// The first wait before a retry (`schema.registry.retries.wait.ms`, default 1 s); each
    /// next wait doubles, with random jitter, up to [`RegistryConfig::retry_max_wait`]. A
    /// `Retry-After` header of a 429 or 503 answer is honoured up to that bound.
    pub retry_wait: Duration,
    /// The longest wait before a retry (`schema.registry.retries.max.wait.ms`, default 20 s).
    pub retry_max_wait: Duration,
    /// How long the latest version of a subject is cached (`latest.cache.ttl.sec`, default
    /// 5 minutes; zero: not cached), so `use.latest.version` picks up a new version.
    pub latest_cache_ttl: Duration,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RegistryConfig")
            .field("urls", &urls)
            .field("auth", &self.auth)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_wait", &self.retry_wait)
            .field("retry_max_wait", &self.retry_max_wait)
            .field("latest_cache_ttl", &self.latest_cache_ttl)
            .finish()
    }
}

impl RegistryConfig {
    /// A registry at `url` without credentials (unless the URL carries them).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            auth: RegistryAuth::None,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_wait: Duration::from_secs(1),
            retry_max_wait: Duration::from_secs(20),
            latest_cache_ttl: Duration::from_secs(300),
        }
    }

    /// Sets the retry policy for answers 429 and 5xx: at most `max_retries` retries, waiting
    /// `wait` then doubling (with jitter) up to `max_wait`.
    pub fn with_retries(mut self, max_retries: usize, wait: Duration, max_wait: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_wait = wait;
        self.retry_max_wait = max_wait;
        self
    }

    /// Sets [`RegistryConfig::latest_cache_ttl`].
    pub fn with_latest_cache_ttl(mut self, ttl: Duration) -> Self {
        self.latest_cache_ttl = ttl;
        self
    }
}

#[cfg(test)]
mod statuses;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn debug_never_shows_a_secret() {
        let auth = RegistryAuth::Basic {
            username: "KEY".into(),
            password: SecretString::from("s3cr3t-value"),
        };
        let shown = format!(
            "{auth:?} {:?}",
            RegistryAuth::StaticToken("tok3n-value".into())
        );
        assert!(shown.contains("KEY"));
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok3n"),
            "{shown}"
        );
    }

    /// Credentials in `schema.registry.url` never reach an error or `Debug` output.
    #[tokio::test]
    async fn url_userinfo_is_never_shown() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = RegistryConfig::new(format!("http://SRKEY:Sr-S3cret@{closed}"));
        let client = RegistryClient::new(&config).unwrap();
        let err = client.schema_by_id(1).await.unwrap_err();
        let shown = format!("{err} {err:?} {config:?} {client:?}");
        println!("{err}");
        assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");
        assert!(!shown.contains("Sr-S3cret"), "{shown}");
        assert!(!shown.contains("SRKEY"), "{shown}");
        assert!(err.to_string().contains(&closed.to_string()), "{err}");
        let err = RegistryClient::new(&RegistryConfig::new("ftp://K:Sr-S3cret@host")).unwrap_err();
        assert!(!err.to_string().contains("Sr-S3cret"), "{err}");
    }

    /// As with Confluent's clients, URL userinfo becomes HTTP basic auth.
    #[tokio::test]
    async fn url_userinfo_becomes_basic_auth() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed before the request head ended");
                head.extend_from_slice(&buf[..n]);
            }
            let body = r#"{"error_code":40403,"message":"Schema not found"}"#;
            let answer = format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).to_ascii_lowercase()
        });
        let client = RegistryClient::new(&RegistryConfig::new(format!(
            "http://SRKEY:Sr-S3cret@{addr}/"
        )))
        .unwrap();
        let err = client.schema_by_id(5).await.unwrap_err();
        assert!(
            matches!(err, Error::UnknownSchemaId { id: 5, .. }),
            "{err:?}"
        );
        let head = server.await.unwrap();
        assert!(head.starts_with("get /schemas/ids/5"), "{head}");
        assert!(
            head.contains("authorization: basic u1jlrvk6u3ituznjcmv0"),
            "{head}"
        );
        assert_eq!(client.url(), format!("http://{addr}"));
    }

    #[test]
    fn rejects_a_url_that_is_not_http() {
        let err = RegistryClient::new(&RegistryConfig::new("localhost:8081")).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "schema.registry.url"));
        let err = RegistryClient::new(&RegistryConfig {
            urls: vec![],
            ..RegistryConfig::new("")
        })
        .unwrap_err();
        assert!(err.to_string().contains("no Schema Registry URL"), "{err}");
    }
}
