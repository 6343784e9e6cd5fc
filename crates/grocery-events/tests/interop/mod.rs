//! Running `scripts/interop/generic_and_families.py` (Confluent's Python client) from the
//! interop tests of generic records and families of events.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use local_stack::python::{interop_venv, workspace_dir};
use local_stack::registry::{RegistryHandle, SchemaRegistry};

const SCRIPT: &str = "scripts/interop/generic_and_families.py";

/// A fresh local Schema Registry.
pub async fn registry() -> RegistryHandle {
    SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("local registry starts")
}

/// Runs the script's `mode` against the registry at `url` with `dir`; returns its stdout,
/// after checking it exited 0 and said OK.
pub async fn python(mode: &str, url: &str, dir: &Path) -> String {
    let python = tokio::task::spawn_blocking(interop_venv)
        .await
        .expect("venv task")
        .expect("the interop virtual environment (python3 -m venv + pip install)");
    let output = tokio::process::Command::new(&python)
        .arg("-W")
        .arg("ignore::DeprecationWarning")
        .arg(workspace_dir().join(SCRIPT))
        .args([mode, url])
        .arg(dir)
        .output()
        .await
        .expect("run generic_and_families.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.ends_with("generic_and_families: OK\n"),
        "generic_and_families.py {mode} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

/// The payloads of a file of hex lines.
pub fn read_hex_lines(path: &Path) -> Vec<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.split_whitespace().map(from_hex).collect()
}

/// The bytes of a hex string.
pub fn from_hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}
