//! The whole (non-streamed) answer: Gemini's response as a `chat.completion`
//! object ([`response_from_gemini`]).

use serde::Serialize;

use super::answer_fields::{image_markdown, tool_call_id, FINISH_REASONS};
use super::usage::Usage;
use crate::translate::gemini::{FinishKind, GenerateContentResponse};
use crate::translate::shared::{answer_id, args_json, unix_now};

/// An OpenAI `chat.completion` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model the client asked for.
    pub model: String,
    /// Exactly one choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
}

/// One choice of a [`ChatCompletion`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The assistant's message.
    pub message: AssistantMessage,
    /// Always `null`.
    pub logprobs: Option<()>,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
    pub finish_reason: &'static str,
}

/// The assistant message of a [`Choice`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The answer text; `null` when there is none (e.g. only tool calls).
    pub content: Option<String>,
    /// Gemini's thought summaries, when it returned any (non-standard field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Calls the model wants run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut>,
}

/// A tool call in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallOut {
    /// Gemini's call id when it gave one, else `call_…`.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Name and JSON-encoded arguments.
    pub function: FunctionOut,
}

/// The function of a [`ToolCallOut`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionOut {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON string.
    pub arguments: String,
}

/// Builds the `chat.completion` object for a (non-streamed) Gemini response.
/// `model` is echoed as the client sent it.
pub fn response_from_gemini(resp: &GenerateContentResponse, model: &str) -> ChatCompletion {
    let mut content: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for part in resp.parts() {
        if let Some(call) = &part.function_call {
            tool_calls.push(ToolCallOut {
                id: tool_call_id(call).into_owned(),
                kind: "function",
                function: FunctionOut {
                    name: call.name.clone(),
                    arguments: args_json(call),
                },
            });
        } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
            let target = if part.is_thought() {
                &mut reasoning
            } else {
                &mut content
            };
            target.get_or_insert_with(String::new).push_str(text);
        } else if let Some(md) = image_markdown(part) {
            content.get_or_insert_with(String::new).push_str(&md);
        }
    }
    let finish = FINISH_REASONS.of(FinishKind::of_response(resp), !tool_calls.is_empty());
    ChatCompletion {
        id: answer_id(resp, "chatcmpl-"),
        object: "chat.completion",
        created: unix_now(),
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish,
        }],
        usage: Usage::from_gemini(resp.usage_metadata.as_ref()),
    }
}
