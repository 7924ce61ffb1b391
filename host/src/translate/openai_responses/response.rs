//! Gemini's answer → a whole (non-streamed) `response` object, the `usage`
//! and envelope it shares with the stream, and error bodies.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::super::gemini::{FinishKind, GenerateContentResponse, UsageMetadata};
use super::super::openai_chat;
use super::super::outcome::FinishWords;
use super::super::shared::{answer_id, unix_now};
use super::output::Output;
use super::tools::ToolMap;

/// Responses `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens (cached ones included).
    pub input_tokens: u64,
    /// Cached prompt tokens.
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens, thinking included.
    pub output_tokens: u64,
    /// Thinking tokens.
    pub output_tokens_details: OutputTokensDetails,
    /// Total.
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InputTokensDetails {
    /// Prompt tokens served from cache.
    pub cached_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputTokensDetails {
    /// Thinking tokens.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Responses usage from Gemini's `usageMetadata` (zeros when absent).
    pub fn from_gemini(usage: Option<&UsageMetadata>) -> Self {
        usage.map_or_else(Usage::default, |u| Usage {
            input_tokens: u.prompt(),
            input_tokens_details: InputTokensDetails { cached_tokens: u.cached() },
            output_tokens: u.output(),
            output_tokens_details: OutputTokensDetails { reasoning_tokens: u.thoughts_token_count.unwrap_or(0) },
            total_tokens: u.total(),
        })
    }
}

/// `incomplete_details.reason` (none for a complete answer; tool calls do
/// not make an answer incomplete).
const INCOMPLETE: FinishWords<Option<&str>> =
    FinishWords { tool_use: None, max_tokens: Some("max_output_tokens"), filtered: Some("content_filter"), stop: None };

/// `status` and `incomplete_details.reason` for a Gemini finish.
pub(super) fn outcome(kind: Option<FinishKind>) -> (&'static str, Option<&'static str>) {
    let reason = INCOMPLETE.of(kind, false);
    (if reason.is_some() { "incomplete" } else { "completed" }, reason)
}

/// Builds the `response` object for a (non-streamed) Gemini response.
/// `model` is echoed as the client sent it. Namespaced and custom tools come
/// back under their own names only with [`response_with_tools`].
pub fn response_from_gemini(resp: &GenerateContentResponse, model: &str) -> Value {
    response_with_tools(resp, model, &ToolMap::default())
}

/// [`response_from_gemini`], giving calls back under the names in `tools`.
pub fn response_with_tools(resp: &GenerateContentResponse, model: &str, tools: &ToolMap) -> Value {
    let id = answer_id(resp, "resp_");
    let mut out = Output::new(tools.clone(), false);
    if let Some(meta) = resp.grounding() {
        out.grounding(meta);
    }
    for part in resp.parts() {
        out.part(part);
    }
    out.flush_search();
    out.annotate();
    out.close();
    let (status, reason) = outcome(FinishKind::of_response(resp));
    let head = Head { id: &id, model, created_at: unix_now() };
    head.object(status, out.items, Some(Usage::from_gemini(resp.usage_metadata.as_ref())), reason, None)
}

/// An error body in OpenAI's shape: `{"error":{"message","type","param","code"}}`
/// (the same as for chat completions).
pub fn error_body(status: u16, message: &str) -> Value {
    openai_chat::error_body(status, message)
}

/// What every `response` object of one answer shares.
pub(super) struct Head<'a> {
    pub(super) id: &'a str,
    pub(super) model: &'a str,
    pub(super) created_at: u64,
}

impl Head<'_> {
    /// The `response` object, with the fields the SDKs expect.
    pub(super) fn object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Usage>,
        incomplete: Option<&str>,
        error: Option<Value>,
    ) -> Value {
        let mut obj = Map::with_capacity(24);
        let mut put = |k: &str, v: Value| {
            obj.insert(k.to_owned(), v);
        };
        put("id", self.id.into());
        put("object", "response".into());
        put("created_at", self.created_at.into());
        put("status", status.into());
        if status == "completed" {
            put("completed_at", unix_now().into());
        }
        put("background", false.into());
        put("error", error.unwrap_or(Value::Null));
        put("incomplete_details", incomplete.map_or(Value::Null, |r| json!({"reason": r})));
        put("instructions", Value::Null);
        put("max_output_tokens", Value::Null);
        put("model", self.model.into());
        put("output", Value::Array(output));
        put("parallel_tool_calls", true.into());
        put("previous_response_id", Value::Null);
        put("reasoning", json!({"effort": null, "summary": null}));
        put("store", false.into());
        put("temperature", Value::Null);
        put("text", json!({"format": {"type": "text"}}));
        put("tool_choice", "auto".into());
        put("tools", Value::Array(Vec::new()));
        put("top_p", Value::Null);
        put("truncation", "disabled".into());
        put("usage", usage.map_or(Value::Null, |u| serde_json::to_value(u).expect("usage serializes")));
        put("user", Value::Null);
        put("metadata", Value::Object(Map::new()));
        Value::Object(obj)
    }
}
