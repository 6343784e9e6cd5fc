//! Java jars for the tools the tests and the local stack run on a JVM (Apache Kafka, Java
//! Avro): the classpath of a `pom.xml`, resolved by Maven once and cached.

use std::{
    hash::{DefaultHasher, Hash as _, Hasher as _},
    path::Path,
    process::{Command, Output, Stdio},
    sync::Mutex,
};

use anyhow::{Context as _, bail};

/// The classpath (`:`-separated jar paths) of the dependencies of `pom`, cached in
/// `<cache_root>/<pom digest>/classpath.txt`. The first resolution downloads from Maven Central;
/// when a cached jar went missing Maven runs again, offline first (`mvn -o`), so a machine
/// that resolved once needs no network.
///
/// # Errors
/// When `java` or `mvn` cannot be run, or Maven cannot resolve the jars (the tail of Maven's
/// output is in the message).
pub fn classpath(pom: &Path, cache_root: &Path) -> anyhow::Result<String> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());

    require_tool("java", "-version")?;
    let text = std::fs::read(pom).with_context(|| format!("cannot read {}", pom.display()))?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let dir = cache_root.join(format!("{:016x}", hasher.finish()));
    let cache = dir.join("classpath.txt");
    if let Some(classpath) = read_complete(&cache) {
        return Ok(classpath);
    }

    require_tool("mvn", "-v")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Written under a unique name and renamed, so parallel processes never read half a file.
    let partial = dir.join(format!("classpath.{}.tmp", std::process::id()));
    if !maven(pom, &partial, true)?.status.success() {
        let online = maven(pom, &partial, false)?;
        if !online.status.success() {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "Maven could not resolve the jars of {} ({}); its output ends with:\n{}",
                pom.display(),
                online.status,
                tail(&[online.stdout, online.stderr].concat(), 30)
            );
        }
    }
    std::fs::rename(&partial, &cache)
        .with_context(|| format!("cannot write {}", cache.display()))?;
    read_complete(&cache).with_context(|| {
        format!(
            "Maven wrote an empty or incomplete classpath to {}",
            cache.display()
        )
    })
}

/// Checks that `program` runs (`program <version_flag>`), with an error naming it when not.
///
/// # Errors
/// When it cannot be run or fails.
pub fn require_tool(program: &str, version_flag: &str) -> anyhow::Result<()> {
    let status = Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("Java 17 and Maven are needed on PATH: cannot run `{program}`"))?;
    if !status.success() {
        bail!(
            "Java 17 and Maven are needed on PATH: `{program} {version_flag}` exited with {status}"
        );
    }
    Ok(())
}

fn maven(pom: &Path, out: &Path, offline: bool) -> anyhow::Result<Output> {
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
        .context("cannot run `mvn`")
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
