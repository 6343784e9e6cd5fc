//! librdkafka's mock cluster, hosted on a thread of its own and reachable over TCP on
//! 127.0.0.1 by clients in this and other processes.
//!
//! The mock cluster is librdkafka's: produce, idempotence, consumer groups and offset commits
//! behave as on a broker. It has no SASL or SSL, keeps everything in memory, and accepts
//! transactions without enforcing them (aborted records stay visible).

use std::{
    sync::mpsc::{self, Receiver, Sender},
    thread::{self, JoinHandle},
    time::Duration,
};

use rdkafka::mocking::MockCluster;
use tracing::{debug, info};

/// A failure of the mock cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockKafkaError {
    /// librdkafka refused the operation.
    #[error("mock cluster: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The thread hosting the cluster has stopped.
    #[error("mock cluster thread has stopped")]
    Stopped,
}

type Reply = Sender<Result<(), MockKafkaError>>;

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        reply: Reply,
    },
    BrokerDown(i32, Reply),
    BrokerUp(i32, Reply),
    RoundTripTime(i32, Duration, Reply),
    Stop,
}

/// A running mock Kafka cluster. Dropping it stops the cluster and closes its ports.
#[derive(Debug)]
pub struct MockKafka {
    bootstrap_servers: String,
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl MockKafka {
    /// Starts a cluster of `brokers` brokers on ephemeral ports of 127.0.0.1.
    ///
    /// # Errors
    /// When librdkafka cannot create the cluster.
    pub fn start(brokers: i32) -> Result<Self, MockKafkaError> {
        let (commands, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("mock-kafka".into())
            .spawn(move || host(brokers, inbox, ready_tx))
            .map_err(|_| MockKafkaError::Stopped)?;
        let bootstrap_servers = ready_rx.recv().map_err(|_| MockKafkaError::Stopped)??;
        info!(%bootstrap_servers, brokers, "mock Kafka cluster started");
        Ok(Self {
            bootstrap_servers,
            commands,
            thread: Some(thread),
        })
    }

    /// The `bootstrap.servers` list of the cluster.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Creates `name` with `partitions` partitions (replication factor 1).
    ///
    /// # Errors
    /// When librdkafka refuses, e.g. for an invalid name.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), MockKafkaError> {
        self.call(|reply| Command::CreateTopic {
            name: name.to_owned(),
            partitions,
            reply,
        })
    }

    /// Takes broker `broker_id` (1-based) down: its connections are closed and refused.
    ///
    /// # Errors
    /// When no such broker exists.
    pub fn broker_down(&self, broker_id: i32) -> Result<(), MockKafkaError> {
        self.call(|reply| Command::BrokerDown(broker_id, reply))
    }

    /// Brings broker `broker_id` back up.
    ///
    /// # Errors
    /// When no such broker exists.
    pub fn broker_up(&self, broker_id: i32) -> Result<(), MockKafkaError> {
        self.call(|reply| Command::BrokerUp(broker_id, reply))
    }

    /// Delays every answer of broker `broker_id` by `delay` (zero: no delay), e.g. to hold a
    /// produce request in flight while a test cancels the caller.
    ///
    /// # Errors
    /// When no such broker exists.
    pub fn set_round_trip_time(
        &self,
        broker_id: i32,
        delay: Duration,
    ) -> Result<(), MockKafkaError> {
        self.call(|reply| Command::RoundTripTime(broker_id, delay, reply))
    }

    fn call(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), MockKafkaError> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| MockKafkaError::Stopped)?;
        answer
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| MockKafkaError::Stopped)?
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn host(brokers: i32, inbox: Receiver<Command>, ready: Sender<Result<String, MockKafkaError>>) {
    let cluster = match MockCluster::new(brokers) {
        Ok(cluster) => cluster,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    if ready.send(Ok(cluster.bootstrap_servers())).is_err() {
        return;
    }
    // Runs until `Stop` or until every `MockKafka` handle is gone.
    while let Ok(command) = inbox.recv() {
        match command {
            Command::CreateTopic {
                name,
                partitions,
                reply,
            } => {
                debug!(topic = %name, partitions, "creating topic");
                let _ = reply.send(
                    cluster
                        .create_topic(&name, partitions, 1)
                        .map_err(Into::into),
                );
            }
            Command::BrokerDown(id, reply) => {
                info!(broker = id, "taking broker down");
                let _ = reply.send(cluster.broker_down(id).map_err(Into::into));
            }
            Command::BrokerUp(id, reply) => {
                info!(broker = id, "bringing broker up");
                let _ = reply.send(cluster.broker_up(id).map_err(Into::into));
            }
            Command::RoundTripTime(id, delay, reply) => {
                info!(
                    broker = id,
                    delay_ms = delay.as_millis() as u64,
                    "setting broker round-trip time"
                );
                let _ = reply.send(
                    cluster
                        .broker_round_trip_time(id, delay)
                        .map_err(Into::into),
                );
            }
            Command::Stop => break,
        }
    }
    drop(cluster);
    debug!("mock Kafka cluster stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_loopback_and_creates_topics() {
        let kafka = MockKafka::start(1).unwrap();
        assert!(
            kafka.bootstrap_servers().starts_with("127.0.0.1:"),
            "{}",
            kafka.bootstrap_servers()
        );
        kafka.create_topic("t1", 3).unwrap();
        assert!(kafka.broker_down(1).is_ok());
        assert!(kafka.broker_up(1).is_ok());
    }
}
