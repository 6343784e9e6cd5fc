//! The core's one Schema Registry client against the local registry: every admin call, the
//! typed errors, `normalize` and the compatibility levels.

use avro_events::Error;
use avro_events::{
    compat::CompatibilityLevel, registry::RegistryClient, registry::RegistryConfig,
    registry::TestAgainst,
};
use local_stack::registry::SchemaRegistry;

const V1: &str =
    r#"{"type":"record","name":"R","namespace":"io.test","fields":[{"name":"a","type":"int"}]}"#;
const V2: &str = r#"{"type":"record","name":"R","namespace":"io.test","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#;
/// V2 without the default on `b`: not backward compatible with V1.
const V2_BAD: &str = r#"{"type":"record","name":"R","namespace":"io.test","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#;

#[tokio::test]
async fn admin_calls_and_typed_errors_against_the_local_registry() {
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    let subject = "orders-value";

    let err = client.versions(subject).await.unwrap_err();
    assert!(matches!(err, Error::SubjectNotFound { .. }), "{err:?}");
    let err = client.latest(subject).await.unwrap_err();
    assert!(matches!(err, Error::SubjectNotFound { .. }), "{err:?}");
    let err = client.lookup(subject, V1).await.unwrap_err();
    assert!(matches!(err, Error::SchemaNotRegistered { .. }), "{err:?}");

    let id1 = client.register(subject, V1).await.expect("register v1");
    assert_eq!(
        client.register(subject, V1).await.unwrap(),
        id1,
        "idempotent"
    );
    assert_eq!(client.schema_by_id(id1).await.unwrap().id, id1);
    let err = client.schema_by_id(id1 + 1000).await.unwrap_err();
    assert!(matches!(err, Error::UnknownSchemaId { .. }), "{err:?}");
    let err = client.version(subject, 7).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionNotFound { ref version, .. } if version == "7"),
        "{err:?}"
    );

    // Levels: the global default, a subject's own, and back.
    assert_eq!(
        client.compatibility(None).await.unwrap(),
        CompatibilityLevel::Backward
    );
    assert_eq!(
        client
            .set_compatibility(Some(subject), CompatibilityLevel::Full)
            .await
            .unwrap(),
        CompatibilityLevel::Full
    );
    assert_eq!(
        client.compatibility(Some(subject)).await.unwrap(),
        CompatibilityLevel::Full
    );
    client.delete_compatibility(subject).await.unwrap();
    assert_eq!(
        client.compatibility(Some(subject)).await.unwrap(),
        CompatibilityLevel::Backward
    );

    // Compatibility tests, then registration refused with 409.
    let ok = client
        .test_compatibility(subject, V2, TestAgainst::Level)
        .await
        .unwrap();
    assert!(ok.is_compatible && ok.messages.is_empty(), "{ok:?}");
    let bad = client
        .test_compatibility(subject, V2_BAD, TestAgainst::Latest)
        .await
        .unwrap();
    assert!(!bad.is_compatible, "{bad:?}");
    assert!(bad.messages.iter().any(|m| m.contains("'b'")), "{bad:?}");
    let err = client.register(subject, V2_BAD).await.unwrap_err();
    assert!(matches!(err, Error::IncompatibleSchema { .. }), "{err:?}");
    let err = client.register(subject, "{not json").await.unwrap_err();
    assert!(matches!(err, Error::RegistryRejected { .. }), "{err:?}");

    let id2 = client.register(subject, V2).await.expect("register v2");
    assert_eq!(client.versions(subject).await.unwrap(), [1, 2]);
    let v2 = client.version(subject, 2).await.unwrap();
    assert_eq!((v2.id, v2.version), (id2, 2));
    assert_eq!(client.latest_version(subject).await.unwrap().version, 2);
    assert_eq!(client.subjects(false).await.unwrap(), [subject]);

    // `normalize`: the same schema written differently is found under its id.
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(V2).unwrap())
            .unwrap();
    assert_eq!(
        client
            .lookup_with(subject, &reformatted, true)
            .await
            .unwrap(),
        id2
    );

    // Soft delete of a version, then of the subject; a permanent delete only after a soft one.
    assert_eq!(client.delete_version(subject, 2, false).await.unwrap(), 2);
    assert_eq!(client.latest_version(subject).await.unwrap().version, 1);
    assert_eq!(client.delete_subject(subject, false).await.unwrap(), [1]);
    assert!(client.subjects(false).await.unwrap().is_empty());
    assert_eq!(client.subjects(true).await.unwrap(), [subject]);
    client
        .delete_subject(subject, true)
        .await
        .expect("permanent delete");
    assert!(client.subjects(true).await.unwrap().is_empty());
    let err = client.delete_subject(subject, false).await.unwrap_err();
    assert!(matches!(err, Error::SubjectNotFound { .. }), "{err:?}");

    registry.shutdown().await.expect("shutdown");
}

/// References through the core's client: registered and looked up with them, `referencedby`,
/// by GUID, a missing reference refused (42201), a referenced version kept (42206), and a
/// closure deeper than `MAX_REFERENCED_SCHEMAS` refused rather than fetched without end.
#[tokio::test]
async fn references_and_guids_through_the_client() {
    use avro_events::registry::{MAX_REFERENCED_SCHEMAS, SchemaReference};

    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), None)
        .await
        .expect("start registry");
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    let unit = r#"{"type":"enum","name":"Unit","namespace":"io.test","symbols":["EACH","KG"]}"#;
    let item = r#"{"type":"record","name":"Item","namespace":"io.test","fields":[{"name":"unit","type":"Unit"}]}"#;
    let unit_ref = [SchemaReference::new("io.test.Unit", "io.test.Unit", 1)];

    // A reference to a subject the registry does not have: 42201.
    let err = client
        .register_with_references("io.test.Item", item, &unit_ref, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RegistryRejected {
                error_code: Some(42201),
                ..
            }
        ),
        "{err:?}"
    );
    let unit_id = client
        .register_with_references("io.test.Unit", unit, &[], false)
        .await
        .unwrap();
    let item_id = client
        .register_with_references("io.test.Item", item, &unit_ref, false)
        .await
        .unwrap();
    assert!(unit_id.guid.is_some() && item_id.guid.is_some());
    let found = client
        .lookup_with_references("io.test.Item", item, &unit_ref, false)
        .await
        .unwrap();
    assert_eq!(
        (found.id, found.version, found.guid),
        (item_id.id, 1, item_id.guid)
    );
    assert_eq!(found.references, unit_ref);
    assert_eq!(
        client.schema_by_id(item_id.id).await.unwrap().references,
        unit_ref
    );
    let by_guid = client.schema_by_guid(item_id.guid.unwrap()).await.unwrap();
    assert_eq!(by_guid.references, unit_ref);
    assert_eq!(
        client.referenced_by("io.test.Unit", 1).await.unwrap(),
        [item_id.id]
    );
    let err = client
        .delete_version("io.test.Unit", 1, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RegistryRejected {
                error_code: Some(42206),
                ..
            }
        ),
        "{err:?}"
    );
    let answer = client
        .test_compatibility_with_references("io.test.Item", item, &unit_ref, TestAgainst::Latest)
        .await
        .unwrap();
    assert!(answer.is_compatible, "{answer:?}");
    let err = client
        .test_compatibility("io.test.Item", item, TestAgainst::Latest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RegistryRejected { .. }),
        "without its references the type is unknown: {err:?}"
    );
    let closure = client
        .referenced_schemas(&[SchemaReference::new("io.test.Item", "io.test.Item", 1)])
        .await
        .unwrap();
    let names: Vec<&str> = closure.iter().map(|r| r.reference.name.as_str()).collect();
    assert_eq!(
        names,
        ["io.test.Unit", "io.test.Item"],
        "dependencies first"
    );
    let err = client
        .schema_by_guid(uuid::Uuid::from_u128(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownSchemaGuid { .. }), "{err:?}");

    // One more schema than the bound in a closure (wide rather than deep: each its own
    // subject, all named by one list of references).
    let name = |i: usize| format!("io.test.C{i}");
    let mut refs = Vec::new();
    for i in 0..=MAX_REFERENCED_SCHEMAS {
        let text = format!(
            r#"{{"type":"record","name":"C{i}","namespace":"io.test","fields":[{{"name":"f","type":"int"}}]}}"#
        );
        client
            .register_with_references(&name(i), &text, &[], false)
            .await
            .unwrap_or_else(|e| panic!("register {}: {e}", name(i)));
        refs.push(SchemaReference::new(name(i), name(i), 1));
    }
    let within = client
        .referenced_schemas(&refs[..MAX_REFERENCED_SCHEMAS])
        .await
        .unwrap();
    assert_eq!(within.len(), MAX_REFERENCED_SCHEMAS);
    let err = client.referenced_schemas(&refs).await.unwrap_err();
    assert!(
        matches!(&err, Error::Registry { reason, .. } if reason.contains("more than 256")),
        "{err:?}"
    );
    registry.shutdown().await.expect("shutdown");
}

/// A chain of schemas, each a record holding the previous one and referencing its subject:
/// the registry writes the references out into one nested schema to parse and check it. A
/// chain nested deeper than the registry's bound is refused with 42201 naming the depth (as
/// Confluent's registry refuses a schema it cannot parse), not a crash of the registry (its
/// recursive parsers overflowed a debug build's 2 MiB stack at link 93), and the registry
/// keeps answering.
#[tokio::test]
async fn a_chain_of_references_nested_too_deep_is_refused_not_a_crash() {
    use avro_events::registry::SchemaReference;
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("registry.json");
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), Some(file.clone()))
        .await
        .expect("start registry");
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    let subject = |i: usize| format!("io.test.Link{i}");
    let mut refused = None;
    for i in 0..200 {
        let (field, references) = if i == 0 {
            ("\"int\"".to_owned(), Vec::new())
        } else {
            let previous = subject(i - 1);
            (
                format!("\"{previous}\""),
                vec![SchemaReference::new(&previous, &previous, 1)],
            )
        };
        let text = format!(
            r#"{{"type":"record","name":"Link{i}","namespace":"io.test","fields":[{{"name":"previous","type":{field}}}]}}"#
        );
        match client
            .register_with_references(&subject(i), &text, &references, false)
            .await
        {
            Ok(_) => {}
            Err(err) => {
                refused = Some((i, err));
                break;
            }
        }
    }
    let (at, err) = refused.expect("a chain of 200 nested records is refused somewhere");
    // Link i nests i + 1 levels (its records and the last one's int): 128 is the bound.
    assert_eq!(at, 128, "{err}");
    assert!(
        matches!(
            &err,
            Error::RegistryRejected { error_code: Some(42201), reason, .. }
                if reason.contains("nested deeper than")
        ),
        "{err:?}"
    );
    // The registry still answers, and a restart parses the deepest chain again from its file.
    let id = client
        .register("after-value", V1)
        .await
        .expect("register after");
    assert_eq!(client.schema_by_id(id).await.unwrap().id, id);
    let deepest = client
        .latest(&subject(127))
        .await
        .expect("the deepest link");
    registry.shutdown().await.expect("shutdown");
    let registry = SchemaRegistry::start(([127, 0, 0, 1], 0).into(), Some(file))
        .await
        .expect("restart from the file");
    let client = RegistryClient::new(&RegistryConfig::new(registry.url())).expect("client");
    let again = client
        .latest(&subject(127))
        .await
        .expect("after the restart");
    assert_eq!((again.id, again.schema), (deepest.id, deepest.schema));
    registry.shutdown().await.expect("shutdown");
}
