//! A KRaft cluster: one controller and `n` brokers, each a JVM of its own ([`Node`]), so that a
//! broker can be killed and restarted while the others serve.
//!
//! **One dedicated controller** (`process.roles=controller`, node id 0) rather than three
//! combined nodes: killing a broker then takes away only a broker (its partition leadership,
//! its replicas, the coordinators it hosts), never a quorum voter, as on Confluent Cloud
//! where the KRaft controllers are not the brokers clients talk to. Metadata stays available
//! throughout, so what a test sees is the fail-over of data and coordinators alone. The
//! controller is a single point of failure the tests do not exercise.
//!
//! Brokers have node ids `1..=n`, the listeners, authorizer and SASL setup of the single-node
//! broker (see the [module docs](super)), replication factor `min(n, 3)` for the internal
//! topics and as the default of new topics, and `min.insync.replicas` one less (2 with 3
//! brokers).

use std::{
    fmt,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};
use test_support::FreePorts;
use tracing::{info, warn};

use super::{
    AclRule, BrokerError, KafkaBrokerOptions, acl, blocking, cluster_id,
    config::{self, Ports, Role},
    create_topic, io, jars, jvm,
    node::Node,
    pick_port,
};

/// The controller's heap: it holds only the metadata log.
const CONTROLLER_HEAP_MIB: u32 = 256;

/// One partition's replicas as the cluster's metadata shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReplicas {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The leader's broker id (-1 while there is none).
    pub leader: i32,
    /// Every replica's broker id.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
}

/// What [`KafkaCluster::coordinator`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoordinatorKind {
    /// The transaction coordinator of a `transactional.id`.
    Transaction,
    /// The group coordinator of a consumer group.
    Group,
}

/// A coordinator as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Its broker id.
    pub broker: i32,
    /// The transaction's or group's state as Kafka names it (e.g. `Ongoing`, `Stable`).
    pub state: String,
}

struct ClusterBroker {
    id: i32,
    ports: Ports,
    node: Node,
}

struct Inner {
    options: KafkaBrokerOptions,
    classpath: String,
    replication: u16,
    // Declared before `dir`: dropping the nodes kills the JVMs before the data is deleted.
    brokers: Vec<ClusterBroker>,
    controller: Node,
    dir: tempfile::TempDir,
}

/// A running KRaft cluster (one controller, several brokers). Dropping it kills every JVM and
/// deletes the data.
pub struct KafkaCluster {
    inner: Arc<Inner>,
}

impl fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("brokers", &self.broker_ids())
            .field("plaintext", &self.plaintext_bootstrap())
            .field("dir", &self.inner.dir.path())
            .finish_non_exhaustive()
    }
}

impl KafkaCluster {
    /// Resolves the jars, formats every node's storage with one cluster id and starts the
    /// controller, then the `brokers` brokers (at least 1); returns once every broker serves
    /// clients ([`KafkaBrokerOptions::heap_mib`] is each broker's heap).
    ///
    /// # Errors
    /// As [`KafkaBroker::start`](super::KafkaBroker::start); the error names the node.
    pub async fn start(options: KafkaBrokerOptions, brokers: u16) -> Result<Self, BrokerError> {
        blocking(move || Self::start_blocking(options, brokers)).await
    }

    fn start_blocking(options: KafkaBrokerOptions, brokers: u16) -> Result<Self, BrokerError> {
        let started = Instant::now();
        let brokers = brokers.max(1);
        let replication = brokers.min(3);
        let classpath = super::jars::classpath()?;
        let dir = tempfile::Builder::new()
            .prefix("kafka-cluster-")
            .tempdir()
            .map_err(io("creating the data directory"))?;
        // Held until every node's ports are picked, so no two listeners share a port.
        let mut free = FreePorts::default();
        let controller_port = pick_port(&mut free)?;
        let voters = format!("0@127.0.0.1:{controller_port}");
        let jwks = options.jwks_url.as_deref();
        let node = |role: Role, id: i32, ports: Ports, heap: u32, label: String| {
            let home = dir.path().join(format!("node-{id}"));
            let properties = config::server_properties(
                &options,
                config::Node {
                    role,
                    id: id.unsigned_abs(),
                    ports,
                    voters: &voters,
                    replication,
                },
                &home.join("data").to_string_lossy(),
                jwks,
            );
            Node::new(
                label,
                jvm(&options, classpath.clone(), heap),
                home,
                &properties,
            )
        };
        let controller = node(
            Role::Controller,
            0,
            Ports {
                plaintext: 0,
                oauth: 0,
                plain: 0,
                controller: controller_port,
            },
            CONTROLLER_HEAP_MIB,
            "controller".into(),
        )?;
        let mut members = Vec::new();
        for id in 1..=i32::from(brokers) {
            let ports = Ports {
                plaintext: pick_port(&mut free)?,
                oauth: pick_port(&mut free)?,
                plain: pick_port(&mut free)?,
                controller: 0,
            };
            members.push(ClusterBroker {
                id,
                ports,
                node: node(
                    Role::Broker,
                    id,
                    ports,
                    options.heap_mib,
                    format!("broker {id}"),
                )?,
            });
        }
        // The nodes bind their ports themselves.
        drop(free);
        let cluster = cluster_id();
        let nodes: Vec<&Node> = std::iter::once(&controller)
            .chain(members.iter().map(|b| &b.node))
            .collect();
        all(&nodes, |node| node.format(&cluster))?;
        controller.launch()?;
        all(&nodes[1..], Node::launch)?;
        let inner = Arc::new(Inner {
            options,
            classpath,
            replication,
            brokers: members,
            controller,
            dir,
        });
        let cluster = Self { inner };
        info!(
            plaintext = %cluster.plaintext_bootstrap(),
            brokers,
            elapsed = ?started.elapsed(),
            "Kafka cluster started"
        );
        Ok(cluster)
    }

    /// The brokers' node ids (`1..=n`).
    pub fn broker_ids(&self) -> Vec<i32> {
        self.inner.brokers.iter().map(|b| b.id).collect()
    }

    /// The replication factor of the internal topics and of [`create_topic`](Self::create_topic)
    /// (`min(brokers, 3)`).
    pub fn replication_factor(&self) -> u16 {
        self.inner.replication
    }

    fn bootstrap(&self, port: impl Fn(&Ports) -> u16) -> String {
        self.inner
            .brokers
            .iter()
            .map(|b| format!("127.0.0.1:{}", port(&b.ports)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `bootstrap.servers` of every broker's PLAINTEXT listener (unrestricted).
    pub fn plaintext_bootstrap(&self) -> String {
        self.bootstrap(|p| p.plaintext)
    }

    /// `bootstrap.servers` of every broker's OAUTHBEARER listener, if it is enabled.
    pub fn oauth_bootstrap(&self) -> Option<String> {
        self.inner
            .options
            .jwks_url
            .as_ref()
            .map(|_| self.bootstrap(|p| p.oauth))
    }

    /// `bootstrap.servers` of every broker's PLAIN (API key) listener.
    pub fn plain_bootstrap(&self) -> String {
        self.bootstrap(|p| p.plain)
    }

    /// The PLAINTEXT address of broker `id`, e.g. to recognise it in a client's log.
    pub fn broker_address(&self, id: i32) -> Option<String> {
        self.broker(id)
            .ok()
            .map(|b| format!("127.0.0.1:{}", b.ports.plaintext))
    }

    /// The options the brokers were started with.
    pub fn options(&self) -> &KafkaBrokerOptions {
        &self.inner.options
    }

    fn broker(&self, id: i32) -> Result<&ClusterBroker, BrokerError> {
        self.inner
            .brokers
            .iter()
            .find(|b| b.id == id)
            .ok_or_else(|| BrokerError::Admin(format!("the cluster has no broker {id}")))
    }

    /// The file broker `id`'s output is appended to (across restarts).
    ///
    /// # Errors
    /// [`BrokerError::Admin`] for an unknown id.
    pub fn broker_log_file(&self, id: i32) -> Result<std::path::PathBuf, BrokerError> {
        Ok(self.broker(id)?.node.log_file())
    }

    /// The file the controller's output is appended to.
    pub fn controller_log_file(&self) -> std::path::PathBuf {
        self.inner.controller.log_file()
    }

    /// Whether broker `id`'s JVM runs now.
    pub fn broker_running(&self, id: i32) -> bool {
        self.broker(id).is_ok_and(|b| b.node.running())
    }

    /// Creates `name` with `partitions` partitions and [`replication_factor`](Self::replication_factor)
    /// replicas.
    ///
    /// # Errors
    /// [`BrokerError::Admin`] naming the topic when the cluster refuses.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), BrokerError> {
        let replication = i32::from(self.inner.replication);
        create_topic(&self.plaintext_bootstrap(), name, partitions, replication).await
    }

    /// Adds ACLs (allow rules) in one batch.
    ///
    /// # Errors
    /// [`BrokerError::Acl`] with the reason when the cluster refuses or Java fails.
    pub async fn allow(&self, rules: Vec<AclRule>) -> Result<(), BrokerError> {
        let classpath = self.inner.classpath.clone();
        let bootstrap = self.plaintext_bootstrap();
        blocking(move || acl::add(&classpath, &bootstrap, &rules)).await
    }

    /// Removes ACLs (allow rules added by [`allow`](Self::allow)) in one batch: what a
    /// client was allowed, it is refused from then on.
    ///
    /// # Errors
    /// [`BrokerError::Acl`] with the reason when a rule matches no ACL, the cluster refuses or
    /// Java fails.
    pub async fn revoke(&self, rules: Vec<AclRule>) -> Result<(), BrokerError> {
        let classpath = self.inner.classpath.clone();
        let bootstrap = self.plaintext_bootstrap();
        blocking(move || acl::remove(&classpath, &bootstrap, &rules)).await
    }

    /// Kills broker `id`'s JVM with SIGKILL; its data is kept for
    /// [`restart_broker`](Self::restart_broker).
    ///
    /// # Errors
    /// An unknown id, or the process cannot be signalled or reaped.
    pub async fn kill_broker(&self, id: i32) -> Result<(), BrokerError> {
        self.broker(id)?;
        let inner = self.inner.clone();
        blocking(move || {
            let broker = inner.brokers.iter().find(|b| b.id == id);
            broker.map_or(Ok(None), |b| b.node.kill()).map(|_| ())
        })
        .await
    }

    /// Starts broker `id` again on its data and ports (a running one is killed first); returns
    /// once it serves clients (it may still be catching up its replicas: see
    /// [`wait_in_sync`](Self::wait_in_sync)).
    ///
    /// # Errors
    /// An unknown id, or as [`start`](Self::start).
    pub async fn restart_broker(&self, id: i32) -> Result<(), BrokerError> {
        self.broker(id)?;
        let inner = self.inner.clone();
        blocking(move || match inner.brokers.iter().find(|b| b.id == id) {
            Some(broker) => broker.node.launch(),
            None => Ok(()),
        })
        .await
    }

    /// Stops the brokers with SIGTERM (controlled shutdown), then the controller.
    ///
    /// # Errors
    /// [`BrokerError::Exit`] when a JVM exits with a failure status.
    pub async fn stop(&self) -> Result<(), BrokerError> {
        let inner = self.inner.clone();
        blocking(move || {
            let brokers: Vec<&Node> = inner.brokers.iter().map(|b| &b.node).collect();
            all(&brokers, Node::stop)?;
            inner.controller.stop()
        })
        .await
    }

    /// The partitions of `topic` (every topic with `None`, the internal ones included) as
    /// the metadata of a running broker shows them.
    ///
    /// # Errors
    /// [`BrokerError::Admin`] when no broker answers within 10 s.
    pub async fn partitions(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<PartitionReplicas>, BrokerError> {
        let bootstrap = self.plaintext_bootstrap();
        let topic = topic.map(str::to_owned);
        blocking(move || metadata(&bootstrap, topic.as_deref())).await
    }

    /// Waits until every partition of every topic (the internal ones included) has a leader
    /// and all its replicas in sync, e.g. after a restarted broker caught up.
    ///
    /// # Errors
    /// [`BrokerError::Admin`] naming a partition still short after `timeout`, or the last
    /// metadata error when no broker answered until then (a metadata request that fails while
    /// a restarted broker loads its logs on a loaded machine is asked again).
    pub async fn wait_in_sync(&self, timeout: Duration) -> Result<(), BrokerError> {
        let deadline = Instant::now() + timeout;
        loop {
            let short: Vec<PartitionReplicas> = match self.partitions(None).await {
                Ok(partitions) => partitions
                    .into_iter()
                    .filter(|p| p.leader < 0 || p.isr.len() < p.replicas.len())
                    .collect(),
                Err(error) if Instant::now() < deadline => {
                    warn!(%error, "no metadata while waiting for the replicas; asking again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let Some(first) = short.first() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(BrokerError::Admin(format!(
                    "{} partitions not in sync after {timeout:?}, e.g. {first:?}",
                    short.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The broker coordinating `id` (a transactional id or a consumer group), found with
    /// FindCoordinator and described through Kafka's own Admin client.
    ///
    /// # Errors
    /// [`BrokerError::Admin`] when the id is unknown (no producer initialised it, no member
    /// joined) or the cluster does not answer.
    pub async fn coordinator(
        &self,
        kind: CoordinatorKind,
        id: &str,
    ) -> Result<Coordinator, BrokerError> {
        let classpath = self.inner.classpath.clone();
        let bootstrap = self.plaintext_bootstrap();
        let id = id.to_owned();
        blocking(move || describe_coordinator(&classpath, &bootstrap, kind, &id)).await
    }
}

/// Runs `job` on every node at once (a thread each); the first error wins.
fn all(
    nodes: &[&Node],
    job: impl Fn(&Node) -> Result<(), BrokerError> + Sync,
) -> Result<(), BrokerError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes.iter().map(|node| scope.spawn(|| job(node))).collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(BrokerError::Admin("a node thread panicked".into())))
        })
    })
}

fn metadata(bootstrap: &str, topic: Option<&str>) -> Result<Vec<PartitionReplicas>, BrokerError> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| BrokerError::Admin(format!("metadata client: {e}")))?;
    let metadata = client
        .fetch_metadata(topic, Duration::from_secs(10))
        .map_err(|e| BrokerError::Admin(format!("fetching metadata: {e}")))?;
    let mut partitions = Vec::new();
    for topic in metadata.topics() {
        if let Some(error) = topic.error() {
            return Err(BrokerError::Admin(format!(
                "metadata of {}: {error:?}",
                topic.name()
            )));
        }
        for p in topic.partitions() {
            partitions.push(PartitionReplicas {
                topic: topic.name().to_owned(),
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
            });
        }
    }
    Ok(partitions)
}

fn describe_coordinator(
    classpath: &str,
    bootstrap: &str,
    kind: CoordinatorKind,
    id: &str,
) -> Result<Coordinator, BrokerError> {
    let kind_arg = match kind {
        CoordinatorKind::Transaction => "transaction",
        CoordinatorKind::Group => "group",
    };
    let output = Command::new("java")
        .args([
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-cp",
            classpath,
        ])
        .arg(jars::coordinators_tool_source())
        .args([bootstrap, kind_arg, id])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BrokerError::Admin(format!("cannot run java: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("coordinator="))
        .filter(|_| output.status.success());
    let Some(line) = line else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        return Err(BrokerError::Admin(format!(
            "describing {kind_arg} {id} ({}): {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    };
    let field = |name: &str| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let broker = field("coordinator")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| BrokerError::Admin(format!("unexpected answer: {line}")))?;
    Ok(Coordinator {
        broker,
        state: field("state").unwrap_or_default(),
    })
}
