//! The one error shape of every HTTP API of the services: problem details (RFC 9457),
//! `Content-Type: application/problem+json`:
//!
//! ```json
//! {"type": "tag:grocery-events,2026:problem:unknown_sku", "title": "Bad Request",
//!  "status": 400, "detail": "unknown SKU PRD-00001", "code": "unknown_sku"}
//! ```
//!
//! - `code`: a stable, machine-readable name of the problem (`unknown_sku`, `json_required`,
//!   …), an extension member; scripts compare it, never the `detail`;
//! - `type`: a URI naming the problem type, built from `code` (a `tag:` URI, RFC 4151: an
//!   identifier, not a page to fetch);
//! - `title`: the HTTP status's reason phrase; `status`: the HTTP status code;
//! - `detail`: what was wrong with this request, in words.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// The media type of a problem answer.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// The prefix of every problem `type`; the `code` follows it.
pub const TYPE_PREFIX: &str = "tag:grocery-events,2026:problem:";

/// The problem JSON for `status`, `code` and `detail` (see the module documentation).
pub fn body(status: StatusCode, code: &str, detail: impl std::fmt::Display) -> Value {
    json!({
        "type": format!("{TYPE_PREFIX}{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail.to_string(),
        "code": code,
    })
}

/// An answer with `status` and the problem JSON for `code` and `detail`, as
/// `application/problem+json`.
pub fn problem(status: StatusCode, code: &str, detail: impl std::fmt::Display) -> Response {
    let mut response = (status, Json(body(status, code, detail))).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_has_the_five_members_and_its_media_type() {
        let response = problem(
            StatusCode::CONFLICT,
            "out_of_order",
            "picked before started",
        );
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(
            body(
                StatusCode::CONFLICT,
                "out_of_order",
                "picked before started"
            ),
            json!({
                "type": "tag:grocery-events,2026:problem:out_of_order",
                "title": "Conflict",
                "status": 409,
                "detail": "picked before started",
                "code": "out_of_order",
            })
        );
    }
}
