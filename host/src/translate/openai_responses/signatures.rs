//! Gemini's thought signatures carried in reasoning items'
//! `encrypted_content`, bound to the item they go with (see the module
//! docs): sealed on the way out behind this proxy's mark ([`marked`]),
//! collected from a replayed input.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::super::signatures::{marked, unmarked};
use super::request_body::Item;

/// The output item a carried signature belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target<'a> {
    /// A function or custom tool call, by `call_id`.
    Call(&'a str),
    /// An assistant message's text, by message id.
    Message(&'a str),
}

/// `encrypted_content` carrying `signature` for `target`.
pub(super) fn seal(target: Target<'_>, signature: &str) -> String {
    let (kind, id) = match target {
        Target::Call(id) => ("call", id),
        Target::Message(id) => ("msg", id),
    };
    let mut out = marked(6 + id.len() * 4 / 3 + 4 + signature.len());
    out.push_str(kind);
    out.push(':');
    URL_SAFE_NO_PAD.encode_string(id, &mut out);
    out.push(':');
    out.push_str(signature);
    out
}

/// What `encrypted_content` this proxy made carries: whether it is for a
/// call (else a message), that item's id, and the signature. `None` for
/// anything else (OpenAI's own, or damaged).
pub(super) fn unseal(sealed: &str) -> Option<(bool, String, &str)> {
    let rest = unmarked(sealed)?;
    let (kind, rest) = rest.split_once(':')?;
    let (id, signature) = rest.split_once(':')?;
    let call = match kind {
        "call" => true,
        "msg" => false,
        _ => return None,
    };
    let id = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    (!id.is_empty() && !signature.is_empty()).then_some((call, id, signature))
}

/// The signatures the input's reasoning items carry, by the item they go on.
#[derive(Default)]
pub(super) struct Signatures {
    pub(super) calls: std::collections::HashMap<String, String>,
    pub(super) messages: std::collections::HashMap<String, String>,
}

impl Signatures {
    pub(super) fn collect(items: &[Item<'_>]) -> Self {
        let mut out = Signatures::default();
        let sealed = items
            .iter()
            .filter(|i| i.kind.as_deref() == Some("reasoning"))
            .filter_map(|i| i.encrypted_content.as_deref());
        for s in sealed {
            if let Some((call, id, sig)) = unseal(s) {
                let map = if call { &mut out.calls } else { &mut out.messages };
                map.entry(id).or_insert_with(|| sig.to_owned());
            }
        }
        out
    }
}
