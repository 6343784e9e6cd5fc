//! SASL/OAUTHBEARER for librdkafka clients with SASL extensions (`logicalCluster`,
//! `identityPoolId`), which rdkafka's `OAuthToken` cannot carry: the token is handed to
//! librdkafka with `rd_kafka_oauthbearer_set_token` and refreshed from a tokio task.

use std::{
    ffi::{CString, c_char},
    sync::{Arc, Weak},
    time::{Duration, Instant, SystemTime},
};

use rdkafka::{
    ClientContext,
    admin::AdminClient,
    bindings::{self as rdsys, rd_kafka_resp_err_t, rd_kafka_t as RDKafka},
    client::Client,
    consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer},
    producer::{
        BaseProducer, FutureProducer, Partitioner, Producer, ProducerContext, ThreadedProducer,
    },
    util::AsyncRuntime,
};

use backon::BackoffBuilder as _;

use super::{AccessToken, TokenProvider};
use crate::{Error, Result};

/// Step of the first wait after a failed refresh; doubled on each further failure (with
/// jitter, [`crate::retry`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between two refresh attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

mod sealed {
    /// Keeps [`OAuthBearerClient`](super::OAuthBearerClient) implemented only here: its
    /// `native_ptr` goes to FFI, so an implementation returning a dangling pointer would be
    /// undefined behaviour in safe code.
    pub trait Sealed {}
}

/// A librdkafka client (producer, consumer, admin client) whose OAUTHBEARER token can be set.
///
/// Implemented for rdkafka's clients; the client must have been created with
/// `sasl.mechanisms=OAUTHBEARER` and without `sasl.oauthbearer.method=oidc`.
///
/// The trait is sealed: its native handle is handed to librdkafka, so only rdkafka's own
/// clients, whose handle lives as long as they do, implement it. Outside implementations are
/// refused:
///
/// ```compile_fail
/// use avro_events::auth::OAuthBearerClient;
///
/// struct Dangling;
///
/// impl OAuthBearerClient for Dangling {
///     fn native_ptr(&self) -> *mut rdkafka::bindings::rd_kafka_t {
///         std::ptr::dangling_mut()
///     }
/// }
/// ```
pub trait OAuthBearerClient: sealed::Sealed + Send + Sync + 'static {
    /// The native librdkafka handle. It stays valid as long as `self` is alive.
    fn native_ptr(&self) -> *mut RDKafka;
}

impl<C: ClientContext + 'static> sealed::Sealed for Client<C> {}
impl<C: ClientContext + 'static> sealed::Sealed for AdminClient<C> {}
impl<C, Part> sealed::Sealed for BaseProducer<C, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ProducerContext<Part> + 'static,
{
}
impl<C, Part> sealed::Sealed for ThreadedProducer<C, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ProducerContext<Part> + 'static,
{
}
impl<C, R, Part> sealed::Sealed for FutureProducer<C, R, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ClientContext + 'static,
    R: AsyncRuntime + Send + Sync + 'static,
{
}
impl<C: ConsumerContext + 'static> sealed::Sealed for BaseConsumer<C> {}
impl<C, R> sealed::Sealed for StreamConsumer<C, R>
where
    C: ConsumerContext + 'static,
    R: AsyncRuntime + Send + Sync + 'static,
{
}

impl<C: ClientContext + 'static> OAuthBearerClient for Client<C> {
    fn native_ptr(&self) -> *mut RDKafka {
        Client::native_ptr(self)
    }
}

impl<C: ClientContext + 'static> OAuthBearerClient for AdminClient<C> {
    fn native_ptr(&self) -> *mut RDKafka {
        self.inner().native_ptr()
    }
}

impl<C, Part> OAuthBearerClient for BaseProducer<C, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ProducerContext<Part> + 'static,
{
    fn native_ptr(&self) -> *mut RDKafka {
        self.client().native_ptr()
    }
}

impl<C, Part> OAuthBearerClient for ThreadedProducer<C, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ProducerContext<Part> + 'static,
{
    fn native_ptr(&self) -> *mut RDKafka {
        self.client().native_ptr()
    }
}

impl<C, R, Part> OAuthBearerClient for FutureProducer<C, R, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ClientContext + 'static,
    R: AsyncRuntime + Send + Sync + 'static,
{
    fn native_ptr(&self) -> *mut RDKafka {
        self.client().native_ptr()
    }
}

impl<C: ConsumerContext + 'static> OAuthBearerClient for BaseConsumer<C> {
    fn native_ptr(&self) -> *mut RDKafka {
        self.client().native_ptr()
    }
}

impl<C, R> OAuthBearerClient for StreamConsumer<C, R>
where
    C: ConsumerContext + 'static,
    R: AsyncRuntime + Send + Sync + 'static,
{
    fn native_ptr(&self) -> *mut RDKafka {
        self.client().native_ptr()
    }
}

/// OAUTHBEARER settings for Confluent Cloud: where tokens come from, the SASL extensions sent
/// with them, and the principal name librdkafka records.
#[derive(Debug, Clone)]
pub struct KafkaOAuth {
    provider: Arc<TokenProvider>,
    extensions: Vec<(String, String)>,
    principal: Option<String>,
}

impl KafkaOAuth {
    /// Tokens from `provider`, with the extensions `logicalCluster=<logical_cluster>` and, when
    /// given, `identityPoolId=<identity_pool_id>`.
    pub fn new(
        provider: Arc<TokenProvider>,
        logical_cluster: impl Into<String>,
        identity_pool_id: Option<String>,
    ) -> Self {
        let mut extensions = vec![("logicalCluster".to_owned(), logical_cluster.into())];
        if let Some(pool) = identity_pool_id.filter(|p| !p.is_empty()) {
            extensions.push(("identityPoolId".to_owned(), pool));
        }
        Self {
            provider,
            extensions,
            principal: None,
        }
    }

    /// Tokens from `provider` with the extensions of a `sasl.oauthbearer.extensions` value
    /// (`logicalCluster=lkc-…,identityPoolId=pool-…`).
    ///
    /// # Errors
    /// [`Error::Config`] when the value is not a comma-separated list of `key=value`.
    pub fn with_extensions_property(provider: Arc<TokenProvider>, value: &str) -> Result<Self> {
        Ok(Self::with_extensions(provider, parse_extensions(value)?))
    }

    /// Tokens from `provider` with already parsed SASL extensions (see [`KafkaOAuth::with_extensions_property`]).
    pub fn with_extensions(
        provider: Arc<TokenProvider>,
        extensions: Vec<(String, String)>,
    ) -> Self {
        Self {
            provider,
            extensions,
            principal: None,
        }
    }

    /// Adds a SASL extension (RFC 7628 §3.1: the key is letters only).
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((key.into(), value.into()));
        self
    }

    /// The principal name librdkafka records instead of the token's `sub` claim or the client id.
    pub fn with_principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// The SASL extensions sent with the token.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// The token provider.
    pub fn provider(&self) -> &Arc<TokenProvider> {
        &self.provider
    }

    /// Fetches a token, hands it with the extensions to `client`, and starts a tokio task that
    /// sets a new token before each one expires. The task holds only a weak reference to the
    /// client: it stops when the client is dropped, or when the returned handle is dropped.
    /// Call it right after creating the client (librdkafka waits for a token before it
    /// authenticates) and from within a tokio runtime.
    ///
    /// When the identity provider cannot be reached or answers with a server error, the
    /// failure is logged (naming the endpoint, never the secret), reported to librdkafka
    /// (`rd_kafka_oauthbearer_set_token_failure`, so its clients see an authentication error
    /// rather than waiting silently), and the task keeps asking with a jittered exponential
    /// backoff (0.5 s doubling up to 30 s): the client authenticates once a token arrives.
    ///
    /// # Errors
    /// [`Error::Auth`] when the endpoint refuses the client credentials (an OAuth error answer
    /// such as `invalid_client`) or answers with something that is not a token, or when
    /// librdkafka refuses the token (e.g. the client is not configured with
    /// `sasl.mechanisms=OAUTHBEARER`, or an extension is malformed).
    pub async fn install<T: OAuthBearerClient>(&self, client: &Arc<T>) -> Result<RefreshHandle> {
        let first = match self.provider.token().await {
            Ok(token) => {
                set_token(
                    client.as_ref(),
                    &token,
                    self.principal_for(&token),
                    &self.extensions,
                )
                .map_err(|reason| self.auth_error(reason))?;
                Some(token)
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(
                    endpoint = %self.provider.shown_endpoint(),
                    %error,
                    "cannot fetch the first OAUTHBEARER token; retrying with backoff"
                );
                set_token_failure(client.as_ref(), &error.to_string())
                    .map_err(|reason| self.auth_error(reason))?;
                None
            }
            Err(error) => return Err(error),
        };
        let task = tokio::spawn(refresh_loop(self.clone(), Arc::downgrade(client), first));
        Ok(RefreshHandle { task })
    }

    fn principal_for<'a>(&'a self, token: &'a AccessToken) -> &'a str {
        self.principal
            .as_deref()
            .or(token.subject())
            .unwrap_or_else(|| self.provider.credentials().client_id())
    }

    fn auth_error(&self, reason: String) -> Error {
        Error::Auth {
            endpoint: self.provider.shown_endpoint().to_owned(),
            reason,
            transient: false,
        }
    }
}

/// Keeps the token of one client fresh. Dropping it stops the refresh task.
#[derive(Debug)]
pub struct RefreshHandle {
    task: tokio::task::JoinHandle<()>,
}

impl RefreshHandle {
    /// Whether the task has stopped (its client was dropped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for RefreshHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps `client`'s token fresh; `first` is the token set at install, if one could be fetched.
async fn refresh_loop<T: OAuthBearerClient>(
    oauth: KafkaOAuth,
    client: Weak<T>,
    first: Option<AccessToken>,
) {
    let mut current = first;
    let policy = crate::retry::exponential(FIRST_BACKOFF, MAX_BACKOFF, None);
    let mut backoff = policy.build();
    // The wait before the next attempt after a failure.
    let mut after_failure = backoff.next().unwrap_or(MAX_BACKOFF);
    loop {
        let wait = current.as_ref().map_or(Duration::ZERO, |token| {
            token.refresh_at().saturating_duration_since(Instant::now())
        });
        tokio::time::sleep(if wait.is_zero() { after_failure } else { wait }).await;
        if client.strong_count() == 0 {
            break;
        }
        let fetched = oauth.provider.token().await;
        let Some(strong) = client.upgrade() else {
            break;
        };
        match fetched {
            Ok(token)
                if current
                    .as_ref()
                    .is_some_and(|c| token.secret() == c.secret()) =>
            {
                // The provider kept the current token (its refresh failed but the token is
                // still valid): ask again after a backoff.
                after_failure = backoff.next().unwrap_or(MAX_BACKOFF);
            }
            Ok(token) => {
                match set_token(
                    strong.as_ref(),
                    &token,
                    oauth.principal_for(&token),
                    &oauth.extensions,
                ) {
                    Ok(()) => {
                        tracing::debug!("set a refreshed OAUTHBEARER token");
                        backoff = policy.build();
                        after_failure = backoff.next().unwrap_or(MAX_BACKOFF);
                        current = Some(token);
                    }
                    Err(reason) => {
                        // `current` stays due, so the next attempt comes after the backoff.
                        tracing::warn!(%reason, "librdkafka refused the refreshed OAUTHBEARER token");
                        let _ = set_token_failure(strong.as_ref(), &reason);
                        after_failure = backoff.next().unwrap_or(MAX_BACKOFF);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch an OAUTHBEARER token; retrying with backoff");
                let _ = set_token_failure(strong.as_ref(), &e.to_string());
                after_failure = backoff.next().unwrap_or(MAX_BACKOFF);
            }
        }
        drop(strong);
    }
    tracing::debug!("client dropped; OAUTHBEARER refresh task stops");
}

/// Hands `token` to librdkafka. Returns librdkafka's error text on failure.
fn set_token<T: OAuthBearerClient + ?Sized>(
    client: &T,
    token: &AccessToken,
    principal: &str,
    extensions: &[(String, String)],
) -> std::result::Result<(), String> {
    let nul = |what: &str| format!("the {what} contains a NUL byte");
    let value = CString::new(token.secret()).map_err(|_| nul("access token"))?;
    let principal = CString::new(principal).map_err(|_| nul("principal name"))?;
    let mut strings = Vec::with_capacity(extensions.len() * 2);
    for (key, val) in extensions {
        strings.push(CString::new(key.as_str()).map_err(|_| nul("extension key"))?);
        strings.push(CString::new(val.as_str()).map_err(|_| nul("extension value"))?);
    }
    let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    let lifetime_ms = token
        .expires_at()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut errstr = [0 as c_char; 512];
    // SAFETY: `client` is borrowed for the whole call, so its native handle is alive (the
    // trait requires the pointer to be valid while `self` is). Every string is a NUL-terminated
    // `CString` that outlives the call; `pointers` holds `strings.len()` pointers into them, and
    // librdkafka only reads that array (it copies the strings). `errstr` is a writable buffer of
    // the size passed. `rd_kafka_oauthbearer_set_token` is thread-safe (it takes the SASL
    // handle's write lock).
    let code = unsafe {
        rdsys::rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            value.as_ptr(),
            lifetime_ms,
            principal.as_ptr(),
            pointers.as_mut_ptr(),
            pointers.len(),
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if code == rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        // SAFETY: librdkafka wrote a NUL-terminated message into `errstr` (rd_snprintf), and the
        // buffer was zeroed, so it is NUL-terminated in any case.
        let text = unsafe { std::ffi::CStr::from_ptr(errstr.as_ptr()) };
        Err(format!(
            "librdkafka refused the token ({code:?}): {}",
            text.to_string_lossy()
        ))
    }
}

/// Tells librdkafka that no token could be fetched (it reports `reason` as an authentication
/// error). `reason` must not hold a secret. Returns librdkafka's refusal, e.g. when the client
/// does not use OAUTHBEARER.
fn set_token_failure<T: OAuthBearerClient + ?Sized>(
    client: &T,
    reason: &str,
) -> std::result::Result<(), String> {
    let reason = CString::new(reason.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `client` is borrowed for the call, so its native handle is alive; `reason` is a
    // NUL-terminated string that librdkafka copies.
    let code = unsafe {
        rdsys::rd_kafka_oauthbearer_set_token_failure(client.native_ptr(), reason.as_ptr())
    };
    if code == rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(format!(
            "librdkafka refused the token failure ({code:?}): is the client configured with \
             sasl.mechanisms=OAUTHBEARER?"
        ))
    }
}

/// Parses a `sasl.oauthbearer.extensions` value: `key=value` pairs separated by commas, keys of
/// letters only (RFC 7628 §3.1).
///
/// # Errors
/// [`Error::Config`] naming the malformed pair.
pub(crate) fn parse_extensions(value: &str) -> Result<Vec<(String, String)>> {
    let config_err = |reason: String| Error::Config {
        key: "sasl.oauthbearer.extensions".into(),
        reason,
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, val) = pair
                .split_once('=')
                .ok_or_else(|| config_err(format!("'{pair}' is not key=value")))?;
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) || key == "auth" {
                return Err(config_err(format!(
                    "extension key '{key}' must be letters only and not 'auth'"
                )));
            }
            Ok((key.to_owned(), val.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_confluent_extensions() {
        let parsed = parse_extensions("logicalCluster=lkc-abc12, identityPoolId=pool-XyZ").unwrap();
        assert_eq!(
            parsed,
            vec![
                ("logicalCluster".to_owned(), "lkc-abc12".to_owned()),
                ("identityPoolId".to_owned(), "pool-XyZ".to_owned())
            ]
        );
        assert!(parse_extensions("").unwrap().is_empty());
        assert!(parse_extensions("logicalCluster").is_err());
        assert!(parse_extensions("logical-cluster=x").is_err());
        assert!(parse_extensions("auth=x").is_err());
    }
}
