//! Dead-letter records: a record that can never be decoded is copied, with its original key,
//! value and headers, to a dead-letter topic (`<topic>.dlq` unless configured), with headers
//! naming the error and where the record came from. The suffix is configurable with
//! `dlq.topic.suffix` ([`Config::dead_letter_suffix`](crate::Config::dead_letter_suffix)), and
//! a consumer can name its own dead-letter topic
//! ([`ConsumerOptions::dead_letter_topic`](crate::ConsumerOptions::dead_letter_topic)).

#[cfg(feature = "kafka")]
use rdkafka::{
    Message,
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
};

#[cfg(feature = "kafka")]
use crate::{Error, RecordLocation};

/// Headers a dead-letter record carries, besides the original record's own headers.
pub mod headers {
    /// Stable name of the error ([`Error::kind`](crate::Error::kind)).
    pub const ERROR_KIND: &str = "dlq.error.kind";
    /// The error's message.
    pub const ERROR_MESSAGE: &str = "dlq.error.message";
    /// Topic the record was read from.
    pub const SOURCE_TOPIC: &str = "dlq.source.topic";
    /// Partition the record was read from.
    pub const SOURCE_PARTITION: &str = "dlq.source.partition";
    /// Offset of the record.
    pub const SOURCE_OFFSET: &str = "dlq.source.offset";
}

/// Suffix appended to a topic's name to name its dead-letter topic.
pub const DLQ_SUFFIX: &str = ".dlq";

/// The default dead-letter topic of `topic`: `<topic>.dlq`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// The dead-letter topic of records read from `source_topic`: `configured`, or
/// `<source_topic><suffix>` (the suffix is `dlq.topic.suffix`, by default `.dlq`).
#[cfg(feature = "kafka")]
pub(crate) fn topic_for(configured: Option<&str>, source_topic: &str, suffix: &str) -> String {
    configured.map_or_else(|| format!("{source_topic}{suffix}"), str::to_owned)
}

/// The original headers of `message`, read at `location`, plus the dead-letter headers naming
/// `error` and the location.
#[cfg(feature = "kafka")]
pub(crate) fn headers_for(
    message: &OwnedMessage,
    location: &RecordLocation,
    error: &Error,
) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let message_text = error.to_string();
    let partition = location.partition.to_string();
    let offset = location.offset.to_string();
    for (key, value) in [
        (headers::ERROR_KIND, error.kind()),
        (headers::ERROR_MESSAGE, message_text.as_str()),
        (headers::SOURCE_TOPIC, location.topic.as_str()),
        (headers::SOURCE_PARTITION, partition.as_str()),
        (headers::SOURCE_OFFSET, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}
