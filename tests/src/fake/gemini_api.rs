//! The public Gemini API (`generativelanguage.googleapis.com`) beside
//! Code Assist: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (`?alt=sse`), keyed by an API key (`key=` in
//! the query or the `x-goog-api-key` header; any non-empty key is taken).
//! They answer what the `v1internal` routes answer inside their `response`
//! field, from the same generation code ([`gemini`](super::gemini); under
//! `--fast` the same fixed bodies, unwrapped once). For peers that speak
//! this API rather than `v1internal` (LiteLLM's `gemini/` provider in
//! `bench/peers`). No faults, quota or account here: the text of an answer
//! names the caller as `api-key`.

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};

use super::errors::{
    answer, google_status_body, json_answer, not_found_body, ERROR_INFO, LOCALIZED_MESSAGE,
};
use super::fast;
use super::gemini::compose_with;
use super::state::{Counters, Shared};
use super::v1internal::{bad_json, sse};

/// The path prefix of both routes.
const PREFIX: &str = "/v1beta/models/";

/// Who the answers' text names (an API key has no account).
pub(crate) const API_KEY_CALLER: &str = "api-key";

/// Message of the 403 for a call with no key, literal
/// (PublicAffairs/openai-gemini#92, UnityGameStudio/Gemini-Unity-Package#1).
const UNREGISTERED_MESSAGE: &str = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";

/// Message of the 400 for an invalid (here: empty) key, literal
/// (continuedev/continue#8516).
const KEY_INVALID_MESSAGE: &str = "API key not valid. Please pass a valid API key.";

/// The 403 PERMISSION_DENIED for a call without a key.
pub fn no_key_body() -> Value {
    google_status_body(403, "PERMISSION_DENIED", UNREGISTERED_MESSAGE)
}

/// The 400 API_KEY_INVALID for a bad key.
pub fn key_invalid_body() -> Value {
    json!({"error": {
        "code": 400,
        "message": KEY_INVALID_MESSAGE,
        "status": "INVALID_ARGUMENT",
        "details": [
            {"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": LOCALIZED_MESSAGE, "locale": "en-US", "message": KEY_INVALID_MESSAGE}
        ]
    }})
}

/// `data: {"response": X}` → `data: X` for each event of an SSE body.
fn unwrap_events(events: &str) -> String {
    events
        .split_inclusive("\n\n")
        .map(|e| {
            let v: Value = e
                .strip_prefix("data: ")
                .and_then(|d| serde_json::from_str(d.trim_end()).ok())
                .unwrap_or_default();
            format!("data: {}\n\n", v["response"])
        })
        .collect()
}

/// The fast generate answer's `response`.
static FAST_GENERATE: LazyLock<String> = LazyLock::new(|| {
    serde_json::from_str::<Value>(fast::GENERATE).unwrap_or_default()["response"].to_string()
});

/// The fast stream's events, each its `response`.
static FAST_STREAM: LazyLock<String> = LazyLock::new(|| unwrap_events(fast::STREAM));

/// `{model}:generateContent` → (model, false); `:streamGenerateContent` → true.
fn parse_call(call: &str) -> Option<(&str, bool)> {
    let (model, method) = call.rsplit_once(':')?;
    match method {
        "generateContent" => Some((model, false)),
        "streamGenerateContent" => Some((model, true)),
        _ => None,
    }
}

/// `Err` with Google's answer unless the call carries a key.
fn check_key(query: Option<&str>, headers: &HeaderMap) -> Result<(), Response> {
    let from_query = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("key=").or((kv == "key").then_some("")))
    });
    let from_header = headers
        .get("x-goog-api-key")
        .map(|v| v.to_str().unwrap_or(""));
    match from_header.or(from_query) {
        None => Err(answer(403, &no_key_body())),
        Some("") => Err(answer(400, &key_invalid_body())),
        Some(_) => Ok(()),
    }
}

/// The fixed answer of fast mode (counted as a generate or stream call).
fn fast_answer(shared: &Shared, stream: bool) -> Response {
    let c = &shared.counters;
    if stream {
        Counters::bump(&c.stream);
        fast::fixed(FAST_STREAM.as_str(), "text/event-stream")
    } else {
        Counters::bump(&c.generate);
        fast::json(FAST_GENERATE.as_str())
    }
}

/// Fast mode's lock-free path (from the server's fast branch): `None` for
/// other requests.
pub(crate) fn fast_path(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    shared: &Shared,
) -> Option<Response> {
    if method != Method::POST {
        return None;
    }
    let (_, stream) = parse_call(uri.path().strip_prefix(PREFIX)?)?;
    Some(match check_key(uri.query(), headers) {
        Ok(()) => fast_answer(shared, stream),
        Err(resp) => resp,
    })
}

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
pub(crate) async fn call(
    State(shared): State<Arc<Shared>>,
    Path(call): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, stream)) = parse_call(&call) else {
        return answer(404, &not_found_body());
    };
    if let Err(resp) = check_key(uri.query(), &headers) {
        return resp;
    }
    if shared.is_fast() {
        return fast_answer(&shared, stream);
    }
    let c = &shared.counters;
    Counters::bump(if stream { &c.stream } else { &c.generate });
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_json();
    };
    if !request.is_object() {
        return bad_json();
    }
    let (composed, id) = shared.with(|inner| {
        (
            compose_with(API_KEY_CALLER, &request, &|_| false),
            inner.new_response_id(),
        )
    });
    if stream {
        let events = composed
            .events(model, &id)
            .iter()
            .map(|e| Bytes::from(unwrap_events(&String::from_utf8_lossy(e))))
            .collect();
        sse(events, 0)
    } else {
        json_answer(200, composed.full(model, &id)["response"].to_string())
    }
}
