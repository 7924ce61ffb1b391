//! The body of one generate call, as the account's profile sends it: the
//! profile's envelope around the Gemini request, and the changes the
//! profile's backend needs (pure; no I/O).
//!
//! - Antigravity: `{"project","model","userAgent":"antigravity",
//!   "requestType":"agent","requestId":"agent-<uuid>","request":{…,"sessionId"}}`,
//!   `safetySettings` left out; for Claude models the tool mode `VALIDATED`,
//!   thinking as a budget the model takes, `maxOutputTokens` within the
//!   model's limit, and tool schemas in the `parameters` form (CLIProxyAPI
//!   `antigravity_executor_request.go`, `internal/thinking/provider/antigravity`;
//!   Antigravity-Manager `proxy/mappers/claude/request.rs`).
//! - Gemini CLI: `{"model","project","user_prompt_id","request":{…,"session_id"}}`
//!   (gemini-cli `code_assist/converter.ts`).

use std::io::Write;
use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem::Finder;
use serde_json::{Map, Value};

use crate::profiles::{Envelope, Profile};
use crate::translate::schema::to_parameters;

/// Output limit of a Claude model when Google's list does not say
/// (CLIProxyAPI models.json: 64000 for the Antigravity Claude models).
const CLAUDE_MAX_OUTPUT: u64 = 64_000;
/// Smallest thinking budget Claude takes.
const CLAUDE_MIN_BUDGET: i64 = 1024;
/// Room kept for the answer above a thinking budget.
const ANSWER_ROOM: u64 = 8192;

/// What one generate call carries.
pub struct Outgoing<'a> {
    /// The account's profile.
    pub profile: &'static Profile,
    /// The upstream model.
    pub model: &'a str,
    /// The account's Code Assist project.
    pub project: &'a str,
    /// The conversation's id, when known: the envelope carries a stable
    /// form of it (else a fresh one); see `upstream_session`.
    pub session: Option<&'a str>,
    /// The Gemini request, serialised.
    pub request: &'a [u8],
    /// The model's output limit, when Google listed it.
    pub max_output_tokens: Option<u64>,
}

/// Claude models: served through Antigravity with Claude's rules.
pub fn is_claude(model: &str) -> bool {
    model.starts_with("claude")
}

/// Image models (`gemini-3.1-flash-image`, `gemini-3-pro-image`, …): their
/// envelope carries `requestType: "image_gen"` (CLIProxyAPI, Antigravity-Manager).
pub fn is_image_model(model: &str) -> bool {
    model.contains("-image")
}

/// The body of the call.
pub fn build(o: &Outgoing<'_>) -> Bytes {
    let shaped;
    let request = if needs_shaping(o) {
        match serde_json::from_slice::<Value>(o.request) {
            Ok(mut v) => {
                shape(o, &mut v);
                shaped = serde_json::to_vec(&v).unwrap_or_else(|_| o.request.to_vec());
                &shaped[..]
            }
            // Not JSON: Google answers it; nothing to shape.
            Err(_) => o.request,
        }
    } else {
        o.request
    };
    let session = upstream_session(o.profile.envelope, o.session);
    let mut w = BytesMut::with_capacity(request.len() + o.model.len() + o.project.len() + 160).writer();
    match o.profile.envelope {
        Envelope::Antigravity => {
            let _ = w.write_all(b"{\"project\":");
            let _ = serde_json::to_writer(&mut w, o.project);
            let _ = w.write_all(b",\"model\":");
            let _ = serde_json::to_writer(&mut w, o.model);
            if is_image_model(o.model) {
                // Image models go as Antigravity's own image requests
                // (CLIProxyAPI `geminiToAntigravity`; GOOGLE-2026 §2).
                let _ = write!(w, ",\"userAgent\":\"antigravity\",\"requestType\":\"image_gen\",\"requestId\":\"image_gen/{}/{}/12\",\"request\":", crate::util::now_ms(), request_uuid());
            } else {
                let _ = write!(w, ",\"userAgent\":\"antigravity\",\"requestType\":\"agent\",\"requestId\":\"agent-{}\",\"request\":", request_uuid());
            }
            splice_first(&mut w, request, "sessionId", &session);
        }
        Envelope::GeminiCli => {
            let _ = w.write_all(b"{\"model\":");
            let _ = serde_json::to_writer(&mut w, o.model);
            let _ = w.write_all(b",\"project\":");
            let _ = serde_json::to_writer(&mut w, o.project);
            let _ = write!(w, ",\"user_prompt_id\":\"{}\",\"request\":", request_uuid().simple());
            splice_first(&mut w, request, "session_id", &session);
        }
    }
    let _ = w.write_all(b"}");
    w.into_inner().freeze()
}

/// A fresh random id from the thread's generator (a getrandom system call
/// per request for `Uuid::new_v4` would be on the hot path).
fn request_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// The envelope's session id for the conversation `id`: the same for every
/// call of one conversation, different between conversations, and derived
/// (a SHA-256 of the id) so that no client text — a Claude Code
/// `metadata.user_id` may name an account — reaches Google verbatim. In the
/// form each backend's own client sends: Antigravity a negative decimal,
/// Gemini CLI a UUID. A fresh random one when the conversation is unknown.
fn upstream_session(envelope: Envelope, id: Option<&str>) -> String {
    let bytes: [u8; 16] = match id {
        Some(id) => {
            use sha2::Digest;
            let digest = sha2::Sha256::new().chain_update(b"grantpool session\0").chain_update(id.as_bytes()).finalize();
            digest[..16].try_into().unwrap_or_default()
        }
        None => rand::random(),
    };
    match envelope {
        Envelope::Antigravity => {
            let n = u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
            format!("-{}", n & 0x7fff_ffff_ffff_ffff)
        }
        Envelope::GeminiCli => uuid::Builder::from_random_bytes(bytes).into_uuid().to_string(),
    }
}

/// Writes the JSON object `object` with `"key": value` as its first member,
/// unless it already has that key (either spelling).
fn splice_first(w: &mut impl Write, object: &[u8], key: &str, value: &str) {
    let trimmed = object.trim_ascii_start();
    let has = top_level_key(object, &["sessionId", "session_id"]);
    let Some(rest) = trimmed.strip_prefix(b"{").filter(|_| !has) else {
        let _ = w.write_all(object);
        return;
    };
    let _ = write!(w, "{{\"{key}\":");
    let _ = serde_json::to_writer(&mut *w, value);
    if !rest.trim_ascii_start().starts_with(b"}") {
        let _ = w.write_all(b",");
    }
    let _ = w.write_all(rest);
}

/// Whether the JSON object `object` has one of `keys` as a member of its
/// own (not of a nested object, not inside a string): one pass, no parse.
fn top_level_key(object: &[u8], keys: &[&str]) -> bool {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < object.len() {
        match object[i] {
            b'"' => {
                let start = i + 1;
                let mut end = start;
                loop {
                    match memchr::memchr2(b'"', b'\\', &object[end..]) {
                        Some(j) if object[end + j] == b'\\' => end += j + 2,
                        Some(j) => {
                            end += j;
                            break;
                        }
                        None => return false,
                    }
                }
                if depth == 1 {
                    let after = object[end + 1..].trim_ascii_start();
                    if after.starts_with(b":") && keys.iter().any(|k| k.as_bytes() == &object[start..end]) {
                        return true;
                    }
                }
                i = end;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// Whether the request must be changed for this profile and model (a
/// parse and a rewrite; the common Gemini path skips both).
fn needs_shaping(o: &Outgoing<'_>) -> bool {
    // Searchers built once (building one costs more than a short search).
    static NEEDLES: LazyLock<[Finder<'static>; 5]> = LazyLock::new(|| {
        [
            b"\"parametersJsonSchema\"" as &[u8],
            b"\"parameters_json_schema\"",
            BYPASS_SIGNATURE.as_bytes(),
            b"\"safetySettings\"",
            b"\"safety_settings\"",
        ]
        .map(Finder::new)
    });
    let [schema, schema_snake, bypass, safety, safety_snake] = &*NEEDLES;
    let has = |needle: &Finder<'static>| needle.find(o.request).is_some();
    let antigravity = o.profile.envelope == Envelope::Antigravity;
    (antigravity && (is_claude(o.model) || has(schema) || has(schema_snake)))
        || (!o.model.contains("gemini") && has(bypass))
        || (o.profile.drops_safety_settings && (has(safety) || has(safety_snake)))
}

/// The changes of [`build`], on the parsed request.
fn shape(o: &Outgoing<'_>, request: &mut Value) {
    let Some(req) = request.as_object_mut() else { return };
    if o.profile.drops_safety_settings {
        req.remove("safetySettings");
        req.remove("safety_settings");
    }
    if !o.model.contains("gemini") {
        drop_bypass_signatures(req);
    }
    if o.profile.envelope == Envelope::Antigravity {
        let declares = parameters_form(req);
        if is_claude(o.model) {
            shape_claude(req, declares, o.max_output_tokens.unwrap_or(CLAUDE_MAX_OUTPUT));
        }
    }
}

/// Gemini's documented bypass signature, which the translators put on a
/// replayed tool call that has none.
use crate::translate::shared::SKIP_THOUGHT_SIGNATURE as BYPASS_SIGNATURE;

/// The bypass signature is Gemini's only: Google validates other models'
/// signatures and refuses this one (CLIProxyAPI `internal/cache/signature_cache.go`
/// accepts it for the gemini group only; lidge-jun/opencodex PR #2794 keeps
/// it off `gpt-oss`), so it is taken off every part of another model's request.
fn drop_bypass_signatures(req: &mut Map<String, Value>) {
    let Some(contents) = req.get_mut("contents").and_then(Value::as_array_mut) else { return };
    for content in contents.iter_mut() {
        let Some(parts) = content.get_mut("parts").and_then(Value::as_array_mut) else { continue };
        for part in parts.iter_mut().filter_map(Value::as_object_mut) {
            for key in ["thoughtSignature", "thought_signature"] {
                if part.get(key).and_then(Value::as_str) == Some(BYPASS_SIGNATURE) {
                    part.remove(key);
                }
            }
        }
    }
}

/// Tool schemas in the `parameters` form (the Antigravity backend's, as its
/// peers send them); whether the request declares functions.
fn parameters_form(req: &mut Map<String, Value>) -> bool {
    let mut declares = false;
    if let Some(tools) = req.get_mut("tools").and_then(Value::as_array_mut) {
        for tool in tools {
            let Some(tool) = tool.as_object_mut() else { continue };
            let key = if tool.contains_key("functionDeclarations") { "functionDeclarations" } else { "function_declarations" };
            let Some(decls) = tool.get_mut(key).and_then(Value::as_array_mut) else { continue };
            for d in decls.iter_mut().filter_map(Value::as_object_mut) {
                declares = true;
                let raw = d.remove("parametersJsonSchema").or_else(|| d.remove("parameters_json_schema"));
                if let Some(params) = raw.filter(|_| !d.contains_key("parameters")).and_then(to_parameters) {
                    d.insert("parameters".into(), params);
                }
            }
        }
    }
    declares
}

/// Claude through Antigravity: validated tool calls, a thinking budget
/// Claude takes, output within the model's limit.
fn shape_claude(req: &mut Map<String, Value>, declares: bool, limit: u64) {
    if declares {
        let config = req.entry("toolConfig").or_insert_with(|| Value::Object(Map::new()));
        if let Some(config) = config.as_object_mut() {
            let fcc = config.entry("functionCallingConfig").or_insert_with(|| Value::Object(Map::new()));
            if let Some(fcc) = fcc.as_object_mut() {
                let mode = fcc.get("mode").and_then(Value::as_str).unwrap_or("AUTO");
                if mode.eq_ignore_ascii_case("AUTO") {
                    fcc.insert("mode".into(), "VALIDATED".into());
                }
            }
        }
    }
    let gen = req.entry("generationConfig").or_insert_with(|| Value::Object(Map::new()));
    let Some(gen) = gen.as_object_mut() else { return };
    let mut max_out = gen.get("maxOutputTokens").and_then(Value::as_u64).unwrap_or(limit).min(limit);
    let mut drop_thinking = false;
    if let Some(thinking) = gen.get_mut("thinkingConfig").and_then(Value::as_object_mut) {
        let budget = match (thinking.get("thinkingBudget").and_then(Value::as_i64), thinking.remove("thinkingLevel")) {
            (Some(b), _) => Some(b),
            (None, Some(level)) => Some(level_budget(level.as_str().unwrap_or(""))),
            (None, None) => None,
        };
        match budget {
            Some(0) => drop_thinking = true,
            Some(b) => {
                // -1 (dynamic) and small budgets become what Claude takes.
                let mut b = if b < 0 { level_budget("medium") } else { b.max(CLAUDE_MIN_BUDGET) } as u64;
                if b >= max_out {
                    max_out = (b + ANSWER_ROOM).min(limit);
                }
                if b >= max_out {
                    b = max_out.saturating_sub(1);
                }
                thinking.insert("thinkingBudget".into(), b.into());
                thinking.entry("includeThoughts").or_insert(Value::Bool(true));
            }
            None => {}
        }
    }
    if drop_thinking {
        gen.remove("thinkingConfig");
    }
    gen.insert("maxOutputTokens".into(), max_out.into());
}

/// A thinking level (Gemini 3 / Anthropic effort words) as a Claude budget.
fn level_budget(level: &str) -> i64 {
    match level.to_ascii_lowercase().as_str() {
        "minimal" | "low" => 4096,
        "high" | "max" => 32_768,
        _ => 16_384,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::{ANTIGRAVITY, GEMINI_CLI};
    use serde_json::json;

    fn out(profile: &'static Profile, model: &str, request: &Value, session: Option<&str>) -> Value {
        let bytes = serde_json::to_vec(request).unwrap();
        let o = Outgoing { profile, model, project: "p-1", session, request: &bytes, max_output_tokens: None };
        serde_json::from_slice(&build(&o)).unwrap()
    }

    #[test]
    fn antigravity_envelope() {
        let req = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                         "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]});
        let v = out(&ANTIGRAVITY, "gemini-2.5-pro", &req, Some("conv-1"));
        assert_eq!(v["project"], "p-1");
        assert_eq!(v["model"], "gemini-2.5-pro");
        assert_eq!(v["userAgent"], "antigravity");
        assert_eq!(v["requestType"], "agent");
        assert!(v["requestId"].as_str().unwrap().starts_with("agent-"));
        assert_eq!(v["request"]["sessionId"], upstream_session(Envelope::Antigravity, Some("conv-1")));
        assert!(v["request"].get("safetySettings").is_none());
        assert_eq!(v["request"]["contents"][0]["parts"][0]["text"], "hi");
        // No session known: a fresh one.
        let v = out(&ANTIGRAVITY, "gemini-2.5-pro", &json!({}), None);
        assert!(v["request"]["sessionId"].as_str().unwrap().starts_with('-'));
        assert_eq!(v["request"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn image_models_go_as_image_requests() {
        let req = json!({"contents": [{"role": "user", "parts": [{"text": "a cat"}]}],
                         "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}}});
        let v = out(&ANTIGRAVITY, "gemini-3.1-flash-image", &req, None);
        assert_eq!(v["requestType"], "image_gen");
        let id = v["requestId"].as_str().unwrap();
        let parts: Vec<&str> = id.split('/').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!((parts[0], parts[3]), ("image_gen", "12"));
        assert!(parts[1].parse::<u64>().is_ok() && uuid::Uuid::parse_str(parts[2]).is_ok(), "{id}");
        assert_eq!(v["request"]["generationConfig"]["imageConfig"]["aspectRatio"], "16:9");
        assert!(v["request"]["sessionId"].is_string());
        assert_eq!(out(&ANTIGRAVITY, "gemini-3-flash", &req, None)["requestType"], "agent");
    }

    #[test]
    fn gemini_cli_envelope_keeps_the_request() {
        let req = json!({"contents": [], "safetySettings": [], "sessionId": "own"});
        let v = out(&GEMINI_CLI, "gemini-2.5-flash", &req, Some("conv-2"));
        assert_eq!(v["model"], "gemini-2.5-flash");
        assert!(!v["user_prompt_id"].as_str().unwrap().is_empty());
        assert!(v.get("userAgent").is_none());
        assert_eq!(v["request"]["sessionId"], "own", "a client's own session is kept, not doubled");
        assert!(v["request"].get("session_id").is_none());
        assert!(v["request"].get("safetySettings").is_some());
    }

    #[test]
    fn one_conversation_is_one_upstream_session() {
        let req = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
        let ag = |s| out(&ANTIGRAVITY, "gemini-2.5-pro", &req, s)["request"]["sessionId"].as_str().unwrap().to_string();
        let gc = |s| out(&GEMINI_CLI, "gemini-2.5-pro", &req, s)["request"]["session_id"].as_str().unwrap().to_string();
        // Stable per conversation, different between conversations.
        assert_eq!(ag(Some("conv-a")), ag(Some("conv-a")));
        assert_ne!(ag(Some("conv-a")), ag(Some("conv-b")));
        assert_eq!(gc(Some("conv-a")), gc(Some("conv-a")));
        assert_ne!(gc(Some("conv-a")), gc(Some("conv-b")));
        // Derived, never the client's text; in each backend's own form.
        let id = "user_abc_account_0d5e8c1a-0000-4000-8000-000000000001_session_s1";
        let (a, g) = (ag(Some(id)), gc(Some(id)));
        assert!(!a.contains("account") && !g.contains("account"));
        assert!(a.starts_with('-') && a[1..].parse::<u64>().is_ok(), "{a}");
        assert!(uuid::Uuid::parse_str(&g).is_ok(), "{g}");
        // Unknown conversation: a fresh one per call.
        assert_ne!(ag(None), ag(None));
        assert!(uuid::Uuid::parse_str(&gc(None)).is_ok());
    }

    #[test]
    fn only_a_session_of_the_request_itself_counts() {
        assert!(top_level_key(br#"{"a":1,"sessionId":"x"}"#, &["sessionId"]));
        assert!(!top_level_key(br#"{"tools":[{"d":{"sessionId":"x"}}],"t":"\"sessionId\":"}"#, &["sessionId"]));
        // A tool that takes a session_id is not the request's session.
        let req = json!({"tools": [{"functionDeclarations": [{"name": "write_stdin", "parametersJsonSchema": {"properties": {"session_id": {"type": "string"}}}}]}]});
        let v = out(&ANTIGRAVITY, "gemini-3-pro-preview", &req, Some("conv-9"));
        assert_eq!(v["request"]["sessionId"], upstream_session(Envelope::Antigravity, Some("conv-9")));
    }

    #[test]
    fn the_bypass_signature_stays_on_gemini_models_only() {
        let req = json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": BYPASS_SIGNATURE}]},
                                      {"role": "model", "parts": [{"functionCall": {"name": "g", "args": {}}, "thoughtSignature": "real"}]}]});
        for model in ["claude-sonnet-4-6", "gpt-oss-120b-medium"] {
            let v = out(&ANTIGRAVITY, model, &req, None);
            let contents = &v["request"]["contents"];
            assert!(contents[0]["parts"][0].get("thoughtSignature").is_none(), "{model}: {contents}");
            assert_eq!(contents[1]["parts"][0]["thoughtSignature"], "real", "{model}: a real signature stays");
        }
        let v = out(&ANTIGRAVITY, "gemini-3-pro-preview", &req, None);
        assert_eq!(v["request"]["contents"][0]["parts"][0]["thoughtSignature"], BYPASS_SIGNATURE);
    }

    #[test]
    fn claude_requests_are_shaped() {
        let req = json!({
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "tools": [{"functionDeclarations": [{"name": "Bash", "parametersJsonSchema": {
                "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "properties": {"command": {"type": "string"}, "args": {"description": "anything"}},
                "required": ["command"], "additionalProperties": false}}]}],
            "generationConfig": {"maxOutputTokens": 200000, "thinkingConfig": {"thinkingLevel": "high"}}
        });
        let v = out(&ANTIGRAVITY, "claude-sonnet-4-6", &req, None);
        let r = &v["request"];
        assert_eq!(r["toolConfig"]["functionCallingConfig"]["mode"], "VALIDATED");
        let d = &r["tools"][0]["functionDeclarations"][0];
        assert!(d.get("parametersJsonSchema").is_none());
        assert_eq!(d["parameters"]["properties"]["command"]["type"], "string");
        assert!(d["parameters"].get("additionalProperties").is_none());
        assert_eq!(r["generationConfig"]["maxOutputTokens"], 64000);
        assert_eq!(r["generationConfig"]["thinkingConfig"]["thinkingBudget"], 32768);
        assert!(r["generationConfig"]["thinkingConfig"].get("thinkingLevel").is_none());

        // A budget at the limit keeps room for the answer; zero turns thinking off.
        let req = json!({"generationConfig": {"maxOutputTokens": 4000, "thinkingConfig": {"thinkingBudget": 100000}}});
        let g = out(&ANTIGRAVITY, "claude-opus-4-6-thinking", &req, None)["request"]["generationConfig"].clone();
        assert_eq!(g["maxOutputTokens"], 64000);
        assert_eq!(g["thinkingConfig"]["thinkingBudget"], 63999);
        let req = json!({"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}});
        let g = out(&ANTIGRAVITY, "claude-sonnet-4-6", &req, None)["request"]["generationConfig"].clone();
        assert!(g.get("thinkingConfig").is_none());
        // A named tool choice stays as the client asked.
        let req = json!({"tools": [{"functionDeclarations": [{"name": "f"}]}],
                         "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}});
        let r = out(&ANTIGRAVITY, "claude-sonnet-4-6", &req, None)["request"].clone();
        assert_eq!(r["toolConfig"]["functionCallingConfig"]["mode"], "ANY");
    }
}
