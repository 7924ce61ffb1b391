//! Google Code Assist `v1internal`: `generateContent`,
//! `streamGenerateContent` (SSE), `countTokens`, `fetchAvailableModels`
//! (`loadCodeAssist` and `onboardUser` are in [`onboarding`](super::onboarding)).
//! The account behind a call is the one its access token was issued to;
//! the client it was issued to decides the profile and model access.

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

use super::catalogue;
use super::clients::{is_antigravity, GEMINI_CLI_CLIENT_ID};
use super::envelope;
use super::errors::{
    answer, bare_429_body, google_status_body, json_answer, not_found_body,
    permission_denied_project_body, rate_limit_body, unauthenticated, unsupported_client_body,
};
use super::fast;
use super::faults::{self, FaultAction, FaultCall};
use super::gemini::{self, compose_with, Answer};
use super::images;
use super::oauth::bearer;
use super::proto::field;
use super::record::{model_of, CallNote};
use super::server::{ConnHandle, HostLabel};
use super::state::{bump, AccessLookup, Counters, Inner, Shared};
use super::time::{parse_rfc3339, unix_now};
use super::types::{Endpoint, Served};
use super::validate::{self, Call};

const SSE: &str = "text/event-stream";
const JSON: &str = "application/json; charset=UTF-8";

/// The text of a Claude thought part.
const THOUGHT_TEXT: &str = "Thinking it over.";

/// `resp` with `note` for the request log.
pub(crate) fn noted(mut resp: Response, note: CallNote) -> Response {
    resp.extensions_mut().insert(note);
    resp
}

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
pub(crate) fn sse(events: Vec<Bytes>, hold_ms: u64) -> Response {
    use futures::StreamExt;
    let hold = Duration::from_millis(hold_ms);
    let body = futures::stream::iter(events.into_iter().enumerate()).then(move |(i, e)| async move {
        // A slow model: the first event at once, the rest after the hold.
        if i == 1 && !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        Ok::<_, io::Error>(e)
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SSE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Who is calling: the account (valid or not) and the client its token
/// was issued to.
pub(crate) struct Caller {
    pub(crate) lookup: AccessLookup,
    pub(crate) client_id: String,
}

impl Caller {
    /// The caller of a request.
    pub(crate) fn of(shared: &Shared, headers: &HeaderMap) -> Caller {
        match bearer(headers) {
            Some(t) => shared.with(|inner| Caller {
                lookup: inner.lookup_access(t),
                client_id: inner.client_of(t).unwrap_or_default(),
            }),
            None => Caller {
                lookup: AccessLookup::Unknown,
                client_id: String::new(),
            },
        }
    }

    /// The account, valid or not.
    pub(crate) fn email(&self) -> Option<&str> {
        self.lookup.email()
    }

    /// The note for the request log.
    pub(crate) fn note(&self, fault: bool) -> CallNote {
        CallNote {
            email: self.email().map(str::to_owned),
            fault,
            content_refused: false,
            usage: None,
        }
    }
}

/// The `User-Agent` header.
pub(crate) fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT)?.to_str().ok()
}

/// `N s` until `reset_time`, at least one second.
fn delay_until(reset_time: &str) -> String {
    let secs = parse_rfc3339(reset_time).map_or(60, |t| (t - unix_now()).max(1));
    format!("{secs}s")
}

/// The 400 for a body that is not JSON.
pub(crate) fn bad_json() -> Response {
    answer(
        400,
        &google_status_body(
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received. Unexpected token.",
        ),
    )
}

/// Composes the answer and adds what depends on the state: call ids
/// (`call_<n>` for the agent turn, `toolu_<n>` for Claude), Gemini 3
/// signatures on function calls, a Claude thought part with
/// `thinkingConfig`.
fn compose_call(inner: &mut Inner, email: &str, model: &str, request: &Value) -> gemini::Composed {
    let mut composed = {
        let runs = &inner.run_calls;
        compose_with(email, request, &|id| runs.contains(id))
    };
    if inner.settings.prompt_cache {
        composed.cached_tokens = inner.prompt_cache.hit(email, model, request);
    }
    let claude = catalogue::is_claude(model);
    if let Answer::Call { run, .. } = &composed.answer {
        let run = *run;
        if run || claude {
            let n = inner.new_call_number();
            let id = if claude {
                format!("toolu_{n}")
            } else {
                format!("call_{n}")
            };
            if run {
                inner.run_calls.insert(id.clone());
            }
            composed.decor.call_id = Some(id);
        }
        if catalogue::is_gemini3(model) {
            composed.decor.call_signature = Some(inner.signatures.issue());
        }
    }
    let thinking = field(request, "generationConfig")
        .and_then(|g| field(g, "thinkingConfig"))
        .is_some();
    if claude && thinking {
        composed.decor.thought = Some((THOUGHT_TEXT.to_owned(), inner.signatures.issue()));
    }
    composed
}

/// Shared body of generate and stream.
async fn content(
    shared: Arc<Shared>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
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
    let who = Caller::of(&shared, &headers);
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
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let model_hint = parsed.as_ref().and_then(model_of);
    // Fingerprinted system-instruction text: Google's bare 429 on every
    // host and account, before quota and scripted faults (GOOGLE-2026 §4:
    // CPA #4723, #5751, #5037; EasyCLIProxyAPI #284; oh-my-pi #11699).
    if let (AccessLookup::Valid(_), Some(v)) = (&who.lookup, &parsed) {
        if !shared.is_fast() {
            let request = v.get("request").unwrap_or(&Value::Null);
            if shared.with(|inner| inner.refused_phrase(request)).is_some() {
                let mut note = who.note(false);
                note.content_refused = true;
                return noted(json_answer(429, bare_429_body()), note);
            }
        }
    }
    let call =
        FaultCall::new(endpoint, who.email(), HostLabel::of(&host)).model(model_hint.as_deref());
    let action = faults::apply(&shared, conn.as_ref().map(|c| &c.0), call).await;
    let faulted = action.is_fault();
    let cut = match action {
        FaultAction::Proceed => None,
        FaultAction::Respond(resp) => return noted(resp, who.note(true)),
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
    let note = who.note(faulted);
    let AccessLookup::Valid(email) = &who.lookup else {
        return noted(unauthenticated(), note);
    };
    let Some(v) = parsed else {
        return noted(bad_json(), note);
    };
    if let Err(resp) = host_gate(&shared, HostLabel::of(&host), email, &who.client_id) {
        return noted(resp, note);
    }
    if model_hint.as_deref().is_some_and(catalogue::is_gemini38)
        && shared.is_prod_beside_daily(HostLabel::of(&host))
    {
        // decolua/9router PR #3732: the prod host does not expose Gemini 3.8.
        return noted(answer(404, &not_found_body()), note);
    }
    if shared.with(|inner| inner.unsupported_client(email, Some(&who.client_id))) {
        // google-gemini/gemini-cli#28846 (the status on generate is the fake's choice).
        return noted(answer(403, &unsupported_client_body()), note);
    }
    let ua = user_agent(&headers);
    let checked = shared.with(|inner| {
        validate::check(
            inner,
            &Call {
                body: &v,
                email,
                client_id: &who.client_id,
                user_agent: ua,
            },
        )
    });
    let checked = match checked {
        Ok(c) => c,
        Err(resp) => return noted(resp, note),
    };
    let model = checked.model.as_str();
    let request = &v["request"];
    let quota = shared.with(|inner| inner.quota(email, model));
    if let Some(q) = quota.filter(|q| q.fraction <= 0.0) {
        let body = rate_limit_body(&delay_until(&q.reset_time), "QUOTA_EXHAUSTED");
        return noted(json_answer(429, body.to_string()), note);
    }
    // A used-up 5-hour or weekly window (module `quota_summary`).
    if let Some(body) = shared.with(|inner| inner.window_refusal(email, model)) {
        return noted(json_answer(429, body), note);
    }
    if images::is_image_model(model) {
        // Image parts, whole (module `images`).
        let full = images::answer(
            model,
            request,
            &shared.with(|inner| inner.new_response_id()),
        );
        shared.record_served(Served {
            email: email.clone(),
            model: model.to_owned(),
            project: Some(checked.project.clone()),
            stream,
        });
        let resp = if stream {
            sse(images::events(&full), 0)
        } else {
            json_answer(200, full.to_string())
        };
        let mut note = note;
        note.usage = full["response"].get("usageMetadata").cloned();
        return noted(resp, note);
    }
    let (composed, response_id) = shared.with(|inner| {
        (
            compose_call(inner, email, model, request),
            inner.new_response_id(),
        )
    });
    let served = Served {
        email: email.clone(),
        model: model.to_owned(),
        project: Some(checked.project.clone()),
        stream,
    };
    let resp = if stream {
        let events = composed.events(model, &response_id);
        if let Some(n) = cut {
            let n = n.min(events.len().saturating_sub(1));
            return noted(cut_after(events[..n].to_vec(), SSE), note);
        }
        shared.record_served(served);
        sse(events, shared.with(|inner| inner.settings.stream_hold_ms))
    } else {
        let full = composed.full(model, &response_id).to_string();
        if cut.is_some() {
            return noted(cut_json(full), note);
        }
        shared.record_served(served);
        json_answer(200, full)
    };
    let mut note = note;
    note.usage = Some(composed.usage());
    noted(resp, note)
}

/// The prod host of a fake that also has a daily host refuses consumer
/// accounts with Google's bare 429 (router-for-me/CLIProxyAPI#5209: 24/24
/// consumer accounts got 429 RESOURCE_EXHAUSTED on cloudcode-pa, 200 on
/// daily; also #4749). Gemini CLI tokens are exempt: prod is that client's
/// own host. A fake with one host stands for whichever host the test
/// points at and never does this.
fn host_gate(
    shared: &Shared,
    host: Option<&str>,
    email: &str,
    client_id: &str,
) -> Result<(), Response> {
    if !shared.is_prod_beside_daily(host) || client_id == GEMINI_CLI_CLIENT_ID {
        return Ok(());
    }
    if shared.with(|inner| inner.is_enterprise(email)) {
        return Ok(());
    }
    Err(json_answer(429, bare_429_body()))
}

/// `POST /v1internal:generateContent`.
pub(crate) async fn generate(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    content(shared, conn, host, headers, body, false).await
}

/// `POST /v1internal:streamGenerateContent?alt=sse`.
pub(crate) async fn stream(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    content(shared, conn, host, headers, body, true).await
}

/// Counting, fault and auth steps of the small endpoints: `Ok` is the
/// caller (with a valid token), `Err` the answer to give instead.
pub(crate) async fn small_call(
    shared: &Shared,
    conn: Option<&Extension<ConnHandle>>,
    host: Option<&str>,
    headers: &HeaderMap,
    endpoint: Endpoint,
    fast_body: &'static str,
) -> Result<(String, Caller), Response> {
    let who = Caller::of(shared, headers);
    let c = &shared.counters;
    match endpoint {
        Endpoint::LoadCodeAssist => {
            Counters::bump(&c.load_code_assist);
            if let Some(email) = who.email() {
                shared.with(|inner| bump(&mut inner.stats.load_code_assist_calls_by_email, email));
            }
        }
        Endpoint::CountTokens => Counters::bump(&c.count_tokens),
        Endpoint::OnboardUser => Counters::bump(&c.onboard_user),
        Endpoint::Operation => Counters::bump(&c.operation),
        Endpoint::RetrieveUserQuotaSummary => {}
        _ => Counters::bump(&c.fetch_models),
    }
    let call = FaultCall::new(endpoint, who.email(), host);
    match faults::apply(shared, conn.map(|c| &c.0), call).await {
        FaultAction::Proceed => {}
        FaultAction::Respond(resp) => return Err(noted(resp, who.note(true))),
        FaultAction::MidStream { .. } => {
            return Err(noted(cut_json(fast_body.to_owned()), who.note(true)))
        }
    }
    if shared.is_fast() {
        return Err(fast::json(fast_body));
    }
    match &who.lookup {
        AccessLookup::Valid(email) => Ok((email.clone(), who)),
        _ => Err(noted(unauthenticated(), who.note(false))),
    }
}

/// The JSON of a small endpoint's body (`{}` when empty); `Err` a 400.
pub(crate) fn small_body(body: &[u8]) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(bad_json()),
    }
}

/// `POST /v1internal:countTokens`: `{"request": {"model": "models/<m>",
/// "contents": […]}}` (GC:code_assist/converter.ts `toCountTokenRequest`;
/// the generate envelope as CPA sends it is accepted too, facts §2.0) →
/// `{"totalTokens": <words of every text>}`.
pub(crate) async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, who) = match small_call(
        &shared,
        conn.as_ref(),
        HostLabel::of(&host),
        &headers,
        Endpoint::CountTokens,
        r#"{"totalTokens":1}"#,
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let note = who.note(false);
    let v = match small_body(&body) {
        Ok(v) => v,
        Err(resp) => return noted(resp, note),
    };
    let Some(request) = v.get("request").filter(|r| r.is_object()) else {
        return noted(
            answer(
                400,
                &google_status_body(
                    400,
                    "INVALID_ARGUMENT",
                    "Invalid request: request is required.",
                ),
            ),
            note,
        );
    };
    if let Some(model) = model_of(&v) {
        if !envelope::may_use_model(&model, &who.client_id, user_agent(&headers)) {
            return noted(answer(404, &not_found_body()), note);
        }
    }
    let total = gemini::prompt_words(request);
    noted(
        json_answer(200, json!({ "totalTokens": total }).to_string()),
        note,
    )
}

/// `POST /v1internal:fetchAvailableModels`: the catalogue of the token's
/// client with per-model quota and `deprecatedModelIds` (facts §4:
/// AM:modules/quota.rs `QuotaResponse`). A `project` that is not the
/// account's is 403, as AM meets it (facts §2.1, "A 403 with `project`").
pub(crate) async fn fetch_available_models(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (email, who) = match small_call(
        &shared,
        conn.as_ref(),
        HostLabel::of(&host),
        &headers,
        Endpoint::FetchAvailableModels,
        fast::MODELS,
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let note = who.note(false);
    let v = match small_body(&body) {
        Ok(v) => v,
        Err(resp) => return noted(resp, note),
    };
    if let Err(resp) = host_gate(&shared, HostLabel::of(&host), &email, &who.client_id) {
        return noted(resp, note);
    }
    // decolua/9router PR #3732: no Gemini 3.8 on prod.
    let no_38 = shared.is_prod_beside_daily(HostLabel::of(&host));
    let antigravity = is_antigravity(&who.client_id);
    let answer_body = shared.with(|inner| {
        if let Some(p) = v
            .get("project")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            let own = inner.accounts.get(&email).and_then(|a| a.current_project());
            if own != Some(p) {
                return Err(answer(403, &permission_denied_project_body(p)));
            }
        }
        let quotas = inner.models_of(&email);
        let mut models = Map::new();
        for m in catalogue::for_client(antigravity) {
            if no_38 && catalogue::is_gemini38(m.id) {
                continue;
            }
            let q = quotas.get(m.id).cloned().unwrap_or_else(Inner::full_quota);
            let mut e = catalogue::entry_json(m);
            e["quotaInfo"] = json!({"remainingFraction": q.fraction, "resetTime": q.reset_time});
            models.insert(m.id.to_owned(), e);
        }
        for (id, q) in &quotas {
            if models.contains_key(id)
                || (!antigravity && catalogue::is_antigravity_only(id))
                || (no_38 && catalogue::is_gemini38(id))
            {
                continue;
            }
            models.insert(
                id.clone(),
                json!({"displayName": id,
                       "quotaInfo": {"remainingFraction": q.fraction, "resetTime": q.reset_time}}),
            );
        }
        let mut deprecated = Map::new();
        if antigravity {
            for (old, new) in catalogue::DEPRECATED {
                deprecated.insert((*old).to_owned(), json!({ "newModelId": new }));
            }
        }
        let mut answer = json!({"models": models, "deprecatedModelIds": deprecated});
        if antigravity {
            // opencode-agy-auth `models.json` (2026-08-22).
            answer["defaultAgentModelId"] = json!(catalogue::DEFAULT_AGENT_MODEL_ID);
            // GOOGLE-2026 §3 (a list of ids: the fake's reading).
            answer["imageGenerationModelIds"] = json!(["gemini-3.1-flash-image"]);
        }
        Ok(answer)
    });
    match answer_body {
        Ok(b) => noted(json_answer(200, b.to_string()), note),
        Err(resp) => noted(resp, note),
    }
}
