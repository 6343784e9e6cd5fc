//! Several event types on one topic, against Confluent's Python serializer: a family generated
//! by avro-events-build (`LibraryEvents`, the Loan and Member records of
//! `crates/avro-events-build/tests/fixtures/library`, declared in its `events.toml`; the code
//! is that crate's golden file, which its own test keeps equal to what the generator writes)
//! reads what confluent-kafka's `AvroSerializer` writes with `TopicRecordNameStrategy`,
//! `RecordNameStrategy` and a top-level union, and the other way round; a record of a type the
//! family does not have is [`Error::UnknownEventType`], dead-lettered by a consumer.
//!
//! The Python side is `scripts/interop/generic_and_families.py` (`families-write`,
//! `families-read`), run with `local_stack::python::interop_venv()`.

mod interop;

use std::{collections::BTreeMap, time::Duration};

use avro_events::{
    Client, Codec, CodecOptions, Config, ConsumerOptions, Error, Event, GenericRecord,
    PipelineOptions, SubjectNameStrategy, dlq::headers as dlq_headers, registry::RegistryConfig,
};
use local_stack::Stack;
use rdkafka::{
    ClientConfig, Message,
    consumer::{BaseConsumer, Consumer as _},
    message::Headers,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};

use interop::{python, read_hex_lines, registry};

#[allow(missing_docs, unreachable_pub, dead_code, clippy::all)]
mod library {
    include!("../../avro-events-build/tests/golden/library.rs");
}

use library::{LibraryEvents, Loan, LoanKind, Member, Renewal};

const TOPIC: &str = "library.events.v1";
const UNION_TOPIC: &str = "library.union.v1";
const REFS_TOPIC: &str = "library.refs.v1";
const WAIT: Duration = Duration::from_secs(30);

/// The values `families-write` serializes (LOAN and MEMBER in the script).
fn loan() -> Loan {
    Loan {
        loan_id: "7d3f2c1a-9b8e-4f6d-a5c4-3b2a1f0e9d8c".parse().unwrap(),
        isbn: "978-0-00-000000-2".into(),
        copies: 2,
        kind: LoanKind::ReadingRoom,
        due: 1_763_769_600_123,
        note: Some("fragile — Ünïcode".into()),
        renewals: vec![Renewal { at: 1, days: 14 }, Renewal { at: -5, days: 0 }],
    }
}

fn member() -> Member {
    Member {
        r#type: 7_000_000_000,
        name: "Ada".into(),
        photo: vec![0, 1, 0xfe, 0xff],
        signature: None,
        card: [1, 2, 3, 4],
    }
}

fn both() -> [LibraryEvents; 2] {
    [loan().into(), member().into()]
}

/// The two values in Avro's JSON encoding (as fastavro's json_writer writes them).
fn both_json() -> [Value; 2] {
    [
        json!({"loan_id": "7d3f2c1a-9b8e-4f6d-a5c4-3b2a1f0e9d8c", "isbn": "978-0-00-000000-2",
               "copies": 2, "kind": "READING_ROOM", "due": 1_763_769_600_123_i64,
               "note": {"string": "fragile — Ünïcode"},
               "renewals": [{"at": 1, "days": 14}, {"at": -5, "days": 0}]}),
        json!({"type": 7_000_000_000_i64, "name": "Ada", "photo": "\u{0}\u{1}\u{fe}\u{ff}",
               "signature": null, "card": "\u{1}\u{2}\u{3}\u{4}"}),
    ]
}

fn codec(url: &str, strategy: SubjectNameStrategy) -> Codec {
    Codec::new(
        &RegistryConfig::new(url),
        CodecOptions::default().with_subject_strategy(strategy),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_family_reads_every_type_python_writes_on_one_topic() {
    let registry = registry().await;
    let url = registry.url();
    let dir = tempfile::Builder::new()
        .prefix("families-write")
        .tempdir()
        .expect("temp dir");
    python("families-write", &url, dir.path()).await;
    let codec = codec(&url, SubjectNameStrategy::TopicName);

    for file in ["topic_record.hex", "record.hex", "union.hex"] {
        let mut decoded = Vec::new();
        for payload in read_hex_lines(&dir.path().join(file)) {
            decoded.push(codec.decode::<LibraryEvents>(&payload).await.unwrap());
        }
        assert_eq!(decoded, both(), "{file}");
    }

    let unknown = &read_hex_lines(&dir.path().join("unknown.hex"))[0];
    let err = codec.decode::<LibraryEvents>(unknown).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownEventType { record, family, .. }
            if record == "org.example.library.Fine" && family == "LibraryEvents"),
        "{err:?}"
    );
    assert!(err.is_poison(), "dead-lettered by a consumer");
    assert_eq!(err.kind(), "unknown_event_type");
    assert!(
        err.to_string().contains(
            "which LibraryEvents has no type for (it has: org.example.library.Loan, \
             org.example.library.Member)"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_reads_every_type_the_family_writes_under_each_strategy() {
    let registry = registry().await;
    let url = registry.url();
    let dir = tempfile::Builder::new()
        .prefix("families-read")
        .tempdir()
        .expect("temp dir");
    let cases = [
        (
            SubjectNameStrategy::TopicRecordName,
            TOPIC,
            [
                "library.events.v1-org.example.library.Loan/1",
                "library.events.v1-org.example.library.Member/1",
            ],
        ),
        (
            SubjectNameStrategy::RecordName,
            TOPIC,
            ["org.example.library.Loan/1", "org.example.library.Member/1"],
        ),
        (
            SubjectNameStrategy::TopicName,
            UNION_TOPIC,
            ["library.union.v1-value/1", "library.union.v1-value/1"],
        ),
    ];
    for (strategy, topic, subjects) in cases {
        let codec = codec(&url, strategy);
        let mut lines = String::new();
        for event in both() {
            let payload = codec.encode_for(topic, &event).await.unwrap();
            assert_eq!(
                codec.decode::<LibraryEvents>(&payload).await.unwrap(),
                event,
                "{strategy:?}: reads back"
            );
            lines.push_str(&hex(&payload));
            lines.push('\n');
        }
        std::fs::write(dir.path().join("rust_family.hex"), lines).unwrap();
        let out = python("families-read", &url, dir.path()).await;
        let read: Vec<Value> = out
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(read.len(), 2, "{strategy:?}: {out}");
        for ((read, json), (name, subject)) in read
            .iter()
            .zip(both_json())
            .zip(LibraryEvents::MEMBERS.iter().zip(subjects))
        {
            assert_eq!(read["record"], *name, "{strategy:?}");
            // The same schema id is under every subject that registered the same schema.
            assert!(
                read["subjects"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(subject)),
                "{strategy:?}: {} registered under {subject}",
                read["subjects"]
            );
            assert_eq!(read["json"], json, "{strategy:?}");
        }
    }
    // The union registered under the topic's subject is the family's schema.
    let union = codec(&url, SubjectNameStrategy::TopicName)
        .registry()
        .latest(&format!("{UNION_TOPIC}-value"))
        .await
        .unwrap();
    let canonical = |text: &str| {
        apache_avro::Schema::parse_str(text)
            .unwrap()
            .canonical_form()
    };
    assert_eq!(canonical(&union.schema), canonical(LibraryEvents::SCHEMA));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_family_consumer_reads_python_records_and_dead_letters_unknown_types() {
    let stack = Stack::start().await.unwrap();
    let topic = stack.unique_topic("library-events", 1).unwrap();
    let dlq = format!("{topic}.dlq");
    stack.kafka().create_topic(&dlq, 1).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("families-consumer")
        .tempdir()
        .expect("temp dir");
    python("families-write", &stack.registry_url(), dir.path()).await;

    // Python's bytes, produced as they are: a Loan and a Member with each record-name strategy,
    // a Fine (unknown to the family) between them.
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    let mut payloads = read_hex_lines(&dir.path().join("topic_record.hex"));
    payloads.extend(read_hex_lines(&dir.path().join("unknown.hex")));
    payloads.extend(read_hex_lines(&dir.path().join("record.hex")));
    for (i, payload) in payloads.iter().enumerate() {
        raw.send(
            FutureRecord::to(&topic)
                .key(&format!("k{i}"))
                .payload(payload),
            WAIT,
        )
        .await
        .unwrap();
    }

    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config).unwrap();
    let consumer = client
        .consumer_subscribed_to::<LibraryEvents>(
            ConsumerOptions::new(format!("families-{}", uuid::Uuid::new_v4().simple())),
            &[topic.as_str()],
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.len() < 4 {
        let next = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .expect("four events within the wait")
            .unwrap();
        consumer.ack(&next.meta).unwrap();
        received.push(next.event);
    }
    assert_eq!(received[..2], both());
    assert_eq!(received[2..], both());
    assert_eq!(
        received[0].key(),
        loan().loan_id.to_string(),
        "the member's key"
    );

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .set("group.id", format!("dlq-reader-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&dlq]).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let dead = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        if let Some(message) = reader.poll(Duration::from_millis(200)) {
            break message.unwrap().detach();
        }
    };
    let headers: BTreeMap<String, String> = dead
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                    (h.key.to_owned(), value.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        dead.payload(),
        Some(&payloads[2][..]),
        "the Fine, as written"
    );
    assert_eq!(headers[dlq_headers::ERROR_KIND], "unknown_event_type");
    assert!(
        headers[dlq_headers::ERROR_MESSAGE].contains("'org.example.library.Fine'"),
        "{headers:?}"
    );
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_family_is_a_pipeline_input_and_its_unknown_types_are_dead_lettered() {
    let stack = Stack::start().await.unwrap();
    for topic in [TOPIC, "library.events.v1.dlq", Loan::TOPIC] {
        stack.kafka().create_topic(topic, 1).unwrap();
    }
    let dir = tempfile::Builder::new()
        .prefix("families-pipeline")
        .tempdir()
        .expect("temp dir");
    python("families-write", &stack.registry_url(), dir.path()).await;
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", stack.bootstrap_servers())
        .create()
        .unwrap();
    let mut payloads = read_hex_lines(&dir.path().join("topic_record.hex"));
    payloads.extend(read_hex_lines(&dir.path().join("unknown.hex")));
    payloads.extend(read_hex_lines(&dir.path().join("union.hex")));
    for payload in &payloads {
        raw.send(FutureRecord::<(), _>::to(TOPIC).payload(payload), WAIT)
            .await
            .unwrap();
    }

    let config = Config::from_properties_str(&stack.client_properties()).unwrap();
    let client = Client::from_config(config).unwrap();
    let pipeline = client
        .pipeline::<LibraryEvents>(PipelineOptions::new(format!(
            "library-{}",
            uuid::Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        // Each loan goes on to the loans topic; members end here.
        let result = pipeline
            .run(
                |received| match &received.event {
                    LibraryEvents::Loan(loan) => vec![loan.clone()],
                    LibraryEvents::Member(_) => Vec::new(),
                },
                async {
                    let _ = stop_rx.await;
                },
            )
            .await;
        result.map(|()| pipeline.consumer().dead_lettered())
    });
    let loans = client
        .consumer::<Loan>(ConsumerOptions::new(format!(
            "loans-{}",
            uuid::Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    for _ in 0..2 {
        let received = tokio::time::timeout(WAIT, loans.recv())
            .await
            .expect("two loans within the wait")
            .unwrap();
        assert_eq!(received.event, loan());
        loans.ack(&received.meta).unwrap();
    }
    // The loan of the union comes after the Fine: the Fine has been dead-lettered by then.
    stop_tx.send(()).unwrap();
    let dead_lettered = tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(dead_lettered, 1, "the Fine");
    loans.close().await.unwrap();
}

/// Confluent's documented way to carry several types on one topic: the topic's subject holds a
/// union whose branches are references to other subjects. Python writes it (a Member schema
/// whose `last_loan` names the Loan of another branch, so a branch is not whole on its own);
/// the family and [`GenericRecord`] read it; the family and a generic record written with
/// `use.latest.version` are read by Python.
#[tokio::test(flavor = "multi_thread")]
async fn a_union_of_references_is_read_and_written_both_ways() {
    let registry = registry().await;
    let url = registry.url();
    let dir = tempfile::Builder::new()
        .prefix("union-refs")
        .tempdir()
        .expect("temp dir");
    python("union-refs-write", &url, dir.path()).await;
    let written: Vec<Value> = std::fs::read_to_string(dir.path().join("union_refs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 3);
    let codec = codec(&url, SubjectNameStrategy::TopicName);
    let mut family = Vec::new();
    for line in &written {
        let payload = interop::from_hex(line["payload"].as_str().unwrap());
        family.push(codec.decode::<LibraryEvents>(&payload).await.unwrap());
        let generic = codec.decode::<GenericRecord>(&payload).await.unwrap();
        assert_eq!(
            generic.to_json().unwrap(),
            line["json"],
            "{}",
            line["record"]
        );
    }
    // The family's Member has no last_loan: resolution leaves it out.
    assert_eq!(
        family,
        [loan().into(), member().into(), member().into()] as [LibraryEvents; 3]
    );

    // The other way: the family and a generic record, written with the registered union.
    let latest = Codec::new(
        &RegistryConfig::new(&url),
        CodecOptions::default()
            .with_auto_register(false)
            .with_use_latest_version(true),
    )
    .unwrap();
    let mut lines = String::new();
    for event in both() {
        lines.push_str(&hex(&latest.encode_for(REFS_TOPIC, &event).await.unwrap()));
        lines.push('\n');
    }
    let schema = latest
        .generic_schema_of(&format!("{REFS_TOPIC}-value"), None)
        .await
        .unwrap();
    let record = schema.record_from_json(&written[1]["json"]).unwrap();
    lines.push_str(&hex(&latest.encode_for(REFS_TOPIC, &record).await.unwrap()));
    std::fs::write(dir.path().join("rust_union_refs.hex"), lines).unwrap();
    let out = python("union-refs-read", &url, dir.path()).await;
    let read: Vec<Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read.len(), 3, "{out}");
    let [loan_json, member_json] = both_json();
    let mut member_json = member_json;
    member_json["last_loan"] = Value::Null;
    let expected = [
        (
            "org.example.library.Loan",
            json!({"org.example.library.Loan": loan_json}),
        ),
        (
            "org.example.library.Member",
            json!({"org.example.library.Member": member_json}),
        ),
        ("org.example.library.Member", written[1]["json"].clone()),
    ];
    for (read, (record, json)) in read.iter().zip(expected) {
        assert_eq!(read["record"], record);
        assert_eq!(read["json"], json, "{record}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
