//! Every setting of a [`Config`], parsed and checked once: what [`Config::validate`] checks
//! and every factory of a [`Client`](crate::Client) uses.

use crate::{CodecOptions, Error, Result};

use super::{Config, KafkaSettings, RegistrySettings, properties::check_with_librdkafka};

/// Every setting of a [`Config`], parsed and checked once ([`Settings::parse`], which
/// [`Config::validate`] is): the [`Client`](crate::Client) keeps it, and its producers,
/// consumers, pipelines and replays are built from it without reading a property again.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The Kafka clients' properties with the library's defaults, and Kafka OAuth.
    pub(crate) kafka: KafkaSettings,
    /// The Schema Registry (its OAuth token source is created by the client).
    pub(crate) registry: RegistrySettings,
    /// The serializer settings.
    pub(crate) codec: CodecOptions,
    /// `dlq.topic.suffix`.
    pub(crate) dlq_suffix: String,
    /// `schema.unavailable.action`.
    pub(crate) schema_unavailable: SchemaUnavailable,
    /// `use.latest.with.metadata` (empty: off).
    pub(crate) latest_metadata: std::collections::BTreeMap<String, String>,
}

impl Settings {
    /// Parses and checks every setting of `config`. Sends no request and creates no HTTP
    /// client.
    ///
    /// # Errors
    /// [`Error::Config`] for the first problem found, naming the missing or bad key.
    pub(crate) fn parse(config: &Config) -> Result<Self> {
        config.require("bootstrap.servers", "the Kafka cluster's host:port list")?;
        for (key, value) in config.kafka_properties() {
            check_with_librdkafka(key, value)?;
        }
        let kafka = KafkaSettings::parse(config)?;
        let registry = config.registry_settings()?;
        let codec = config.codec_options()?;
        let latest_metadata = config.latest_metadata()?;
        let dlq_suffix = config.dead_letter_suffix()?.to_owned();
        let schema_unavailable = config.schema_unavailable()?;
        Ok(Self {
            kafka,
            registry,
            codec,
            latest_metadata,
            dlq_suffix,
            schema_unavailable,
        })
    }
}

/// What a consumer does with a record whose writer schema cannot be fetched (the registry has
/// no schema under its id, [`Error::UnknownSchemaId`]: not registered yet, or
/// `schema.registry.url` names the wrong registry) or used ([`Error::UnusableSchema`]). Such a
/// record is not poison: its bytes may decode once the schema is there, so it is never
/// dead-lettered and its offset is never committed past; the consumer waits or stops, as
/// Confluent's deserializers raise rather than skip. Set with `schema.unavailable.action` in
/// `client.properties` or
/// [`ConsumerOptions::schema_unavailable`](crate::ConsumerOptions::schema_unavailable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SchemaUnavailable {
    /// Wait it out (`wait`, the default): the record is tried again with backoff
    /// ([`ConsumerOptions::initial_backoff`](crate::ConsumerOptions::initial_backoff) doubling to
    /// 10 s, jittered, a warning per try, [`ConsumerOptions::max_retries`] times), and
    /// [`Consumer::waiting_on`](crate::Consumer::waiting_on) says why the consumer is waiting, for
    /// a health check to report. Once the schema can be fetched the record is decoded and handed
    /// out.
    ///
    /// [`ConsumerOptions::max_retries`]: crate::ConsumerOptions::max_retries
    #[default]
    Wait,
    /// Stop (`fail`): [`Consumer::recv`](crate::Consumer::recv) returns the error
    /// ([`Error::UnknownSchemaId`] or [`Error::UnusableSchema`], naming the schema id), and
    /// returns it again for the same record on the next call; a [`Pipeline`](crate::Pipeline)
    /// ends with it.
    Fail,
}

impl Config {
    /// Checks that everything needed to connect is present and well-formed, as
    /// [`Client::from_config`](crate::Client::from_config) does (parsing every setting once;
    /// no request is sent). The error names the missing or bad key.
    ///
    /// # Errors
    /// [`Error::Config`] for the first problem found.
    pub fn validate(&self) -> Result<()> {
        Settings::parse(self).map(drop)
    }

    /// What consumers do with a record whose writer schema cannot be fetched or used
    /// (`schema.unavailable.action`: `wait`, the default, or `fail`; see
    /// [`SchemaUnavailable`]). A consumer's
    /// [`ConsumerOptions::schema_unavailable`](crate::ConsumerOptions::schema_unavailable)
    /// wins when set.
    ///
    /// # Errors
    /// [`Error::Config`] for any other value.
    pub fn schema_unavailable(&self) -> Result<SchemaUnavailable> {
        let key = "schema.unavailable.action";
        match self
            .properties
            .get(key)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => Ok(SchemaUnavailable::default()),
            Some(value) if value == "wait" => Ok(SchemaUnavailable::Wait),
            Some(value) if value == "fail" => Ok(SchemaUnavailable::Fail),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_properties_str(text).unwrap()
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
    fn schema_unavailable_action_is_read_and_checked() {
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
}
