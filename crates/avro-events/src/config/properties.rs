//! Which property names exist: the library's own keys, the keys librdkafka knows (asked of
//! librdkafka itself), and which values are secrets.

use rdkafka::{error::KafkaError, types::RDKafkaConfRes};

use crate::{Error, Result};

/// Properties read by the library and never passed to librdkafka.
pub(super) const LIBRARY_KEYS: &[&str] = &[
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
    "use.latest.with.metadata",
    "use.schema.id",
    "normalize.schemas",
    "value.subject.name.strategy",
    "avro.max.allocation.bytes",
    "value.schema.id.serializer",
    "key.schema.id.serializer",
    "dlq.topic.suffix",
    "schema.unavailable.action",
    super::plaintext::ALLOW_REMOTE_KEY,
];

/// Kafka OAuth properties the library handles itself when `sasl.oauthbearer.method=oidc`.
pub(super) const KAFKA_OIDC_KEYS: &[&str] = &[
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions",
];

/// Properties of Java clients that librdkafka does not know; Confluent Cloud's console puts
/// them in `client.properties`. They are ignored.
pub(super) const JAVA_ONLY_KEYS: &[&str] = &["client.dns.lookup", "sasl.jaas.config"];

/// Whether the value of `key` is a secret that must never be shown.
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("user.info")
        || key.contains("jaas")
        || key == "bearer.auth.token"
        || key == "sasl.oauthbearer.config"
        || key.ends_with(".pem")
}

/// Whether `key` is a property a [`Config`](crate::Config) uses: one librdkafka knows (its client
/// and topic properties), or one the library reads itself (Schema Registry, serializer and OAuth
/// keys).
pub(crate) fn is_known_property(key: &str) -> bool {
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
pub(super) fn check_with_librdkafka(key: &str, value: &str) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(text: &str) -> Config {
        Config::from_properties_str(text).unwrap()
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
}
