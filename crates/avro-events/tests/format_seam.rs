//! The `Format` seam: a format other than Avro plugged into the library's own producer and
//! consumer, with no change to either. The test format writes JSON (no registry, no schema id),
//! counting what goes through it, against the local stack.

mod utils;

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use avro_events::{Client, Error, Event};
use avro_events::{Format, registry::SchemaType};
use serde::{Serialize, de::DeserializeOwned};

use utils::events::{Reading, config, group, reading, stack};

const WAIT: Duration = Duration::from_secs(30);

/// JSON bodies, the event's own key: enough of a second format to show the seam carries one.
#[derive(Debug, Default)]
struct Json {
    encoded: AtomicUsize,
    decoded: AtomicUsize,
}

fn fault(reader: &str, reason: impl ToString) -> Error {
    Error::Encode {
        reader: reader.to_owned(),
        subject: "(json)".to_owned(),
        reason: reason.to_string(),
    }
}

impl Format for Json {
    fn schema_type(&self) -> SchemaType {
        SchemaType::Json
    }

    fn parse_schema(&self, schema: &str) -> avro_events::Result<()> {
        serde_json::from_str::<serde_json::Value>(schema)
            .map(drop)
            .map_err(|e| Error::InvalidSchema {
                origin: "a JSON schema".into(),
                reason: e.to_string(),
            })
    }

    fn encode_for<E: Event>(
        &self,
        _topic: &str,
        event: &E,
    ) -> impl Future<Output = avro_events::Result<Vec<u8>>> + Send {
        self.encoded.fetch_add(1, Ordering::SeqCst);
        let encoded = serde_json::to_vec(event).map_err(|e| fault(E::FULL_NAME, e));
        async move { encoded }
    }

    fn encode_event_key<E: Event>(
        &self,
        _topic: &str,
        event: &E,
    ) -> impl Future<Output = avro_events::Result<Vec<u8>>> + Send {
        let key = event.key().into_bytes();
        async move { Ok(key) }
    }

    fn encode_key<E: Event>(
        &self,
        _topic: &str,
        key: &(impl Serialize + Sync + ?Sized),
    ) -> impl Future<Output = avro_events::Result<Vec<u8>>> + Send {
        let key = serde_json::to_vec(key).map_err(|e| fault(E::FULL_NAME, e));
        async move { key }
    }

    fn decode<E: Event>(
        &self,
        payload: &[u8],
    ) -> impl Future<Output = avro_events::Result<E>> + Send {
        self.decoded.fetch_add(1, Ordering::SeqCst);
        let decoded = serde_json::from_slice(payload).map_err(|e| Error::Decode {
            schema_id: 0,
            reader: E::FULL_NAME.to_owned(),
            location: None,
            reason: e.to_string(),
        });
        async move { decoded }
    }

    fn decode_key<E: Event, K: DeserializeOwned + Send>(
        &self,
        key: &[u8],
    ) -> impl Future<Output = avro_events::Result<K>> + Send {
        let key = serde_json::from_slice(key).map_err(|e| Error::Decode {
            schema_id: 0,
            reader: E::FULL_NAME.to_owned(),
            location: None,
            reason: e.to_string(),
        });
        async move { key }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_format_goes_through_the_same_producer_and_consumer() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let topic = stack.unique_topic("json-format", 1).unwrap();
    let json = Arc::new(Json::default());
    assert_eq!(json.schema_type().as_str(), "JSON");
    assert!(json.parse_schema("{\"type\": \"object\"}").is_ok());

    let producer = client.producer_with_format(json.clone()).await.unwrap();
    let order = reading(1);
    producer
        .enqueue_to(&topic, &order)
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(json.encoded.load(Ordering::SeqCst), 1);

    let consumer = client
        .consumer_with_format::<Reading, _>(group("json-format"), &[topic.as_str()], json.clone())
        .await
        .unwrap();
    let received = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("the JSON record did not arrive")
        .unwrap();
    assert_eq!(received.event, order);
    assert_eq!(received.meta.key.as_deref(), Some(order.key().as_str()));
    assert_eq!(json.decoded.load(Ordering::SeqCst), 1);
    consumer.ack(&received.meta).unwrap();
    // The Avro codec was not involved: nothing was registered for the topic.
    let subjects = client.codec().registry().subjects(false).await.unwrap();
    assert!(
        !subjects.iter().any(|s| s.starts_with(topic.as_str())),
        "{subjects:?}"
    );
}

/// A replay reads through the format it is given: JSON records written to the reading topic by
/// the JSON producer are read back whole, and the replay says it has caught up.
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_decodes_with_the_format_it_is_given() {
    let stack = stack().await;
    let client = Client::from_config(config(&stack)).unwrap();
    let json = Arc::new(Json::default());
    let producer = client.producer_with_format(json.clone()).await.unwrap();
    let sent: Vec<Reading> = (0..5).map(reading).collect();
    for event in &sent {
        producer.send(event).await.unwrap();
    }
    let mut replay = client
        .replay_with_format::<Reading, _>(group("json-replay"), WAIT, json.clone())
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(record) = tokio::time::timeout(WAIT, replay.recv_until_caught_up())
        .await
        .expect("the replay did not catch up")
        .unwrap()
    {
        if let avro_events::Record::Event(received) = record {
            got.push(received.event);
        }
    }
    got.sort_by_key(|r| r.id);
    assert_eq!(got, sent);
    assert_eq!(json.decoded.load(Ordering::SeqCst), sent.len());
    assert_eq!(replay.remaining(), 0);
}
