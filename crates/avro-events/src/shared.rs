//! The state every producer, consumer, pipeline and replay of one [`Client`](crate::Client) is
//! built from, constructed in one place ([`Shared::new`]): the settings parsed once, the codec,
//! the hooks and one OAuth token source per identity. Children get this handle, never the
//! client.

use std::{fmt, sync::Arc};

use rdkafka::{config::FromClientConfigAndContext, types::RDKafkaErrorCode};
use secrecy::ExposeSecret;

use crate::{
    Codec, Config, Error, Result,
    auth::{KafkaOAuth, OAuthBearerClient, RefreshHandle, TokenProvider},
    config::{OAuthSettings, Settings},
    context::{Hooks, KafkaContext},
    error::KafkaOperation,
};

/// What the children of one client share.
pub(crate) struct Shared {
    /// The configuration, as given (for [`Client::config`](crate::Client::config)).
    pub(crate) config: Config,
    /// Every setting of `config`, parsed once.
    pub(crate) settings: Settings,
    pub(crate) codec: Arc<Codec>,
    pub(crate) hooks: Arc<dyn Hooks>,
    /// SASL/OAUTHBEARER through the library (`sasl.oauthbearer.method=oidc`).
    kafka_oauth: Option<KafkaOAuth>,
    /// One token source per OAuth identity.
    pub(crate) token_sources: Vec<Arc<TokenProvider>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("token_sources", &self.token_sources)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Parses and checks `config` (once) and builds the shared state: the token sources (one
    /// per identity, shared by Kafka's login and the registry's bearer headers) and the codec.
    /// Sends no request.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or bad key.
    pub(crate) fn new(config: Config, hooks: Arc<dyn Hooks>) -> Result<Self> {
        let settings = Settings::parse(&config)?;
        let mut sources = TokenSources::default();
        let kafka_oauth = match &settings.kafka.oauth {
            None => None,
            Some(oauth) => Some(KafkaOAuth::with_extensions(
                sources.get(&oauth.credentials, &hooks)?,
                oauth.extensions.clone(),
            )),
        };
        let registry_provider = match &settings.registry.oauth {
            None => None,
            Some(oauth) => Some(sources.get(&oauth.credentials, &hooks)?),
        };
        let registry = settings.registry.config(registry_provider);
        let codec = Arc::new(
            Codec::new(&registry, settings.codec)?
                .with_latest_metadata(settings.latest_metadata.clone()),
        );
        Ok(Self {
            config,
            settings,
            codec,
            hooks,
            kafka_oauth,
            token_sources: sources.into_providers(),
        })
    }

    /// Creates an rdkafka client of type `T` for `rd`, with a fresh [`KafkaContext`] calling
    /// the shared hooks (returned too: it shares its state with the client's own); with OAuth
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
        let context = KafkaContext::with_hooks(name, self.hooks.clone());
        if let Some(mechanism) = &self.settings.kafka.mechanism {
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
        let guard = match &self.kafka_oauth {
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
        let provider = Arc::new(settings.token_provider()?.with_hooks(hooks.clone()));
        self.sources.push((settings.clone(), provider.clone()));
        Ok(provider)
    }

    fn into_providers(self) -> Vec<Arc<TokenProvider>> {
        self.sources.into_iter().map(|(_, p)| p).collect()
    }
}
