//! Confluent's Python client against the local registry's schema references, GUIDs, metadata
//! and rule sets, and its Avro serializer and deserializer over a referenced type (schema id
//! in the payload prefix and schema GUID in the header): `scripts/interop/registry_contracts_check.py`.

use local_stack::python::{interop_venv, workspace_dir};
use local_stack::registry::SchemaRegistry;

#[tokio::test(flavor = "multi_thread")]
async fn confluent_python_client_reads_references_guids_and_metadata() {
    let python = tokio::task::spawn_blocking(interop_venv)
        .await
        .expect("venv task")
        .expect("the interop virtual environment (python3 -m venv + pip install)");
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let script = workspace_dir().join("scripts/interop/registry_contracts_check.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(registry.url())
        .output()
        .await
        .expect("run registry_contracts_check.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "registry_contracts_check.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("registry_contracts_check: OK"),
        "{stdout}\n{stderr}"
    );
    registry.shutdown().await.expect("shutdown");
}
