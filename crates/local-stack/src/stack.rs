//! The whole local stack in one call: a Kafka broker with the application's topics and the
//! Schema Registry, on ephemeral ports of 127.0.0.1. The broker is librdkafka's mock cluster by
//! default, or a real Apache Kafka broker ([`BrokerKind::Kafka`]) with the test identity
//! provider, the application's identities and ACLs ([`StackOptions`]): a single node, or with
//! [`StackOptions::brokers`] above 1 a [`KafkaCluster`] (one KRaft controller, that many
//! brokers, replication factor 3 and `min.insync.replicas=2` as on Confluent Cloud).
//!
//! ```no_run
//! # async fn demo() -> Result<(), local_stack::StackError> {
//! let stack = local_stack::Stack::start().await?;
//! println!("{}", stack.client_properties());
//! let topic = stack.unique_topic("orders-test", 3)?; // random name, created
//! # Ok(()) }
//! ```
//!
//! Everything stops when the [`Stack`] is dropped; nothing outlives the process.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use tracing::info;

use crate::{
    broker::{AclRule, BrokerError, KafkaBroker, KafkaCluster},
    idp::IdentityProvider,
    kafka::{MockKafka, MockKafkaError},
    real_broker::{ADMIN, KafkaAuth, RealBrokers, RealKafka},
    registry::{RegistryHandle, SchemaRegistry},
};

/// A failure to start the stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The mock Kafka cluster failed.
    #[error(transparent)]
    Kafka(#[from] MockKafkaError),
    /// The Schema Registry could not start (e.g. its address is taken).
    #[error("Schema Registry: {0}")]
    Registry(#[from] std::io::Error),
    /// The real Kafka broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The identity provider could not start.
    #[error("identity provider: {0}")]
    Idp(std::io::Error),
    /// A schema of [`StackOptions::schemas`] could not be registered.
    #[error("registering the schema of subject '{subject}': {source}")]
    Schema {
        /// The subject.
        subject: String,
        /// What the registry said.
        source: Box<avro_events::Error>,
    },
}

/// A schema the stack registers in its Schema Registry at start, as an application's
/// deployment (`terraform/`) registers it: `schema` under `subject`, with its data contract
/// (Confluent's `metadata` and `ruleSet`) when there is one.
#[derive(Debug, Clone)]
pub struct StackSchema {
    /// The subject.
    pub subject: String,
    /// The Avro schema, as JSON text.
    pub schema: String,
    /// The metadata and rule set registered with it.
    pub contract: Option<avro_events::rules::Contract>,
}

/// Which broker the stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BrokerKind {
    /// librdkafka's mock cluster (in-process, fast; no SASL, transactions not enforced).
    #[default]
    Mock,
    /// A real Apache Kafka broker (a child JVM); clients authenticate with `auth`.
    Kafka {
        /// How the stack's client properties authenticate.
        auth: KafkaAuth,
    },
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Number of brokers: of the mock cluster, or with [`BrokerKind::Kafka`] 1 for the
    /// single-node broker (the default) and more for a [`KafkaCluster`] of that many brokers.
    pub brokers: i32,
    /// Address of the Schema Registry; port 0 picks a free one.
    pub registry_addr: SocketAddr,
    /// File the registry persists its schemas to, if any.
    pub registry_file: Option<PathBuf>,
    /// The application's topics, created at start with their partition counts (none by
    /// default; tests make their own with [`Stack::unique_topic`]).
    pub topics: Vec<(String, i32)>,
    /// Real broker only: the application's identities (service accounts), each given a
    /// secret, client credentials at the identity provider and a SASL PLAIN user, besides
    /// [`ADMIN`], which is always there and allowed everything.
    pub identities: Vec<String>,
    /// Real broker only: the ACLs of [`StackOptions::identities`].
    pub acls: Vec<AclRule>,
    /// Which broker to run.
    pub broker: BrokerKind,
    /// Real broker only: `connections.max.reauth.ms`, how often SASL connections re-authenticate.
    pub max_reauth: Duration,
    /// The application's schemas, registered at start (none by default).
    pub schemas: Vec<StackSchema>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            brokers: 1,
            registry_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            registry_file: None,
            topics: Vec::new(),
            identities: Vec::new(),
            acls: Vec::new(),
            broker: BrokerKind::Mock,
            max_reauth: Duration::from_secs(10),
            schemas: Vec::new(),
        }
    }
}

#[derive(Debug)]
enum Broker {
    Mock(MockKafka),
    Real(Box<RealKafka>),
}

/// A running local stack: a Kafka broker plus the Schema Registry.
#[derive(Debug)]
pub struct Stack {
    broker: Broker,
    bootstrap_servers: String,
    registry: RegistryHandle,
}

impl Stack {
    /// Starts the stack with [`StackOptions::default`].
    ///
    /// # Errors
    /// When the broker or the registry cannot start.
    pub async fn start() -> Result<Self, StackError> {
        Self::start_with(StackOptions::default()).await
    }

    /// Starts the stack with `options`.
    ///
    /// # Errors
    /// When the broker or the registry cannot start.
    pub async fn start_with(options: StackOptions) -> Result<Self, StackError> {
        let broker = match options.broker {
            BrokerKind::Mock => {
                let kafka = MockKafka::start(options.brokers)?;
                for (topic, partitions) in &options.topics {
                    kafka.create_topic(topic, *partitions)?;
                }
                Broker::Mock(kafka)
            }
            BrokerKind::Kafka { auth } => {
                let brokers = u16::try_from(options.brokers.max(1)).unwrap_or(u16::MAX);
                Broker::Real(Box::new(RealKafka::start(auth, &options, brokers).await?))
            }
        };
        let bootstrap_servers = match &broker {
            Broker::Mock(kafka) => kafka.bootstrap_servers().to_owned(),
            Broker::Real(real) => real.broker.plaintext_bootstrap(),
        };
        let registry = SchemaRegistry::start(options.registry_addr, options.registry_file).await?;
        register_schemas(&registry.url(), &options.schemas).await?;
        info!(
            %bootstrap_servers,
            registry = %registry.url(),
            "local stack started"
        );
        Ok(Self {
            broker,
            bootstrap_servers,
            registry,
        })
    }

    /// The broker's unauthenticated `bootstrap.servers` (the real broker's PLAINTEXT listener).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The Schema Registry's base URL.
    pub fn registry_url(&self) -> String {
        self.registry.url()
    }

    /// The mock Kafka cluster, e.g. to inject broker faults.
    ///
    /// # Panics
    /// When the stack runs a real broker ([`BrokerKind::Kafka`]); see [`Stack::mock_kafka`].
    #[track_caller]
    pub fn kafka(&self) -> &MockKafka {
        self.mock_kafka()
            .expect("Stack::kafka() is the mock cluster, but this stack runs a real broker")
    }

    /// The mock Kafka cluster, if the stack runs one.
    pub fn mock_kafka(&self) -> Option<&MockKafka> {
        match &self.broker {
            Broker::Mock(kafka) => Some(kafka),
            Broker::Real(_) => None,
        }
    }

    /// The real single-node Kafka broker, if the stack runs one.
    pub fn kafka_broker(&self) -> Option<&KafkaBroker> {
        match &self.broker {
            Broker::Real(real) => match &real.broker {
                RealBrokers::Single(broker) => Some(broker),
                RealBrokers::Cluster(_) => None,
            },
            Broker::Mock(_) => None,
        }
    }

    /// The real Kafka cluster, if the stack runs one ([`StackOptions::brokers`] above 1).
    pub fn kafka_cluster(&self) -> Option<&KafkaCluster> {
        match &self.broker {
            Broker::Real(real) => match &real.broker {
                RealBrokers::Cluster(cluster) => Some(cluster),
                RealBrokers::Single(_) => None,
            },
            Broker::Mock(_) => None,
        }
    }

    /// The identity provider of a real-broker stack.
    pub fn identity_provider(&self) -> Option<&IdentityProvider> {
        match &self.broker {
            Broker::Real(real) => Some(&real.idp),
            Broker::Mock(_) => None,
        }
    }

    /// The client properties of one identity ([`StackOptions::identities`] or [`ADMIN`]) on a
    /// real-broker stack, authenticating as the stack's [`KafkaAuth`] mode says; `None` on the
    /// mock stack or for an unknown identity.
    pub fn client_properties_for(&self, identity: &str) -> Option<String> {
        match &self.broker {
            Broker::Real(real) => real.properties_for(identity, &self.registry_url()),
            Broker::Mock(_) => None,
        }
    }

    /// A `client.properties` text that points a client at this stack (on a real broker: the
    /// [`ADMIN`] identity, allowed everything).
    pub fn client_properties(&self) -> String {
        if let Broker::Real(real) = &self.broker
            && let Some(text) = real.properties_for(ADMIN, &self.registry_url())
        {
            return text;
        }
        format!(
            "# Local stack: librdkafka mock cluster (no SASL/SSL) and the local Schema Registry.\n\
             bootstrap.servers={}\n\
             schema.registry.url={}\n\
             # The mock cluster keeps a departed group member until its session times out:\n\
             # a short timeout lets a restarted consumer get its partitions back quickly.\n\
             session.timeout.ms=6000\n\
             heartbeat.interval.ms=1000\n\
             # The mock broker answers a fetch only when its wait expires, not when data\n\
             # arrives: a short wait keeps end-to-end latency low.\n\
             fetch.wait.max.ms=10\n",
            self.bootstrap_servers(),
            self.registry_url()
        )
    }

    /// A [`Client`](avro_events::Client) for [`Stack::client_properties`], built as an
    /// application builds one.
    ///
    /// # Errors
    /// As [`Config::from_properties_str`](avro_events::Config::from_properties_str) and
    /// [`Client::from_config`](avro_events::Client::from_config).
    pub fn client(&self) -> avro_events::Result<avro_events::Client> {
        avro_events::Client::from_config(avro_events::Config::from_properties_str(
            &self.client_properties(),
        )?)
    }

    /// Creates a topic named `<prefix>-<random>` with `partitions` partitions, so that tests
    /// running in parallel never share one.
    ///
    /// # Errors
    /// When the cluster refuses the topic.
    pub fn unique_topic(&self, prefix: &str, partitions: i32) -> Result<String, StackError> {
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        match &self.broker {
            Broker::Mock(kafka) => kafka.create_topic(&name, partitions)?,
            Broker::Real(_) => {
                return Err(StackError::Broker(BrokerError::Admin(
                    "unique_topic is synchronous and serves the mock cluster; \
                     use Stack::create_unique_topic on a real broker"
                        .into(),
                )));
            }
        }
        Ok(name)
    }

    /// Creates a topic named `<prefix>-<random>` on whichever broker the stack runs.
    ///
    /// # Errors
    /// When the broker refuses the topic.
    pub async fn create_unique_topic(
        &self,
        prefix: &str,
        partitions: i32,
    ) -> Result<String, StackError> {
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        match &self.broker {
            Broker::Mock(kafka) => kafka.create_topic(&name, partitions)?,
            Broker::Real(real) => real.broker.create_topic(&name, partitions).await?,
        }
        Ok(name)
    }

    /// Stops the registry gracefully, then the broker (a real broker with SIGTERM).
    pub async fn shutdown(self) {
        if let Err(error) = self.registry.shutdown().await {
            tracing::warn!(%error, "Schema Registry did not stop cleanly");
        }
        if let Broker::Real(real) = &self.broker
            && let Err(error) = real.broker.stop().await
        {
            tracing::warn!(%error, "Kafka broker did not stop cleanly");
        }
        drop(self.broker);
    }
}

/// Registers `schemas` (with their contracts) in the registry at `url`.
async fn register_schemas(url: &str, schemas: &[StackSchema]) -> Result<(), StackError> {
    if schemas.is_empty() {
        return Ok(());
    }
    let failed = |subject: &str| {
        let subject = subject.to_owned();
        move |e: avro_events::Error| StackError::Schema {
            subject,
            source: Box::new(e),
        }
    };
    let client = avro_events::registry::RegistryClient::new(
        &avro_events::registry::RegistryConfig::new(url),
    )
    // A client that cannot be made fails the first registration.
    .map_err(failed(&schemas[0].subject))?;
    for schema in schemas {
        let contract = schema.contract.as_ref();
        let id = client
            .register_contract(
                &schema.subject,
                &schema.schema,
                contract.and_then(|c| c.metadata.as_ref()),
                contract.and_then(|c| c.rule_set.as_ref()),
                false,
            )
            .await
            .map_err(failed(&schema.subject))?;
        info!(subject = %schema.subject, id, contract = contract.is_some(), "registered schema");
    }
    Ok(())
}
