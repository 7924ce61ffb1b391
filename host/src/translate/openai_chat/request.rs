//! The client's request: a `/v1/chat/completions` body parsed and translated
//! into a Gemini request ([`parse_request`]), with errors that name the
//! offending field.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::translate::diagnose::{blame, read, Probe};
use crate::translate::gemini::{self, Blob, GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig};
use crate::translate::openai_settings::{self, effort_budget, tool_mode, OutputFormat};
use crate::translate::schema::function_declaration;
use crate::translate::shared::{
    blob_from_data_url, call_part, for_each_text, function_tools, gemini_request, non_empty, object_arguments, required,
    result_part, At, ClientRequest, ContentsBuilder, TextOr, TranslateError,
};
use crate::translate::signatures::sign_first_call;

// Every field is optional for serde so that a type error can be pinned to one
// key (see `diagnose`); required fields are checked while translating.
#[derive(Deserialize)]
struct ChatRequest<'a> {
    model: Option<String>,
    #[serde(borrow)]
    messages: Option<Vec<ChatMessage<'a>>>,
    stream: Option<bool>,
    user: Option<String>,
    /// OpenAI's successor of `user`; with `user` and `prompt_cache_key`, a
    /// conversation id when no header names one.
    safety_identifier: Option<String>,
    prompt_cache_key: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    #[serde(borrow)]
    stop: Option<TextOr<'a, String>>,
    n: Option<u32>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    seed: Option<i64>,
    #[serde(borrow)]
    tools: Option<Vec<ChatTool<'a>>>,
    /// Legacy (pre-`tools`) function declarations.
    functions: Option<Vec<FunctionDef>>,
    tool_choice: Option<Value>,
    response_format: Option<Value>,
    #[serde(borrow)]
    reasoning_effort: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    role: Option<Role>,
    #[serde(borrow)]
    content: Option<TextOr<'a, ContentPart<'a>>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow)]
    tool_call_id: Option<Cow<'a, str>>,
    /// Legacy `function` role: the function's name.
    name: Option<String>,
    /// Legacy assistant function call.
    #[serde(borrow)]
    function_call: Option<FunctionCallIn<'a>>,
}

#[derive(Deserialize)]
struct ContentPart<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<ImageUrl>,
    input_audio: Option<InputAudio>,
    file: Option<FileIn>,
}

#[derive(Deserialize)]
struct ImageUrl {
    url: Option<String>,
}

#[derive(Deserialize)]
struct InputAudio {
    data: Option<String>,
    format: Option<String>,
}

#[derive(Deserialize)]
struct FileIn {
    file_data: Option<String>,
    file_id: Option<String>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    id: Option<String>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<FunctionCallIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionCallIn<'a> {
    name: Option<String>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChatTool<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    function: Option<FunctionDef>,
}

#[derive(Deserialize)]
struct FunctionDef {
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
}

/// Translates an OpenAI Chat Completions request body into Gemini.
///
/// Errors name the offending field, e.g.
/// ``invalid request: `messages[1].tool_call_id` is required``.
pub fn parse_request(body: &[u8]) -> Result<ClientRequest, TranslateError> {
    translate(read::<ChatRequest>(body, diagnose)?)
}

/// Slow path, only after typed parsing failed: find the field to blame.
fn diagnose(body: &[u8], err: serde_json::Error) -> TranslateError {
    let part = Probe::leaf(|v| ContentPart::deserialize(v).err());
    let call_fn = Probe::leaf(|v| FunctionCallIn::deserialize(v).err());
    let call = Probe { check: |v| ToolCall::deserialize(v).err(), children: &[("function", &call_fn)] };
    let message = Probe {
        check: |v| ChatMessage::deserialize(v).err(),
        children: &[("content", &part), ("tool_calls", &call), ("function_call", &call_fn)],
    };
    let function = Probe::leaf(|v| FunctionDef::deserialize(v).err());
    let tool = Probe { check: |v| ChatTool::deserialize(v).err(), children: &[("function", &function)] };
    let root = Probe {
        check: |v| ChatRequest::deserialize(v).err(),
        children: &[("messages", &message), ("tools", &tool), ("functions", &function)],
    };
    blame(body, err, &root)
}

fn translate(req: ChatRequest<'_>) -> Result<ClientRequest, TranslateError> {
    let model = non_empty(req.model, "model")?;
    let messages = required(req.messages, "messages")?;
    if req.n.is_some_and(|n| n != 1) {
        return Err(TranslateError::field(
            "n",
            "must be 1: this proxy returns a single choice",
        ));
    }

    let mut system: Vec<Part> = Vec::new();
    let mut contents = ContentsBuilder::default();
    for (i, msg) in messages.into_iter().enumerate() {
        let path = At::root("messages").index(i);
        let role = required(msg.role, path.key("role"))?;
        match role {
            Role::System | Role::Developer => {
                let content = required(msg.content, path.key("content"))?;
                for_each_text(content, &path, part_text, |text| system.push(Part::text(text)))?;
            }
            Role::User => {
                let content = required(msg.content, path.key("content"))?;
                match content {
                    TextOr::Text(text) => push_text(&mut contents, "user", text),
                    TextOr::Items(parts) => {
                        for (j, part) in parts.into_iter().enumerate() {
                            if let Some(part) = user_part(part, &path.key("content").index(j))? {
                                contents.push("user", part);
                            }
                        }
                    }
                }
            }
            Role::Assistant => {
                let mut parts = Vec::new();
                if let Some(content) = msg.content {
                    for_each_text(content, &path, part_text, |text| parts.push(Part::text(text)))?;
                }
                let calls = msg.tool_calls.unwrap_or_default();
                for (j, call) in calls.into_iter().enumerate() {
                    let call_path = path.key("tool_calls").index(j);
                    if call.kind.as_deref().is_some_and(|k| k != "function") {
                        return Err(TranslateError::field(
                            call_path.key("type"),
                            "must be \"function\"",
                        ));
                    }
                    let function = required(call.function, call_path.key("function"))?;
                    parts.push(function_call_part(
                        function,
                        call.id,
                        &call_path.key("function"),
                    )?);
                }
                if let Some(function) = msg.function_call {
                    parts.push(function_call_part(
                        function,
                        None,
                        &path.key("function_call"),
                    )?);
                }
                sign_first_call(&mut parts);
                contents.extend("model", parts);
            }
            Role::Tool => {
                let id = required(msg.tool_call_id, path.key("tool_call_id"))?;
                let name = match contents.call_name(&id) {
                    Some(name) => name.to_owned(),
                    // Some clients name the function on the tool message.
                    None => msg.name.ok_or_else(|| {
                        TranslateError::field(
                            path.key("tool_call_id"),
                            format!(
                                "`{id}` does not match the id of any earlier assistant tool call"
                            ),
                        )
                    })?,
                };
                let result = joined_text(msg.content, &path)?;
                contents.push("user", result_part(Some(id.into_owned()), name, result, false));
            }
            Role::Function => {
                let name = msg.name.ok_or_else(|| {
                    TranslateError::field(path.key("name"), "is required for role \"function\"")
                })?;
                let result = joined_text(msg.content, &path)?;
                contents.push("user", result_part(None, name, result, false));
            }
        }
    }
    if contents.is_empty() {
        return Err(TranslateError::field(
            "messages",
            "must contain at least one user or assistant message with content",
        ));
    }

    let tools = translate_tools(req.tools, req.functions)?;
    let tool_config = match (&req.tool_choice, tools.is_empty()) {
        (Some(choice), false) => tool_choice(choice)?,
        _ => None,
    };

    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences: match req.stop {
            Some(TextOr::Text(s)) if !s.is_empty() => Some(vec![s.into_owned()]),
            Some(TextOr::Items(list)) if !list.is_empty() => Some(list),
            _ => None,
        },
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        seed: req.seed,
        ..GenerationConfig::default()
    };
    if let Some(format) = req.response_format {
        RESPONSE_FORMAT.apply(format, &mut config)?;
    }
    if let Some(effort) = req.reasoning_effort {
        let budget = effort_budget(&effort).ok_or_else(|| {
            TranslateError::field(
                "reasoning_effort",
                format!("`{effort}` is not one of none, minimal, low, medium, high"),
            )
        })?;
        config.thinking_config = Some(ThinkingConfig {
            thinking_budget: Some(budget),
            ..ThinkingConfig::default()
        });
    }

    Ok(ClientRequest {
        model,
        stream: req.stream.unwrap_or(false),
        session_hint: openai_settings::session_hint(req.prompt_cache_key, req.user, req.safety_identifier),
        gemini: gemini_request(contents, system, tools, tool_config, config),
    })
}

/// Gemini rejects empty text parts, so empty strings are skipped.
fn push_text(contents: &mut ContentsBuilder, role: &str, text: Cow<'_, str>) {
    if !text.is_empty() {
        contents.push(role, Part::text(text.into_owned()));
    }
}

/// The text of a part of a text-only `content` (system and assistant
/// messages, for [`for_each_text`]; a `refusal` part counts as text), else
/// its type.
fn part_text(part: ContentPart<'_>) -> Result<Option<String>, Option<String>> {
    match part.kind.as_deref() {
        Some("text") | None if part.text.is_some() => Ok(part.text),
        Some("refusal") if part.refusal.is_some() => Ok(part.refusal),
        kind => Err(kind.map(str::to_owned)),
    }
}

/// Concatenated text of a tool message's content (string or text parts).
fn joined_text(
    content: Option<TextOr<'_, ContentPart<'_>>>,
    path: &At<'_>,
) -> Result<String, TranslateError> {
    match content {
        None => Ok(String::new()),
        Some(TextOr::Text(text)) => Ok(text.into_owned()),
        Some(items) => {
            let mut out = String::new();
            for_each_text(items, path, part_text, |text| {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&text);
            })?;
            Ok(out)
        }
    }
}

/// One part of a user message; `None` for an empty text.
fn user_part(part: ContentPart<'_>, path: &At<'_>) -> Result<Option<Part>, TranslateError> {
    let missing = |field: &'static str| TranslateError::field(path.key(field), "is required");
    let inline = |blob: Blob| Part {
        inline_data: Some(blob),
        ..Part::default()
    };
    let kind = part.kind.as_deref().ok_or_else(|| missing("type"))?;
    Ok(match kind {
        "text" => part
            .text
            .ok_or_else(|| missing("text"))
            .map(|t| (!t.is_empty()).then(|| Part::text(t)))?,
        "image_url" => {
            let url = part
                .image_url
                .and_then(|i| i.url)
                .ok_or_else(|| missing("image_url.url"))?;
            Some(inline(blob_from_data_url(url, &path.key("image_url.url"))?))
        }
        "input_audio" => {
            let audio = part.input_audio.ok_or_else(|| missing("input_audio"))?;
            let data = audio.data.ok_or_else(|| missing("input_audio.data"))?;
            let format = audio.format.ok_or_else(|| missing("input_audio.format"))?;
            let mime_type = match format.as_str() {
                "wav" => "audio/wav".to_owned(),
                "mp3" => "audio/mp3".to_owned(),
                other => format!("audio/{other}"),
            };
            Some(inline(Blob { mime_type, data }))
        }
        "file" => {
            let file = part.file.ok_or_else(|| missing("file"))?;
            match (file.file_data, file.file_id) {
                (Some(data), _) => Some(inline(blob_from_data_url(data, &path.key("file.file_data"))?)),
                (None, Some(_)) => {
                    return Err(TranslateError::field(
                        path.key("file.file_id"),
                        "is not supported: uploaded files cannot be used; send the file inline in `file_data` as a data: URL",
                    ))
                }
                (None, None) => return Err(missing("file.file_data")),
            }
        }
        other => {
            return Err(TranslateError::field(
                path.key("type"),
                format!("`{other}` is not supported (use text, image_url, input_audio or file)"),
            ))
        }
    })
}

fn function_call_part(
    function: FunctionCallIn<'_>,
    id: Option<String>,
    path: &At<'_>,
) -> Result<Part, TranslateError> {
    let name = non_empty(function.name, path.key("name"))?;
    let args = object_arguments(function.arguments.as_deref(), &path.key("arguments"))?;
    Ok(call_part(id.filter(|i| !i.is_empty()), name, args))
}

fn translate_tools(
    tools: Option<Vec<ChatTool<'_>>>,
    functions: Option<Vec<FunctionDef>>,
) -> Result<Vec<Tool>, TranslateError> {
    let mut decls = Vec::new();
    for (j, tool) in tools.unwrap_or_default().into_iter().enumerate() {
        let path = At::root("tools").index(j);
        match tool.kind.as_deref() {
            Some("function") | None => {}
            Some(other) => {
                return Err(TranslateError::field(
                    path.key("type"),
                    format!("`{other}` is not supported; only \"function\" tools are"),
                ))
            }
        }
        let function = required(tool.function, path.key("function"))?;
        decls.push(declaration(function, &path.key("function"))?);
    }
    for (j, function) in functions.unwrap_or_default().into_iter().enumerate() {
        decls.push(declaration(function, &At::root("functions").index(j))?);
    }
    Ok(function_tools(decls))
}

fn declaration(
    function: FunctionDef,
    path: &At<'_>,
) -> Result<gemini::FunctionDeclaration, TranslateError> {
    let name = non_empty(function.name, path.key("name"))?;
    Ok(function_declaration(
        name,
        function.description,
        function.parameters,
    ))
}

fn tool_choice(choice: &Value) -> Result<Option<ToolConfig>, TranslateError> {
    let named = choice
        .get("function")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    Ok(Some(match (choice.as_str().map(tool_mode), named) {
        (Some(Some(mode)), _) => mode,
        (None, Some(name)) => ToolConfig::mode("ANY", Some(name.to_owned())),
        _ => {
            return Err(TranslateError::field(
                "tool_choice",
                r#"must be "none", "auto", "required" or {"type":"function","function":{"name":…}}"#,
            ))
        }
    }))
}

/// `response_format`: its schema sits in `json_schema.schema`.
const RESPONSE_FORMAT: OutputFormat = OutputFormat {
    field: "response_format",
    shapes: r#"must be {"type":"text"}, {"type":"json_object"} or {"type":"json_schema","json_schema":{"schema":…}}"#,
    schema_field: "response_format.json_schema.schema",
    take_schema: |format| format.get_mut("json_schema").and_then(|s| s.get_mut("schema")).map(Value::take),
};
