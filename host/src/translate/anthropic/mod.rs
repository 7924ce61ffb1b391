//! Anthropic Messages ⇄ Gemini.
//!
//! [`parse_request`] turns a `/v1/messages` body into a Gemini request;
//! [`response_from_gemini`] and [`StreamTranslator`] turn Gemini's answer back
//! into a `message` object or the Messages streaming events.
//!
//! Choices a reader should know:
//! - Gemini thought summaries become `thinking` blocks (Gemini returns them
//!   only when asked: `thinking.type = "enabled"` sets `includeThoughts`).
//!   A `thoughtSignature` is carried in the thinking block's `signature`
//!   (the one on the thought part, or on the text/call part right after it;
//!   with no thinking block to carry it, it is dropped),
//!   prefixed with `grantpool:` so that signatures from elsewhere (a session
//!   begun on Anthropic's own API) are told apart and never sent to Gemini,
//!   which would refuse them. Replayed `thinking` blocks are not sent back as
//!   text (Gemini does not need it); their signature goes on the next part of
//!   the same turn, where Gemini expects it. A replayed tool call still
//!   without a signature gets
//!   [`SKIP_THOUGHT_SIGNATURE`](super::shared::SKIP_THOUGHT_SIGNATURE).
//! - `tool_result` becomes `functionResponse {name, response: {"content": text}}`
//!   (plus `"is_error": true` when set); images inside a result follow it as
//!   `inlineData` parts of the same turn.
//! - Images and documents must be base64 (or, for documents, plain text);
//!   this module does no I/O, so URL sources are refused with a 400.
//! - Gemini reports a stop sequence as a plain `STOP`, so `stop_reason` is
//!   `end_turn` then, never `stop_sequence`. Content-filter stops map to
//!   `refusal`.
//! - `web_search_*` server tools map to Gemini's `googleSearch` when the
//!   request declares no custom tools (Gemini cannot mix them), and are
//!   dropped otherwise ([`parse_request_with_search`] says so, for the
//!   log); other Anthropic-defined tools are refused. A grounded answer
//!   comes back as Anthropic's own web search does (see
//!   [`response_with_search`]): a `server_tool_use` block, a
//!   `web_search_tool_result` block with Gemini's sources, then the text
//!   with `web_search_result_location` citations, and
//!   `usage.server_tool_use.web_search_requests`.
//! - `redacted_thinking`, `server_tool_use` and `web_search_tool_result`
//!   blocks in the history are dropped.
//!
//! The files: `request` (the client's request → Gemini), `response`
//! (Gemini's answer → a `message` object; error bodies), `stream` (the
//! streamed answer), `message` (the `message` object's types and what
//! the two answers share) and `signature` (thinking-block signatures).

mod message;
mod request;
mod response;
mod signature;
mod stream;
#[cfg(test)]
mod tests;

pub use message::{Citation, ContentBlock, MessageResponse, ServerToolUsage, Usage, WebSearchResult};
pub use request::{parse_request, parse_request_with_search};
pub use response::{error_body, response_from_gemini, response_with_search};
pub use stream::StreamTranslator;

pub use super::shared::{ClientRequest, TranslateError};
pub use super::sse::SseEvent;
