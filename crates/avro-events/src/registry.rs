//! Schema Registry access: REST calls through `schema_registry_converter`, with the answers
//! mapped onto [`Error`] variants.

#[cfg(feature = "kafka")]
use std::sync::Arc;
use std::{error::Error as _, fmt, time::Duration};

use schema_registry_converter::{
    async_impl::schema_registry::{SrSettings, get_schema_by_id, perform_sr_call},
    error::SRCError,
    schema_registry_common::{RawError, SrCall},
};
use secrecy::{ExposeSecret, SecretString};

#[cfg(feature = "kafka")]
use crate::auth::{BearerAuthMiddleware, TokenProvider};
use crate::{
    Error, Result,
    redact::{redact_url, split_userinfo},
};

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
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RegistryConfig")
            .field("urls", &urls)
            .field("auth", &self.auth)
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
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
        }
    }
}

/// A registered schema as the registry returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// Global id of the schema.
    pub id: u32,
    /// The schema text.
    pub schema: String,
}

/// A client of a Confluent-compatible Schema Registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    settings: SrSettings,
    url: String,
}

impl RegistryClient {
    /// Builds the HTTP client. No request is sent until a schema is needed.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is missing or the HTTP client cannot be built.
    pub fn new(config: &RegistryConfig) -> Result<Self> {
        let config_err = |reason: String| Error::Config {
            key: "schema.registry.url".into(),
            reason,
        };
        let mut urls = Vec::with_capacity(config.urls.len());
        let mut url_credentials = None;
        for url in &config.urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(config_err(format!(
                    "'{}' is not an http:// or https:// URL",
                    redact_url(url)
                )));
            }
            let (bare, credentials) = split_userinfo(url);
            url_credentials = url_credentials.or(credentials);
            urls.push(bare.trim_end_matches('/').to_owned());
        }
        let (first, rest) = urls
            .split_first()
            .ok_or_else(|| config_err("no Schema Registry URL given".into()))?;
        let mut builder = SrSettings::new_builder(first.clone());
        for url in rest {
            builder.add_url(url.clone());
        }
        match &config.auth {
            RegistryAuth::None => {
                // Confluent's clients take `https://KEY:SECRET@host` as basic auth.
                if let Some((username, password)) = &url_credentials {
                    builder.set_basic_authorization(username, Some(password));
                }
            }
            RegistryAuth::Basic { username, password } => {
                builder.set_basic_authorization(username, Some(password.expose_secret()));
            }
            RegistryAuth::StaticToken(token) => {
                builder.set_token_authorization(token.expose_secret());
            }
            #[cfg(feature = "kafka")]
            RegistryAuth::OAuth {
                provider,
                logical_cluster,
                identity_pool_id,
            } => {
                builder.with_middleware(BearerAuthMiddleware::new(
                    provider.clone(),
                    logical_cluster,
                    identity_pool_id.as_deref(),
                )?);
            }
        }
        for (name, value) in &config.headers {
            builder.add_header(name, value);
        }
        builder.set_timeout(config.timeout);
        let settings = builder
            .build()
            .map_err(|e| config_err(format!("cannot build the HTTP client: {}", e.error)))?;
        Ok(Self {
            settings,
            url: urls.join(","),
        })
    }

    /// The registry URL(s), for messages (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the schema with global id `id`.
    ///
    /// # Errors
    /// [`Error::UnknownSchemaId`] when the registry has no such id; otherwise the error
    /// describing why the registry could not answer.
    pub async fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema> {
        match get_schema_by_id(id, &self.settings).await {
            Ok(schema) => Ok(RegisteredSchema {
                id,
                schema: schema.schema,
            }),
            Err(e) if registry_error_code(&e) == Some(40403) => Err(Error::UnknownSchemaId {
                id,
                registry: self.url.clone(),
            }),
            Err(e) => Err(self.map_error(e)),
        }
    }

    /// Registers `schema` under `subject` (or finds it registered already) and returns its id.
    ///
    /// # Errors
    /// [`Error::IncompatibleSchema`] when the subject's compatibility level rejects it.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        let body = request_body(schema);
        match perform_sr_call(&self.settings, SrCall::PostNew(subject, &body)).await {
            Ok(raw) => raw.id.ok_or_else(|| self.missing_id(subject)),
            Err(e) if registry_error_code(&e) == Some(40901) || http_status(&e) == Some(409) => {
                Err(Error::IncompatibleSchema {
                    subject: subject.to_owned(),
                    messages: vec![raw_message(&e)],
                })
            }
            Err(e) => Err(self.map_error(e)),
        }
    }

    /// Looks up the id under which `schema` is registered in `subject`, without registering.
    ///
    /// # Errors
    /// [`Error::SchemaNotRegistered`] when the subject or the schema is not registered.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<u32> {
        let body = request_body(schema);
        match perform_sr_call(&self.settings, SrCall::PostForVersion(subject, &body)).await {
            Ok(raw) => raw.id.ok_or_else(|| self.missing_id(subject)),
            Err(e) if matches!(registry_error_code(&e), Some(40401 | 40403)) => {
                Err(Error::SchemaNotRegistered {
                    subject: subject.to_owned(),
                    registry: self.url.clone(),
                    reason: raw_message(&e),
                })
            }
            Err(e) => Err(self.map_error(e)),
        }
    }

    /// The latest version registered under `subject`.
    ///
    /// # Errors
    /// [`Error::SchemaNotRegistered`] when the subject has no version.
    pub async fn latest(&self, subject: &str) -> Result<RegisteredSchema> {
        match perform_sr_call(&self.settings, SrCall::GetLatest(subject)).await {
            Ok(raw) => Ok(RegisteredSchema {
                id: raw.id.ok_or_else(|| self.missing_id(subject))?,
                schema: raw.schema.ok_or_else(|| Error::Registry {
                    registry: self.url.clone(),
                    reason: format!("latest version of subject '{subject}' has no schema text"),
                })?,
            }),
            Err(e) if matches!(registry_error_code(&e), Some(40401 | 40402)) => {
                Err(Error::SchemaNotRegistered {
                    subject: subject.to_owned(),
                    registry: self.url.clone(),
                    reason: raw_message(&e),
                })
            }
            Err(e) => Err(self.map_error(e)),
        }
    }

    fn missing_id(&self, subject: &str) -> Error {
        Error::Registry {
            registry: self.url.clone(),
            reason: format!("answer for subject '{subject}' has no schema id"),
        }
    }

    fn map_error(&self, e: SRCError) -> Error {
        let registry = self.url.clone();
        if let Some(status @ (401 | 403)) = http_status(&e) {
            return Error::RegistryUnauthorized {
                registry,
                status,
                reason: raw_message(&e),
            };
        }
        let source = e.source();
        // With a middleware (OAuth), failures come wrapped in `reqwest_middleware::Error`.
        let wrapped = source.and_then(|s| s.downcast_ref::<reqwest_middleware::Error>());
        if let Some(reqwest_middleware::Error::Middleware(m)) = wrapped
            && let Some(Error::Auth {
                endpoint,
                reason,
                transient,
            }) = m.downcast_ref::<Error>()
        {
            return Error::Auth {
                endpoint: endpoint.clone(),
                reason: reason.clone(),
                transient: *transient,
            };
        }
        let transport = match wrapped {
            Some(reqwest_middleware::Error::Reqwest(t)) => Some(t),
            _ => source.and_then(|s| s.downcast_ref::<reqwest::Error>()),
        };
        match transport {
            Some(t) if t.is_connect() || t.is_timeout() || t.is_request() => {
                Error::RegistryUnreachable {
                    registry,
                    reason: error_chain(t),
                }
            }
            _ if http_status(&e).is_some_and(|s| s >= 500) => Error::RegistryUnreachable {
                registry,
                reason: raw_message(&e),
            },
            _ => Error::Registry {
                registry,
                reason: raw_message(&e),
            },
        }
    }
}

fn request_body(schema: &str) -> String {
    serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string()
}

/// The registry's `error_code` when the registry answered with a Confluent error body.
fn registry_error_code(e: &SRCError) -> Option<u32> {
    e.source()
        .and_then(|s| s.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
        .filter(|code| *code != 0)
}

/// The HTTP status, which `schema_registry_converter` puts in its message.
fn http_status(e: &SRCError) -> Option<u16> {
    let rest = e.error.split("with status ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn raw_message(e: &SRCError) -> String {
    match e.source().and_then(|s| s.downcast_ref::<RawError>()) {
        Some(raw) if raw.error_code != 0 => {
            format!("{} (error code {})", raw.message, raw.error_code)
        }
        _ => match e.source() {
            Some(source) => format!("{}: {}", e.error, error_chain(source)),
            None => e.error.clone(),
        },
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
