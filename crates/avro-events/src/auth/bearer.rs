//! Schema Registry bearer auth with OAuth tokens: Confluent's
//! `bearer.auth.credentials.source=OAUTHBEARER`, `bearer.auth.logical.cluster` and
//! `bearer.auth.identity.pool.id`, as a `reqwest_middleware` layer.

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest_middleware::{Middleware, Next};

use super::TokenProvider;

/// Header naming the Schema Registry logical cluster (`lsrc-…`).
pub const TARGET_SR_CLUSTER: &str = "target-sr-cluster";
/// Header naming the identity pool (`pool-…`).
pub const IDENTITY_POOL_ID: &str = "Confluent-Identity-Pool-Id";

/// Sets `Authorization: Bearer <token>`, `target-sr-cluster` and (when given)
/// `Confluent-Identity-Pool-Id` on every request, with the provider's current token. When the
/// registry answers 401 the token is dropped from the cache, so the next request fetches a new
/// one.
#[derive(Debug, Clone)]
pub struct BearerAuthMiddleware {
    provider: Arc<TokenProvider>,
    logical_cluster: HeaderValue,
    identity_pool_id: Option<HeaderValue>,
}

impl BearerAuthMiddleware {
    /// The middleware for `provider`, naming `logical_cluster` and `identity_pool_id`.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when an id cannot be sent as an HTTP header value.
    pub fn new(
        provider: Arc<TokenProvider>,
        logical_cluster: &str,
        identity_pool_id: Option<&str>,
    ) -> crate::Result<Self> {
        let header = |key: &str, value: &str| {
            HeaderValue::from_str(value).map_err(|_| crate::Error::Config {
                key: key.into(),
                reason: format!("'{value}' cannot be sent as an HTTP header value"),
            })
        };
        Ok(Self {
            provider,
            logical_cluster: header("bearer.auth.logical.cluster", logical_cluster)?,
            identity_pool_id: identity_pool_id
                .filter(|id| !id.is_empty())
                .map(|id| header("bearer.auth.identity.pool.id", id))
                .transpose()?,
        })
    }
}

#[async_trait::async_trait]
impl Middleware for BearerAuthMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let token = self
            .provider
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {}", token.secret())).map_err(|_| {
                reqwest_middleware::Error::middleware(crate::Error::Auth {
                    endpoint: crate::redact::redact_url(
                        self.provider.credentials().token_endpoint(),
                    ),
                    reason: "the access token cannot be sent in an HTTP header".into(),
                    transient: false,
                })
            })?;
        bearer.set_sensitive(true);
        let headers = req.headers_mut();
        headers.insert(AUTHORIZATION, bearer);
        headers.insert(
            HeaderName::from_static(TARGET_SR_CLUSTER),
            self.logical_cluster.clone(),
        );
        if let Some(pool) = &self.identity_pool_id {
            headers.insert(
                HeaderName::from_static("confluent-identity-pool-id"),
                pool.clone(),
            );
        }
        let response = next.run(req, extensions).await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            self.provider.invalidate(&token).await;
        }
        Ok(response)
    }
}
