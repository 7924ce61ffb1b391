//! OpenAI Chat Completions ⇄ Gemini.
//!
//! [`parse_request`] turns a `/v1/chat/completions` body into a Gemini request;
//! [`response_from_gemini`] and [`StreamTranslator`] turn Gemini's answer back
//! into a `chat.completion` object or `chat.completion.chunk` events.
//!
//! Choices a reader should know:
//! - System and developer messages, wherever they appear, all go to
//!   `systemInstruction` (Gemini has no mid-conversation system turn).
//! - Images must be `data:` URLs; this module does no I/O, so remote URLs are
//!   refused with a 400 that says so.
//! - Tool results become `functionResponse {name, response: {"content": …}}`;
//!   the name is found from the earlier assistant `tool_calls` with that id.
//! - Gemini thought summaries (`thought: true`) are never answer text: they go
//!   to the non-standard `message.reasoning_content` / `delta.reasoning_content`
//!   (as DeepSeek and others do), which standard clients ignore.
//! - OpenAI clients cannot carry Gemini's `thoughtSignature`, so replayed tool
//!   calls get [`SKIP_THOUGHT_SIGNATURE`](super::shared::SKIP_THOUGHT_SIGNATURE).
//! - Only `n = 1` is supported; only the first candidate is translated.
//! - The final stream chunk always carries `usage` (whether or not
//!   `stream_options.include_usage` was asked for).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::gemini::{
    self, Blob, FinishKind, FunctionCall, FunctionResponse, GenerateContentResponse,
    GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig, UsageMetadata,
};
use super::schema::function_declaration;
use super::shared::{
    self, args_json, blob_from_data_url, function_tools, gemini_request, new_id, sign_first_call, unix_now, At,
    ContentsBuilder, Probe, TextOr,
};
pub use super::shared::{ClientRequest, TranslateError};
pub use super::sse::SseEvent;

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

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
    match serde_json::from_slice::<ChatRequest>(body) {
        Ok(req) => translate(req),
        Err(err) => Err(diagnose(body, err)),
    }
}

/// Slow path, only after typed parsing failed: find the field to blame.
fn diagnose(body: &[u8], err: serde_json::Error) -> TranslateError {
    let part = Probe {
        check: &|v| ContentPart::deserialize(v).err(),
        children: &[],
    };
    let call_fn = Probe {
        check: &|v| FunctionCallIn::deserialize(v).err(),
        children: &[],
    };
    let call = Probe {
        check: &|v| ToolCall::deserialize(v).err(),
        children: &[("function", &call_fn)],
    };
    let message = Probe {
        check: &|v| ChatMessage::deserialize(v).err(),
        children: &[
            ("content", &part),
            ("tool_calls", &call),
            ("function_call", &call_fn),
        ],
    };
    let function = Probe {
        check: &|v| FunctionDef::deserialize(v).err(),
        children: &[],
    };
    let tool = Probe {
        check: &|v| ChatTool::deserialize(v).err(),
        children: &[("function", &function)],
    };
    let root = Probe {
        check: &|v| ChatRequest::deserialize(v).err(),
        children: &[
            ("messages", &message),
            ("tools", &tool),
            ("functions", &function),
        ],
    };
    shared::blame(body, err, &root)
}

fn translate(req: ChatRequest<'_>) -> Result<ClientRequest, TranslateError> {
    let model = shared::required(req.model.filter(|m| !m.is_empty()), "model")?;
    let messages = shared::required(req.messages, "messages")?;
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
        let role = msg
            .role
            .ok_or_else(|| TranslateError::field(path.key("role"), "is required"))?;
        match role {
            Role::System | Role::Developer => {
                let content = msg
                    .content
                    .ok_or_else(|| TranslateError::field(path.key("content"), "is required"))?;
                for_each_text(content, &path, |text| system.push(Part::text(text)))?;
            }
            Role::User => {
                let content = msg
                    .content
                    .ok_or_else(|| TranslateError::field(path.key("content"), "is required"))?;
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
                    for_each_text(content, &path, |text| parts.push(Part::text(text)))?;
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
                    let function = call.function.ok_or_else(|| {
                        TranslateError::field(call_path.key("function"), "is required")
                    })?;
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
                let id = msg.tool_call_id.ok_or_else(|| {
                    TranslateError::field(path.key("tool_call_id"), "is required")
                })?;
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
                contents.push(
                    "user",
                    function_response_part(Some(id.into_owned()), name, result),
                );
            }
            Role::Function => {
                let name = msg.name.ok_or_else(|| {
                    TranslateError::field(path.key("name"), "is required for role \"function\"")
                })?;
                let result = joined_text(msg.content, &path)?;
                contents.push("user", function_response_part(None, name, result));
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
        response_format(format, &mut config)?;
    }
    if let Some(effort) = req.reasoning_effort {
        let budget = match &*effort {
            "none" => 0,
            "minimal" => 128,
            "low" => 1024,
            "medium" => 8192,
            "high" => 24576,
            other => {
                return Err(TranslateError::field(
                    "reasoning_effort",
                    format!("`{other}` is not one of none, minimal, low, medium, high"),
                ))
            }
        };
        config.thinking_config = Some(ThinkingConfig {
            thinking_budget: Some(budget),
            ..ThinkingConfig::default()
        });
    }

    Ok(ClientRequest {
        model,
        stream: req.stream.unwrap_or(false),
        session_hint: [req.prompt_cache_key, req.user, req.safety_identifier].into_iter().flatten().find(|s| !s.is_empty()),
        gemini: gemini_request(contents, system, tools, tool_config, config),
    })
}

/// Gemini rejects empty text parts, so empty strings are skipped.
fn push_text(contents: &mut ContentsBuilder, role: &str, text: Cow<'_, str>) {
    if !text.is_empty() {
        contents.push(role, Part::text(text.into_owned()));
    }
}

/// Calls `f` with each non-empty text of a text-only `content` (system and
/// assistant messages; a `refusal` part counts as text).
fn for_each_text(
    content: TextOr<'_, ContentPart<'_>>,
    path: &At<'_>,
    mut f: impl FnMut(String),
) -> Result<(), TranslateError> {
    match content {
        TextOr::Text(text) => {
            if !text.is_empty() {
                f(text.into_owned())
            }
        }
        TextOr::Items(parts) => {
            for (j, part) in parts.into_iter().enumerate() {
                match part.kind.as_deref() {
                    Some("text") | None if part.text.is_some() => {
                        let text = part.text.unwrap_or_default();
                        if !text.is_empty() {
                            f(text)
                        }
                    }
                    Some("refusal") if part.refusal.is_some() => {
                        let text = part.refusal.unwrap_or_default();
                        if !text.is_empty() {
                            f(text)
                        }
                    }
                    kind => {
                        return Err(TranslateError::field(
                            path.key("content").index(j),
                            format!(
                                "must be a text part here (got type `{}`)",
                                kind.unwrap_or("(missing)")
                            ),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
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
            for_each_text(items, path, |text| {
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
    let name = function
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
    let args = match function.arguments.as_deref().map(str::trim) {
        None | Some("") => Value::Object(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(TranslateError::field(
                    path.key("arguments"),
                    "must be a JSON object encoded as a string",
                ))
            }
            Err(e) => {
                return Err(TranslateError::field(
                    path.key("arguments"),
                    format!("is not valid JSON: {e}"),
                ))
            }
        },
    };
    Ok(Part {
        function_call: Some(FunctionCall {
            id: id.filter(|i| !i.is_empty()),
            name,
            args: Some(args),
            extra: Map::new(),
        }),
        ..Part::default()
    })
}

fn function_response_part(id: Option<String>, name: String, content: String) -> Part {
    let mut response = Map::with_capacity(1);
    response.insert("content".to_owned(), Value::String(content));
    Part {
        function_response: Some(FunctionResponse {
            id,
            name,
            response: Value::Object(response),
            extra: Map::new(),
        }),
        ..Part::default()
    }
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
        let function = tool
            .function
            .ok_or_else(|| TranslateError::field(path.key("function"), "is required"))?;
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
    let name = function
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
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
    Ok(Some(match (choice.as_str(), named) {
        (Some("auto"), _) => ToolConfig::mode("AUTO", None),
        (Some("none"), _) => ToolConfig::mode("NONE", None),
        (Some("required"), _) => ToolConfig::mode("ANY", None),
        (None, Some(name)) => ToolConfig::mode("ANY", Some(name.to_owned())),
        _ => {
            return Err(TranslateError::field(
                "tool_choice",
                r#"must be "none", "auto", "required" or {"type":"function","function":{"name":…}}"#,
            ))
        }
    }))
}

fn response_format(format: Value, config: &mut GenerationConfig) -> Result<(), TranslateError> {
    let bad = || {
        TranslateError::field(
            "response_format",
            r#"must be {"type":"text"}, {"type":"json_object"} or {"type":"json_schema","json_schema":{"schema":…}}"#,
        )
    };
    let Value::Object(mut format) = format else {
        return Err(bad());
    };
    let kind = format.get("type").and_then(Value::as_str).map(str::to_owned);
    let schema = match kind.as_deref() {
        Some("json_schema") => Some(
            format
                .get_mut("json_schema")
                .and_then(|s| s.get_mut("schema"))
                .map(Value::take)
                .ok_or_else(|| TranslateError::field("response_format.json_schema.schema", "is required"))?,
        ),
        _ => None,
    };
    if !shared::json_output(config, kind.as_deref(), schema) {
        return Err(bad());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

/// An OpenAI `chat.completion` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model the client asked for.
    pub model: String,
    /// Exactly one choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
}

/// One choice of a [`ChatCompletion`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The assistant's message.
    pub message: AssistantMessage,
    /// Always `null`.
    pub logprobs: Option<()>,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
    pub finish_reason: &'static str,
}

/// The assistant message of a [`Choice`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The answer text; `null` when there is none (e.g. only tool calls).
    pub content: Option<String>,
    /// Gemini's thought summaries, when it returned any (non-standard field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Calls the model wants run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut>,
}

/// A tool call in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallOut {
    /// Gemini's call id when it gave one, else `call_…`.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Name and JSON-encoded arguments.
    pub function: FunctionOut,
}

/// The function of a [`ToolCallOut`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionOut {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON string.
    pub arguments: String,
}

/// OpenAI `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens (cached ones included).
    pub prompt_tokens: u64,
    /// Output tokens, thinking included.
    pub completion_tokens: u64,
    /// Total.
    pub total_tokens: u64,
    /// Cached prompt tokens, when Gemini reports any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Thinking tokens, when Gemini reports any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from cache.
    pub cached_tokens: u64,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompletionTokensDetails {
    /// Thinking tokens.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// OpenAI usage from Gemini's `usageMetadata` (zeros when absent).
    pub fn from_gemini(usage: Option<&UsageMetadata>) -> Self {
        usage.map_or_else(Usage::default, |u| Usage {
            prompt_tokens: u.prompt(),
            completion_tokens: u.output(),
            total_tokens: u.total(),
            prompt_tokens_details: u
                .cached_content_token_count
                .map(|cached_tokens| PromptTokensDetails { cached_tokens }),
            completion_tokens_details: u
                .thoughts_token_count
                .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens }),
        })
    }
}

/// OpenAI `finish_reason` for a Gemini finish; tool calls win over `STOP`
/// (Gemini reports `STOP` after a function call).
fn finish_reason(kind: Option<FinishKind>, tool_calls: bool) -> &'static str {
    match kind {
        _ if tool_calls => "tool_calls",
        Some(FinishKind::MaxTokens) => "length",
        Some(FinishKind::Filtered) => "content_filter",
        _ => "stop",
    }
}

fn tool_call_id(call: &FunctionCall) -> Cow<'_, str> {
    match call.id.as_deref() {
        Some(id) if !id.is_empty() => Cow::Borrowed(id),
        _ => Cow::Owned(new_id("call_")),
    }
}

/// Builds the `chat.completion` object for a (non-streamed) Gemini response.
/// `model` is echoed as the client sent it.
pub fn response_from_gemini(resp: &GenerateContentResponse, model: &str) -> ChatCompletion {
    let mut content: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for part in resp.parts() {
        if let Some(call) = &part.function_call {
            tool_calls.push(ToolCallOut {
                id: tool_call_id(call).into_owned(),
                kind: "function",
                function: FunctionOut {
                    name: call.name.clone(),
                    arguments: args_json(call),
                },
            });
        } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
            let target = if part.is_thought() {
                &mut reasoning
            } else {
                &mut content
            };
            target.get_or_insert_with(String::new).push_str(text);
        } else if let Some(md) = image_markdown(part) {
            content.get_or_insert_with(String::new).push_str(&md);
        }
    }
    let finish = finish_reason(FinishKind::of_response(resp), !tool_calls.is_empty());
    ChatCompletion {
        id: match resp.response_id.as_deref() {
            Some(id) if !id.is_empty() => format!("chatcmpl-{id}"),
            _ => new_id("chatcmpl-"),
        },
        object: "chat.completion",
        created: unix_now(),
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                reasoning_content: reasoning,
                tool_calls,
            },
            logprobs: None,
            finish_reason: finish,
        }],
        usage: Usage::from_gemini(resp.usage_metadata.as_ref()),
    }
}

/// An error body in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
pub fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        400 | 422 => ("invalid_request_error", "invalid_request"),
        401 => ("authentication_error", "invalid_api_key"),
        403 => ("permission_error", "permission_denied"),
        404 => ("not_found_error", "not_found"),
        413 => ("invalid_request_error", "request_too_large"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        502 => ("server_error", "bad_gateway"),
        503 => ("server_error", "service_unavailable"),
        504 => ("server_error", "timeout"),
        s if (400..500).contains(&s) => ("invalid_request_error", "invalid_request"),
        _ => ("server_error", "internal_error"),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChunkChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallDelta<'a>>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    name: &'a str,
    arguments: String,
}

/// Appends without copying the first piece: most chunks carry one text part.
/// An image the model drew (an image model's `inlineData` part) as
/// Markdown with a `data:` URL, as the peers answer chat clients
/// (Antigravity-Manager `mappers/openai/response.rs`): a chat message has
/// no other place for it.
fn image_markdown(part: &Part) -> Option<String> {
    let blob = part.inline_data.as_ref().filter(|b| !part.is_thought() && b.mime_type.starts_with("image/"))?;
    Some(format!("![image](data:{};base64,{})", blob.mime_type, blob.data))
}

fn append<'a>(slot: &mut Option<Cow<'a, str>>, text: &'a str) {
    match slot {
        None => *slot = Some(Cow::Borrowed(text)),
        Some(existing) => existing.to_mut().push_str(text),
    }
}

/// Turns a Gemini stream into `chat.completion.chunk` events, one Gemini
/// chunk at a time.
///
/// Each Gemini chunk with content gives one event; the first carries
/// `role: "assistant"`. Gemini sends each function call whole, so a tool call
/// is one delta with `index`, `id`, `type`, `function.name` and the complete
/// `function.arguments`. [`finish`](Self::finish) sends the closing chunk
/// (empty delta, `finish_reason`, `usage`) and `data: [DONE]`.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    role_sent: bool,
    tool_calls: u32,
    finish: Option<FinishKind>,
    usage: Usage,
    done: bool,
}

impl StreamTranslator {
    /// A translator for one response; `model` is echoed in every chunk.
    pub fn new(model: &str) -> Self {
        StreamTranslator {
            id: new_id("chatcmpl-"),
            model: model.to_owned(),
            created: unix_now(),
            role_sent: false,
            tool_calls: 0,
            finish: None,
            usage: Usage::default(),
            done: false,
        }
    }

    fn event(
        &self,
        delta: Delta<'_>,
        finish_reason: Option<&'static str>,
        usage: Option<Usage>,
    ) -> SseEvent {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: [ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage,
        };
        SseEvent::data(serde_json::to_string(&chunk).expect("chunk serializes"))
    }

    fn role(&mut self) -> Option<&'static str> {
        (!std::mem::replace(&mut self.role_sent, true)).then_some("assistant")
    }

    /// Translates one Gemini stream chunk (zero or one event).
    pub fn push(&mut self, chunk: &GenerateContentResponse) -> Vec<SseEvent> {
        if self.done {
            return Vec::new();
        }
        if let Some(usage) = &chunk.usage_metadata {
            self.usage = Usage::from_gemini(Some(usage));
        }
        if let Some(kind) = FinishKind::of_response(chunk) {
            self.finish = Some(kind);
        }
        let mut delta = Delta::default();
        for part in chunk.parts() {
            if let Some(call) = &part.function_call {
                delta.tool_calls.push(ToolCallDelta {
                    index: self.tool_calls,
                    id: tool_call_id(call),
                    kind: "function",
                    function: FunctionDelta {
                        name: &call.name,
                        arguments: args_json(call),
                    },
                });
                self.tool_calls += 1;
            } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                if part.is_thought() {
                    append(&mut delta.reasoning_content, text);
                } else {
                    append(&mut delta.content, text);
                }
            } else if let Some(md) = image_markdown(part) {
                match &mut delta.content {
                    Some(c) => c.to_mut().push_str(&md),
                    None => delta.content = Some(Cow::Owned(md)),
                }
            }
        }
        if delta.content.is_none()
            && delta.reasoning_content.is_none()
            && delta.tool_calls.is_empty()
        {
            return Vec::new();
        }
        delta.role = self.role();
        vec![self.event(delta, None, None)]
    }

    /// Whether a Gemini chunk has said the answer is complete (a
    /// `finishReason`, or a blocked prompt). A stream that ends without one
    /// was cut short.
    pub fn saw_finish(&self) -> bool {
        self.finish.is_some()
    }

    /// Closing events: a chunk with `finish_reason` and `usage`, then
    /// `data: [DONE]`. Nothing after the stream already ended.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        let delta = Delta {
            role: self.role(),
            ..Delta::default()
        };
        let reason = finish_reason(self.finish, self.tool_calls > 0);
        vec![
            self.event(delta, Some(reason), Some(self.usage)),
            SseEvent::data("[DONE]".to_owned()),
        ]
    }

    /// Ends the stream with an error the client can see:
    /// `data: {"error":{"message":…,"type":"upstream_error"}}` then `data: [DONE]`.
    pub fn error(&mut self, message: &str) -> Vec<SseEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        let body = json!({"error": {"message": message, "type": "upstream_error"}});
        vec![
            SseEvent::data(body.to_string()),
            SseEvent::data("[DONE]".to_owned()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::shared::SKIP_THOUGHT_SIGNATURE;
    use super::*;

    fn parse(v: Value) -> ClientRequest {
        parse_request(v.to_string().as_bytes()).unwrap()
    }

    fn parse_err(v: Value) -> String {
        parse_request(v.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    }

    fn gemini(v: Value) -> GenerateContentResponse {
        serde_json::from_value(v).unwrap()
    }

    fn data(e: &SseEvent) -> Value {
        assert_eq!(e.event, None);
        serde_json::from_str(&e.data).unwrap()
    }

    #[test]
    fn system_and_multi_turn() {
        let req = parse(json!({
            "model": "gemini-2.5-pro",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 100,
            "stop": "END",
            "user": "user-42",
            "stream": true
        }));
        assert_eq!(req.model, "gemini-2.5-pro");
        assert!(req.stream);
        assert_eq!(req.session_hint.as_deref(), Some("user-42"));
        assert_eq!(
            serde_json::to_value(&req.gemini).unwrap(),
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Hi"}]},
                    {"role": "model", "parts": [{"text": "Hello."}]},
                    {"role": "user", "parts": [{"text": "Weather?"}]}
                ],
                "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
                "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"]}
            })
        );
    }

    #[test]
    fn generation_params() {
        let req = parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "stop": ["a", "b"],
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "seed": 7,
            "n": 1,
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true,
                "schema": {"type": "object", "additionalProperties": false,
                           "properties": {"a": {"type": "string"}}, "required": ["a"]}}},
            "reasoning_effort": "low"
        }));
        assert!(!req.stream);
        assert_eq!(req.session_hint, None);
        assert_eq!(
            serde_json::to_value(req.gemini.generation_config.unwrap()).unwrap(),
            json!({
                "maxOutputTokens": 20,
                "stopSequences": ["a", "b"],
                "presencePenalty": 0.5,
                "frequencyPenalty": 0.25,
                "seed": 7,
                "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                "thinkingConfig": {"thinkingBudget": 1024}
            })
        );
        let plain = parse(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(plain.gemini.generation_config, None);
        assert_eq!(plain.gemini.system_instruction, None);
    }

    #[test]
    fn images_and_audio() {
        let req = parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
            ]}]
        }));
        assert_eq!(
            serde_json::to_value(&req.gemini.contents).unwrap(),
            json!([{"role": "user", "parts": [
                {"text": "What is this?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
            ]}])
        );
    }

    #[test]
    fn tool_round_trip() {
        let req = parse(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "22C"}]},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather",
                "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                    "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}
            }}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        }));
        let g = serde_json::to_value(&req.gemini).unwrap();
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
                {"role": "model", "parts": [
                    {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                     "functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Rome"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"content": "18C sunny"}}},
                    {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"content": "22C"}}},
                    {"text": "Thanks"}
                ]}
            ])
        );
        // The client's schema goes as it came; the `parameters` form made of
        // it (for the backends that need it) is the cleaned one.
        let decl = &g["tools"][0]["functionDeclarations"][0];
        assert_eq!((decl["name"].as_str(), decl["description"].as_str()), (Some("get_weather"), Some("Current weather")));
        assert_eq!(decl["parametersJsonSchema"]["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(
            crate::translate::schema::to_parameters(decl["parametersJsonSchema"].clone()).unwrap(),
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
        );
        assert_eq!(
            g["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );

        // The model's answer to that goes back as OpenAI tool calls.
        let resp = gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "abc"}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 10, "totalTokenCount": 60}
        }));
        let out = serde_json::to_value(response_from_gemini(&resp, "m")).unwrap();
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let call = &choice["message"]["tool_calls"][0];
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["type"], "function");
        assert_eq!(
            call["function"],
            json!({"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"})
        );
    }

    #[test]
    fn tool_choice_modes_and_legacy_functions() {
        let base = |choice: Value| {
            parse(json!({
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "functions": [{"name": "now", "parameters": {"type": "object", "properties": {}}}],
                "tool_choice": choice
            }))
            .gemini
        };
        let g = base(json!("required"));
        assert_eq!(
            serde_json::to_value(&g.tools).unwrap(),
            json!([{"functionDeclarations": [{"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}}]}])
        );
        assert_eq!(
            g.tool_config
                .unwrap()
                .function_calling_config
                .unwrap()
                .mode
                .as_deref(),
            Some("ANY")
        );
        let g = base(json!("none"));
        assert_eq!(
            g.tool_config
                .unwrap()
                .function_calling_config
                .unwrap()
                .mode
                .as_deref(),
            Some("NONE")
        );
        let g = base(json!("auto"));
        assert_eq!(
            g.tool_config
                .unwrap()
                .function_calling_config
                .unwrap()
                .mode
                .as_deref(),
            Some("AUTO")
        );
        // No tools: tool_choice has nothing to configure.
        let g = parse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"}),
        );
        assert_eq!(g.gemini.tool_config, None);
        assert!(parse_err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "functions": [{"name": "f"}], "tool_choice": "sometimes"})
        )
        .contains("`tool_choice`"));
    }

    #[test]
    fn legacy_function_role_and_tool_name_fallback() {
        let req = parse(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "function_call": {"name": "f", "arguments": ""}},
                {"role": "function", "name": "f", "content": "done"},
                {"role": "tool", "tool_call_id": "unknown", "name": "g", "content": "ok"}
            ]
        }));
        let c = serde_json::to_value(&req.gemini.contents).unwrap();
        assert_eq!(
            c[1]["parts"][0]["functionCall"],
            json!({"name": "f", "args": {}})
        );
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "f", "response": {"content": "done"}})
        );
        assert_eq!(
            c[2]["parts"][1]["functionResponse"],
            json!({"id": "unknown", "name": "g", "response": {"content": "ok"}})
        );
    }

    #[test]
    fn malformed_requests_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"messages": [{"role": "user", "content": "x"}]}), "`model` is required"),
            (json!({"model": "m"}), "`messages` is required"),
            (json!({"model": "m", "messages": []}), "`messages` must contain"),
            (json!({"model": "m", "messages": "hi"}), "`messages` is invalid: invalid type: string \"hi\", expected an array"),
            (json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "`messages[0].role` is invalid: unknown variant `robot`"),
            (json!({"model": "m", "messages": [{"content": "x"}]}), "`messages[0].role` is required"),
            (json!({"model": "m", "messages": [{"role": "user", "content": 5}]}), "`messages[0].content` is invalid: invalid type: integer `5`, expected a string or an array"),
            (json!({"model": "m", "messages": [{"role": "user", "content": ["hi"]}]}), "`messages[0].content[0]` must be an object"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}), "`messages[0].content[0].text` is invalid: invalid type: integer `3`, expected a string"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]}), "`messages[0].content[0].image_url.url` must be a data: URL"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}), "`messages[0].content[0].type` `video` is not supported"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}]}), "`messages[1].tool_call_id` is required"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_9", "content": "r"}]}), "`call_9` does not match"),
            (json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}), "`messages[0].tool_calls[0].function.arguments` is not valid JSON"),
            (json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 1}}]}]}), "`messages[0].tool_calls[0].function.arguments` is invalid"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}), "`temperature` is invalid: invalid type: string \"hot\", expected a number"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"description": "no name"}}]}), "`tools[0].function.name` is required"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": 1}}]}), "`tools[0].function.name` is invalid"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}), "`tools[0].type` `web_search` is not supported"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}), "`n` must be 1"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}), "`response_format`"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}), "`reasoning_effort` `max` is not one of"),
            (json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]}), "`messages[0].content[0]` must be a text part here"),
            (json!([1, 2]), "`(body)` must be a JSON object"),
        ];
        for (body, want) in cases {
            let got = parse_err(body.clone());
            assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
        }
        let e = parse_request(b"{\"model\": ").unwrap_err();
        assert!(matches!(e, TranslateError::InvalidJson(_)), "{e}");
        assert!(e.to_string().starts_with("request body is not valid JSON"));
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn response_text_reasoning_and_usage() {
        let resp = gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think.", "thought": true},
                {"text": "Hello, "},
                {"text": "world."}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 4, "thoughtsTokenCount": 6,
                              "cachedContentTokenCount": 2, "totalTokenCount": 22},
            "responseId": "r-1"
        }));
        let out = serde_json::to_value(response_from_gemini(&resp, "gpt-4o")).unwrap();
        assert!(out["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(
            out,
            json!({
                "id": "chatcmpl-r-1",
                "object": "chat.completion",
                "created": out["created"],
                "model": "gpt-4o",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello, world.", "reasoning_content": "Let me think."},
                    "logprobs": null,
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22,
                          "prompt_tokens_details": {"cached_tokens": 2},
                          "completion_tokens_details": {"reasoning_tokens": 6}}
            })
        );
    }

    #[test]
    fn finish_reasons() {
        let finish = |v: Value| {
            let out = serde_json::to_value(response_from_gemini(&gemini(v), "m")).unwrap();
            out["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let cand = |reason: &str| json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        assert_eq!(finish(cand("STOP")), "stop");
        assert_eq!(finish(cand("MAX_TOKENS")), "length");
        assert_eq!(finish(cand("SAFETY")), "content_filter");
        assert_eq!(finish(cand("RECITATION")), "content_filter");
        assert_eq!(finish(cand("OTHER")), "stop");
        assert_eq!(
            finish(json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})),
            "content_filter"
        );
        let empty = serde_json::to_value(response_from_gemini(&gemini(json!({})), "m")).unwrap();
        assert_eq!(empty["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            empty["usage"],
            json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(401, "bad key"),
            json!({"error": {"message": "bad key", "type": "authentication_error", "param": null, "code": "invalid_api_key"}})
        );
        assert_eq!(
            error_body(429, "slow down")["error"]["type"],
            "rate_limit_error"
        );
        assert_eq!(
            error_body(503, "no account")["error"]["code"],
            "service_unavailable"
        );
        assert_eq!(
            error_body(400, "x")["error"]["type"],
            "invalid_request_error"
        );
        assert_eq!(error_body(500, "x")["error"]["type"], "server_error");
    }

    #[test]
    fn stream_text() {
        let mut t = StreamTranslator::new("gpt-4o");
        let a = t.push(&gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "hmm", "thought": true}, {"text": "Hel"}]}}],
            "usageMetadata": {"promptTokenCount": 5}
        })));
        let b = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"text": "!"}]}}]})));
        let empty = t.push(&gemini(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}}]}),
        ));
        let c = t.push(&gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}
        })));
        let end = t.finish();
        assert!(empty.is_empty() && c.is_empty());
        assert_eq!((a.len(), b.len(), end.len()), (1, 1, 2));

        let first = data(&a[0]);
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["model"], "gpt-4o");
        assert!(first["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(
            first["choices"],
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel", "reasoning_content": "hmm"},
                    "logprobs": null, "finish_reason": null}])
        );
        assert!(first.get("usage").is_none());
        let second = data(&b[0]);
        assert_eq!(second["id"], first["id"]);
        assert_eq!(second["choices"][0]["delta"], json!({"content": "lo!"}));
        let last = data(&end[0]);
        assert_eq!(last["choices"][0]["delta"], json!({}));
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
        );
        assert_eq!(end[1], SseEvent::data("[DONE]".into()));
        assert_eq!(&end[1].to_bytes()[..], b"data: [DONE]\n\n");
        assert!(t.finish().is_empty());
        assert!(t
            .push(&gemini(
                json!({"candidates": [{"content": {"parts": [{"text": "late"}]}}]})
            ))
            .is_empty());
    }

    #[test]
    fn stream_tool_calls() {
        let mut t = StreamTranslator::new("m");
        let a = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking."}]}}]})));
        let b = t.push(&gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "s"},
                {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 7, "totalTokenCount": 16}
        })));
        let end = t.finish();
        assert_eq!(
            data(&a[0])["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Checking."})
        );
        let calls = &data(&b[0])["choices"][0]["delta"]["tool_calls"];
        assert!(data(&b[0])["choices"][0]["delta"].get("role").is_none());
        assert_eq!(calls[0]["index"], 0);
        assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(
            calls[0]["function"],
            json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
        );
        assert_eq!(
            calls[1],
            json!({"index": 1, "id": "fc-7", "type": "function",
                                    "function": {"name": "get_time", "arguments": "{}"}})
        );
        assert_eq!(data(&end[0])["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(data(&end[0])["usage"]["total_tokens"], 16);
    }

    #[test]
    fn drawn_images_are_markdown_data_urls() {
        let g = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here. "}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]}, "finishReason": "STOP"}]}));
        let whole = response_from_gemini(&g, "gemini-3.1-flash-image");
        assert_eq!(whole.choices[0].message.content.as_deref(), Some("Here. ![image](data:image/png;base64,iVBOR)"));
        let mut t = StreamTranslator::new("m");
        let e = t.push(&g);
        assert_eq!(data(&e[0])["choices"][0]["delta"]["content"], "Here. ![image](data:image/png;base64,iVBOR)");
    }

    #[test]
    fn stream_error_mid_stream() {
        let mut t = StreamTranslator::new("m");
        let a = t.push(&gemini(
            json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}),
        ));
        assert_eq!(a.len(), 1);
        let err = t.error("upstream connection reset");
        assert_eq!(err.len(), 2);
        assert_eq!(
            data(&err[0]),
            json!({"error": {"message": "upstream connection reset", "type": "upstream_error"}})
        );
        assert_eq!(err[1].data, "[DONE]");
        assert!(t.finish().is_empty(), "no second [DONE]");
        assert!(t.error("again").is_empty());
    }

    #[test]
    fn stream_empty_upstream_still_closes() {
        let mut t = StreamTranslator::new("m");
        let end = t.finish();
        assert_eq!(end.len(), 2);
        let last = data(&end[0]);
        assert_eq!(last["choices"][0]["delta"], json!({"role": "assistant"}));
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        let mut t = StreamTranslator::new("m");
        assert!(!t.saw_finish());
        t.push(&gemini(
            json!({"promptFeedback": {"blockReason": "SAFETY"}}),
        ));
        assert!(t.saw_finish());
        assert_eq!(
            data(&t.finish()[0])["choices"][0]["finish_reason"],
            "content_filter"
        );
    }

    #[test]
    fn conversation_ids_in_the_body() {
        let hint = |extra: Value| {
            let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(v).session_hint
        };
        assert_eq!(hint(json!({"safety_identifier": "s-1"})).as_deref(), Some("s-1"));
        assert_eq!(hint(json!({"user": "u-1", "safety_identifier": "s-1"})).as_deref(), Some("u-1"));
        assert_eq!(hint(json!({"user": "u-1", "prompt_cache_key": "k-1"})).as_deref(), Some("k-1"));
        assert_eq!(hint(json!({"user": "", "safety_identifier": "s-2"})).as_deref(), Some("s-2"));
        assert_eq!(hint(json!({})), None);
    }
}
