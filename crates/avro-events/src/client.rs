//! Creating rdkafka clients from a [`Config`], with the library's authentication installed.

use std::sync::Arc;

use rdkafka::config::FromClientConfigAndContext;

use crate::{
    Config, Error, Result,
    auth::{KafkaOAuth, OAuthBearerClient, OAuthClientCredentials, RefreshHandle, TokenProvider},
    config::OAuthSettings,
    context::LoggingContext,
};

/// Keeps a client's authentication alive (the OAuth token refresh task); dropping it stops
/// the refreshing.
#[derive(Debug, Default)]
pub(crate) struct AuthGuard {
    _refresh: Option<RefreshHandle>,
}

/// A token provider for `settings`.
pub(crate) fn token_provider(settings: &OAuthSettings) -> Result<Arc<TokenProvider>> {
    let mut credentials = OAuthClientCredentials::new(
        settings.token_endpoint.clone(),
        settings.client_id.clone(),
        settings.client_secret.clone(),
    );
    if let Some(scope) = &settings.scope {
        credentials = credentials.with_scope(scope.clone());
    }
    Ok(Arc::new(TokenProvider::new(credentials)?))
}

/// Creates an rdkafka client of type `T` with `context`, after validating `config`; with
/// OAuth configured, fetches the first token and keeps it fresh.
pub(crate) async fn create<T>(
    config: &Config,
    rd: rdkafka::ClientConfig,
    context: LoggingContext,
    operation: &'static str,
) -> Result<(Arc<T>, AuthGuard)>
where
    T: FromClientConfigAndContext<LoggingContext> + OAuthBearerClient,
{
    config.validate()?;
    let oauth = config.kafka_oauth()?;
    let mechanism = config
        .get("sasl.mechanisms")
        .or_else(|| config.get("sasl.mechanism"));
    if let Some(mechanism) = mechanism {
        context.set_sasl_mechanism(mechanism);
    }
    let client = T::from_config_and_context(&rd, context).map_err(|source| Error::Kafka {
        operation,
        topic: None,
        source,
    })?;
    let client = Arc::new(client);
    let guard = match oauth {
        None => AuthGuard::default(),
        Some(settings) => {
            let kafka_oauth = KafkaOAuth::with_extensions(
                token_provider(&settings.credentials)?,
                settings.extensions,
            );
            AuthGuard {
                _refresh: Some(kafka_oauth.install(&client).await?),
            }
        }
    };
    Ok((client, guard))
}
