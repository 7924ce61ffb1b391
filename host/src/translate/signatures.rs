//! Gemini's thought signatures as the client protocols carry them: the
//! dummy a replayed call without one gets ([`SKIP_THOUGHT_SIGNATURE`],
//! [`sign_first_call`]: all three request translators), where a part's
//! signature is ([`part_signature`]), and the `grantpool:` mark on the
//! signatures handed to a client ([`marked`], [`unmarked`]): Anthropic
//! thinking blocks' `signature` ([`anthropic`](super::anthropic)) and
//! Responses reasoning items' `encrypted_content`
//! ([`openai_responses`](super::openai_responses)), each in its own format
//! after the mark (the signature alone; the item it is bound to, then the
//! signature).

use super::gemini::Part;

/// Dummy `thoughtSignature` that Google documents as telling Gemini to skip
/// signature validation. Put on replayed function calls the client could not
/// bring back a real signature for (OpenAI clients never can), since Gemini 3
/// refuses a history whose function calls lack one; older models ignore it.
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// Gives the first function call of a replayed model turn a signature when it
/// has none (see [`SKIP_THOUGHT_SIGNATURE`]).
pub(crate) fn sign_first_call(parts: &mut [Part]) {
    if let Some(first) = parts.iter_mut().find(|p| p.function_call.is_some()) {
        if first.thought_signature.is_none() {
            first.thought_signature = Some(SKIP_THOUGHT_SIGNATURE.to_owned());
        }
    }
}

/// The signature Gemini put on a part (none when empty).
pub(crate) fn part_signature(part: &Part) -> Option<&str> {
    part.thought_signature.as_deref().filter(|s| !s.is_empty())
}

/// Marks the signatures this proxy hands a client, so that those from
/// elsewhere (a session begun on the protocol's own API) are told apart and
/// never sent to Gemini, which would refuse them.
const MARK: &str = "grantpool:";

/// A string holding the mark, with room for `more` bytes to follow it.
pub(crate) fn marked(more: usize) -> String {
    let mut out = String::with_capacity(MARK.len() + more);
    out.push_str(MARK);
    out
}

/// What follows the mark; `None` for a string this proxy did not make.
pub(crate) fn unmarked(s: &str) -> Option<&str> {
    s.strip_prefix(MARK)
}
