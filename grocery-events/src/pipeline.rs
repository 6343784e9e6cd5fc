//! Consume-transform-produce: read `In` events, turn each into `Out` events, write them, and
//! only then mark the input done.
//!
//! Without `transactional.id` the pipeline is at-least-once: outputs are produced
//! idempotently and an input's offset is stored only after all its outputs are acknowledged,
//! in input order, with many records in flight. A crash replays the unacknowledged inputs;
//! a deterministic transform (e.g. ids derived from the input) makes the replays harmless to
//! readers that drop duplicates.
//!
//! With `transactional.id` (Confluent Cloud) outputs and input offsets are committed together
//! in Kafka transactions, batch by batch: exactly once for `read_committed` readers. When a
//! transaction fails it is aborted and [`Pipeline::run`] returns the error: restart the
//! process, and the group resumes from the last committed batch.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream::FuturesOrdered};
use rdkafka::{Offset, TopicPartitionList, consumer::Consumer as _, producer::Producer as _};
use tracing::{debug, info};

use crate::{
    Codec, Config, Consumer, ConsumerOptions, Error, Event, Producer, Received, RecordMeta, Result,
};

/// Counters of a running pipeline.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Inputs read and transformed.
    pub consumed: AtomicU64,
    /// Outputs acknowledged by the broker.
    pub produced: AtomicU64,
    /// Transactions committed (transactional mode only).
    pub transactions: AtomicU64,
}

/// Tuning of a [`Pipeline`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineOptions {
    /// The consumer's options (group id, dead-letter topic, retries).
    pub consumer: ConsumerOptions,
    /// At most this many inputs wait for their outputs' acknowledgements at once.
    pub max_in_flight: usize,
    /// Transactional mode: at most this many inputs per transaction.
    pub batch_size: usize,
    /// Transactional mode: a transaction is committed at the latest this long after it began.
    pub batch_linger: Duration,
}

impl PipelineOptions {
    /// Options for consumer group `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            consumer: ConsumerOptions::new(group_id),
            max_in_flight: 1000,
            batch_size: 500,
            batch_linger: Duration::from_millis(100),
        }
    }
}

/// A consume-transform-produce loop from `In` to `Out` events.
#[derive(Debug)]
pub struct Pipeline<In: Event> {
    consumer: Consumer<In>,
    producer: Producer,
    options: PipelineOptions,
    transactional: bool,
    stats: Arc<PipelineStats>,
}

impl<In: Event> Pipeline<In> {
    /// Creates the consumer and the producer. Transactions are used when `config` has a
    /// `transactional.id`.
    ///
    /// # Errors
    /// Configuration or client creation errors.
    pub async fn new(config: &Config, codec: Arc<Codec>, options: PipelineOptions) -> Result<Self> {
        let transactional = config.transactional_id().is_some();
        // The consumer leaves producer-only keys such as `transactional.id` aside, and its
        // dead-letter producer is not transactional.
        let consumer = Consumer::<In>::new(config, codec.clone(), options.consumer.clone()).await?;
        let producer = Producer::new(config, codec).await?;
        info!(transactional, "pipeline ready");
        Ok(Self {
            consumer,
            producer,
            options,
            transactional,
            stats: Arc::default(),
        })
    }

    /// The pipeline's counters, shareable with a metrics endpoint.
    pub fn stats(&self) -> Arc<PipelineStats> {
        self.stats.clone()
    }

    /// The consumer (for lag and dead-letter counts).
    pub fn consumer(&self) -> &Consumer<In> {
        &self.consumer
    }

    /// Runs until `shutdown` resolves, turning each input into the outputs `transform`
    /// returns (written to each output's [`Event::TOPIC`]).
    ///
    /// # Errors
    /// The first consumer, producer or transaction error; inputs not yet committed are read
    /// again after a restart.
    pub async fn run<Out, F, S>(&self, transform: F, shutdown: S) -> Result<()>
    where
        Out: Event,
        F: FnMut(&Received<In>) -> Vec<Out>,
        S: Future<Output = ()>,
    {
        if self.transactional {
            self.run_transactional(transform, shutdown).await
        } else {
            self.run_pipelined(transform, shutdown).await
        }
    }

    async fn run_pipelined<Out, F, S>(&self, mut transform: F, shutdown: S) -> Result<()>
    where
        Out: Event,
        F: FnMut(&Received<In>) -> Vec<Out>,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        let mut in_flight = FuturesOrdered::new();
        let mut stopping = false;
        loop {
            let can_read = !stopping && in_flight.len() < self.options.max_in_flight;
            tokio::select! {
                () = &mut shutdown, if !stopping => stopping = true,
                received = self.consumer.recv(), if can_read => {
                    let received = received?;
                    self.stats.consumed.fetch_add(1, Ordering::Relaxed);
                    let mut deliveries = Vec::new();
                    for out in transform(&received) {
                        deliveries.push(self.producer.enqueue_to(Out::TOPIC, &out).await?);
                    }
                    let meta = received.meta;
                    in_flight.push_back(async move {
                        let count = deliveries.len() as u64;
                        for delivery in deliveries {
                            delivery.await?;
                        }
                        Ok::<_, Error>((meta, count))
                    });
                }
                Some(done) = in_flight.next() => {
                    let (meta, count): (RecordMeta, u64) = done?;
                    self.stats.produced.fetch_add(count, Ordering::Relaxed);
                    self.consumer.ack(&meta)?;
                }
                else => break,
            }
            if stopping && in_flight.is_empty() {
                break;
            }
        }
        self.producer.flush(Duration::from_secs(30)).await?;
        self.consumer.close().await
    }

    async fn run_transactional<Out, F, S>(&self, mut transform: F, shutdown: S) -> Result<()>
    where
        Out: Event,
        F: FnMut(&Received<In>) -> Vec<Out>,
        S: Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        loop {
            // Wait for the first record of a batch (or shutdown) before opening a transaction.
            let first = tokio::select! {
                () = &mut shutdown => break,
                received = self.consumer.recv() => received?,
            };
            self.txn("begin transaction", |p| p.begin_transaction())
                .await?;
            let result = self.fill_batch(first, &mut transform).await;
            match result {
                Ok((offsets, produced)) => {
                    let metadata =
                        self.consumer
                            .rdkafka()
                            .group_metadata()
                            .ok_or_else(|| Error::Kafka {
                                operation: "send offsets to transaction",
                                topic: None,
                                source: rdkafka::error::KafkaError::Canceled,
                            })?;
                    let tpl = offsets_tpl(&offsets)?;
                    self.txn("send offsets to transaction", move |p| {
                        p.send_offsets_to_transaction(&tpl, &metadata, Duration::from_secs(30))
                    })
                    .await?;
                    self.txn("commit transaction", |p| {
                        p.commit_transaction(Duration::from_secs(30))
                    })
                    .await?;
                    self.stats.produced.fetch_add(produced, Ordering::Relaxed);
                    self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                    debug!(inputs = offsets.len(), produced, "transaction committed");
                }
                Err(error) => {
                    let _ = self
                        .txn("abort transaction", |p| {
                            p.abort_transaction(Duration::from_secs(30))
                        })
                        .await;
                    return Err(error);
                }
            }
        }
        self.consumer.close().await
    }

    /// Reads up to `batch_size` inputs (or for `batch_linger`), produces their outputs, and
    /// waits for the acknowledgements. Returns the next offset per partition and the number of
    /// outputs.
    async fn fill_batch<Out, F>(
        &self,
        first: Received<In>,
        transform: &mut F,
    ) -> Result<(BTreeMap<(String, i32), i64>, u64)>
    where
        Out: Event,
        F: FnMut(&Received<In>) -> Vec<Out>,
    {
        let deadline = tokio::time::Instant::now() + self.options.batch_linger;
        let mut offsets = BTreeMap::new();
        let mut deliveries = Vec::new();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(received) = next.take() {
            self.stats.consumed.fetch_add(1, Ordering::Relaxed);
            count += 1;
            for out in transform(&received) {
                deliveries.push(self.producer.enqueue_to(Out::TOPIC, &out).await?);
            }
            offsets.insert(
                (received.meta.topic.clone(), received.meta.partition),
                received.meta.offset + 1,
            );
            if count < self.options.batch_size {
                next = tokio::select! {
                    () = tokio::time::sleep_until(deadline) => None,
                    received = self.consumer.recv() => Some(received?),
                };
            }
        }
        let produced = deliveries.len() as u64;
        for delivery in deliveries {
            delivery.await?;
        }
        Ok((offsets, produced))
    }

    /// Runs a blocking transaction call of the producer on the blocking pool.
    async fn txn<T, F>(&self, operation: &'static str, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(
                &rdkafka::producer::FutureProducer<crate::context::LoggingContext>,
            ) -> rdkafka::error::KafkaResult<T>
            + Send
            + 'static,
    {
        let producer = self.producer.rdkafka().clone();
        tokio::task::spawn_blocking(move || call(&producer))
            .await
            .map_err(|_| Error::Kafka {
                operation,
                topic: None,
                source: rdkafka::error::KafkaError::Canceled,
            })?
            .map_err(|source| Error::Kafka {
                operation,
                topic: None,
                source,
            })
    }
}

fn offsets_tpl(offsets: &BTreeMap<(String, i32), i64>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|source| Error::Kafka {
                operation: "send offsets to transaction",
                topic: Some(topic.clone()),
                source,
            })?;
    }
    Ok(tpl)
}
