//! `--fast` mode: fixed answers from static bytes, any token accepted, no
//! lock taken; only the totals are counted. Used while no fault is queued
//! (a queued fault sends calls through the normal handlers, which answer
//! the same fixed bodies in fast mode).

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::state::{Counters, Shared};

/// The generate answer.
pub(crate) const GENERATE: &str = r#"{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"fast"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1,"totalTokenCount":2},"modelVersion":"fast","responseId":"fast"}}"#;

/// The stream answer: three events.
pub(crate) const STREAM: &str = concat!(
    r#"data: {"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"fa"}]},"index":0}],"modelVersion":"fast","responseId":"fast"}}"#,
    "\n\n",
    r#"data: {"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"s"}]},"index":0}],"modelVersion":"fast","responseId":"fast"}}"#,
    "\n\n",
    r#"data: {"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"t"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1,"totalTokenCount":2},"modelVersion":"fast","responseId":"fast"}}"#,
    "\n\n",
);

/// The token answer.
pub(crate) const TOKEN: &str = r#"{"access_token":"ya29.fake-fast","expires_in":3599,"token_type":"Bearer","scope":"https://www.googleapis.com/auth/cloud-platform"}"#;

/// The loadCodeAssist answer.
pub(crate) const LOAD_CODE_ASSIST: &str =
    r#"{"cloudaicompanionProject":"fake-project-fast","currentTier":{"id":"free-tier"}}"#;

/// The fetchAvailableModels answer.
pub(crate) const MODELS: &str = r#"{"models":{"gemini-2.5-pro":{"quotaInfo":{"remainingFraction":1.0,"resetTime":"2099-01-01T00:00:00Z"}},"gemini-2.5-flash":{"quotaInfo":{"remainingFraction":1.0,"resetTime":"2099-01-01T00:00:00Z"}}}}"#;

/// A 200 with a static body.
pub(crate) fn fixed(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

const JSON: &str = "application/json; charset=UTF-8";
const SSE: &str = "text/event-stream";

/// The fixed answer for a hot endpoint, counting it; `None` for others.
pub(crate) fn answer(method: &Method, path: &str, shared: &Shared) -> Option<Response> {
    if method != Method::POST {
        return None;
    }
    let c = &shared.counters;
    let (counter, body, ctype) = match path {
        "/v1internal:generateContent" => (&c.generate, GENERATE, JSON),
        "/v1internal:streamGenerateContent" => (&c.stream, STREAM, SSE),
        "/token" => (&c.token, TOKEN, JSON),
        "/v1internal:loadCodeAssist" => (&c.load_code_assist, LOAD_CODE_ASSIST, JSON),
        "/v1internal:fetchAvailableModels" => (&c.fetch_models, MODELS, JSON),
        _ => return None,
    };
    Counters::bump(counter);
    Some(fixed(body, ctype))
}

/// The fixed body type for the normal handlers in fast mode.
pub(crate) fn json(body: &'static str) -> Response {
    fixed(body, JSON)
}

/// The fixed stream for the normal handlers in fast mode.
pub(crate) fn sse() -> Response {
    fixed(STREAM, SSE)
}
