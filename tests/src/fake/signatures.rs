//! Thought signatures and Claude's tool-use pairing.
//!
//! - Gemini 3 (contract "Thought signatures"; facts §5.8:
//!   manthanabc/paws#103, lbjlaq/Antigravity-Manager#2157): in the current
//!   turn, the first `functionCall` part of each model content needs a
//!   signature, and every `functionCall` part's signature must be one the
//!   fake issued or a documented bypass value
//!   (CPA:internal/signature/gemini_validation.go
//!   `GeminiSkipThoughtSignatureValidator`; the second is Google's
//!   documented dummy of <https://ai.google.dev/gemini-api/docs/thought-signatures>).
//!   `position <n>` is the 1-based index of the content in `contents`
//!   (every public report shows an even n for a model turn: inferred). A
//!   signature the fake did not issue gets Google's literal
//!   `Corrupted thought signature.` (GOOGLE-2026.md §5: CPA PR #994, #3470).
//! - Claude (facts §5.8: lbjlaq/Antigravity-Manager#276): a replayed
//!   `thought: true` part needs an issued signature (bypass values are not
//!   accepted: router-for-me/CLIProxyAPI#570), answered with Anthropic's
//!   error as a string (contract; GOOGLE-2026.md §5: AM #498); a signature
//!   on any other part (where a Gemini client puts it, the bypass value
//!   included) must be issued too, else Google's own
//!   `Corrupted thought signature.` (CPA `signature_cache.go` accepts the
//!   bypass for its gemini group only; that Google answers this text for
//!   Claude is inferred). Every functionResponse's `id` must be a
//!   functionCall `id` of the previous model content.

use std::collections::{HashSet, VecDeque};

use base64::Engine;
use serde_json::Value;

use super::proto::field;

/// Signatures Gemini 3 accepts without checking.
pub(crate) const BYPASS: [&str; 2] = [
    "skip_thought_signature_validator",
    "context_engineering_is_the_way_to_go",
];

/// How many issued signatures are remembered.
const KEEP: usize = 100_000;

/// The signatures the fake issued.
#[derive(Default)]
pub(crate) struct SignatureStore {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl SignatureStore {
    /// A new opaque base64 signature, remembered.
    pub(crate) fn issue(&mut self) -> String {
        let bytes: [u8; 32] = rand::random();
        let sig = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.set.insert(sig.clone());
        self.order.push_back(sig.clone());
        while self.order.len() > KEEP {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        sig
    }

    /// Whether the fake issued `sig`.
    pub(crate) fn issued(&self, sig: &str) -> bool {
        self.set.contains(sig)
    }
}

fn role(content: &Value) -> &str {
    content
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user")
}

fn parts(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn signature(part: &Value) -> Option<&str> {
    field(part, "thoughtSignature").and_then(Value::as_str)
}

/// Where the current turn starts: after the last non-model content with a
/// text part (0 when there is none).
pub(crate) fn current_turn_start(contents: &[Value]) -> usize {
    contents
        .iter()
        .rposition(|c| role(c) != "model" && parts(c).iter().any(|p| p.get("text").is_some()))
        .map_or(0, |i| i + 1)
}

/// Google's message for a signature it cannot verify (GOOGLE-2026.md §5).
pub(crate) const CORRUPTED: &str = "Corrupted thought signature.";

/// How a Claude request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClaudeRefusal {
    /// Google's own 400 `INVALID_ARGUMENT` with this message.
    Google(String),
    /// Anthropic's error with this message, inside Google's 400.
    Anthropic(String),
}

/// The 400 message for a Gemini 3 request whose current turn lacks a valid
/// signature, if any.
pub(crate) fn gemini3_violation(contents: &[Value], store: &SignatureStore) -> Option<String> {
    let start = current_turn_start(contents);
    for (i, content) in contents.iter().enumerate().skip(start) {
        if role(content) != "model" {
            continue;
        }
        let mut calls = parts(content)
            .iter()
            .filter(|p| field(p, "functionCall").is_some());
        let Some(part) = calls.next() else {
            continue;
        };
        if signature(part).is_none() {
            let name = field(part, "functionCall")
                .and_then(|fc| fc.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            return Some(format!(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                i + 1
            ));
        }
        let forged = std::iter::once(part)
            .chain(calls)
            .filter_map(signature)
            .any(|sig| !BYPASS.contains(&sig) && !store.issued(sig));
        if forged {
            return Some(CORRUPTED.to_owned());
        }
    }
    None
}

/// The refusal of a Claude request with a signature the fake did not issue
/// (Google's on a plain part, Anthropic's on a thinking part), or a tool
/// result without its tool use, if any.
pub(crate) fn claude_violation(
    contents: &[Value],
    store: &SignatureStore,
) -> Option<ClaudeRefusal> {
    let unissued = |p: &Value| signature(p).is_some_and(|s| !store.issued(s));
    let is_thought = |p: &Value| p.get("thought").and_then(Value::as_bool) == Some(true);
    if contents
        .iter()
        .flat_map(parts)
        .any(|p| !is_thought(p) && unissued(p))
    {
        return Some(ClaudeRefusal::Google(CORRUPTED.to_owned()));
    }
    claude_anthropic_violation(contents, store).map(ClaudeRefusal::Anthropic)
}

/// Anthropic's message for a thinking part whose signature the fake did not
/// issue, or a tool result without its tool use, if any.
fn claude_anthropic_violation(contents: &[Value], store: &SignatureStore) -> Option<String> {
    for (i, content) in contents.iter().enumerate() {
        for (j, part) in parts(content).iter().enumerate() {
            let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
            if thought && !signature(part).is_some_and(|s| store.issued(s)) {
                return Some(format!(
                    "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                ));
            }
        }
    }
    for (i, content) in contents.iter().enumerate() {
        let previous_ids: Vec<&str> = match i.checked_sub(1).map(|k| &contents[k]) {
            Some(prev) if role(prev) == "model" => parts(prev)
                .iter()
                .filter_map(|p| field(p, "functionCall"))
                .filter_map(|fc| fc.get("id").and_then(Value::as_str))
                .collect(),
            _ => Vec::new(),
        };
        for (j, part) in parts(content).iter().enumerate() {
            let Some(fr) = field(part, "functionResponse") else {
                continue;
            };
            match fr.get("id").and_then(Value::as_str) {
                // Anthropic's message for a tool_result without its id.
                None => {
                    return Some(format!(
                        "messages.{i}.content.{j}.tool_result.tool_use_id: Field required"
                    ))
                }
                Some(id) if !previous_ids.contains(&id) => {
                    return Some(format!(
                        "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    ))
                }
                Some(_) => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contents(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    #[test]
    fn gemini3_current_turn_needs_signatures() {
        let mut store = SignatureStore::default();
        let good = store.issue();
        assert!(store.issued(&good) && !store.issued("made-up"));
        let convo = |sig: Option<&str>| {
            let mut fc = json!({"functionCall": {"name": "list_files", "args": {}}});
            if let Some(s) = sig {
                fc["thoughtSignature"] = json!(s);
            }
            contents(json!([
                {"role": "user", "parts": [{"text": "list"}]},
                {"role": "model", "parts": [fc]},
                {"role": "user", "parts": [{"functionResponse": {"name": "list_files", "response": {}}}]}
            ]))
        };
        assert_eq!(
            gemini3_violation(&convo(None), &store).unwrap(),
            "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:list_files` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
        );
        assert_eq!(
            gemini3_violation(&convo(Some("made-up")), &store).unwrap(),
            "Corrupted thought signature."
        );
        assert!(gemini3_violation(&convo(Some(&good)), &store).is_none());
        for bypass in BYPASS {
            assert!(gemini3_violation(&convo(Some(bypass)), &store).is_none());
        }
        // snake_case spelling counts too.
        let mut c = convo(None);
        c[1]["parts"][0]["thought_signature"] = json!(good);
        assert!(gemini3_violation(&c, &store).is_none());
        // Earlier turns are not checked.
        let mut c = convo(None);
        c.push(json!({"role": "model", "parts": [{"text": "done"}]}));
        c.push(json!({"role": "user", "parts": [{"text": "next question"}]}));
        assert!(gemini3_violation(&c, &store).is_none());
        // Only the first functionCall of a content needs one.
        let c = contents(json!([
            {"role": "user", "parts": [{"text": "two"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "a", "args": {}}, "thoughtSignature": good},
                {"functionCall": {"name": "b", "args": {}}}]}
        ]));
        assert!(gemini3_violation(&c, &store).is_none());
        assert_eq!(current_turn_start(&c), 1);
        // A later call's signature, when it has one, must be valid too.
        let mut forged = c.clone();
        forged[1]["parts"][1]["thoughtSignature"] = json!("made-up");
        assert_eq!(
            gemini3_violation(&forged, &store).as_deref(),
            Some(CORRUPTED)
        );
    }

    #[test]
    fn claude_thinking_signatures_and_tool_ids() {
        let mut store = SignatureStore::default();
        let good = store.issue();
        let c = contents(json!([
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"thought": true, "text": "hm", "thoughtSignature": "skip_thought_signature_validator"}]}
        ]));
        assert_eq!(
            claude_violation(&c, &store).unwrap(),
            ClaudeRefusal::Anthropic(
                "messages.1.content.0: Invalid `signature` in `thinking` block".into()
            )
        );
        // The bypass value, or any unissued signature, on a plain part is
        // Google's own refusal; an issued one passes.
        for sig in [BYPASS[0], "Zm9yZ2Vk"] {
            let c = contents(json!([
                {"role": "user", "parts": [{"text": "q"}]},
                {"role": "model", "parts": [{"functionCall": {"id": "toolu_1", "name": "f", "args": {}}, "thoughtSignature": sig}]},
                {"role": "user", "parts": [{"functionResponse": {"id": "toolu_1", "name": "f", "response": {}}}]}
            ]));
            assert_eq!(
                claude_violation(&c, &store),
                Some(ClaudeRefusal::Google(CORRUPTED.into()))
            );
        }
        let c = contents(json!([
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"text": "a", "thoughtSignature": good}]}
        ]));
        assert!(claude_violation(&c, &store).is_none());
        let c = contents(json!([
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"thought": true, "text": "hm", "thoughtSignature": good},
                                        {"functionCall": {"id": "toolu_1", "name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"id": "toolu_1", "name": "f", "response": {}}}]}
        ]));
        assert!(claude_violation(&c, &store).is_none());
        let mut bad = c.clone();
        bad[2]["parts"][0]["functionResponse"]["id"] = json!("toolu_9");
        assert_eq!(
            claude_violation(&bad, &store).unwrap(),
            ClaudeRefusal::Anthropic("messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.".into())
        );
        let mut none = c.clone();
        none[2]["parts"][0]["functionResponse"]
            .as_object_mut()
            .unwrap()
            .remove("id");
        assert_eq!(
            claude_violation(&none, &store).unwrap(),
            ClaudeRefusal::Anthropic(
                "messages.2.content.0.tool_result.tool_use_id: Field required".into()
            )
        );
        // A result whose previous content is not the model's.
        let c = contents(json!([
            {"role": "user", "parts": [{"functionResponse": {"id": "x", "name": "f", "response": {}}}]}
        ]));
        assert!(matches!(claude_violation(&c, &store),
            Some(ClaudeRefusal::Anthropic(m)) if m.starts_with("messages.0.content.0: unexpected `tool_use_id`")));
    }
}
