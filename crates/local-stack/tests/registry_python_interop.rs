//! Confluent's Python client (register, lookup, latest, serializer, deserializer, deletes)
//! against the local registry: `scripts/interop/registry_check.py`.

use local_stack::python::{interop_venv, workspace_dir};
use local_stack::registry::SchemaRegistry;

#[tokio::test(flavor = "multi_thread")]
async fn confluent_python_client_works_against_the_local_registry() {
    let python = tokio::task::spawn_blocking(interop_venv)
        .await
        .expect("venv task")
        .expect("the interop virtual environment (python3 -m venv + pip install)");
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let script = workspace_dir().join("scripts/interop/registry_check.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(registry.url())
        .output()
        .await
        .expect("run registry_check.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "registry_check.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("registry_check: OK"), "{stdout}\n{stderr}");
    registry.shutdown().await.expect("shutdown");
}
