//! The page API's answers: JSON, never cached, errors as
//! `{"error": {"message", "code"}}` (the admin API's shape).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A JSON answer.
pub fn json(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}

/// A refusal with a message that says what happened and what to do.
pub fn fail(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(serde_json::json!({"error": {"message": message, "code": status}}))).into_response()
}

/// [`fail`] with a `Retry-After`.
pub fn fail_retry(status: u16, message: &str, retry_after_secs: u64) -> Response {
    let mut resp = fail(status, message);
    if let Ok(v) = retry_after_secs.to_string().parse() {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
