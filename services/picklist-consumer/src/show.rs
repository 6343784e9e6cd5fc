//! The consume-and-show loop: each pick list shown once (and handed to staff's [`Board`]),
//! acknowledged after showing.

use std::io::Write;

use grocery_events::{Consumer, PickList, TraceContext};
use grocery_store::{Dedup, render_text, to_json};
use serde::Serialize;

use crate::{staff::Board, startup::now_ms, web::Live};

/// Ids remembered for de-duplication; redeliveries arrive close together.
const DEDUP_LIMIT: usize = 500_000;

/// How pick lists are printed on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Format {
    /// A text block per pick list.
    Text,
    /// One flat JSON object per line.
    Json,
}

/// What happened, written to `--stats-file` at exit.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Stats {
    pub(crate) shown: u64,
    pub(crate) duplicates_suppressed: u64,
    pub(crate) dead_lettered: u64,
}

/// The counts, and how the loop ended.
pub(crate) struct Outcome {
    pub(crate) stats: Stats,
    pub(crate) result: anyhow::Result<()>,
}

/// Shows pick lists until `shutdown` resolves or the consumer fails; closes the consumer.
pub(crate) async fn run(
    consumer: &Consumer<PickList>,
    format: Format,
    live: &Live,
    board: &Board,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    tokio::pin!(shutdown);
    let mut dedup = Dedup::with_limit(DEDUP_LIMIT);
    let mut stats = Stats::default();
    let result = async {
        loop {
            let received = tokio::select! {
                () = &mut shutdown => break,
                received = consumer.recv() => received?,
            };
            let pick_list = &received.event;
            if dedup.observe(pick_list) {
                let trace = received.trace();
                board.add(pick_list, trace.clone());
                show(pick_list, trace.as_ref(), format, live)?;
                // The display, a step of the order's trace (exported when OTLP is on).
                if let Some(trace) = &trace {
                    trace.record_child("display");
                }
                stats.shown += 1;
            } else {
                stats.duplicates_suppressed += 1;
                tracing::info!(
                    picklist_id = %pick_list.picklist_id,
                    partition = received.meta.partition,
                    offset = received.meta.offset,
                    "duplicate pick list suppressed"
                );
            }
            live.count(stats.shown, stats.duplicates_suppressed);
            consumer.ack(&received.meta)?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let closed = crate::startup::tolerate_final_commit(consumer.close().await, result.is_ok());
    stats.dead_lettered = consumer.dead_lettered();
    Outcome {
        stats,
        result: result.and(closed.map_err(Into::into)),
    }
}

/// A pick list as the JSON lines and the live page show it: its fields, `displayed_at_ms` and
/// its record's trace as `trace_id` and `traceparent`.
pub(crate) fn page_json(pick_list: &PickList, trace: Option<&TraceContext>) -> serde_json::Value {
    let mut json = to_json(pick_list);
    if let Some(object) = json.as_object_mut() {
        object.insert("displayed_at_ms".into(), now_ms().into());
        if let Some(trace) = trace {
            object.insert("trace_id".into(), trace.trace_id().to_string().into());
            object.insert("traceparent".into(), trace.traceparent().into());
        }
    }
    json
}

/// Shows a pick list (with its trace, which the JSON carries as `trace_id` and `traceparent`
/// and the log line names).
fn show(
    pick_list: &PickList,
    trace: Option<&TraceContext>,
    format: Format,
    live: &Live,
) -> anyhow::Result<()> {
    let json = page_json(pick_list, trace);
    let trace_id = trace.map(|t| t.trace_id().to_string());
    tracing::info!(
        picklist_id = %pick_list.picklist_id,
        order_id = %pick_list.order_id,
        trace_id = %trace_id.as_deref().unwrap_or(""),
        "pick list shown"
    );
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Text => writeln!(stdout, "{}", render_text(pick_list))?,
        Format::Json => writeln!(stdout, "{json}")?,
    }
    stdout.flush()?;
    live.publish(pick_list.order_id, json.to_string());
    Ok(())
}
