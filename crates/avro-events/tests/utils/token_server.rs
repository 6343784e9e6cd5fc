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

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "s3cr3t-Client-Value";
pub const SUBJECT: &str = "sa-test";
/// A marker the failing modes put in their answer bodies: it must never reach an error or a log.
pub const BODY_MARKER: &str = "B0DY-M4RKER-never-shown";

/// What the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tokens for the right credentials, `invalid_client` otherwise.
    Normal,
    /// A 200 answer that is not a valid token response (and contains a token-like string).
    Malformed,
    /// HTTP 500 with an HTML error page quoting the request (and [`BODY_MARKER`]).
    ErrorPage,
    /// HTTP 400 with an RFC 6749 error answer whose description and extra fields echo the
    /// client secret and [`BODY_MARKER`].
    EchoingOAuthError,
    /// HTTP 400 with an RFC 6749 error answer whose description quotes the client secret
    /// across the point where the library cuts a description short (after 120 characters).
    EchoingSecretAtTheCut,
    /// Tokens for the right credentials with `expires_in` = `u64::MAX`.
    ExpiresInMax,
    /// Tokens for the right credentials without `expires_in`, JWTs with `exp` = `u64::MAX`.
    ExpMax,
}

/// The offset in [`Mode::EchoingSecretAtTheCut`]'s description where the secret starts: the
/// library's cut (120 characters) falls inside it.
pub const SECRET_AT: usize = 112;

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
        Self::start_on("127.0.0.1:0".parse().unwrap(), lifetime, mode).await
    }

    /// A free loopback address where no endpoint listens yet (for "identity provider down").
    pub fn reserve_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// The URL an endpoint started on `addr` will have.
    pub fn url_at(addr: SocketAddr) -> String {
        format!("http://{addr}/oauth2/token")
    }

    /// Starts the endpoint on `addr`.
    pub async fn start_on(addr: SocketAddr, lifetime: Duration, mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
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

    /// Serves this same endpoint (same tokens, same records) on `addr` too, from now on.
    pub async fn listen_also_on(&self, addr: SocketAddr) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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
    match server.mode {
        Mode::ErrorPage => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html")],
                format!(
                    "<html><body><h1>Internal error</h1><pre>request: {form:?} {headers:?} \
                     {BODY_MARKER}</pre></body></html>"
                ),
            )
                .into_response();
        }
        Mode::EchoingOAuthError => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": format!("bad request client_secret={CLIENT_SECRET} {BODY_MARKER}"),
                    "request": format!("{form:?} {BODY_MARKER}"),
                })),
            )
                .into_response();
        }
        Mode::EchoingSecretAtTheCut => {
            let description = format!("{}{CLIENT_SECRET} is not accepted", "x".repeat(SECRET_AT));
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": description,
                })),
            )
                .into_response();
        }
        Mode::Normal | Mode::Malformed | Mode::ExpiresInMax | Mode::ExpMax => {}
    }
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
    let mut claims = serde_json::json!({ "sub": SUBJECT, "jti": format!("token-{n}") });
    if server.mode == Mode::ExpMax {
        claims["exp"] = u64::MAX.into();
    }
    let token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
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
    let mut answer = serde_json::json!({ "access_token": token, "token_type": "bearer" });
    match server.mode {
        Mode::ExpiresInMax => answer["expires_in"] = u64::MAX.into(),
        Mode::ExpMax => {}
        _ => answer["expires_in"] = server.lifetime.as_secs().into(),
    }
    Json(answer).into_response()
}
