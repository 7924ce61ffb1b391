//! Google Code Assist `v1internal`: `generateContent`,
//! `streamGenerateContent` (SSE), `loadCodeAssist`, `fetchAvailableModels`.
//! The account behind a call is the one its access token was issued to.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::faults::{
    self, google_error, json_answer, rate_limit_body, unauthenticated, FaultAction,
};
use super::gemini::compose;
use super::oauth::bearer;
use super::server::ConnHandle;
use super::state::{bump, AccessLookup, Counters, Shared};
use super::time::{parse_rfc3339, unix_now};
use super::types::{Endpoint, Served};
use super::{fast, gemini};

const SSE: &str = "text/event-stream";
const JSON: &str = "application/json; charset=UTF-8";

/// A 200 whose body is `chunks` and then a cut connection (the client reads
/// the chunks, then a body error: the chunked body never ends).
pub(crate) fn cut_after(chunks: Vec<Bytes>, content_type: &'static str) -> Response {
    let cut = futures::stream::once(async {
        // Lets hyper flush what went before.
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fake: connection cut mid-answer",
        ))
    });
    let body = futures::stream::iter(chunks.into_iter().map(Ok)).chain(cut);
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON answer cut after its first half.
pub(crate) fn cut_json(full: String) -> Response {
    let mut half = full.len() / 2;
    while !full.is_char_boundary(half) {
        half -= 1;
    }
    cut_after(vec![Bytes::copy_from_slice(&full.as_bytes()[..half])], JSON)
}

/// An SSE answer of `events`.
fn sse(events: Vec<Bytes>) -> Response {
    let body = futures::stream::iter(events.into_iter().map(Ok::<_, io::Error>));
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SSE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The account behind the request's access token (valid or not).
fn lookup(shared: &Shared, headers: &HeaderMap) -> AccessLookup {
    match bearer(headers) {
        Some(t) => shared.with(|inner| inner.lookup_access(t)),
        None => AccessLookup::Unknown,
    }
}

/// `N s` until `reset_time`, at least one second.
fn delay_until(reset_time: &str) -> String {
    let secs = parse_rfc3339(reset_time).map_or(60, |t| (t - unix_now()).max(1));
    format!("{secs}s")
}

/// Shared body of generate and stream.
async fn content(
    shared: Arc<Shared>,
    conn: Option<Extension<ConnHandle>>,
    headers: HeaderMap,
    body: Bytes,
    stream: bool,
) -> Response {
    let (counter, endpoint) = if stream {
        (&shared.counters.stream, Endpoint::Stream)
    } else {
        (&shared.counters.generate, Endpoint::Generate)
    };
    Counters::bump(counter);
    let who = lookup(&shared, &headers);
    if let Some(email) = who.email() {
        shared.with(|inner| {
            let map = if stream {
                &mut inner.stats.stream_calls
            } else {
                &mut inner.stats.generate_calls
            };
            bump(map, email);
        });
    }
    let cut = match faults::apply(&shared, conn.as_ref().map(|c| &c.0), endpoint, who.email()).await
    {
        FaultAction::Proceed => None,
        FaultAction::Respond(resp) => return resp,
        FaultAction::MidStream { after_events } => Some(after_events as usize),
    };
    if shared.is_fast() {
        return match (cut, stream) {
            (None, true) => fast::sse(),
            (None, false) => fast::json(fast::GENERATE),
            (Some(_), true) => cut_after(
                vec![Bytes::from_static(
                    fast::STREAM
                        .split_inclusive("\n\n")
                        .next()
                        .unwrap_or("")
                        .as_bytes(),
                )],
                SSE,
            ),
            (Some(_), false) => cut_json(fast::GENERATE.to_owned()),
        };
    }
    let AccessLookup::Valid(email) = who else {
        return unauthenticated();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return google_error(400, "Invalid JSON payload received.");
    };
    let Some(model) = v
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return google_error(400, "Invalid request: model is required.");
    };
    let Some(request) = v.get("request").filter(|r| r.is_object()) else {
        return google_error(400, "Invalid request: request is required.");
    };
    let project = v.get("project").and_then(Value::as_str).map(str::to_owned);

    let (quota, response_id) =
        shared.with(|inner| (inner.quota(&email, model), inner.new_response_id()));
    if let Some(q) = quota.filter(|q| q.fraction <= 0.0) {
        let body = rate_limit_body(&delay_until(&q.reset_time), "QUOTA_EXHAUSTED");
        return json_answer(429, body.to_string());
    }

    let composed = compose(&email, request);
    let served = Served {
        email,
        model: model.to_owned(),
        project,
        stream,
    };
    if stream {
        let events = composed.events(model, &response_id);
        if let Some(n) = cut {
            let n = n.min(events.len().saturating_sub(1));
            return cut_after(events[..n].to_vec(), SSE);
        }
        shared.record_served(served);
        sse(events)
    } else {
        let full = gemini::Composed::full(&composed, model, &response_id).to_string();
        if cut.is_some() {
            return cut_json(full);
        }
        shared.record_served(served);
        json_answer(200, full)
    }
}

/// `POST /v1internal:generateContent`.
pub(crate) async fn generate(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    content(shared, conn, headers, body, false).await
}

/// `POST /v1internal:streamGenerateContent?alt=sse`.
pub(crate) async fn stream(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    content(shared, conn, headers, body, true).await
}

/// Counting, fault and auth steps of the small endpoints; `Err` is the
/// answer to give instead.
async fn small_call(
    shared: &Shared,
    conn: Option<&Extension<ConnHandle>>,
    headers: &HeaderMap,
    endpoint: Endpoint,
    fast_body: &'static str,
) -> Result<String, Response> {
    let who = lookup(shared, headers);
    if endpoint == Endpoint::LoadCodeAssist {
        Counters::bump(&shared.counters.load_code_assist);
        if let Some(email) = who.email() {
            shared.with(|inner| bump(&mut inner.stats.load_code_assist_calls_by_email, email));
        }
    } else {
        Counters::bump(&shared.counters.fetch_models);
    }
    match faults::apply(shared, conn.map(|c| &c.0), endpoint, who.email()).await {
        FaultAction::Proceed => {}
        FaultAction::Respond(resp) => return Err(resp),
        FaultAction::MidStream { .. } => return Err(cut_json(fast_body.to_owned())),
    }
    if shared.is_fast() {
        return Err(fast::json(fast_body));
    }
    match who {
        AccessLookup::Valid(email) => Ok(email),
        _ => Err(unauthenticated()),
    }
}

/// `POST /v1internal:loadCodeAssist`: the account's project.
pub(crate) async fn load_code_assist(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let email = match small_call(
        &shared,
        conn.as_ref(),
        &headers,
        Endpoint::LoadCodeAssist,
        fast::LOAD_CODE_ASSIST,
    )
    .await
    {
        Ok(email) => email,
        Err(resp) => return resp,
    };
    let project = shared.with(|inner| inner.account_or_default(&email).project_id.clone());
    let answer = json!({
        "currentTier": {"id": "free-tier", "name": "Gemini Code Assist for individuals"},
        "allowedTiers": [{"id": "free-tier", "name": "Gemini Code Assist for individuals", "isDefault": true}],
        "cloudaicompanionProject": project,
    });
    json_answer(200, answer.to_string())
}

/// `POST /v1internal:fetchAvailableModels`: per-model quota.
pub(crate) async fn fetch_available_models(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let email = match small_call(
        &shared,
        conn.as_ref(),
        &headers,
        Endpoint::FetchAvailableModels,
        fast::MODELS,
    )
    .await
    {
        Ok(email) => email,
        Err(resp) => return resp,
    };
    let models = shared.with(|inner| inner.models_of(&email));
    let mut out = Map::new();
    for (model, q) in models {
        out.insert(
            model,
            json!({"quotaInfo": {"remainingFraction": q.fraction, "resetTime": q.reset_time}}),
        );
    }
    json_answer(200, json!({ "models": out }).to_string())
}
