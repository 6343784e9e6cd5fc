//! Confluent's error bodies: `{"error_code": 40401, "message": "..."}` with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::routes::vnd_json;

/// An error answered the way Confluent's Schema Registry answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// Confluent's `error_code` (`40401`, `42201`, …); its first three digits are the HTTP status.
    pub code: u32,
    /// The human-readable `message`.
    pub message: String,
}

impl ApiError {
    fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status: the first three digits of the error code (`40401` → 404).
    pub fn status(&self) -> StatusCode {
        let status = if self.code >= 10_000 {
            self.code / 100
        } else {
            self.code
        };
        u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 40401.
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(40401, format!("Subject '{subject}' not found."))
    }

    /// 40402.
    pub fn version_not_found(subject: &str, version: &str) -> Self {
        Self::new(
            40402,
            format!("Version {version} not found for subject '{subject}'."),
        )
    }

    /// 40403.
    pub fn schema_not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(40403, format!("Schema {detail} not found."))
    }

    /// 40404.
    pub fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            40404,
            format!(
                "Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
            ),
        )
    }

    /// 40405.
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    /// 40406.
    pub fn version_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            40406,
            format!(
                "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to \
                 delete permanently"
            ),
        )
    }

    /// 40407.
    pub fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being \
                 permanently deleted"
            ),
        )
    }

    /// 40408.
    pub fn subject_has_no_config(subject: &str) -> Self {
        Self::new(
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }

    /// 40901: the message lists every incompatibility found.
    pub fn incompatible(subject: &str, level: &str, messages: &[String]) -> Self {
        let mut details: Vec<String> = messages.iter().map(|m| format!("{{{m}}}")).collect();
        details.push(format!("{{compatibility: '{level}'}}"));
        Self::new(
            40901,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \
                 \"{subject}\", details: [{}]",
                details.join(", ")
            ),
        )
    }

    /// 42205: the registry (or the subject) is in READONLY mode.
    pub fn read_only(subject: &str) -> Self {
        Self::new(42205, format!("Subject {subject} is in read-only mode"))
    }

    /// 42204.
    pub fn invalid_mode(mode: &str) -> Self {
        Self::new(
            42204,
            format!("Invalid mode '{mode}': READWRITE and READONLY are supported"),
        )
    }

    /// 42206: a schema version is still referenced by another schema. `key` is written as
    /// Confluent writes its schema keys.
    pub fn reference_exists(subject: &str, version: u32) -> Self {
        Self::new(
            42206,
            format!(
                "One or more references exist to the schema \
                 {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}."
            ),
        )
    }

    /// 42210: the rule set of a registration is malformed.
    pub fn invalid_rule_set(detail: impl std::fmt::Display) -> Self {
        Self::new(42210, format!("Invalid rule set: {detail}"))
    }

    /// 40403 without an id (`GET /subjects/{s}/metadata` finding no version).
    pub fn no_matching_schema() -> Self {
        Self::new(40403, "Schema not found")
    }

    /// 42201.
    pub fn invalid_schema(detail: impl std::fmt::Display) -> Self {
        Self::new(42201, format!("Invalid schema: {detail}"))
    }

    /// 42202.
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are \
                 between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    /// 42203.
    pub fn invalid_compatibility_level(level: &str) -> Self {
        Self::new(
            42203,
            format!(
                "Invalid compatibility level '{level}'. Valid values are none, backward, forward, \
                 full, backward_transitive, forward_transitive, and full_transitive"
            ),
        )
    }

    /// 50001.
    pub fn store(detail: impl std::fmt::Display) -> Self {
        Self::new(50001, format!("Error in the backend data store: {detail}"))
    }

    /// 400: the request body is not the JSON expected.
    pub fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(400, format!("Bad request: {detail}"))
    }

    /// 404 for paths the registry does not serve.
    pub fn not_found() -> Self {
        Self::new(404, "HTTP 404 Not Found")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error_code = self.code, message = %self.message, "registry error");
        } else {
            tracing::debug!(error_code = self.code, message = %self.message, "registry error");
        }
        vnd_json(
            status,
            &json!({ "error_code": self.code, "message": self.message }),
        )
    }
}
