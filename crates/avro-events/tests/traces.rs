//! W3C trace context through Kafka against the local stack: every record produced carries a
//! `traceparent`, a plain send starts a new trace, `send_traced` continues a given one, a
//! caller's own headers (and a `traceparent` of its own) are kept, and a pipeline continues
//! each input's trace on its output, with and without transactions.

mod utils;

use std::{collections::BTreeMap, time::Duration};

use avro_events::{Client, Config, ConsumerOptions, Headers, PipelineOptions, TraceContext};
use uuid::Uuid;

use utils::events::{Alert, Reading, alert_for, config, group, reading, stack};

const WAIT: Duration = Duration::from_secs(30);

async fn next<T>(what: &str, future: impl Future<Output = avro_events::Result<T>>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not arrive within {WAIT:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_record_carries_trace_context_new_or_continued() {
    let stack = stack().await;
    let topic = stack.unique_topic("traces", 1).unwrap();
    let client = Client::from_config(config(&stack)).unwrap();
    let producer = client.producer().await.unwrap();

    let parent = TraceContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("vendor=abc"),
    )
    .unwrap();
    let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    producer.send_to(&topic, &reading(1)).await.unwrap();
    producer.send_to(&topic, &reading(2)).await.unwrap();
    producer
        .enqueue_traced(
            &topic,
            &reading(3),
            Some(&Headers::new().with("source", "checkout")),
            Some(&parent),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    producer
        .enqueue_with(
            &topic,
            &reading(4),
            Some(&Headers::new().with("traceparent", own).with("a", "b")),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let consumer = client
        .consumer_subscribed_to::<Reading>(group("traces"), &[&topic])
        .await
        .unwrap();
    let mut got = Vec::new();
    for n in 1..=4 {
        let received = next(&format!("order {n}"), consumer.recv()).await;
        consumer.ack(&received.meta).unwrap();
        got.push(received);
    }
    let (first, second) = (got[0].trace().unwrap(), got[1].trace().unwrap());
    assert_ne!(
        first.trace_id(),
        second.trace_id(),
        "a plain send starts a new trace"
    );
    assert!(first.is_sampled());

    let continued = got[2].trace().unwrap();
    assert_eq!(continued.trace_id(), parent.trace_id(), "same trace");
    assert_ne!(continued.span_id(), parent.span_id(), "a span of its own");
    assert_eq!(continued.tracestate().as_deref(), Some("vendor=abc"));
    assert_eq!(got[2].headers.get_str("source"), Some("checkout"));

    assert_eq!(
        got[3].headers.get_str("traceparent"),
        Some(own),
        "a caller's own traceparent is sent as it is"
    );
    assert_eq!(got[3].headers.get_str("a"), Some("b"));
    assert_eq!(got[3].headers.len(), 2);
    consumer.close().await.unwrap();
}

/// Runs a pipeline reading → alert over `count` readings, each sent in a trace of its own,
/// and returns (reading trace, alert trace) per reading id.
async fn pipeline_traces(
    config: Config,
    count: u32,
) -> BTreeMap<Uuid, (TraceContext, TraceContext)> {
    let client = Client::from_config(config).unwrap();
    let producer = client.producer().await.unwrap();
    let mut sent = BTreeMap::new();
    for n in 0..count {
        let order = reading(n);
        let parent = TraceContext::new_root();
        producer.send_traced(&order, &parent).await.unwrap();
        sent.insert(order.id, parent);
    }
    let pipeline = client
        .pipeline::<Reading>(PipelineOptions::new(format!(
            "fulfillment-{}",
            Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        pipeline
            .run(|received| vec![alert_for(&received.event)], async {
                let _ = stop_rx.await;
            })
            .await
    });
    let orders = client
        .consumer::<Reading>(ConsumerOptions::new(format!(
            "o-{}",
            Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let pick_lists = client
        .consumer::<Alert>(ConsumerOptions::new(format!(
            "p-{}",
            Uuid::new_v4().simple()
        )))
        .await
        .unwrap();
    let mut order_traces = BTreeMap::new();
    for _ in 0..count {
        let received = next("order", orders.recv()).await;
        order_traces.insert(received.event.id, received.trace().unwrap());
    }
    let mut traces = BTreeMap::new();
    while traces.len() < count as usize {
        let received = next("pick list", pick_lists.recv()).await;
        let order_id = received.event.reading_id;
        let order_trace = order_traces[&order_id].clone();
        assert_eq!(
            order_trace.trace_id(),
            sent[&order_id].trace_id(),
            "the order continues the trace it was sent in"
        );
        traces.insert(order_id, (order_trace, received.trace().unwrap()));
    }
    stop_tx.send(()).unwrap();
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    traces
}

fn assert_each_pick_list_continues_its_order(
    traces: &BTreeMap<Uuid, (TraceContext, TraceContext)>,
) {
    for (order_id, (order, pick_list)) in traces {
        assert_eq!(
            pick_list.trace_id(),
            order.trace_id(),
            "pick list of {order_id}: the order's trace"
        );
        assert_ne!(pick_list.span_id(), order.span_id(), "a new span");
    }
    let distinct: std::collections::BTreeSet<_> = traces
        .values()
        .map(|(o, _)| o.trace_id().to_string())
        .collect();
    assert_eq!(distinct.len(), traces.len(), "one trace per order");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_continues_each_inputs_trace() {
    let stack = stack().await;
    let traces = pipeline_traces(config(&stack), 20).await;
    assert_each_pick_list_continues_its_order(&traces);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transactional_pipeline_continues_each_inputs_trace() {
    let stack = stack().await;
    let config = config(&stack).set(
        "transactional.id",
        format!("traces-{}", Uuid::new_v4().simple()),
    );
    let traces = pipeline_traces(config, 20).await;
    assert_each_pick_list_continues_its_order(&traces);
}
