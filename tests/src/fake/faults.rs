//! Error answers in Google's shapes, and what a scripted fault does to a call.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::server::{ConnHandle, KillMode};
use super::state::Shared;
use super::types::{Endpoint, FaultKind, FaultSpec};

/// What the endpoint should do after the fault check.
pub(crate) enum FaultAction {
    /// No fault (or `slow`, already waited): answer normally.
    Proceed,
    /// Answer this instead.
    Respond(Response),
    /// Send the first `after_events` parts of the answer, then cut.
    MidStream { after_events: u32 },
}

/// Google's canonical status name for an HTTP status.
pub(crate) fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if code >= 500 => "INTERNAL",
        _ => "UNKNOWN",
    }
}

/// `{"error":{"code":..,"message":..,"status":..}}`.
pub(crate) fn google_error_body(code: u16, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status_name(code)}})
}

/// An answer with Google's error shape.
pub(crate) fn google_error(code: u16, message: &str) -> Response {
    json_answer(code, google_error_body(code, message).to_string())
}

/// The 401 `v1internal` gives for a bad access token.
pub(crate) fn unauthenticated() -> Response {
    google_error(401, "Request had invalid authentication credentials.")
}

/// An OAuth token-endpoint error: `{"error":..,"error_description":..}`.
pub(crate) fn oauth_error(code: u16, error: &str, description: &str) -> Response {
    json_answer(
        code,
        json!({"error": error, "error_description": description}).to_string(),
    )
}

/// Google's 429 body, naming `retry_delay` in `RetryInfo` and as
/// `quotaResetDelay` in `ErrorInfo`.
pub fn rate_limit_body(retry_delay: &str, reason: &str) -> Value {
    json!({"error": {
        "code": 429,
        "message": "Resource has been exhausted",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
             "domain": "cloudcode-pa.googleapis.com",
             "metadata": {"quotaResetDelay": retry_delay}}
        ]
    }})
}

/// An answer with `body`, typed JSON when it parses as JSON, else text.
pub(crate) fn json_answer(code: u16, body: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ctype = if serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok() {
        "application/json; charset=UTF-8"
    } else {
        "text/plain; charset=UTF-8"
    };
    (status, [(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// The body a `status` fault answers when it names none.
fn default_body(endpoint: Endpoint, code: u16) -> String {
    if endpoint == Endpoint::Token {
        let error = match code {
            400 => "invalid_request",
            401 => "invalid_client",
            429 => "rate_limit_exceeded",
            _ => "internal_failure",
        };
        return json!({"error": error, "error_description": format!("Fake fault: HTTP {code}")})
            .to_string();
    }
    google_error_body(code, &format!("Fake fault: HTTP {code}")).to_string()
}

/// The answer of a `status` or `rate_limit` fault.
fn fault_answer(endpoint: Endpoint, fault: &FaultSpec) -> Response {
    let (code, body) = if fault.kind == FaultKind::RateLimit {
        let code = fault.status.unwrap_or(429);
        let body = fault.body.clone().unwrap_or_else(|| {
            rate_limit_body(
                fault.retry_delay.as_deref().unwrap_or("1.5s"),
                fault.reason.as_deref().unwrap_or("RATE_LIMIT_EXCEEDED"),
            )
            .to_string()
        });
        (code, body)
    } else {
        let code = fault.status.unwrap_or(500);
        (
            code,
            fault
                .body
                .clone()
                .unwrap_or_else(|| default_body(endpoint, code)),
        )
    };
    let mut resp = json_answer(code, body);
    for (name, value) in &fault.headers {
        // Checked when the fault was pushed.
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

/// Takes the fault (if any) for a call of `endpoint` for `email` and does
/// its part: waits, answers, or drops the connection (never returning).
pub(crate) async fn apply(
    shared: &Shared,
    conn: Option<&ConnHandle>,
    endpoint: Endpoint,
    email: Option<&str>,
) -> FaultAction {
    let Some(fault) = shared.take_fault(endpoint, email) else {
        return FaultAction::Proceed;
    };
    let delay = match (fault.delay_ms, fault.kind) {
        (Some(ms), _) => ms,
        (None, FaultKind::Slow) => 1000,
        (None, _) => 0,
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match fault.kind {
        FaultKind::Slow => FaultAction::Proceed,
        FaultKind::Status | FaultKind::RateLimit => {
            FaultAction::Respond(fault_answer(endpoint, &fault))
        }
        FaultKind::DropMidStream => FaultAction::MidStream {
            after_events: fault.after_events.unwrap_or(1),
        },
        FaultKind::Drop | FaultKind::Network => {
            let mode = if fault.kind == FaultKind::Drop {
                KillMode::Close
            } else {
                KillMode::Reset
            };
            match conn {
                Some(conn) => conn.kill(mode).await,
                None => FaultAction::Respond(google_error(500, "fake: no connection to drop")),
            }
        }
    }
}
