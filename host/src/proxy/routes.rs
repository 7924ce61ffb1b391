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
use super::state::ProxyState;
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
    Anthropic,
}

impl Dialect {
    fn protocol(&self) -> Protocol {
        match self {
            Dialect::Gemini => Protocol::Gemini,
            Dialect::Chat | Dialect::Responses(_) => Protocol::Openai,
            Dialect::Anthropic => Protocol::Anthropic,
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
}

/// The request's session id, worked out only when the selector reads
/// session ids.
fn session_if_wanted(policy: &Policy, session: impl FnOnce() -> Option<String>) -> Option<String> {
    if policy.selector.wants_sessions() {
        session()
    } else {
        None
    }
}

/// A conversation's identity when the client sends none: a hash of its
/// first message, stable across the turns of one conversation, so sticky
/// selection keeps it on one account (and the upstream prompt cache warm).
fn first_message_session(first: Option<&[u8]>) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let first = first?;
    // DefaultHasher::new() has fixed keys: the same input hashes the same
    // in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    first.hash(&mut h);
    Some(format!("conv-{:016x}", h.finish()))
}

/// A Gemini request body checked once: it must be a JSON object; its first
/// content (raw JSON) names the conversation when the client sends no
/// session id.
fn gemini_first_content(body: &[u8]) -> Result<Option<&[u8]>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Req<'a> {
        #[serde(borrow, default)]
        contents: Vec<&'a RawValue>,
    }
    let r: Req = serde_json::from_slice(body)?;
    Ok(r.contents.first().map(|c| c.get().as_bytes()))
}

fn translated_first_content(g: &GenerateContentRequest) -> Option<Vec<u8>> {
    g.contents.first().and_then(|c| serde_json::to_vec(c).ok())
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
    _: Admitted,
    State(app): State<Arc<ProxyState>>,
    Path(model_action): Path<String>,
    SessionHeader(session): SessionHeader,
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
    let first = match gemini_first_content(&body) {
        Ok(first) => first,
        Err(e) => return refused(Protocol::Gemini, ROUTE, 400, &format!("request body is not a JSON object: {e}")),
    };
    let policy = app.policy.current();
    let session_id = session_if_wanted(&policy, || session.or_else(|| first_message_session(first)));
    let prepared = Prepared {
        policy,
        dialect: Dialect::Gemini,
        client_model: model.to_string(),
        stream,
        session_id,
        request: body,
    };
    run(app, prepared).await
}

/// `POST /v1/chat/completions`.
pub async fn openai_chat(_: Admitted, State(app): State<Arc<ProxyState>>, SessionHeader(session): SessionHeader, ClientBody(body): ClientBody) -> Response {
    translated(app, Dialect::Chat, "POST /v1/chat/completions", openai::parse_request(&body), session).await
}

/// `POST /v1/responses` (the Responses API, as Codex CLI speaks it).
pub async fn openai_responses(_: Admitted, State(app): State<Arc<ProxyState>>, SessionHeader(session): SessionHeader, ClientBody(body): ClientBody) -> Response {
    const ROUTE: &str = "POST /v1/responses";
    match responses::parse_request_with_tools(&body) {
        Ok((req, tools)) => {
            if !tools.dropped().is_empty() {
                tracing::info!(route = ROUTE, "built-in tools Google has no equivalent for were left out: {}", tools.dropped().join(", "));
            }
            translated(app, Dialect::Responses(tools), ROUTE, Ok(req), session).await
        }
        Err(e) => refused(Protocol::Openai, ROUTE, e.status(), &e.to_string()),
    }
}

/// `POST /v1/messages`.
pub async fn anthropic_messages(_: Admitted, State(app): State<Arc<ProxyState>>, SessionHeader(session): SessionHeader, ClientBody(body): ClientBody) -> Response {
    translated(app, Dialect::Anthropic, "POST /v1/messages", anthropic::parse_request(&body), session).await
}

/// The OpenAI and Anthropic routes after translation: encode the Gemini
/// request once, name the session, dispatch.
async fn translated(
    app: Arc<ProxyState>,
    dialect: Dialect,
    route: &str,
    parsed: Result<ClientRequest, TranslateError>,
    session: Option<String>,
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
    let session_id = session_if_wanted(&policy, || {
        session.or(req.session_hint).or_else(|| first_message_session(translated_first_content(&req.gemini).as_deref()))
    });
    let prepared = Prepared { dialect, client_model: req.model, stream: req.stream, session_id, request, policy };
    run(app, prepared).await
}

async fn run(app: Arc<ProxyState>, p: Prepared) -> Response {
    let model = app.upstream_model(&p.client_model);
    let protocol = p.dialect.protocol();
    let call = Call { model, protocol, session_id: p.session_id, stream: p.stream, request: p.request };
    let model = &call.model;
    let proto = protocol_name(protocol);
    match app.dispatcher.dispatch(&p.policy, &call).await {
        Ok(served) => {
            app.dispatcher.metrics.served(protocol, model);
            if p.stream {
                stream_response(served, p.dialect, &p.client_model)
            } else {
                whole_response(served, p.dialect, &p.client_model).await
            }
        }
        Err(e) => {
            let resp = dispatch_error(protocol, e);
            app.dispatcher.metrics.request(proto, model, resp.status().as_u16());
            resp
        }
    }
}

async fn whole_response(served: Served, dialect: Dialect, client_model: &str) -> Response {
    let protocol = dialect.protocol();
    let Served { response, lease, account } = served;
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            lease.finish(false, None);
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
            ([(axum::http::header::CONTENT_TYPE, "application/json")], inner).into_response()
        }
        Dialect::Chat | Dialect::Responses(_) | Dialect::Anthropic => match parse_upstream_response(&body) {
            Ok(g) => match &dialect {
                Dialect::Chat => Json(openai::response_from_gemini(&g, client_model)).into_response(),
                Dialect::Responses(tools) => Json(responses::response_with_tools(&g, client_model, tools)).into_response(),
                _ => Json(anthropic::response_from_gemini(&g, client_model)).into_response(),
            },
            Err(e) => {
                lease.finish(false, Some(200));
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
    /// Translate one upstream event; the flag says it carried a finish reason.
    fn push(&mut self, data: &str) -> Result<(Vec<Bytes>, bool), String> {
        match self {
            StreamOut::Gemini => {
                let inner = &data[gemini_inner(data.as_bytes()).map_err(|e| format!("upstream event is not JSON: {e}"))?];
                Ok((vec![SseEvent::data(inner.to_string()).to_bytes()], inner.contains("\"finishReason\"")))
            }
            StreamOut::Openai(t) => {
                let g = parse_upstream_response(data.as_bytes()).map_err(|e| format!("upstream event is not a Gemini response: {e}"))?;
                Ok((t.push(&g).iter().map(SseEvent::to_bytes).collect(), g.finish_reason().is_some()))
            }
            StreamOut::Responses(t) => {
                let g = parse_upstream_response(data.as_bytes()).map_err(|e| format!("upstream event is not a Gemini response: {e}"))?;
                Ok((t.push(&g).iter().map(SseEvent::to_bytes).collect(), g.finish_reason().is_some()))
            }
            StreamOut::Anthropic(t) => {
                let g = parse_upstream_response(data.as_bytes()).map_err(|e| format!("upstream event is not a Gemini response: {e}"))?;
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
}

fn stream_response(served: Served, dialect: Dialect, client_model: &str) -> Response {
    let Served { response, lease, account } = served;
    let out = match dialect {
        Dialect::Gemini => StreamOut::Gemini,
        Dialect::Chat => StreamOut::Openai(openai::StreamTranslator::new(client_model)),
        Dialect::Responses(tools) => StreamOut::Responses(Box::new(responses::StreamTranslator::with_tools(client_model, tools))),
        Dialect::Anthropic => StreamOut::Anthropic(anthropic::StreamTranslator::new(client_model)),
    };
    let state = StreamState { events: response.into_stream().eventsource(), out, lease: Some(lease), pending: VecDeque::new(), done: false, saw_finish: false };
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
                    match st.out.push(&ev.data) {
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
