//! The golden file compiles against the core and its types behave as their schemas say.

use avro_events::{__private::apache_avro, Event};

#[allow(missing_docs, unreachable_pub, dead_code)]
mod library {
    include!("golden/library.rs");
}

use apache_avro::{reader::datum::GenericDatumReader, writer::datum::GenericDatumWriter};
use library::{Loan, LoanKind, Member, Renewal};

fn loan() -> Loan {
    Loan {
        loan_id: apache_avro::Uuid::from_u128(42),
        isbn: "978-0-00-000000-2".into(),
        copies: 1,
        kind: LoanKind::ReadingRoom,
        due: 1_763_769_600_000,
        note: None,
        renewals: vec![Renewal { at: 1, days: 14 }],
    }
}

#[test]
fn event_impls_carry_the_declared_bindings() {
    assert_eq!(Loan::TOPIC, "library.loans.v1");
    assert_eq!(Loan::FULL_NAME, "org.example.library.Loan");
    assert_eq!(
        Loan::SCHEMA,
        include_str!("fixtures/library/library.loan.v1.avsc")
    );
    assert_eq!(loan().key(), "00000000-0000-0000-0000-00000000002a");

    let member = Member {
        r#type: 7,
        name: "Ada".into(),
        photo: vec![1, 2],
        signature: Some(vec![3]),
        card: [1, 2, 3, 4],
    };
    assert_eq!(Member::TOPIC, "library.members.v1");
    assert_eq!(member.key(), "7");
}

#[test]
fn generated_types_round_trip_through_their_schema() {
    apache_avro::util::set_serde_human_readable(true);
    fn round_trip<E: Event + PartialEq + std::fmt::Debug>(event: &E) {
        let schema = apache_avro::Schema::parse_str(E::SCHEMA).unwrap();
        let value = apache_avro::to_value(event)
            .unwrap()
            .resolve(&schema)
            .unwrap();
        let mut bytes = Vec::new();
        GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value(&mut bytes, value)
            .unwrap();
        let decoded = GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut &bytes[..])
            .unwrap();
        assert_eq!(&apache_avro::from_value::<E>(&decoded).unwrap(), event);

        // The generated codec writes apache-avro's bytes and reads them back.
        let datum = E::AVRO_DATUM.expect("a generated codec");
        let mut generated = Vec::new();
        (datum.encode)(event, &mut generated);
        assert_eq!(generated, bytes);
        let mut input = &bytes[..];
        assert_eq!(&(datum.decode)(&mut input).unwrap(), event);
        assert!(input.is_empty());
        // Cut short anywhere, the body is a typed error naming the field, never a panic.
        for end in 0..bytes.len() {
            let error = (datum.decode)(&mut &bytes[..end]).unwrap_err();
            assert!(error.to_string().contains(E::FULL_NAME), "{error}");
        }
    }
    round_trip(&loan());
    round_trip(&Member {
        r#type: 7,
        name: "Ada".into(),
        photo: vec![1, 2],
        signature: Some(vec![3, 4]),
        card: [9, 8, 7, 6],
    });
    round_trip(&Loan {
        note: Some("overdue".into()),
        renewals: vec![],
        ..loan()
    });
}

#[test]
fn a_family_is_an_enum_of_its_members_with_the_union_of_their_schemas() {
    use library::LibraryEvents;
    assert_eq!(LibraryEvents::TOPIC, "library.events.v1");
    assert_eq!(
        LibraryEvents::MEMBERS,
        ["org.example.library.Loan", "org.example.library.Member"]
    );
    let union = apache_avro::Schema::parse_str(LibraryEvents::SCHEMA).unwrap();
    let apache_avro::Schema::Union(union) = union else {
        panic!("a union: {union:?}");
    };
    let canonical = |text: &str| {
        apache_avro::Schema::parse_str(text)
            .unwrap()
            .canonical_form()
    };
    assert_eq!(
        union.variants()[0].canonical_form(),
        canonical(Loan::SCHEMA)
    );
    assert_eq!(
        union.variants()[1].canonical_form(),
        canonical(Member::SCHEMA)
    );
    let event = LibraryEvents::from(loan());
    assert_eq!(event, LibraryEvents::Loan(loan()));
    assert_eq!(event.key(), loan().key(), "the member's key");
    assert!(LibraryEvents::DISPATCH.is_some());
}

/// A record written with another version of its schema, read by the generated resolving
/// decoder (`AvroDatum::decode_resolving`, through `Resolution::decode`): the same value as
/// apache-avro's reader resolving the writer schema into the type's, and as the plan's rewrite
/// followed by the straight generated decoder; every strict prefix of the body is a typed
/// error.
fn resolves_as_apache_avro<T>(writer: &str, reader: &str, value: apache_avro::types::Value)
where
    T: avro_events::binary::AvroDatum + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    use avro_events::dynamic::DynamicSchema;
    let (writer_schema, reader_schema) = (
        apache_avro::Schema::parse_str(writer).unwrap(),
        apache_avro::Schema::parse_str(reader).unwrap(),
    );
    let value = value.resolve(&writer_schema).unwrap();
    let mut body = Vec::new();
    GenericDatumWriter::builder(&writer_schema)
        .build()
        .unwrap()
        .write_value(&mut body, value)
        .unwrap();
    let resolved = GenericDatumReader::builder(&writer_schema)
        .reader_schema(&reader_schema)
        .build()
        .unwrap()
        .read_value(&mut &body[..])
        .unwrap();
    let expected: T = apache_avro::from_value(&resolved).unwrap();
    let resolution = DynamicSchema::parse(reader)
        .unwrap()
        .resolution_from(&DynamicSchema::parse(writer).unwrap())
        .unwrap();
    assert_eq!(resolution.decode::<T>(&body, usize::MAX).unwrap(), expected);
    let rewritten = resolution.run(&body, usize::MAX).unwrap();
    assert_eq!(T::decode(&mut &rewritten[..]).unwrap(), expected);
    for end in 0..body.len() {
        assert!(
            resolution.decode::<T>(&body[..end], usize::MAX).is_err(),
            "prefix of {end} bytes"
        );
    }
}

#[test]
fn generated_resolving_decoders_read_other_versions_as_apache_avro_resolves_them() {
    use apache_avro::types::Value;
    apache_avro::util::set_serde_human_readable(true);
    // Loan, written by another version: fields reordered, `copies` missing (default 1), a
    // field the reader lacks, `due` an int (promoted to long), the enum's symbols in another
    // order, renewals with an extra field and `days` first (an array of changed records).
    let writer = r#"{"type": "record", "name": "Loan", "namespace": "org.example.library",
      "fields": [
        {"name": "shelf", "type": "string"},
        {"name": "renewals", "type": {"type": "array", "items": {"type": "record", "name": "Renewal",
          "fields": [{"name": "days", "type": "int"}, {"name": "by", "type": "string"},
                     {"name": "at", "type": "long"}]}}},
        {"name": "kind", "type": {"type": "enum", "name": "LoanKind", "symbols": ["READING_ROOM", "HOME"]}},
        {"name": "note", "type": ["null", "string"]},
        {"name": "isbn", "type": "string"},
        {"name": "due", "type": "int"},
        {"name": "loan_id", "type": {"type": "string", "logicalType": "uuid"}}
      ]}"#;
    let renewal = |at: i64, days: i32| {
        Value::Record(vec![
            ("days".into(), Value::Int(days)),
            ("by".into(), Value::String("desk".into())),
            ("at".into(), Value::Long(at)),
        ])
    };
    for (kind, note, renewals) in [
        (0, Some("overdue"), vec![renewal(1, 14), renewal(2, 7)]),
        (1, None, vec![]),
    ] {
        let loan = Value::Record(vec![
            ("shelf".into(), Value::String("B-12".into())),
            ("renewals".into(), Value::Array(renewals)),
            (
                "kind".into(),
                Value::Enum(kind, ["READING_ROOM", "HOME"][kind as usize].into()),
            ),
            (
                "note".into(),
                match note {
                    Some(n) => Value::Union(1, Box::new(Value::String(n.into()))),
                    None => Value::Union(0, Box::new(Value::Null)),
                },
            ),
            ("isbn".into(), Value::String("978-0-00-000000-2".into())),
            ("due".into(), Value::Int(1_700_000)),
            (
                "loan_id".into(),
                Value::String("00000000-0000-0000-0000-00000000002a".into()),
            ),
        ]);
        resolves_as_apache_avro::<Loan>(writer, Loan::SCHEMA, loan);
    }

    // Visit, whose record field `address` changed (fields swapped, one added): resolved field
    // by field one level down.
    let reader = r#"{"type": "record", "name": "Visit", "namespace": "org.example.library",
      "fields": [{"name": "member", "type": "long"},
        {"name": "address", "type": {"type": "record", "name": "Address",
          "fields": [{"name": "street", "type": "string"}, {"name": "city", "type": "string"}]}}]}"#;
    let writer = r#"{"type": "record", "name": "Visit", "namespace": "org.example.library",
      "fields": [
        {"name": "address", "type": {"type": "record", "name": "Address",
          "fields": [{"name": "zip", "type": "int"}, {"name": "city", "type": "string"},
                     {"name": "street", "type": "string"}]}},
        {"name": "member", "type": "int"}]}"#;
    let visit = Value::Record(vec![
        (
            "address".into(),
            Value::Record(vec![
                ("zip".into(), Value::Int(10115)),
                ("city".into(), Value::String("Berlin".into())),
                ("street".into(), Value::String("Invalidenstr. 1".into())),
            ]),
        ),
        ("member".into(), Value::Int(-7)),
    ]);
    resolves_as_apache_avro::<library::Visit>(writer, reader, visit);
}
