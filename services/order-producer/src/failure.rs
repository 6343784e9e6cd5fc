//! Why an order was not accepted, as the broker's and librdkafka's errors tell it: the
//! [`Failure`] a request is told ([`NotSent`]) and how a transaction that did not commit ended
//! ([`Ended`]), for the sender (`crate::sender`), which acts on it, and the API
//! (`crate::api`), which answers it.
//!
//! What counts as what:
//! - **refused** ([`refused`]): the broker's authorization of the transactional id, the cluster
//!   or the topic, in an error's code or as the producer's fatal error;
//! - **refused by the contract**: a rule of the registered order contract failed on the order
//!   (`Error::RuleFailed`; `Error::DeadLetterFailed` when its dead letter was not written
//!   either): the order itself is at fault, not the broker;
//! - **too large**: `MSG_SIZE_TOO_LARGE` (a record over the topic's `max.message.bytes` or
//!   the client's `message.max.bytes`), `MESSAGE_BATCH_TOO_LARGE`;
//! - **purged** (the library's `Error::is_purged`, as the pipeline classifies it): the record
//!   was purged (`PurgeQueue`, `PurgeInflight`) or refused at the queue (`Local: Erroneous
//!   state`) because the transaction had to be aborted for another reason, which the record
//!   does not name;
//! - anything else must be aborted, and is answered as unavailable.

use avro_events::KafkaOperation;
use grocery_events::{Producer, topics};
use rdkafka::{
    error::{KafkaError, RDKafkaError},
    producer::Producer as _,
    types::RDKafkaErrorCode,
};

/// Why an order was not accepted: its transaction never committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Aborted (the broker unreachable, a timeout, the API stopping): a retry may succeed.
    Unavailable,
    /// The order's record is larger than the broker accepts on the orders topic: a retry of
    /// the same order meets the same refusal.
    TooLarge,
    /// The broker refuses the Order API's transactional id (ACL never granted, or removed):
    /// no order can be sent; the API stops.
    TransactionalIdRefused,
    /// The broker refuses the Order API writes on the orders topic: as above.
    TopicRefused,
    /// The order breaks a rule of the order contract registered for the orders topic (the
    /// producer writes with it): it is not stored anywhere, neither on the orders topic nor on
    /// the contract's dead-letter topic (a dead letter written in the order's transaction is
    /// aborted with it; the client is told instead). A retry of the same order meets the same
    /// rule.
    RefusedByContract,
}

/// An order not accepted: why, and the cause for the log.
#[derive(Debug, Clone)]
pub(crate) struct NotSent {
    /// What the request is told.
    pub(crate) failure: Failure,
    /// The broker's or the client's words, for the log only.
    pub(crate) cause: String,
}

impl NotSent {
    pub(crate) fn new(failure: Failure, cause: impl Into<String>) -> Self {
        Self {
            failure,
            cause: cause.into(),
        }
    }
}

/// How a transaction that did not commit ended.
pub(crate) enum Ended {
    /// Aborted, or never begun: none of its records is visible read_committed.
    Aborted(String),
    /// Failed before its commit: it is to be aborted, never committed.
    MustAbort(String),
    /// A record of it is too large for the broker: to be aborted, never committed.
    TooLarge(String),
    /// An order of it breaks a rule of the order contract (`Error::RuleFailed`, or
    /// `Error::DeadLetterFailed` when the rule's dead letter was not written either): to be
    /// aborted, never committed.
    RefusedByContract(String),
    /// Its records were purged, not refused: the producer must abort it for a reason of its
    /// own (after a record refused as too large, librdkafka keeps that record's sequence
    /// numbers, and the next transaction on the partition fails with
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` until an abort bumps the producer's epoch). To be
    /// aborted, never committed; its orders may be sent again.
    Purged(String),
    /// The broker refuses the transactional id or the topic: never committed.
    Refused(grocery_events::Error),
    /// The producer cannot go on, and the transaction's outcome is not known here.
    Fatal(anyhow::Error),
}

/// How a transaction whose records met `errors` (queueing or delivering them) ended: refused
/// (the broker's authorization, here or as the producer's fatal error) before too large
/// before any other failure.
pub(crate) fn not_delivered(producer: &Producer, errors: &[grocery_events::Error]) -> Ended {
    if let Some(refused) = errors
        .iter()
        .find_map(|error| refused(producer, error_code(error)))
    {
        return refused;
    }
    if let Some(error) = errors.iter().find(|error| {
        matches!(
            error_code(error),
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
        )
    }) {
        return Ended::TooLarge(error.to_string());
    }
    if let Some(error) = errors.iter().find(|error| refused_by_contract(error)) {
        return Ended::RefusedByContract(error.to_string());
    }
    if errors.iter().all(grocery_events::Error::is_purged) {
        return Ended::Purged(errors[0].to_string());
    }
    Ended::MustAbort(errors[0].to_string())
}

/// Whether `error` is the order contract's refusal of an order: one of its rules failed
/// (whether or not the rule's dead letter was then written).
fn refused_by_contract(error: &grocery_events::Error) -> bool {
    use grocery_events::Error;
    match error {
        Error::RuleFailed { .. } => true,
        Error::DeadLetterFailed { cause, .. } => matches!(**cause, Error::RuleFailed { .. }),
        _ => false,
    }
}

/// [`Ended::Refused`] when `code` (an error's), or the producer's fatal error, is the broker's
/// refusal of the transactional id, the cluster or the topic.
pub(crate) fn refused(producer: &Producer, code: Option<RDKafkaErrorCode>) -> Option<Ended> {
    let fatal = producer.rdkafka().client().fatal_error();
    let (code, reason) = match (code, fatal) {
        (Some(code), _) if is_authorization(code) => (code, code.to_string()),
        (_, Some((code, reason))) if is_authorization(code) => (code, reason),
        _ => return None,
    };
    tracing::error!(?code, %reason, "the broker refuses the Order API's transactions");
    Some(Ended::Refused(grocery_events::Error::Kafka {
        operation: KafkaOperation::Produce,
        topic: Some(topics::ORDERS.to_owned()),
        source: KafkaError::MessageProduction(code),
    }))
}

fn is_authorization(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
    )
}

/// The librdkafka code of a Kafka error (a refusal, a record too large), if it has one.
fn error_code(error: &grocery_events::Error) -> Option<RDKafkaErrorCode> {
    match error {
        grocery_events::Error::Kafka { source, .. } => source.rdkafka_error_code(),
        _ => None,
    }
}

/// What a request is told when the broker refused the sender with `error`.
pub(crate) fn refused_failure(error: &grocery_events::Error) -> Failure {
    match error_code(error) {
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => Failure::TopicRefused,
        _ => Failure::TransactionalIdRefused,
    }
}

/// [`Ended::Fatal`] for a fatal producer error, else what `otherwise` makes of it.
pub(crate) fn fatal_or(error: KafkaError, otherwise: impl FnOnce(&KafkaError) -> Ended) -> Ended {
    let fatal = matches!(&error, KafkaError::Transaction(e) if RDKafkaError::is_fatal(e));
    if fatal {
        Ended::Fatal(anyhow::Error::new(error).context("beginning a transaction"))
    } else {
        otherwise(&error)
    }
}
