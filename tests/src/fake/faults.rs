//! What a scripted fault does to a call. The Google bodies are in
//! [`errors`](super::errors).

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

pub use super::errors::rate_limit_body;
use super::errors::{
    bare_429_body, google_error, google_error_body, json_answer, license_required_body,
    model_capacity_exhausted_body, quota_exhausted_body, rate_limit_exceeded_body,
    service_disabled_body, tos_violation_body, unauthenticated_body, validation_required_body,
    weekly_quota_body, DEFAULT_VALIDATION_URL, UNSUPPORTED_VERSION_TEXT,
};
use super::server::{ConnHandle, KillMode};
use super::state::{FaultTarget, Shared};
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

impl FaultAction {
    /// Whether a fault acted (answered or will cut).
    pub(crate) fn is_fault(&self) -> bool {
        !matches!(self, FaultAction::Proceed)
    }
}

/// A call, as faults see it.
#[derive(Clone, Copy)]
pub(crate) struct FaultCall<'a> {
    pub(crate) endpoint: Endpoint,
    pub(crate) email: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) model: Option<&'a str>,
}

impl<'a> FaultCall<'a> {
    /// A call of `endpoint` for `email`, on `host`.
    pub(crate) fn new(endpoint: Endpoint, email: Option<&'a str>, host: Option<&'a str>) -> Self {
        Self {
            endpoint,
            email,
            host,
            model: None,
        }
    }

    /// … for `model`.
    pub(crate) fn model(mut self, model: Option<&'a str>) -> Self {
        self.model = model;
        self
    }
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

/// The status and body of an answering fault.
fn status_and_body(shared: &Shared, call: &FaultCall<'_>, fault: &FaultSpec) -> (u16, String) {
    let model = fault
        .model
        .as_deref()
        .or(call.model)
        .unwrap_or("gemini-2.5-pro");
    let (code, body) = match fault.kind {
        FaultKind::RateLimit => (
            429,
            rate_limit_body(
                fault.retry_delay.as_deref().unwrap_or("1.5s"),
                fault.reason.as_deref().unwrap_or("RATE_LIMIT_EXCEEDED"),
            ),
        ),
        FaultKind::RateLimitExceeded => (
            429,
            rate_limit_exceeded_body(
                model,
                fault.retry_delay.as_deref().unwrap_or("479.417207ms"),
            ),
        ),
        FaultKind::QuotaExhausted => (
            429,
            quota_exhausted_body(
                model,
                fault
                    .retry_delay
                    .as_deref()
                    .unwrap_or("161h39m41.300432511s"),
            ),
        ),
        FaultKind::ModelCapacityExhausted => {
            let code = fault.status.unwrap_or(503);
            (code, model_capacity_exhausted_body(code, model))
        }
        FaultKind::ValidationRequired => (
            403,
            validation_required_body(
                fault
                    .validation_url
                    .as_deref()
                    .unwrap_or(DEFAULT_VALIDATION_URL),
            ),
        ),
        FaultKind::ServiceDisabled => {
            let project = fault.project.clone().unwrap_or_else(|| {
                call.email
                    .map(|e| shared.with(|inner| inner.account_or_default(e).project_id.clone()))
                    .unwrap_or_else(|| "fake-project".to_owned())
            });
            (403, service_disabled_body(&project))
        }
        FaultKind::Unauthenticated => (401, unauthenticated_body()),
        // Literal bodies kept as text (their field order is Google's).
        FaultKind::TosViolation => {
            return (
                fault.status.unwrap_or(403),
                fault.body.clone().unwrap_or_else(tos_violation_body),
            )
        }
        FaultKind::Bare429 => {
            return (
                fault.status.unwrap_or(429),
                fault.body.clone().unwrap_or_else(bare_429_body),
            )
        }
        FaultKind::WeeklyQuota => {
            return (
                fault.status.unwrap_or(429),
                fault.body.clone().unwrap_or_else(|| {
                    weekly_quota_body(fault.reset_secs.unwrap_or(DEFAULT_WEEKLY_RESET_SECS), model)
                }),
            )
        }
        FaultKind::UnsupportedVersion => {
            return (
                fault.status.unwrap_or(200),
                fault
                    .body
                    .clone()
                    .unwrap_or_else(|| UNSUPPORTED_VERSION_TEXT.to_owned()),
            )
        }
        FaultKind::EmptyStream => return (fault.status.unwrap_or(200), String::new()),
        FaultKind::LicenseRequired => (403, license_required_body()),
        _ => {
            let code = fault.status.unwrap_or(500);
            let body = fault
                .body
                .clone()
                .unwrap_or_else(|| default_body(call.endpoint, code));
            return (code, body);
        }
    };
    (
        fault.status.unwrap_or(code),
        fault.body.clone().unwrap_or_else(|| body.to_string()),
    )
}

/// The answer of an answering fault.
fn fault_answer(shared: &Shared, call: &FaultCall<'_>, fault: &FaultSpec) -> Response {
    let (code, body) = status_and_body(shared, call, fault);
    let mut resp = match fault.kind {
        // CPA #4144: the plain text came as a 200 `text/plain`.
        FaultKind::UnsupportedVersion => typed_answer(code, body, "text/plain; charset=UTF-8"),
        // Headers, then the end of the body: no `data:` event at all.
        FaultKind::EmptyStream => typed_answer(code, body, "text/event-stream"),
        _ => json_answer(code, body),
    };
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

/// The weekly-quota fault's default reset: `108h48m29s` (CPA #3655).
const DEFAULT_WEEKLY_RESET_SECS: u64 = 108 * 3600 + 48 * 60 + 29;

/// An answer of `body` with this content type.
fn typed_answer(code: u16, body: String, content_type: &'static str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Takes the fault (if any) for `call` and does its part: waits, answers,
/// or drops the connection (never returning).
pub(crate) async fn apply(
    shared: &Shared,
    conn: Option<&ConnHandle>,
    call: FaultCall<'_>,
) -> FaultAction {
    let target = FaultTarget {
        email: call.email,
        host: call.host,
        model: call.model,
    };
    let Some(fault) = shared.take_fault_for(call.endpoint, target) else {
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
        _ => FaultAction::Respond(fault_answer(shared, &call, &fault)),
    }
}
