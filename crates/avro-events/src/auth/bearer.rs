//! Confluent Cloud's Schema Registry headers for bearer auth
//! (`bearer.auth.credentials.source=OAUTHBEARER`, `bearer.auth.logical.cluster`,
//! `bearer.auth.identity.pool.id`). The registry client sends them with every request, beside
//! `Authorization: Bearer` (see [`RegistryAuth`](crate::registry::RegistryAuth)).

/// Header naming the Schema Registry logical cluster (`lsrc-…`).
pub const TARGET_SR_CLUSTER: &str = "target-sr-cluster";
/// Header naming the identity pool (`pool-…`).
pub const IDENTITY_POOL_ID: &str = "Confluent-Identity-Pool-Id";
