//! `cargo xtask stack` as a person runs it: a separate process whose broker and registry are
//! used by clients in other processes, stopped with SIGTERM.

use std::{path::PathBuf, process::Command, time::Duration};

use test_support::{Output, Process};

fn properties(text: &str) -> (String, String) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from {text}"))
            .to_owned()
    };
    (get("bootstrap.servers"), get("schema.registry.url"))
}

#[test]
fn a_client_in_another_process_produces_and_consumes_through_the_running_stack() {
    let dir = std::env::temp_dir().join(format!("xtask-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let props_path: PathBuf = dir.join("client.properties");
    let mut stack = Process::start(
        "xtask stack",
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["stack", "--properties-out"])
            .arg(&props_path),
        Output::default(),
    )
    .unwrap();
    // The stack prints the properties once it is up.
    stack
        .stdout()
        .wait_for(Duration::from_secs(120), |l| {
            l.starts_with("schema.registry.url=")
        })
        .unwrap();
    let printed = stack.stdout().all().join("\n");
    let written = std::fs::read_to_string(&props_path).unwrap();
    // It says that stopping it removes the file it wrote.
    let said = format!(
        "# Ctrl-C stops the stack and removes {}",
        props_path.display()
    );
    stack
        .stdout()
        .wait_for(Duration::from_secs(10), |l| l.starts_with(&said))
        .unwrap();
    let (bootstrap, registry) = properties(&written);
    assert_eq!(properties(&printed), (bootstrap.clone(), registry.clone()));

    let python = local_stack::python::interop_venv().unwrap();
    let script = local_stack::python::workspace_dir().join("scripts/interop/kafka_roundtrip.py");
    let output = Command::new(&python)
        .arg(&script)
        .args([bootstrap.as_str(), "grocery.orders.v1", "30"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["produced"], 30);
    assert_eq!(report["consumed"], 30);
    assert_eq!(
        report["partitions"].as_array().unwrap().len(),
        3,
        "grocery.orders.v1 has 3 partitions: {report}"
    );

    // The registry answers over HTTP from this process too.
    let health = Command::new(&python)
        .args([
            "-c",
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + '/subjects').read().decode())",
            registry.as_str(),
        ])
        .output()
        .unwrap();
    // The stack registers the order schema with its contract at start (as terraform/ does),
    // so order-producer writes with it; nothing else is registered until a client does.
    assert!(health.status.success());
    assert_eq!(
        String::from_utf8_lossy(&health.stdout).trim(),
        r#"["grocery.orders.v1-value"]"#
    );

    // SIGTERM: exits 0 and leaves nothing behind.
    let status = stack.terminate(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!props_path.exists(), "client.properties removed on exit");
    let port = registry.rsplit(':').next().unwrap();
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "registry port closed"
    );
    std::fs::remove_dir_all(&dir).ok();
}
