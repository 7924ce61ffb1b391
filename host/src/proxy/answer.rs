//! Answers in the client protocol's own shape: errors (the proxy's own and
//! Google's, passed on), refusals (logged once at `warn` with the route and
//! the cause), and the header that names the serving account.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;

use super::dispatch::DispatchError;
use crate::plugins::Protocol;
use crate::pool::LiveAccount;

/// Response header naming the account that served (its id, never a token).
pub const ACCOUNT_HEADER: &str = "x-grantpool-account";

/// A JSON error response in the client protocol's shape.
pub fn error_response(p: Protocol, status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(crate::translate::error_body(p, status, message))).into_response()
}

/// A client request the proxy refuses: logged once at `warn` (route and
/// cause), answered in the client's shape.
pub fn refused(p: Protocol, route: &str, status: u16, cause: &str) -> Response {
    tracing::warn!(route, status, "refused a client request: {cause}");
    error_response(p, status, cause)
}

/// The answer to a request that got no upstream success.
pub fn dispatch_error(protocol: Protocol, e: DispatchError) -> Response {
    match e {
        DispatchError::NoAccount(message) => {
            tracing::warn!("no account can serve: {message}");
            error_response(protocol, 503, &message)
        }
        DispatchError::Network(message) => error_response(protocol, 502, &message),
        DispatchError::Refused { status, message } => {
            let mut resp = error_response(protocol, status, &message);
            // The same request fails the same way again: the Anthropic and
            // OpenAI SDKs honour this and do not retry.
            resp.headers_mut().insert("x-should-retry", HeaderValue::from_static("false"));
            resp
        }
        DispatchError::Upstream { status, body, account_id, retry_after } => {
            let message = upstream_message(&body).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            let mut resp = if protocol == Protocol::Gemini && serde_json::from_slice::<&RawValue>(&body).is_ok() {
                // Gemini clients get Google's own error body as it came.
                let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                (code, [(axum::http::header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
            } else {
                error_response(protocol, status, &format!("upstream error: {message}"))
            };
            if let Ok(v) = HeaderValue::from_str(&account_id) {
                resp.headers_mut().insert(ACCOUNT_HEADER, v);
            }
            // Google says when to come back in the body; clients read the header.
            let retry_after = retry_after.or_else(|| (status == 429).then(|| retry_delay_secs(&body)).flatten());
            if let Some(v) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// `retryDelay` / `quotaResetDelay` of a Google 429 body, as whole seconds.
fn retry_delay_secs(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let details = v.get("error")?.get("details")?.as_array()?;
    let secs = details
        .iter()
        .filter_map(|d| d.get("retryDelay").or_else(|| d.get("metadata").and_then(|m| m.get("quotaResetDelay"))))
        .filter_map(|x| x.as_str()?.trim_end_matches('s').parse::<f64>().ok())
        .fold(0f64, f64::max);
    (secs > 0.0).then(|| (secs.ceil() as u64).to_string())
}

/// `error.message` of a Google error body.
fn upstream_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let v = if let serde_json::Value::Array(a) = &v { a.first()?.clone() } else { v };
    v.get("error")?.get("message")?.as_str().map(str::to_string)
}

/// The response, with the header naming the account that served.
pub fn with_account(mut resp: Response, account: &LiveAccount) -> Response {
    if let Ok(v) = HeaderValue::from_maybe_shared(account.id_bytes()) {
        resp.headers_mut().insert(ACCOUNT_HEADER, v);
    }
    resp
}

