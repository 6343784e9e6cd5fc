//! The live web page: `/` (self-contained HTML and JavaScript), `/events` (server-sent events,
//! one `picklist` event per pick list shown, starting with the most recent ones), `/health`,
//! `/metrics` (Prometheus text: pick lists shown, duplicates suppressed, client metrics).

use std::{
    collections::VecDeque,
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::header,
    response::{
        Html,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures::{Stream, StreamExt};
use grocery_events::context::KafkaContext;
use tokio::sync::{broadcast, watch};

/// Pick lists a newly opened page receives first.
const RECENT: usize = 50;

const PAGE: &str = include_str!("page.html");

/// The pick lists shown so far, for the live page: a broadcast of new ones and the most
/// recent few.
#[derive(Clone)]
pub(crate) struct Live {
    tx: broadcast::Sender<String>,
    recent: Arc<Mutex<VecDeque<String>>>,
    /// Pick lists shown and duplicates suppressed so far, for `/metrics`.
    counts: Arc<[AtomicU64; 2]>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            recent: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// Updates the counts `/metrics` shows.
    pub(crate) fn count(&self, shown: u64, duplicates_suppressed: u64) {
        self.counts[0].store(shown, Ordering::Relaxed);
        self.counts[1].store(duplicates_suppressed, Ordering::Relaxed);
    }

    fn metrics(&self) -> String {
        format!(
            "# HELP picklist_consumer_shown_total Pick lists shown\n\
             # TYPE picklist_consumer_shown_total counter\n\
             picklist_consumer_shown_total {}\n\
             # HELP picklist_consumer_duplicates_suppressed_total Pick lists delivered again and not shown\n\
             # TYPE picklist_consumer_duplicates_suppressed_total counter\n\
             picklist_consumer_duplicates_suppressed_total {}\n",
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed)
        )
    }

    /// Publishes a pick list (as JSON) to the open pages.
    pub(crate) fn publish(&self, json: String) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(json.clone());
        // No page open is fine.
        let _ = self.tx.send(json);
    }

    /// The recent pick lists, then the new ones as they come.
    fn subscribe(&self) -> impl Stream<Item = String> + use<> {
        let rx = self.tx.subscribe();
        let recent: Vec<String> = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.iter().cloned().collect()
        };
        let new = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(json) => return Some((json, rx)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "live page fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        // The page drops repeats of a picklist_id (a list published between subscribing and
        // taking the snapshot comes twice).
        futures::stream::iter(recent).chain(new)
    }
}

#[derive(Clone)]
struct AppState {
    live: Live,
    client: KafkaContext,
    shutdown: watch::Receiver<bool>,
}

/// The running web server.
pub(crate) struct Server {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Waits (a few seconds at most) for the server to finish after shutdown.
    pub(crate) async fn stop(self) {
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "web server failed"),
            Ok(Err(error)) => tracing::error!(%error, "web server task failed"),
            Err(_) => tracing::warn!("web server did not stop in time"),
        }
    }
}

/// Binds `addr` and serves the page until `shutdown` turns true.
pub(crate) async fn spawn(
    addr: SocketAddr,
    live: Live,
    client: KafkaContext,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Server> {
    let listener = service_kit::listen(addr).await?;
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/events", get(events))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(AppState {
            live,
            client,
            shutdown: shutdown.clone(),
        });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped(shutdown))
            .await
    });
    Ok(Server { task })
}

async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.live.metrics();
            service_kit::stats::render(&mut text, &[("consumer", &state.client)], false);
            text
        },
    )
}

async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = state
        .live
        .subscribe()
        .map(|json| Ok(Event::default().event("picklist").data(json)))
        .take_until(stopped(state.shutdown));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
