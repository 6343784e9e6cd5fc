//! The oracle of the local registry's schema identity: Java Avro's `Schema.toString()`, the
//! canonical text Confluent's Schema Registry stores and matches registrations and lookups by
//! (`AvroSchema.canonicalString()`).
//!
//! Spellings of schemas (primitives as names or objects, full names split or not, inherited
//! namespaces written out, references by short or full name, attribute order and whitespace)
//! and schemas that differ only in what Confluent keeps (`doc`, defaults, `order`, aliases,
//! logical types, other properties and their order) are each registered under a subject of
//! their own. Then, for every pair: same id exactly when Java's texts are equal; the text the
//! registry serves for an id is Java's text, byte for byte; and looking one spelling up under
//! another's subject finds it exactly when Java's texts are equal.
//!
//! Schemas with references are written as Java Avro writes a schema parsed after its references
//! (`toString(referenced, false)`, what Confluent stores): checked case by case.
//!
//! Needs Java 17 and Maven (Java Avro 1.12, the jars of `crates/avro-events-compat/oracle/
//! pom.xml`, resolved once and cached): `cargo test -p local-stack --features java-oracle --test
//! registry_java_oracle`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use local_stack::registry::SchemaRegistry;
use serde_json::{Value, json};

/// Schemas by group; within a group, some are spellings of one schema and some are not (the
/// test does not say which: Java does).
fn corpus() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "primitive",
            vec![
                r#""string""#,
                r#"{"type":"string"}"#,
                r#"{ "type" : "string" }"#,
                r#"{"type":"string","doc":"a note"}"#,
                r#"{"type":"string","default":"x"}"#,
                r#"{"type":"string","avro.java.string":"String"}"#,
                r#"{"type":"string","logicalType":"uuid"}"#,
                r#"{"type":"long","logicalType":"timestamp-millis"}"#,
            ],
        ),
        (
            "decimal",
            vec![
                r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#,
                r#"{"type":"bytes","scale":2,"precision":4,"logicalType":"decimal"}"#,
                r#"{"logicalType":"decimal","type":"bytes","precision":4,"scale":2}"#,
            ],
        ),
        (
            "record",
            vec![
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string"}]}"#,
                r#"{"type":"record","name":"io.t.R","fields":[{"name":"a","type":{"type":"string"}}]}"#,
                r#"{ "fields": [ { "type": "string", "name": "a" } ], "namespace": "io.t", "name": "R", "type": "record" }"#,
                r#"{"type":"record","name":"io.t.R","namespace":"other","fields":[{"name":"a","type":"string"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string","order":"ascending"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","doc":"an R","fields":[{"name":"a","type":"string"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string","doc":"an a"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string","default":"x"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string","order":"descending"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string","aliases":["b"]}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","aliases":["Old"],"fields":[{"name":"a","type":"string"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","aliases":["io.t.Old"],"fields":[{"name":"a","type":"string"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","owner":"team-a","fields":[{"name":"a","type":"string"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"a","type":"string","owner":"team-a"}]}"#,
            ],
        ),
        (
            "named",
            vec![
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},{"name":"f","type":"E"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"e","type":{"type":"enum","name":"io.t.E","symbols":["A","B"]}},{"name":"f","type":"io.t.E"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"e","type":{"type":"enum","name":"E","namespace":"io.t","symbols":["A","B"]}},{"name":"f","type":{"type":"io.t.E"}}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}},{"name":"f","type":"E"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"e","type":{"type":"enum","name":"E","namespace":"x","symbols":["A","B"]}},{"name":"f","type":"x.E"}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"n","type":{"type":"record","name":"N","fields":[]}}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"n","type":{"type":"record","name":"N","namespace":"","fields":[]}}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"x","type":{"type":"fixed","name":"F","size":4}},{"name":"y","type":["null","F"],"default":null}]}"#,
                r#"{"type":"record","name":"R","namespace":"io.t","fields":[{"name":"x","type":{"type":"fixed","name":"io.t.F","size":4}},{"name":"y","type":["null",{"type":"io.t.F"}],"default":null}]}"#,
                r#"{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}"#,
                r#"{"type":"record","name":"L","namespace":"","fields":[{"name":"next","type":["null",{"type":"L"}]}]}"#,
                r#"{"type":"record","name":"a.R","fields":[{"name":"n","type":{"type":"record","name":"b.N","fields":[{"name":"m","type":{"type":"record","name":"M","fields":[{"name":"r","type":["null","a.R"]}]}}]}},{"name":"k","type":"b.M"}]}"#,
                r#"{"type":"record","name":"R","namespace":"a","fields":[{"name":"n","type":{"type":"record","name":"N","namespace":"b","fields":[{"name":"m","type":{"type":"record","name":"b.M","fields":[{"name":"r","type":["null",{"type":"a.R"}]}]}}]}},{"name":"k","type":{"type":"b.M"}}]}"#,
                r#"{"type":"record","name":"R","namespace":"a","aliases":["x.Old","Older","a.Older"],"fields":[{"name":"v","type":"int","aliases":["w","w"]}]}"#,
            ],
        ),
        (
            "containers",
            vec![
                r#"["null","string"]"#,
                r#"["null",{"type":"string"}]"#,
                r#"{"type":"array","items":"int"}"#,
                r#"{"type":"array","items":{"type":"int"}}"#,
                r#"{"type":"map","values":{"type":"array","items":"long"}}"#,
                r#"{"values":{"items":"long","type":"array"},"type":"map"}"#,
                r#"{"type":"array","items":"int","owner":"team-a"}"#,
                r#"{"type":"int","meta":{"b":1,"a":[2,{"y":true,"x":null}]}}"#,
                r#"{"type":"int","meta":{"a":[2,{"x":null,"y":true}],"b":1}}"#,
            ],
        ),
        (
            "defaults",
            vec![
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":1}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":1.0}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"m","type":{"type":"map","values":"int"},"default":{"b":1,"a":2}}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"m","type":{"type":"map","values":"int"},"default":{"a":2,"b":1}}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":1e3}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":1000.0}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":1e-7}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":0.0000001}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":12345678.9}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"d","type":"double","default":-0.0}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"s","type":"string","default":"caf\u00e9 \"q\" \n"}]}"#,
                r#"{"type":"record","name":"D","fields":[{"name":"s","type":"string","default":"café \"q\" \n"}]}"#,
            ],
        ),
    ]
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("registry-oracle")
}

/// The jars of Java Avro (the compatibility oracle's `pom.xml`), resolved once and cached.
fn classpath() -> String {
    let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("../avro-events-compat/oracle/pom.xml");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("avro-oracle-jars");
    test_support::maven::classpath(&pom, &cache)
        .unwrap_or_else(|e| panic!("the Java Avro oracle: {e:#}"))
}

/// Java Avro's `Schema.toString()` of each schema (`Err`: Java refuses it).
fn java_texts(schemas: &[&str]) -> Vec<Result<String, String>> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let input = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("registry-oracle.{}.{call}.txt", std::process::id()));
    std::fs::write(&input, schemas.join("\n") + "\n").expect("write the schemas");
    let output = Command::new("java")
        .arg("-cp")
        .arg(classpath())
        .arg(oracle_dir().join("Canonical.java"))
        .arg(&input)
        .stdin(Stdio::null())
        .output()
        .expect("java Canonical.java (Java 17 must be on PATH)");
    std::fs::remove_file(&input).expect("remove the schemas file");
    assert!(
        output.status.success(),
        "the Java oracle failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let answers: Vec<Result<String, String>> = stdout
        .lines()
        .map(|line| match line.split_once('\t') {
            Some(("OK", text)) => Ok(text.to_owned()),
            Some(("ERROR", why)) => Err(why.to_owned()),
            _ => panic!("unexpected oracle line: {line}"),
        })
        .collect();
    assert_eq!(answers.len(), schemas.len(), "one answer per schema");
    answers
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, schema: &str) -> (u16, Value) {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&json!({ "schema": schema }))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_identity_follows_java_avro() {
    let groups = corpus();
    let schemas: Vec<&str> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let java = tokio::task::spawn_blocking({
        let schemas: Vec<&'static str> = schemas.clone();
        move || java_texts(&schemas)
    })
    .await
    .unwrap();

    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let api = Api {
        http: reqwest::Client::new(),
        base: registry.url().trim_end_matches('/').to_owned(),
    };
    // Each schema under a subject of its own: id, and the text served for it.
    let mut registered: Vec<(usize, u64)> = Vec::new();
    for (i, (schema, java)) in schemas.iter().zip(&java).enumerate() {
        let (status, body) = api.post(&format!("/subjects/s{i}/versions"), schema).await;
        match java {
            Err(why) => {
                assert_ne!(
                    status, 200,
                    "Java refuses {schema} ({why}); the registry took it"
                );
                continue;
            }
            Ok(_) => assert_eq!(status, 200, "{schema}: {body}"),
        }
        let id = body["id"].as_u64().unwrap();
        let (status, served) = api.get(&format!("/schemas/ids/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            served["schema"].as_str(),
            java.as_deref().ok(),
            "the canonical text of {schema}"
        );
        registered.push((i, id));
    }
    let mut same = 0;
    for &(i, id_i) in &registered {
        for &(j, id_j) in &registered {
            let equal = java[i] == java[j];
            same += usize::from(equal && i != j);
            assert_eq!(
                id_i == id_j,
                equal,
                "ids {id_i} and {id_j} of\n  {}\n  {}\nJava's texts:\n  {:?}\n  {:?}",
                schemas[i],
                schemas[j],
                java[i],
                java[j]
            );
            let (status, found) = api.post(&format!("/subjects/s{j}"), schemas[i]).await;
            if equal {
                assert_eq!(
                    (status, found["id"].as_u64()),
                    (200, Some(id_j)),
                    "looking up {} under the subject of {}",
                    schemas[i],
                    schemas[j]
                );
            } else {
                assert_eq!(
                    (status, found["error_code"].as_u64()),
                    (404, Some(40403)),
                    "looking up {} under the subject of {}",
                    schemas[i],
                    schemas[j]
                );
            }
        }
    }
    println!(
        "{} schemas in {} groups ({} refused by Java); {} ordered pairs share an id",
        schemas.len(),
        groups.len(),
        java.iter().filter(|j| j.is_err()).count(),
        same
    );
    registry.shutdown().await.expect("shutdown");
}

/// Schemas with references: the referenced schemas (each registered referring to those before
/// it), then the schema using them.
fn reference_cases() -> Vec<(Vec<&'static str>, &'static str)> {
    let product_with_unit = r#"{"type":"record","name":"Product","namespace":"shop","fields":[{"name":"sku","type":"string"},{"name":"unit","type":{"type":"enum","name":"Unit","symbols":["EACH","KG"]}}]}"#;
    let unit = r#"{"type":"enum","name":"Unit","namespace":"shop","symbols":["EACH","KG"]}"#;
    let product = r#"{"type":"record","name":"Product","namespace":"shop","fields":[{"name":"sku","type":"string"},{"name":"unit","type":"Unit"}]}"#;
    let address =
        r#"{"type":"record","name":"geo.Address","fields":[{"name":"street","type":"string"}]}"#;
    let money = r#"{"type":"fixed","name":"Money","size":8}"#;
    vec![
        // A type nested in a referenced one, used by name: written out.
        (
            vec![product_with_unit],
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"main","type":"Product"},{"name":"extra","type":["null","shop.Product"],"default":null},{"name":"unit","type":"Unit"}]}"#,
        ),
        // Both referenced (a diamond): both by name.
        (
            vec![unit, product],
            r#"{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"main","type":"shop.Product"},{"name":"unit","type":"Unit"},{"name":"lines","type":{"type":"array","items":"Product"}}]}"#,
        ),
        // Another namespace, and the null one.
        (
            vec![address, money],
            r#"{"type":"record","name":"Delivery","namespace":"shop","fields":[{"name":"to","type":"geo.Address"},{"name":"from","type":{"type":"map","values":"geo.Address"}},{"name":"fee","type":"Money"}]}"#,
        ),
        // A top-level union of references (several event types on one topic).
        (
            vec![unit, product, address],
            r#"["shop.Product","geo.Address"]"#,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_with_references_are_written_as_java_avro_writes_them() {
    let cases = reference_cases();
    let lines: Vec<String> = cases
        .iter()
        .map(|(referenced, schema)| {
            let mut parts = referenced.clone();
            parts.push(schema);
            parts.join("\t")
        })
        .collect();
    let java = tokio::task::spawn_blocking(move || {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        java_texts(&lines)
    })
    .await
    .unwrap();

    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let http = reqwest::Client::new();
    let register = |subject: String, body: Value| {
        let request = http
            .post(format!("{}/subjects/{subject}/versions", registry.url()))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&body);
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap();
            assert_eq!(status, 200, "{subject}: {body}");
            body
        }
    };
    for (i, ((referenced, schema), java)) in cases.iter().zip(&java).enumerate() {
        let java = java
            .as_ref()
            .unwrap_or_else(|e| panic!("Java refuses case {i}: {e}"));
        let mut references = Vec::new();
        for (k, text) in referenced.iter().enumerate() {
            let subject = format!("c{i}r{k}");
            register(
                subject.clone(),
                json!({ "schema": text, "references": references }),
            )
            .await;
            let full = full_name(text);
            references.push(json!({ "name": full, "subject": subject, "version": 1 }));
        }
        let body = register(
            format!("c{i}"),
            json!({ "schema": schema, "references": references }),
        )
        .await;
        assert_eq!(body["schema"].as_str(), Some(java.as_str()), "case {i}");
    }
    println!(
        "{} schemas with references written as Java writes them",
        cases.len()
    );
    registry.shutdown().await.expect("shutdown");
}

/// The full name a named schema defines.
fn full_name(text: &str) -> String {
    let json: Value = serde_json::from_str(text).unwrap();
    let name = json["name"].as_str().unwrap();
    match json["namespace"].as_str() {
        Some(ns) if !name.contains('.') => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}
