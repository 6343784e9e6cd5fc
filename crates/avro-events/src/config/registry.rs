//! The Schema Registry and serializer settings, and OAuth client credentials.

use std::{fmt, sync::Arc, time::Duration};

use secrecy::SecretString;

use crate::{
    Codec, CodecOptions, Error, Result, SubjectNameStrategy,
    auth::{OAuthClientCredentials, TokenProvider},
    registry::{RegistryAuth, RegistryConfig},
};

use super::Config;

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

impl OAuthSettings {
    /// A token source for these client credentials (creates its HTTP client; sends nothing).
    ///
    /// # Errors
    /// [`Error::Auth`] when the HTTP client cannot be created.
    pub(crate) fn token_provider(&self) -> Result<TokenProvider> {
        let mut credentials = OAuthClientCredentials::new(
            self.token_endpoint.clone(),
            self.client_id.clone(),
            self.client_secret.clone(),
        );
        if let Some(scope) = &self.scope {
            credentials = credentials.with_scope(scope.clone());
        }
        TokenProvider::new(credentials)
    }
}

/// The Schema Registry side of the [`Settings`](super::Settings): everything but the OAuth
/// token source, which the client creates (one per identity, shared with Kafka's).
#[derive(Debug, Clone)]
pub(crate) struct RegistrySettings {
    /// The registry's settings; with OAuth, its `auth` is set by [`RegistrySettings::config`].
    config: RegistryConfig,
    /// `bearer.auth.credentials.source=OAUTHBEARER`.
    pub(crate) oauth: Option<RegistryOAuthSettings>,
}

impl RegistrySettings {
    /// The registry's settings, its bearer tokens (with OAuth) coming from `provider`.
    pub(crate) fn config(&self, provider: Option<Arc<TokenProvider>>) -> RegistryConfig {
        let mut config = self.config.clone();
        if let (Some(oauth), Some(provider)) = (&self.oauth, provider) {
            config.auth = RegistryAuth::OAuth {
                provider,
                logical_cluster: oauth.logical_cluster.clone(),
                identity_pool_id: oauth.identity_pool_id.clone(),
            };
        }
        config
    }
}

impl Config {
    /// The Schema Registry settings. With `bearer.auth.credentials.source=OAUTHBEARER`, a
    /// token source of its own is created for them (a [`Client`](crate::Client) shares one
    /// per identity instead).
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or malformed key, or `schema.registry.url` when
    /// credentials would go over `http://` to a host that is not loopback.
    pub fn registry_config(&self) -> Result<RegistryConfig> {
        let settings = self.registry_settings()?;
        let provider = match &settings.oauth {
            Some(oauth) => Some(Arc::new(oauth.credentials.token_provider()?)),
            None => None,
        };
        Ok(settings.config(provider))
    }

    /// The Schema Registry settings but the OAuth token source.
    pub(crate) fn registry_settings(&self) -> Result<RegistrySettings> {
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
        let mut oauth = None;
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
                    oauth = Some(self.registry_oauth()?.ok_or_else(|| Error::Config {
                        key: "bearer.auth.credentials.source".into(),
                        reason: "OAUTHBEARER settings are incomplete".into(),
                    })?);
                    RegistryAuth::None
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
        match oauth {
            Some(_) => crate::registry::check_clear_text_sending(&config.urls, |_| {
                Some(crate::registry::OAUTH_CREDENTIALS)
            })?,
            None => crate::registry::check_clear_text(&config.urls, &config.auth)?,
        }
        Ok(RegistrySettings { config, oauth })
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
    /// `avro.max.allocation.bytes`, `value.schema.id.serializer` and
    /// `key.schema.id.serializer`: `prefix` or `header`, or Confluent's class names
    /// `io.confluent.kafka.serializers.schema.id.PrefixSchemaIdSerializer` /
    /// `HeaderSchemaIdSerializer`).
    ///
    /// # Errors
    /// [`Error::Config`] for a value that is not a boolean, a known strategy or a known schema
    /// id serializer.
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
            .with_subject_strategy(strategy)
            .with_schema_id_serializers(
                self.placement("value.schema.id.serializer")?,
                self.placement("key.schema.id.serializer")?,
            );
        Ok(options)
    }

    /// Where `key` (`value.schema.id.serializer` or `key.schema.id.serializer`) puts schema
    /// ids; the prefix when unset.
    fn placement(&self, key: &str) -> Result<crate::wire::SchemaIdPlacement> {
        self.get(key)
            .map_or(Ok(crate::wire::SchemaIdPlacement::Prefix), |value| {
                value.parse().map_err(|reason| Error::Config {
                    key: key.into(),
                    reason,
                })
            })
    }
}

impl Config {
    /// `use.latest.with.metadata` (`key=value` pairs separated by commas, as Confluent's Java
    /// client reads it): write with the latest version of the subject whose metadata
    /// properties include them ([`Codec::with_latest_metadata`]). Empty when not set.
    ///
    /// # Errors
    /// [`Error::Config`] for a pair that is not `key=value`.
    pub fn latest_metadata(&self) -> Result<std::collections::BTreeMap<String, String>> {
        self.get("use.latest.with.metadata").map_or_else(
            || Ok(Default::default()),
            crate::rules::parse_latest_metadata,
        )
    }
}

impl Codec {
    /// A codec configured from `schema.registry.url`, `basic.auth.*`/`bearer.auth.*`,
    /// `auto.register.schemas`, `use.latest.version`, `use.latest.with.metadata` and
    /// `value.subject.name.strategy`. With
    /// OAuth, the
    /// codec gets a token source of its own; a [`Client`](crate::Client) shares one per
    /// identity ([`Client::codec`](crate::Client::codec)).
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad key, as [`Config::registry_config`] and
    /// [`Config::codec_options`].
    pub fn from_config(config: &Config) -> Result<Self> {
        Ok(
            Self::new(&config.registry_config()?, config.codec_options()?)?
                .with_latest_metadata(config.latest_metadata()?),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, tests::CLOUD_API_KEY};
    use std::collections::BTreeMap;

    fn config(text: &str) -> Config {
        Config::from_properties_str(text).unwrap()
    }

    #[test]
    fn use_latest_with_metadata_is_a_registry_property_of_pairs() {
        let c = config(
            "bootstrap.servers=localhost:9092\nschema.registry.url=http://localhost:8081\n\
             use.latest.with.metadata=contract=order-lines,owner=grocery\n",
        );
        let pairs = c.latest_metadata().unwrap();
        assert_eq!(
            pairs.get("contract").map(String::as_str),
            Some("order-lines")
        );
        assert_eq!(pairs.len(), 2);
        let kafka: BTreeMap<_, _> = c.kafka_properties().collect();
        assert!(!kafka.contains_key("use.latest.with.metadata"));
        let bad = config("use.latest.with.metadata=nothing\n");
        let err = bad.latest_metadata().unwrap_err();
        assert!(
            err.to_string().contains("use.latest.with.metadata"),
            "{err}"
        );
    }

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
    fn codec_options_follow_confluent_names() {
        let c = config(
            "auto.register.schemas=false\nuse.latest.version=true\n\
             value.subject.name.strategy=io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
        );
        let o = c.codec_options().unwrap();
        assert!(!o.auto_register && o.use_latest_version);
        assert_eq!(
            o.max_allocation_bytes,
            crate::CodecOptions::DEFAULT_MAX_ALLOCATION_BYTES
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

    #[test]
    fn schema_id_serializers_take_confluent_class_names() {
        use crate::wire::SchemaIdPlacement;
        let c = config(
            "value.schema.id.serializer=io.confluent.kafka.serializers.schema.id.HeaderSchemaIdSerializer",
        );
        let o = c.codec_options().unwrap();
        assert_eq!(o.value_schema_id_serializer, SchemaIdPlacement::Header);
        assert_eq!(o.key_schema_id_serializer, SchemaIdPlacement::Prefix);
        let err = c
            .set("key.schema.id.serializer", "DualSchemaIdDeserializer")
            .codec_options()
            .unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "key.schema.id.serializer"));
    }
}
