//! How an answer ended, as the client protocols report it: each protocol's
//! words for Gemini's finish ([`FinishWords`]), and what a stream keeps of
//! Gemini's chunks until its closing events, the finish and the usage
//! ([`Tally`]). Used by the answer side of [`anthropic`](super::anthropic),
//! [`openai_chat`](super::openai_chat) and
//! [`openai_responses`](super::openai_responses). Each keeps its own `usage`
//! type and its `from_gemini`: the counts differ on purpose (Anthropic's
//! input tokens leave out the cached ones, the OpenAI protocols' include
//! them; chat gives its details only when Gemini does).

use super::gemini::{FinishKind, GenerateContentResponse, UsageMetadata};

/// A protocol's words for how an answer ended.
pub(crate) struct FinishWords<T> {
    /// The model called tools (Gemini then reports `STOP`).
    pub(crate) tool_use: T,
    /// `maxOutputTokens` reached.
    pub(crate) max_tokens: T,
    /// Stopped or blocked by a content filter.
    pub(crate) filtered: T,
    /// A natural end, a stop sequence, or anything else.
    pub(crate) stop: T,
}

impl<T: Copy> FinishWords<T> {
    /// The word for a Gemini finish; tool calls win over `STOP` (Gemini
    /// reports `STOP` after a function call).
    pub(crate) fn of(&self, kind: Option<FinishKind>, tool_use: bool) -> T {
        match kind {
            _ if tool_use => self.tool_use,
            Some(FinishKind::MaxTokens) => self.max_tokens,
            Some(FinishKind::Filtered) => self.filtered,
            _ => self.stop,
        }
    }
}

/// What a stream translator keeps of Gemini's chunks besides their content:
/// the latest usage (Gemini's counts are cumulative), the finish, and
/// whether the stream has ended.
#[derive(Debug)]
pub(crate) struct Tally<U> {
    /// The usage of the latest chunk that had any.
    pub(crate) usage: U,
    /// The finish, once a chunk said it.
    pub(crate) finish: Option<FinishKind>,
    done: bool,
    /// The protocol's usage from Gemini's.
    usage_of: fn(Option<&UsageMetadata>) -> U,
}

impl<U: Default> Tally<U> {
    /// A tally for a stream not begun, with the protocol's usage from
    /// Gemini's (its `from_gemini`).
    pub(crate) fn new(usage_of: fn(Option<&UsageMetadata>) -> U) -> Self {
        Tally { usage: U::default(), finish: None, done: false, usage_of }
    }

    /// Takes in one chunk's usage and finish; `false` once the stream has
    /// ended (the chunk is then to be ignored).
    pub(crate) fn chunk(&mut self, chunk: &GenerateContentResponse) -> bool {
        if self.done {
            return false;
        }
        if let Some(usage) = &chunk.usage_metadata {
            self.usage = (self.usage_of)(Some(usage));
        }
        if let Some(kind) = FinishKind::of_response(chunk) {
            self.finish = Some(kind);
        }
        true
    }

    /// Whether a chunk has said the answer is complete (a `finishReason`,
    /// or a blocked prompt).
    pub(crate) fn saw_finish(&self) -> bool {
        self.finish.is_some()
    }

    /// Ends the stream; `false` when it had already ended (nothing more is
    /// to be sent).
    pub(crate) fn end(&mut self) -> bool {
        !std::mem::replace(&mut self.done, true)
    }
}
