//! Thinking-block signatures: Gemini's `thoughtSignature` behind this
//! proxy's mark ([`marked`]) for the client, and unwrapped from a replayed
//! block (see the module docs).

use super::super::signatures::{marked, unmarked};

/// A thinking block's `signature`: the mark, then Gemini's signature.
pub(super) fn wrap_signature(signature: &str) -> String {
    let mut out = marked(signature.len());
    out.push_str(signature);
    out
}

/// Gemini's signature back from a replayed thinking block; `None` for a
/// signature this proxy did not make.
pub(super) fn unwrap_signature(mut signature: String) -> Option<String> {
    let mark = signature.len() - unmarked(&signature).filter(|s| !s.is_empty())?.len();
    signature.drain(..mark);
    Some(signature)
}
