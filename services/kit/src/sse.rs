//! Server-sent events to the pages a service serves: a [`Hub`] broadcasts named JSON updates
//! to every open page, and [`Hub::events`] answers a page's `GET` with the state it must start
//! from followed by the updates from then on, until the service stops.
//!
//! Bounded: the hub keeps at most `capacity` updates for a page that reads slowly; past it the
//! page misses the oldest (logged at WARN with how many) and goes on, so nothing grows with
//! traffic or with a stalled page.

use std::{convert::Infallible, sync::Arc};

use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures::{Stream, StreamExt as _};
use tokio::sync::{broadcast, watch};

use crate::http::stopped;

/// One server-sent event: its name and its data (JSON text).
pub type Update = (&'static str, String);

/// The event stream of one page ([`Hub::events`]).
pub type Events = futures::stream::BoxStream<'static, Result<Event, Infallible>>;

/// The broadcast of updates to the open pages.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: Arc<broadcast::Sender<Update>>,
}

impl Hub {
    /// A hub that keeps at most `capacity` updates for a page reading slowly.
    ///
    /// # Panics
    /// When `capacity` is 0.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: Arc::new(broadcast::channel(capacity).0),
        }
    }

    /// Sends the event `name` with `data` to the open pages (none open is fine).
    pub fn publish(&self, name: &'static str, data: String) {
        let _ = self.tx.send((name, data));
    }

    /// The updates published from now on, until the hub is dropped.
    pub fn subscribe(&self) -> impl Stream<Item = Update> + Send + use<> {
        let rx = self.tx.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(update) => return Some((update, rx)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a live page fell behind and missed updates");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// The answer to a page's `GET` of its event stream: the updates `snapshot` returns (the
    /// state the page starts from, taken after subscribing, so that nothing published in
    /// between is lost: it may come twice, and pages drop repeats), then every update
    /// published, with keep-alive comments, until `shutdown` turns true.
    pub fn events(
        &self,
        snapshot: impl FnOnce() -> Vec<Update>,
        shutdown: watch::Receiver<bool>,
    ) -> Sse<KeepAliveStream<Events>> {
        let new = self.subscribe();
        let first = futures::stream::iter(snapshot());
        let stream = first
            .chain(new)
            .map(|(name, data)| Ok(Event::default().event(name).data(data)))
            .take_until(stopped(shutdown))
            .boxed();
        Sse::new(stream).keep_alive(KeepAlive::default())
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;
    use futures::StreamExt as _;

    use super::*;

    /// A page gets the snapshot first, then what is published after it subscribed, and the
    /// stream ends when the service stops.
    #[tokio::test]
    async fn a_page_gets_the_snapshot_then_the_updates_until_shutdown() {
        let hub = Hub::new(8);
        hub.publish("picklist", "before anyone listens".to_owned());
        let (stop, shutdown) = watch::channel(false);
        let publisher = hub.clone();
        let response = hub
            .events(
                move || {
                    // Published after the subscription: the page gets it after the snapshot.
                    publisher.publish("status", "{\"n\":2}".to_owned());
                    vec![("picklist", "{\"n\":1}".to_owned())]
                },
                shutdown,
            )
            .into_response();
        let mut body = response.into_body().into_data_stream();
        let mut text = String::new();
        while !text.contains("{\"n\":2}") {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert_eq!(
            text,
            "event: picklist\ndata: {\"n\":1}\n\nevent: status\ndata: {\"n\":2}\n\n"
        );
        stop.send_replace(true);
        assert!(body.next().await.is_none(), "the stream ends at shutdown");
    }

    /// A page that reads slowly misses the oldest updates past the capacity, and goes on with
    /// the newest: the hub holds no more than its capacity.
    #[tokio::test]
    async fn a_slow_page_misses_the_oldest_updates() {
        let hub = Hub::new(2);
        let mut updates = Box::pin(hub.subscribe());
        for n in 0..5 {
            hub.publish("n", n.to_string());
        }
        assert_eq!(updates.next().await, Some(("n", "3".to_owned())));
        assert_eq!(updates.next().await, Some(("n", "4".to_owned())));
        drop(hub);
        assert_eq!(updates.next().await, None);
    }
}
