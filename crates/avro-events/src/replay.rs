use std::{sync::Arc, time::Duration};

use rdkafka::{Offset, TopicPartitionList, consumer::Consumer as _, error::KafkaError};
use tracing::info;

use crate::{
    Codec, Consumer, ConsumerOptions, Error, Event, Format, Record, Result, consumer::Mode,
    error::KafkaOperation, shared::Shared,
};

/// How often [`Replay::recv_until_caught_up`] checks, while no record comes, whether records
/// passed over have brought the replay to its end.
const CATCH_UP_CHECK: Duration = Duration::from_millis(200);

/// Where one partition stood when the replay started, and how far it has been read.
#[derive(Debug, Clone, Copy)]
struct Progress {
    partition: i32,
    /// First offset in the partition at the start (its low watermark).
    start: i64,
    /// The partition's end (high watermark) at the start: the replay has caught up with this
    /// partition once it has read up to here.
    end: i64,
    /// The offset after the last record handed out.
    next: i64,
}

impl Progress {
    fn done(&self) -> bool {
        self.next >= self.end
    }
}

/// A consumer reading every partition of `E`'s topic from the beginning ([`Client::replay`](crate::Client::replay)).
///
/// # Replay in detail
///
/// Reading a topic whole, to rebuild a view of it: every partition from its beginning, then on
/// as records arrive, telling when the records that were there at the start have all been read.
///
/// A [`Replay`] is a [`Consumer`] with its partitions assigned by hand
/// ([`Client::replay`](crate::Client::replay)): it takes no part in its group's rebalances and ignores the group's
/// committed offsets, so every instance of a service reads everything. It is not a member of
/// the group it names, and so it never commits: no automatic commit, no stored offsets
/// ([`Consumer::ack`] does nothing), nothing at close; the group's committed offsets are the
/// live consumers' alone. Nothing needs acknowledging: a replay starts from the beginning again
/// next time.
///
/// A replay never writes to a dead-letter topic either: a record that can never be decoded is
/// passed over with a warning and counted ([`Consumer::undecodable_passed`]). Dead-lettering is
/// the job of the topic's live consumer, once; a replay that dead-lettered would copy the same
/// records again at every start of every replaying service. A record whose schema cannot be
/// fetched or used is not undecodable: the replay waits for it, or fails, as any consumer
/// ([`ConsumerOptions::schema_unavailable`]).
///
/// ```no_run
/// # async fn run<E: avro_events::Event>(client: avro_events::Client) -> avro_events::Result<()> {
/// use std::time::Duration;
/// use avro_events::Record;
///
/// let mut replay = client.replay::<E>("my-view", Duration::from_secs(10)).await?;
/// while let Some(record) = replay.recv_until_caught_up().await? {
///     if let Record::Event(received) = record {
///         // fold received.event into the view
/// #       let _ = received;
///     }
/// }
/// // The view now holds everything the topic held when the replay started.
/// # Ok(()) }
/// ```
///
/// [`Replay::is_caught_up`] learns about a record passed over as undecodable from
/// the consumer's position, so it must be called now and then even when no record arrives:
/// [`Replay::recv_until_caught_up`] does that; a loop that also follows the topic afterwards
/// calls it on a timer in a `tokio::select!` ([`Replay::recv_record`] is cancel-safe).
pub struct Replay<E, F = Codec> {
    consumer: Consumer<E, F>,
    topic: String,
    partitions: Vec<Progress>,
    caught_up: bool,
}

impl<E, F> std::fmt::Debug for Replay<E, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

impl<E: Event> Replay<E> {
    /// Creates the replay ([`Client::replay`](crate::Client::replay)), each partition read from
    /// its beginning or, for those `from` names, from that offset (past the partition's first
    /// offset; a start beyond its end waits there).
    pub(crate) async fn create(
        shared: &Shared,
        options: ConsumerOptions,
        timeout: Duration,
        from: std::collections::BTreeMap<i32, i64>,
    ) -> Result<Self> {
        Self::create_with(shared, shared.codec.clone(), options, timeout, None, from).await
    }

    /// [`Replay::create`] starting each partition at its first record with a timestamp at or
    /// after `since_ms` (ms since the Unix epoch; `None`: the beginning). A partition for which
    /// the broker finds no such offset is read from its beginning (see
    /// [`Client::replay_since`](crate::Client::replay_since)).
    pub(crate) async fn create_since(
        shared: &Shared,
        options: ConsumerOptions,
        timeout: Duration,
        since_ms: Option<i64>,
    ) -> Result<Self> {
        Self::create_with(
            shared,
            shared.codec.clone(),
            options,
            timeout,
            since_ms,
            Default::default(),
        )
        .await
    }
}

impl<E: Event, F: Format> Replay<E, F> {
    /// How many partitions of its topic the replay reads: the topic's partition count when it
    /// started.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// [`Replay::create_since`] decoding with `format`
    /// ([`Client::replay_with_format`](crate::Client::replay_with_format)); the partitions
    /// `from` names start at that offset instead (as [`Replay::create`]).
    pub(crate) async fn create_with(
        shared: &Shared,
        format: Arc<F>,
        options: ConsumerOptions,
        timeout: Duration,
        since_ms: Option<i64>,
        from: std::collections::BTreeMap<i32, i64>,
    ) -> Result<Self> {
        let consumer =
            Consumer::<E, F>::create_with(shared, format, options, &[], Mode::Replay).await?;
        let native = consumer.rdkafka_arc();
        let topic = E::TOPIC.to_owned();
        let fail = {
            let topic = topic.clone();
            move |source| Error::Kafka {
                operation: KafkaOperation::Assign,
                topic: Some(topic.clone()),
                source,
            }
        };
        let failed = fail.clone();
        let partitions = {
            let topic = topic.clone();
            let fail = fail.clone();
            let blocking = move || {
                let ids = crate::consumer::partitions_of(native.as_ref(), &topic, timeout)?;
                // With `since_ms`, the first offset of each partition at or after that time.
                let firsts = match since_ms {
                    None => None,
                    Some(since) => {
                        let mut times = TopicPartitionList::new();
                        for &id in &ids {
                            times
                                .add_partition_offset(&topic, id, Offset::Offset(since))
                                .map_err(&fail)?;
                        }
                        Some(native.offsets_for_times(times, timeout).map_err(&fail)?)
                    }
                };
                let mut progress = Vec::new();
                let mut assignment = TopicPartitionList::new();
                for id in ids {
                    let (low, end) = native
                        .fetch_watermarks(&topic, id, timeout)
                        .map_err(&fail)?;
                    let first = firsts
                        .as_ref()
                        .and_then(|firsts| firsts.find_partition(&topic, id))
                        .map(|found| found.offset());
                    let (start, offset) = match (from.get(&id), first) {
                        // An offset asked for (past the partition's first one).
                        (Some(&from), _) if from > low => (from, Offset::Offset(from)),
                        (_, Some(Offset::Offset(first))) if first >= 0 => {
                            (first.max(low), Offset::Offset(first.max(low)))
                        }
                        // No time or offset given, or no offset found for it: the beginning.
                        _ => (low, Offset::Beginning),
                    };
                    progress.push(Progress {
                        partition: id,
                        start,
                        end,
                        next: start,
                    });
                    assignment
                        .add_partition_offset(&topic, id, offset)
                        .map_err(&fail)?;
                }
                native.assign(&assignment).map_err(&fail)?;
                Ok(progress)
            };
            tokio::task::spawn_blocking(blocking)
                .await
                .map_err(|_| failed(KafkaError::Canceled))??
        };
        let records: i64 = partitions.iter().map(|p| p.end - p.start).sum();
        info!(topic = %topic, partitions = partitions.len(), records, since_ms, ends = ?partitions.iter().map(|p| (p.partition, p.start, p.end)).collect::<Vec<_>>(), "replaying the topic");
        let mut replay = Replay {
            consumer,
            topic,
            partitions,
            caught_up: false,
        };
        replay.is_caught_up();
        Ok(replay)
    }
}

impl<E: Event, F: Format> Replay<E, F> {
    /// The next record (tombstones included), as [`Consumer::recv_record`]; cancel-safe.
    ///
    /// # Errors
    /// As [`Consumer::recv_record`].
    pub async fn recv_record(&mut self) -> Result<Record<E>> {
        let record = self.consumer.recv_record().await?;
        let meta = record.meta();
        if let Some(progress) = self
            .partitions
            .iter_mut()
            .find(|p| p.partition == meta.partition)
        {
            progress.next = progress.next.max(meta.offset + 1);
        }
        Ok(record)
    }

    /// The next record, or `None` once every record that was in the topic when the replay
    /// started has been read (or passed over as undecodable): the loop that reads a topic
    /// whole before going on. While no record comes, [`Replay::is_caught_up`] is checked every
    /// 200 ms; cancel-safe.
    ///
    /// # Errors
    /// As [`Consumer::recv_record`].
    pub async fn recv_until_caught_up(&mut self) -> Result<Option<Record<E>>> {
        loop {
            if self.is_caught_up() {
                return Ok(None);
            }
            tokio::select! {
                record = self.recv_record() => return record.map(Some),
                () = tokio::time::sleep(CATCH_UP_CHECK) => {}
            }
        }
    }

    /// Whether every record that was in the topic when the replay started has been handed out
    /// or passed over. Once true, stays true.
    pub fn is_caught_up(&mut self) -> bool {
        if self.caught_up {
            return true;
        }
        if self.partitions.iter().any(|p| !p.done()) && self.consumer.is_idle() {
            // Records passed over on the way are not handed out: the consumer's position
            // (the offset after the last record it took from librdkafka) covers them, as long
            // as no record taken is still parked (a cancelled `recv_record`).
            if let Ok(positions) = self.consumer.rdkafka().position() {
                for progress in &mut self.partitions {
                    if let Some(Offset::Offset(position)) = positions
                        .find_partition(&self.topic, progress.partition)
                        .map(|p| p.offset())
                    {
                        progress.next = progress.next.max(position);
                    }
                }
            }
        }
        self.caught_up = self.partitions.iter().all(Progress::done);
        self.caught_up
    }

    /// Records still to read before the replay has caught up (an upper bound: part of the
    /// log may have been deleted since the start).
    pub fn remaining(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| u64::try_from(p.end - p.next).unwrap_or(0))
            .sum()
    }

    /// The consumer underneath (counters such as [`Consumer::undecodable_passed`]).
    pub fn consumer(&self) -> &Consumer<E, F> {
        &self.consumer
    }
}
