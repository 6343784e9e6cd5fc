//! The root of the library: one [`Client`] per application, built once from a [`Config`], that
//! hands out producers, consumers and pipelines sharing its codec, its hooks and its OAuth
//! token sources.

use std::{fmt, sync::Arc, time::Duration};

use crate::{
    Codec, Config, Consumer, ConsumerOptions, Event, Format, Pipeline, PipelineOptions, Producer,
    Replay, Result,
    consumer::Mode,
    context::{DefaultHooks, Hooks},
    shared::Shared,
};

/// The root of the library, as rskafka's `Client` or tonic's `Channel`: built once from a
/// [`Config`], it validates the configuration once, owns the [`Codec`] (and its Schema
/// Registry client), owns one OAuth token source per identity, shared by the Kafka
/// SASL/OAUTHBEARER login of every client it creates and by the registry's bearer headers, and
/// hands out [`Producer`]s, [`Consumer`]s and [`Pipeline`]s.
///
/// Cheap to clone (the clones share everything). Creating a client sends no request: tokens
/// are fetched when the first Kafka client is created or the registry is first asked.
///
/// ```no_run
/// # async fn run() -> avro_events::Result<()> {
/// # #[derive(Debug, serde::Serialize, serde::Deserialize)] struct Reading { sensor: String }
/// # impl avro_events::Event for Reading {
/// #     const TOPIC: &'static str = "sensor.readings.v1";
/// #     const SCHEMA: &'static str = r#"{"type":"record","name":"Reading","fields":[{"name":"sensor","type":"string"}]}"#;
/// #     const FULL_NAME: &'static str = "Reading";
/// #     fn key(&self) -> String { self.sensor.clone() }
/// # }
/// use avro_events::{Client, Config};
///
/// let config = Config::from_file("client.properties")?.with_env_overrides("MYAPP_");
/// let client = Client::from_config(config)?;
/// let producer = client.producer().await?;
/// producer.send(&Reading { sensor: "fridge-1".into() }).await?;
/// let consumer = client.consumer::<Reading>("dashboard").await?;
/// let received = consumer.recv().await?;
/// consumer.ack(&received.meta)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("token_sources", &self.inner.token_sources)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with other [`Hooks`] than the [`DefaultHooks`].
pub struct ClientBuilder {
    config: Config,
    hooks: Arc<dyn Hooks>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Calls `hooks` instead of the [`DefaultHooks`].
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// Calls `hooks` (shared with the caller) instead of the [`DefaultHooks`].
    pub fn shared_hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Validates the configuration and builds the client. Sends no request.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the missing or bad key.
    pub fn build(self) -> Result<Client> {
        let Self { config, hooks } = self;
        Ok(Client {
            inner: Arc::new(Shared::new(config, hooks)?),
        })
    }
}

impl Client {
    /// Validates `config` and builds a client with the [`DefaultHooks`]. Sends no request.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the missing or bad key.
    pub fn from_config(config: Config) -> Result<Self> {
        Self::builder(config).build()
    }

    /// A builder, to give the client its own [`Hooks`].
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder {
            config,
            hooks: Arc::new(DefaultHooks),
        }
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The codec every producer and consumer of this client encodes and decodes with; its
    /// registry client (`codec().registry()`) authenticates with the client's token sources.
    pub fn codec(&self) -> &Arc<Codec> {
        &self.inner.codec
    }

    /// The hooks the client's Kafka clients call.
    pub fn hooks(&self) -> &dyn Hooks {
        self.inner.hooks.as_ref()
    }

    /// The suffix of default dead-letter topics (`dlq.topic.suffix`, default `.dlq`).
    pub fn dead_letter_suffix(&self) -> &str {
        &self.inner.settings.dlq_suffix
    }

    /// A new idempotent producer. It is never transactional: a `transactional.id` in the
    /// configuration is left to [`Client::pipeline`].
    ///
    /// # Errors
    /// [`Error::Kafka`](crate::Error::Kafka) when librdkafka refuses the configuration,
    /// [`Error::Auth`](crate::Error::Auth) when the OAuth token endpoint refuses the client
    /// credentials.
    pub async fn producer(&self) -> Result<Producer> {
        Producer::create(&self.inner, false).await
    }

    /// A new transactional producer with the configuration's `transactional.id`, its
    /// transactions not initialised yet: call [`Producer::init_transactions`] (which needs the
    /// brokers; retry it while they cannot be reached) before the first transaction. That
    /// fences any earlier producer with the same id and aborts the transaction it left open (a
    /// process that died mid-transaction). Transactions are begun, committed and aborted
    /// through [`Producer::rdkafka`]; librdkafka refuses a send outside one.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) without `transactional.id`; otherwise as
    /// [`Client::producer`].
    pub async fn transactional_producer(&self) -> Result<Producer> {
        Producer::create_transactional(&self.inner).await
    }

    /// A new consumer of `E`, subscribed to [`Event::TOPIC`]; `options` may be just the group
    /// id (`client.consumer::<E>("dashboard")`).
    ///
    /// # Errors
    /// As [`Client::producer`].
    pub async fn consumer<E: Event>(
        &self,
        options: impl Into<ConsumerOptions>,
    ) -> Result<Consumer<E>> {
        self.consumer_subscribed_to(options, &[E::TOPIC]).await
    }

    /// A new consumer of `E` subscribed to `topics`.
    ///
    /// # Errors
    /// As [`Client::producer`].
    pub async fn consumer_subscribed_to<E: Event>(
        &self,
        options: impl Into<ConsumerOptions>,
        topics: &[&str],
    ) -> Result<Consumer<E>> {
        Consumer::create(&self.inner, options.into(), topics, Mode::AtLeastOnce).await
    }

    /// A new idempotent producer encoding with `format` instead of the client's Avro
    /// [`Codec`]: the way to another serialization format ([`Format`]), with everything else
    /// (settings, hooks, OAuth, dead letters, traces) as [`Client::producer`].
    ///
    /// # Errors
    /// As [`Client::producer`].
    pub async fn producer_with_format<F: Format>(&self, format: Arc<F>) -> Result<Producer<F>> {
        Producer::create_with(&self.inner, format, false).await
    }

    /// A new consumer of `E` subscribed to `topics`, decoding with `format` instead of the
    /// client's Avro [`Codec`] (see [`Client::producer_with_format`]).
    ///
    /// # Errors
    /// As [`Client::producer`].
    pub async fn consumer_with_format<E: Event, F: Format>(
        &self,
        options: impl Into<ConsumerOptions>,
        topics: &[&str],
        format: Arc<F>,
    ) -> Result<Consumer<E, F>> {
        Consumer::create_with(
            &self.inner,
            format,
            options.into(),
            topics,
            Mode::AtLeastOnce,
        )
        .await
    }

    /// A new consume-transform-produce pipeline from `In` events; transactional when the
    /// configuration has a `transactional.id`. `options` may be just the group id.
    ///
    /// # Errors
    /// As [`Client::producer`], and [`Error::Kafka`](crate::Error::Kafka) when the transactions
    /// cannot be initialised.
    pub async fn pipeline<In: Event>(
        &self,
        options: impl Into<PipelineOptions>,
    ) -> Result<Pipeline<In>> {
        Pipeline::create(&self.inner, options.into()).await
    }

    /// A new pipeline like [`Client::pipeline`] whose inputs are decoded and outputs encoded
    /// with `format` instead of the client's Avro [`Codec`] (see
    /// [`Client::producer_with_format`]): the transform returns [`Outputs<F>`](crate::Outputs)
    /// (or a `Vec` or `Option` of events), and everything else (transactions, dead letters,
    /// traces, backoff while the format cannot encode yet) is as for an Avro pipeline.
    ///
    /// # Errors
    /// As [`Client::pipeline`].
    pub async fn pipeline_with_format<In: Event, F: Format>(
        &self,
        options: impl Into<PipelineOptions>,
        format: Arc<F>,
    ) -> Result<Pipeline<In, F>> {
        Pipeline::create_with(&self.inner, format, options.into()).await
    }

    /// A [`Replay`] of [`Event::TOPIC`]: every partition assigned from its beginning, and the
    /// end offsets of that moment noted. `options` names the group (used for nothing but
    /// librdkafka's `group.id`; no offsets are read from it or committed to it); its
    /// dead-letter topic is not used (a replay passes over undecodable records).
    ///
    /// # Errors
    /// As [`Client::consumer`], and [`Error::Kafka`](crate::Error::Kafka)
    /// ([`KafkaOperation::Assign`](crate::KafkaOperation::Assign)) when the topic's metadata or
    /// end offsets cannot be read within `timeout` (brokers unreachable, the topic unknown or
    /// not readable) or the assignment is refused.
    pub async fn replay<E: Event>(
        &self,
        options: impl Into<ConsumerOptions>,
        timeout: Duration,
    ) -> Result<Replay<E>> {
        Replay::create(&self.inner, options.into(), timeout, Default::default()).await
    }

    /// A [`Replay`] of [`Event::TOPIC`] like [`Client::replay`], except that the partitions
    /// named in `from` are read from the offset given (e.g. where a snapshot of the topic
    /// left off); the others from their beginning. An offset below a partition's first one
    /// reads it from its beginning.
    ///
    /// # Errors
    /// As [`Client::replay`].
    pub async fn replay_from<E: Event>(
        &self,
        options: impl Into<ConsumerOptions>,
        timeout: Duration,
        from: std::collections::BTreeMap<i32, i64>,
    ) -> Result<Replay<E>> {
        Replay::create(&self.inner, options.into(), timeout, from).await
    }

    /// A [`Replay`] of [`Event::TOPIC`] starting, in each partition, at the first record whose
    /// timestamp is at or after `since_ms` (ms since the Unix epoch; broker-side
    /// `offsets_for_times`) rather than at the beginning: to rebuild what only the last hours
    /// decide without reading the topic's whole retention. A partition for which the broker
    /// answers no offset (no record that recent, or a broker that does not look offsets up by
    /// time, such as librdkafka's mock cluster) is read from its beginning: the replay never
    /// misses a record at or after `since_ms`, but may hand out older ones, which a caller
    /// that needs the window exactly skips by [`RecordMeta::timestamp_ms`](crate::RecordMeta).
    /// The end offsets are those of the moment the replay starts, as for [`Client::replay`].
    ///
    /// # Errors
    /// As [`Client::replay`]; the offsets lookup counts as the assignment.
    pub async fn replay_since<E: Event>(
        &self,
        options: impl Into<ConsumerOptions>,
        timeout: Duration,
        since_ms: i64,
    ) -> Result<Replay<E>> {
        Replay::create_since(&self.inner, options.into(), timeout, Some(since_ms)).await
    }

    /// A [`Replay`] of [`Event::TOPIC`] decoding with `format` instead of the client's Avro
    /// [`Codec`] (see [`Client::producer_with_format`]).
    ///
    /// # Errors
    /// As [`Client::replay`].
    pub async fn replay_with_format<E: Event, F: Format>(
        &self,
        options: impl Into<ConsumerOptions>,
        timeout: Duration,
        format: Arc<F>,
    ) -> Result<Replay<E, F>> {
        Replay::create_with(
            &self.inner,
            format,
            options.into(),
            timeout,
            None,
            Default::default(),
        )
        .await
    }
}
