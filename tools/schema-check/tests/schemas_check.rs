//! `schema-check check` (what `cargo xtask schemas check` runs), run as a binary on a
//! throw-away git repository holding a copy of `schemas/`: offline against git history, and
//! online against the local Schema Registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use local_stack::registry::{RegistryHandle, SchemaRegistry};
use serde_json::{Value, json};

const ORDERS: &str = "schemas/grocery.orders.v1.avsc";
const ORDERS_SUBJECT: &str = "grocery.orders.v1-value";
const PICKLIST: &str = "schemas/grocery.picklist.v1.avsc";
const PICKLIST_SUBJECT: &str = "grocery.picklist.v1-value";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .parent()
        .expect("schema-check lives in tools/ of the workspace")
        .to_path_buf()
}

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=schemas test",
            "-c",
            "user.email=schemas@test.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A git repository (branch `branch`) with one commit holding a copy of the workspace's
/// `schemas/`.
fn repo_on(branch: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    git(dir.path(), &["init", "--quiet", "--initial-branch", branch]);
    std::fs::create_dir(dir.path().join("schemas")).expect("mkdir schemas");
    for entry in std::fs::read_dir(workspace().join("schemas")).expect("schemas/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("file name");
        std::fs::copy(&path, dir.path().join("schemas").join(name)).expect("copy schema");
    }
    git(dir.path(), &["add", "schemas"]);
    git(dir.path(), &["commit", "--quiet", "-m", "schemas v1"]);
    dir
}

fn repo() -> tempfile::TempDir {
    repo_on("main")
}

fn read_schema(repo: &Path, rel: &str) -> Value {
    let text = std::fs::read_to_string(repo.join(rel)).expect("read schema");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Rewrites the schema file `rel` of the working tree through `edit` (on its `fields`).
fn edit_fields(repo: &Path, rel: &str, edit: impl FnOnce(&mut Vec<Value>)) {
    let mut schema = read_schema(repo, rel);
    let fields = schema["fields"].as_array_mut().expect("fields");
    edit(fields);
    std::fs::write(
        repo.join(rel),
        serde_json::to_string_pretty(&schema).expect("json"),
    )
    .expect("write schema");
}

fn add_field_without_default(repo: &Path) {
    edit_fields(repo, ORDERS, |fields| {
        fields.push(json!({"name": "loyalty_id", "type": "string"}));
    });
}

fn add_field_with_default(repo: &Path) {
    edit_fields(repo, ORDERS, |fields| {
        fields.push(json!({"name": "loyalty_id", "type": ["null", "string"], "default": null}));
    });
}

fn change_total_to_string(repo: &Path) {
    edit_fields(repo, ORDERS, |fields| {
        let total = fields
            .iter_mut()
            .find(|f| f["name"] == "order_total_cents")
            .expect("order_total_cents");
        total["type"] = json!("string");
    });
}

fn remove_total(repo: &Path) {
    edit_fields(repo, ORDERS, |fields| {
        fields.retain(|f| f["name"] != "order_total_cents");
    });
}

fn set_levels(repo: &Path, text: &str) {
    std::fs::write(repo.join("schemas/compatibility.toml"), text).expect("write levels");
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn passed(&self) -> bool {
        self.code == Some(0)
    }

    fn both(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn assert_passed(&self) {
        assert!(self.passed(), "expected success:\n{}", self.both());
    }

    /// Asserts a failed run whose stdout has a line with every one of `parts`.
    fn assert_rejected(&self, parts: &[&str]) {
        assert!(
            !self.passed() && self.code.is_some(),
            "expected failure:\n{}",
            self.both()
        );
        self.assert_line(parts);
        assert!(
            self.stderr.contains("schemas check failed"),
            "summary on stderr:\n{}",
            self.both()
        );
    }

    fn assert_line(&self, parts: &[&str]) {
        assert!(
            self.stdout
                .lines()
                .any(|line| parts.iter().all(|p| line.contains(p))),
            "no line of stdout has all of {parts:?}:\n{}",
            self.both()
        );
    }
}

fn from_output(output: Output) -> Run {
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn check(repo: &Path, extra: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_schema-check"))
        .args(["check", "--repo"])
        .arg(repo)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run schema-check");
    from_output(output)
}

// ---------------------------------------------------------------------------------------------
// Offline.

#[test]
fn unchanged_schemas_are_compatible() {
    let repo = repo();
    let run = check(repo.path(), &[]);
    run.assert_passed();
    run.assert_line(&["merge-base of HEAD and main"]);
    run.assert_line(&[
        ORDERS_SUBJECT,
        "compatible with 1 previous version(s) (BACKWARD)",
    ]);
    // The pick list's level is FULL (schemas/compatibility.toml).
    run.assert_line(&[
        PICKLIST_SUBJECT,
        "compatible with 1 previous version(s) (FULL)",
    ]);
}

#[test]
fn offline_rejects_a_field_added_without_a_default() {
    let repo = repo();
    add_field_without_default(repo.path());
    let run = check(repo.path(), &[]);
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/loyalty_id'",
        "BACKWARD against version 1",
    ]);
    run.assert_line(&[ORDERS_SUBJECT, "INCOMPATIBLE at level BACKWARD"]);
    // The other subject is still reported, and passes.
    run.assert_line(&[PICKLIST_SUBJECT, "compatible with 1 previous version(s)"]);
    assert!(
        run.stderr.contains(ORDERS_SUBJECT) && !run.stderr.contains(PICKLIST_SUBJECT),
        "{}",
        run.both()
    );
}

#[test]
fn offline_rejects_a_type_change() {
    let repo = repo();
    change_total_to_string(repo.path());
    let run = check(repo.path(), &[]);
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "TYPE_MISMATCH",
        "'/order_total_cents'",
        "string",
        "long",
    ]);
}

#[test]
fn offline_removed_field_is_backward_compatible_but_not_forward_or_full() {
    let repo = repo();
    remove_total(repo.path());
    // BACKWARD (compatibility.toml as checked in): removing a field is fine.
    check(repo.path(), &[]).assert_line(&[
        ORDERS_SUBJECT,
        "compatible with 1 previous version(s) (BACKWARD)",
    ]);

    // FORWARD from compatibility.toml, for this subject only.
    set_levels(
        repo.path(),
        "default = \"BACKWARD\"\n[subjects]\n\"grocery.orders.v1-value\" = \"FORWARD\"\n",
    );
    let run = check(repo.path(), &[]);
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/order_total_cents'",
        "FORWARD against version 1",
    ]);
    run.assert_line(&["levels from schemas/compatibility.toml"]);

    // FULL from --level, overriding the file.
    let run = check(repo.path(), &["--level", "full"]);
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/order_total_cents'",
        "FORWARD against version 1",
    ]);
    run.assert_line(&[ORDERS_SUBJECT, "INCOMPATIBLE at level FULL"]);
    run.assert_line(&["level FULL for every subject (--level)"]);
}

#[test]
fn offline_accepts_a_field_added_with_a_default() {
    let repo = repo();
    add_field_with_default(repo.path());
    let run = check(repo.path(), &["--level", "FULL_TRANSITIVE"]);
    run.assert_passed();
    run.assert_line(&[
        ORDERS_SUBJECT,
        "compatible with 1 previous version(s) (FULL_TRANSITIVE)",
    ]);
}

#[test]
fn offline_reads_every_previous_version_from_history() {
    let repo = repo();
    // v2: a field with a default, committed.
    add_field_with_default(repo.path());
    git(repo.path(), &["commit", "--quiet", "-am", "v2"]);
    // Working tree: the default dropped. Fine against v2 (it has the field), not against v1.
    edit_fields(repo.path(), ORDERS, |fields| {
        let loyalty = fields.last_mut().expect("loyalty_id");
        loyalty.as_object_mut().expect("field").remove("default");
    });
    let run = check(repo.path(), &["--base", "HEAD"]);
    run.assert_passed();
    run.assert_line(&[
        ORDERS_SUBJECT,
        "compatible with 2 previous version(s) (BACKWARD)",
    ]);
    run.assert_line(&["base HEAD ("]);

    let run = check(
        repo.path(),
        &["--base", "HEAD", "--level", "BACKWARD_TRANSITIVE"],
    );
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/loyalty_id'",
        "against version 1",
        ORDERS,
    ]);

    // With the first commit as base, only v1 is history.
    let run = check(repo.path(), &["--base", "HEAD~"]);
    run.assert_rejected(&[ORDERS_SUBJECT, "'/loyalty_id'", "against version 1"]);
}

#[test]
fn offline_new_schema_file_passes_and_invalid_avro_fails_naming_the_file() {
    let repo = repo();
    let mut returns = read_schema(repo.path(), ORDERS);
    returns["name"] = json!("Return");
    std::fs::write(
        repo.path().join("schemas/grocery.returns.v1.avsc"),
        returns.to_string(),
    )
    .expect("write new schema");
    let run = check(repo.path(), &[]);
    run.assert_passed();
    run.assert_line(&["grocery.returns.v1-value: new subject", "compatible"]);

    std::fs::write(
        repo.path().join(PICKLIST),
        r#"{"type": "record", "name": "PickList", "fields": [{"name": "x", "type": "nope"}]}"#,
    )
    .expect("write broken schema");
    let run = check(repo.path(), &[]);
    run.assert_rejected(&[PICKLIST_SUBJECT, PICKLIST, "not a valid Avro schema"]);
}

#[test]
fn offline_without_main_uses_head_parent_and_says_so() {
    let repo = repo_on("trunk");
    add_field_with_default(repo.path());
    git(repo.path(), &["commit", "--quiet", "-am", "v2"]);
    // Working tree: one more field, with a default: compatible with HEAD (v2).
    edit_fields(repo.path(), ORDERS, |fields| {
        fields.push(json!({"name": "coupon", "type": "string", "default": ""}));
        // …and loyalty_id loses its default: incompatible with v1 only.
        fields
            .iter_mut()
            .find(|f| f["name"] == "loyalty_id")
            .and_then(Value::as_object_mut)
            .expect("loyalty_id")
            .remove("default");
    });
    let run = check(repo.path(), &[]);
    run.assert_line(&["base HEAD~ (neither origin/main nor main exists)"]);
    // Against HEAD~ (v1 only), loyalty_id has no default and v1 lacks it.
    run.assert_rejected(&[ORDERS_SUBJECT, "'/loyalty_id'", "against version 1"]);
    assert!(!run.stdout.contains("'/coupon'"), "{}", run.both());
    // Against HEAD (v1, v2) at BACKWARD: only v2 counts, which has loyalty_id.
    check(repo.path(), &["--base", "HEAD"]).assert_passed();
}

#[test]
fn offline_rejects_unknown_subjects_and_levels_in_the_levels_file() {
    let repo = repo();
    set_levels(
        repo.path(),
        "[subjects]\n\"grocery.typo.v1-value\" = \"FULL\"\n",
    );
    let run = check(repo.path(), &[]);
    assert!(!run.passed(), "{}", run.both());
    assert!(
        run.stderr.contains("grocery.typo.v1-value"),
        "{}",
        run.both()
    );
    set_levels(repo.path(), "default = \"SIDEWAYS\"\n");
    let run = check(repo.path(), &[]);
    assert!(!run.passed(), "{}", run.both());
    assert!(run.stderr.contains("SIDEWAYS"), "{}", run.both());
}

// ---------------------------------------------------------------------------------------------
// Online: the local Schema Registry.

struct Online {
    registry: RegistryHandle,
    repo: tempfile::TempDir,
    properties: PathBuf,
    http: reqwest::Client,
}

/// A registry with v1 of both subjects registered, and a repository with a copy of schemas/.
async fn online() -> Online {
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let repo = repo();
    let http = reqwest::Client::new();
    for (rel, subject) in [(ORDERS, ORDERS_SUBJECT), (PICKLIST, PICKLIST_SUBJECT)] {
        let schema = std::fs::read_to_string(repo.path().join(rel)).expect("schema");
        let answer = http
            .post(format!("{}/subjects/{subject}/versions", registry.url()))
            .json(&json!({ "schema": schema }))
            .send()
            .await
            .expect("register");
        assert!(answer.status().is_success(), "register {subject}");
    }
    let properties = repo.path().join("client.properties");
    std::fs::write(
        &properties,
        format!("schema.registry.url={}\n", registry.url()),
    )
    .expect("write properties");
    Online {
        registry,
        repo,
        properties,
        http,
    }
}

impl Online {
    async fn set_level(&self, subject: &str, level: &str) {
        let answer = self
            .http
            .put(format!("{}/config/{subject}", self.registry.url()))
            .json(&json!({ "compatibility": level }))
            .send()
            .await
            .expect("set level");
        assert!(answer.status().is_success(), "set level {level}");
    }

    async fn check(&self) -> Run {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_schema-check"))
            .args(["check", "--repo"])
            .arg(self.repo.path())
            .arg("--registry-config")
            .arg(&self.properties)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .expect("run schema-check");
        from_output(output)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn online_accepts_registered_schemas_and_a_field_added_with_a_default() {
    let online = online().await;
    let run = online.check().await;
    run.assert_passed();
    run.assert_line(&[
        ORDERS_SUBJECT,
        "compatible with 1 registered version(s) (BACKWARD)",
    ]);
    run.assert_line(&[&online.registry.url()]);

    add_field_with_default(online.repo.path());
    online.set_level(ORDERS_SUBJECT, "FULL").await;
    let run = online.check().await;
    run.assert_passed();
    run.assert_line(&[
        ORDERS_SUBJECT,
        "compatible with 1 registered version(s) (FULL)",
    ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn online_rejects_a_field_added_without_a_default() {
    let online = online().await;
    add_field_without_default(online.repo.path());
    let run = online.check().await;
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/loyalty_id'",
    ]);
    run.assert_line(&[ORDERS_SUBJECT, "INCOMPATIBLE at level BACKWARD"]);
    run.assert_line(&[PICKLIST_SUBJECT, "compatible"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn online_rejects_a_type_change() {
    let online = online().await;
    change_total_to_string(online.repo.path());
    let run = online.check().await;
    run.assert_rejected(&[ORDERS_SUBJECT, "TYPE_MISMATCH", "'/order_total_cents'"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn online_removed_field_follows_the_registry_level() {
    let online = online().await;
    remove_total(online.repo.path());
    online.check().await.assert_passed();

    online.set_level(ORDERS_SUBJECT, "FORWARD").await;
    let run = online.check().await;
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/order_total_cents'",
        "FORWARD",
    ]);
    run.assert_line(&[ORDERS_SUBJECT, "INCOMPATIBLE at level FORWARD"]);

    online.set_level(ORDERS_SUBJECT, "FULL").await;
    let run = online.check().await;
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "'/order_total_cents'",
    ]);
    run.assert_line(&[ORDERS_SUBJECT, "INCOMPATIBLE at level FULL"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn online_new_subject_is_compatible() {
    let online = online().await;
    let mut returns = read_schema(online.repo.path(), ORDERS);
    returns["name"] = json!("Return");
    std::fs::write(
        online.repo.path().join("schemas/grocery.returns.v1.avsc"),
        returns.to_string(),
    )
    .expect("write new schema");
    let run = online.check().await;
    run.assert_passed();
    run.assert_line(&["grocery.returns.v1-value: new subject", "compatible"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn online_unreachable_registry_fails_naming_the_url() {
    let online = online().await;
    // A port that was bound a moment ago and is closed now.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    std::fs::write(&online.properties, format!("schema.registry.url={url}\n")).expect("write");
    let run = online.check().await;
    assert!(
        !run.passed() && run.code.is_some(),
        "expected failure:\n{}",
        run.both()
    );
    assert!(
        run.stderr
            .contains(&format!("Schema Registry at {url} is unreachable")),
        "{}",
        run.both()
    );
}

// ---------------------------------------------------------------------------------------------
// Online: credentials, against a stand-in registry that answers as Confluent Cloud does.

/// Serves HTTP/1.1 on a free port: 401 unless `Authorization` is `expected_auth`, else
/// Confluent-shaped answers (one registered version; an incompatible verbose check). Returns
/// the URL and the `Authorization` headers seen.
async fn fake_cloud_registry(
    expected_auth: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                let mut request_line = String::new();
                reader.read_line(&mut request_line).await.ok()?;
                let (mut auth, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    let (name, value) = line.split_once(':')?;
                    match name.to_ascii_lowercase().as_str() {
                        "authorization" => value.trim().clone_into(&mut auth),
                        "content-length" => length = value.trim().parse().ok()?,
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.ok()?;
                log.lock().unwrap().push(auth.clone());
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let (status, answer) = if auth != expected_auth {
                    (
                        "401 Unauthorized",
                        json!({"error_code": 401, "message": "Unauthorized"}),
                    )
                } else if path.starts_with("/subjects/") {
                    ("200 OK", json!([1]))
                } else if path.starts_with("/config/") {
                    ("200 OK", json!({"compatibilityLevel": "BACKWARD"}))
                } else {
                    (
                        "200 OK",
                        json!({"is_compatible": false, "messages": [
                            "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'loyalty_id' at path '/fields/6' in the new schema has no default value and is missing in the old schema', additionalInfo:'loyalty_id'}",
                            "{oldSchemaVersion: 1}",
                        ]}),
                    )
                };
                let answer = answer.to_string();
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let mut socket = reader.into_inner();
                socket.write_all(response.as_bytes()).await.ok()?;
                socket.shutdown().await.ok()
            });
        }
    });
    (url, seen)
}

async fn check_with_properties(repo: &Path, properties: &str) -> Run {
    let file = repo.join("cloud.properties");
    std::fs::write(&file, properties).expect("write properties");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_schema-check"))
        .args(["check", "--repo"])
        .arg(repo)
        .arg("--registry-config")
        .arg(&file)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run schema-check");
    from_output(output)
}

#[tokio::test(flavor = "multi_thread")]
async fn online_sends_basic_auth_and_prints_confluent_messages() {
    let (url, seen) = fake_cloud_registry("Basic S0VZOlNFQ1JFVA==").await;
    let repo = repo();
    let run = check_with_properties(
        repo.path(),
        &format!(
            "schema.registry.url={url}\nbasic.auth.credentials.source=USER_INFO\n\
             basic.auth.user.info=KEY:SECRET\n"
        ),
    )
    .await;
    run.assert_rejected(&[
        ORDERS_SUBJECT,
        "READER_FIELD_MISSING_DEFAULT_VALUE",
        "loyalty_id",
    ]);
    run.assert_line(&[ORDERS_SUBJECT, "INCOMPATIBLE at level BACKWARD", &url]);
    run.assert_line(&[ORDERS_SUBJECT, "{oldSchemaVersion: 1}"]);
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a == "Basic S0VZOlNFQ1JFVA=="),
        "{seen:?}"
    );

    // Wrong secret: a clear refusal naming the registry, not a verdict.
    let run = check_with_properties(
        repo.path(),
        &format!(
            "schema.registry.url={url}\nbasic.auth.credentials.source=USER_INFO\n\
             basic.auth.user.info=KEY:WRONG\n"
        ),
    )
    .await;
    assert!(!run.passed(), "{}", run.both());
    assert!(
        run.stderr.contains(&format!(
            "Schema Registry at {url} refused the credentials (HTTP 401"
        )),
        "{}",
        run.both()
    );
    assert!(
        !run.both().contains("WRONG"),
        "secret printed: {}",
        run.both()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn online_sends_a_static_bearer_token() {
    let (url, seen) = fake_cloud_registry("Bearer t0ken").await;
    let repo = repo();
    let run = check_with_properties(
        repo.path(),
        &format!(
            "schema.registry.url={url}\nbearer.auth.credentials.source=STATIC_TOKEN\n\
             bearer.auth.token=t0ken\n"
        ),
    )
    .await;
    run.assert_rejected(&[ORDERS_SUBJECT, "READER_FIELD_MISSING_DEFAULT_VALUE"]);
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a == "Bearer t0ken"),
        "{seen:?}"
    );
}
