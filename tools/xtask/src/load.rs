//! `cargo xtask load`: HTTP load on the Order API at a fixed rate, for soaks.
//!
//! Sends `POST /orders` to `--url` at `--rate` requests per second for `--seconds`, each with a
//! fresh `Idempotency-Key` (none with `--without-keys`) and one to four lines of the built-in catalog, over at most
//! `--connections` requests in flight (a request that would pass that bound waits: the rate
//! achieved is then printed lower than the rate asked for, never hidden). Every `--interval`
//! seconds it prints one line: requests sent, 2xx answers, other answers, transport errors,
//! and the p50/p99 latency of that interval. Targets 127.0.0.1 only in this repository's
//! scripts; ends after `--seconds` or at Ctrl-C, with a summary line. Exits non-zero when no
//! request got a 2xx answer.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Args;
use grocery_store::Catalog;

/// `cargo xtask load` options.
#[derive(Args, Debug)]
pub(crate) struct LoadArgs {
    /// The Order API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    url: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 15)]
    interval: u64,
    /// Send no `Idempotency-Key` (the Order API then keeps no key; to tell its memory apart).
    #[arg(long)]
    without_keys: bool,
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

/// The `q` quantile (0..=1) of `sorted`, in milliseconds.
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at] as f64 / 1000.0
}

pub(crate) async fn run(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0, "--rate must be at least 1");
    anyhow::ensure!(args.connections > 0, "--connections must be at least 1");
    let skus: Vec<String> = Catalog::builtin()
        .items()
        .iter()
        .map(|item| item.sku.clone())
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}/orders", args.url.trim_end_matches('/'));
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(tokio::sync::Semaphore::new(args.connections));
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut report = tokio::time::interval(Duration::from_secs(args.interval.max(1)));
    report.tick().await;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut n: u64 = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    println!(
        "load: POST {url} at {}/s for {} s, at most {} in flight",
        args.rate, args.seconds, args.connections
    );
    println!(
        "{:>7} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8}",
        "seconds", "sent", "2xx", "other", "errors", "p50 ms", "p99 ms"
    );
    let print = |tally: &Tally, elapsed: Duration| {
        let mut latencies = std::mem::take(&mut *tally.latencies_us.lock().unwrap());
        latencies.sort_unstable();
        println!(
            "{:>7} {:>9} {:>9} {:>7} {:>7} {:>8.1} {:>8.1}",
            elapsed.as_secs(),
            tally.sent.load(Ordering::Relaxed),
            tally.ok.load(Ordering::Relaxed),
            tally.refused.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
            quantile_ms(&latencies, 0.5),
            quantile_ms(&latencies, 0.99),
        );
    };
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = report.tick() => print(&tally, started.elapsed()),
            _ = ticker.tick() => {
                if Instant::now() >= end {
                    break;
                }
                let permit = permits.clone().acquire_owned().await?;
                n += 1;
                let lines = 1 + (n % 4) as usize;
                let items: Vec<serde_json::Value> = (0..lines)
                    .map(|i| {
                        let sku = &skus[((n as usize) * 7 + i * 13) % skus.len()];
                        serde_json::json!({ "sku": sku, "quantity": 1 + (n + i as u64) % 3 })
                    })
                    .collect();
                let mut request = client
                    .post(&url)
                    .json(&serde_json::json!({ "items": items }));
                if !args.without_keys {
                    request = request.header("idempotency-key", uuid::Uuid::new_v4().to_string());
                }
                let tally = tally.clone();
                tally.sent.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let sent = Instant::now();
                    match request.send().await {
                        Ok(response) if response.status().is_success() => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {
                            tally.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            tally.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let micros = sent.elapsed().as_micros() as u64;
                    tally.latencies_us.lock().unwrap().push(micros);
                    drop(permit);
                });
            }
        }
    }
    // Wait for the requests still in flight.
    let _all = permits.acquire_many(args.connections as u32).await?;
    let elapsed = started.elapsed();
    print(&tally, elapsed);
    let ok = tally.ok.load(Ordering::Relaxed);
    println!(
        "load: {} requests in {:.1} s ({:.0}/s), {ok} answered 2xx, {} other, {} transport errors",
        tally.sent.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        tally.sent.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        tally.refused.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    anyhow::ensure!(ok > 0, "no request was answered 2xx");
    Ok(())
}
