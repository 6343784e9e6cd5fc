//! The broker's classpath: the jars of `crates/local-stack/kafka/pom.xml`, resolved by Maven once and
//! cached in `<target dir>/kafka-jars/<pom digest>/classpath.txt`.
//!
//! The first resolution downloads from Maven Central (45 jars, 43 MB; 64 MB in `~/.m2` with
//! Maven's own plugins; 12 s here);
//! later ones read the cached file, and when a jar went missing Maven runs again, offline
//! first (`mvn -o`), so a machine that resolved once needs no network.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::Mutex,
};

use tracing::info;

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

const NEEDS: &str = "the real-broker stack needs Java 17 and Maven on PATH";

/// Checks that `program` runs (`program -version`), with a clear error when it does not.
pub(crate) fn require_tool(program: &str, version_flag: &str) -> Result<(), BrokerError> {
    match Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(BrokerError::Tooling(format!(
            "{NEEDS}: `{program} {version_flag}` exited with {status}"
        ))),
        Err(e) => Err(BrokerError::Tooling(format!(
            "{NEEDS}: cannot run `{program}`: {e}"
        ))),
    }
}

/// The broker's classpath (`:`-separated jar paths), resolved with Maven on first use.
///
/// # Errors
/// [`BrokerError::Tooling`] when `java` or `mvn` is missing or Maven cannot resolve the jars
/// (Maven's output tail is in the message).
pub fn classpath() -> Result<String, BrokerError> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());

    require_tool("java", "-version")?;
    let pom = pom_file();
    let text = std::fs::read(&pom)
        .map_err(|e| BrokerError::Tooling(format!("cannot read {}: {e}", pom.display())))?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let dir = target_dir()
        .join("kafka-jars")
        .join(format!("{:016x}", hasher.finish()));
    let cache = dir.join("classpath.txt");
    if let Some(classpath) = read_complete(&cache) {
        return Ok(classpath);
    }

    require_tool("mvn", "-v")?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| BrokerError::Tooling(format!("cannot create {}: {e}", dir.display())))?;
    // Written under a unique name and renamed, so parallel test processes never read half a file.
    let partial = dir.join(format!("classpath.{}.tmp", std::process::id()));
    let started = std::time::Instant::now();
    let offline = maven(&pom, &partial, true)?;
    if !offline.status.success() {
        let online = maven(&pom, &partial, false)?;
        if !online.status.success() {
            let _ = std::fs::remove_file(&partial);
            return Err(BrokerError::Tooling(format!(
                "Maven could not resolve the Kafka jars of {} ({}); its output ends with:\n{}",
                pom.display(),
                online.status,
                tail(&[online.stdout, online.stderr].concat(), 30)
            )));
        }
    }
    std::fs::rename(&partial, &cache)
        .map_err(|e| BrokerError::Tooling(format!("cannot write {}: {e}", cache.display())))?;
    info!(elapsed = ?started.elapsed(), "resolved the Kafka jars with Maven");
    read_complete(&cache).ok_or_else(|| {
        BrokerError::Tooling(format!(
            "Maven wrote an empty or incomplete classpath to {}",
            cache.display()
        ))
    })
}

fn maven(pom: &Path, out: &Path, offline: bool) -> Result<Output, BrokerError> {
    let mut command = Command::new("mvn");
    command.args(["-B", "-q", "-Dstyle.color=never"]);
    if offline {
        command.arg("-o");
    }
    command
        .arg("-f")
        .arg(pom)
        .arg("dependency:build-classpath")
        .arg(format!("-Dmdep.outputFile={}", out.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BrokerError::Tooling(format!("{NEEDS}: cannot run `mvn`: {e}")))
}

/// The cached classpath, if the file exists and every jar it names is still there.
fn read_complete(cache: &Path) -> Option<String> {
    let classpath = std::fs::read_to_string(cache).ok()?;
    let classpath = classpath.trim().to_owned();
    let complete = !classpath.is_empty()
        && classpath
            .split(':')
            .all(|jar| jar.ends_with(".jar") && Path::new(jar).is_file());
    complete.then_some(classpath)
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
