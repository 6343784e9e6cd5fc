//! The REST API: Confluent's paths, JSON shapes and content type.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::RegistryState;

mod config;
use super::contract::Contract;
use super::error::ApiError;
use super::store::{Request, VersionRef};

/// Confluent's response content type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Params = Query<HashMap<String, String>>;
type ApiResult = Result<Response, ApiError>;

/// A JSON response with Confluent's content type.
pub(crate) fn vnd_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> ApiResult {
    Ok(vnd_json(StatusCode::OK, &body))
}

/// A boolean query flag (`?deleted=true`; Python's client sends `True`/`False`).
fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The axum router serving the registry API on `state`.
pub fn router(state: RegistryState) -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/metadata", get(latest_with_metadata))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/schemas/types", get(|| async { ok(json!(["AVRO"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_by_id))
        .route("/schemas/ids/{id}/subjects", get(subjects_by_id))
        .route("/schemas/guids/{guid}", get(schema_by_guid))
        .route(
            "/config",
            get(config::get_global_config)
                .put(config::put_global_config)
                .delete(config::delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(config::get_subject_config)
                .put(config::put_subject_config)
                .delete(config::delete_subject_config),
        )
        .route("/mode", get(config::get_mode).put(config::put_mode))
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_one),
        )
        .fallback(|| async { ApiError::not_found() })
        .with_state(state)
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: Option<String>,
    schema_type: Option<String>,
    references: Option<Value>,
    metadata: Option<Value>,
    rule_set: Option<Value>,
    normalize: Option<bool>,
}

/// Parses a request body as Confluent does: any content type, JSON expected.
fn schema_request(body: &[u8], params: &HashMap<String, String>) -> Result<Request, ApiError> {
    let request: SchemaRequest = serde_json::from_slice(body).map_err(ApiError::bad_request)?;
    let normalize = flag(params, "normalize") || request.normalize.unwrap_or(false);
    if let Some(kind) = &request.schema_type
        && !kind.eq_ignore_ascii_case("AVRO")
    {
        return Err(ApiError::invalid_schema(format!(
            "schema type {kind} is not supported by this registry (AVRO only)"
        )));
    }
    let contract = Contract::from_request(request.references, request.metadata, request.rule_set)?;
    let text = request
        .schema
        .ok_or_else(|| ApiError::invalid_schema("the request has no 'schema'"))?;
    Ok(Request {
        text,
        contract,
        normalize,
    })
}

async fn list_subjects(State(state): State<RegistryState>, Query(params): Params) -> ApiResult {
    // `deletedOnly`, `subjectPrefix`, `offset` and `limit` as Confluent (and its clients) use them.
    let deleted_only = flag(&params, "deletedOnly");
    let deleted = deleted_only || flag(&params, "deleted");
    let prefix = params
        .get("subjectPrefix")
        .map(String::as_str)
        .unwrap_or("");
    let number = |name: &str| params.get(name).and_then(|v| v.parse::<i64>().ok());
    let offset = usize::try_from(number("offset").unwrap_or(0)).unwrap_or(0);
    let limit = usize::try_from(number("limit").unwrap_or(-1)).unwrap_or(usize::MAX);
    let live = state.read(|s| Ok(s.subjects(false))).await?;
    let subjects: Vec<String> = state
        .read(|s| Ok(s.subjects(deleted)))
        .await?
        .into_iter()
        .filter(|name| name.starts_with(prefix))
        .filter(|name| !deleted_only || !live.contains(name))
        .skip(offset)
        .take(limit)
        .collect();
    ok(json!(subjects))
}

async fn list_versions(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> ApiResult {
    let deleted = flag(&params, "deleted");
    let versions = state.read(|s| s.versions(&subject, deleted)).await?;
    ok(json!(versions))
}

async fn register(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> ApiResult {
    state.writable(&subject)?;
    let request = schema_request(&body, &params)?;
    request.contract.validate()?;
    let registered = state
        .write(|s| {
            let r = s.register(&subject, request)?;
            let changed = r.created;
            Ok((r, changed))
        })
        .await?;
    let view = registered.view;
    if registered.created {
        tracing::info!(%subject, id = view.id, version = view.version, guid = %view.guid, "registered schema");
    }
    // Confluent's RegisterSchemaResponse: the schema as registered (no subject).
    let mut body = view.body();
    if let Value::Object(members) = &mut body {
        members.remove("subject");
    }
    ok(body)
}

async fn lookup(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> ApiResult {
    let request = schema_request(&body, &params)?;
    let deleted = flag(&params, "deleted");
    let view = state.read(|s| s.lookup(&subject, request, deleted)).await?;
    ok(view.body())
}

/// `GET /subjects/{s}/metadata?key=k&value=v…`: the latest version whose metadata properties
/// include every pair (keys and values matched by position, as Confluent pairs them).
async fn latest_with_metadata(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult {
    let keys = pairs
        .iter()
        .filter(|(k, _)| k == "key")
        .map(|(_, v)| v.clone());
    let values = pairs
        .iter()
        .filter(|(k, _)| k == "value")
        .map(|(_, v)| v.clone());
    let wanted: Vec<(String, String)> = keys.zip(values).collect();
    let deleted = pairs
        .iter()
        .any(|(k, v)| k == "deleted" && v.eq_ignore_ascii_case("true"));
    let view = state
        .read(|s| s.latest_with_metadata(&subject, &wanted, deleted))
        .await?;
    ok(view.body())
}

async fn get_version(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult {
    let at = VersionRef::parse(&version)?;
    let deleted = flag(&params, "deleted");
    let view = state.read(|s| s.version(&subject, at, deleted)).await?;
    ok(view.body())
}

async fn get_version_schema(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult {
    let at = VersionRef::parse(&version)?;
    let deleted = flag(&params, "deleted");
    let view = state.read(|s| s.version(&subject, at, deleted)).await?;
    Ok(raw(view.schema))
}

fn raw(schema: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        schema,
    )
        .into_response()
}

/// The ids of the schemas referring to a subject version (`deleted`, `offset`, `limit` as
/// Confluent takes them).
async fn referenced_by(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult {
    let at = VersionRef::parse(&version)?;
    let deleted = flag(&params, "deleted");
    let number = |name: &str| params.get(name).and_then(|v| v.parse::<i64>().ok());
    let offset = usize::try_from(number("offset").unwrap_or(0)).unwrap_or(0);
    let limit = usize::try_from(number("limit").unwrap_or(-1)).unwrap_or(usize::MAX);
    let ids = state
        .read(|s| {
            let version = s.version(&subject, at, true)?.version;
            Ok(s.referenced_by(&subject, version, deleted))
        })
        .await?;
    let ids: Vec<u32> = ids.into_iter().skip(offset).take(limit).collect();
    ok(json!(ids))
}

async fn delete_subject(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> ApiResult {
    state.writable(&subject)?;
    let permanent = flag(&params, "permanent");
    let versions = state
        .write(|s| Ok((s.delete_subject(&subject, permanent)?, true)))
        .await?;
    tracing::info!(%subject, permanent, ?versions, "deleted subject");
    ok(json!(versions))
}

async fn delete_version(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult {
    state.writable(&subject)?;
    let at = VersionRef::parse(&version)?;
    let permanent = flag(&params, "permanent");
    let deleted = state
        .write(|s| Ok((s.delete_version(&subject, at, permanent)?, true)))
        .await?;
    tracing::info!(%subject, version = deleted, permanent, "deleted version");
    ok(json!(deleted))
}

fn schema_id(text: &str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| ApiError::schema_not_found(text))
}

async fn schema_by_id(State(state): State<RegistryState>, Path(id): Path<String>) -> ApiResult {
    let id = schema_id(&id)?;
    let schema = state.read(|s| s.schema_by_id(id)).await?;
    ok(schema.body())
}

async fn schema_by_guid(State(state): State<RegistryState>, Path(guid): Path<String>) -> ApiResult {
    let schema = state.read(|s| s.schema_by_guid(&guid)).await?;
    tracing::debug!(%guid, id = schema.id, "schema by guid");
    ok(schema.body())
}

async fn raw_schema_by_id(State(state): State<RegistryState>, Path(id): Path<String>) -> ApiResult {
    let id = schema_id(&id)?;
    let schema = state.read(|s| s.schema_by_id(id)).await?;
    Ok(raw(schema.schema))
}

async fn versions_by_id(
    State(state): State<RegistryState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> ApiResult {
    let id = schema_id(&id)?;
    let deleted = flag(&params, "deleted");
    let pairs = state
        .read(|s| {
            s.schema_by_id(id)?;
            Ok(s.subject_versions_of(id, deleted))
        })
        .await?;
    let body: Vec<Value> = pairs
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    ok(json!(body))
}

/// The subjects with a version holding schema `id` (`deleted` includes soft-deleted ones).
async fn subjects_by_id(
    State(state): State<RegistryState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> ApiResult {
    let id = schema_id(&id)?;
    let deleted = flag(&params, "deleted");
    let mut subjects: Vec<String> = state
        .read(|s| {
            s.schema_by_id(id)?;
            Ok(s.subject_versions_of(id, deleted))
        })
        .await?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    ok(json!(subjects))
}

fn compatibility_body(report: &avro_events_compat::CompatibilityReport, verbose: bool) -> Value {
    if verbose {
        json!({ "is_compatible": report.is_compatible(), "messages": report.messages() })
    } else {
        json!({ "is_compatible": report.is_compatible() })
    }
}

async fn compatibility_one(
    State(state): State<RegistryState>,
    Path((subject, version)): Path<(String, String)>,
    Query(params): Params,
    body: Bytes,
) -> ApiResult {
    let at = VersionRef::parse(&version)?;
    let request = schema_request(&body, &params)?;
    let report = state
        .read(|s| {
            let candidate = s.candidate(&request.text, false, request.contract, false)?;
            s.compatibility(&subject, Some(at), &candidate)
        })
        .await?;
    ok(compatibility_body(&report, flag(&params, "verbose")))
}

async fn compatibility_all(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(params): Params,
    body: Bytes,
) -> ApiResult {
    let request = schema_request(&body, &params)?;
    let report = state
        .read(|s| {
            let candidate = s.candidate(&request.text, false, request.contract, false)?;
            s.compatibility(&subject, None, &candidate)
        })
        .await?;
    ok(compatibility_body(&report, flag(&params, "verbose")))
}
