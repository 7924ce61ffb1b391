//! The client routes of the three protocols: translate in → dispatch →
//! translate out (whole answers and streams).

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::answer::{dispatch_error, error_response, refused, with_account};
use super::auth::{Admitted, ClientBody, SessionHeader};
use super::dispatch::{Call, Served};
use super::ledger::Ledger;
use super::state::ProxyState;
use crate::keys::NamedKey;
use crate::plugins::Protocol;
use crate::policy::Policy;
use crate::pool::Lease;
use crate::translate::gemini::{self, parse_upstream_response, response_span, GenerateContentRequest};
use crate::translate::shared::{nests_deeper_than, ClientRequest, TranslateError, MAX_JSON_DEPTH};
use crate::translate::sse::SseEvent;
use crate::translate::openai_responses::{self as responses, ToolMap};
use crate::translate::{anthropic, openai_chat as openai, protocol_name};

/// Which client API a request speaks (how its answer is written).
enum Dialect {
    Gemini,
    Chat,
    /// The Responses API, with the client's tools (names and kinds to put back).
    Responses(ToolMap),
    /// Anthropic messages; `true` when the request runs Google Search
    /// (its grounding is shown as Anthropic's web search tool).
    Anthropic(bool),
}

impl Dialect {
    fn protocol(&self) -> Protocol {
        match self {
            Dialect::Gemini => Protocol::Gemini,
            Dialect::Chat | Dialect::Responses(_) => Protocol::Openai,
            Dialect::Anthropic(_) => Protocol::Anthropic,
        }
    }

    /// The route's name in the usage log.
    fn route(&self) -> &'static str {
        match self {
            Dialect::Gemini => "generate",
            Dialect::Chat => "chat",
            Dialect::Responses(_) => "responses",
            Dialect::Anthropic(_) => "messages",
        }
    }
}

/// A request ready for dispatch.
struct Prepared {
    dialect: Dialect,
    /// The model as the client named it (echoed back in answers).
    client_model: String,
    stream: bool,
    session_id: Option<String>,
    request: Bytes,
    /// The policy this request runs under, from routing to the answer.
    policy: Arc<Policy>,
    /// The named key it came with (its limits, its usage).
    key: Option<Arc<NamedKey>>,
}

/// A conversation's id, by rank: the explicit headers (`x-session-id`,
/// `x-grantpool-session`, Claude Code's `x-claude-code-session-id`); then
/// `body` when `body_first` (Claude Code's `metadata.user_id`); Codex's
/// `session-id` / `conversation_id` headers; `body` otherwise (OpenAI
/// `prompt_cache_key`, `user`, `safety_identifier`); else `fallback` (a hash
/// of the system prompt and first turn), worked out only when nothing came.
fn conversation_id(
    headers: SessionHeader,
    body: Option<String>,
    body_first: bool,
    fallback: impl FnOnce() -> Option<String>,
) -> Option<String> {
    let (id, source) = if let Some(id) = headers.explicit {
        (Some(id), "header")
    } else if let Some(id) = body.as_ref().filter(|_| body_first) {
        (Some(id.clone()), "body")
    } else if let Some(id) = headers.codex {
        (Some(id), "codex header")
    } else if let Some(id) = body {
        (Some(id), "body")
    } else {
        (fallback(), "first turn")
    };
    tracing::trace!(source, known = id.is_some(), "conversation id");
    id
}

/// A conversation's identity when the client sends none: a hash of its
/// system prompt and first turn, stable across the turns of one
/// conversation (every turn resends them), different between conversations.
/// `None` without a first turn.
fn first_turn_session(system: Option<&[u8]>, first: Option<&[u8]>) -> Option<String> {
    let first = first?;
    let mut h = FirstTurnHasher::default();
    h.add(system.unwrap_or_default());
    h.add(first);
    Some(h.finish())
}

/// Hashes the system prompt and first turn; `io::Write` so that a
/// translated request is hashed as it is serialised, with no copy.
#[derive(Default)]
struct FirstTurnHasher(std::collections::hash_map::DefaultHasher);

impl FirstTurnHasher {
    /// One field, length-prefixed (so that `("ab","c")` ≠ `("a","bc")`).
    fn add(&mut self, bytes: &[u8]) {
        use std::hash::Hasher;
        self.0.write_usize(bytes.len());
        self.0.write(bytes);
    }

    fn finish(self) -> String {
        use std::hash::Hasher;
        // DefaultHasher::new() has fixed keys: the same input hashes the
        // same in every process (and on every node of a cluster).
        format!("conv-{:016x}", self.0.finish())
    }
}

impl std::io::Write for FirstTurnHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::hash::Hasher::write(&mut self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The first-turn id of a translated request: its system instruction and
/// first content, hashed as serialised (no intermediate buffer).
fn translated_first_turn(g: &GenerateContentRequest) -> Option<String> {
    let first = g.contents.first()?;
    let mut h = FirstTurnHasher::default();
    // A marker byte between the two parts stands in for a length prefix.
    if let Some(system) = &g.system_instruction {
        serde_json::to_writer(&mut h, system).ok()?;
    }
    h.add(b"\0");
    serde_json::to_writer(&mut h, first).ok()?;
    Some(h.finish())
}

/// A Gemini request's system instruction and first content, as raw JSON.
type FirstTurn<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A Gemini request body checked once: it must be a JSON object; its
/// system instruction and first content (raw JSON) name the conversation
/// when the client sends no session id.
fn gemini_first_turn(body: &[u8]) -> Result<FirstTurn<'_>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Req<'a> {
        #[serde(borrow, default)]
        contents: Vec<&'a RawValue>,
        #[serde(borrow, default, alias = "system_instruction", rename = "systemInstruction")]
        system: Option<&'a RawValue>,
    }
    let r: Req = serde_json::from_slice(body)?;
    Ok((r.system.map(|s| s.get().as_bytes()), r.contents.first().map(|c| c.get().as_bytes())))
}

/// Where the Gemini answer sits in a `v1internal` answer (or one stream
/// event): the `response` value, found by [`response_span`] or, for other
/// shapes, by a parse; the whole of it when it has no envelope.
fn gemini_inner(data: &[u8]) -> Result<std::ops::Range<usize>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        response: Option<&'a RawValue>,
    }
    if let Some(span) = response_span(data) {
        return Ok(span);
    }
    Ok(match serde_json::from_slice::<Envelope>(data)?.response {
        Some(inner) => {
            let start = inner.get().as_ptr() as usize - data.as_ptr() as usize;
            start..start + inner.get().len()
        }
        None => 0..data.len(),
    })
}

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
pub async fn gemini_generate(
    admitted: Admitted,
    State(app): State<Arc<ProxyState>>,
    Path(model_action): Path<String>,
    session: SessionHeader,
    ClientBody(body): ClientBody,
) -> Response {
    const ROUTE: &str = "POST /v1beta/models/{model}";
    let Some((model, action)) = model_action.rsplit_once(':') else {
        return refused(Protocol::Gemini, ROUTE, 404, &format!("unknown route models/{model_action}: use models/MODEL:generateContent, :streamGenerateContent or :countTokens"));
    };
    let model = model.trim_start_matches("models/");
    if nests_deeper_than(&body, MAX_JSON_DEPTH) {
        return refused(Protocol::Gemini, ROUTE, 400, &format!("request body nests deeper than {MAX_JSON_DEPTH} levels"));
    }
    let stream = match action {
        "generateContent" => false,
        "streamGenerateContent" => true,
        "countTokens" => return super::models::gemini_count(app, model, &body).await,
        other => return refused(Protocol::Gemini, ROUTE, 404, &format!("method `{other}` is not supported; use generateContent, streamGenerateContent or countTokens")),
    };
    let (system, first) = match gemini_first_turn(&body) {
        Ok(turn) => turn,
        Err(e) => return refused(Protocol::Gemini, ROUTE, 400, &format!("request body is not a JSON object: {e}")),
    };
    let policy = app.policy.current();
    let session_id = conversation_id(session, None, false, || first_turn_session(system, first));
    let prepared = Prepared {
        policy,
        dialect: Dialect::Gemini,
        client_model: model.to_string(),
        stream,
        session_id,
        request: body,
        key: admitted.key,
    };
    run(app, prepared).await
}

/// `POST /v1/chat/completions`.
pub async fn openai_chat(admitted: Admitted, State(app): State<Arc<ProxyState>>, session: SessionHeader, ClientBody(body): ClientBody) -> Response {
    translated(app, Dialect::Chat, "POST /v1/chat/completions", openai::parse_request(&body), session, admitted.key).await
}

/// `POST /v1/responses` (the Responses API, as Codex CLI speaks it).
pub async fn openai_responses(admitted: Admitted, State(app): State<Arc<ProxyState>>, session: SessionHeader, ClientBody(body): ClientBody) -> Response {
    const ROUTE: &str = "POST /v1/responses";
    match responses::parse_request_with_tools(&body) {
        Ok((req, tools)) => {
            if tools.search_dropped() {
                crate::translate::search::log_search_dropped(ROUTE);
            }
            if !tools.dropped().is_empty() {
                tracing::info!(route = ROUTE, "built-in tools Google has no equivalent for were left out: {}", tools.dropped().join(", "));
            }
            translated(app, Dialect::Responses(tools), ROUTE, Ok(req), session, admitted.key).await
        }
        Err(e) => refused(Protocol::Openai, ROUTE, e.status(), &e.to_string()),
    }
}

/// `POST /v1/messages`.
pub async fn anthropic_messages(admitted: Admitted, State(app): State<Arc<ProxyState>>, session: SessionHeader, ClientBody(body): ClientBody) -> Response {
    const ROUTE: &str = "POST /v1/messages";
    let parsed = anthropic::parse_request_with_search(&body).map(|(req, search_dropped)| {
        if search_dropped {
            crate::translate::search::log_search_dropped(ROUTE);
        }
        req
    });
    let search = parsed.as_ref().is_ok_and(|r| crate::translate::search::uses_google_search(&r.gemini));
    translated(app, Dialect::Anthropic(search), ROUTE, parsed, session, admitted.key).await
}

/// The OpenAI and Anthropic routes after translation: encode the Gemini
/// request once, name the session, dispatch.
async fn translated(
    app: Arc<ProxyState>,
    dialect: Dialect,
    route: &str,
    parsed: Result<ClientRequest, TranslateError>,
    session: SessionHeader,
    key: Option<Arc<NamedKey>>,
) -> Response {
    let protocol = dialect.protocol();
    let req = match parsed {
        Ok(r) => r,
        Err(e) => return refused(protocol, route, e.status(), &e.to_string()),
    };
    let request = match serde_json::to_vec(&req.gemini) {
        Ok(b) => Bytes::from(b),
        Err(e) => return error_response(protocol, 500, &format!("cannot encode the translated request: {e}")),
    };
    let policy = app.policy.current();
    // Claude Code's `metadata.user_id` ranks above Codex's headers; the
    // OpenAI body ids below them.
    let body_first = matches!(dialect, Dialect::Anthropic(_));
    let gemini = &req.gemini;
    let session_id = conversation_id(session, req.session_hint, body_first, || translated_first_turn(gemini));
    let prepared = Prepared { dialect, client_model: req.model, stream: req.stream, session_id, request, policy, key };
    run(app, prepared).await
}

async fn run(app: Arc<ProxyState>, p: Prepared) -> Response {
    let model = app.upstream_model(&p.client_model);
    let protocol = p.dialect.protocol();
    let mut ledger = Ledger::open(&app, p.key, protocol, p.dialect.route(), &p.client_model, &model, p.stream);
    if let Err(refused) = ledger.admit() {
        return refused;
    }
    let call = Call { model, protocol, session_id: p.session_id, stream: p.stream, request: p.request };
    let model = &call.model;
    let proto = protocol_name(protocol);
    match app.dispatcher.dispatch(&p.policy, &call).await {
        Ok(served) => {
            ledger.served(&served.account, served.attempts);
            if p.stream {
                stream_response(served, p.dialect, &p.client_model, ledger)
            } else {
                whole_response(served, p.dialect, &p.client_model, ledger).await
            }
        }
        Err(e) => {
            let resp = dispatch_error(protocol, e);
            let status = resp.status().as_u16();
            app.dispatcher.metrics.request(proto, model, status);
            ledger.failed(status);
            resp
        }
    }
}

async fn whole_response(served: Served, dialect: Dialect, client_model: &str, mut tally: Ledger) -> Response {
    let protocol = dialect.protocol();
    let Served { response, lease, account, .. } = served;
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            lease.finish(false, None);
            tally.set_status(502);
            return with_account(
                error_response(protocol, 502, &format!("upstream {e}")),
                &account,
            );
        }
    };
    let resp = match &dialect {
        Dialect::Gemini => {
            // The inner answer, as a view into the upstream's buffer (the
            // whole answer when it is not JSON: the client sees what came).
            let inner = body.slice(gemini_inner(&body).unwrap_or(0..body.len()));
            tally.scan(&inner);
            ([(axum::http::header::CONTENT_TYPE, "application/json")], inner).into_response()
        }
        Dialect::Chat | Dialect::Responses(_) | Dialect::Anthropic(_) => match parse_upstream_response(&body) {
            Ok(g) => {
                tally.saw(g.usage_metadata.as_ref());
                match &dialect {
                    Dialect::Chat => Json(openai::response_from_gemini(&g, client_model)).into_response(),
                    Dialect::Responses(tools) => Json(responses::response_with_tools(&g, client_model, tools)).into_response(),
                    _ => {
                        let search = matches!(dialect, Dialect::Anthropic(true));
                        Json(anthropic::response_with_search(&g, client_model, search)).into_response()
                    }
                }
            }
            Err(e) => {
                lease.finish(false, Some(200));
                tally.set_status(502);
                return with_account(error_response(protocol, 502, &format!("upstream answer is not a Gemini response: {e}")), &account);
            }
        },
    };
    lease.finish(true, Some(200));
    with_account(resp, &account)
}

/// Turns upstream SSE events into the client protocol's events.
enum StreamOut {
    Gemini,
    Openai(openai::StreamTranslator),
    Responses(Box<responses::StreamTranslator>),
    Anthropic(anthropic::StreamTranslator),
}

impl StreamOut {
    /// Translate one upstream event (its usage goes to `tally`); the flag
    /// says it carried a finish reason.
    fn push(&mut self, data: &str, tally: &mut Ledger) -> Result<(Vec<Bytes>, bool), String> {
        match self {
            StreamOut::Gemini => {
                let inner = &data[gemini_inner(data.as_bytes()).map_err(|e| format!("upstream event is not JSON: {e}"))?];
                tally.scan(inner.as_bytes());
                Ok((vec![SseEvent::data(inner.to_string()).to_bytes()], inner.contains("\"finishReason\"")))
            }
            StreamOut::Openai(t) => {
                let g = parse_upstream_response(data.as_bytes()).map_err(|e| format!("upstream event is not a Gemini response: {e}"))?;
                tally.saw(g.usage_metadata.as_ref());
                Ok((t.push(&g).iter().map(SseEvent::to_bytes).collect(), g.finish_reason().is_some()))
            }
            StreamOut::Responses(t) => {
                let g = parse_upstream_response(data.as_bytes()).map_err(|e| format!("upstream event is not a Gemini response: {e}"))?;
                tally.saw(g.usage_metadata.as_ref());
                Ok((t.push(&g).iter().map(SseEvent::to_bytes).collect(), g.finish_reason().is_some()))
            }
            StreamOut::Anthropic(t) => {
                let g = parse_upstream_response(data.as_bytes()).map_err(|e| format!("upstream event is not a Gemini response: {e}"))?;
                tally.saw(g.usage_metadata.as_ref());
                Ok((t.push(&g).iter().map(SseEvent::to_bytes).collect(), g.finish_reason().is_some()))
            }
        }
    }

    /// Closing events of a complete answer.
    fn finish(&mut self) -> Vec<Bytes> {
        match self {
            StreamOut::Gemini => Vec::new(),
            StreamOut::Openai(t) => t.finish().iter().map(SseEvent::to_bytes).collect(),
            StreamOut::Responses(t) => t.finish().iter().map(SseEvent::to_bytes).collect(),
            StreamOut::Anthropic(t) => t.finish().iter().map(SseEvent::to_bytes).collect(),
        }
    }

    fn error(&mut self, message: &str) -> Vec<Bytes> {
        match self {
            StreamOut::Gemini => {
                let body = gemini::error_body(502, message);
                vec![SseEvent::data(body.to_string()).to_bytes()]
            }
            StreamOut::Openai(t) => t.error(message).iter().map(SseEvent::to_bytes).collect(),
            StreamOut::Responses(t) => t.error(message).iter().map(SseEvent::to_bytes).collect(),
            StreamOut::Anthropic(t) => t.error(message).iter().map(SseEvent::to_bytes).collect(),
        }
    }
}

struct StreamState<S> {
    events: S,
    out: StreamOut,
    lease: Option<Lease>,
    pending: VecDeque<Bytes>,
    done: bool,
    /// An event with a finish reason came: the answer is complete.
    saw_finish: bool,
    /// The last usage seen, written down when the stream goes.
    tally: Ledger,
}

fn stream_response(served: Served, dialect: Dialect, client_model: &str, tally: Ledger) -> Response {
    let Served { response, lease, account, .. } = served;
    let out = match dialect {
        Dialect::Gemini => StreamOut::Gemini,
        Dialect::Chat => StreamOut::Openai(openai::StreamTranslator::new(client_model)),
        Dialect::Responses(tools) => StreamOut::Responses(Box::new(responses::StreamTranslator::with_tools(client_model, tools))),
        Dialect::Anthropic(search) => StreamOut::Anthropic(anthropic::StreamTranslator::with_search(client_model, search)),
    };
    let state = StreamState { events: response.into_stream().eventsource(), out, lease: Some(lease), pending: VecDeque::new(), done: false, saw_finish: false, tally };
    let body = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.pending.pop_front() {
                return Some((Ok::<Bytes, std::convert::Infallible>(b), st));
            }
            if st.done {
                return None;
            }
            match st.events.next().await {
                Some(Ok(ev)) => {
                    if ev.data.trim().is_empty() || ev.data.trim() == "[DONE]" {
                        continue;
                    }
                    match st.out.push(&ev.data, &mut st.tally) {
                        Ok((chunks, finished)) => {
                            st.pending.extend(chunks);
                            st.saw_finish |= finished;
                        }
                        Err(msg) => {
                            st.pending.extend(st.out.error(&msg));
                            st.done = true;
                            if let Some(l) = st.lease.take() {
                                l.finish(false, Some(200));
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    let msg = format!("upstream stream failed: {e}");
                    tracing::warn!("{msg}");
                    st.pending.extend(st.out.error(&msg));
                    st.done = true;
                    if let Some(l) = st.lease.take() {
                        l.finish(false, Some(200));
                    }
                }
                None => {
                    st.done = true;
                    st.tally.close();
                    if st.saw_finish {
                        st.pending.extend(st.out.finish());
                        if let Some(l) = st.lease.take() {
                            l.finish(true, Some(200));
                        }
                    } else {
                        let msg = "upstream stream ended before the answer was complete";
                        tracing::warn!("{msg}");
                        st.pending.extend(st.out.error(msg));
                        if let Some(l) = st.lease.take() {
                            l.finish(false, Some(200));
                        }
                    }
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_account(resp, &account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(explicit: Option<&str>, codex: Option<&str>) -> SessionHeader {
        SessionHeader { explicit: explicit.map(str::to_string), codex: codex.map(str::to_string) }
    }

    #[test]
    fn the_conversation_id_by_rank() {
        let s = |v: &str| Some(v.to_string());
        let never = || -> Option<String> { panic!("the first turn is hashed only when no id came") };
        // The explicit headers come first, over any body id.
        assert_eq!(conversation_id(headers(Some("h"), Some("k")), s("b"), true, never), s("h"));
        // Claude Code's `metadata.user_id` ranks above Codex's headers...
        assert_eq!(conversation_id(headers(None, Some("k")), s("b"), true, never), s("b"));
        // ...the OpenAI body ids below them.
        assert_eq!(conversation_id(headers(None, Some("k")), s("b"), false, never), s("k"));
        assert_eq!(conversation_id(headers(None, None), s("b"), false, never), s("b"));
        assert_eq!(conversation_id(headers(None, None), None, false, || s("f")), s("f"));
    }

    #[test]
    fn the_first_turn_names_a_conversation_without_an_id() {
        let body = |system: &str, turns: serde_json::Value| {
            serde_json::to_vec(&json!({"systemInstruction": {"parts": [{"text": system}]}, "contents": turns})).unwrap()
        };
        let hash = |b: &[u8]| {
            let (system, first) = gemini_first_turn(b).unwrap();
            first_turn_session(system, first)
        };
        let t1 = json!([{"role": "user", "parts": [{"text": "fix the bug"}]}]);
        let t3 = json!([{"role": "user", "parts": [{"text": "fix the bug"}]}, {"role": "model", "parts": [{"text": "done"}]},
                        {"role": "user", "parts": [{"text": "thanks"}]}]);
        let one = hash(&body("be terse", t1.clone()));
        assert!(one.as_deref().unwrap().starts_with("conv-"));
        // Stable across the turns of one conversation.
        assert_eq!(one, hash(&body("be terse", t3)));
        // Another first turn, or another system prompt: another conversation.
        assert_ne!(one, hash(&body("be terse", json!([{"role": "user", "parts": [{"text": "write docs"}]}]))));
        assert_ne!(one, hash(&body("be verbose", t1)));
        // `system_instruction` is the same field.
        let snake = serde_json::to_vec(&json!({"system_instruction": {"parts": [{"text": "be terse"}]},
                                               "contents": [{"role": "user", "parts": [{"text": "fix the bug"}]}]})).unwrap();
        assert_eq!(one, hash(&snake));
        // No turn at all: no id.
        assert_eq!(hash(b"{}"), None);
    }

    #[test]
    fn a_translated_first_turn_includes_the_system_prompt() {
        let parse = |v: serde_json::Value| anthropic::parse_request(&serde_json::to_vec(&v).unwrap()).unwrap().gemini;
        let first = json!({"role": "user", "content": "fix the bug"});
        let t1 = parse(json!({"model": "m", "system": "be terse", "messages": [first]}));
        let t2 = parse(json!({"model": "m", "system": "be terse", "messages": [first, {"role": "assistant", "content": "done"},
                                                                                {"role": "user", "content": "thanks"}]}));
        let other_system = parse(json!({"model": "m", "system": "be verbose", "messages": [first]}));
        let other_turn = parse(json!({"model": "m", "system": "be terse", "messages": [{"role": "user", "content": "write docs"}]}));
        let id = translated_first_turn(&t1);
        assert!(id.is_some());
        assert_eq!(id, translated_first_turn(&t2));
        assert_ne!(id, translated_first_turn(&other_system));
        assert_ne!(id, translated_first_turn(&other_turn));
    }
}
