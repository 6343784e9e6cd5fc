//! How the pipeline classifies a failure: an output's error that may pass (waited out), one
//! the broker refuses for good (the run stops), an output a data-contract rule dead-lettered
//! (done), and in transactional mode what a transaction call's failure calls for and how a
//! record lost to a failed transaction takes the transaction's error.

use super::watchdog;
use crate::{Error, error::KafkaOperation};

/// Whether an output's encoding failed for a reason that may pass: the registry unreachable
/// or failing, refusing the credentials (401/403: a token refresh or a new role binding mends
/// it), or the output's subject (or version) not registered yet.
pub(super) fn may_pass(error: &Error) -> bool {
    error.is_transient()
        || matches!(
            error,
            Error::RegistryUnauthorized { .. }
                | Error::SchemaNotRegistered { .. }
                | Error::SubjectNotFound { .. }
                | Error::VersionNotFound { .. }
        )
}

/// Whether `error` is an output's data-contract rule failure with the `DLQ` action whose dead
/// letter was written (to the rule's `dlq.topic`, through the output's producer: in its
/// transaction when there is one). The output is done: its input goes on. When the dead
/// letter could not be written the error is [`Error::DeadLetterFailed`] instead.
pub(super) fn dead_lettered_by_rule(error: &Error) -> bool {
    matches!(
        error,
        Error::RuleFailed {
            dead_letter: Some(_),
            ..
        }
    )
}

/// Whether the broker refused an output for good: the record is larger than the client
/// (`message.max.bytes`) or the topic (`max.message.bytes`) takes, or the client may not write
/// the topic. Trying again cannot help until someone changes the limit or the right.
pub(super) fn refused_for_good(error: &Error) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    if let Error::DeadLetterFailed { source, .. } = error {
        return refused_for_good(source);
    }
    error.is_refused()
        || matches!(error, Error::Kafka { operation: KafkaOperation::Produce, source, .. }
            if matches!(source.rdkafka_error_code(), Some(Code::MessageSizeTooLarge | Code::InvalidRecord)))
}

/// Whether an output can never be encoded: it does not fit its schema, or a data-contract
/// rule without the `DLQ` action refuses it. The same input makes the same output, so reading
/// the input again cannot help: both modes end the run with the error, nothing committed past
/// the input (at-least-once does so as it meets any error that may not pass).
pub(super) fn unencodable(error: &Error) -> bool {
    matches!(
        error,
        Error::Encode { .. }
            | Error::RuleFailed {
                dead_letter: None,
                ..
            }
    )
}

/// What a transaction call's failure calls for, as Kafka classifies it.
pub(super) enum Failure {
    /// Try the same call again.
    Retry(Error),
    /// Abort the transaction and process its inputs again.
    Abort(Error),
    /// The producer cannot go on.
    Fatal(Error),
    /// The call did not return within the watchdog's bound: replace the producer.
    Stuck(watchdog::Stuck),
}

impl Failure {
    pub(super) fn into_error(self) -> Error {
        match self {
            Self::Retry(e) | Self::Abort(e) | Self::Fatal(e) => e,
            Self::Stuck(stuck) => stuck.into_error(),
        }
    }
}

/// The transaction's error `cause` on the purged record's operation and on `refused`, the
/// topic whose partition the transaction refused when known, else the purged record's topic.
pub(super) fn on_record(purged: Error, cause: Error, refused: Option<String>) -> Error {
    match (purged, cause) {
        (
            Error::Kafka {
                operation, topic, ..
            },
            Error::Kafka { source, .. },
        ) => Error::Kafka {
            operation,
            topic: refused.or(topic),
            source,
        },
        (_, cause) => cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_subject_and_registry_outages_may_pass_and_oversized_records_do_not() {
        let registry = "http://registry".to_owned();
        assert!(may_pass(&Error::SchemaNotRegistered {
            subject: "grocery.picklist.v1-value".into(),
            registry: registry.clone(),
            reason: "Subject not found".into(),
        }));
        assert!(may_pass(&Error::RegistryUnreachable {
            registry: registry.clone(),
            reason: "connection refused".into(),
        }));
        assert!(may_pass(&Error::RegistryUnauthorized {
            registry,
            status: 403,
            reason: "forbidden".into(),
        }));
        let too_large = Error::Kafka {
            operation: KafkaOperation::Produce,
            topic: Some("grocery.picklist.v1".into()),
            source: rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge,
            ),
        };
        assert!(!may_pass(&too_large));
        assert!(refused_for_good(&too_large));
        assert!(!too_large.is_purged());
        assert!(!refused_for_good(&Error::Encode {
            reader: "PickList".into(),
            subject: "grocery.picklist.v1-value".into(),
            reason: "bad".into(),
        }));
    }

    #[test]
    fn records_lost_to_a_failed_transaction_are_purged_whatever_the_way() {
        use rdkafka::{error::KafkaError, types::RDKafkaErrorCode as Code};
        let produce = |source| Error::Kafka {
            operation: KafkaOperation::Produce,
            topic: Some("grocery.picklist.v1".into()),
            source,
        };
        for code in [Code::PurgeQueue, Code::PurgeInflight] {
            assert!(
                produce(KafkaError::MessageProduction(code)).is_purged(),
                "{code:?}"
            );
        }
        // Refused at the queue: the transaction must be aborted.
        assert!(produce(KafkaError::MessageProduction(Code::State)).is_purged());
        let refused = produce(KafkaError::MessageProduction(
            Code::TopicAuthorizationFailed,
        ));
        assert!(!refused.is_purged());
        let dead_letter = |source| Error::DeadLetterFailed {
            cause: Box::new(Error::EmptyPayload),
            topic: "grocery.orders.v1.dlq".into(),
            source: Box::new(source),
        };
        assert!(dead_letter(produce(KafkaError::MessageProduction(Code::PurgeQueue))).is_purged());
        assert!(!dead_letter(refused).is_purged());
        // Not a produce: a transaction call's own state error is not a lost record.
        assert!(
            !Error::Kafka {
                operation: KafkaOperation::CommitTransaction,
                topic: None,
                source: KafkaError::MessageProduction(Code::State),
            }
            .is_purged()
        );
    }
}
