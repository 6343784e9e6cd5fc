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
