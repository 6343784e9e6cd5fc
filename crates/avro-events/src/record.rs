//! What a consumer hands out: a decoded event or a tombstone, with where it came from
//! ([`RecordMeta`]) and its headers.

use crate::{Headers, RecordLocation};

/// Where a received record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record key, when it is UTF-8 and the event declares no key schema
    /// ([`Event::KEY_SCHEMA`](crate::Event::KEY_SCHEMA); its Avro keys are in
    /// [`Received::raw_key`]).
    pub key: Option<String>,
    /// The record timestamp in milliseconds since the epoch, when known.
    pub timestamp_ms: Option<i64>,
}

impl RecordMeta {
    /// The location of the record, for errors.
    pub fn location(&self) -> RecordLocation {
        RecordLocation {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// A decoded event with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<E> {
    /// The event.
    pub event: E,
    /// Where it came from.
    pub meta: RecordMeta,
    /// The record's headers.
    pub headers: Headers,
    /// The record key as read, e.g. to decode an Avro key with
    /// [`Consumer::decode_key`](crate::Consumer::decode_key).
    pub raw_key: Option<Vec<u8>>,
}

/// A record with a null value: on a compacted topic, the deletion of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Where it came from; [`RecordMeta::key`] is the deleted key when it is a string.
    pub meta: RecordMeta,
    /// The record's headers.
    pub headers: Headers,
    /// The record key as read (decode an Avro key with
    /// [`Consumer::decode_key`](crate::Consumer::decode_key)).
    pub raw_key: Option<Vec<u8>>,
}

/// What [`Consumer::recv_record`](crate::Consumer::recv_record) hands out: an event or a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<E> {
    /// A record whose value decoded into an event.
    Event(Received<E>),
    /// A record with a null value.
    Tombstone(Tombstone),
}

impl<E> Received<E> {
    /// The record's W3C trace context (its `traceparent` and `tracestate` headers), `None`
    /// when it has none or it is not valid. Pass it to
    /// [`Producer::send_traced`](crate::Producer::send_traced) to continue the trace.
    pub fn trace(&self) -> Option<crate::trace::TraceContext> {
        self.headers.trace()
    }
}

impl Tombstone {
    /// The record's W3C trace context, as [`Received::trace`].
    pub fn trace(&self) -> Option<crate::trace::TraceContext> {
        self.headers.trace()
    }
}

impl<E> Record<E> {
    /// The record's W3C trace context, as [`Received::trace`].
    pub fn trace(&self) -> Option<crate::trace::TraceContext> {
        match self {
            Self::Event(received) => received.trace(),
            Self::Tombstone(tombstone) => tombstone.trace(),
        }
    }

    /// Where the record came from (to acknowledge it with [`Consumer::ack`](crate::Consumer::ack)).
    pub fn meta(&self) -> &RecordMeta {
        match self {
            Self::Event(received) => &received.meta,
            Self::Tombstone(tombstone) => &tombstone.meta,
        }
    }
}
