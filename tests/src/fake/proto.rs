//! JSON → proto parsing of a `generateContent` body, as Google does it
//! before anything else: every field name is looked up in the message it
//! belongs to (camelCase and snake_case both accepted, as proto3 JSON
//! does), and an unknown one is refused with Google's literal
//! `Invalid JSON payload received. Unknown name "<field>" at '<path>':
//! Cannot find field.`, the path in proto (snake_case) names with indices
//! (facts §5.7: openclaw/openclaw#22222). A value of the wrong shape is
//! `Invalid value at '<path>' (<type>), <value>`.
//!
//! The known fields: the envelope and `request` per the contract
//! ("Top-level fields Google accepts", "`request` fields"); below them, the
//! public Gemini API messages (Content, Part, Tool, FunctionDeclaration,
//! ToolConfig, GenerationConfig, SafetySetting). Tool schemas are checked by
//! [`schema_check`](super::schema_check).

use serde_json::Value;

use super::errors::{invalid_value, unknown_name};
use super::schema_check;

/// camelCase of a snake_case name (`max_items` → `maxItems`); other names as is.
pub(crate) fn to_camel(name: &str) -> String {
    if !name.contains('_') {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut up = false;
    for (i, c) in name.chars().enumerate() {
        if c == '_' && i > 0 {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// snake_case of a camelCase name (`functionDeclarations` → `function_declarations`).
pub(crate) fn to_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `obj[camel]` under either spelling.
pub(crate) fn field<'a>(obj: &'a Value, camel: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(to_snake(camel)))
        .filter(|v| !v.is_null())
}

/// What a field holds.
#[derive(Clone, Copy)]
enum Kind {
    /// A message.
    Msg(&'static Msg),
    /// A repeated message.
    Rep(&'static Msg),
    /// A string.
    Str,
    /// Anything (a scalar, a map, `google.protobuf.Value`, …): not looked into.
    Any,
    /// A tool schema (`parameters`).
    Schema,
    /// `parametersJsonSchema`: any JSON Schema; an unknown field for Claude
    /// models (contract "Tool schemas").
    JsonSchema,
}

/// A message: its type URL (for `Invalid value`) and fields (camelCase).
struct Msg {
    type_url: &'static str,
    fields: &'static [(&'static str, Kind)],
}

macro_rules! t {
    ($name:literal) => {
        concat!("type.googleapis.com/google.cloud.aiplatform.master.", $name)
    };
}

static BLOB: Msg = Msg {
    type_url: t!("Blob"),
    fields: &[
        ("mimeType", Kind::Str),
        ("data", Kind::Str),
        ("displayName", Kind::Str),
    ],
};
static FILE_DATA: Msg = Msg {
    type_url: t!("FileData"),
    fields: &[
        ("mimeType", Kind::Str),
        ("fileUri", Kind::Str),
        ("displayName", Kind::Str),
    ],
};
static FUNCTION_CALL: Msg = Msg {
    type_url: t!("FunctionCall"),
    fields: &[("id", Kind::Str), ("name", Kind::Str), ("args", Kind::Any)],
};
static FUNCTION_RESPONSE: Msg = Msg {
    type_url: t!("FunctionResponse"),
    fields: &[
        ("id", Kind::Str),
        ("name", Kind::Str),
        ("response", Kind::Any),
        ("parts", Kind::Any),
        ("willContinue", Kind::Any),
        ("scheduling", Kind::Any),
    ],
};
static PART: Msg = Msg {
    type_url: t!("Part"),
    fields: &[
        ("text", Kind::Str),
        ("thought", Kind::Any),
        ("thoughtSignature", Kind::Str),
        ("inlineData", Kind::Msg(&BLOB)),
        ("fileData", Kind::Msg(&FILE_DATA)),
        ("functionCall", Kind::Msg(&FUNCTION_CALL)),
        ("functionResponse", Kind::Msg(&FUNCTION_RESPONSE)),
        ("executableCode", Kind::Any),
        ("codeExecutionResult", Kind::Any),
        ("videoMetadata", Kind::Any),
        ("partMetadata", Kind::Any),
        ("mediaResolution", Kind::Any),
    ],
};
static CONTENT: Msg = Msg {
    type_url: t!("Content"),
    fields: &[("role", Kind::Str), ("parts", Kind::Rep(&PART))],
};
static FUNCTION_DECLARATION: Msg = Msg {
    type_url: t!("FunctionDeclaration"),
    fields: &[
        ("name", Kind::Str),
        ("description", Kind::Str),
        ("parameters", Kind::Schema),
        ("parametersJsonSchema", Kind::JsonSchema),
        ("response", Kind::Any),
        ("responseJsonSchema", Kind::Any),
        ("behavior", Kind::Any),
    ],
};
static TOOL: Msg = Msg {
    type_url: t!("Tool"),
    fields: &[
        ("functionDeclarations", Kind::Rep(&FUNCTION_DECLARATION)),
        ("googleSearch", Kind::Any),
        ("googleSearchRetrieval", Kind::Any),
        ("codeExecution", Kind::Any),
        ("retrieval", Kind::Any),
        ("urlContext", Kind::Any),
        ("enterpriseWebSearch", Kind::Any),
        ("googleMaps", Kind::Any),
        ("computerUse", Kind::Any),
    ],
};
static FUNCTION_CALLING_CONFIG: Msg = Msg {
    type_url: t!("FunctionCallingConfig"),
    fields: &[
        ("mode", Kind::Str),
        ("allowedFunctionNames", Kind::Any),
        ("streamFunctionCallArguments", Kind::Any),
    ],
};
static TOOL_CONFIG: Msg = Msg {
    type_url: t!("ToolConfig"),
    fields: &[
        ("functionCallingConfig", Kind::Msg(&FUNCTION_CALLING_CONFIG)),
        ("retrievalConfig", Kind::Any),
        // Sent by Antigravity peers (AM wrapper.rs, facts §2.1 "toolConfig").
        ("includeServerSideToolInvocations", Kind::Any),
    ],
};
static THINKING_CONFIG: Msg = Msg {
    type_url: t!("GenerationConfig.ThinkingConfig"),
    fields: &[
        ("includeThoughts", Kind::Any),
        ("thinkingBudget", Kind::Any),
        ("thinkingLevel", Kind::Any),
    ],
};
static GENERATION_CONFIG: Msg = Msg {
    type_url: t!("GenerationConfig"),
    fields: &[
        ("temperature", Kind::Any),
        ("topP", Kind::Any),
        ("topK", Kind::Any),
        ("candidateCount", Kind::Any),
        ("maxOutputTokens", Kind::Any),
        ("stopSequences", Kind::Any),
        ("presencePenalty", Kind::Any),
        ("frequencyPenalty", Kind::Any),
        ("seed", Kind::Any),
        ("responseMimeType", Kind::Any),
        ("responseSchema", Kind::Any),
        ("responseJsonSchema", Kind::Any),
        ("responseLogprobs", Kind::Any),
        ("logprobs", Kind::Any),
        ("responseModalities", Kind::Any),
        ("mediaResolution", Kind::Any),
        ("speechConfig", Kind::Any),
        ("thinkingConfig", Kind::Msg(&THINKING_CONFIG)),
        ("imageConfig", Kind::Any),
        ("audioTimestamp", Kind::Any),
        ("routingConfig", Kind::Any),
        ("modelConfig", Kind::Any),
        ("enableAffectiveDialog", Kind::Any),
        ("enableEnhancedCivicAnswers", Kind::Any),
    ],
};
static SAFETY_SETTING: Msg = Msg {
    type_url: t!("SafetySetting"),
    fields: &[
        ("category", Kind::Any),
        ("threshold", Kind::Any),
        ("method", Kind::Any),
    ],
};
/// The Gemini request inside the envelope (contract "`request` fields").
static REQUEST: Msg = Msg {
    type_url: t!("GenerateContentRequest"),
    fields: &[
        ("contents", Kind::Rep(&CONTENT)),
        ("systemInstruction", Kind::Msg(&CONTENT)),
        ("cachedContent", Kind::Str),
        ("tools", Kind::Rep(&TOOL)),
        ("toolConfig", Kind::Msg(&TOOL_CONFIG)),
        ("labels", Kind::Any),
        ("safetySettings", Kind::Rep(&SAFETY_SETTING)),
        ("generationConfig", Kind::Msg(&GENERATION_CONFIG)),
        ("sessionId", Kind::Str),
    ],
};
/// The v1internal envelope (contract "Top-level fields Google accepts").
static ENVELOPE: Msg = Msg {
    type_url: "type.googleapis.com/google.internal.cloud.code.v1internal.GenerateContentRequest",
    fields: &[
        ("model", Kind::Str),
        ("project", Kind::Str),
        ("request", Kind::Msg(&REQUEST)),
        ("userAgent", Kind::Str),
        ("requestType", Kind::Str),
        ("requestId", Kind::Str),
        ("userPromptId", Kind::Str),
        ("enabledCreditTypes", Kind::Any),
    ],
};

/// What the walk needs to know about the call.
struct Ctx {
    claude: bool,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(v: &Value, msg: &Msg, path: &str, ctx: &Ctx, out: &mut Vec<(String, String)>) {
    let Some(obj) = v.as_object() else {
        out.push((path.to_owned(), invalid_value(path, msg.type_url, v)));
        return;
    };
    for (key, value) in obj {
        let camel = to_camel(key);
        let Some((_, kind)) = msg.fields.iter().find(|(n, _)| *n == camel) else {
            out.push((path.to_owned(), unknown_name(key, path)));
            continue;
        };
        if value.is_null() {
            continue;
        }
        let at = join(path, &to_snake(&camel));
        match *kind {
            Kind::Msg(m) => walk(value, m, &at, ctx, out),
            Kind::Rep(m) => match value.as_array() {
                Some(list) => {
                    for (i, item) in list.iter().enumerate() {
                        walk(item, m, &format!("{at}[{i}]"), ctx, out);
                    }
                }
                None => out.push((at.clone(), invalid_value(&at, m.type_url, value))),
            },
            Kind::Str => {
                if !value.is_string() {
                    out.push((at.clone(), invalid_value(&at, "TYPE_STRING", value)));
                }
            }
            Kind::Any => {}
            Kind::Schema => schema_check::parse_errors(value, &at, out),
            Kind::JsonSchema => {
                if ctx.claude {
                    out.push((path.to_owned(), unknown_name(key, path)));
                }
            }
        }
    }
}

/// The parse-time violations of a `generateContent` body for `model`, as
/// `(field, description)` pairs (empty when it parses).
pub(crate) fn parse_errors(body: &Value, model: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let ctx = Ctx {
        claude: super::catalogue::is_claude(model),
    };
    walk(body, &ENVELOPE, "", &ctx, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(body: &Value, model: &str) -> Vec<String> {
        parse_errors(body, model)
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }

    #[test]
    fn names() {
        assert_eq!(to_camel("user_prompt_id"), "userPromptId");
        assert_eq!(to_camel("userPromptId"), "userPromptId");
        assert_eq!(to_camel("_x"), "_x");
        assert_eq!(to_snake("functionDeclarations"), "function_declarations");
        assert_eq!(to_snake("model"), "model");
    }

    #[test]
    fn every_accepted_field_in_both_spellings() {
        let camel = json!({"model": "m", "project": "p", "userAgent": "antigravity", "requestType": "agent",
            "requestId": "agent-1", "userPromptId": "u", "enabledCreditTypes": ["GOOGLE_ONE_AI"],
            "request": {"contents": [{"role": "user", "parts": [{"text": "x", "thoughtSignature": "s"}]}],
                "systemInstruction": {"parts": [{"text": "s"}]}, "cachedContent": "c", "tools": [],
                "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}, "labels": {"a": "b"},
                "safetySettings": [{"category": "c", "threshold": "t"}],
                "generationConfig": {"maxOutputTokens": 5, "thinkingConfig": {"thinkingBudget": 1024}},
                "sessionId": "s"}});
        assert!(
            msgs(&camel, "gemini-2.5-pro").is_empty(),
            "{:?}",
            msgs(&camel, "gemini-2.5-pro")
        );
        let snake = json!({"model": "m", "project": "p", "user_prompt_id": "u", "enabled_credit_types": [],
            "request": {"contents": [], "system_instruction": {"parts": []}, "cached_content": "c",
                "tool_config": {"function_calling_config": {"mode": "AUTO"}}, "safety_settings": [],
                "generation_config": {"max_output_tokens": 5, "thinking_config": {"include_thoughts": true}},
                "session_id": "s"}});
        assert!(
            msgs(&snake, "gemini-2.5-pro").is_empty(),
            "{:?}",
            msgs(&snake, "gemini-2.5-pro")
        );
    }

    #[test]
    fn unknown_fields_with_paths() {
        let body = json!({"model": "m", "project": "p", "foo": 1, "request": {"bar": 1,
            "contents": [{"role": "user", "parts": [{"text": "x", "cache_control": {}}]}],
            "tools": [{"functionDeclarations": [{"name": "f", "strict": true}]}],
            "generationConfig": {"thinking_config": {"budget": 1}}}});
        assert_eq!(
            msgs(&body, "gemini-2.5-pro"),
            vec![
                "Invalid JSON payload received. Unknown name \"foo\": Cannot find field.",
                "Invalid JSON payload received. Unknown name \"bar\" at 'request': Cannot find field.",
                "Invalid JSON payload received. Unknown name \"cache_control\" at 'request.contents[0].parts[0]': Cannot find field.",
                "Invalid JSON payload received. Unknown name \"strict\" at 'request.tools[0].function_declarations[0]': Cannot find field.",
                "Invalid JSON payload received. Unknown name \"budget\" at 'request.generation_config.thinking_config': Cannot find field.",
            ]
        );
        let (field, _) = &parse_errors(&body, "m")[2];
        assert_eq!(field, "request.contents[0].parts[0]");
    }

    #[test]
    fn parameters_json_schema_is_unknown_for_claude_only() {
        let body = json!({"model": "m", "project": "p", "request": {"tools": [{"functionDeclarations": [
            {"name": "f", "parametersJsonSchema": {"type": "object", "additionalProperties": false}}]}]}});
        assert!(msgs(&body, "gemini-3-pro-preview").is_empty());
        assert_eq!(
            msgs(&body, "claude-sonnet-4-6"),
            vec!["Invalid JSON payload received. Unknown name \"parametersJsonSchema\" at 'request.tools[0].function_declarations[0]': Cannot find field."]
        );
    }

    #[test]
    fn wrong_shapes() {
        assert_eq!(
            msgs(&json!({"model": 3, "request": []}), "m"),
            vec![
                "Invalid value at 'model' (TYPE_STRING), 3",
                "Invalid value at 'request' (type.googleapis.com/google.cloud.aiplatform.master.GenerateContentRequest), []",
            ]
        );
        assert_eq!(msgs(&json!("nope"), "m").len(), 1);
        assert_eq!(
            msgs(&json!({"request": {"contents": {"role": "user"}}}), "m"),
            vec!["Invalid value at 'request.contents' (type.googleapis.com/google.cloud.aiplatform.master.Content), {\"role\":\"user\"}"]
        );
    }
}
