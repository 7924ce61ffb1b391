//! Gemini's (whole) answer → the client's `message` object, and error
//! bodies in Anthropic's shape.

use serde_json::{json, Map, Value};

use super::super::gemini::{FinishKind, FunctionCall, GenerateContentResponse};
use super::super::search::{Grounding, Source as WebSource};
use super::super::shared::{answer_id, new_id};
use super::super::signatures::part_signature;
use super::message::{
    search_input, tool_use_id, Citation, ContentBlock, MessageResponse, ServerToolUsage, Usage, WebSearchResult,
    STOP_REASONS,
};
use super::signature::wrap_signature;

fn call_input(call: &FunctionCall) -> Value {
    match &call.args {
        Some(args @ Value::Object(_)) => args.clone(),
        _ => Value::Object(Map::new()),
    }
}

/// Builds the Anthropic `message` for a (non-streamed) Gemini response.
/// `model` is echoed as the client sent it.
pub fn response_from_gemini(resp: &GenerateContentResponse, model: &str) -> MessageResponse {
    response_with_search(resp, model, false)
}

/// [`response_from_gemini`]; with `search` (the request ran Google Search)
/// and a grounded answer, the search is shown as Anthropic's web search
/// tool shows it: after any thinking, a `server_tool_use` block
/// (`web_search`, the first query Gemini ran), a `web_search_tool_result`
/// block with Gemini's sources, then the text, cut into blocks at the
/// spans Gemini's supports cite, those with `citations`; and
/// `usage.server_tool_use.web_search_requests`, the number of queries.
pub fn response_with_search(resp: &GenerateContentResponse, model: &str, search: bool) -> MessageResponse {
    let mut message = plain_response(resp, model);
    let grounding = search.then(|| resp.grounding()).flatten().map(|m| {
        let mut g = Grounding::default();
        g.add(m);
        g
    });
    if let Some(g) = grounding.filter(Grounding::searched) {
        let sources = g.sources();
        let at = message
            .content
            .iter()
            .position(|b| !matches!(b, ContentBlock::Thinking { .. }))
            .unwrap_or(message.content.len());
        let mut blocks = search_blocks(&g, &sources).to_vec();
        // The answer text, cut at the cited spans.
        if let Some(ContentBlock::Text { text, .. }) = message.content.get(at) {
            blocks.extend(cited_blocks(text, &g, &sources));
            message.content.splice(at..=at, blocks);
        } else {
            message.content.splice(at..at, blocks);
        }
        message.usage.server_tool_use = Some(ServerToolUsage { web_search_requests: g.requests() });
    }
    message
}

/// The `server_tool_use` and `web_search_tool_result` blocks of a search.
fn search_blocks(g: &Grounding, sources: &[WebSource]) -> [ContentBlock; 2] {
    let id = new_id("srvtoolu_");
    [
        ContentBlock::ServerToolUse {
            id: id.clone(),
            name: "web_search",
            input: search_input(g),
        },
        ContentBlock::WebSearchToolResult {
            tool_use_id: id,
            content: sources.iter().map(WebSearchResult::of).collect(),
        },
    ]
}

/// `text` as text blocks: the spans Gemini cites with their citations,
/// the rest plain.
fn cited_blocks(text: &str, g: &Grounding, sources: &[WebSource]) -> Vec<ContentBlock> {
    let mut out = Vec::new();
    let mut at = 0;
    let plain = |s: &str| ContentBlock::Text { text: s.to_owned(), citations: None };
    for cited in g.citations(text) {
        if cited.range.start > at {
            out.push(plain(&text[at..cited.range.start]));
        }
        let span = &text[cited.range.clone()];
        let citations = cited.sources.iter().map(|&i| Citation::of(&sources[i], span)).collect();
        out.push(ContentBlock::Text { text: span.to_owned(), citations: Some(citations) });
        at = cited.range.end;
    }
    if at < text.len() || out.is_empty() {
        out.push(plain(&text[at..]));
    }
    out
}

fn plain_response(resp: &GenerateContentResponse, model: &str) -> MessageResponse {
    let mut content: Vec<ContentBlock> = Vec::new();
    let mut tool_use = false;
    for part in resp.parts() {
        let signature = part_signature(part);
        let text = part.text.as_deref().unwrap_or("");
        if part.is_thought() {
            match content.last_mut() {
                Some(ContentBlock::Thinking {
                    thinking,
                    signature: sig,
                }) if sig.is_empty() => thinking.push_str(text),
                _ => content.push(ContentBlock::Thinking {
                    thinking: text.to_owned(),
                    signature: String::new(),
                }),
            }
            if let (Some(ContentBlock::Thinking { signature: sig, .. }), Some(s)) =
                (content.last_mut(), signature)
            {
                *sig = wrap_signature(s);
            }
            continue;
        }
        // A signature on the part after the thoughts belongs to them.
        if let (Some(ContentBlock::Thinking { signature: sig, .. }), Some(s)) =
            (content.last_mut(), signature)
        {
            if sig.is_empty() {
                *sig = wrap_signature(s);
            }
        }
        if let Some(call) = &part.function_call {
            tool_use = true;
            content.push(ContentBlock::ToolUse {
                id: tool_use_id(call).into_owned(),
                name: call.name.clone(),
                input: call_input(call),
            });
        } else if !text.is_empty() {
            match content.last_mut() {
                Some(ContentBlock::Text { text: existing, .. }) => existing.push_str(text),
                _ => content.push(ContentBlock::Text {
                    text: text.to_owned(),
                    citations: None,
                }),
            }
        }
    }
    MessageResponse {
        id: answer_id(resp, "msg_"),
        kind: "message",
        role: "assistant",
        model: model.to_owned(),
        content,
        stop_reason: STOP_REASONS.of(FinishKind::of_response(resp), tool_use),
        stop_sequence: None,
        usage: Usage::from_gemini(resp.usage_metadata.as_ref()),
    }
}

/// An error body in Anthropic's shape:
/// `{"type":"error","error":{"type":…,"message":…}}`, the type chosen by status.
pub fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        // 529 is Anthropic's own "overloaded"; a pool with no account left is the same to a client.
        503 | 529 => "overloaded_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}
