//! One request to the Schema Registry: URLs tried in order, credentials and headers set,
//! answers 429 and 5xx retried with jittered exponential backoff (`backon`), failures kept
//! typed until the caller maps them onto an [`Error`].

use std::{sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable as _};
use reqwest::{
    Method, StatusCode, Url,
    header::{self, HeaderMap, HeaderName, HeaderValue},
};
use secrecy::{ExposeSecret as _, SecretString};

use super::BearerTokenSource;
use crate::{Error, Result};

/// Confluent's media type for requests and answers.
pub(super) const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// How requests are authenticated.
pub(super) enum Credentials {
    /// Nothing, or a fixed `Authorization` value (basic auth or a static token), marked
    /// sensitive so it never shows in `Debug` output.
    Fixed(Option<HeaderValue>),
    /// A fresh bearer token per request.
    Bearer(Arc<dyn BearerTokenSource>),
}

/// One request: method, path segments (each percent-encoded), query pairs and JSON body.
pub(super) struct Request<'a> {
    pub(super) method: Method,
    pub(super) path: &'a [&'a str],
    pub(super) query: &'a [(&'a str, String)],
    pub(super) body: Option<serde_json::Value>,
}

/// Why a request failed, before it is mapped onto an [`Error`].
#[derive(Debug)]
pub(super) enum Failure {
    /// No URL answered (connection refused, DNS, timeout): the last transport error, in words.
    Transport(String),
    /// The bearer token source failed (its error as is).
    Credentials(Error),
    /// The registry answered with an error status.
    Status {
        status: StatusCode,
        /// Confluent's `error_code`, when the body carries one.
        code: Option<u32>,
        /// Confluent's `message`, else the body.
        message: String,
        /// A `Retry-After` in seconds, when sent.
        retry_after: Option<Duration>,
        /// How many retries were made before this answer.
        retries: usize,
    },
}

impl Failure {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Status { status, .. }
            if *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
    }
}

/// The HTTP side of the client.
pub(super) struct Transport {
    pub(super) http: reqwest::Client,
    /// Base URLs without userinfo or a trailing `/`; tried in order.
    pub(super) urls: Vec<Url>,
    pub(super) credentials: Credentials,
    /// Configured headers and Confluent Cloud's bearer headers.
    pub(super) headers: HeaderMap,
    pub(super) backoff: ExponentialBuilder,
    pub(super) retry_max_wait: Duration,
}

impl Transport {
    /// Sends `request`, retrying answers 429 and 5xx; returns the body of a 2xx answer as JSON
    /// (`Null` when empty).
    pub(super) async fn send(&self, request: &Request<'_>) -> Result<serde_json::Value, Failure> {
        let retries = std::sync::atomic::AtomicUsize::new(0);
        let max_wait = self.retry_max_wait;
        let attempt = || async {
            self.attempt(request).await.map_err(|mut failure| {
                if let Failure::Status { retries: n, .. } = &mut failure {
                    *n = retries.load(std::sync::atomic::Ordering::Relaxed);
                }
                failure
            })
        };
        attempt
            .retry(self.backoff)
            .sleep(tokio::time::sleep)
            .when(Failure::is_retryable)
            .adjust(|failure, next| match (failure, next) {
                // Honour Retry-After within the bound, only while retries remain.
                (
                    Failure::Status {
                        retry_after: Some(wait),
                        ..
                    },
                    Some(_),
                ) => Some((*wait).min(max_wait)),
                _ => next,
            })
            .notify(|failure, wait| {
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Failure::Status { status, .. } = failure {
                    tracing::debug!(%status, ?wait, "Schema Registry answer retried");
                }
            })
            .await
    }

    async fn attempt(&self, request: &Request<'_>) -> Result<serde_json::Value, Failure> {
        let token = match &self.credentials {
            Credentials::Bearer(source) => {
                Some(source.token().await.map_err(Failure::Credentials)?)
            }
            Credentials::Fixed(_) => None,
        };
        let mut last_error = String::from("no Schema Registry URL");
        for base in &self.urls {
            let url = endpoint(base, request);
            let mut builder = self
                .http
                .request(request.method.clone(), url)
                .headers(self.headers.clone())
                .header(header::ACCEPT, MEDIA_TYPE);
            if let Some(body) = &request.body {
                builder = builder
                    .header(header::CONTENT_TYPE, MEDIA_TYPE)
                    .body(body.to_string());
            }
            match (&self.credentials, &token) {
                (Credentials::Fixed(Some(value)), _) => {
                    builder = builder.header(header::AUTHORIZATION, value.clone());
                }
                (Credentials::Bearer(_), Some(token)) => {
                    builder = builder.header(header::AUTHORIZATION, bearer(token)?);
                }
                _ => {}
            }
            let response = match builder.send().await {
                Ok(response) => response,
                Err(e) => {
                    last_error = error_chain(&e);
                    continue;
                }
            };
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = match response.text().await {
                Ok(text) => text,
                Err(e) => {
                    last_error = error_chain(&e);
                    continue;
                }
            };
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(serde_json::Value::Null);
                }
                return serde_json::from_str(&text).map_err(|e| Failure::Status {
                    status,
                    code: None,
                    message: format!("the answer is not JSON ({e}): {}", shorten(&text)),
                    retry_after: None,
                    retries: 0,
                });
            }
            if status == StatusCode::UNAUTHORIZED
                && let (Credentials::Bearer(source), Some(token)) = (&self.credentials, &token)
            {
                source.rejected(token).await;
            }
            let body: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            let code = body
                .as_ref()
                .and_then(|b| b.get("error_code"))
                .and_then(serde_json::Value::as_u64)
                .and_then(|c| u32::try_from(c).ok());
            let message = body
                .as_ref()
                .and_then(|b| b.get("message"))
                .and_then(serde_json::Value::as_str)
                .map_or_else(|| shorten(&text), str::to_owned);
            return Err(Failure::Status {
                status,
                code,
                message,
                retry_after,
                retries: 0,
            });
        }
        Err(Failure::Transport(last_error))
    }
}

fn bearer(token: &SecretString) -> Result<HeaderValue, Failure> {
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).map_err(|_| {
            Failure::Credentials(Error::Config {
                key: "bearer.auth.credentials.source".into(),
                reason: "the bearer token cannot be sent in an HTTP header".into(),
            })
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `base` with the request's path segments (percent-encoded) and query.
fn endpoint(base: &Url, request: &Request<'_>) -> Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(request.path);
    }
    if request.query.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(request.query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    url
}

/// A header from `name` and `value`, or a configuration error naming `key`.
pub(super) fn header_pair(key: &str, name: &str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let invalid = |what: &str| Error::Config {
        key: key.into(),
        reason: format!("{what} cannot be sent as an HTTP header"),
    };
    Ok((
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(&format!("'{name}'")))?,
        HeaderValue::from_str(value).map_err(|_| invalid("the value"))?,
    ))
}

/// Confluent's verbose answers include whole schemas: keep messages readable.
fn shorten(text: &str) -> String {
    const MAX: usize = 400;
    let text = text.trim();
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX).collect();
    short.push('…');
    short
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
