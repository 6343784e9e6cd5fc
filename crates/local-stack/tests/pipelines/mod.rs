//! What the real-broker pipeline tests share: the broker's plain listener and a pipeline run
//! until it ends by itself or gets through.

use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use grocery_events::{Client, Order, Pipeline, PipelineOptions, Received, Result};
use local_stack::Stack;
use tokio::sync::oneshot;

/// The broker's listener without authentication (the test's own clients are its admin).
pub(crate) fn plaintext(stack: &Stack) -> String {
    stack.kafka_broker().unwrap().plaintext_bootstrap()
}

/// Runs a pipeline of `group` with `transform` until it ends by itself (an error) or `done`
/// holds for it, then stops it (which commits what it read); returns how it ended. Fails the
/// test when neither happens `within`.
pub(crate) async fn run_until<O, T>(
    client: &Client,
    group: &str,
    within: Duration,
    transform: T,
    done: impl Fn(&Pipeline<Order>) -> bool,
) -> Result<Arc<Pipeline<Order>>>
where
    O: avro_events::IntoOutputs + 'static,
    T: FnMut(&Received<Order>) -> O + Send + 'static,
{
    let mut options = PipelineOptions::new(group);
    options.consumer.initial_backoff = Duration::from_millis(100);
    let pipeline = Arc::new(client.pipeline::<Order>(options).await?);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .run(transform, async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let deadline = std::time::Instant::now() + within;
    while !(task.is_finished() || done(&pipeline)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pipeline neither ended nor got through in {} s: {} transactions aborted, \
             stalled: {:?}",
            within.as_secs(),
            pipeline.stats().aborted.load(Ordering::Relaxed),
            pipeline.stalled()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(120), task)
        .await
        .expect("the pipeline ends within two minutes")
        .expect("the task did not panic")?;
    Ok(pipeline)
}
