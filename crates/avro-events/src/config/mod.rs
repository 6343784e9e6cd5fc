//! Configuration in Confluent's own property names.
//!
//! A [`Config`] holds the properties of a `client.properties` file as Confluent Cloud's console
//! hands it out. Kafka properties pass through to librdkafka unchanged; the Schema Registry
//! properties (`schema.registry.url`, `basic.auth.*`, `bearer.auth.*`) and the serializer
//! properties (`auto.register.schemas`, `use.latest.version`, `use.latest.with.metadata`:
//! `key=value` pairs, comma-separated, [`Config::latest_metadata`]; `value.schema.id.serializer`,
//! `key.schema.id.serializer`, …: [`Config::codec_options`]) configure the [`Codec`]. OAuth
//! client credentials for Kafka (`sasl.oauthbearer.method=oidc` with
//! `sasl.oauthbearer.client.id`, …) are handled by the library itself, so that the SASL
//! extensions Confluent Cloud needs (`logicalCluster`, `identityPoolId`) reach the broker.
//! Token endpoints (`sasl.oauthbearer.token.endpoint.url`, `bearer.auth.issuer.endpoint.url`)
//! must be `https://` URLs, so that client secrets never cross a network in clear text;
//! `http://` is accepted only for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`), where
//! local test identity providers run. The same holds for `schema.registry.url` whenever
//! credentials go to the registry (basic auth, an API key in the URL, a static or OAuth bearer
//! token): an `http://` URL of another host is a configuration error naming
//! `schema.registry.url`; without credentials any `http://` URL is accepted. Likewise
//! `security.protocol=SASL_PLAINTEXT` (SASL credentials and records in clear text) is accepted
//! only when every broker of `bootstrap.servers` is a loopback host, as the local stacks' are;
//! towards any other broker it is a configuration error naming `security.protocol`, unless
//! `sasl.plaintext.allow.remote=true` says the network is trusted.
//!
//! Environment variables override the file, under a prefix the application chooses
//! ([`Config::with_env_overrides`]): with prefix `MYAPP_`, `MYAPP_BOOTSTRAP_SERVERS` sets
//! `bootstrap.servers` (upper case, `.` written as `_`). Only variables that name a property
//! librdkafka or this library knows become properties; any other `MYAPP_*` variable (the
//! application's own `MYAPP_CONFIG`, a test suite's switches) is left alone.
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
//! The settings are parsed once, into the typed value every factory of a
//! [`Client`](crate::Client) uses. The code is split by what it configures: which property
//! names exist and which are secrets (`properties`), Kafka (`kafka`: the properties of each
//! kind of client, the library's librdkafka defaults, OAuth; `plaintext`: `SASL_PLAINTEXT`
//! towards loopback brokers only), the Schema Registry and the
//! serializer (`registry`), and the parsed settings with the consumer and dead-letter ones
//! (`settings`).
//!
//! [`Codec`]: crate::Codec

use std::{collections::BTreeMap, fmt, fs::File, io::BufReader, path::Path};

use crate::{Error, Result};

mod kafka;
mod plaintext;
mod properties;
mod registry;
mod settings;

pub(crate) use kafka::KafkaSettings;
pub use kafka::{ClientRole, KafkaOAuthSettings};
pub(crate) use properties::{is_known_property, is_secret_key};
pub(crate) use registry::RegistrySettings;
pub use registry::{OAuthSettings, RegistryOAuthSettings};
pub use settings::SchemaUnavailable;
pub(crate) use settings::Settings;

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

    /// Applies overrides from the process environment variables whose names start with
    /// `prefix`, the application's choice (`"MYAPP_"`); see [`Config::with_overrides_from`].
    pub fn with_env_overrides(self, prefix: &str) -> Self {
        self.with_overrides_from(prefix, std::env::vars())
    }

    /// Applies overrides from `vars` named like environment variables under `prefix`.
    ///
    /// With prefix `MYAPP_`, `MYAPP_LINGER_MS=5` sets `linger.ms`: the name after the prefix,
    /// lower case, with `_` written as `.`. A variable becomes a property only when that key is
    /// a property librdkafka knows or one the library reads (`schema.registry.url`,
    /// `basic.auth.*`, `bearer.auth.*`, the OAuth keys, …); other `MYAPP_*`
    /// variables, such as the application's own `MYAPP_CONFIG`, are ignored. Variables without
    /// the prefix are never read.
    pub fn with_overrides_from(
        mut self,
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(prefix).filter(|r| !r.is_empty()) else {
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

    pub(super) const CLOUD_API_KEY: &str = "\
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
    fn environment_overrides_the_file() {
        let c = config("bootstrap.servers=file:9092").with_overrides_from(
            "GROCERY_",
            [
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
            ],
        );
        assert_eq!(c.get("bootstrap.servers"), Some("env:9092"));
        assert_eq!(c.get("schema.registry.url"), Some("http://env"));
        assert_eq!(c.iter().count(), 2);
    }

    #[test]
    fn only_variables_naming_a_property_override() {
        let c = config("bootstrap.servers=file:9092").with_overrides_from(
            "GROCERY_",
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
    fn the_prefix_is_the_applications() {
        let vars = [
            ("MYAPP_LINGER_MS", "9"),
            ("GROCERY_BOOTSTRAP_SERVERS", "grocery:9092"),
            ("MYAPP_CONFIG", "/etc/myapp.properties"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = config("bootstrap.servers=file:9092").with_overrides_from("MYAPP_", vars);
        let set: Vec<(&str, &str)> = c.iter().collect();
        assert_eq!(
            set,
            [("bootstrap.servers", "file:9092"), ("linger.ms", "9")],
            "only MYAPP_ variables naming a property override"
        );
    }
}
