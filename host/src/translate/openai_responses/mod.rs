//! OpenAI Responses ⇄ Gemini.
//!
//! [`parse_request`] turns a `/v1/responses` body into a Gemini request;
//! [`response_from_gemini`] and [`StreamTranslator`] turn Gemini's answer back
//! into a `response` object or the Responses streaming events, as Codex CLI
//! and the official SDKs read them.
//!
//! Choices a reader should know:
//! - This proxy keeps nothing between requests: `previous_response_id`,
//!   `conversation`, stored `prompt`s, `background` and `item_reference`
//!   items are refused with a 400 that says to send the whole conversation
//!   (what Codex does, with `store: false`). `store`, `metadata`, `include`,
//!   `truncation`, `service_tier`, `text.verbosity`, `parallel_tool_calls`
//!   and the like are accepted and ignored.
//! - `instructions`, and `system` / `developer` messages wherever they
//!   appear, all go to `systemInstruction` (Gemini has no mid-conversation
//!   system turn).
//! - Tools: `function` tools are declared as they are; the functions of a
//!   `namespace` tool as `<namespace>__<name>`; a `custom` (free-form) tool as
//!   a function taking one string, `input` (its grammar goes in the
//!   description), and its calls come back as `custom_tool_call` items.
//!   Names are made to fit Gemini's rules (`[A-Za-z0-9_-]`, at most 64
//!   characters, a hash suffix when cut). Undoing all that needs the
//!   [`ToolMap`] that [`parse_request_with_tools`] returns, given to
//!   [`StreamTranslator::with_tools`] / [`response_with_tools`]. `web_search`
//!   (and `web_search_preview`) becomes Gemini's `googleSearch` when no
//!   function is declared (Gemini cannot mix them; else it is left out and
//!   [`ToolMap::search_dropped`] says so); a grounded answer then gets a
//!   `web_search_call` item before its message and `url_citation`
//!   annotations on its text, streamed as OpenAI streams them. Every other
//!   built-in tool (`file_search`,
//!   `tool_search`, `code_interpreter`, `image_generation`, `local_shell`,
//!   `computer_use_preview`, `mcp`, …) is dropped and named by
//!   [`ToolMap::dropped`] / [`dropped_tools`].
//! - Gemini's `thoughtSignature`s travel in `reasoning` items'
//!   `encrypted_content`, one signature per item, bound to the item it came
//!   with: `grantpool:call:<base64url call_id>:<signature>` for a function or
//!   custom tool call, `grantpool:msg:<base64url message id>:<signature>` for
//!   the text of an assistant message (a signature on thoughts goes with the
//!   item after them). The reasoning item comes right before that item (or
//!   right after a message whose signature came on a later piece of its
//!   text, as Gemini 3 ends a streamed answer); since the binding names the
//!   item, replay does not depend on where the client puts it. A replayed
//!   model turn whose first call has no signature gets
//!   [`SKIP_THOUGHT_SIGNATURE`](super::shared::SKIP_THOUGHT_SIGNATURE);
//!   `encrypted_content` this proxy did not make (OpenAI's own) is ignored.
//! - Gemini thought summaries (asked for with `reasoning.summary`) become the
//!   reasoning item's `summary`; replayed summaries are not sent back (Gemini
//!   does not need them).
//! - Function results become `functionResponse {name, response: {"content":
//!   text}}`, the name found from the earlier call with that `call_id`;
//!   images in a result follow it as `inlineData` parts of the same turn.
//!   Items of OpenAI's hosted tools in a replayed history (`web_search_call`,
//!   `tool_search_*`, `computer_call*`, `mcp_*`, `compaction`, …) are
//!   skipped; an unknown item type is refused, naming the field.
//! - Images and files must be `data:` URLs (or base64 with a file name);
//!   this module does no I/O, so remote URLs and file ids are refused.
//! - A `MAX_TOKENS` finish ends the answer `incomplete` (`max_output_tokens`),
//!   a content-filter stop `incomplete` (`content_filter`); the stream then
//!   closes with `response.incomplete` instead of `response.completed`.

mod input;
mod output;
mod request;
mod request_body;
mod response;
mod signatures;
mod stream;
mod tools;

#[cfg(test)]
mod tests;

pub use super::shared::{ClientRequest, TranslateError};
pub use super::sse::SseEvent;
pub use request::{dropped_tools, parse_request, parse_request_with_tools};
pub use response::{
    error_body, response_from_gemini, response_with_tools, InputTokensDetails, OutputTokensDetails, Usage,
};
pub use stream::StreamTranslator;
pub use tools::ToolMap;
