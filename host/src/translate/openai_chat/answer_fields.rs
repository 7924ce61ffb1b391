//! Fields the whole answer ([`super::response`]) and the stream
//! ([`super::stream`]) fill the same way: `finish_reason`, tool-call ids, and
//! images the model drew.

use std::borrow::Cow;

use crate::translate::gemini::{FunctionCall, Part};
use crate::translate::outcome::FinishWords;
use crate::translate::shared::call_id;

/// OpenAI `finish_reason` for a Gemini finish ([`FinishWords::of`]: tool
/// calls win over `STOP`).
pub(super) const FINISH_REASONS: FinishWords<&str> =
    FinishWords { tool_use: "tool_calls", max_tokens: "length", filtered: "content_filter", stop: "stop" };

pub(super) fn tool_call_id(call: &FunctionCall) -> Cow<'_, str> {
    call_id(call, "call_")
}

/// An image the model drew (an image model's `inlineData` part) as
/// Markdown with a `data:` URL, as the peers answer chat clients
/// (Antigravity-Manager `mappers/openai/response.rs`): a chat message has
/// no other place for it.
pub(super) fn image_markdown(part: &Part) -> Option<String> {
    let blob = part.inline_data.as_ref().filter(|b| !part.is_thought() && b.mime_type.starts_with("image/"))?;
    Some(format!("![image](data:{};base64,{})", blob.mime_type, blob.data))
}
