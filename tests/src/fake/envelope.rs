//! The two upstream profiles' envelopes and headers (contract "Antigravity
//! envelope", "Gemini CLI envelope"), the User-Agent version gate for
//! Antigravity-only models, and the Claude generation limits.
//!
//! Sources: facts §2.1 (CPA:antigravity_executor_request.go
//! `geminiToAntigravity`: userAgent, requestType, requestId `agent-<uuid>`,
//! request.sessionId; CPA:internal/misc/antigravity_version.go and commit
//! a834917e8: models need an `antigravity/…` UA of at least 2.9.0; Gemini
//! 3.8 at least 2.11.0, decolua/9router PR #3732), facts
//! §2.2 (GC:code_assist/converter.ts: `user_prompt_id`,
//! `request.session_id`; GC:core/contentGenerator.ts: `GeminiCLI/<version>/…`).
//!
//! The envelope messages are the fake's own wording (Google's is not
//! public); each names the field.

use serde_json::Value;

use super::catalogue;
use super::clients::{is_antigravity, profile_of_client, Profile};
use super::proto::field;

/// Anthropic's minimum thinking budget (facts §2.1: CPA
/// internal/thinking/provider/antigravity/apply.go, "1024 for Claude").
pub(crate) const MIN_CLAUDE_THINKING_BUDGET: i64 = 1024;

/// The profile a call is held to: the built-in client's; for any other
/// client, the Antigravity one when the call looks like Antigravity (its
/// User-Agent or an Antigravity-only envelope field), else Gemini CLI.
pub(crate) fn profile_for(client_id: &str, body: &Value, user_agent: Option<&str>) -> Profile {
    if let Some(p) = profile_of_client(client_id) {
        return p;
    }
    let antigravity_ua = user_agent.is_some_and(is_antigravity_ua);
    let antigravity_fields = ["userAgent", "requestType", "requestId"]
        .iter()
        .any(|f| field(body, f).is_some());
    if antigravity_ua || antigravity_fields {
        Profile::Antigravity
    } else {
        Profile::GeminiCli
    }
}

/// Whether a User-Agent starts with `antigravity/` (any case).
pub(crate) fn is_antigravity_ua(ua: &str) -> bool {
    ua.get(..12)
        .is_some_and(|p| p.eq_ignore_ascii_case("antigravity/"))
}

/// The version an `antigravity/…` User-Agent names
/// (`antigravity/hub/2.9.1 darwin/arm64` → `[2, 9, 1]`).
pub(crate) fn antigravity_version(user_agent: &str) -> Option<Vec<u64>> {
    let first = user_agent.split_whitespace().next()?;
    let (product, rest) = first.split_once('/')?;
    if !product.eq_ignore_ascii_case("antigravity") {
        return None;
    }
    let version = rest
        .split('/')
        .find(|seg| seg.starts_with(|c: char| c.is_ascii_digit()))?;
    let nums: Option<Vec<u64>> = version
        .split('.')
        .map(|n| {
            let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    nums.filter(|v| !v.is_empty())
}

/// Whether a User-Agent is the Antigravity CLI's (`agy`):
/// `antigravity/cli/<ver> (aidev_client; os_type=…; …)` (CPA #4749,
/// Rahularya01/pi-antigravity PR #35).
pub(crate) fn is_agy_ua(ua: &str) -> bool {
    ua.split_whitespace()
        .next()
        .and_then(|first| first.split('/').nth(1))
        .is_some_and(|line| line.eq_ignore_ascii_case("cli"))
}

/// Whether `user_agent` is an Antigravity recent enough for `model`: the
/// hub (IDE) form `antigravity/hub/<ver> <os>/<arch>` or
/// `antigravity/hub/<ver> (os_type=…; …)` of at least the model's version
/// (2.9.0, CPA commit a834917e8; 2.11.0 for Gemini 3.8, decolua/9router
/// PR #3732); any `agy` 1.x (`antigravity/cli/<ver> (…)`), a product line
/// of its own numbering, is recent enough for every model.
pub(crate) fn recent_enough(model: &str, user_agent: &str) -> bool {
    let Some(v) = antigravity_version(user_agent) else {
        return false;
    };
    if is_agy_ua(user_agent) {
        return v[0] >= 1;
    }
    let mut padded = v.clone();
    padded.resize(3.max(v.len()), 0);
    padded[..3] >= catalogue::min_version(model)[..]
}

/// Whether a token of `client_id` with `user_agent` may use `model`:
/// family names that are not models, never; Antigravity-only models need
/// the Antigravity client and a recent enough `antigravity/…` User-Agent
/// ([`recent_enough`]); the others anyone.
pub(crate) fn may_use_model(model: &str, client_id: &str, user_agent: Option<&str>) -> bool {
    if catalogue::is_not_a_model(model) {
        return false;
    }
    if !catalogue::is_antigravity_only(model) {
        return true;
    }
    let recent = user_agent.is_some_and(|ua| recent_enough(model, ua));
    is_antigravity(client_id) && recent
}

fn got(v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

fn non_empty_string(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// What is wrong with the envelope for `profile`, if anything (a 400
/// INVALID_ARGUMENT message naming the field).
pub(crate) fn envelope_violation(
    profile: Profile,
    body: &Value,
    user_agent: Option<&str>,
) -> Option<String> {
    let request = body.get("request").unwrap_or(&Value::Null);
    match profile {
        Profile::Antigravity => {
            let ua = user_agent.unwrap_or("");
            if !is_antigravity_ua(ua) {
                return Some(format!(
                    "Invalid envelope: the User-Agent header must be antigravity/<version> <os>/<arch> for the Antigravity client, got {:?}.",
                    ua
                ));
            }
            let user_agent_field = field(body, "userAgent");
            if user_agent_field.and_then(Value::as_str) != Some("antigravity") {
                return Some(format!(
                    "Invalid envelope: userAgent must be \"antigravity\", got {}.",
                    got(user_agent_field)
                ));
            }
            // An image model's call is an `image_gen` one ([`super::images`]).
            let model = field(body, "model").and_then(Value::as_str).unwrap_or("");
            let (kind, id_prefix) = if super::images::is_image_model(model) {
                ("image_gen", "image_gen/")
            } else {
                ("agent", "agent-")
            };
            let request_type = field(body, "requestType");
            if request_type.and_then(Value::as_str) != Some(kind) {
                return Some(format!(
                    "Invalid envelope: requestType must be \"{kind}\", got {}.",
                    got(request_type)
                ));
            }
            let request_id = field(body, "requestId");
            if !request_id
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(id_prefix))
            {
                return Some(format!(
                    "Invalid envelope: requestId must start with \"{id_prefix}\", got {}.",
                    got(request_id)
                ));
            }
            let session = field(request, "sessionId");
            if !non_empty_string(session) {
                return Some(format!(
                    "Invalid envelope: request.sessionId must be a non-empty string, got {}.",
                    got(session)
                ));
            }
        }
        Profile::GeminiCli => {
            let ua = user_agent.unwrap_or("");
            if !ua.starts_with("GeminiCLI/") {
                return Some(format!(
                    "Invalid envelope: the User-Agent header must be GeminiCLI/<version>/<model> (<platform>; <arch>; terminal) for the Gemini CLI client, got {:?}.",
                    ua
                ));
            }
            let prompt = field(body, "userPromptId");
            if !non_empty_string(prompt) {
                return Some(format!(
                    "Invalid envelope: user_prompt_id must be a non-empty string, got {}.",
                    got(prompt)
                ));
            }
            let session = field(request, "sessionId");
            if !non_empty_string(session) {
                return Some(format!(
                    "Invalid envelope: request.session_id must be a non-empty string, got {}.",
                    got(session)
                ));
            }
        }
    }
    None
}

/// What a Claude request breaks, if anything.
#[derive(Debug, PartialEq)]
pub(crate) enum ClaudeViolation {
    /// A Google 400 INVALID_ARGUMENT with this message.
    Google(String),
    /// Anthropic's error (wrapped as a string in a Google 400).
    Anthropic(String),
}

/// The Claude rules of the Antigravity profile (contract: "claude-*
/// models"): `functionCallingConfig.mode = VALIDATED` with tools
/// (CPA antigravity_executor_request.go `buildRequest`), maxOutputTokens
/// within the model's limit, thinkingBudget ≥ 1024 and below
/// maxOutputTokens (AM wrapper.rs: "v1internal requires maxOutputTokens >
/// thinkingBudget"). The Anthropic texts are Anthropic's API messages as
/// they are commonly reported (unverified for Antigravity).
pub(crate) fn claude_violation(model: &str, request: &Value) -> Option<ClaudeViolation> {
    let declares_tools = field(request, "tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools.iter().any(|t| {
                field(t, "functionDeclarations")
                    .and_then(Value::as_array)
                    .is_some_and(|d| !d.is_empty())
            })
        });
    if declares_tools {
        let mode = field(request, "toolConfig")
            .and_then(|c| field(c, "functionCallingConfig"))
            .and_then(|c| c.get("mode"));
        if mode.and_then(Value::as_str) != Some("VALIDATED") {
            return Some(ClaudeViolation::Google(format!(
                "Invalid envelope: request.toolConfig.functionCallingConfig.mode must be \"VALIDATED\" for {model} with tools, got {}.",
                got(mode)
            )));
        }
    }
    let limit = catalogue::max_output_tokens(model);
    let gen = field(request, "generationConfig");
    let max_out = gen
        .and_then(|g| field(g, "maxOutputTokens"))
        .and_then(Value::as_i64);
    if let Some(n) = max_out {
        if n > limit as i64 {
            return Some(ClaudeViolation::Anthropic(format!(
                "max_tokens: {n} > {limit}, which is the maximum allowed number of output tokens for {model}"
            )));
        }
    }
    let budget = gen
        .and_then(|g| field(g, "thinkingConfig"))
        .and_then(|t| field(t, "thinkingBudget"))
        .and_then(Value::as_i64);
    if let Some(b) = budget {
        if b < MIN_CLAUDE_THINKING_BUDGET {
            return Some(ClaudeViolation::Anthropic(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                    .into(),
            ));
        }
        if b >= max_out.unwrap_or(limit as i64) {
            return Some(ClaudeViolation::Anthropic(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".into(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::clients::{ANTIGRAVITY_CLIENT_ID, GEMINI_CLI_CLIENT_ID};
    use serde_json::json;

    const AG_UA: &str = "antigravity/hub/2.9.1 darwin/arm64";

    #[test]
    fn versions_and_model_access() {
        assert_eq!(antigravity_version(AG_UA), Some(vec![2, 9, 1]));
        assert_eq!(
            antigravity_version("antigravity/1.21.9 darwin/arm64"),
            Some(vec![1, 21, 9])
        );
        assert_eq!(
            antigravity_version("antigravity/cli/1.0.3 linux/amd64"),
            Some(vec![1, 0, 3])
        );
        assert_eq!(
            antigravity_version("GeminiCLI/0.56.0/gemini-2.5-pro (linux; x64; terminal)"),
            None
        );
        assert_eq!(antigravity_version("antigravity/hub"), None);
        let ok = |model, client, ua| may_use_model(model, client, ua);
        assert!(ok("claude-sonnet-4-6", ANTIGRAVITY_CLIENT_ID, Some(AG_UA)));
        assert!(ok(
            "claude-sonnet-4-6",
            ANTIGRAVITY_CLIENT_ID,
            Some("antigravity/hub/2.9 darwin/arm64")
        ));
        assert!(ok(
            "claude-sonnet-4-6",
            ANTIGRAVITY_CLIENT_ID,
            Some("antigravity/hub/10.0.0 darwin/arm64")
        ));
        assert!(!ok(
            "claude-sonnet-4-6",
            ANTIGRAVITY_CLIENT_ID,
            Some("antigravity/hub/2.8.9 darwin/arm64")
        ));
        assert!(!ok(
            "claude-sonnet-4-6",
            ANTIGRAVITY_CLIENT_ID,
            Some("antigravity/1.21.9 darwin/arm64")
        ));
        assert!(!ok("claude-sonnet-4-6", ANTIGRAVITY_CLIENT_ID, None));
        assert!(!ok("claude-sonnet-4-6", GEMINI_CLI_CLIENT_ID, Some(AG_UA)));
        assert!(!ok("gemini-pro-agent", "other-client", Some(AG_UA)));
        assert!(ok("gemini-2.5-pro", GEMINI_CLI_CLIENT_ID, None));
    }

    #[test]
    fn gemini_38_needs_2_11_and_agy_is_recent() {
        let ok = |model, ua| may_use_model(model, ANTIGRAVITY_CLIENT_ID, Some(ua));
        let m = "gemini-3.8-flash-high";
        assert!(ok(m, "antigravity/hub/2.13.0 darwin/arm64"));
        assert!(ok(m, "antigravity/hub/2.11.0 darwin/arm64"));
        assert!(ok(m, "antigravity/hub/2.11 linux/amd64"));
        assert!(!ok(m, "antigravity/hub/2.10.9 darwin/arm64"));
        assert!(!ok(m, AG_UA));
        assert!(!ok(m, "antigravity/hub/2.1.1 darwin/arm64"));
        // The decompiled hub form (oh-my-pi PR #8791).
        let hub = "antigravity/hub/2.12.2 (os_type=darwin; arch=arm64; aidev_client; cl=963137146; auth_method=oauth)";
        assert_eq!(antigravity_version(hub), Some(vec![2, 12, 2]));
        assert!(ok(m, hub));
        assert!(!ok(
            m,
            "antigravity/hub/2.8.1 (os_type=darwin; arch=arm64; aidev_client; cl=963137146; auth_method=oauth)"
        ));
        // agy (CPA #4749; Rahularya01/pi-antigravity PR #35): every model.
        for agy in [
            "antigravity/cli/1.1.8 (aidev_client; os_type=darwin; arch=arm64; auth_method=consumer)",
            "antigravity/cli/1.1.23 (aidev_client; os_type=linux; arch=amd64; cl=974125021; auth_method=consumer)",
            "antigravity/cli/1.2.2 linux/amd64",
        ] {
            assert!(is_agy_ua(agy));
            assert!(ok(m, agy), "{agy}");
            assert!(ok("claude-sonnet-4-6", agy), "{agy}");
        }
        assert!(!is_agy_ua(AG_UA));
        assert!(!may_use_model(
            m,
            GEMINI_CLI_CLIENT_ID,
            Some("antigravity/hub/2.13.0 darwin/arm64")
        ));
        // Family names are not models, for anyone.
        for bare in ["gemini-3.8-flash", "gemini-3.7-flash"] {
            assert!(!ok(bare, "antigravity/hub/2.13.0 darwin/arm64"), "{bare}");
        }
        assert!(ok("gemini-3.7-flash-high", AG_UA));
        assert!(ok("gemini-3.1-flash-lite", AG_UA));
    }

    fn antigravity() -> Value {
        json!({"project": "p", "model": "gemini-2.5-pro", "userAgent": "antigravity", "requestType": "agent",
               "requestId": "agent-1234", "request": {"contents": [], "sessionId": "s-1"}})
    }

    fn gemini_cli() -> Value {
        json!({"model": "gemini-2.5-pro", "project": "p", "user_prompt_id": "s########1",
               "request": {"contents": [], "session_id": "s"}})
    }

    #[test]
    fn antigravity_envelope() {
        let check = |b: &Value, ua| envelope_violation(Profile::Antigravity, b, ua);
        assert_eq!(check(&antigravity(), Some(AG_UA)), None);
        assert_eq!(
            check(&antigravity(), Some("reqwest/0.12")).unwrap(),
            "Invalid envelope: the User-Agent header must be antigravity/<version> <os>/<arch> for the Antigravity client, got \"reqwest/0.12\"."
        );
        let mut b = antigravity();
        b["userAgent"] = json!("jetski");
        assert_eq!(
            check(&b, Some(AG_UA)).unwrap(),
            "Invalid envelope: userAgent must be \"antigravity\", got \"jetski\"."
        );
        let mut b = antigravity();
        b.as_object_mut().unwrap().remove("requestType");
        assert_eq!(
            check(&b, Some(AG_UA)).unwrap(),
            "Invalid envelope: requestType must be \"agent\", got nothing."
        );
        let mut b = antigravity();
        b["requestId"] = json!("agent/123/abc");
        assert_eq!(
            check(&b, Some(AG_UA)).unwrap(),
            "Invalid envelope: requestId must start with \"agent-\", got \"agent/123/abc\"."
        );
        let mut b = antigravity();
        b["request"]["sessionId"] = json!("");
        assert_eq!(
            check(&b, Some(AG_UA)).unwrap(),
            "Invalid envelope: request.sessionId must be a non-empty string, got \"\"."
        );
        let mut b = antigravity();
        b["request"].as_object_mut().unwrap().remove("sessionId");
        b["request"]["session_id"] = json!("s");
        assert_eq!(check(&b, Some(AG_UA)), None, "snake_case is the same field");
    }

    #[test]
    fn gemini_cli_envelope() {
        let ua = "GeminiCLI/0.56.0/gemini-2.5-pro (linux; x64; terminal)";
        let check = |b: &Value, ua| envelope_violation(Profile::GeminiCli, b, ua);
        assert_eq!(check(&gemini_cli(), Some(ua)), None);
        assert!(check(&gemini_cli(), Some(AG_UA))
            .unwrap()
            .contains("GeminiCLI/"));
        let mut b = gemini_cli();
        b.as_object_mut().unwrap().remove("user_prompt_id");
        assert_eq!(
            check(&b, Some(ua)).unwrap(),
            "Invalid envelope: user_prompt_id must be a non-empty string, got nothing."
        );
        b["userPromptId"] = json!("x");
        assert_eq!(check(&b, Some(ua)), None);
        let mut b = gemini_cli();
        b["request"]["session_id"] = json!(7);
        assert_eq!(
            check(&b, Some(ua)).unwrap(),
            "Invalid envelope: request.session_id must be a non-empty string, got 7."
        );
    }

    #[test]
    fn profiles() {
        let plain = json!({"model": "m", "project": "p", "request": {}});
        assert_eq!(
            profile_for(ANTIGRAVITY_CLIENT_ID, &plain, None),
            Profile::Antigravity
        );
        assert_eq!(
            profile_for(GEMINI_CLI_CLIENT_ID, &antigravity(), Some(AG_UA)),
            Profile::GeminiCli
        );
        assert_eq!(profile_for("test-client", &plain, None), Profile::GeminiCli);
        assert_eq!(
            profile_for("test-client", &plain, Some(AG_UA)),
            Profile::Antigravity
        );
        assert_eq!(
            profile_for("test-client", &antigravity(), None),
            Profile::Antigravity
        );
    }

    #[test]
    fn claude_rules() {
        let m = "claude-sonnet-4-6";
        let tools = json!([{"functionDeclarations": [{"name": "f"}]}]);
        assert_eq!(claude_violation(m, &json!({"contents": []})), None);
        assert_eq!(
            claude_violation(m, &json!({"tools": tools})),
            Some(ClaudeViolation::Google("Invalid envelope: request.toolConfig.functionCallingConfig.mode must be \"VALIDATED\" for claude-sonnet-4-6 with tools, got nothing.".into()))
        );
        assert_eq!(
            claude_violation(
                m,
                &json!({"tools": tools, "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}})
            ),
            None
        );
        assert_eq!(
            claude_violation(m, &json!({"generationConfig": {"maxOutputTokens": 128000}})),
            Some(ClaudeViolation::Anthropic("max_tokens: 128000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-6".into()))
        );
        assert_eq!(
            claude_violation(
                m,
                &json!({"generationConfig": {"maxOutputTokens": 8000, "thinkingConfig": {"thinkingBudget": 512}}})
            ),
            Some(ClaudeViolation::Anthropic(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                    .into()
            ))
        );
        assert!(matches!(
            claude_violation(m, &json!({"generationConfig": {"maxOutputTokens": 8000, "thinkingConfig": {"thinkingBudget": 8000}}})),
            Some(ClaudeViolation::Anthropic(s)) if s.starts_with("`max_tokens` must be greater than `thinking.budget_tokens`.")
        ));
        assert_eq!(
            claude_violation(
                m,
                &json!({"generation_config": {"max_output_tokens": 8000, "thinking_config": {"thinking_budget": 4096}}})
            ),
            None
        );
    }
}
