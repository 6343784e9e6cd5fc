//! A stand-in for Confluent Cloud's Schema Registry that accepts only unexpired bearer tokens
//! issued by the local token endpoint, and records the headers of every request.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};

use super::token_server::TokenServer;

/// The headers of one request and whether the registry accepted its token.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub accepted: bool,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn bearer(&self) -> Option<String> {
        self.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
    }
}

#[derive(Clone)]
pub struct FakeRegistry {
    pub url: String,
    tokens: TokenServer,
    seen: Arc<Mutex<Vec<Seen>>>,
    revoked: Arc<Mutex<Vec<String>>>,
}

impl FakeRegistry {
    pub async fn start(tokens: TokenServer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let registry = Self {
            url: format!("http://{addr}"),
            tokens,
            seen: Arc::default(),
            revoked: Arc::default(),
        };
        let app = Router::new()
            .route("/schemas/ids/{id}", get(schema_by_id))
            .with_state(registry.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        registry
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// From now on, answers 401 to `token` even while it is unexpired.
    pub fn revoke(&self, token: &str) {
        self.revoked.lock().unwrap().push(token.to_owned());
    }
}

async fn schema_by_id(
    State(registry): State<FakeRegistry>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let revoked = token.is_some_and(|t| registry.revoked.lock().unwrap().iter().any(|r| r == t));
    let accepted = !revoked
        && token
            .and_then(|t| registry.tokens.find(t))
            .is_some_and(|issued| issued.valid_at(Instant::now()));
    registry.seen.lock().unwrap().push(Seen {
        headers: headers.clone(),
        accepted,
    });
    if !accepted {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error_code": 40101, "message": "Unauthorized" })),
        )
            .into_response();
    }
    Json(serde_json::json!({ "schema": format!("{{\"type\":\"fixed\",\"name\":\"F{id}\",\"size\":4}}") }))
        .into_response()
}
