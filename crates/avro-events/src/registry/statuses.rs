//! The client against a scripted HTTP server: typed statuses, retries of 429 and 5xx, the
//! query parameters sent, the latest-version cache and a plugged-in bearer token source.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use secrecy::{ExposeSecret as _, SecretString};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use super::*;
use crate::Error;

/// One scripted answer: status line, extra headers, body.
#[derive(Clone)]
struct Answer(&'static str, &'static str, String);

fn answer(status: &'static str, body: serde_json::Value) -> Answer {
    Answer(status, "", body.to_string())
}

fn error(status: &'static str, code: u32, message: &str) -> Answer {
    answer(
        status,
        serde_json::json!({ "error_code": code, "message": message }),
    )
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    /// `METHOD /path?query`.
    line: String,
    /// Lower-cased header lines.
    headers: Vec<String>,
    body: String,
}

/// Serves the scripted answers in order, one per request (then 500s), and records requests.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    async fn start(script: Vec<Answer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let script = Arc::new(Mutex::new(script.into_iter()));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let mut reader = BufReader::new(socket);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = Vec::new();
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).await.unwrap();
                            let header = header.trim_end().to_ascii_lowercase();
                            if header.is_empty() {
                                break;
                            }
                            if let Some(n) = header.strip_prefix("content-length:") {
                                length = n.trim().parse().unwrap();
                            }
                            headers.push(header);
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).await.unwrap();
                        let line = line
                            .split_whitespace()
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" ");
                        log.lock().unwrap().push(Seen {
                            line,
                            headers,
                            body: String::from_utf8(body).unwrap(),
                        });
                        let next = script.lock().unwrap().next();
                        let Answer(status, extra, body) = next.unwrap_or_else(|| {
                            error("500 Internal Server Error", 50001, "script exhausted")
                        });
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        reader
                            .get_mut()
                            .write_all(response.as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A client with fast retries (at most `retries`).
    fn client(&self, retries: usize) -> RegistryClient {
        RegistryClient::new(&RegistryConfig::new(&self.url).with_retries(
            retries,
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
        .unwrap()
    }
}

fn schema_answer() -> Answer {
    answer("200 OK", serde_json::json!({ "schema": "\"string\"" }))
}

#[tokio::test]
async fn answers_429_and_5xx_are_retried_until_one_succeeds() {
    let fake = Fake::start(vec![
        Answer(
            "429 Too Many Requests",
            "retry-after: 0\r\n",
            r#"{"error_code":429,"message":"slow down"}"#.into(),
        ),
        error("503 Service Unavailable", 50003, "busy"),
        error("502 Bad Gateway", 502, "proxy"),
        schema_answer(),
    ])
    .await;
    let schema = fake.client(3).schema_by_id(7).await.unwrap();
    assert_eq!(schema.schema, "\"string\"");
    let seen = fake.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.line == "GET /schemas/ids/7"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn retries_are_bounded_and_the_last_status_is_reported() {
    let fake = Fake::start(vec![
        error("500 Internal Server Error", 50001, "store down"),
        error("503 Service Unavailable", 50003, "still down"),
        error("500 Internal Server Error", 50001, "down for good"),
        schema_answer(),
    ])
    .await;
    let err = fake.client(2).schema_by_id(7).await.unwrap_err();
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(
        text.contains("HTTP 500")
            && text.contains("after 2 retries")
            && text.contains("down for good"),
        "{text}"
    );
    assert!(text.contains(&fake.url), "{text}");
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn statuses_become_typed_errors_without_retries() {
    let fake = Fake::start(vec![
        error("404 Not Found", 40401, "Subject 's' not found."),
        error("404 Not Found", 40402, "Version 9 not found."),
        error("404 Not Found", 40403, "Schema 5 not found"),
        error(
            "409 Conflict",
            409,
            "Schema being registered is incompatible",
        ),
        error("422 Unprocessable Entity", 42201, "Invalid schema"),
        error(
            "422 Unprocessable Entity",
            42203,
            "Invalid compatibility level",
        ),
        error("401 Unauthorized", 401, "Unauthorized"),
        error("403 Forbidden", 40301, "forbidden"),
        error("400 Bad Request", 400, "bad"),
        error("404 Not Found", 40401, "Subject 's' not found."),
        error("404 Not Found", 40403, "Schema not found"),
    ])
    .await;
    let client = fake.client(3);
    let err = client.versions("s").await.unwrap_err();
    assert!(
        matches!(err, Error::SubjectNotFound { ref subject, .. } if subject == "s"),
        "{err:?}"
    );
    let err = client.version("s", 9).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionNotFound { ref subject, ref version, .. } if subject == "s" && version == "9"),
        "{err:?}"
    );
    let err = client.schema_by_id(5).await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownSchemaId { id: 5, .. }),
        "{err:?}"
    );
    let err = client.register("s", "\"int\"").await.unwrap_err();
    assert!(
        matches!(err, Error::IncompatibleSchema { ref subject, ref messages } if subject == "s" && messages[0].contains("incompatible")),
        "{err:?}"
    );
    let err = client.register("s", "\"int\"").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RegistryRejected {
                error_code: Some(42201),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client
        .set_compatibility(Some("s"), crate::compat::CompatibilityLevel::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RegistryRejected {
                error_code: Some(42203),
                ..
            }
        ),
        "{err:?}"
    );
    let err = client.subjects(false).await.unwrap_err();
    assert!(
        matches!(err, Error::RegistryUnauthorized { status: 401, .. }),
        "{err:?}"
    );
    let err = client.subjects(false).await.unwrap_err();
    assert!(
        matches!(err, Error::RegistryUnauthorized { status: 403, .. }),
        "{err:?}"
    );
    let err = client.subjects(false).await.unwrap_err();
    assert!(matches!(err, Error::Registry { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    // A lookup's "not found" means "not registered".
    for _ in 0..2 {
        let err = client.lookup("s", "\"int\"").await.unwrap_err();
        assert!(matches!(err, Error::SchemaNotRegistered { .. }), "{err:?}");
    }
    assert_eq!(fake.seen().len(), 11, "no status above is retried");
}

#[tokio::test]
async fn requests_carry_confluent_paths_queries_and_bodies() {
    let fake = Fake::start(vec![
        answer("200 OK", serde_json::json!({ "id": 3 })),
        answer(
            "200 OK",
            serde_json::json!({ "id": 3, "version": 1, "subject": "a/b", "schema": "\"int\"" }),
        ),
        answer(
            "200 OK",
            serde_json::json!({ "compatibilityLevel": "FULL_TRANSITIVE" }),
        ),
        answer("200 OK", serde_json::json!({ "compatibility": "NONE" })),
        answer(
            "200 OK",
            serde_json::json!({ "is_compatible": false, "messages": ["m1"] }),
        ),
        answer("200 OK", serde_json::json!([1, 2])),
        answer("200 OK", serde_json::json!(2)),
    ])
    .await;
    let client = fake.client(0);
    assert_eq!(
        client.register_with("a/b", "\"int\"", true).await.unwrap(),
        3
    );
    assert_eq!(client.lookup_with("a/b", "\"int\"", true).await.unwrap(), 3);
    assert_eq!(
        client.compatibility(Some("a/b")).await.unwrap(),
        crate::compat::CompatibilityLevel::FullTransitive
    );
    assert_eq!(
        client
            .set_compatibility(None, crate::compat::CompatibilityLevel::None)
            .await
            .unwrap(),
        crate::compat::CompatibilityLevel::None
    );
    let answer = client
        .test_compatibility("a/b", "\"int\"", TestAgainst::Level)
        .await
        .unwrap();
    assert!(!answer.is_compatible && answer.messages == ["m1"]);
    assert_eq!(client.delete_subject("a/b", true).await.unwrap(), [1, 2]);
    assert_eq!(client.delete_version("a/b", 2, false).await.unwrap(), 2);
    let seen = fake.seen();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /subjects/a%2Fb/versions?normalize=true",
            "POST /subjects/a%2Fb?normalize=true",
            "GET /config/a%2Fb?defaultToGlobal=true",
            "PUT /config",
            "POST /compatibility/subjects/a%2Fb/versions?verbose=true",
            "DELETE /subjects/a%2Fb?permanent=true",
            "DELETE /subjects/a%2Fb/versions/2",
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "schema": "\"int\"", "schemaType": "AVRO" })
    );
    assert_eq!(seen[3].body, r#"{"compatibility":"NONE"}"#);
    assert!(
        seen[0]
            .headers
            .iter()
            .any(|h| h == "content-type: application/vnd.schemaregistry.v1+json"),
        "{:?}",
        seen[0].headers
    );
}

#[tokio::test]
async fn schema_types_are_sent_and_read_back() {
    let fake = Fake::start(vec![
        answer("200 OK", serde_json::json!({ "id": 4 })),
        answer("200 OK", serde_json::json!({ "id": 4, "version": 1, "subject": "p" })),
        answer(
            "200 OK",
            serde_json::json!({ "schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF" }),
        ),
        answer("200 OK", serde_json::json!({ "schema": "\"int\"" })),
        answer(
            "200 OK",
            serde_json::json!({ "id": 6, "version": 2, "subject": "j", "schema": "{}", "schemaType": "JSON" }),
        ),
    ])
    .await;
    let client = fake.client(0);
    let proto = SchemaType::Protobuf;
    let text = "syntax = \"proto3\";";
    assert_eq!(
        client
            .register_typed("p", text, &proto, false)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        client.lookup_typed("p", text, &proto, false).await.unwrap(),
        4
    );
    assert_eq!(client.schema_by_id(4).await.unwrap().schema_type, proto);
    // Confluent's registry leaves schemaType out for Avro.
    assert_eq!(
        client.schema_by_id(5).await.unwrap().schema_type,
        SchemaType::Avro
    );
    assert_eq!(
        client.version("j", 2).await.unwrap().schema_type,
        SchemaType::Json
    );
    let seen = fake.seen();
    for request in &seen[..2] {
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "schema": text, "schemaType": "PROTOBUF" })
        );
    }
    assert_eq!(
        SchemaType::from_registry(Some("XML")),
        SchemaType::Other("XML".into())
    );
}

#[tokio::test]
async fn the_latest_version_is_cached_for_its_ttl_and_forgotten_on_delete() {
    let v = |version: u32| {
        answer(
            "200 OK",
            serde_json::json!({ "id": version * 10, "version": version, "subject": "s", "schema": "\"int\"" }),
        )
    };
    let fake = Fake::start(vec![
        v(1),
        v(2),
        answer("200 OK", serde_json::json!(2)),
        v(3),
    ])
    .await;
    let client = fake.client(0);
    assert_eq!(client.latest_cache_ttl(), Duration::from_secs(300));
    assert_eq!(client.latest_version("s").await.unwrap().version, 1);
    assert_eq!(client.latest("s").await.unwrap().id, 10, "cached");
    assert_eq!(fake.seen().len(), 1);

    // Without a TTL every call asks.
    let uncached =
        RegistryClient::new(&RegistryConfig::new(&fake.url).with_latest_cache_ttl(Duration::ZERO))
            .unwrap();
    assert_eq!(uncached.latest_version("s").await.unwrap().version, 2);
    // A delete forgets the cached latest version.
    client.delete_version("s", 2, false).await.unwrap();
    assert_eq!(client.latest_version("s").await.unwrap().version, 3);
    let lines: Vec<String> = fake.seen().into_iter().map(|s| s.line).collect();
    assert_eq!(
        lines,
        [
            "GET /subjects/s/versions/latest",
            "GET /subjects/s/versions/latest",
            "DELETE /subjects/s/versions/2",
            "GET /subjects/s/versions/latest",
        ]
    );
}

/// A token source of the caller's: counts tokens handed out and rejections.
#[derive(Debug, Default)]
struct Counting {
    issued: AtomicUsize,
    rejected: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl BearerTokenSource for Counting {
    async fn token(&self) -> crate::Result<SecretString> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        Ok(SecretString::from(format!("tok3n-{n}")))
    }

    async fn rejected(&self, token: &SecretString) {
        self.rejected
            .lock()
            .unwrap()
            .push(token.expose_secret().to_owned());
    }
}

#[tokio::test]
async fn a_plugged_in_token_source_feeds_bearer_headers_and_hears_of_rejections() {
    let fake = Fake::start(vec![
        schema_answer(),
        error("401 Unauthorized", 401, "Unauthorized"),
    ])
    .await;
    let source = Arc::new(Counting::default());
    let client = RegistryClient::new(&RegistryConfig {
        auth: RegistryAuth::Bearer {
            source: source.clone(),
            logical_cluster: Some("lsrc-1".into()),
            identity_pool_id: None,
        },
        ..RegistryConfig::new(&fake.url)
    })
    .unwrap();
    client.schema_by_id(1).await.unwrap();
    let err = client.schema_by_id(2).await.unwrap_err();
    assert!(
        matches!(err, Error::RegistryUnauthorized { status: 401, .. }),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {client:?}");
    assert!(!shown.contains("tok3n"), "{shown}");
    let seen = fake.seen();
    assert!(
        seen[0]
            .headers
            .contains(&"authorization: bearer tok3n-0".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen[0]
            .headers
            .contains(&"target-sr-cluster: lsrc-1".to_owned()),
        "{seen:?}"
    );
    assert!(
        !seen[0]
            .headers
            .iter()
            .any(|h| h.starts_with("confluent-identity-pool-id"))
    );
    assert!(
        seen[1]
            .headers
            .contains(&"authorization: bearer tok3n-1".to_owned()),
        "{seen:?}"
    );
    assert_eq!(*source.rejected.lock().unwrap(), ["tok3n-1"]);
}

#[tokio::test]
async fn a_second_url_is_tried_when_the_first_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let fake = Fake::start(vec![schema_answer()]).await;
    let client = RegistryClient::new(&RegistryConfig {
        urls: vec![format!("http://{closed}"), fake.url.clone()],
        ..RegistryConfig::new("")
    })
    .unwrap();
    client.schema_by_id(4).await.unwrap();
    assert_eq!(fake.seen().len(), 1);
}
