//! The consume-and-show loop: each pick list shown once (and handed to staff's [`Board`]),
//! acknowledged after showing.
//!
//! The duplicate check ([`Dedup`], bounded to [`DEDUP_LIMIT`] ids) is there for pick lists
//! written twice: fulfillment in at-least-once mode processes an order again after a crash or
//! a rebalance and writes a second record with the same `picklist_id`. That second record
//! follows the first on the same partition (both keyed by the order id) by at most what
//! fulfillment wrote between its last committed offset and the crash: its commit interval
//! (5 s) times its rate, far below the limit at a store's rate (100,000 ids cover 100 s at
//! 1,000 pick lists per second). A replay cannot slip past it either: redeliveries to this
//! consumer after a rebalance start at the group's committed offset (committed every 5 s), so
//! what is delivered again was read within the last few seconds, again well within the limit;
//! the restore at start (`staff::restore`) goes through the staff board, which keeps one entry
//! per order, not through this check. After a restart the set starts empty, as it always did:
//! the records read since the last commit are printed again, and the board (put back from the
//! topics) still holds one card per order. A duplicate further back than the limit is printed
//! twice: never lost, at worst one line again.

use std::io::Write;

use grocery_events::{Consumer, PickList, TraceContext};
use grocery_store::{Dedup, render_text};
use serde::Serialize;
use service_kit::now_ms;

use crate::{live::Live, live::page_json, staff::Board};

/// Pick list ids remembered for the duplicate check, the oldest forgotten first (see the module
/// docs for why this is enough): about 5 MiB.
pub(crate) const DEDUP_LIMIT: usize = 100_000;

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
                // The board's JSON has the list's arrival; a list the board holds already (put
                // back by the restore) is shown as it is.
                let json = board
                    .add(pick_list, trace.clone())
                    .unwrap_or_else(|| page_json(pick_list, trace.as_ref(), now_ms(), None));
                show(pick_list, json, trace.as_ref(), format, live)?;
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
    let closed = service_kit::tolerate_final_commit(consumer.close().await, result.is_ok());
    stats.dead_lettered = consumer.dead_lettered();
    Outcome {
        stats,
        result: result.and(closed.map_err(Into::into)),
    }
}

/// Shows a pick list (with its trace, which the JSON carries as `trace_id` and `traceparent`
/// and the log line names): on stdout, then to the open pages as `json`, its page JSON.
fn show(
    pick_list: &PickList,
    mut json: String,
    trace: Option<&TraceContext>,
    format: Format,
    live: &Live,
) -> anyhow::Result<()> {
    tracing::info!(
        picklist_id = %pick_list.picklist_id,
        order_id = %pick_list.order_id,
        trace_id = %trace.map(|t| t.trace_id().to_string()).unwrap_or_default(),
        "pick list shown"
    );
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Text => writeln!(stdout, "{}", render_text(pick_list))?,
        Format::Json => {
            // The line in one write: stdout writes through to the pipe at each newline.
            json.push('\n');
            stdout.write_all(json.as_bytes())?;
            json.pop();
        }
    }
    stdout.flush()?;
    live.publish(json);
    Ok(())
}
