//! The whole local stack in one call: the mock Kafka cluster with the application's topics and
//! the Schema Registry, on ephemeral ports of 127.0.0.1.
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

use std::{net::SocketAddr, path::PathBuf};

use grocery_events::topics;
use tracing::info;

use crate::{
    kafka::{MockKafka, MockKafkaError},
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
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Number of mock brokers.
    pub brokers: i32,
    /// Address of the Schema Registry; port 0 picks a free one.
    pub registry_addr: SocketAddr,
    /// File the registry persists its schemas to, if any.
    pub registry_file: Option<PathBuf>,
    /// Create the application's topics ([`topics::ALL`]) with [`topics::PARTITIONS`] partitions.
    pub create_topics: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            brokers: 1,
            registry_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            registry_file: None,
            create_topics: true,
        }
    }
}

/// A running local stack: mock Kafka plus Schema Registry.
#[derive(Debug)]
pub struct Stack {
    kafka: MockKafka,
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
        let kafka = MockKafka::start(options.brokers)?;
        if options.create_topics {
            for topic in topics::ALL {
                kafka.create_topic(topic, topics::PARTITIONS)?;
            }
        }
        let registry = SchemaRegistry::start(options.registry_addr, options.registry_file).await?;
        info!(
            bootstrap_servers = kafka.bootstrap_servers(),
            registry = %registry.url(),
            "local stack started"
        );
        Ok(Self { kafka, registry })
    }

    /// The mock cluster's `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        self.kafka.bootstrap_servers()
    }

    /// The Schema Registry's base URL.
    pub fn registry_url(&self) -> String {
        self.registry.url()
    }

    /// The mock Kafka cluster, e.g. to inject broker faults.
    pub fn kafka(&self) -> &MockKafka {
        &self.kafka
    }

    /// A `client.properties` text that points a client at this stack.
    pub fn client_properties(&self) -> String {
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

    /// Creates a topic named `<prefix>-<random>` with `partitions` partitions, so that tests
    /// running in parallel never share one.
    ///
    /// # Errors
    /// When the cluster refuses the topic.
    pub fn unique_topic(&self, prefix: &str, partitions: i32) -> Result<String, StackError> {
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        self.kafka.create_topic(&name, partitions)?;
        Ok(name)
    }

    /// Stops the registry gracefully, then the broker.
    pub async fn shutdown(self) {
        if let Err(error) = self.registry.shutdown().await {
            tracing::warn!(%error, "Schema Registry did not stop cleanly");
        }
        drop(self.kafka);
    }
}
