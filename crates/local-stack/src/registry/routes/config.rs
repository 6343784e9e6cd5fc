//! Compatibility configuration (`/config`, `/config/{subject}`) and the global mode (`/mode`).

use avro_events_compat::CompatibilityLevel;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::{ApiResult, Params, flag, ok};
use crate::registry::RegistryState;
use crate::registry::error::ApiError;

fn mode(state: &RegistryState) -> &'static str {
    if state.read_only() {
        "READONLY"
    } else {
        "READWRITE"
    }
}

pub(super) async fn get_mode(State(state): State<RegistryState>) -> ApiResult {
    ok(json!({ "mode": mode(&state) }))
}

/// `PUT /mode {"mode": "READONLY"}` (or `READWRITE`): the global mode; `IMPORT` is refused.
pub(super) async fn put_mode(State(state): State<RegistryState>, body: Bytes) -> ApiResult {
    #[derive(Deserialize)]
    struct ModeRequest {
        mode: String,
    }
    let request: ModeRequest = serde_json::from_slice(&body).map_err(ApiError::bad_request)?;
    match request.mode.to_ascii_uppercase().as_str() {
        "READONLY" => state.set_read_only(true),
        "READWRITE" => state.set_read_only(false),
        _ => return Err(ApiError::invalid_mode(&request.mode)),
    }
    tracing::info!(mode = mode(&state), "registry mode set");
    ok(json!({ "mode": mode(&state) }))
}

/// The level of a config update, and its text as sent (Confluent echoes the request).
fn level(body: &[u8]) -> Result<(CompatibilityLevel, String), ApiError> {
    #[derive(Deserialize)]
    struct ConfigRequest {
        compatibility: Option<String>,
    }
    let request: ConfigRequest = serde_json::from_slice(body).map_err(ApiError::bad_request)?;
    let text = request.compatibility.unwrap_or_default();
    let level = text
        .parse()
        .map_err(|_| ApiError::invalid_compatibility_level(&text))?;
    Ok((level, text))
}

pub(super) async fn get_global_config(State(state): State<RegistryState>) -> ApiResult {
    let level = state.read(|s| Ok(s.global_level())).await?;
    ok(json!({ "compatibilityLevel": level }))
}

pub(super) async fn put_global_config(
    State(state): State<RegistryState>,
    body: Bytes,
) -> ApiResult {
    let (level, sent) = level(&body)?;
    state
        .write(|s| Ok((s.set_global(Some(level)), true)))
        .await?;
    tracing::info!(%level, "global compatibility set");
    ok(json!({ "compatibility": sent }))
}

pub(super) async fn delete_global_config(State(state): State<RegistryState>) -> ApiResult {
    let previous = state
        .write(|s| {
            let previous = s.global_level();
            s.set_global(None);
            Ok((previous, true))
        })
        .await?;
    ok(json!({ "compatibilityLevel": previous }))
}

pub(super) async fn get_subject_config(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    Query(params): Params,
) -> ApiResult {
    let default_to_global = flag(&params, "defaultToGlobal");
    let level = state
        .read(|s| match s.subject_level(&subject) {
            Some(level) => Ok(level),
            None if default_to_global => Ok(s.global_level()),
            None => Err(ApiError::subject_has_no_config(&subject)),
        })
        .await?;
    ok(json!({ "compatibilityLevel": level }))
}

pub(super) async fn put_subject_config(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (level, sent) = level(&body)?;
    state
        .write(|s| Ok((s.set_subject_level(&subject, Some(level)), true)))
        .await?;
    tracing::info!(%subject, %level, "subject compatibility set");
    ok(json!({ "compatibility": sent }))
}

pub(super) async fn delete_subject_config(
    State(state): State<RegistryState>,
    Path(subject): Path<String>,
) -> ApiResult {
    let previous = state
        .write(|s| {
            let previous = s
                .subject_level(&subject)
                .ok_or_else(|| ApiError::subject_not_found(&subject))?;
            s.set_subject_level(&subject, None);
            Ok((previous, true))
        })
        .await?;
    ok(json!({ "compatibilityLevel": previous }))
}
