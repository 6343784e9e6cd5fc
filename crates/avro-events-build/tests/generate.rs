//! The generator against golden files, and each of its errors.
//!
//! `UPDATE_GOLDEN=1 cargo test -p avro-events-build --test generate` rewrites the golden file
//! after an intended change; review its diff.

use std::{
    fs,
    path::{Path, PathBuf},
};

use avro_events_build::{Builder, Error, configure};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/library")
}

fn library() -> Builder {
    configure()
        .schema_dir(fixtures())
        .declarations(fixtures().join("events.toml"))
}

/// A temporary directory holding `files` (name, text).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const READING: &str = r#"{"type": "record", "name": "Reading", "namespace": "io.example",
    "fields": [{"name": "sensor", "type": "string"}, {"name": "celsius", "type": "double"},
               {"name": "tags", "type": {"type": "map", "values": "string"}}]}"#;

#[test]
fn generated_code_matches_the_golden_file() {
    let code = library().generate().unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/library.rs");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&golden, &code).unwrap();
    }
    let expected = fs::read_to_string(&golden).unwrap();
    assert_eq!(
        code,
        expected,
        "generated code differs from {}",
        golden.display()
    );
}

#[test]
fn declarations_in_build_rs_and_in_a_file_generate_the_same_code() {
    let from_calls = configure()
        .schema_dir(fixtures())
        .event("org.example.library.Loan", "library.loans.v1", "loan_id")
        .event("org.example.library.Member", "library.members.v1", "type")
        .generate()
        .unwrap();
    assert_eq!(from_calls, library().generate().unwrap());
}

#[test]
fn compile_writes_the_file_into_the_output_directory() {
    let out = tempfile::tempdir().unwrap();
    let written = library()
        .out_dir(out.path())
        .file_name("library.rs")
        .emit_rerun_if_changed(false)
        .compile()
        .unwrap();
    assert_eq!(written, out.path().join("library.rs"));
    assert_eq!(
        fs::read_to_string(written).unwrap(),
        library().generate().unwrap()
    );
}

#[test]
fn the_core_path_is_configurable() {
    let code = library()
        .avro_events_path("::my_contracts")
        .generate()
        .unwrap();
    assert!(code.contains("use ::my_contracts::__private::{apache_avro, serde};"));
    assert!(code.contains("#[serde(crate = \"::my_contracts::__private::serde\")]"));
    assert!(code.contains("impl ::my_contracts::Event for Loan {"));
    assert!(!code.contains("avro_events"));
}

#[test]
fn an_unreadable_file_is_named() {
    let missing = fixtures().join("no-such.avsc");
    let err = configure().schema(&missing).generate().unwrap_err();
    assert!(
        matches!(&err, Error::Read { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("no-such.avsc"), "{err}");

    let err = configure()
        .schema_dir(fixtures().join("no-such-dir"))
        .generate()
        .unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");

    let empty = tempfile::tempdir().unwrap();
    let err = configure().schema_dir(empty.path()).generate().unwrap_err();
    assert!(matches!(err, Error::NoSchemas { .. }), "{err:?}");

    let err = library()
        .declarations(fixtures().join("missing.toml"))
        .generate()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Read { path, .. } if path.ends_with("missing.toml")),
        "{err:?}"
    );
}

#[test]
fn invalid_schemas_name_their_file() {
    for (text, expect) in [
        (
            r#"{"type": "record", "name": "A""#,
            "invalid Avro schema in",
        ),
        (
            r#"{"type": "record", "name": "A", "fields": [{"name": "x", "type": "strin"}]}"#,
            "invalid Avro schema in",
        ),
        (
            r#"{"type": "record", "name": "A", "fields": [{"name": "x", "type": "int", "default": "no"}]}"#,
            "invalid Avro schema in",
        ),
        (
            r#""string""#,
            "the top-level schema is the primitive \"string\"",
        ),
        (r#"["null", "string"]"#, "the top-level schema is a union"),
        (
            r#"{"type": "array", "items": "int"}"#,
            "the top-level schema is a array",
        ),
    ] {
        let dir = dir_with(&[("good.avsc", READING), ("bad.avsc", text)]);
        let err = configure().schema_dir(dir.path()).generate().unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("{}", dir.path().join("bad.avsc").display())),
            "{text}: {message}"
        );
        assert!(message.contains(expect), "{text}: {message}");
        assert!(
            matches!(err, Error::InvalidSchema { .. } | Error::NotNamed { .. }),
            "{err:?}"
        );
    }
}

#[test]
fn types_that_would_collide_are_refused() {
    // The same full name in two files, and the same simple name in two namespaces: one Rust
    // module cannot hold both.
    let same = r#"{"type": "record", "name": "Reading", "namespace": "io.example",
        "fields": [{"name": "x", "type": "int"}]}"#;
    let other_ns = r#"{"type": "record", "name": "Reading", "namespace": "io.other",
        "fields": [{"name": "x", "type": "int"}]}"#;
    for second in [same, other_ns] {
        let dir = dir_with(&[("a.avsc", READING), ("b.avsc", second)]);
        let err = configure().schema_dir(dir.path()).generate().unwrap_err();
        let Error::DuplicateType {
            rust_name,
            first,
            second,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(rust_name, "Reading");
        assert!(
            first.ends_with("a.avsc") && second.ends_with("b.avsc"),
            "{err}"
        );
    }
}

#[test]
fn declaration_errors_name_the_record_and_the_file() {
    // Not defined anywhere.
    let err = library()
        .event("org.example.library.Fine", "library.fines.v1", "id")
        .generate()
        .unwrap_err();
    assert!(
        matches!(&err, Error::RecordNotFound { record, nested_in: None, .. } if record == "org.example.library.Fine"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "event org.example.library.Fine (declared in build.rs) is not the top-level record of any schema file"
    );

    // Defined, but nested in another record's file.
    let err = library()
        .event("org.example.library.Renewal", "library.renewals.v1", "at")
        .generate()
        .unwrap_err();
    assert!(
        matches!(&err, Error::RecordNotFound { nested_in: Some(path), .. } if path.ends_with("library.loan.v1.avsc")),
        "{err:?}"
    );

    // Uses a type from another file: its text alone is not a schema.
    let err = library()
        .event("org.example.library.Visit", "library.visits.v1", "member")
        .generate()
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotSelfContained { path, .. } if path.ends_with("library.visit.avsc")),
        "{err:?}"
    );

    // A key field the record does not have.
    let err = library()
        .event("org.example.library.Address", "library.addresses.v1", "zip")
        .generate()
        .unwrap_err();
    assert!(matches!(err, Error::KeyFieldNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with(
            "library.address.avsc: record org.example.library.Address has no field \"zip\" \
             (declared as its key in build.rs); fields: street, city"
        ),
        "{err}"
    );

    // Declared twice.
    let err = library()
        .event("org.example.library.Loan", "library.loans.v2", "loan_id")
        .generate()
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateDeclaration { .. }), "{err:?}");

    // A topic Kafka would refuse.
    let err = configure()
        .schema_dir(fixtures())
        .event("org.example.library.Address", "library addresses", "city")
        .generate()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTopic { .. }), "{err:?}");

    // A malformed declarations file.
    let dir = dir_with(&[("events.toml", "[events.\"a.B\"]\ntopic = 3\n")]);
    let err = configure()
        .schema_dir(fixtures())
        .declarations(dir.path().join("events.toml"))
        .generate()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDeclarations { .. }), "{err:?}");
    assert!(err.to_string().contains("events.toml"), "{err}");
}

#[test]
fn key_fields_of_unsupported_types_are_refused() {
    for (field, found) in [
        ("kind", "enum org.example.library.LoanKind"),
        ("note", "union [null, string]"),
        ("renewals", "array of record org.example.library.Renewal"),
        ("due", "timestampmillis"),
    ] {
        let err = configure()
            .schema(fixtures().join("library.loan.v1.avsc"))
            .event("org.example.library.Loan", "library.loans.v1", field)
            .generate()
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedKeyType { .. }), "{err:?}");
        assert!(
            err.to_string().ends_with(&format!(
                "library.loan.v1.avsc: key field org.example.library.Loan.{field} is of type {found}; \
                 a key field must be string, uuid, int or long"
            )),
            "{err}"
        );
    }
    let err = configure()
        .schema(fixtures().join("library.member.v1.avsc"))
        .event("org.example.library.Member", "library.members.v1", "photo")
        .generate()
        .unwrap_err();
    assert!(err.to_string().contains("is of type bytes"), "{err}");
}

#[test]
fn compile_without_out_dir_outside_a_build_script_is_an_error() {
    // Test binaries run without OUT_DIR (cargo sets it for build scripts only).
    assert!(std::env::var_os("OUT_DIR").is_none());
    let err = library()
        .emit_rerun_if_changed(false)
        .compile()
        .unwrap_err();
    assert!(matches!(err, Error::NoOutDir), "{err:?}");
}
