//! A real Apache Kafka broker (KRaft, single node, `broker,controller`) the project starts
//! itself: a child JVM on ephemeral ports of 127.0.0.1, data in a temporary directory. Or a
//! cluster of them ([`KafkaCluster`]): one KRaft controller and several brokers, replication
//! factor 3 and `min.insync.replicas=2` as on Confluent Cloud, each broker with the same
//! listeners, authorizer and OAuth as the single node.
//!
//! Listeners:
//! - PLAINTEXT: unrestricted (its principal `User:ANONYMOUS` is a super user), for tests and
//!   admin operations;
//! - OAUTH (SASL_PLAINTEXT, OAUTHBEARER): JWTs checked by Kafka's own
//!   `OAuthBearerValidatorCallbackHandler` against the JWKS of an identity provider
//!   ([`crate::idp`]), with `connections.max.reauth.ms` short so live connections
//!   re-authenticate (KIP-368); present only when [`KafkaBrokerOptions::jwks_url`] is set;
//! - APIKEY (SASL_PLAINTEXT, PLAIN): the users of [`KafkaBrokerOptions::plain_users`].
//!
//! `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false`: SASL principals may do
//! only what [`KafkaBroker::allow`] granted. The jars come from Maven ([`jars`]); `java` (17+)
//! and `mvn` must be on `PATH`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), local_stack::broker::BrokerError> {
//! use local_stack::broker::{KafkaBroker, KafkaBrokerOptions};
//! let broker = KafkaBroker::start(KafkaBrokerOptions::default()).await?;
//! broker.create_topic("orders", 3).await?;
//! println!("{}", broker.plaintext_bootstrap());
//! # Ok(()) }
//! ```

mod acl;
mod cluster;
mod config;
pub mod jars;
mod node;
mod process;

use std::{
    fmt,
    path::PathBuf,
    process::ExitStatus,
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
};
use test_support::FreePorts;
use tracing::{info, warn};

pub use acl::{AclOperation, AclResource, AclRule};
pub use cluster::{Coordinator, CoordinatorKind, KafkaCluster, PartitionReplicas};
use config::{Ports, Role};
use node::{Jvm, Node};

/// A failure of the real broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// `java` or `mvn` is missing, or Maven could not resolve the Kafka jars.
    #[error("{0}")]
    Tooling(String),
    /// A file or process operation failed.
    #[error("Kafka broker: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The broker (or its storage formatting) did not come up; the log tail is included.
    #[error("Kafka broker did not start: {reason}\n--- broker log (last lines) ---\n{log_tail}")]
    Start {
        /// Why.
        reason: String,
        /// The last lines the JVM printed.
        log_tail: String,
    },
    /// An admin request (e.g. creating a topic) failed.
    #[error("Kafka broker admin request failed: {0}")]
    Admin(String),
    /// Adding ACLs failed.
    #[error("adding ACLs failed: {0}")]
    Acl(String),
    /// The broker exited with a failure status when asked to stop.
    #[error("Kafka broker exited with {status}\n--- broker log (last lines) ---\n{log_tail}")]
    Exit {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines it printed.
        log_tail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BrokerError {
    let what = what.into();
    move |source| BrokerError::Io { what, source }
}

/// How to start a [`KafkaBroker`].
#[derive(Clone)]
pub struct KafkaBrokerOptions {
    /// JWKS of the identity provider; enables the OAUTH listener.
    pub jwks_url: Option<String>,
    /// The identity provider's token endpoint, allow-listed beside the JWKS URL
    /// (`org.apache.kafka.sasl.oauthbearer.allowed.urls`).
    pub token_url: Option<String>,
    /// `sasl.oauthbearer.expected.audience`: tokens must carry it in `aud`.
    pub audience: String,
    /// `sasl.oauthbearer.expected.issuer`, if tokens' `iss` should be checked.
    pub expected_issuer: Option<String>,
    /// `connections.max.reauth.ms`: SASL connections re-authenticate at least this often.
    pub max_reauth: Duration,
    /// Users and passwords of the PLAIN (API key) listener.
    pub plain_users: Vec<(String, String)>,
    /// How long to wait for the broker to come up.
    pub start_timeout: Duration,
    /// Maximum JVM heap in MiB.
    pub heap_mib: u32,
}

impl Default for KafkaBrokerOptions {
    fn default() -> Self {
        Self {
            jwks_url: None,
            token_url: None,
            audience: "local-stack-kafka".into(),
            expected_issuer: None,
            max_reauth: Duration::from_secs(10),
            plain_users: Vec::new(),
            start_timeout: Duration::from_secs(180),
            heap_mib: 768,
        }
    }
}

impl fmt::Debug for KafkaBrokerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.plain_users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("KafkaBrokerOptions")
            .field("jwks_url", &self.jwks_url)
            .field("token_url", &self.token_url)
            .field("audience", &self.audience)
            .field("expected_issuer", &self.expected_issuer)
            .field("max_reauth", &self.max_reauth)
            .field("plain_users", &users)
            .field("start_timeout", &self.start_timeout)
            .field("heap_mib", &self.heap_mib)
            .finish()
    }
}

struct Inner {
    options: KafkaBrokerOptions,
    classpath: String,
    ports: Ports,
    // Declared before `dir`: dropping the node kills the JVM before its data is deleted.
    node: Node,
    dir: tempfile::TempDir,
}

/// A running single-node Kafka broker. Dropping it kills the JVM and deletes its data.
pub struct KafkaBroker {
    inner: Arc<Inner>,
}

impl fmt::Debug for KafkaBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBroker")
            .field("plaintext", &self.plaintext_bootstrap())
            .field("dir", &self.inner.dir.path())
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, BrokerError> + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| BrokerError::Admin(format!("broker task failed: {e}")))?
}

impl KafkaBroker {
    /// Resolves the jars (Maven, first time only), formats storage in a new temporary
    /// directory and starts the broker; returns once it serves clients.
    ///
    /// # Errors
    /// [`BrokerError::Tooling`] without `java`/`mvn`; [`BrokerError::Start`] with the broker's
    /// log tail when it exits or does not come up within [`KafkaBrokerOptions::start_timeout`].
    pub async fn start(options: KafkaBrokerOptions) -> Result<Self, BrokerError> {
        blocking(move || Self::start_blocking(options)).await
    }

    fn start_blocking(options: KafkaBrokerOptions) -> Result<Self, BrokerError> {
        let started = Instant::now();
        let classpath = jars::classpath()?;
        let mut free = FreePorts::default();
        let ports = Ports {
            plaintext: pick_port(&mut free)?,
            oauth: pick_port(&mut free)?,
            plain: pick_port(&mut free)?,
            controller: pick_port(&mut free)?,
        };
        drop(free);
        let dir = tempfile::Builder::new()
            .prefix("kafka-broker-")
            .tempdir()
            .map_err(io("creating the data directory"))?;
        let data = dir.path().join("data");
        let voters = format!("1@127.0.0.1:{}", ports.controller);
        let properties = config::server_properties(
            &options,
            config::Node {
                role: Role::Combined,
                id: 1,
                ports,
                voters: &voters,
                replication: 1,
            },
            &data.to_string_lossy(),
            options.jwks_url.as_deref(),
        );
        let node = Node::new(
            "broker",
            jvm(&options, classpath.clone(), options.heap_mib),
            dir.path().to_path_buf(),
            &properties,
        )?;
        node.format(&cluster_id())?;
        node.launch()?;
        let inner = Arc::new(Inner {
            options,
            classpath,
            ports,
            node,
            dir,
        });
        info!(
            plaintext = %format!("127.0.0.1:{}", ports.plaintext),
            elapsed = ?started.elapsed(),
            "Kafka broker started"
        );
        Ok(Self { inner })
    }

    /// `bootstrap.servers` of the PLAINTEXT listener (unrestricted).
    pub fn plaintext_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.inner.ports.plaintext)
    }

    /// `bootstrap.servers` of the OAUTHBEARER listener, if it is enabled.
    pub fn oauth_bootstrap(&self) -> Option<String> {
        self.inner
            .options
            .jwks_url
            .as_ref()
            .map(|_| format!("127.0.0.1:{}", self.inner.ports.oauth))
    }

    /// `bootstrap.servers` of the PLAIN (API key) listener.
    pub fn plain_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.inner.ports.plain)
    }

    /// The options the broker was started with.
    pub fn options(&self) -> &KafkaBrokerOptions {
        &self.inner.options
    }

    /// The file the broker's output is appended to (across restarts).
    pub fn log_file(&self) -> PathBuf {
        self.inner.node.log_file()
    }

    /// The last `lines` lines the broker printed.
    pub fn log_tail(&self, lines: usize) -> String {
        self.inner.node.log().tail(lines)
    }

    /// How many lines the broker printed so far contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.inner.node.log().count(needle, 0)
    }

    /// Waits until `count` broker log lines contain `needle` (true), or `timeout` passes or the
    /// broker exits (false).
    pub async fn wait_for_log(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        let log = self.inner.node.log().clone();
        let needle = needle.to_owned();
        tokio::task::spawn_blocking(move || log.wait_for(&needle, count, 0, timeout))
            .await
            .unwrap_or(false)
    }

    /// Creates `name` with `partitions` partitions (replication factor 1) over PLAINTEXT.
    ///
    /// # Errors
    /// [`BrokerError::Admin`] naming the topic when the broker refuses (e.g. it exists).
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), BrokerError> {
        create_topic(&self.plaintext_bootstrap(), name, partitions, 1).await
    }

    /// Adds ACLs (allow rules) in one batch.
    ///
    /// # Errors
    /// [`BrokerError::Acl`] with the reason when the broker refuses or Java fails.
    pub async fn allow(&self, rules: Vec<AclRule>) -> Result<(), BrokerError> {
        let classpath = self.inner.classpath.clone();
        let bootstrap = self.plaintext_bootstrap();
        blocking(move || acl::add(&classpath, &bootstrap, &rules)).await
    }

    /// Removes ACLs (allow rules added by [`allow`](Self::allow)) in one batch: what a
    /// client was allowed, it is refused from then on.
    ///
    /// # Errors
    /// [`BrokerError::Acl`] with the reason when a rule matches no ACL, the broker refuses or
    /// Java fails.
    pub async fn revoke(&self, rules: Vec<AclRule>) -> Result<(), BrokerError> {
        let classpath = self.inner.classpath.clone();
        let bootstrap = self.plaintext_bootstrap();
        blocking(move || acl::remove(&classpath, &bootstrap, &rules)).await
    }

    /// Kills the JVM with SIGKILL (no clean shutdown); the data directory is kept for
    /// [`restart`](Self::restart).
    ///
    /// # Errors
    /// When the process cannot be signalled or reaped.
    pub async fn kill(&self) -> Result<(), BrokerError> {
        let inner = self.inner.clone();
        blocking(move || inner.node.kill().map(|_| ())).await
    }

    /// Stops the JVM with SIGTERM (a clean shutdown) and waits for it to exit.
    ///
    /// # Errors
    /// [`BrokerError::Exit`] when it exits with a failure status.
    pub async fn stop(&self) -> Result<(), BrokerError> {
        let inner = self.inner.clone();
        blocking(move || inner.node.stop()).await
    }

    /// Starts the broker again on the same data and ports (after [`kill`](Self::kill) or
    /// [`stop`](Self::stop); a running broker is killed first).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn restart(&self) -> Result<(), BrokerError> {
        let inner = self.inner.clone();
        blocking(move || inner.node.launch()).await
    }
}

/// How the JVMs of a broker (or cluster) started with `options` run.
fn jvm(options: &KafkaBrokerOptions, classpath: String, heap_mib: u32) -> Jvm {
    Jvm {
        classpath,
        heap_mib,
        allowed_urls: [&options.jwks_url, &options.token_url]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        start_timeout: options.start_timeout,
    }
}

/// Creates `name` with `partitions` partitions and `replication` replicas through the
/// (PLAINTEXT) `bootstrap` servers. A request that times out (a broker just started, on a
/// loaded machine, can take longer than the request's timeout to answer its first
/// administrative request) is sent again, up to three times; a topic that then already exists
/// was created by an earlier attempt.
async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), BrokerError> {
    use rdkafka::{error::KafkaError, types::RDKafkaErrorCode as Code};
    const ATTEMPTS: u32 = 3;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| BrokerError::Admin(format!("admin client: {e}")))?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let results = match admin.create_topics([&topic], &options).await {
            Ok(results) => results,
            Err(KafkaError::AdminOp(Code::OperationTimedOut | Code::RequestTimedOut))
                if attempt < ATTEMPTS =>
            {
                warn!(topic = %name, attempt, "creating the topic timed out; asking again");
                continue;
            }
            Err(e) => {
                return Err(BrokerError::Admin(format!(
                    "creating topic {name} (attempt {attempt} of {ATTEMPTS}): {e}"
                )));
            }
        };
        for result in results {
            match result {
                Ok(_) => {}
                // An earlier attempt's request reached the broker after all.
                Err((_, Code::TopicAlreadyExists)) if attempt > 1 => {}
                Err((topic, code)) => {
                    return Err(BrokerError::Admin(format!(
                        "creating topic {topic}: {code}"
                    )));
                }
            }
        }
        return Ok(());
    }
}

/// Another port from `free` (see [`FreePorts`]: a broker's or a cluster's ports are all
/// picked from one picker, so none is handed out twice).
fn pick_port(free: &mut FreePorts) -> Result<u16, BrokerError> {
    free.pick().map_err(io("picking a free port"))
}

/// A random KRaft cluster id: 16 bytes in URL-safe base64 without padding, not starting with
/// `-` (which the storage tool would read as an option).
fn cluster_id() -> String {
    use base64::Engine as _;
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}
