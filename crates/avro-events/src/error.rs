//! The library's error type.

use std::fmt;

/// Where a record came from, attached to decode errors when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLocation {
    /// Topic the record was read from.
    pub topic: String,
    /// Partition the record was read from.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}

/// A record a failed rule with the `DLQ` action sends to its dead-letter topic (carried by
/// [`Error::RuleFailed`]; the producer sends it before returning
/// the error).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The rule's `dlq.topic` parameter.
    pub topic: String,
    /// The record's value as JSON (before any transform ran), as Confluent's clients write it.
    pub value: Vec<u8>,
    /// The `__rule.*` headers ([`headers`](crate::rules::headers)).
    pub headers: Vec<(String, String)>,
}

/// The Kafka operation an [`Error::Kafka`] or [`Error::Fatal`] failed in, to match on instead
/// of a message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KafkaOperation {
    /// Creating a producer (librdkafka refused the configuration).
    CreateProducer,
    /// Creating a consumer (librdkafka refused the configuration).
    CreateConsumer,
    /// Subscribing a consumer to its topics.
    Subscribe,
    /// Assigning partitions to a consumer by hand, or reading their metadata and end offsets
    /// first ([`Replay`](crate::Replay)).
    Assign,
    /// Producing a record (queueing it or its delivery).
    Produce,
    /// Waiting for queued records to be acknowledged.
    Flush,
    /// Reading records.
    Consume,
    /// Storing an acknowledged offset.
    StoreOffset,
    /// Committing offsets.
    Commit,
    /// Moving a consumer's position.
    Seek,
    /// Initialising a transactional producer (fencing earlier instances).
    InitTransactions,
    /// Beginning a transaction.
    BeginTransaction,
    /// Sending consumed offsets to a transaction.
    SendOffsetsToTransaction,
    /// Committing a transaction.
    CommitTransaction,
    /// Aborting a transaction.
    AbortTransaction,
}

impl KafkaOperation {
    /// The operation in words, as error messages show it (e.g. `commit transaction`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateProducer => "create producer",
            Self::CreateConsumer => "create consumer",
            Self::Subscribe => "subscribe",
            Self::Assign => "assign partitions",
            Self::Produce => "produce",
            Self::Flush => "flush",
            Self::Consume => "consume",
            Self::StoreOffset => "store offset",
            Self::Commit => "commit",
            Self::Seek => "seek",
            Self::InitTransactions => "init transactions",
            Self::BeginTransaction => "begin transaction",
            Self::SendOffsetsToTransaction => "send offsets to transaction",
            Self::CommitTransaction => "commit transaction",
            Self::AbortTransaction => "abort transaction",
        }
    }
}

impl fmt::Display for KafkaOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in `avro-events`.
///
/// Variants name what failed and carry the context needed to act on it (schema id, subject,
/// topic/partition/offset, configuration key). No variant ever carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The payload has no bytes at all, so it cannot be Confluent-framed Avro.
    #[error("empty payload: not in Confluent wire format (expected magic byte 0 and a schema id)")]
    EmptyPayload,
    /// The first byte is not Confluent's magic byte `0`.
    #[error("not in Confluent wire format: first byte is {found:#04x}, expected magic byte 0x00")]
    BadMagicByte {
        /// The byte found where the magic byte should be.
        found: u8,
    },
    /// The payload ends inside the 5-byte Confluent header.
    #[error("truncated Confluent header: {len} bytes, need at least 5 (magic byte and schema id)")]
    TruncatedHeader {
        /// Length of the payload.
        len: usize,
    },
    /// A record's `__value_schema_id` / `__key_schema_id` header is not a schema id (magic byte
    /// 1 and a 16-byte GUID, or magic byte 0 and a 4-byte id).
    #[error("bad schema id header: {reason}")]
    BadSchemaIdHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// The Schema Registry has no schema with this id (HTTP 404, error code 40403): the schema
    /// is not there yet, or the client asks the wrong registry. Not a property of the record's
    /// bytes, so a consumer never dead-letters for it ([`Error::is_schema_unavailable`]).
    #[error("unknown schema id {id}: the Schema Registry at {registry} has no such schema")]
    UnknownSchemaId {
        /// The schema id read from the payload.
        id: u32,
        /// URL of the registry that was asked.
        registry: String,
    },
    /// The Schema Registry has no schema with this GUID (HTTP 404, error code 40403), read from
    /// a record's `__value_schema_id` / `__key_schema_id` header. Like
    /// [`Error::UnknownSchemaId`], an outage rather than poison ([`Error::is_schema_unavailable`]).
    #[error("unknown schema GUID {guid}: the Schema Registry at {registry} has no such schema")]
    UnknownSchemaGuid {
        /// The GUID read from the header.
        guid: uuid::Uuid,
        /// URL of the registry that was asked.
        registry: String,
    },
    /// The Schema Registry has a schema with this id, but this codec cannot use it as a writer
    /// schema: it does not parse as Avro here (not Avro at all, or a reference the registry
    /// cannot serve), or it is refused (arrays whose items encode to zero bytes). For a writer
    /// named by GUID, `id` is 0 and `reason` names the GUID. Not a property of the record's bytes, so a consumer never dead-letters for it
    /// ([`Error::is_schema_unavailable`]).
    #[error("schema id {id} from the Schema Registry at {registry} cannot be used: {reason}")]
    UnusableSchema {
        /// The schema id read from the payload.
        id: u32,
        /// URL of the registry that answered.
        registry: String,
        /// Why the schema cannot be used.
        reason: String,
    },
    /// A data-contract rule of the schema failed (a `CONDITION` that did not hold, a `TRANSFORM`
    /// whose result does not fit the schema, or an expression that raised an error) and its
    /// action is `ERROR` or `DLQ` (see [`crate::rules`]). With `DLQ` on the producer side,
    /// `dead_letter` is the record the producer sent to the rule's `dlq.topic` (when that write
    /// fails, the producer returns [`Error::DeadLetterFailed`] instead); on the consumer side
    /// the record is poison ([`Error::is_poison`]) and is dead-lettered as it is.
    #[error("rule '{rule}' of subject '{subject}' failed on {mode}: {reason}")]
    RuleFailed {
        /// The subject whose schema carries the rule (empty when decoding without a topic).
        subject: String,
        /// The rule's name.
        rule: String,
        /// `WRITE` or `READ`.
        mode: &'static str,
        /// Why it failed.
        reason: String,
        /// Whether the rule's action is `DLQ`.
        dlq: bool,
        /// For the `DLQ` action on encoding: what goes to the dead-letter topic.
        dead_letter: Option<Box<DeadLetter>>,
    },
    /// A record was to go to a dead-letter topic (`cause`: why) and could not be written there
    /// (`source`: the broker refused the write, the record was too large, the delivery timed
    /// out). On the producer side `cause` is a data-contract rule's failure with the `DLQ`
    /// action ([`Error::RuleFailed`]): the record is on neither topic. On the consumer side it
    /// is the poison record's error ([`Error::is_poison`]): the record is neither acknowledged
    /// nor passed over, and the next receive writes its dead letter again.
    /// [`Error::is_refused`] answers for the dead-letter write (`source`).
    #[error("{cause}; its dead letter could not be written to '{topic}': {source}")]
    DeadLetterFailed {
        /// Why the record was to be dead-lettered.
        cause: Box<Error>,
        /// The dead-letter topic.
        topic: String,
        /// Why the dead letter was not written.
        source: Box<Error>,
    },
    /// A schema's rule set has a rule this library does not run (migration rules, encoding
    /// rules, rule types other than CEL and CEL_FIELD, unknown actions, or any domain rule in a
    /// build without the `rules` feature): it is refused rather than ignored.
    #[error("rule '{rule}' of subject '{subject}' cannot be run: {reason}")]
    UnsupportedRule {
        /// The subject whose schema carries the rule.
        subject: String,
        /// The rule's name.
        rule: String,
        /// What is not supported.
        reason: String,
    },
    /// The Schema Registry could not be reached (connection refused, DNS, timeout), or kept
    /// answering 429 or 5xx after the configured retries.
    #[error("Schema Registry at {registry} is unreachable: {reason}")]
    RegistryUnreachable {
        /// URL of the registry.
        registry: String,
        /// What the HTTP client reported.
        reason: String,
    },
    /// The Schema Registry refused the credentials (HTTP 401 or 403).
    #[error("Schema Registry at {registry} refused the credentials (HTTP {status}): {reason}")]
    RegistryUnauthorized {
        /// URL of the registry.
        registry: String,
        /// The HTTP status.
        status: u16,
        /// What the registry said.
        reason: String,
    },
    /// The subject has no registered version (and auto-registration is off).
    #[error(
        "subject '{subject}' has no matching schema in the Schema Registry at {registry} \
         (auto-registration is off): {reason}"
    )]
    SchemaNotRegistered {
        /// The subject looked up.
        subject: String,
        /// URL of the registry.
        registry: String,
        /// What the registry said.
        reason: String,
    },
    /// The subject does not exist in the Schema Registry (HTTP 404, error code 40401).
    #[error("subject '{subject}' not found in the Schema Registry at {registry}")]
    SubjectNotFound {
        /// The subject.
        subject: String,
        /// URL of the registry.
        registry: String,
    },
    /// The subject has no such version (HTTP 404, error code 40402).
    #[error("subject '{subject}' has no version {version} in the Schema Registry at {registry}")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for (a number, or `latest`).
        version: String,
        /// URL of the registry.
        registry: String,
    },
    /// The registry refused the request as invalid (HTTP 422: an invalid schema, version or
    /// compatibility level; error codes 42201, 42202, 42203).
    #[error("Schema Registry at {registry} rejected the request as invalid: {reason}")]
    RegistryRejected {
        /// URL of the registry.
        registry: String,
        /// Confluent's error code, when the registry sent one.
        error_code: Option<u32>,
        /// What the registry said.
        reason: String,
    },
    /// The registry rejected the schema as incompatible with the subject's earlier versions.
    #[error("schema for subject '{subject}' is incompatible: {}", messages.join("; "))]
    IncompatibleSchema {
        /// The subject.
        subject: String,
        /// Each rule broken, naming the field.
        messages: Vec<String>,
    },
    /// Any other error answer from the Schema Registry.
    #[error("Schema Registry at {registry} failed: {reason}")]
    Registry {
        /// URL of the registry.
        registry: String,
        /// What the registry or the HTTP client said.
        reason: String,
    },
    /// A schema text is not a valid Avro schema.
    #[error("invalid Avro schema ({origin}): {reason}")]
    InvalidSchema {
        /// Where the schema came from, e.g. `schema id 7` or `type io.groceryevents.Order`.
        origin: String,
        /// What the parser said.
        reason: String,
    },
    /// The Avro body does not decode with the writer schema, or does not resolve into the
    /// reader type.
    #[error("{}cannot decode Avro body written with schema id {schema_id} as {reader}: {reason}",
        location.as_ref().map(|l| format!("record {l}: ")).unwrap_or_default())]
    Decode {
        /// The writer schema id from the payload (0 when the writer is named by a GUID in a
        /// header, which `reason` then names, or has no registry id).
        schema_id: u32,
        /// Full name of the reader type.
        reader: String,
        /// Where the record was read from, when known.
        location: Option<RecordLocation>,
        /// What the decoder said.
        reason: String,
    },
    /// A record of a type that the family of event types it was read as does not have: the
    /// writer schema's record name (or the union branch the body names) is none of the
    /// family's ([`Written`](crate::Written)). The record belongs in the dead-letter topic.
    #[error("{}writer schema id {schema_id} is a record '{record}', which {family} has no type for (it has: {known})",
        location.as_ref().map(|l| format!("record {l}: ")).unwrap_or_default())]
    UnknownEventType {
        /// The writer schema id from the payload.
        schema_id: u32,
        /// The family read as.
        family: String,
        /// The record's full name.
        record: String,
        /// The full names the family has, comma-separated.
        known: String,
        /// Where the record was read from, when known.
        location: Option<RecordLocation>,
    },
    /// A value could not be encoded with its schema.
    #[error("cannot encode {reader} for subject '{subject}': {reason}")]
    Encode {
        /// Full name of the type being encoded.
        reader: String,
        /// The subject.
        subject: String,
        /// What the encoder said.
        reason: String,
    },
    /// An OAuth access token could not be obtained or used: the token endpoint is unreachable,
    /// refused the client credentials, or answered with something that is not a token.
    #[error("OAuth token endpoint {endpoint}: {reason}")]
    Auth {
        /// URL of the OAuth token endpoint (without userinfo or query).
        endpoint: String,
        /// What failed. Never contains the client secret, a token or the endpoint's answer
        /// body.
        reason: String,
        /// Whether asking again later may succeed: the endpoint was unreachable, timed out or
        /// answered with a server error (5xx, 429), as opposed to refusing the credentials.
        transient: bool,
    },
    /// A Kafka client operation failed.
    #[cfg(feature = "kafka")]
    #[error("Kafka {operation} failed{}: {source}",
        topic.as_ref().map(|t| format!(" on topic {t}")).unwrap_or_default())]
    Kafka {
        /// What was being done.
        operation: KafkaOperation,
        /// The topic, when the operation concerns one.
        topic: Option<String>,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A broker refused the client's credentials (SASL authentication failed): a wrong
    /// password or API key, or a token the broker does not accept (expired, wrongly signed,
    /// wrong audience). Retrying with the same credentials cannot help.
    #[error("Kafka broker refused SASL/{mechanism} authentication: {reason}")]
    Authentication {
        /// The SASL mechanism (`sasl.mechanisms`), e.g. `PLAIN` or `OAUTHBEARER`.
        mechanism: String,
        /// What librdkafka and the broker said. Never contains a credential.
        reason: String,
    },
    /// librdkafka raised a fatal error: the client cannot go on (for example a transactional
    /// producer fenced by a newer instance with the same `transactional.id`).
    #[error("Kafka {operation} failed fatally: {reason}")]
    Fatal {
        /// What was being done.
        operation: KafkaOperation,
        /// librdkafka's description.
        reason: String,
    },
    /// Configuration is missing or invalid.
    #[error("configuration key '{key}': {reason}")]
    Config {
        /// The configuration key at fault (Confluent's / librdkafka's property name).
        key: String,
        /// What is wrong with it. Never contains the value of a secret.
        reason: String,
    },
}

impl Error {
    /// Attaches where the record came from to a [`Error::Decode`]; other errors are returned
    /// unchanged.
    pub fn at(mut self, location: RecordLocation) -> Self {
        if let Self::Decode { location: loc, .. } | Self::UnknownEventType { location: loc, .. } =
            &mut self
        {
            *loc = Some(location);
        }
        self
    }

    /// Whether retrying the same operation later may succeed (the registry or the OAuth token
    /// endpoint was unreachable or answered with a server error), as opposed to bad data or
    /// configuration.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RegistryUnreachable { .. }
                | Self::Auth {
                    transient: true,
                    ..
                }
        )
    }

    /// Whether the error is about the record's bytes, which can never decode (they are not in
    /// Confluent's wire format, or the body does not decode with its writer schema into the
    /// reader type), so the record belongs in a dead-letter topic. A writer schema that cannot
    /// be fetched or used is not the record's fault ([`Error::is_schema_unavailable`]), nor is
    /// an invalid reader schema (a bug of the reading program). A record a READ rule failed
    /// on is poison when the rule's action is `DLQ` ([`Error::RuleFailed`]).
    pub fn is_poison(&self) -> bool {
        matches!(
            self,
            Self::EmptyPayload
                | Self::BadMagicByte { .. }
                | Self::TruncatedHeader { .. }
                | Self::BadSchemaIdHeader { .. }
                | Self::Decode { .. }
                | Self::UnknownEventType { .. }
        ) || matches!(
            self,
            Self::RuleFailed {
                dlq: true,
                mode: "READ",
                ..
            }
        )
    }

    /// Whether a record's writer schema cannot be fetched ([`Error::UnknownSchemaId`],
    /// [`Error::UnknownSchemaGuid`]: not registered yet, or the wrong registry) or used
    /// ([`Error::UnusableSchema`]). That is an
    /// outage, not poison: a consumer waits it out or stops, as
    /// [`ConsumerOptions::schema_unavailable`](crate::ConsumerOptions::schema_unavailable) says,
    /// and never dead-letters or commits past the record for it (as Confluent's deserializers
    /// raise rather than skip).
    pub fn is_schema_unavailable(&self) -> bool {
        matches!(
            self,
            Self::UnknownSchemaId { .. }
                | Self::UnknownSchemaGuid { .. }
                | Self::UnusableSchema { .. }
        )
    }

    /// Whether a record was not written because its producer's transaction had already failed
    /// for a reason the record does not name: purged from the producer's queue or in flight
    /// (`PurgeQueue`, `PurgeInflight`: the transaction became abortable, e.g. the broker
    /// refused one of its partitions), or refused at the queue because the transaction must be
    /// aborted (`Local: Erroneous state` while producing). The transaction itself says why
    /// (its next call, e.g. `send_offsets_to_transaction` or `commit_transaction`, fails with
    /// that error); a [`Pipeline`](crate::Pipeline) asks it. For
    /// [`Error::DeadLetterFailed`], answers for the dead-letter write (`source`).
    pub fn is_purged(&self) -> bool {
        match self {
            Self::DeadLetterFailed { source, .. } => source.is_purged(),
            #[cfg(feature = "kafka")]
            Self::Kafka {
                operation: KafkaOperation::Produce,
                source,
                ..
            } => {
                use rdkafka::types::RDKafkaErrorCode as Code;
                matches!(
                    source.rdkafka_error_code(),
                    Some(Code::PurgeQueue | Code::PurgeInflight | Code::State)
                )
            }
            _ => false,
        }
    }

    /// Whether a broker refused the client: its credentials (authentication) or its rights on
    /// a topic, group, transactional id or the cluster (authorization, from the ACLs or RBAC).
    pub fn is_refused(&self) -> bool {
        #[cfg(feature = "kafka")]
        use rdkafka::types::RDKafkaErrorCode as Code;
        match self {
            Self::Authentication { .. } => true,
            Self::DeadLetterFailed { source, .. } => source.is_refused(),
            #[cfg(feature = "kafka")]
            Self::Kafka { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(
                    Code::TopicAuthorizationFailed
                        | Code::GroupAuthorizationFailed
                        | Code::ClusterAuthorizationFailed
                        | Code::TransactionalIdAuthorizationFailed
                        | Code::SaslAuthenticationFailed
                )
            ),
            _ => false,
        }
    }

    /// A short stable name of the variant, for metrics labels and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyPayload => "empty_payload",
            Self::BadMagicByte { .. } => "bad_magic_byte",
            Self::TruncatedHeader { .. } => "truncated_header",
            Self::BadSchemaIdHeader { .. } => "bad_schema_id_header",
            Self::UnknownSchemaId { .. } => "unknown_schema_id",
            Self::UnknownSchemaGuid { .. } => "unknown_schema_guid",
            Self::UnusableSchema { .. } => "unusable_schema",
            Self::RegistryUnreachable { .. } => "registry_unreachable",
            Self::RegistryUnauthorized { .. } => "registry_unauthorized",
            Self::SchemaNotRegistered { .. } => "schema_not_registered",
            Self::IncompatibleSchema { .. } => "incompatible_schema",
            Self::SubjectNotFound { .. } => "subject_not_found",
            Self::VersionNotFound { .. } => "version_not_found",
            Self::RegistryRejected { .. } => "registry_rejected",
            Self::Registry { .. } => "registry",
            Self::InvalidSchema { .. } => "invalid_schema",
            Self::Decode { .. } => "decode",
            Self::UnknownEventType { .. } => "unknown_event_type",
            Self::RuleFailed { .. } => "rule_failed",
            Self::DeadLetterFailed { .. } => "dead_letter_failed",
            Self::UnsupportedRule { .. } => "unsupported_rule",
            Self::Encode { .. } => "encode",
            Self::Config { .. } => "config",
            #[cfg(feature = "kafka")]
            Self::Kafka { .. } => "kafka",
            Self::Auth { .. } => "auth",
            Self::Authentication { .. } => "authentication",
            Self::Fatal { .. } => "fatal",
        }
    }
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
