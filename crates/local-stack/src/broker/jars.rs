//! The broker's classpath: the jars of `crates/local-stack/kafka/pom.xml`, resolved by Maven once and
//! cached in `<target dir>/kafka-jars/<pom digest>/classpath.txt` (by
//! [`test_support::maven::classpath`]).
//!
//! The first resolution downloads from Maven Central (45 jars, 43 MB; 64 MB in `~/.m2` with
//! Maven's own plugins; 12 s here);
//! later ones read the cached file, and when a jar went missing Maven runs again, offline
//! first (`mvn -o`), so a machine that resolved once needs no network.

use std::path::PathBuf;

use super::BrokerError;
use crate::python::{target_dir, workspace_dir};

/// The build file that pins Apache Kafka and its dependencies.
pub fn pom_file() -> PathBuf {
    workspace_dir().join("crates/local-stack/kafka/pom.xml")
}

/// The small Java program that adds ACLs through Kafka's own `Admin` client.
pub(crate) fn acl_tool_source() -> PathBuf {
    workspace_dir().join("crates/local-stack/kafka/Acls.java")
}

/// The broker's classpath (`:`-separated jar paths), resolved with Maven on first use.
///
/// # Errors
/// [`BrokerError::Tooling`] when `java` or `mvn` is missing or Maven cannot resolve the jars
/// (Maven's output tail is in the message).
pub fn classpath() -> Result<String, BrokerError> {
    // The resolver's errors already say what is needed (Java 17 and Maven on PATH) or what
    // Maven printed; the prefix says what was being resolved.
    test_support::maven::classpath(&pom_file(), &target_dir().join("kafka-jars"))
        .map_err(|e| BrokerError::Tooling(format!("the Kafka broker's jars: {e:#}")))
}

/// The small Java program that finds the coordinator of a transactional id or a consumer group
/// through Kafka's own `Admin` client.
pub(crate) fn coordinators_tool_source() -> PathBuf {
    workspace_dir().join("crates/local-stack/kafka/Coordinators.java")
}
