//! Errors in OpenAI's shape.

use serde_json::{json, Value};

/// An error body in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
pub fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        400 | 422 => ("invalid_request_error", "invalid_request"),
        401 => ("authentication_error", "invalid_api_key"),
        403 => ("permission_error", "permission_denied"),
        404 => ("not_found_error", "not_found"),
        413 => ("invalid_request_error", "request_too_large"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        502 => ("server_error", "bad_gateway"),
        503 => ("server_error", "service_unavailable"),
        504 => ("server_error", "timeout"),
        s if (400..500).contains(&s) => ("invalid_request_error", "invalid_request"),
        _ => ("server_error", "internal_error"),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}
