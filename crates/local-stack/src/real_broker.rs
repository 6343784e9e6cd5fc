//! The stack's real-broker variant: a [`KafkaBroker`] (or a [`KafkaCluster`] of several) with
//! the application's topics, the test identity provider, one identity per service and
//! least-privilege ACLs.

use std::time::Duration;

use grocery_events::topics;

use crate::{
    broker::{
        AclOperation as Op, AclResource as Res, AclRule, BrokerError, KafkaBroker,
        KafkaBrokerOptions, KafkaCluster,
    },
    client_properties::{ClientAuth, client_properties},
    idp::{IdentityProvider, IdpOptions},
    stack::StackError,
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

/// The identity order-producer uses: may write orders.
pub const ORDER_PRODUCER: &str = "order-producer";
/// The identity fulfillment-service uses: reads orders, writes pick lists and the orders' DLQ.
pub const FULFILLMENT: &str = "fulfillment-service";
/// The identity picklist-consumer uses: reads pick lists.
pub const PICKLIST_CONSUMER: &str = "picklist-consumer";
/// An identity allowed everything (tools, tests, the demo).
pub const ADMIN: &str = "grocery-admin";
/// Every identity a real-broker stack registers.
pub const IDENTITIES: [&str; 4] = [ORDER_PRODUCER, FULFILLMENT, PICKLIST_CONSUMER, ADMIN];

/// The OAuth scope clients request.
const SCOPE: &str = "kafka";

/// The least-privilege ACLs of the application's identities.
pub fn service_acls() -> Vec<AclRule> {
    let user = |name: &str| format!("User:{name}");
    let dlq = |topic: &str| topics::dead_letter(topic);
    let mut rules = Vec::new();
    let mut topic = |who: &str, name: &str, ops: &[Op]| {
        for op in ops {
            rules.push(AclRule::allow(user(who), Res::Topic, name, *op));
        }
    };
    // The Order API writes orders and rebuilds its order-history view from the status
    // changes, as a replay: a status record it cannot read is passed over and counted, never
    // dead-lettered (no write on the status dead-letter topic, as in terraform/access.tf).
    topic(ORDER_PRODUCER, topics::ORDERS, &[Op::Write, Op::Describe]);
    topic(
        ORDER_PRODUCER,
        topics::ORDER_STATUS,
        &[Op::Read, Op::Describe],
    );
    // The latest state of each order: the Order API writes it (transactional id order-api-state,
    // below) and starts its view from it; picklist-consumer starts its restore from it.
    topic(
        ORDER_PRODUCER,
        topics::ORDER_STATE,
        &[Op::Write, Op::Read, Op::Describe],
    );
    topic(
        PICKLIST_CONSUMER,
        topics::ORDER_STATE,
        &[Op::Read, Op::Describe],
    );
    // Fulfillment writes RECEIVED and PICKLIST_CREATED, store staff (picklist-consumer) the
    // picking states.
    topic(
        FULFILLMENT,
        topics::ORDER_STATUS,
        &[Op::Write, Op::Describe],
    );
    // Store staff's steps, read back with the pick lists on start (the page's lists not yet
    // ready) as a replay: status records it cannot read are passed over, never dead-lettered.
    topic(
        PICKLIST_CONSUMER,
        topics::ORDER_STATUS,
        &[Op::Write, Op::Read, Op::Describe],
    );
    topic(FULFILLMENT, topics::ORDERS, &[Op::Read, Op::Describe]);
    topic(FULFILLMENT, topics::PICKLISTS, &[Op::Write, Op::Describe]);
    topic(
        FULFILLMENT,
        &dlq(topics::ORDERS),
        &[Op::Write, Op::Describe],
    );
    topic(
        PICKLIST_CONSUMER,
        topics::PICKLISTS,
        &[Op::Read, Op::Describe],
    );
    topic(
        PICKLIST_CONSUMER,
        &dlq(topics::PICKLISTS),
        &[Op::Write, Op::Describe],
    );
    let prefixed = |who: &str, resource: Res, prefix: &str, op: Op| {
        AclRule::allow(user(who), resource, prefix, op).prefixed()
    };
    rules.push(prefixed(FULFILLMENT, Res::Group, "fulfillment", Op::Read));
    rules.push(prefixed(
        FULFILLMENT,
        Res::Group,
        "fulfillment",
        Op::Describe,
    ));
    for op in [Op::Write, Op::Describe] {
        rules.push(prefixed(
            FULFILLMENT,
            Res::TransactionalId,
            "fulfillment",
            op,
        ));
    }
    rules.push(prefixed(
        PICKLIST_CONSUMER,
        Res::Group,
        "picklist",
        Op::Read,
    ));
    rules.push(prefixed(
        PICKLIST_CONSUMER,
        Res::Group,
        "picklist",
        Op::Describe,
    ));
    for op in [Op::Read, Op::Describe] {
        rules.push(prefixed(ORDER_PRODUCER, Res::Group, "order-api", op));
    }
    for op in [Op::Write, Op::Describe] {
        rules.push(prefixed(
            ORDER_PRODUCER,
            Res::TransactionalId,
            "order-api",
            op,
        ));
    }
    for resource in [Res::Topic, Res::Group, Res::TransactionalId] {
        rules.push(AclRule::allow(user(ADMIN), resource, "*", Op::All));
    }
    rules.push(AclRule::allow(
        user(ADMIN),
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
            .field("identities", &IDENTITIES)
            .finish_non_exhaustive()
    }
}

impl RealKafka {
    /// Starts the identity provider and `brokers` brokers: the single node for 1, a
    /// [`KafkaCluster`] for more.
    pub(crate) async fn start(
        auth: KafkaAuth,
        max_reauth: Duration,
        brokers: u16,
    ) -> Result<Self, StackError> {
        let secrets: Vec<(String, String)> = IDENTITIES
            .iter()
            .map(|id| ((*id).to_owned(), uuid::Uuid::new_v4().simple().to_string()))
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
        for topic in topics::ALL {
            broker.create_topic(topic, topics::PARTITIONS).await?;
        }
        broker.allow(service_acls()).await?;
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
