//! A local OAuth2 token endpoint: the client-credentials grant with basic or form client auth,
//! short-lived JWT-shaped tokens, and a record of what it issued.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;

pub const CLIENT_ID: &str = "grocery-client";
pub const CLIENT_SECRET: &str = "s3cr3t-Client-Value";
pub const SUBJECT: &str = "sa-grocery-test";

/// What the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tokens for the right credentials, `invalid_client` otherwise.
    Normal,
    /// A 200 answer that is not a valid token response (and contains a token-like string).
    Malformed,
}

/// How the client authenticated itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Form,
}

#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub issued_at: Instant,
    pub lifetime: Duration,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

impl Issued {
    pub fn valid_at(&self, at: Instant) -> bool {
        at < self.issued_at + self.lifetime
    }
}

#[derive(Default)]
struct Inner {
    requests: usize,
    issued: Vec<Issued>,
}

#[derive(Clone)]
pub struct TokenServer {
    pub url: String,
    lifetime: Duration,
    mode: Mode,
    inner: Arc<Mutex<Inner>>,
}

impl TokenServer {
    /// Starts the endpoint on 127.0.0.1 with tokens living `lifetime`.
    pub async fn start(lifetime: Duration, mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = Self {
            url: format!("http://{addr}/oauth2/token"),
            lifetime,
            mode,
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    /// How many requests reached the endpoint (good or bad).
    pub fn requests(&self) -> usize {
        self.inner.lock().unwrap().requests
    }

    /// Every token issued, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.inner.lock().unwrap().issued.clone()
    }

    /// The issue record of `token`, if this endpoint issued it.
    pub fn find(&self, token: &str) -> Option<Issued> {
        self.issued().into_iter().find(|i| i.token == token)
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": error, "error_description": format!("test endpoint: {error}") })),
    )
        .into_response()
}

async fn token(
    State(server): State<TokenServer>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let n = {
        let mut inner = server.inner.lock().unwrap();
        inner.requests += 1;
        inner.requests
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    let (client_auth, id, secret) = match basic {
        Some((u, p)) => (ClientAuth::Basic, u, p),
        None => (
            ClientAuth::Form,
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::json!({ "sub": SUBJECT, "jti": format!("token-{n}") }).to_string())
    );
    if server.mode == Mode::Malformed {
        return (
            StatusCode::OK,
            Json(serde_json::json!({ "access_token": token, "token_type": "bearer", "expires_in": "soon" })),
        )
            .into_response();
    }
    server.inner.lock().unwrap().issued.push(Issued {
        token: token.clone(),
        issued_at: Instant::now(),
        lifetime: server.lifetime,
        scope: form.get("scope").cloned(),
        client_auth,
    });
    Json(serde_json::json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": server.lifetime.as_secs(),
    }))
    .into_response()
}
