//! The HTTP side: the axum server (auth, admin, metrics), the three client
//! protocols, and the upstream client. Translation modules are pure (no I/O).

pub mod anthropic;
pub mod dispatch;
pub mod gemini_types;
pub mod listener;
pub mod openai;
pub mod routes;
pub mod server;
pub mod upstream;

use crate::plugins::Protocol;

/// The protocol's name, for metrics and logs.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Gemini => "gemini",
        Protocol::Openai => "openai",
        Protocol::Anthropic => "anthropic",
    }
}

/// An error body in the client protocol's own shape.
pub fn error_body(p: Protocol, status: u16, message: &str) -> serde_json::Value {
    match p {
        Protocol::Gemini => gemini_types::error_body(status, message),
        Protocol::Openai => openai::error_body(status, message),
        Protocol::Anthropic => anthropic::error_body(status, message),
    }
}

/// A JSON error response in the client protocol's shape.
pub fn error_response(p: Protocol, status: u16, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let code = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(error_body(p, status, message))).into_response()
}
