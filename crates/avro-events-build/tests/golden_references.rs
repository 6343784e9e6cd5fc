//! The golden file of an event whose schema uses another file's type compiles against the
//! core, lists that file as its reference, and its values round-trip through its schema read
//! with the reference, as the codec reads it.

use avro_events::{__private::apache_avro, Event};

#[allow(missing_docs, unreachable_pub, dead_code)]
mod library {
    include!("golden/library_visit.rs");
}

use apache_avro::{reader::datum::GenericDatumReader, writer::datum::GenericDatumWriter};
use library::{Address, Visit};

#[test]
fn the_reference_is_the_other_file_with_its_declared_subject_and_version() {
    assert_eq!(
        Visit::SCHEMA,
        include_str!("fixtures/library/library.visit.avsc")
    );
    let [address] = Visit::REFERENCES else {
        panic!("one reference: {:?}", Visit::REFERENCES)
    };
    assert_eq!(address.name, "org.example.library.Address");
    assert_eq!(address.subject, "library.addresses");
    assert_eq!(address.version, 1);
    assert_eq!(
        address.schema,
        include_str!("fixtures/library/library.address.avsc")
    );
    assert!(address.references.is_empty());
    // Its text alone is not a schema; with the reference it is.
    assert!(apache_avro::Schema::parse_str(Visit::SCHEMA).is_err());
    let (schema, referenced) =
        apache_avro::Schema::parse_str_with_list(Visit::SCHEMA, [address.schema]).unwrap();

    apache_avro::util::set_serde_human_readable(true);
    let visit = Visit {
        member: 7,
        address: Address {
            street: "1 Main St".into(),
            city: "Springfield".into(),
        },
    };
    let mut bytes = Vec::new();
    GenericDatumWriter::builder(&schema)
        .schemata(referenced.iter().collect())
        .unwrap()
        .build()
        .unwrap()
        .write_ser(&mut bytes, &visit)
        .unwrap();
    let decoded = GenericDatumReader::builder(&schema)
        .writer_schemata(referenced.iter().collect())
        .unwrap()
        .build()
        .unwrap()
        .read_value(&mut &bytes[..])
        .unwrap();
    assert_eq!(apache_avro::from_value::<Visit>(&decoded).unwrap(), visit);
    if let Some(datum) = Visit::AVRO_DATUM {
        let mut generated = Vec::new();
        (datum.encode)(&visit, &mut generated);
        assert_eq!(generated, bytes);
        assert_eq!((datum.decode)(&mut &bytes[..]).unwrap(), visit);
    }
}
