//! One Kafka JVM (a KRaft node: broker, controller or both) as a child process: its
//! `server.properties` in a directory of its own, storage formatting, start (waiting for
//! "Kafka Server started"), SIGKILL, SIGTERM and restart on the same data.

use std::{
    path::PathBuf,
    process::{Child, Command, ExitStatus},
    sync::{Arc, Mutex},
    time::Duration,
};

use tracing::warn;

use super::{
    BrokerError, io,
    process::{self, LogBook, Spawner},
};

/// The log line a node prints once it serves (clients or, for a controller, the quorum).
const STARTED: &str = "Kafka Server started";

/// How a node's JVM is started.
#[derive(Debug, Clone)]
pub(crate) struct Jvm {
    /// The Kafka classpath.
    pub(crate) classpath: String,
    /// Maximum heap in MiB.
    pub(crate) heap_mib: u32,
    /// URLs the OAuth validator may fetch (`org.apache.kafka.sasl.oauthbearer.allowed.urls`).
    pub(crate) allowed_urls: Vec<String>,
    /// How long to wait for [`STARTED`].
    pub(crate) start_timeout: Duration,
}

/// One node's JVM. Dropping it kills the JVM (its directory is the owner's to delete).
pub(crate) struct Node {
    /// How errors and logs name the node, e.g. `broker 2`.
    label: String,
    jvm: Jvm,
    dir: PathBuf,
    log: Arc<LogBook>,
    spawner: Spawner,
    child: Mutex<Option<Child>>,
}

impl Node {
    /// A node whose files live in `dir` (created if missing), with `properties` as its
    /// `server.properties`; not started yet.
    pub(crate) fn new(
        label: impl Into<String>,
        jvm: Jvm,
        dir: PathBuf,
        properties: &str,
    ) -> Result<Self, BrokerError> {
        std::fs::create_dir_all(&dir).map_err(io("creating the node's directory"))?;
        std::fs::write(dir.join("server.properties"), properties)
            .map_err(io("writing server.properties"))?;
        std::fs::write(dir.join("log4j2.properties"), super::config::LOG4J2)
            .map_err(io("writing log4j2.properties"))?;
        Ok(Self {
            label: label.into(),
            jvm,
            dir,
            log: Arc::default(),
            spawner: Spawner::new().map_err(io("starting the spawner thread"))?,
            child: Mutex::new(None),
        })
    }

    pub(crate) fn log(&self) -> &Arc<LogBook> {
        &self.log
    }

    pub(crate) fn log_file(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    fn server_properties(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    fn java(&self) -> Command {
        let mut command = Command::new("java");
        command
            .current_dir(&self.dir)
            .arg(format!("-Xmx{}m", self.jvm.heap_mib))
            .args(["-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Djava.awt.headless=true")
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ));
        if !self.jvm.allowed_urls.is_empty() {
            command.arg(format!(
                "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={}",
                self.jvm.allowed_urls.join(",")
            ));
        }
        command.arg("-cp").arg(&self.jvm.classpath);
        command
    }

    /// Formats the storage directory for the cluster `cluster_id` (KRaft needs it before the
    /// first start; every node of a cluster gets the same id).
    pub(crate) fn format(&self, cluster_id: &str) -> Result<(), BrokerError> {
        let output = self
            .java()
            .args(["kafka.tools.StorageTool", "format", "--cluster-id"])
            .arg(cluster_id)
            .arg("--config")
            .arg(self.server_properties())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(io("running the storage format tool"))?;
        if !output.status.success() {
            return Err(BrokerError::Start {
                reason: format!(
                    "{}: formatting the storage failed ({})",
                    self.label, output.status
                ),
                log_tail: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Starts the JVM and waits until it logs [`STARTED`] (a running JVM is killed first).
    pub(crate) fn launch(&self) -> Result<(), BrokerError> {
        self.kill()?;
        let from = self.log.len();
        let mut command = self.java();
        command.arg("kafka.Kafka").arg(self.server_properties());
        let child = self
            .spawner
            .spawn(command, &self.log, &self.log_file())
            .map_err(io("starting the broker JVM"))?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        if self.log.wait_for(STARTED, 1, from, self.jvm.start_timeout) {
            return Ok(());
        }
        let exited = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten());
        self.kill()?;
        Err(BrokerError::Start {
            reason: match exited {
                Some(status) => format!(
                    "{}: the JVM exited ({status}) before \"{STARTED}\"",
                    self.label
                ),
                None => format!(
                    "{}: no \"{STARTED}\" within {:?}",
                    self.label, self.jvm.start_timeout
                ),
            },
            log_tail: format!(
                "problems logged since the start:\n{}\n--- last lines:\n{}\n--- {}",
                self.log.problems(from, 40),
                self.log.tail(20),
                self.disk_space()
            ),
        })
    }

    /// `df` of the node's directory, for a start error (a full disk fails the log dirs).
    fn disk_space(&self) -> String {
        match Command::new("df").arg("-h").arg(&self.dir).output() {
            Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            Err(error) => format!("df failed: {error}"),
        }
    }

    /// Whether the JVM runs now.
    pub(crate) fn running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGKILLs the JVM if it runs; returns its exit status if there was one.
    pub(crate) fn kill(&self) -> Result<Option<ExitStatus>, BrokerError> {
        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = slot.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait().map_err(io("checking the broker JVM"))? {
            return Ok(Some(status));
        }
        child.kill().map_err(io("killing the broker JVM"))?;
        let status = child.wait().map_err(io("reaping the broker JVM"))?;
        // The output readers finish once the pipes close.
        self.log.wait_closed(Duration::from_secs(10));
        Ok(Some(status))
    }

    /// Stops the JVM with SIGTERM (SIGKILL after 60 s) and waits for it to exit.
    pub(crate) fn stop(&self) -> Result<(), BrokerError> {
        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = slot.take() else {
            return Ok(());
        };
        let status = match child.try_wait().map_err(io("checking the broker JVM"))? {
            Some(status) => status,
            None => {
                process::signal(child.id(), libc::SIGTERM).map_err(io("signalling the broker"))?;
                match process::wait_timeout(&mut child, &self.log, Duration::from_secs(60))
                    .map_err(io("waiting for the broker JVM"))?
                {
                    Some(status) => status,
                    None => {
                        warn!(node = %self.label, "Kafka ignored SIGTERM for 60 s; killing it");
                        child.kill().map_err(io("killing the broker JVM"))?;
                        child.wait().map_err(io("reaping the broker JVM"))?
                    }
                }
            }
        };
        // The JVM answers SIGTERM by running its shutdown hooks and exiting with 143.
        if status.success() || status.code() == Some(143) {
            Ok(())
        } else {
            Err(BrokerError::Exit {
                status,
                log_tail: self.log.tail(60),
            })
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            warn!(node = %self.label, %error, "could not kill the Kafka JVM");
        }
    }
}
