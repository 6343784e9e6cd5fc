//! Configuration in Confluent's own property names.
//!
//! A [`Config`] holds the properties of a `client.properties` file as Confluent Cloud's console
//! hands it out. Kafka properties pass through to librdkafka unchanged; the Schema Registry
//! properties (`schema.registry.url`, `basic.auth.*`, `bearer.auth.*`) and the serializer
//! properties (`auto.register.schemas`, `use.latest.version`) configure the [`Codec`]. OAuth
//! client credentials for Kafka (`sasl.oauthbearer.method=oidc` with
//! `sasl.oauthbearer.client.id`, …) are handled by the library itself, so that the SASL
//! extensions Confluent Cloud needs (`logicalCluster`, `identityPoolId`) reach the broker.
//! Token endpoints (`sasl.oauthbearer.token.endpoint.url`, `bearer.auth.issuer.endpoint.url`)
//! must be `https://` URLs, so that client secrets never cross a network in clear text;
//! `http://` is accepted only for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`), where
//! local test identity providers run. The same holds for `schema.registry.url` whenever
//! credentials go to the registry (basic auth, an API key in the URL, a static or OAuth bearer
//! token): an `http://` URL of another host is a configuration error naming
//! `schema.registry.url`; without credentials any `http://` URL is accepted.
//!
//! Environment variables override the file: `GROCERY_BOOTSTRAP_SERVERS` sets
//! `bootstrap.servers` (prefix `GROCERY_`, upper case, `.` written as `_`). Only variables that
//! name a property librdkafka or this library knows become properties; any other `GROCERY_*`
//! variable (`GROCERY_CONFIG`, `GROCERY_CATALOG`, a test suite's own switches) is left alone.
//!
//! [`Config::validate`] asks librdkafka about every Kafka property, so a mistyped key
//! (`bootstrap.server`, `linger.mss`) or a value librdkafka refuses is reported as
//! [`Error::Config`] naming the key (never quoting a secret's value) before a client is built.
//!
//! ```
//! use avro_events::Config;
//!
//! let config = Config::from_properties_str(
//!     "bootstrap.servers=127.0.0.1:9092\nschema.registry.url=http://127.0.0.1:8081\n",
//! )?;
//! config.validate()?;
//! assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:9092"));
//! # Ok::<(), avro_events::Error>(())
//! ```
//!
//! [`Codec`]: crate::Codec

use std::{collections::BTreeMap, fmt, fs::File, io::BufReader, path::Path, time::Duration};

use rdkafka::{error::KafkaError, types::RDKafkaConfRes};
use secrecy::SecretString;

use crate::{
    CodecOptions, Error, Result, SubjectNameStrategy,
    registry::{RegistryAuth, RegistryConfig},
};

/// Prefix of the environment variables that override properties.
pub const ENV_PREFIX: &str = "GROCERY_";

/// Properties read by the library and never passed to librdkafka.
const LIBRARY_KEYS: &[&str] = &[
    "schema.registry.url",
    "schema.registry.request.timeout.ms",
    "schema.registry.max.retries",
    "schema.registry.retries.wait.ms",
    "schema.registry.retries.max.wait.ms",
    "latest.cache.ttl.sec",
    "basic.auth.credentials.source",
    "basic.auth.user.info",
    "schema.registry.basic.auth.user.info",
    "bearer.auth.credentials.source",
    "bearer.auth.token",
    "bearer.auth.issuer.endpoint.url",
    "bearer.auth.client.id",
    "bearer.auth.client.secret",
    "bearer.auth.scope",
    "bearer.auth.logical.cluster",
    "bearer.auth.identity.pool.id",
    "auto.register.schemas",
    "use.latest.version",
    "use.schema.id",
    "normalize.schemas",
    "value.subject.name.strategy",
    "avro.max.allocation.bytes",
    "dlq.topic.suffix",
    "schema.unavailable.action",
];

/// Kafka OAuth properties the library handles itself when `sasl.oauthbearer.method=oidc`.
const KAFKA_OIDC_KEYS: &[&str] = &[
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
];

/// Properties of Java clients that librdkafka does not know; Confluent Cloud's console puts
/// them in `client.properties`. They are ignored.
const JAVA_ONLY_KEYS: &[&str] = &["client.dns.lookup", "sasl.jaas.config"];

/// librdkafka properties only consumers use (librdkafka warns when a producer gets them).
const CONSUMER_ONLY_KEYS: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
];

/// librdkafka properties only producers use (librdkafka warns when a consumer gets them).
const PRODUCER_ONLY_KEYS: &[&str] = &[
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "request.required.acks",
    "acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "partitioner",
    "sticky.partitioning.linger.ms",
];

/// Which kind of Kafka client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientRole {
    /// A producer: consumer-only properties are left out.
    Producer,
    /// A consumer: producer-only properties are left out.
    Consumer,
}

/// Whether the value of `key` is a secret that must never be shown.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("user.info")
        || key.contains("jaas")
        || key == "bearer.auth.token"
        || key == "sasl.oauthbearer.config"
        || key.ends_with(".pem")
}

/// Whether `key` is a property a [`Config`] uses: one librdkafka knows (its client and topic
/// properties), or one the library reads itself (Schema Registry, serializer and OAuth keys).
pub fn is_known_property(key: &str) -> bool {
    LIBRARY_KEYS.contains(&key)
        || KAFKA_OIDC_KEYS.contains(&key)
        || JAVA_ONLY_KEYS.contains(&key)
        || !matches!(
            librdkafka_refusal(key, ""),
            Some((RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, _))
        )
}

/// What librdkafka says when `key` is set to `value` on a scratch configuration: `None` when it
/// takes it, otherwise its result code and message.
fn librdkafka_refusal(key: &str, value: &str) -> Option<(RDKafkaConfRes, String)> {
    let mut scratch = rdkafka::ClientConfig::new();
    scratch.set(key, value);
    match scratch.create_native_config() {
        Ok(_) => None,
        Err(KafkaError::ClientConfig(code, description, _, _)) => Some((code, description)),
        Err(other) => Some((RDKafkaConfRes::RD_KAFKA_CONF_INVALID, other.to_string())),
    }
}

/// [`Error::Config`] naming `key` when librdkafka does not take `key=value`. The value of a
/// secret key is never quoted.
fn check_with_librdkafka(key: &str, value: &str) -> Result<()> {
    let Some((code, description)) = librdkafka_refusal(key, value) else {
        return Ok(());
    };
    let reason = if code == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN {
        "not a property librdkafka knows (mistyped?); see \
         https://docs.confluent.io/platform/current/clients/librdkafka/html/md_CONFIGURATION.html"
            .to_owned()
    } else if is_secret_key(key) && (value.is_empty() || description.contains(value)) {
        "librdkafka refuses the value (not shown: it is a secret)".to_owned()
    } else {
        format!("librdkafka refuses the value: {description}")
    };
    Err(Error::Config {
        key: key.to_owned(),
        reason,
    })
}

/// OAuth client credentials, as configured for Kafka (`sasl.oauthbearer.*`) or the Schema
/// Registry (`bearer.auth.*`).
#[derive(Clone)]
pub struct OAuthSettings {
    /// The token endpoint of the identity provider.
    pub token_endpoint: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: SecretString,
    /// Requested scope, if any.
    pub scope: Option<String>,
}

impl fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Kafka OAUTHBEARER settings: client credentials plus the SASL extensions.
#[derive(Debug, Clone)]
pub struct KafkaOAuthSettings {
    /// The client credentials.
    pub credentials: OAuthSettings,
    /// SASL extensions, e.g. `logicalCluster` and `identityPoolId`.
    pub extensions: Vec<(String, String)>,
}

/// Schema Registry OAuth settings (`bearer.auth.credentials.source=OAUTHBEARER`).
#[derive(Debug, Clone)]
pub struct RegistryOAuthSettings {
    /// The client credentials.
    pub credentials: OAuthSettings,
    /// `bearer.auth.logical.cluster`: the Schema Registry cluster id (`lsrc-…`), sent as
    /// header `target-sr-cluster`.
    pub logical_cluster: String,
    /// `bearer.auth.identity.pool.id`, sent as header `Confluent-Identity-Pool-Id`.
    pub identity_pool_id: Option<String>,
}

/// Client configuration in Confluent's property names. `Debug` shows secrets as `[REDACTED]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Config {
    properties: BTreeMap<String, String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.properties {
            if is_secret_key(key) {
                map.entry(key, &"[REDACTED]");
            } else if key == "schema.registry.url" {
                let urls: Vec<String> = value.split(',').map(crate::redact::redact_url).collect();
                map.entry(key, &urls.join(","));
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl Config {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a `client.properties` file (Java properties format).
    ///
    /// # Errors
    /// [`Error::Config`] naming the file when it cannot be read or parsed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file_err = |reason: String| Error::Config {
            key: format!("file {}", path.display()),
            reason,
        };
        let file = File::open(path).map_err(|e| file_err(e.to_string()))?;
        let properties = java_properties::read(BufReader::new(file))
            .map_err(|e| file_err(format!("not a properties file: {e}")))?;
        Ok(Self::from_iter(properties))
    }

    /// Parses properties from text in Java properties format.
    ///
    /// # Errors
    /// [`Error::Config`] when the text cannot be parsed.
    pub fn from_properties_str(text: &str) -> Result<Self> {
        let properties = java_properties::read(text.as_bytes()).map_err(|e| Error::Config {
            key: "properties".into(),
            reason: e.to_string(),
        })?;
        Ok(Self::from_iter(properties))
    }

    /// Applies overrides from the process environment (see [`ENV_PREFIX`]).
    pub fn with_env_overrides(self) -> Self {
        self.with_overrides_from(std::env::vars())
    }

    /// Applies overrides from `vars` named like environment variables (`GROCERY_…`).
    ///
    /// `GROCERY_LINGER_MS=5` sets `linger.ms`: the name after the prefix, lower case, with `_`
    /// written as `.`. A variable becomes a property only when that key is a property
    /// librdkafka knows or one the library reads (`schema.registry.url`, `basic.auth.*`,
    /// `bearer.auth.*`, …; see [`is_known_property`]); other `GROCERY_*` variables, such as the
    /// services' `GROCERY_CONFIG` and `GROCERY_CATALOG`, are ignored.
    pub fn with_overrides_from(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX).filter(|r| !r.is_empty()) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace('_', ".");
            if is_known_property(&key) {
                self.properties.insert(key, value);
            } else {
                tracing::debug!(variable = %name, "not a property name; environment variable not used as an override");
            }
        }
        self
    }

    /// Sets `key` to `value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Sets `bootstrap.servers`.
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.set("bootstrap.servers", servers)
    }

    /// Sets `schema.registry.url`.
    pub fn schema_registry_url(self, url: impl Into<String>) -> Self {
        self.set("schema.registry.url", url)
    }

    /// Authenticates to Kafka with a Confluent Cloud API key (SASL_SSL, PLAIN).
    pub fn kafka_api_key(self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "PLAIN")
            .set("sasl.username", key)
            .set("sasl.password", secret)
    }

    /// Authenticates to the Schema Registry with an API key (HTTP basic auth).
    pub fn registry_api_key(self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        let user_info = format!("{}:{}", key.into(), secret.into());
        self.set("basic.auth.credentials.source", "USER_INFO")
            .set("basic.auth.user.info", user_info)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// All properties (secrets included: do not log them).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn require(&self, key: &str, why: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| Error::Config {
            key: key.into(),
            reason: format!("missing; {why}"),
        })
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(str::trim) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Error::Config {
                key: key.into(),
                reason: format!("'{v}' is not true or false"),
            }),
        }
    }

    /// Checks that everything needed to connect is present and well-formed. The error names
    /// the missing or bad key.
    ///
    /// # Errors
    /// [`Error::Config`] for the first problem found.
    pub fn validate(&self) -> Result<()> {
        self.require("bootstrap.servers", "the Kafka cluster's host:port list")?;
        for (key, value) in self.kafka_properties() {
            check_with_librdkafka(key, value)?;
        }
        self.kafka_oauth()?;
        self.registry_config()?;
        self.codec_options()?;
        self.dead_letter_suffix()?;
        self.schema_unavailable()?;
        Ok(())
    }

    /// What consumers do with a record whose writer schema cannot be fetched or used
    /// (`schema.unavailable.action`: `wait`, the default, or `fail`; see
    /// [`SchemaUnavailable`](crate::SchemaUnavailable)). A consumer's
    /// [`ConsumerOptions::schema_unavailable`](crate::ConsumerOptions::schema_unavailable)
    /// wins when set.
    ///
    /// # Errors
    /// [`Error::Config`] for any other value.
    pub fn schema_unavailable(&self) -> Result<crate::SchemaUnavailable> {
        let key = "schema.unavailable.action";
        match self
            .properties
            .get(key)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => Ok(crate::SchemaUnavailable::default()),
            Some(value) if value == "wait" => Ok(crate::SchemaUnavailable::Wait),
            Some(value) if value == "fail" => Ok(crate::SchemaUnavailable::Fail),
            Some(value) => Err(Error::Config {
                key: key.into(),
                reason: format!("'{value}' is neither 'wait' nor 'fail'"),
            }),
        }
    }

    /// The suffix that names a topic's default dead-letter topic (`dlq.topic.suffix`, default
    /// [`DLQ_SUFFIX`](crate::dlq::DLQ_SUFFIX), `.dlq`): records of `orders` that cannot be
    /// decoded go to `orders.dlq`.
    ///
    /// # Errors
    /// [`Error::Config`] when the suffix has a character a Kafka topic name cannot have (only
    /// ASCII letters, digits, `.`, `_` and `-`) or is longer than 200 characters.
    pub fn dead_letter_suffix(&self) -> Result<&str> {
        let key = "dlq.topic.suffix";
        let Some(suffix) = self.properties.get(key) else {
            return Ok(crate::dlq::DLQ_SUFFIX);
        };
        let suffix = suffix.trim();
        if suffix.is_empty() {
            return Err(Error::Config {
                key: key.into(),
                reason: "empty: the dead-letter topic would be the topic itself".into(),
            });
        }
        if suffix.len() > 200
            || !suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(Error::Config {
                key: key.into(),
                reason: format!(
                    "'{suffix}' cannot end a Kafka topic name (ASCII letters, digits, '.', '_' \
                     and '-' only, at most 200 characters)"
                ),
            });
        }
        Ok(suffix)
    }

    /// Whether Kafka OAuth is handled by the library (`sasl.mechanisms=OAUTHBEARER` with
    /// `sasl.oauthbearer.method=oidc`).
    fn uses_kafka_oidc(&self) -> bool {
        self.get("sasl.mechanisms")
            .or_else(|| self.get("sasl.mechanism"))
            .is_some_and(|m| m.eq_ignore_ascii_case("OAUTHBEARER"))
            && self
                .get("sasl.oauthbearer.method")
                .is_some_and(|m| m.eq_ignore_ascii_case("oidc"))
    }

    /// The Kafka OAuth settings, when Kafka uses OAUTHBEARER with `sasl.oauthbearer.method=oidc`.
    ///
    /// # Errors
    /// [`Error::Config`] naming a missing key or a malformed `sasl.oauthbearer.extensions`.
    pub fn kafka_oauth(&self) -> Result<Option<KafkaOAuthSettings>> {
        let mechanism = self
            .get("sasl.mechanisms")
            .or_else(|| self.get("sasl.mechanism"));
        if let Some(m) = mechanism {
            let m = m.to_ascii_uppercase();
            if m == "PLAIN" || m.starts_with("SCRAM") {
                self.require("sasl.username", "needed with PLAIN/SCRAM (the API key)")?;
                self.require("sasl.password", "needed with PLAIN/SCRAM (the API secret)")?;
            }
        }
        if !self.uses_kafka_oidc() {
            return Ok(None);
        }
        let why = "needed with sasl.oauthbearer.method=oidc";
        let endpoint_key = "sasl.oauthbearer.token.endpoint.url";
        let token_endpoint = self.require(endpoint_key, why)?;
        crate::auth::check_token_endpoint(endpoint_key, token_endpoint)?;
        let credentials = OAuthSettings {
            token_endpoint: token_endpoint.to_owned(),
            client_id: self.require("sasl.oauthbearer.client.id", why)?.to_owned(),
            client_secret: self.require("sasl.oauthbearer.client.secret", why)?.into(),
            scope: self.get("sasl.oauthbearer.scope").map(str::to_owned),
        };
        let extensions = match self.get("sasl.oauthbearer.extensions") {
            None => Vec::new(),
            Some(text) => crate::auth::parse_extensions(text)?,
        };
        Ok(Some(KafkaOAuthSettings {
            credentials,
            extensions,
        }))
    }

    /// The properties passed to librdkafka: everything but the library's own keys (and, with
    /// library-handled OAuth, the `sasl.oauthbearer.*` keys it replaces).
    pub fn kafka_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        let oidc = self.uses_kafka_oidc();
        self.iter().filter(move |(key, value)| {
            let handled_here = LIBRARY_KEYS.contains(key)
                || JAVA_ONLY_KEYS.contains(key)
                || (oidc && KAFKA_OIDC_KEYS.contains(key));
            !value.is_empty() && !handled_here
        })
    }

    /// An rdkafka client configuration with the Kafka properties.
    pub fn rdkafka_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        for (key, value) in self.kafka_properties() {
            config.set(key, value);
        }
        config
    }

    /// The rdkafka configuration of a consumer in group `group` (unless `group.id` is set),
    /// with the library's consumer defaults where the properties say nothing: offsets stored
    /// only for finished records and committed automatically (`enable.auto.offset.store=false`,
    /// `enable.auto.commit=true`), `auto.offset.reset=earliest`, `isolation.level=read_committed`.
    pub fn rdkafka_consumer_config(&self, group: &str) -> rdkafka::ClientConfig {
        let mut rd = self.rdkafka_config_for(ClientRole::Consumer);
        if self.get("group.id").is_none() {
            rd.set("group.id", group);
        }
        // Only offsets of finished records are stored, and those are committed.
        rd.set("enable.auto.offset.store", "false");
        for (key, default) in [
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ] {
            if self.get(key).is_none() {
                rd.set(key, default);
            }
        }
        rd
    }

    /// An rdkafka client configuration for a client of `role`: one `client.properties` can
    /// serve producers and consumers alike without librdkafka warning about properties the
    /// other kind of client uses.
    pub fn rdkafka_config_for(&self, role: ClientRole) -> rdkafka::ClientConfig {
        let other = match role {
            ClientRole::Producer => CONSUMER_ONLY_KEYS,
            ClientRole::Consumer => PRODUCER_ONLY_KEYS,
        };
        let mut config = rdkafka::ClientConfig::new();
        for (key, value) in self
            .kafka_properties()
            .filter(|(key, _)| !other.contains(key))
        {
            config.set(key, value);
        }
        config
    }

    /// The Schema Registry settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or malformed key, or `schema.registry.url` when
    /// credentials would go over `http://` to a host that is not loopback.
    pub fn registry_config(&self) -> Result<RegistryConfig> {
        let url = self.require("schema.registry.url", "the Schema Registry's URL")?;
        let mut config = RegistryConfig::new("");
        config.urls = url.split(',').map(|u| u.trim().to_owned()).collect();
        if let Some(ms) = self.get("schema.registry.request.timeout.ms") {
            let ms: u64 = ms.trim().parse().map_err(|_| Error::Config {
                key: "schema.registry.request.timeout.ms".into(),
                reason: format!("'{ms}' is not a number of milliseconds"),
            })?;
            config.timeout = Duration::from_millis(ms);
        }
        let number = |key: &str, unit: &str| -> Result<Option<u64>> {
            self.get(key)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| Error::Config {
                        key: key.into(),
                        reason: format!("'{v}' is not a number of {unit}"),
                    })
                })
                .transpose()
        };
        if let Some(n) = number("schema.registry.max.retries", "retries")? {
            config.max_retries = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("schema.registry.retries.wait.ms", "milliseconds")? {
            config.retry_wait = Duration::from_millis(ms);
        }
        if let Some(ms) = number("schema.registry.retries.max.wait.ms", "milliseconds")? {
            config.retry_max_wait = Duration::from_millis(ms);
        }
        // Confluent's -1 means "never expires".
        match self.get("latest.cache.ttl.sec").map(str::trim) {
            Some("-1") => config.latest_cache_ttl = Duration::MAX,
            Some(_) => {
                if let Some(secs) = number("latest.cache.ttl.sec", "seconds (or -1)")? {
                    config.latest_cache_ttl = Duration::from_secs(secs);
                }
            }
            None => {}
        }
        config.auth = match self.get("basic.auth.credentials.source") {
            Some(source) if source.eq_ignore_ascii_case("USER_INFO") => self.basic_auth(
                "basic.auth.user.info",
                self.get("basic.auth.user.info")
                    .or_else(|| self.get("schema.registry.basic.auth.user.info")),
            )?,
            Some(source) if source.eq_ignore_ascii_case("SASL_INHERIT") => {
                let user = self.require("sasl.username", "needed with SASL_INHERIT")?;
                let pass = self.require("sasl.password", "needed with SASL_INHERIT")?;
                RegistryAuth::Basic {
                    username: user.to_owned(),
                    password: pass.into(),
                }
            }
            Some(other) => {
                return Err(Error::Config {
                    key: "basic.auth.credentials.source".into(),
                    reason: format!("'{other}' is not supported; use USER_INFO or SASL_INHERIT"),
                });
            }
            None => match self.get("bearer.auth.credentials.source") {
                Some(s) if s.eq_ignore_ascii_case("STATIC_TOKEN") => RegistryAuth::StaticToken(
                    self.require("bearer.auth.token", "needed with STATIC_TOKEN")?
                        .into(),
                ),
                Some(s) if s.eq_ignore_ascii_case("OAUTHBEARER") => {
                    let oauth = self.registry_oauth()?.ok_or_else(|| Error::Config {
                        key: "bearer.auth.credentials.source".into(),
                        reason: "OAUTHBEARER settings are incomplete".into(),
                    })?;
                    RegistryAuth::OAuth {
                        provider: std::sync::Arc::new(crate::client::token_provider(
                            &oauth.credentials,
                        )?),
                        logical_cluster: oauth.logical_cluster,
                        identity_pool_id: oauth.identity_pool_id,
                    }
                }
                Some(other) => {
                    return Err(Error::Config {
                        key: "bearer.auth.credentials.source".into(),
                        reason: format!(
                            "'{other}' is not supported; use OAUTHBEARER or STATIC_TOKEN"
                        ),
                    });
                }
                None => RegistryAuth::None,
            },
        };
        crate::registry::check_clear_text(&config.urls, &config.auth)?;
        Ok(config)
    }

    /// The Schema Registry OAuth settings, when `bearer.auth.credentials.source=OAUTHBEARER`.
    ///
    /// # Errors
    /// [`Error::Config`] naming a missing key.
    pub fn registry_oauth(&self) -> Result<Option<RegistryOAuthSettings>> {
        let oauth = self
            .get("bearer.auth.credentials.source")
            .is_some_and(|s| s.eq_ignore_ascii_case("OAUTHBEARER"));
        if !oauth {
            return Ok(None);
        }
        let why = "needed with bearer.auth.credentials.source=OAUTHBEARER";
        let endpoint_key = "bearer.auth.issuer.endpoint.url";
        let token_endpoint = self.require(endpoint_key, why)?;
        crate::auth::check_token_endpoint(endpoint_key, token_endpoint)?;
        Ok(Some(RegistryOAuthSettings {
            credentials: OAuthSettings {
                token_endpoint: token_endpoint.to_owned(),
                client_id: self.require("bearer.auth.client.id", why)?.to_owned(),
                client_secret: self.require("bearer.auth.client.secret", why)?.into(),
                scope: self.get("bearer.auth.scope").map(str::to_owned),
            },
            logical_cluster: self.require("bearer.auth.logical.cluster", why)?.to_owned(),
            identity_pool_id: self.get("bearer.auth.identity.pool.id").map(str::to_owned),
        }))
    }

    fn basic_auth(&self, key: &str, user_info: Option<&str>) -> Result<RegistryAuth> {
        let user_info = user_info.ok_or_else(|| Error::Config {
            key: key.into(),
            reason: "missing; needed with basic.auth.credentials.source=USER_INFO".into(),
        })?;
        let (username, password) = user_info.split_once(':').ok_or_else(|| Error::Config {
            key: key.into(),
            reason: "must be KEY:SECRET (no ':' found)".into(),
        })?;
        Ok(RegistryAuth::Basic {
            username: username.to_owned(),
            password: password.into(),
        })
    }

    /// The serializer settings (`auto.register.schemas`, `use.latest.version`,
    /// `use.schema.id`, `normalize.schemas`, `value.subject.name.strategy`,
    /// `avro.max.allocation.bytes`).
    ///
    /// # Errors
    /// [`Error::Config`] for a value that is not a boolean or a known strategy.
    pub fn codec_options(&self) -> Result<CodecOptions> {
        let strategy = match self.get("value.subject.name.strategy") {
            None => SubjectNameStrategy::TopicName,
            Some(s) => match s.rsplit('.').next().unwrap_or(s) {
                "TopicNameStrategy" => SubjectNameStrategy::TopicName,
                "RecordNameStrategy" => SubjectNameStrategy::RecordName,
                "TopicRecordNameStrategy" => SubjectNameStrategy::TopicRecordName,
                other => {
                    return Err(Error::Config {
                        key: "value.subject.name.strategy".into(),
                        reason: format!("unknown strategy '{other}'"),
                    });
                }
            },
        };
        let mut options = CodecOptions::default();
        if let Some(bytes) = self.get("avro.max.allocation.bytes") {
            let bytes = bytes
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|b| *b >= 1024)
                .ok_or_else(|| Error::Config {
                    key: "avro.max.allocation.bytes".into(),
                    reason: format!("'{bytes}' is not a number of bytes (at least 1024)"),
                })?;
            options = options.with_max_allocation_bytes(bytes);
        }
        let options = options
            .with_auto_register(self.flag("auto.register.schemas", true)?)
            .with_use_latest_version(self.flag("use.latest.version", false)?)
            .with_normalize_schemas(self.flag("normalize.schemas", false)?)
            .with_use_schema_id(match self.get("use.schema.id").map(str::trim) {
                None | Some("-1") => None,
                Some(id) => Some(id.parse::<u32>().map_err(|_| Error::Config {
                    key: "use.schema.id".into(),
                    reason: format!("'{id}' is not a schema id"),
                })?),
            })
            .with_subject_strategy(strategy);
        Ok(options)
    }

    /// Whether `transactional.id` is set (the producer then uses Kafka transactions).
    pub fn transactional_id(&self) -> Option<&str> {
        self.get("transactional.id")
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            properties: iter
                .into_iter()
                .map(|(k, v)| (k.into().trim().to_owned(), v.into().trim().to_owned()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_properties_str(text).unwrap()
    }

    const CLOUD_API_KEY: &str = "\
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers=pkc-abc12.us-east-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username=KAFKAKEY
sasl.password=kafka-s3cret
# Best practice for higher availability in librdkafka clients prior to 1.7
session.timeout.ms=45000
client.dns.lookup=use_all_dns_ips
schema.registry.url=https://psrc-xyz.us-east-2.aws.confluent.cloud
basic.auth.credentials.source=USER_INFO
basic.auth.user.info=SRKEY:sr-s3cret
";

    #[test]
    fn reads_confluent_cloud_api_key_properties() {
        let c = config(CLOUD_API_KEY);
        c.validate().unwrap();
        let kafka: BTreeMap<_, _> = c.kafka_properties().collect();
        assert_eq!(kafka.get("sasl.password"), Some(&"kafka-s3cret"));
        assert!(!kafka.contains_key("schema.registry.url"));
        assert!(!kafka.contains_key("basic.auth.user.info"));
        assert!(!kafka.contains_key("client.dns.lookup"));
        let registry = c.registry_config().unwrap();
        assert_eq!(
            registry.urls,
            ["https://psrc-xyz.us-east-2.aws.confluent.cloud"]
        );
        assert!(
            matches!(registry.auth, RegistryAuth::Basic { ref username, .. } if username == "SRKEY")
        );
    }

    #[test]
    fn debug_redacts_every_secret() {
        let c = config(CLOUD_API_KEY)
            .set("sasl.oauthbearer.client.secret", "oidc-s3cret")
            .set(
                "schema.registry.url",
                "https://SRKEY:url-s3cret@psrc.example",
            );
        let shown = format!("{c:?} {:?}", c.registry_config().unwrap());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("KAFKAKEY") && shown.contains("[REDACTED]"));
    }

    #[test]
    fn errors_name_the_missing_key() {
        let err = config("schema.registry.url=http://x")
            .validate()
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "bootstrap.servers"),
            "{err}"
        );
        let err = config("bootstrap.servers=b:9092").validate().unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "schema.registry.url"));
        let err = config("bootstrap.servers=b\nschema.registry.url=http://x\nsasl.mechanisms=PLAIN\nsasl.username=k")
            .validate()
            .unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "sasl.password"));
        let err = config("bootstrap.servers=b\nschema.registry.url=http://x\nbasic.auth.credentials.source=USER_INFO\nbasic.auth.user.info=nocolon")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("KEY:SECRET"), "{err}");
        assert!(
            !err.to_string().contains("nocolon"),
            "secret value leaked: {err}"
        );
        let err = config(
            "bootstrap.servers=b\nschema.registry.url=http://x\nauto.register.schemas=maybe",
        )
        .validate()
        .unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "auto.register.schemas"));
    }

    #[test]
    fn each_client_role_gets_only_its_own_properties() {
        let c = config(
            "bootstrap.servers=b:9092\nsession.timeout.ms=6000\nlinger.ms=5\n\
             transactional.id=t1\nclient.id=shared\n",
        );
        let producer = c.rdkafka_config_for(ClientRole::Producer);
        assert_eq!(producer.get("linger.ms"), Some("5"));
        assert_eq!(producer.get("transactional.id"), Some("t1"));
        assert_eq!(producer.get("session.timeout.ms"), None);
        let consumer = c.rdkafka_config_for(ClientRole::Consumer);
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("transactional.id"), None);
        assert_eq!(consumer.get("client.id"), Some("shared"));
        assert_eq!(producer.get("client.id"), Some("shared"));
    }

    #[test]
    fn kafka_oidc_is_handled_by_the_library() {
        let c = config(
            "bootstrap.servers=b:9092\nschema.registry.url=http://x\n\
             security.protocol=SASL_SSL\nsasl.mechanisms=OAUTHBEARER\nsasl.oauthbearer.method=oidc\n\
             sasl.oauthbearer.token.endpoint.url=https://idp/token\nsasl.oauthbearer.client.id=cid\n\
             sasl.oauthbearer.client.secret=csecret\nsasl.oauthbearer.scope=kafka\n\
             sasl.oauthbearer.extensions=logicalCluster=lkc-1, identityPoolId=pool-2\n",
        );
        let oauth = c.kafka_oauth().unwrap().unwrap();
        assert_eq!(oauth.credentials.token_endpoint, "https://idp/token");
        assert_eq!(
            oauth.extensions,
            [
                ("logicalCluster".into(), "lkc-1".into()),
                ("identityPoolId".into(), "pool-2".into())
            ]
        );
        let kafka: BTreeMap<_, _> = c.kafka_properties().collect();
        assert_eq!(kafka.get("sasl.mechanisms"), Some(&"OAUTHBEARER"));
        assert!(
            kafka.keys().all(|k| !k.starts_with("sasl.oauthbearer")),
            "{kafka:?}"
        );
        let err = c
            .clone()
            .set("sasl.oauthbearer.extensions", "logicalCluster")
            .kafka_oauth()
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "sasl.oauthbearer.extensions")
        );
    }

    #[test]
    fn token_endpoints_must_be_https_off_loopback() {
        let kafka = "bootstrap.servers=b:9092\nschema.registry.url=https://sr\n\
                     sasl.mechanisms=OAUTHBEARER\nsasl.oauthbearer.method=oidc\n\
                     sasl.oauthbearer.client.id=cid\nsasl.oauthbearer.client.secret=csecret\n";
        let registry = "bootstrap.servers=b:9092\nschema.registry.url=https://sr\n\
                        bearer.auth.credentials.source=OAUTHBEARER\n\
                        bearer.auth.logical.cluster=lsrc-1\n\
                        bearer.auth.client.id=cid\nbearer.auth.client.secret=csecret\n";
        for (base, key) in [
            (kafka, "sasl.oauthbearer.token.endpoint.url"),
            (registry, "bearer.auth.issuer.endpoint.url"),
        ] {
            let err = config(&format!("{base}{key}=http://idp.example/token\n"))
                .validate()
                .unwrap_err();
            assert!(
                matches!(err, Error::Config { key: ref k, .. } if k == key),
                "{err}"
            );
            assert!(err.to_string().contains("https://"), "{err}");
            for ok in ["https://idp.example/token", "http://127.0.0.1:9/token"] {
                config(&format!("{base}{key}={ok}\n"))
                    .validate()
                    .unwrap_or_else(|e| panic!("{ok}: {e}"));
            }
        }
    }

    #[test]
    fn registry_oauth_needs_the_logical_cluster() {
        let base = "bootstrap.servers=b\nschema.registry.url=https://sr\n\
                    bearer.auth.credentials.source=OAUTHBEARER\n\
                    bearer.auth.issuer.endpoint.url=https://idp/token\n\
                    bearer.auth.client.id=cid\nbearer.auth.client.secret=csecret\n";
        let err = config(base).validate().unwrap_err();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "bearer.auth.logical.cluster")
        );
        let c = config(&format!(
            "{base}bearer.auth.logical.cluster=lsrc-1\nbearer.auth.identity.pool.id=pool-9\n"
        ));
        let oauth = c.registry_oauth().unwrap().unwrap();
        assert_eq!(oauth.logical_cluster, "lsrc-1");
        assert_eq!(oauth.identity_pool_id.as_deref(), Some("pool-9"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = config("bootstrap.servers=file:9092").with_overrides_from([
            (
                "GROCERY_BOOTSTRAP_SERVERS".to_owned(),
                "env:9092".to_owned(),
            ),
            (
                "GROCERY_SCHEMA_REGISTRY_URL".to_owned(),
                "http://env".to_owned(),
            ),
            ("GROCERY_CONFIG".to_owned(), "/path".to_owned()),
            ("OTHER_VAR".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(c.get("bootstrap.servers"), Some("env:9092"));
        assert_eq!(c.get("schema.registry.url"), Some("http://env"));
        assert_eq!(c.iter().count(), 2);
    }

    #[test]
    fn only_variables_naming_a_property_override() {
        let c = config("bootstrap.servers=file:9092").with_overrides_from(
            [
                ("GROCERY_CATALOG", "data/catalog.csv"),
                ("GROCERY_REAL_KAFKA_CONFIG", "/tmp/real.properties"),
                ("GROCERY_CONFIG", "/path"),
                ("GROCERY_", "x"),
                ("GROCERY_LINGER_MS", "7"),
                ("GROCERY_BASIC_AUTH_USER_INFO", "k:s"),
                ("GROCERY_SASL_OAUTHBEARER_CLIENT_ID", "cid"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let keys: Vec<&str> = c.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "basic.auth.user.info",
                "bootstrap.servers",
                "linger.ms",
                "sasl.oauthbearer.client.id"
            ]
        );
        assert!(is_known_property("bootstrap.servers") && is_known_property("schema.registry.url"));
        assert!(!is_known_property("real.kafka.config") && !is_known_property("catalog"));
    }

    #[test]
    fn validate_names_a_key_librdkafka_does_not_take() {
        let base = "bootstrap.servers=b:9092\nschema.registry.url=http://x\n";
        for (extra, key) in [
            ("bootstrap.server=b:9092", "bootstrap.server"),
            ("linger.mss=5", "linger.mss"),
            ("linger.ms=soon", "linger.ms"),
            ("sasl.pasword=hunter2-s3cret", "sasl.pasword"),
            ("security.protocol=SASL_PLAINTXT", "security.protocol"),
        ] {
            let err = config(&format!("{base}{extra}\n")).validate().unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, Error::Config { key: ref k, .. } if k == key),
                "{text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        // A secret key's refused value is never quoted.
        let err = config(&format!("{base}ssl.key.password=\n")).validate();
        assert!(err.is_ok(), "an empty value is left out: {err:?}");
        assert!(check_with_librdkafka("acks", "all").is_ok());
        // librdkafka's message is shown only when it does not quote a secret value.
        let text = check_with_librdkafka("sasl.oauthbearer.client.secret", "x")
            .map_or_else(|e| e.to_string(), |()| String::new());
        println!("{text}");
        assert!(!text.contains("\"x\""), "{text}");
        let text = check_with_librdkafka("ssl.key.password", "s3cret\0")
            .map_or_else(|e| e.to_string(), |()| String::new());
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn schema_unavailable_action_is_read_and_checked() {
        use crate::SchemaUnavailable;
        let base = "bootstrap.servers=b:9092\nschema.registry.url=http://x\n";
        assert_eq!(
            config(base).schema_unavailable().unwrap(),
            SchemaUnavailable::Wait
        );
        for (value, expected) in [
            ("wait", SchemaUnavailable::Wait),
            ("fail", SchemaUnavailable::Fail),
            (" FAIL", SchemaUnavailable::Fail),
        ] {
            let c = config(&format!("{base}schema.unavailable.action={value}\n"));
            c.validate().unwrap();
            assert_eq!(c.schema_unavailable().unwrap(), expected, "{value}");
            assert!(
                c.kafka_properties()
                    .all(|(key, _)| key != "schema.unavailable.action"),
                "a library key, not passed to librdkafka"
            );
        }
        let err = config(&format!("{base}schema.unavailable.action=skip\n"))
            .validate()
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "schema.unavailable.action"),
            "{err}"
        );
    }

    #[test]
    fn dlq_topic_suffix_is_read_and_checked() {
        let base = "bootstrap.servers=b:9092\nschema.registry.url=http://x\n";
        assert_eq!(config(base).dead_letter_suffix().unwrap(), ".dlq");
        let c = config(&format!("{base}dlq.topic.suffix=-dead_letters.v1\n"));
        c.validate().unwrap();
        assert_eq!(c.dead_letter_suffix().unwrap(), "-dead_letters.v1");
        for bad in [
            "dlq.topic.suffix=\n",
            "dlq.topic.suffix=/x\n",
            "dlq.topic.suffix=a b\n",
        ] {
            let err = config(&format!("{base}{bad}")).validate().unwrap_err();
            assert!(
                matches!(err, Error::Config { ref key, .. } if key == "dlq.topic.suffix"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn codec_options_follow_confluent_names() {
        let c = config(
            "auto.register.schemas=false\nuse.latest.version=true\n\
             value.subject.name.strategy=io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
        );
        let o = c.codec_options().unwrap();
        assert!(!o.auto_register && o.use_latest_version);
        assert_eq!(
            o.max_allocation_bytes,
            crate::codec::DEFAULT_MAX_ALLOCATION_BYTES
        );
        let bounded = c.clone().set("avro.max.allocation.bytes", "1048576");
        assert_eq!(
            bounded.codec_options().unwrap().max_allocation_bytes,
            1 << 20
        );
        let err = c
            .set("avro.max.allocation.bytes", "lots")
            .codec_options()
            .unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "avro.max.allocation.bytes"));
        assert_eq!(o.subject_strategy, SubjectNameStrategy::TopicRecordName);
    }
}
