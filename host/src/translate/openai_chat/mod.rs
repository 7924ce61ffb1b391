//! OpenAI Chat Completions ⇄ Gemini.
//!
//! [`parse_request`] turns a `/v1/chat/completions` body into a Gemini request;
//! [`response_from_gemini`] and [`StreamTranslator`] turn Gemini's answer back
//! into a `chat.completion` object or `chat.completion.chunk` events.
//!
//! Choices a reader should know:
//! - System and developer messages, wherever they appear, all go to
//!   `systemInstruction` (Gemini has no mid-conversation system turn).
//! - Images must be `data:` URLs; this module does no I/O, so remote URLs are
//!   refused with a 400 that says so.
//! - Tool results become `functionResponse {name, response: {"content": …}}`;
//!   the name is found from the earlier assistant `tool_calls` with that id.
//! - Gemini thought summaries (`thought: true`) are never answer text: they go
//!   to the non-standard `message.reasoning_content` / `delta.reasoning_content`
//!   (as DeepSeek and others do), which standard clients ignore.
//! - OpenAI clients cannot carry Gemini's `thoughtSignature`, so replayed tool
//!   calls get [`SKIP_THOUGHT_SIGNATURE`](super::shared::SKIP_THOUGHT_SIGNATURE).
//! - Only `n = 1` is supported; only the first candidate is translated.
//! - The final stream chunk always carries `usage` (whether or not
//!   `stream_options.include_usage` was asked for).

mod answer_fields;
mod error;
mod request;
mod response;
mod stream;
mod usage;

pub use error::error_body;
pub use request::parse_request;
pub use response::{response_from_gemini, AssistantMessage, ChatCompletion, Choice, FunctionOut, ToolCallOut};
pub use stream::StreamTranslator;
pub use usage::{CompletionTokensDetails, PromptTokensDetails, Usage};

pub use super::shared::{ClientRequest, TranslateError};
pub use super::sse::SseEvent;

#[cfg(test)]
mod tests;
