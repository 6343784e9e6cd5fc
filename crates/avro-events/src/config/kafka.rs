//! librdkafka: which properties go to which kind of client, the library's defaults (the one
//! place they are set), and OAuth for Kafka.

use crate::{Error, Result};

use super::{
    Config,
    properties::{JAVA_ONLY_KEYS, KAFKA_OIDC_KEYS, LIBRARY_KEYS},
    registry::OAuthSettings,
};

/// librdkafka properties only consumers use (librdkafka warns when a producer gets them).
pub(super) const CONSUMER_ONLY_KEYS: &[&str] = &[
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
pub(super) const PRODUCER_ONLY_KEYS: &[&str] = &[
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

/// Kafka OAUTHBEARER settings: client credentials plus the SASL extensions.
#[derive(Debug, Clone)]
pub struct KafkaOAuthSettings {
    /// The client credentials.
    pub credentials: OAuthSettings,
    /// SASL extensions, e.g. `logicalCluster` and `identityPoolId`.
    pub extensions: Vec<(String, String)>,
}

impl Config {
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
}

/// The properties the library sets where the configuration says nothing, for every producer.
/// Idempotence (so `acks=all`): no duplicates from librdkafka's retries.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[("enable.idempotence", "true")];

/// The properties the library sets where the configuration says nothing, for every consumer:
/// offsets committed automatically (of the records the application finished: see
/// [`FORCED_CONSUMER`]), a new group starts at the beginning, only committed transactional
/// records are read, and the records fetched ahead of the application are bounded
/// ([`PREFETCH_DEFAULTS`]).
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "true"),
    ("auto.offset.reset", "earliest"),
    ("isolation.level", "read_committed"),
    PREFETCH_DEFAULTS[0],
    PREFETCH_DEFAULTS[1],
    PREFETCH_DEFAULTS[2],
];

/// How far a consumer (a typed consumer, a pipeline's, a replay) fetches ahead of the
/// application. librdkafka's own defaults let each consumer queue 100,000 records per
/// partition or 64 MiB (`queued.min.messages`, `queued.max.messages.kbytes`), plus its
/// bookkeeping for each record, which the byte count leaves out: a consumer behind a backlog
/// of small records held over 100 MiB. The library queues at most 10,000 records or 16 MB per
/// consumer (librdkafka's "kbytes" are thousands of bytes; one fetch may overshoot either by
/// up to `max.partition.fetch.bytes`), and fetches again 100 ms after the queue was full
/// instead of 1 s (`fetch.queue.backoff.ms`), so that the smaller queue does not run dry
/// while it waits. A `client.properties` that sets any of them keeps its value.
const PREFETCH_DEFAULTS: [(&str, &str); 3] = [
    ("queued.min.messages", "10000"),
    ("queued.max.messages.kbytes", "16384"),
    ("fetch.queue.backoff.ms", "100"),
];

/// What every consumer gets whatever the configuration says: only offsets of finished records
/// are stored (by [`Consumer::ack`](crate::Consumer::ack)), and those are committed.
const FORCED_CONSUMER: &[(&str, &str)] = &[("enable.auto.offset.store", "false")];

impl Config {
    /// The rdkafka configuration of a consumer in group `group` (unless `group.id` is set),
    /// with the library's consumer defaults where the properties say nothing: offsets stored
    /// only for finished records and committed automatically (`enable.auto.offset.store=false`,
    /// `enable.auto.commit=true`), `auto.offset.reset=earliest`, `isolation.level=read_committed`,
    /// and a bounded prefetch (`queued.min.messages=10000`, `queued.max.messages.kbytes=16384`,
    /// `fetch.queue.backoff.ms=100`: at most 10,000 records or 16 MB fetched ahead of the
    /// application, where librdkafka's defaults allow 100,000 per partition or 64 MiB).
    pub fn rdkafka_consumer_config(&self, group: &str) -> rdkafka::ClientConfig {
        let mut rd = self.rdkafka_config_for(ClientRole::Consumer);
        if self.get("group.id").is_none() {
            rd.set("group.id", group);
        }
        for (key, value) in FORCED_CONSUMER {
            rd.set(*key, *value);
        }
        self.set_defaults(&mut rd, CONSUMER_DEFAULTS);
        rd
    }

    /// Sets each of `defaults` on `rd` that the configuration does not set.
    fn set_defaults(&self, rd: &mut rdkafka::ClientConfig, defaults: &[(&str, &str)]) {
        for (key, default) in defaults {
            if self.get(key).is_none() {
                rd.set(*key, *default);
            }
        }
    }
}

/// The Kafka side of the [`Settings`](super::Settings): the librdkafka configuration of each
/// kind of client, built once with the library's defaults, and OAuth.
#[derive(Clone)]
pub(crate) struct KafkaSettings {
    /// A plain producer's configuration (no `transactional.id`).
    producer: rdkafka::ClientConfig,
    /// A transactional producer's, when `transactional.id` is set.
    transactional: Option<rdkafka::ClientConfig>,
    /// A consumer's, with the group still to be set when `group.id` is not.
    consumer: rdkafka::ClientConfig,
    /// Whether the configuration sets `group.id`.
    group_id_set: bool,
    /// Whether the configuration asks for `enable.auto.commit=true` explicitly.
    auto_commit_asked: bool,
    /// SASL/OAUTHBEARER through the library (`sasl.oauthbearer.method=oidc`).
    pub(crate) oauth: Option<KafkaOAuthSettings>,
    /// `sasl.mechanisms`, for the errors of refused credentials.
    pub(crate) mechanism: Option<String>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The rdkafka configurations hold secrets; the Config's own Debug shows them redacted.
        f.debug_struct("KafkaSettings")
            .field("transactional", &self.transactional.is_some())
            .field("oauth", &self.oauth)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl KafkaSettings {
    /// Reads the Kafka settings of `config`.
    ///
    /// # Errors
    /// As [`Config::kafka_oauth`].
    pub(crate) fn parse(config: &Config) -> Result<Self> {
        config.check_sasl_plaintext()?;
        let oauth = config.kafka_oauth()?;
        let mut producer = config.rdkafka_config_for(ClientRole::Producer);
        config.set_defaults(&mut producer, PRODUCER_DEFAULTS);
        let transactional = config.transactional_id().map(|_| producer.clone());
        if producer.get("transactional.id").is_some() {
            producer.remove("transactional.id");
            producer.remove("transaction.timeout.ms");
        }
        let mut consumer = config.rdkafka_config_for(ClientRole::Consumer);
        for (key, value) in FORCED_CONSUMER {
            consumer.set(*key, *value);
        }
        config.set_defaults(&mut consumer, CONSUMER_DEFAULTS);
        Ok(Self {
            producer,
            transactional,
            consumer,
            group_id_set: config.get("group.id").is_some(),
            auto_commit_asked: config
                .get("enable.auto.commit")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            oauth,
            mechanism: config
                .get("sasl.mechanisms")
                .or_else(|| config.get("sasl.mechanism"))
                .map(str::to_owned),
        })
    }

    /// Whether `transactional.id` is set (pipelines then use Kafka transactions).
    pub(crate) fn transactional(&self) -> bool {
        self.transactional.is_some()
    }

    /// The configuration of a producer: a plain one leaves `transactional.id` out (so one
    /// `client.properties` serves a pipeline and plain producers alike); a transactional one
    /// needs it.
    ///
    /// # Errors
    /// [`Error::Config`] for a transactional producer without `transactional.id`.
    pub(crate) fn producer(&self, transactional: bool) -> Result<rdkafka::ClientConfig> {
        if !transactional {
            return Ok(self.producer.clone());
        }
        self.transactional.clone().ok_or_else(|| Error::Config {
            key: "transactional.id".into(),
            reason: "needed for a transactional producer".into(),
        })
    }

    /// The configuration of a consumer in group `group` (unless `group.id` is set); with
    /// `commits` false (a transactional consumer commits only inside transactions, a replay
    /// never) automatic commits are off whatever the configuration says.
    pub(crate) fn consumer(&self, group: &str, commits: bool) -> rdkafka::ClientConfig {
        let mut rd = self.consumer.clone();
        if !self.group_id_set {
            rd.set("group.id", group);
        }
        if !commits {
            if self.auto_commit_asked {
                tracing::warn!(
                    "enable.auto.commit=true is ignored: a transactional consumer commits only \
                     inside transactions, a replay never commits"
                );
            }
            rd.set("enable.auto.commit", "false");
        }
        rd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(text: &str) -> Config {
        Config::from_properties_str(text).unwrap()
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
    fn the_library_defaults_fill_only_what_the_configuration_leaves_out() {
        let plain =
            config("bootstrap.servers=b:9092\ntransactional.id=t1\nsession.timeout.ms=6000\n");
        let kafka = KafkaSettings::parse(&plain).unwrap();
        let producer = kafka.producer(false).unwrap();
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(
            producer.get("transactional.id"),
            None,
            "left to the pipeline"
        );
        let transactional = kafka.producer(true).unwrap();
        assert_eq!(transactional.get("transactional.id"), Some("t1"));
        let consumer = kafka.consumer("g", true);
        for (key, value) in [
            ("group.id", "g"),
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("session.timeout.ms", "6000"),
            ("queued.min.messages", "10000"),
            ("queued.max.messages.kbytes", "16384"),
            ("fetch.queue.backoff.ms", "100"),
        ] {
            assert_eq!(consumer.get(key), Some(value), "{key}");
        }
        // Producers get none of the consumers' defaults (librdkafka would warn).
        assert_eq!(producer.get("queued.min.messages"), None);
        assert_eq!(
            kafka.consumer("g", false).get("enable.auto.commit"),
            Some("false")
        );

        let own = config(
            "bootstrap.servers=b:9092\nenable.idempotence=false\ngroup.id=mine\n\
             auto.offset.reset=latest\nenable.auto.offset.store=true\n",
        );
        let kafka = KafkaSettings::parse(&own).unwrap();
        assert_eq!(
            kafka.producer(false).unwrap().get("enable.idempotence"),
            Some("false")
        );
        let err = kafka.producer(true).unwrap_err();
        assert!(matches!(err, Error::Config { ref key, .. } if key == "transactional.id"));
        let consumer = kafka.consumer("g", true);
        assert_eq!(consumer.get("group.id"), Some("mine"));
        assert_eq!(consumer.get("auto.offset.reset"), Some("latest"));
        // Only finished records' offsets are stored, whatever the configuration says.
        assert_eq!(consumer.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(
            own.rdkafka_consumer_config("g")
                .get("enable.auto.offset.store"),
            Some("false")
        );
    }
}
