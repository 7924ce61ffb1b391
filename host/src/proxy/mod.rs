//! The HTTP side: the listener (serving threads), the router, admission
//! (keys, host guard, body limits), the client routes, the admin API, and
//! the request path through the pool ([`dispatch`]). Translation is pure
//! and lives in [`crate::translate`].

pub mod admin;
pub mod auth;
pub mod dispatch;
pub mod listener;
pub mod router;
pub mod routes;
pub mod state;

use crate::plugins::Protocol;

/// A JSON error response in the client protocol's shape.
pub fn error_response(p: Protocol, status: u16, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let code = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(crate::translate::error_body(p, status, message))).into_response()
}
