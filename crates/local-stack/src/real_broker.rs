//! The stack's real-broker variant: a [`KafkaBroker`] (or a [`KafkaCluster`] of several) with
//! the application's topics, the test identity provider, the application's identities and the
//! ACLs it gives them (all from [`StackOptions`]), and [`ADMIN`].

use crate::{
    broker::{
        AclOperation as Op, AclResource as Res, AclRule, BrokerError, KafkaBroker,
        KafkaBrokerOptions, KafkaCluster,
    },
    client_properties::{ClientAuth, client_properties},
    idp::{IdentityProvider, IdpOptions},
    stack::{StackError, StackOptions},
};

/// How clients of a real-broker stack authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KafkaAuth {
    /// The PLAINTEXT listener: no authentication, everything allowed.
    #[default]
    None,
    /// SASL OAUTHBEARER with client-credentials tokens from the test identity provider.
    OAuth,
    /// SASL PLAIN with per-service API keys.
    Plain,
}

impl std::str::FromStr for KafkaAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "oauth" => Ok(Self::OAuth),
            "plain" => Ok(Self::Plain),
            other => Err(format!(
                "unknown auth mode '{other}': expected none, oauth or plain"
            )),
        }
    }
}

/// The stack's own identity, allowed everything (tools, tests, the demo); the application's
/// identities come from [`StackOptions::identities`](crate::StackOptions::identities).
pub const ADMIN: &str = "admin";

/// The OAuth scope clients request.
const SCOPE: &str = "kafka";

/// The ACLs that let [`ADMIN`] do everything.
fn admin_acls() -> Vec<AclRule> {
    let admin = format!("User:{ADMIN}");
    let mut rules: Vec<AclRule> = [Res::Topic, Res::Group, Res::TransactionalId]
        .into_iter()
        .map(|resource| AclRule::allow(admin.clone(), resource, "*", Op::All))
        .collect();
    rules.push(AclRule::allow(
        admin,
        Res::Cluster,
        "kafka-cluster",
        Op::All,
    ));
    rules
}

/// The single-node broker or a cluster.
#[derive(Debug)]
pub(crate) enum RealBrokers {
    Single(KafkaBroker),
    Cluster(KafkaCluster),
}

impl RealBrokers {
    pub(crate) fn plaintext_bootstrap(&self) -> String {
        match self {
            Self::Single(broker) => broker.plaintext_bootstrap(),
            Self::Cluster(cluster) => cluster.plaintext_bootstrap(),
        }
    }

    fn oauth_bootstrap(&self) -> Option<String> {
        match self {
            Self::Single(broker) => broker.oauth_bootstrap(),
            Self::Cluster(cluster) => cluster.oauth_bootstrap(),
        }
    }

    fn plain_bootstrap(&self) -> String {
        match self {
            Self::Single(broker) => broker.plain_bootstrap(),
            Self::Cluster(cluster) => cluster.plain_bootstrap(),
        }
    }

    pub(crate) async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
    ) -> Result<(), BrokerError> {
        match self {
            Self::Single(broker) => broker.create_topic(name, partitions).await,
            Self::Cluster(cluster) => cluster.create_topic(name, partitions).await,
        }
    }

    async fn allow(&self, rules: Vec<AclRule>) -> Result<(), BrokerError> {
        match self {
            Self::Single(broker) => broker.allow(rules).await,
            Self::Cluster(cluster) => cluster.allow(rules).await,
        }
    }

    pub(crate) async fn stop(&self) -> Result<(), BrokerError> {
        match self {
            Self::Single(broker) => broker.stop().await,
            Self::Cluster(cluster) => cluster.stop().await,
        }
    }
}

/// Each broker's heap in a cluster: three brokers and the controller share a small machine.
const CLUSTER_BROKER_HEAP_MIB: u32 = 512;

/// A real broker with its identity provider and the secrets of the stack's identities.
pub(crate) struct RealKafka {
    pub(crate) broker: RealBrokers,
    pub(crate) idp: IdentityProvider,
    pub(crate) auth: KafkaAuth,
    secrets: Vec<(String, String)>,
}

impl std::fmt::Debug for RealKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealKafka")
            .field("broker", &self.broker)
            .field("idp", &self.idp)
            .field("auth", &self.auth)
            .field(
                "identities",
                &self.secrets.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RealKafka {
    /// Starts the identity provider and `brokers` brokers: the single node for 1, a
    /// [`KafkaCluster`] for more.
    pub(crate) async fn start(
        auth: KafkaAuth,
        stack: &StackOptions,
        brokers: u16,
    ) -> Result<Self, StackError> {
        let max_reauth = stack.max_reauth;
        let secrets: Vec<(String, String)> = std::iter::once(ADMIN)
            .chain(stack.identities.iter().map(String::as_str))
            .map(|id| (id.to_owned(), uuid::Uuid::new_v4().simple().to_string()))
            .collect();
        let idp = IdentityProvider::start(IdpOptions {
            clients: secrets.clone(),
            ..IdpOptions::default()
        })
        .map_err(StackError::Idp)?;
        let options = KafkaBrokerOptions {
            jwks_url: Some(idp.jwks_url()),
            token_url: Some(idp.token_url()),
            audience: idp.audience().to_owned(),
            expected_issuer: Some(idp.issuer().to_owned()),
            max_reauth,
            plain_users: secrets.clone(),
            ..KafkaBrokerOptions::default()
        };
        let broker = if brokers <= 1 {
            RealBrokers::Single(KafkaBroker::start(options).await?)
        } else {
            let options = KafkaBrokerOptions {
                heap_mib: CLUSTER_BROKER_HEAP_MIB,
                ..options
            };
            RealBrokers::Cluster(KafkaCluster::start(options, brokers).await?)
        };
        for (topic, partitions) in &stack.topics {
            broker.create_topic(topic, *partitions).await?;
        }
        let mut acls = admin_acls();
        acls.extend(stack.acls.iter().cloned());
        broker.allow(acls).await?;
        Ok(Self {
            broker,
            idp,
            auth,
            secrets,
        })
    }

    /// The client properties of `identity` for the stack's auth mode (`None` for an unknown
    /// identity). With [`KafkaAuth::None`] every identity gets the PLAINTEXT listener.
    pub(crate) fn properties_for(&self, identity: &str, registry_url: &str) -> Option<String> {
        let secret = self
            .secrets
            .iter()
            .find(|(id, _)| id == identity)
            .map(|(_, s)| s.clone())?;
        let (bootstrap, auth) = match self.auth {
            KafkaAuth::None => (self.broker.plaintext_bootstrap(), ClientAuth::None),
            KafkaAuth::OAuth => (
                self.broker.oauth_bootstrap()?,
                ClientAuth::OAuth {
                    token_url: self.idp.token_url(),
                    client_id: identity.to_owned(),
                    client_secret: secret,
                    scope: Some(SCOPE.to_owned()),
                },
            ),
            KafkaAuth::Plain => (
                self.broker.plain_bootstrap(),
                ClientAuth::Plain {
                    username: identity.to_owned(),
                    password: secret,
                },
            ),
        };
        Some(format!(
            "# Local stack: Apache Kafka {} {} ({}), identity {identity}, local Schema Registry.\n{}",
            "4.1.1",
            match &self.broker {
                RealBrokers::Single(_) => "broker".to_owned(),
                RealBrokers::Cluster(cluster) => format!(
                    "cluster of {} brokers, replication factor {}",
                    cluster.broker_ids().len(),
                    cluster.replication_factor()
                ),
            },
            match self.auth {
                KafkaAuth::None => "PLAINTEXT",
                KafkaAuth::OAuth => "SASL OAUTHBEARER",
                KafkaAuth::Plain => "SASL PLAIN",
            },
            client_properties(&bootstrap, registry_url, &auth)
        ))
    }
}
