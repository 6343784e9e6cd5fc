//! The root of the library: one [`Client`] per application, built once from a [`Config`], that
//! hands out producers, consumers and pipelines sharing its codec, its hooks and its OAuth
//! token sources.

use std::{fmt, sync::Arc};

use rdkafka::{config::FromClientConfigAndContext, types::RDKafkaErrorCode};
use secrecy::ExposeSecret;

use crate::{
    Codec, Config, Consumer, ConsumerOptions, Error, Event, Pipeline, PipelineOptions, Producer,
    Result,
    auth::{KafkaOAuth, OAuthBearerClient, OAuthClientCredentials, RefreshHandle, TokenProvider},
    config::OAuthSettings,
    consumer::Mode,
    context::{DefaultHooks, Hooks, KafkaContext},
    error::KafkaOperation,
    registry::RegistryAuth,
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
/// let client = Client::from_config(Config::from_file("client.properties")?.with_env_overrides())?;
/// let producer = client.producer().await?;
/// producer.send(&Reading { sensor: "fridge-1".into() }).await?;
/// let consumer = client.consumer::<Reading>("dashboard").await?;
/// let received = consumer.recv().await?;
/// consumer.ack(&received.meta)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    codec: Arc<Codec>,
    hooks: Arc<dyn Hooks>,
    /// SASL/OAUTHBEARER through the library (`sasl.oauthbearer.method=oidc`).
    kafka_oauth: Option<KafkaOAuth>,
    /// `sasl.mechanisms`, for the errors of refused credentials.
    mechanism: Option<String>,
    /// One token source per OAuth identity.
    token_sources: Vec<Arc<TokenProvider>>,
    /// `dlq.topic.suffix`.
    dlq_suffix: String,
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
    /// [`Error::Config`] naming the missing or bad key.
    pub fn build(self) -> Result<Client> {
        let Self { config, hooks } = self;
        config.validate()?;
        let mut sources = TokenSources::default();
        let kafka_oauth = match config.kafka_oauth()? {
            None => None,
            Some(settings) => Some(KafkaOAuth::with_extensions(
                sources.get(&settings.credentials, &hooks)?,
                settings.extensions,
            )),
        };
        let mut registry = config.registry_config()?;
        if let RegistryAuth::OAuth { provider, .. } = &mut registry.auth {
            let settings = config
                .registry_oauth()?
                .ok_or_else(|| Error::Config {
                    key: "bearer.auth.credentials.source".into(),
                    reason: "OAUTHBEARER settings are incomplete".into(),
                })?
                .credentials;
            *provider = sources.get(&settings, &hooks)?;
        }
        let codec = Arc::new(Codec::new(&registry, config.codec_options()?)?);
        let mechanism = config
            .get("sasl.mechanisms")
            .or_else(|| config.get("sasl.mechanism"))
            .map(str::to_owned);
        let dlq_suffix = config.dead_letter_suffix()?.to_owned();
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                codec,
                hooks,
                kafka_oauth,
                mechanism,
                token_sources: sources.into_providers(),
                dlq_suffix,
            }),
        })
    }
}

impl Client {
    /// Validates `config` and builds a client with the [`DefaultHooks`]. Sends no request.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or bad key.
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

    /// The OAuth token sources, one per identity (client credentials at a token endpoint with
    /// a scope): none without OAuth, one when Kafka and the Schema Registry use the same
    /// identity, two when they use different ones. For metrics (`fetch_count`) and tests.
    pub fn token_sources(&self) -> &[Arc<TokenProvider>] {
        &self.inner.token_sources
    }

    /// The suffix of default dead-letter topics (`dlq.topic.suffix`, default `.dlq`).
    pub fn dead_letter_suffix(&self) -> &str {
        &self.inner.dlq_suffix
    }

    /// A new idempotent producer. It is never transactional: a `transactional.id` in the
    /// configuration is left to [`Client::pipeline`].
    ///
    /// # Errors
    /// [`Error::Kafka`] when librdkafka refuses the configuration, [`Error::Auth`] when the
    /// OAuth token endpoint refuses the client credentials.
    pub async fn producer(&self) -> Result<Producer> {
        Producer::create(self, false).await
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
        Consumer::create(self, options.into(), topics, Mode::AtLeastOnce).await
    }

    /// A new consume-transform-produce pipeline from `In` events; transactional when the
    /// configuration has a `transactional.id`. `options` may be just the group id.
    ///
    /// # Errors
    /// As [`Client::producer`], and [`Error::Kafka`] when the transactions cannot be
    /// initialised.
    pub async fn pipeline<In: Event>(
        &self,
        options: impl Into<PipelineOptions>,
    ) -> Result<Pipeline<In>> {
        Pipeline::create(self, options.into()).await
    }

    /// Creates an rdkafka client of type `T` for `rd`, with a fresh [`KafkaContext`] calling
    /// the client's hooks (returned too: it shares its state with the client's own); with OAuth
    /// configured, hands it the current token of the shared source and keeps it fresh for as
    /// long as the returned guard lives.
    pub(crate) async fn create_native<T>(
        &self,
        rd: &rdkafka::ClientConfig,
        name: &'static str,
        operation: KafkaOperation,
    ) -> Result<(Arc<T>, AuthGuard, KafkaContext)>
    where
        T: FromClientConfigAndContext<KafkaContext> + OAuthBearerClient,
    {
        let context = KafkaContext::with_hooks(name, self.inner.hooks.clone());
        if let Some(mechanism) = &self.inner.mechanism {
            context.set_sasl_mechanism(mechanism);
        }
        let shared = context.clone();
        let watched = context.clone();
        let client = T::from_config_and_context(rd, context).map_err(|source| Error::Kafka {
            operation,
            topic: None,
            source,
        })?;
        let client = Arc::new(client);
        let guard = match &self.inner.kafka_oauth {
            None => AuthGuard::default(),
            Some(oauth) => {
                // A token a broker refused is not handed to the next client: the shared
                // source forgets it (and fetches anew when next asked).
                let provider = oauth.provider().clone();
                let forget = tokio::spawn(async move {
                    let refusal = watched.refused().await;
                    if matches!(
                        refusal.code,
                        RDKafkaErrorCode::Authentication
                            | RDKafkaErrorCode::SaslAuthenticationFailed
                    ) {
                        provider.forget().await;
                    }
                });
                let mut guard = AuthGuard {
                    forget: Some(forget),
                    refresh: None,
                };
                guard.refresh = Some(oauth.install(&client).await?);
                guard
            }
        };
        Ok((client, guard, shared))
    }
}

/// Keeps a client's authentication alive (the OAuth token refresh task); dropping it stops
/// the refreshing.
#[derive(Debug, Default)]
pub(crate) struct AuthGuard {
    /// Makes the shared token source forget a token a broker refused.
    forget: Option<tokio::task::JoinHandle<()>>,
    /// Dropping it stops the refresh task.
    #[allow(dead_code)]
    refresh: Option<RefreshHandle>,
}

impl Drop for AuthGuard {
    fn drop(&mut self) {
        if let Some(task) = &self.forget {
            task.abort();
        }
    }
}

/// The token sources of one client, keyed by identity.
#[derive(Default)]
struct TokenSources {
    sources: Vec<(OAuthSettings, Arc<TokenProvider>)>,
}

impl TokenSources {
    /// The source for `settings`' identity, created on first use.
    fn get(
        &mut self,
        settings: &OAuthSettings,
        hooks: &Arc<dyn Hooks>,
    ) -> Result<Arc<TokenProvider>> {
        let same = |known: &OAuthSettings| {
            known.token_endpoint == settings.token_endpoint
                && known.client_id == settings.client_id
                && known.scope == settings.scope
                && known.client_secret.expose_secret() == settings.client_secret.expose_secret()
        };
        if let Some((_, provider)) = self.sources.iter().find(|(known, _)| same(known)) {
            return Ok(provider.clone());
        }
        let provider = Arc::new(token_provider(settings)?.with_hooks(hooks.clone()));
        self.sources.push((settings.clone(), provider.clone()));
        Ok(provider)
    }

    fn into_providers(self) -> Vec<Arc<TokenProvider>> {
        self.sources.into_iter().map(|(_, p)| p).collect()
    }
}

/// A token provider for `settings`.
pub(crate) fn token_provider(settings: &OAuthSettings) -> Result<TokenProvider> {
    let mut credentials = OAuthClientCredentials::new(
        settings.token_endpoint.clone(),
        settings.client_id.clone(),
        settings.client_secret.clone(),
    );
    if let Some(scope) = &settings.scope {
        credentials = credentials.with_scope(scope.clone());
    }
    TokenProvider::new(credentials)
}
