//! ACLs for the broker's `StandardAuthorizer`, added (and removed) through Kafka's own Admin client
//! (`crates/local-stack/kafka/Acls.java`, run as a single-file Java program on the PLAINTEXT listener,
//! whose principal is a super user). rdkafka 0.39 has no ACL calls.

use std::process::{Command, Stdio};

use super::{BrokerError, jars};

/// The kind of resource an ACL applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclResource {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// A transactional id.
    TransactionalId,
    /// The cluster (e.g. `IdempotentWrite`); its name is `kafka-cluster`.
    Cluster,
}

/// An operation an ACL allows (Kafka's `AclOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclOperation {
    /// Every operation.
    All,
    /// Fetch, join a group, commit offsets.
    Read,
    /// Produce.
    Write,
    /// Create topics.
    Create,
    /// Metadata, offsets, group and transaction state.
    Describe,
    /// Idempotent produce (on the cluster).
    IdempotentWrite,
}

/// One rule: `principal` may do `operation` on the resources the pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// A principal such as `User:order-producer` (OAuth: the token's `sub`; PLAIN: the user).
    pub principal: String,
    /// Kind of resource.
    pub resource: AclResource,
    /// Resource name, or its prefix when `prefixed`.
    pub name: String,
    /// Whether `name` is a prefix.
    pub prefixed: bool,
    /// The allowed operation.
    pub operation: AclOperation,
}

impl AclRule {
    /// `principal` may do `operation` on the resource named exactly `name`.
    pub fn allow(
        principal: impl Into<String>,
        resource: AclResource,
        name: impl Into<String>,
        operation: AclOperation,
    ) -> Self {
        Self {
            principal: principal.into(),
            resource,
            name: name.into(),
            prefixed: false,
            operation,
        }
    }

    /// The same rule for every resource whose name starts with `name`.
    pub fn prefixed(mut self) -> Self {
        self.prefixed = true;
        self
    }

    fn spec(&self) -> String {
        let resource = match self.resource {
            AclResource::Topic => "TOPIC",
            AclResource::Group => "GROUP",
            AclResource::TransactionalId => "TRANSACTIONAL_ID",
            AclResource::Cluster => "CLUSTER",
        };
        let operation = match self.operation {
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
        };
        let pattern = if self.prefixed { "PREFIXED" } else { "LITERAL" };
        format!(
            "{};{resource};{pattern};{};{operation}",
            self.principal, self.name
        )
    }
}

/// Adds `rules` to the broker at `bootstrap` (a PLAINTEXT listener) in one JVM run.
pub(crate) fn add(classpath: &str, bootstrap: &str, rules: &[AclRule]) -> Result<(), BrokerError> {
    run(classpath, bootstrap, rules, false)
}

/// Removes `rules` from the broker at `bootstrap` in one JVM run; an error when one of them
/// matches no ACL.
pub(crate) fn remove(
    classpath: &str,
    bootstrap: &str,
    rules: &[AclRule],
) -> Result<(), BrokerError> {
    run(classpath, bootstrap, rules, true)
}

fn run(
    classpath: &str,
    bootstrap: &str,
    rules: &[AclRule],
    delete: bool,
) -> Result<(), BrokerError> {
    if rules.is_empty() {
        return Ok(());
    }
    if let Some(bad) = rules
        .iter()
        .find(|r| r.principal.contains(';') || r.name.contains(';') || r.name.is_empty())
    {
        return Err(BrokerError::Acl(format!(
            "invalid ACL rule {bad:?}: empty name or ';' in principal or name"
        )));
    }
    let output = Command::new("java")
        .args([
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-cp",
            classpath,
        ])
        .arg(jars::acl_tool_source())
        .arg(bootstrap)
        .args(delete.then_some("--delete"))
        .args(rules.iter().map(AclRule::spec))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BrokerError::Acl(format!("cannot run java: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        return Err(BrokerError::Acl(format!(
            "the ACL tool exited with {}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(())
}
