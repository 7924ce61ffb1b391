//! The request settings the two OpenAI protocols word alike, as Gemini's:
//! the output format as JSON mode ([`OutputFormat`]), reasoning effort as a
//! thinking budget ([`effort_budget`]), `tool_choice` modes
//! ([`tool_mode`]) and the conversation id a body carries
//! ([`session_hint`]). Used by [`openai_chat`](super::openai_chat) and
//! [`openai_responses`](super::openai_responses); where the two differ (the
//! field's name and where its schema sits, the effort levels beyond `high`)
//! each says so itself.

use serde_json::{Map, Value};

use super::gemini::{GenerationConfig, ToolConfig};
use super::shared::TranslateError;

/// Where a protocol puts its output format: chat's `response_format`
/// (schema in `json_schema.schema`), Responses' `text.format` (schema
/// beside `type`).
pub(crate) struct OutputFormat {
    /// The field, for errors: `response_format`.
    pub(crate) field: &'static str,
    /// The shapes it takes, for errors.
    pub(crate) shapes: &'static str,
    /// The schema's field, for errors: `response_format.json_schema.schema`.
    pub(crate) schema_field: &'static str,
    /// Takes the schema out of a `json_schema` format (`None` when missing).
    pub(crate) take_schema: fn(&mut Map<String, Value>) -> Option<Value>,
}

impl OutputFormat {
    /// The format (`text`, `json_object`, or `json_schema` with its schema)
    /// as Gemini's JSON mode in `config`.
    pub(crate) fn apply(&self, format: Value, config: &mut GenerationConfig) -> Result<(), TranslateError> {
        let bad = || TranslateError::field(self.field, self.shapes);
        let Value::Object(mut format) = format else {
            return Err(bad());
        };
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => config.response_mime_type = Some("application/json".to_owned()),
            Some("json_schema") => {
                let schema = (self.take_schema)(&mut format)
                    .ok_or_else(|| TranslateError::field(self.schema_field, "is required"))?;
                config.response_mime_type = Some("application/json".to_owned());
                config.response_schema = Some(super::schema::sanitize_schema(schema));
            }
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// OpenAI's reasoning effort (`none` to `high`) as a thinking budget,
/// tokens; `None` for another word.
pub(crate) fn effort_budget(effort: &str) -> Option<i64> {
    Some(match effort {
        "none" => 0,
        "minimal" => 128,
        "low" => 1024,
        "medium" => 8192,
        "high" => 24576,
        _ => return None,
    })
}

/// A `tool_choice` given as a word (`auto`, `none`, `required`) as Gemini's
/// function-calling mode; `None` for another word.
pub(crate) fn tool_mode(mode: &str) -> Option<ToolConfig> {
    Some(match mode {
        "auto" => ToolConfig::mode("AUTO", None),
        "none" => ToolConfig::mode("NONE", None),
        "required" => ToolConfig::mode("ANY", None),
        _ => return None,
    })
}

/// The conversation id the body carries: `prompt_cache_key`, else `user`,
/// else `safety_identifier` (the first not empty).
pub(crate) fn session_hint(
    prompt_cache_key: Option<String>,
    user: Option<String>,
    safety_identifier: Option<String>,
) -> Option<String> {
    [prompt_cache_key, user, safety_identifier].into_iter().flatten().find(|s| !s.is_empty())
}
