//! A Python virtual environment with Confluent's Python client, for tests that cross-check our
//! wire format and registry against a client written by someone else.
//!
//! The environment lives in `<target dir>/interop-venv` and is built from
//! `scripts/interop/requirements.txt` the first time it is needed (or when the requirements
//! change). It is built in a temporary directory and renamed into place, so tests running in
//! parallel processes never see a half-built environment. A second one,
//! `<target dir>/interop-rules-venv` ([`rules_venv`](crate::python::rules_venv)), from
//! `scripts/interop/rules-requirements.txt`, has Confluent's client with its `rules` extra for
//! the data-contract rules.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root (this crate lives in `crates/local-stack`).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The pinned requirements of the interoperability scripts.
pub fn requirements_file() -> PathBuf {
    workspace_dir().join("scripts/interop/requirements.txt")
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_dir().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_dir().join("target"))
}

const STAMP: &str = "requirements.stamp";

/// The pinned requirements of the data-contract rules interop script: Confluent's Python
/// client with its `rules` extra.
pub fn rules_requirements_file() -> PathBuf {
    workspace_dir().join("scripts/interop/rules-requirements.txt")
}

/// Ensures the interop virtual environment exists and returns its `python` executable.
///
/// Creates it with `python3 -m venv` and `pip install -r requirements.txt` when missing or
/// when the requirements changed; needs `python3` on `PATH` and access to PyPI then.
pub fn interop_venv() -> io::Result<PathBuf> {
    venv_for(&requirements_file(), "interop-venv")
}

/// [`interop_venv`] for the data-contract rules: `<target dir>/interop-rules-venv`, from
/// `scripts/interop/rules-requirements.txt` (`confluent-kafka[rules]`).
pub fn rules_venv() -> io::Result<PathBuf> {
    venv_for(&rules_requirements_file(), "interop-rules-venv")
}

fn venv_for(requirements_file: &Path, name: &str) -> io::Result<PathBuf> {
    static IN_PROCESS: Mutex<()> = Mutex::new(());
    let _guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());

    let requirements = std::fs::read_to_string(requirements_file)?;
    let venv = target_dir().join(name);
    let python = venv.join("bin/python");
    let current = std::fs::read_to_string(venv.join(STAMP)).ok();
    if current.as_deref() == Some(requirements.as_str()) && python.exists() {
        return Ok(python);
    }

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let building = target_dir().join(format!("{name}.building-{}-{nanos}", std::process::id()));
    tracing::info!(venv = %venv.display(), "creating the Python interop virtual environment");
    let result = build(&building, requirements_file, &requirements);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // Another process may have finished first: theirs is as good as ours.
    let fresh = |dir: &Path| {
        std::fs::read_to_string(dir.join(STAMP)).ok().as_deref() == Some(requirements.as_str())
    };
    if fresh(&venv) {
        let _ = std::fs::remove_dir_all(&building);
        return Ok(python);
    }
    if venv.exists() {
        // Outdated: move it aside (atomic), then remove it.
        let old = building.with_extension("old");
        std::fs::rename(&venv, &old)?;
        let _ = std::fs::remove_dir_all(&old);
    }
    match std::fs::rename(&building, &venv) {
        Ok(()) => Ok(python),
        Err(_) if fresh(&venv) => {
            let _ = std::fs::remove_dir_all(&building);
            Ok(python)
        }
        Err(e) => Err(e),
    }
}

fn build(dir: &Path, requirements_file: &Path, requirements: &str) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
    run(Command::new(dir.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements_file))?;
    std::fs::write(dir.join(STAMP), requirements)
}

fn run(command: &mut Command) -> io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
