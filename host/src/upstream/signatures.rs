//! Recovery from Google's refusal of a request's thought signatures (pure;
//! no I/O).
//!
//! A coding agent replays the model turns of its conversation with the
//! `thoughtSignature`s Google gave them. A signature Google does not take
//! (from another session, another model family, a client that rewrote it,
//! or made up) is answered with a 400 (GOOGLE-2026.md §5) that would end the
//! agent's session; the dispatcher instead retries once on the same account
//! with [`without_signatures`], and never holds the 400 against the account:
//! it says nothing of the account.
//!
//! What the retry sends, by model family:
//! - Gemini: every signature becomes the documented bypass value
//!   [`SKIP_THOUGHT_SIGNATURE`], and the first `functionCall` of each model
//!   turn gets it when it has none (Gemini 3 requires one there).
//! - Any other model (Claude, `gpt-oss`): Google checks Claude's thinking
//!   signatures and refuses fabricated ones, the bypass value included, so
//!   the thinking (`thought: true` parts) and every signature go instead.
//!
//! Learned from CLIProxyAPI `internal/cache/signature_cache.go` (the bypass
//! value only for its `gemini` model group; PR #570: Claude thinking blocks
//! without a valid signature dropped; PR #3470: client signatures on any
//! Gemini part replaced by the bypass) and Antigravity-Manager
//! `proxy/signature_cache.rs` (signatures remembered per tool call, family
//! and session, never per account). grantpool keeps no signature cache:
//! the one retry is its whole recovery.

use bytes::Bytes;
use serde_json::{Map, Value};

pub use crate::translate::shared::SKIP_THOUGHT_SIGNATURE;

/// Google's words for a refused signature, lower-cased (GOOGLE-2026.md §5:
/// CLIProxyAPI PR #994, Antigravity-Manager PR #3342, #498, #139,
/// opencode-antigravity-auth #368).
const REFUSALS: &[&str] = &[
    "corrupted thought signature",
    "invalid thought signature",
    "thought signature is not valid",
    "invalid `signature` in `thinking` block",
    "missing a thought_signature",
];

/// Both spellings of the signature field (proto JSON takes either).
const SIGNATURE_KEYS: [&str; 2] = ["thoughtSignature", "thought_signature"];

/// Whether an upstream answer is Google refusing the request's thought
/// signatures: a 400 whose body says so in one of Google's known ways.
pub fn is_signature_refusal(status: u16, body: &[u8]) -> bool {
    if status != 400 {
        return false;
    }
    let lower = body.to_ascii_lowercase();
    REFUSALS.iter().any(|needle| memchr::memmem::find(&lower, needle.as_bytes()).is_some())
}

/// The Gemini request `request` (the `request` of the envelope) without
/// the signatures Google may have refused, for `model` (see the module
/// docs); `None` when nothing would change (or it is not a JSON object
/// with `contents`), so a retry would be pointless.
pub fn without_signatures(model: &str, request: &[u8]) -> Option<Bytes> {
    let mut value: Value = serde_json::from_slice(request).ok()?;
    let contents = value.as_object_mut()?.get_mut("contents")?.as_array_mut()?;
    let changed = if is_gemini(model) { bypass_signatures(contents) } else { drop_thinking(contents) };
    if !changed {
        return None;
    }
    serde_json::to_vec(&value).ok().map(Bytes::from)
}

/// Gemini models take the bypass value; others do not (CLIProxyAPI's
/// `gemini` group: a model name holding `gemini`).
fn is_gemini(model: &str) -> bool {
    model.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"gemini"))
}

fn parts_mut(content: &mut Value) -> Option<&mut Vec<Value>> {
    content.get_mut("parts")?.as_array_mut()
}

fn is_model(content: &Value) -> bool {
    content.get("role").and_then(Value::as_str) == Some("model")
}

fn is_call(part: &Map<String, Value>) -> bool {
    part.contains_key("functionCall") || part.contains_key("function_call")
}

fn is_thought(part: &Value) -> bool {
    part.get("thought").and_then(Value::as_bool) == Some(true)
}

/// Gemini: every signature replaced by the bypass value, one added to the
/// first call of each model turn that has none. Whether anything changed.
fn bypass_signatures(contents: &mut [Value]) -> bool {
    let mut changed = false;
    for content in contents.iter_mut() {
        let model_turn = is_model(content);
        let Some(parts) = parts_mut(content) else { continue };
        for part in parts.iter_mut().filter_map(Value::as_object_mut) {
            for key in SIGNATURE_KEYS {
                if let Some(sig) = part.get_mut(key).filter(|s| s.as_str() != Some(SKIP_THOUGHT_SIGNATURE)) {
                    *sig = SKIP_THOUGHT_SIGNATURE.into();
                    changed = true;
                }
            }
        }
        if !model_turn {
            continue;
        }
        let first_call = parts.iter_mut().filter_map(Value::as_object_mut).find(|p| is_call(p));
        if let Some(call) = first_call.filter(|p| SIGNATURE_KEYS.iter().all(|k| !p.contains_key(*k))) {
            call.insert("thoughtSignature".into(), SKIP_THOUGHT_SIGNATURE.into());
            changed = true;
        }
    }
    changed
}

/// Other models: the thought parts dropped, the signatures removed from
/// the other parts; a turn left empty goes, and the turns it separated are
/// joined (Google wants no empty turn, and roles that alternate). Whether
/// anything changed.
fn drop_thinking(contents: &mut Vec<Value>) -> bool {
    let mut changed = false;
    let mut emptied = false;
    for content in contents.iter_mut() {
        let Some(parts) = parts_mut(content) else { continue };
        let before = parts.len();
        parts.retain(|p| !is_thought(p));
        changed |= parts.len() != before;
        emptied |= parts.is_empty() && before > 0;
        for part in parts.iter_mut().filter_map(Value::as_object_mut) {
            for key in SIGNATURE_KEYS {
                changed |= part.remove(key).is_some();
            }
        }
    }
    if emptied {
        let old = std::mem::take(contents);
        for content in old {
            if content.get("parts").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                continue;
            }
            let role = content.get("role").cloned();
            match contents.last_mut() {
                Some(last) if last.get("role") == role.as_ref() && last.get("parts").is_some_and(Value::is_array) => {
                    let more = content.get("parts").and_then(Value::as_array).cloned().unwrap_or_default();
                    if let Some(parts) = parts_mut(last) {
                        parts.extend(more);
                    }
                }
                _ => contents.push(content),
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(model: &str, request: &Value) -> Option<Value> {
        without_signatures(model, &serde_json::to_vec(request).unwrap()).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn googles_signature_refusals_are_recognised() {
        let google = |m: &str| json!({"error": {"code": 400, "message": m, "status": "INVALID_ARGUMENT"}}).to_string();
        for message in [
            "Corrupted thought signature.",
            "Invalid thought signature.",
            "Unable to submit request because Thought signature is not valid..",
            "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:Bash` , position 32.",
        ] {
            assert!(is_signature_refusal(400, google(message).as_bytes()), "{message}");
        }
        // Anthropic's error, as a string inside Google's 400.
        let inner = json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": "messages.1.content.0: Invalid `signature` in `thinking` block"}});
        assert!(is_signature_refusal(400, google(&inner.to_string()).as_bytes()));
        // Other 400s, and the same words on another status, are not.
        assert!(!is_signature_refusal(400, google("Invalid JSON payload received. Unknown name \"foo\"").as_bytes()));
        assert!(!is_signature_refusal(400, google("messages.2.content.0.tool_result.tool_use_id: Field required").as_bytes()));
        assert!(!is_signature_refusal(429, google("Corrupted thought signature.").as_bytes()));
        assert!(!is_signature_refusal(500, google("Invalid thought signature.").as_bytes()));
        assert!(!is_signature_refusal(400, b""));
    }

    #[test]
    fn gemini_signatures_become_the_bypass_and_first_calls_get_one() {
        let req = json!({
            "contents": [
                {"role": "user", "parts": [{"text": "list"}]},
                {"role": "model", "parts": [
                    {"text": "Looking.", "thoughtSignature": "T1"},
                    {"functionCall": {"name": "ls", "args": {}}, "thoughtSignature": "forged"},
                    {"functionCall": {"name": "pwd", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "ls", "response": {}}}]},
                {"role": "model", "parts": [{"functionCall": {"name": "cat", "args": {}}}, {"functionCall": {"name": "wc", "args": {}}}]},
                {"role": "model", "parts": [{"function_call": {"name": "du", "args": {}}, "thought_signature": "s2"}]}
            ],
            "tools": [{"functionDeclarations": [{"name": "ls"}]}]
        });
        let out = run("gemini-3-pro-preview", &req).expect("changed");
        let c = &out["contents"];
        assert_eq!(c[0], req["contents"][0], "user turns untouched");
        assert_eq!(c[1]["parts"][0]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE, "a text part's too");
        assert_eq!(c[1]["parts"][1]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE);
        assert!(c[1]["parts"][2].get("thoughtSignature").is_none(), "only the first call of a turn needs one");
        assert_eq!(c[3]["parts"][0]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE, "a missing one is added");
        assert!(c[3]["parts"][1].get("thoughtSignature").is_none());
        assert_eq!(c[4]["parts"][0]["thought_signature"], SKIP_THOUGHT_SIGNATURE, "either spelling, kept as sent");
        assert!(c[4]["parts"][0].get("thoughtSignature").is_none());
        assert_eq!(out["tools"], req["tools"]);
        // Already the bypass everywhere: nothing to retry with.
        assert!(run("gemini-3-pro-preview", &out).is_none());
        // Nothing signed, no calls.
        assert!(run("gemini-pro-agent", &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})).is_none());
    }

    #[test]
    fn other_models_lose_thinking_and_signatures_and_never_get_the_bypass() {
        let req = json!({
            "contents": [
                {"role": "user", "parts": [{"text": "q"}]},
                {"role": "model", "parts": [
                    {"thought": true, "text": "hm", "thoughtSignature": "forged"},
                    {"functionCall": {"id": "toolu_1", "name": "f", "args": {}}, "thoughtSignature": SKIP_THOUGHT_SIGNATURE}]},
                {"role": "user", "parts": [{"functionResponse": {"id": "toolu_1", "name": "f", "response": {}}}]},
                {"role": "model", "parts": [{"text": "done", "thoughtSignature": "s"}, {"functionCall": {"name": "g", "args": {}}}]}
            ]
        });
        for model in ["claude-sonnet-4-6", "claude-opus-4-6-thinking", "gpt-oss-120b-medium"] {
            let out = run(model, &req).expect("changed");
            let text = out.to_string();
            assert!(!text.contains("thoughtSignature") && !text.contains("skip_thought"), "{model}: {text}");
            assert!(!text.contains("\"thought\""), "{model}: {text}");
            let c = &out["contents"];
            assert_eq!(c[1]["parts"], json!([{"functionCall": {"id": "toolu_1", "name": "f", "args": {}}}]));
            assert_eq!(c[3]["parts"][0], json!({"text": "done"}));
            assert_eq!(c.as_array().unwrap().len(), 4);
            assert!(run(model, &out).is_none(), "{model}: a second pass changes nothing");
        }
        // A turn of thinking alone goes, and the user turns around it join.
        let req = json!({"contents": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"thought": true, "text": "hm", "thoughtSignature": "x"}]},
            {"role": "user", "parts": [{"text": "b"}]}
        ]});
        let out = run("claude-sonnet-4-6", &req).unwrap();
        assert_eq!(out["contents"], json!([{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]));
        // Unsigned, thoughtless Claude requests: no retry.
        assert!(run("claude-sonnet-4-6", &json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "g", "args": {}}}]}]})).is_none());
    }

    #[test]
    fn not_a_request_is_left_alone() {
        assert!(without_signatures("gemini-3-flash", b"not json").is_none());
        assert!(without_signatures("gemini-3-flash", b"[]").is_none());
        assert!(without_signatures("claude-sonnet-4-6", b"{\"generationConfig\":{}}").is_none());
    }
}
