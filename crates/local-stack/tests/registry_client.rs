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
