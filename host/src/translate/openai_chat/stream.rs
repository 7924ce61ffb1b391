//! The streamed answer: Gemini stream chunks as `chat.completion.chunk`
//! events ([`StreamTranslator`]).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::json;

use super::answer_fields::{image_markdown, tool_call_id, FINISH_REASONS};
use super::usage::Usage;
use crate::translate::gemini::GenerateContentResponse;
use crate::translate::outcome::Tally;
use crate::translate::shared::{args_json, new_id, unix_now};
use crate::translate::sse::SseEvent;

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChunkChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallDelta<'a>>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    name: &'a str,
    arguments: String,
}

/// Appends without copying the first piece: most chunks carry one text part.
fn append<'a>(slot: &mut Option<Cow<'a, str>>, text: &'a str) {
    match slot {
        None => *slot = Some(Cow::Borrowed(text)),
        Some(existing) => existing.to_mut().push_str(text),
    }
}

/// Turns a Gemini stream into `chat.completion.chunk` events, one Gemini
/// chunk at a time.
///
/// Each Gemini chunk with content gives one event; the first carries
/// `role: "assistant"`. Gemini sends each function call whole, so a tool call
/// is one delta with `index`, `id`, `type`, `function.name` and the complete
/// `function.arguments`. [`finish`](Self::finish) sends the closing chunk
/// (empty delta, `finish_reason`, `usage`) and `data: [DONE]`.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    tool_calls: u32,
    tally: Tally<Usage>,
}

impl StreamTranslator {
    /// A translator for one response; `model` is echoed in every chunk.
    pub fn new(model: &str) -> Self {
        StreamTranslator {
            id: new_id("chatcmpl-"),
            model: model.to_owned(),
            created: unix_now(),
            role_sent: false,
            tool_calls: 0,
            tally: Tally::new(Usage::from_gemini),
        }
    }

    fn event(
        &self,
        delta: Delta<'_>,
        finish_reason: Option<&'static str>,
        usage: Option<Usage>,
    ) -> SseEvent {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage,
        };
        SseEvent::data(serde_json::to_string(&chunk).expect("chunk serializes"))
    }

    fn role(&mut self) -> Option<&'static str> {
        (!std::mem::replace(&mut self.role_sent, true)).then_some("assistant")
    }

    /// Translates one Gemini stream chunk (zero or one event).
    pub fn push(&mut self, chunk: &GenerateContentResponse) -> Vec<SseEvent> {
        if !self.tally.chunk(chunk) {
            return Vec::new();
        }
        let mut delta = Delta::default();
        for part in chunk.parts() {
            if let Some(call) = &part.function_call {
                delta.tool_calls.push(ToolCallDelta {
                    index: self.tool_calls,
                    id: tool_call_id(call),
                    kind: "function",
                    function: FunctionDelta {
                        name: &call.name,
                        arguments: args_json(call),
                    },
                });
                self.tool_calls += 1;
            } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                if part.is_thought() {
                    append(&mut delta.reasoning_content, text);
                } else {
                    append(&mut delta.content, text);
                }
            } else if let Some(md) = image_markdown(part) {
                match &mut delta.content {
                    Some(c) => c.to_mut().push_str(&md),
                    None => delta.content = Some(Cow::Owned(md)),
                }
            }
        }
        if delta.content.is_none()
            && delta.reasoning_content.is_none()
            && delta.tool_calls.is_empty()
        {
            return Vec::new();
        }
        delta.role = self.role();
        vec![self.event(delta, None, None)]
    }

    /// Whether a Gemini chunk has said the answer is complete (a
    /// `finishReason`, or a blocked prompt). A stream that ends without one
    /// was cut short.
    pub fn saw_finish(&self) -> bool {
        self.tally.saw_finish()
    }

    /// Closing events: a chunk with `finish_reason` and `usage`, then
    /// `data: [DONE]`. Nothing after the stream already ended.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if !self.tally.end() {
            return Vec::new();
        }
        let delta = Delta {
            role: self.role(),
            ..Delta::default()
        };
        let reason = FINISH_REASONS.of(self.tally.finish, self.tool_calls > 0);
        vec![
            self.event(delta, Some(reason), Some(self.tally.usage)),
            SseEvent::data("[DONE]".to_owned()),
        ]
    }

    /// Ends the stream with an error the client can see:
    /// `data: {"error":{"message":…,"type":"upstream_error"}}` then `data: [DONE]`.
    pub fn error(&mut self, message: &str) -> Vec<SseEvent> {
        if !self.tally.end() {
            return Vec::new();
        }
        let body = json!({"error": {"message": message, "type": "upstream_error"}});
        vec![
            SseEvent::data(body.to_string()),
            SseEvent::data("[DONE]".to_owned()),
        ]
    }
}
