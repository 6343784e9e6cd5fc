//! HTTP plumbing the services share: binding an address and saying where ([`listen`]), serving
//! a router on a task of its own until the shutdown ([`spawn`], [`Server::stop`]), and the
//! future of the shutdown itself ([`stopped`]).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use axum::Router;
use tokio::sync::watch;

/// How long [`Server::stop`] waits for the open connections to finish.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Binds `addr` and logs `listening on http://…` with the address bound (its port when `addr`
/// asked for port 0): tests and the control room read it from that line.
///
/// # Errors
/// When the address cannot be bound (in use, not local), naming it.
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A router served on a task of its own.
#[derive(Debug)]
pub struct Server {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `addr` ([`listen`]) and serves `app` until `shutdown` turns true; the connections
/// open then finish first (graceful shutdown).
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn(
    addr: SocketAddr,
    app: Router,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Server> {
    let listener = listen(addr).await?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped(shutdown))
            .await
    });
    Ok(Server { task })
}

impl Server {
    /// Waits (5 s at most) for the server to finish after the shutdown; a failure, or a server
    /// still busy then, is logged.
    pub async fn stop(self) {
        match tokio::time::timeout(STOP_WAIT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "web server failed"),
            Ok(Err(error)) => tracing::error!(%error, "web server task failed"),
            Err(_) => tracing::warn!("web server did not stop in time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// The server answers on the port it bound and stops at the shutdown.
    #[tokio::test]
    async fn serves_until_the_shutdown() {
        let (stop, shutdown) = watch::channel(false);
        let app = Router::new().route("/health", get(|| async { "ok" }));
        let listener = listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let server = spawn(addr, app, shutdown).await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), server.task)
            .await
            .expect("the server stops at the shutdown")
            .unwrap()
            .unwrap();
    }
}
