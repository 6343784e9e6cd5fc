//! OAuth for Confluent Cloud, on both sides:
//!
//! - [`TokenProvider`] fetches access tokens with the OAuth2 client-credentials grant from
//!   [`OAuthClientCredentials`], caches them and refreshes them at 80% of their lifetime;
//! - [`KafkaOAuth`] hands them to librdkafka as SASL/OAUTHBEARER tokens together with the SASL
//!   extensions Confluent Cloud needs (`logicalCluster`, `identityPoolId`), and keeps them fresh;
//! - the Schema Registry client sends them as `Authorization: Bearer`, with the
//!   `target-sr-cluster` and `Confluent-Identity-Pool-Id` headers (Confluent's
//!   `bearer.auth.credentials.source=OAUTHBEARER`); see
//!   [`RegistryAuth::OAuth`](crate::registry::RegistryAuth::OAuth) and
//!   [`BearerTokenSource`](crate::registry::BearerTokenSource).
//!
//! Neither the client secret nor a token ever appears in `Debug` output or an error message.

//! Without the `kafka` feature only the registry header names are here (the token client needs
//! `oauth2`).

mod bearer;
#[cfg(feature = "kafka")]
mod exchange;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "kafka")]
mod token;

pub use bearer::{IDENTITY_POOL_ID, TARGET_SR_CLUSTER};
#[cfg(feature = "kafka")]
pub(crate) use kafka::parse_extensions;
#[cfg(feature = "kafka")]
pub use kafka::{KafkaOAuth, OAuthBearerClient, RefreshHandle};
#[cfg(feature = "kafka")]
pub(crate) use token::check_token_endpoint;
#[cfg(feature = "kafka")]
pub use token::{AccessToken, ClientAuthMethod, OAuthClientCredentials, TokenProvider};
