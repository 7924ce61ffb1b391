//! OpenAI Responses ⇄ Gemini.
//!
//! [`parse_request`] turns a `/v1/responses` body into a Gemini request;
//! [`response_from_gemini`] and [`StreamTranslator`] turn Gemini's answer back
//! into a `response` object or the Responses streaming events, as Codex CLI
//! and the official SDKs read them.
//!
//! Choices a reader should know:
//! - This proxy keeps nothing between requests: `previous_response_id`,
//!   `conversation`, stored `prompt`s, `background` and `item_reference`
//!   items are refused with a 400 that says to send the whole conversation
//!   (what Codex does, with `store: false`). `store`, `metadata`, `include`,
//!   `truncation`, `service_tier`, `text.verbosity`, `parallel_tool_calls`
//!   and the like are accepted and ignored.
//! - `instructions`, and `system` / `developer` messages wherever they
//!   appear, all go to `systemInstruction` (Gemini has no mid-conversation
//!   system turn).
//! - Tools: `function` tools are declared as they are; the functions of a
//!   `namespace` tool as `<namespace>__<name>`; a `custom` (free-form) tool as
//!   a function taking one string, `input` (its grammar goes in the
//!   description), and its calls come back as `custom_tool_call` items.
//!   Names are made to fit Gemini's rules (`[A-Za-z0-9_-]`, at most 64
//!   characters, a hash suffix when cut). Undoing all that needs the
//!   [`ToolMap`] that [`parse_request_with_tools`] returns, given to
//!   [`StreamTranslator::with_tools`] / [`response_with_tools`]. `web_search`
//!   (and `web_search_preview`) becomes Gemini's `googleSearch` when no
//!   function is declared (Gemini cannot mix them; else it is left out and
//!   [`ToolMap::search_dropped`] says so); a grounded answer then gets a
//!   `web_search_call` item before its message and `url_citation`
//!   annotations on its text, streamed as OpenAI streams them. Every other
//!   built-in tool (`file_search`,
//!   `tool_search`, `code_interpreter`, `image_generation`, `local_shell`,
//!   `computer_use_preview`, `mcp`, …) is dropped and named by
//!   [`ToolMap::dropped`] / [`dropped_tools`].
//! - Gemini's `thoughtSignature`s travel in `reasoning` items'
//!   `encrypted_content`, one signature per item, bound to the item it came
//!   with: `grantpool:call:<base64url call_id>:<signature>` for a function or
//!   custom tool call, `grantpool:msg:<base64url message id>:<signature>` for
//!   the text of an assistant message (a signature on thoughts goes with the
//!   item after them). The reasoning item comes right before that item (or
//!   right after a message whose signature came on a later piece of its
//!   text, as Gemini 3 ends a streamed answer); since the binding names the
//!   item, replay does not depend on where the client puts it. A replayed
//!   model turn whose first call has no signature gets
//!   [`SKIP_THOUGHT_SIGNATURE`](super::shared::SKIP_THOUGHT_SIGNATURE);
//!   `encrypted_content` this proxy did not make (OpenAI's own) is ignored.
//! - Gemini thought summaries (asked for with `reasoning.summary`) become the
//!   reasoning item's `summary`; replayed summaries are not sent back (Gemini
//!   does not need them).
//! - Function results become `functionResponse {name, response: {"content":
//!   text}}`, the name found from the earlier call with that `call_id`;
//!   images in a result follow it as `inlineData` parts of the same turn.
//!   Items of OpenAI's hosted tools in a replayed history (`web_search_call`,
//!   `tool_search_*`, `computer_call*`, `mcp_*`, `compaction`, …) are
//!   skipped; an unknown item type is refused, naming the field.
//! - Images and files must be `data:` URLs (or base64 with a file name);
//!   this module does no I/O, so remote URLs and file ids are refused.
//! - A `MAX_TOKENS` finish ends the answer `incomplete` (`max_output_tokens`),
//!   a content-filter stop `incomplete` (`content_filter`); the stream then
//!   closes with `response.incomplete` instead of `response.completed`.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::gemini::{
    Blob, FinishKind, FunctionCall, FunctionDeclaration, FunctionResponse, GenerateContentResponse, GenerationConfig,
    Part, ThinkingConfig, Tool, ToolConfig, UsageMetadata,
};
use super::openai_chat;
use super::schema::function_declaration;
use super::search::{char_index, Grounding, GroundingMetadata};
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
// key (see `diagnose`); required fields are checked while translating. Fields
// this proxy ignores are not declared, so no value of theirs is refused.
#[derive(Deserialize)]
struct ResponsesRequest<'a> {
    model: Option<String>,
    #[serde(borrow)]
    input: Option<TextOr<'a, Item<'a>>>,
    #[serde(borrow)]
    instructions: Option<TextOr<'a, Item<'a>>>,
    stream: Option<bool>,
    user: Option<String>,
    prompt_cache_key: Option<String>,
    safety_identifier: Option<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_output_tokens: Option<u32>,
    #[serde(borrow)]
    tools: Option<Vec<ToolIn<'a>>>,
    tool_choice: Option<Value>,
    #[serde(borrow)]
    reasoning: Option<ReasoningIn<'a>>,
    text: Option<TextIn>,
    previous_response_id: Option<String>,
    conversation: Option<Value>,
    prompt: Option<Value>,
    background: Option<bool>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
}

/// Any input item; which fields matter depends on `type`.
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    role: Option<Role>,
    #[serde(borrow)]
    content: Option<TextOr<'a, ContentPart<'a>>>,
    id: Option<String>,
    call_id: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    /// A call's arguments: JSON text (any JSON for the items skipped, e.g.
    /// `tool_search_call`).
    arguments: Option<Value>,
    /// A `custom_tool_call`'s free-form input.
    input: Option<String>,
    /// A tool result: a string or content parts (any JSON for the items
    /// skipped, e.g. `computer_call_output`).
    output: Option<Value>,
    encrypted_content: Option<String>,
    /// A `local_shell_call`'s command.
    action: Option<Value>,
}

/// A part of a message's (or a tool result's) `content`.
#[derive(Deserialize)]
struct ContentPart<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    text: Option<String>,
    refusal: Option<String>,
    image_url: Option<UrlField>,
    file_id: Option<String>,
    file_data: Option<String>,
    file_url: Option<String>,
    filename: Option<String>,
    input_audio: Option<InputAudio>,
}

#[derive(Deserialize)]
struct InputAudio {
    data: Option<String>,
    format: Option<String>,
}

/// `image_url`: a string in the Responses API; `{"url": …}` (the chat shape)
/// is accepted too.
struct UrlField(String);

impl<'de> Deserialize<'de> for UrlField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UrlField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UrlField, E> {
                Ok(UrlField(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<UrlField, E> {
                Ok(UrlField(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<UrlField, A::Error> {
                let mut url = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "url" {
                        url = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                url.map(UrlField).ok_or_else(|| de::Error::missing_field("url"))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct ToolIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
    /// A custom tool's input format (`text`, or a `grammar`).
    format: Option<Value>,
    /// A namespace's members.
    #[serde(borrow)]
    tools: Option<Vec<ToolIn<'a>>>,
}

#[derive(Deserialize)]
struct ReasoningIn<'a> {
    #[serde(borrow)]
    effort: Option<Cow<'a, str>>,
    #[serde(borrow)]
    summary: Option<Cow<'a, str>>,
    /// The older name of `summary`.
    #[serde(borrow)]
    generate_summary: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct TextIn {
    format: Option<Value>,
}

/// Translates a Responses request body into Gemini.
///
/// Errors name the offending field, e.g.
/// ``invalid request: `input[4].call_id` is required``. Namespaced and custom
/// tools need [`parse_request_with_tools`] for their calls to come back as
/// the client declared them.
pub fn parse_request(body: &[u8]) -> Result<ClientRequest, TranslateError> {
    parse_request_with_tools(body).map(|(req, _)| req)
}

/// [`parse_request`], plus what the answer's translation needs to give the
/// model's calls back under the client's names (namespaces, custom tools,
/// names Gemini does not accept) and the built-in tools that were dropped.
pub fn parse_request_with_tools(body: &[u8]) -> Result<(ClientRequest, ToolMap), TranslateError> {
    match serde_json::from_slice::<ResponsesRequest>(body) {
        Ok(req) => translate(req),
        Err(err) => Err(diagnose(body, err)),
    }
}

/// The built-in tools of a request that this proxy drops (Gemini has no
/// equivalent), for one line of log: `["tool_search", "web_search"]`. Empty
/// when there are none or the body does not parse. Reads only `tools`; after
/// [`parse_request_with_tools`], [`ToolMap::dropped`] says the same.
pub fn dropped_tools(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct OnlyTools<'a> {
        #[serde(borrow)]
        tools: Option<Vec<ToolIn<'a>>>,
    }
    let Ok(OnlyTools { tools: Some(tools) }) = serde_json::from_slice::<OnlyTools>(body) else {
        return Vec::new();
    };
    let mut map = ToolMap::default();
    match translate_tools(tools, &mut map) {
        Ok(_) => map.dropped,
        Err(_) => Vec::new(),
    }
}

/// Slow path, only after typed parsing failed: find the field to blame.
fn diagnose(body: &[u8], err: serde_json::Error) -> TranslateError {
    let part = Probe { check: &|v| ContentPart::deserialize(v).err(), children: &[] };
    let item = Probe { check: &|v| Item::deserialize(v).err(), children: &[("content", &part)] };
    let member = Probe { check: &|v| ToolIn::deserialize(v).err(), children: &[] };
    let tool = Probe { check: &|v| ToolIn::deserialize(v).err(), children: &[("tools", &member)] };
    let reasoning = Probe { check: &|v| ReasoningIn::deserialize(v).err(), children: &[] };
    let text = Probe { check: &|v| TextIn::deserialize(v).err(), children: &[] };
    let root = Probe {
        check: &|v| ResponsesRequest::deserialize(v).err(),
        children: &[
            ("input", &item),
            ("instructions", &item),
            ("tools", &tool),
            ("reasoning", &reasoning),
            ("text", &text),
        ],
    };
    shared::blame(body, err, &root)
}

const NO_STATE: &str =
    "this proxy keeps no responses or conversations: send the whole conversation in `input` (with `store: false`)";

fn translate(req: ResponsesRequest<'_>) -> Result<(ClientRequest, ToolMap), TranslateError> {
    let model = shared::required(req.model.filter(|m| !m.is_empty()), "model")?;
    if req.previous_response_id.as_deref().is_some_and(|id| !id.is_empty()) {
        return Err(TranslateError::field("previous_response_id", format!("is not supported: {NO_STATE}")));
    }
    if req.conversation.is_some() {
        return Err(TranslateError::field("conversation", format!("is not supported: {NO_STATE}")));
    }
    if req.prompt.is_some() {
        return Err(TranslateError::field(
            "prompt",
            "is not supported: stored prompts live on OpenAI's servers; send the text in `instructions` and `input`",
        ));
    }
    if req.background == Some(true) {
        return Err(TranslateError::field(
            "background",
            "is not supported: this proxy answers within the request (stream it, or wait for the whole response)",
        ));
    }
    let input = shared::required(req.input, "input")?;

    // Tools first: replayed calls are named the way their declarations are.
    let mut tool_map = ToolMap::default();
    let tools = translate_tools(req.tools.unwrap_or_default(), &mut tool_map)?;

    let mut system: Vec<Part> = Vec::new();
    match req.instructions {
        Some(TextOr::Text(text)) if !text.is_empty() => system.push(Part::text(text.into_owned())),
        None | Some(TextOr::Text(_)) => {}
        Some(TextOr::Items(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let path = At::root("instructions").index(i);
                let content = item.content.ok_or_else(|| TranslateError::field(path.key("content"), "is required"))?;
                for_each_text(content, &path, |text| system.push(Part::text(text)))?;
            }
        }
    }

    let mut turns = Turns::default();
    match input {
        TextOr::Text(text) => {
            if !text.is_empty() {
                turns.user(Part::text(text.into_owned()));
            }
        }
        TextOr::Items(items) => {
            let signatures = Signatures::collect(&items);
            for (i, item) in items.into_iter().enumerate() {
                input_item(item, &At::root("input").index(i), &signatures, &tool_map, &mut system, &mut turns)?;
            }
        }
    }
    let contents = turns.finish();
    if contents.is_empty() {
        return Err(TranslateError::field("input", "must contain at least one user or assistant item with content"));
    }

    let has_functions = tools.iter().any(|t| t.function_declarations.is_some());
    let tool_config = match (&req.tool_choice, has_functions) {
        (Some(choice), true) => tool_choice(choice, &tool_map)?,
        _ => None,
    };

    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_output_tokens,
        ..GenerationConfig::default()
    };
    if let Some(format) = req.text.and_then(|t| t.format) {
        text_format(format, &mut config)?;
    }
    if let Some(reasoning) = req.reasoning {
        config.thinking_config = thinking_config(reasoning)?;
    }

    let session_hint =
        [req.prompt_cache_key, req.user, req.safety_identifier].into_iter().flatten().find(|s| !s.is_empty());
    let request = ClientRequest {
        model,
        stream: req.stream.unwrap_or(false),
        session_hint,
        gemini: gemini_request(contents, system, tools, tool_config, config),
    };
    Ok((request, tool_map))
}

/// The conversation being built. A model turn is gathered apart until the
/// next user part, so that its first call can be signed
/// ([`sign_first_call`]) once the whole turn is known.
#[derive(Default)]
struct Turns {
    contents: ContentsBuilder,
    model: Vec<Part>,
}

impl Turns {
    fn model(&mut self, part: Part) {
        self.model.push(part);
    }

    fn user(&mut self, part: Part) {
        self.flush();
        self.contents.push("user", part);
    }

    fn flush(&mut self) {
        if !self.model.is_empty() {
            sign_first_call(&mut self.model);
            self.contents.extend("model", self.model.drain(..));
        }
    }

    /// The Gemini name of the call this `call_id` answers.
    fn call_name(&mut self, call_id: &str) -> Option<String> {
        self.flush();
        self.contents.call_name(call_id).map(str::to_owned)
    }

    fn finish(mut self) -> ContentsBuilder {
        self.flush();
        self.contents
    }
}

/// Translates one input item into system parts or conversation turns.
fn input_item(
    item: Item<'_>,
    path: &At<'_>,
    signatures: &Signatures,
    tools: &ToolMap,
    system: &mut Vec<Part>,
    turns: &mut Turns,
) -> Result<(), TranslateError> {
    let kind = match item.kind.as_deref() {
        Some(kind) => kind,
        // The "easy" message form: `{"role": …, "content": …}`.
        None if item.role.is_some() => "message",
        None => return Err(TranslateError::field(path.key("type"), "is required")),
    };
    match kind {
        "message" => {
            let role = item
                .role
                .ok_or_else(|| TranslateError::field(path.key("role"), "is required"))?;
            let content = item
                .content
                .ok_or_else(|| TranslateError::field(path.key("content"), "is required"))?;
            match role {
                Role::System | Role::Developer => {
                    for_each_text(content, path, |text| system.push(Part::text(text)))?;
                }
                Role::User => match content {
                    TextOr::Text(text) => {
                        if !text.is_empty() {
                            turns.user(Part::text(text.into_owned()));
                        }
                    }
                    TextOr::Items(parts) => {
                        for (j, part) in parts.into_iter().enumerate() {
                            if let Some(part) = user_part(part, &path.key("content").index(j))? {
                                turns.user(part);
                            }
                        }
                    }
                },
                Role::Assistant => {
                    let first = turns.model.len();
                    for_each_text(content, path, |text| turns.model(Part::text(text)))?;
                    let signature = item.id.as_deref().and_then(|id| signatures.messages.get(id));
                    if let (Some(signature), Some(last)) = (signature, turns.model[first..].last_mut()) {
                        last.thought_signature.get_or_insert_with(|| signature.clone());
                    }
                }
            }
        }
        "function_call" => {
            let call_id = required_id(item.call_id, path)?;
            let name = item
                .name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
            let args = call_arguments(item.arguments, &path.key("arguments"))?;
            let name = tools.gemini_name(item.namespace.as_deref(), &name, false);
            turns.model(call_part(call_id, name, args, signatures));
        }
        "custom_tool_call" => {
            let call_id = required_id(item.call_id, path)?;
            let name = item
                .name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
            let mut args = Map::with_capacity(1);
            args.insert(CUSTOM_INPUT.to_owned(), Value::String(item.input.unwrap_or_default()));
            let name = tools.gemini_name(None, &name, true);
            turns.model(call_part(call_id, name, Value::Object(args), signatures));
        }
        "local_shell_call" => {
            // Codex's older built-in shell, replayed as a call of that name.
            let call_id = required_id(item.call_id.or(item.id), path)?;
            let args = match item.action {
                Some(v @ Value::Object(_)) => v,
                _ => return Err(TranslateError::field(path.key("action"), "must be an object")),
            };
            turns.model(call_part(call_id, "local_shell".to_owned(), args, signatures));
        }
        "function_call_output" | "custom_tool_call_output" | "local_shell_call_output" => {
            let call_id = if kind == "local_shell_call_output" {
                required_id(item.call_id.or(item.id), path)?
            } else {
                required_id(item.call_id, path)?
            };
            let name = turns.call_name(&call_id).ok_or_else(|| {
                TranslateError::field(
                    path.key("call_id"),
                    format!("`{call_id}` does not match the call_id of any earlier call in `input`"),
                )
            })?;
            let (text, media) = tool_output(item.output, &path.key("output"))?;
            let mut response = Map::with_capacity(1);
            response.insert("content".to_owned(), Value::String(text));
            turns.user(Part {
                function_response: Some(FunctionResponse {
                    id: Some(call_id),
                    name,
                    response: Value::Object(response),
                    extra: Map::new(),
                }),
                ..Part::default()
            });
            for part in media {
                turns.user(part);
            }
        }
        // Signatures were collected beforehand; summaries are not replayed.
        "reasoning" => {}
        "item_reference" => {
            return Err(TranslateError::field(
                path,
                format!(
                    "is an item_reference ({}), but {NO_STATE}: send the item itself",
                    item.id.as_deref().map_or("without an id".to_owned(), |id| format!("`{id}`"))
                ),
            ))
        }
        // Items of tools Gemini does not have (the request that made them
        // went to OpenAI): nothing to replay, and their results are theirs.
        "web_search_call" | "file_search_call" | "computer_call" | "computer_call_output"
        | "image_generation_call" | "code_interpreter_call" | "mcp_list_tools" | "mcp_call"
        | "mcp_approval_request" | "mcp_approval_response" | "tool_search_call" | "tool_search_output"
        | "compaction" => {}
        other => {
            return Err(TranslateError::field(
                path.key("type"),
                format!(
                    "`{other}` is not supported (use message, function_call, function_call_output, custom_tool_call, custom_tool_call_output or reasoning)"
                ),
            ))
        }
    }
    Ok(())
}

fn required_id(id: Option<String>, path: &At<'_>) -> Result<String, TranslateError> {
    id.filter(|i| !i.is_empty()).ok_or_else(|| TranslateError::field(path.key("call_id"), "is required"))
}

/// A replayed call, with the signature Gemini gave it when it came from here.
fn call_part(call_id: String, name: String, args: Value, signatures: &Signatures) -> Part {
    Part {
        thought_signature: signatures.calls.get(&call_id).cloned(),
        function_call: Some(FunctionCall { id: Some(call_id), name, args: Some(args), extra: Map::new() }),
        ..Part::default()
    }
}

/// A call's `arguments`: JSON text of an object (empty means none).
fn call_arguments(arguments: Option<Value>, path: &At<'_>) -> Result<Value, TranslateError> {
    let not_text = || TranslateError::field(path, "must be a JSON object encoded as a string");
    let text = match &arguments {
        None | Some(Value::Null) => return Ok(Value::Object(Map::new())),
        Some(Value::String(text)) => text.trim(),
        Some(_) => return Err(not_text()),
    };
    if text.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(not_text()),
        Err(e) => Err(TranslateError::field(path, format!("is not valid JSON: {e}"))),
    }
}

/// Calls `f` with each non-empty text of a text-only `content` (system,
/// developer and assistant messages; a `refusal` counts as text).
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
                let text = match part.kind.as_deref() {
                    Some("input_text" | "output_text" | "text") | None if part.text.is_some() => part.text,
                    Some("refusal") if part.refusal.is_some() => part.refusal,
                    kind => {
                        return Err(TranslateError::field(
                            path.key("content").index(j),
                            format!("must be a text part here (got type `{}`)", kind.unwrap_or("(missing)")),
                        ))
                    }
                };
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    f(text)
                }
            }
        }
    }
    Ok(())
}

/// One part of a user message (or of a tool result); `None` for an empty text.
fn user_part(part: ContentPart<'_>, path: &At<'_>) -> Result<Option<Part>, TranslateError> {
    let missing = |field: &'static str| TranslateError::field(path.key(field), "is required");
    let inline = |blob: Blob| Part { inline_data: Some(blob), ..Part::default() };
    let kind = part.kind.as_deref().ok_or_else(|| missing("type"))?;
    Ok(match kind {
        "input_text" | "output_text" | "text" => {
            part.text.ok_or_else(|| missing("text")).map(|t| (!t.is_empty()).then(|| Part::text(t)))?
        }
        "refusal" => part.refusal.filter(|t| !t.is_empty()).map(Part::text),
        "input_image" => match (part.image_url, part.file_id) {
            (Some(UrlField(url)), _) => Some(inline(blob_from_data_url(url, &path.key("image_url"))?)),
            (None, Some(_)) => return Err(TranslateError::field(
                path.key("file_id"),
                "is not supported: uploaded files cannot be used; send the image inline in `image_url` as a data: URL",
            )),
            (None, None) => return Err(missing("image_url")),
        },
        "input_file" => match (part.file_data, part.file_id, part.file_url) {
            (Some(data), _, _) => Some(inline(file_blob(data, part.filename.as_deref(), &path.key("file_data"))?)),
            (None, Some(_), _) => return Err(TranslateError::field(
                path.key("file_id"),
                "is not supported: uploaded files cannot be used; send the file inline in `file_data` as a data: URL",
            )),
            (None, None, Some(_)) => return Err(TranslateError::field(
                path.key("file_url"),
                "is not supported: this proxy does not fetch URLs; send the file inline in `file_data` as a data: URL",
            )),
            (None, None, None) => return Err(missing("file_data")),
        },
        "input_audio" => {
            let audio = part.input_audio.ok_or_else(|| missing("input_audio"))?;
            let data = audio.data.ok_or_else(|| missing("input_audio.data"))?;
            let format = audio.format.ok_or_else(|| missing("input_audio.format"))?;
            Some(inline(Blob { mime_type: format!("audio/{format}"), data }))
        }
        other => {
            return Err(TranslateError::field(
                path.key("type"),
                format!("`{other}` is not supported (use input_text, input_image, input_file or input_audio)"),
            ))
        }
    })
}

/// `input_file.file_data`: a data: URL, or bare base64 whose type the file
/// name tells.
fn file_blob(data: String, filename: Option<&str>, path: &At<'_>) -> Result<Blob, TranslateError> {
    if !data.starts_with("data:") {
        let ext = filename.and_then(|f| f.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
        let mime = match ext.as_deref() {
            Some("pdf") => Some("application/pdf"),
            Some("txt" | "md") => Some("text/plain"),
            Some("png") => Some("image/png"),
            Some("jpg" | "jpeg") => Some("image/jpeg"),
            Some("webp") => Some("image/webp"),
            _ => None,
        };
        if let Some(mime) = mime {
            return Ok(Blob { mime_type: mime.to_owned(), data });
        }
    }
    blob_from_data_url(data, path)
}

/// A tool result: its text (text parts joined by newlines) and the media
/// parts that follow the `functionResponse`.
fn tool_output(output: Option<Value>, path: &At<'_>) -> Result<(String, Vec<Part>), TranslateError> {
    match output {
        None | Some(Value::Null) => Ok((String::new(), Vec::new())),
        Some(Value::String(text)) => Ok((text, Vec::new())),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            let mut media = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let part = ContentPart::deserialize(part)
                    .map_err(|e| TranslateError::field(path.index(j), shared::clean_reason(e.to_string())))?;
                match user_part(part, &path.index(j))? {
                    Some(Part { text: Some(t), .. }) => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(&t);
                    }
                    Some(other) => media.push(other),
                    None => {}
                }
            }
            Ok((text, media))
        }
        Some(_) => Err(TranslateError::field(path, "must be a string or an array of content parts")),
    }
}

fn thinking_config(reasoning: ReasoningIn<'_>) -> Result<Option<ThinkingConfig>, TranslateError> {
    let budget = match reasoning.effort.as_deref() {
        None => None,
        Some("none") => Some(0),
        Some("minimal") => Some(128),
        Some("low") => Some(1024),
        Some("medium") => Some(8192),
        Some("high" | "xhigh") => Some(24576),
        Some(other) => {
            return Err(TranslateError::field(
                "reasoning.effort",
                format!("`{other}` is not one of none, minimal, low, medium, high, xhigh"),
            ))
        }
    };
    let summary = reasoning.summary.or(reasoning.generate_summary);
    let include_thoughts = summary.is_some_and(|s| s != "none").then_some(true);
    Ok((budget.is_some() || include_thoughts.is_some()).then(|| ThinkingConfig {
        thinking_budget: budget,
        include_thoughts,
        ..ThinkingConfig::default()
    }))
}

/// `text.format`: `text`, `json_object` or `json_schema` (whose `schema`
/// sits beside `type`, unlike chat's `response_format`).
fn text_format(format: Value, config: &mut GenerationConfig) -> Result<(), TranslateError> {
    let bad = || {
        TranslateError::field(
            "text.format",
            r#"must be {"type":"text"}, {"type":"json_object"} or {"type":"json_schema","name":…,"schema":…}"#,
        )
    };
    let Value::Object(mut format) = format else {
        return Err(bad());
    };
    let kind = format.get("type").and_then(Value::as_str).map(str::to_owned);
    let schema = match kind.as_deref() {
        Some("json_schema") => Some(
            format
                .get_mut("schema")
                .map(Value::take)
                .filter(|s| !s.is_null())
                .ok_or_else(|| TranslateError::field("text.format.schema", "is required"))?,
        ),
        _ => None,
    };
    if !shared::json_output(config, kind.as_deref(), schema) {
        return Err(bad());
    }
    Ok(())
}

fn tool_choice(choice: &Value, tools: &ToolMap) -> Result<Option<ToolConfig>, TranslateError> {
    let bad = || {
        TranslateError::field(
            "tool_choice",
            r#"must be "none", "auto", "required", {"type":"function","name":…}, {"type":"custom","name":…} or {"type":"allowed_tools",…}"#,
        )
    };
    let name_of = |v: &Value, custom: bool| {
        v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).map(|name| {
            let namespace = v.get("namespace").and_then(Value::as_str);
            tools.gemini_name(namespace, name, custom)
        })
    };
    if let Some(mode) = choice.as_str() {
        return Ok(Some(match mode {
            "auto" => ToolConfig::mode("AUTO", None),
            "none" => ToolConfig::mode("NONE", None),
            "required" => ToolConfig::mode("ANY", None),
            _ => return Err(bad()),
        }));
    }
    Ok(match choice.get("type").and_then(Value::as_str) {
        Some(kind @ ("function" | "custom")) => {
            Some(ToolConfig::mode("ANY", Some(name_of(choice, kind == "custom").ok_or_else(bad)?)))
        }
        Some("allowed_tools") => {
            let names: Vec<String> = choice
                .get("tools")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|t| name_of(t, t.get("type").and_then(Value::as_str) == Some("custom")))
                        .collect()
                })
                .unwrap_or_default();
            match choice.get("mode").and_then(Value::as_str) {
                // Gemini restricts the functions only when one must be called.
                Some("required") if !names.is_empty() => {
                    let mut config = ToolConfig::mode("ANY", None);
                    if let Some(calling) = config.function_calling_config.as_mut() {
                        calling.allowed_function_names = Some(names);
                    }
                    Some(config)
                }
                Some("required") => Some(ToolConfig::mode("ANY", None)),
                _ => Some(ToolConfig::mode("AUTO", None)),
            }
        }
        // Forcing a built-in tool: it was dropped, nothing to force.
        Some(_) => None,
        None => return Err(bad()),
    })
}

// ---------------------------------------------------------------------------
// Tools and their names
// ---------------------------------------------------------------------------

/// The one parameter of a custom (free-form) tool declared as a function.
const CUSTOM_INPUT: &str = "input";

/// Longest function name Gemini accepts.
const MAX_NAME: usize = 64;

/// How the client's tools were named to Gemini, to give the model's calls
/// back as the client declared them, and which built-in tools were dropped.
/// Made by [`parse_request_with_tools`]; the default (no tools) leaves every
/// name as Gemini sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolMap {
    /// Only the tools whose Gemini name or kind differs from a plain function
    /// of the same name: namespaced, custom or renamed ones.
    entries: Vec<ToolEntry>,
    dropped: Vec<String>,
    /// The request runs Google Search (its only tool was `web_search`).
    search: bool,
    /// A `web_search` tool was left out for the functions.
    search_dropped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ToolEntry {
    gemini: String,
    namespace: Option<String>,
    name: String,
    custom: bool,
}

/// A function the model called, under the name the client declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientTool<'a> {
    /// The namespace tool it belongs to, if any.
    namespace: Option<&'a str>,
    /// Its name (within the namespace).
    name: &'a str,
    /// A custom (free-form) tool: its call is a `custom_tool_call`.
    custom: bool,
}

impl ToolMap {
    /// The built-in tools this proxy dropped, by type (`web_search`,
    /// `tool_search`, …), for one line of log.
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// Whether a `web_search` tool was left out because the request also
    /// declares functions (Gemini cannot mix them).
    pub fn search_dropped(&self) -> bool {
        self.search_dropped
    }

    /// The client's name for the function Gemini called `gemini`.
    fn client_tool<'a>(&'a self, gemini: &'a str) -> ClientTool<'a> {
        match self.entries.iter().find(|e| e.gemini == gemini) {
            Some(e) => ClientTool { namespace: e.namespace.as_deref(), name: &e.name, custom: e.custom },
            None => ClientTool { namespace: None, name: gemini, custom: false },
        }
    }

    /// The Gemini name of a declared tool (or, for one not declared in this
    /// request, the name it would have been given).
    fn gemini_name(&self, namespace: Option<&str>, name: &str, custom: bool) -> String {
        self.entries
            .iter()
            .find(|e| e.namespace.as_deref() == namespace && e.name == name && e.custom == custom)
            .map_or_else(|| encode_name(namespace, name), |e| e.gemini.clone())
    }

    /// Declares a tool: returns its Gemini name, unique in this request.
    fn declare(&mut self, namespace: Option<&str>, name: &str, custom: bool, taken: &mut Vec<String>) -> String {
        let mut gemini = encode_name(namespace, name);
        let mut n = 2;
        while taken.contains(&gemini) {
            let suffix = format!("_{n}");
            gemini = encode_name(namespace, name);
            gemini.truncate(MAX_NAME - suffix.len());
            gemini.push_str(&suffix);
            n += 1;
        }
        if namespace.is_some() || custom || gemini != name {
            self.entries.push(ToolEntry {
                gemini: gemini.clone(),
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
                custom,
            });
        }
        taken.push(gemini.clone());
        gemini
    }
}

/// A tool's Gemini function name: `<namespace>__<name>`, every character
/// outside `[A-Za-z0-9_-]` made `_`, starting with a letter or `_`, and at
/// most 64 characters (longer ones keep 55 and a hash of the whole). The
/// same tool always gets the same name, so replayed calls match.
fn encode_name(namespace: Option<&str>, name: &str) -> String {
    let mut out = String::with_capacity(namespace.map_or(0, |n| n.len() + 2) + name.len());
    let mut push = |s: &str| {
        out.extend(s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }))
    };
    if let Some(ns) = namespace {
        push(ns);
        push("__");
    }
    push(name);
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    if out.len() > MAX_NAME {
        // FNV-1a over what the client sent: stable across requests.
        let hash = namespace
            .unwrap_or("")
            .bytes()
            .chain([0])
            .chain(name.bytes())
            .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        out.truncate(MAX_NAME - 9);
        out.push_str(&format!("_{hash:08x}"));
    }
    out
}

/// The Gemini tools: the client's functions, or Gemini's `googleSearch` for
/// a `web_search` tool when there are none (Gemini cannot mix the two).
/// Dropped tools are recorded in `map`.
fn translate_tools(tools: Vec<ToolIn<'_>>, map: &mut ToolMap) -> Result<Vec<Tool>, TranslateError> {
    let mut decls = Vec::new();
    let mut taken = Vec::new();
    let mut web_search = false;
    for (j, tool) in tools.into_iter().enumerate() {
        let path = At::root("tools").index(j);
        match tool.kind.as_deref() {
            None | Some("function") => decls.push(declare_function(tool, None, &path, map, &mut taken)?),
            Some("custom") => decls.push(declare_custom(tool, &path, map, &mut taken)?),
            Some("namespace") => {
                let namespace = tool
                    .name
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
                let about = tool.description.filter(|d| !d.is_empty());
                for (k, member) in tool.tools.unwrap_or_default().into_iter().enumerate() {
                    let member_path = path.key("tools").index(k);
                    match member.kind.as_deref() {
                        None | Some("function") => {
                            let context = Some((namespace.as_str(), about.as_deref()));
                            let mut decl = declare_function(member, context, &member_path, map, &mut taken)?;
                            if decl.description.is_none() {
                                decl.description = about.clone();
                            }
                            decls.push(decl);
                        }
                        Some(other) => map.dropped.push(format!("{namespace}.{other}")),
                    }
                }
            }
            Some(kind) if kind.starts_with("web_search") => web_search = true,
            Some(kind) => map.dropped.push(kind.to_owned()),
        }
    }
    if decls.is_empty() && web_search {
        let mut extra = Map::with_capacity(1);
        extra.insert("googleSearch".to_owned(), Value::Object(Map::new()));
        map.search = true;
        return Ok(vec![Tool { function_declarations: None, extra }]);
    }
    map.search_dropped = web_search;
    Ok(function_tools(decls))
}

fn declare_function(
    tool: ToolIn<'_>,
    namespace: Option<(&str, Option<&str>)>,
    path: &At<'_>,
    map: &mut ToolMap,
    taken: &mut Vec<String>,
) -> Result<FunctionDeclaration, TranslateError> {
    let name =
        tool.name.filter(|n| !n.is_empty()).ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
    let gemini = map.declare(namespace.map(|(ns, _)| ns), &name, false, taken);
    let description = match (tool.description.filter(|d| !d.is_empty()), namespace) {
        (Some(d), Some((ns, Some(about)))) => Some(format!("{d}\n\n(From the `{ns}` tools: {about})")),
        (d, _) => d,
    };
    Ok(function_declaration(gemini, description, tool.parameters))
}

/// A custom tool as a function of one string, `input`; its grammar, if it
/// has one, goes in the description for the model to follow.
fn declare_custom(
    tool: ToolIn<'_>,
    path: &At<'_>,
    map: &mut ToolMap,
    taken: &mut Vec<String>,
) -> Result<FunctionDeclaration, TranslateError> {
    let name =
        tool.name.filter(|n| !n.is_empty()).ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
    let gemini = map.declare(None, &name, true, taken);
    let mut description = tool.description.unwrap_or_default();
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description
        .push_str("Pass the tool's whole free-form text, exactly as the tool expects it (not JSON), in `input`.");
    let format = tool.format.unwrap_or(Value::Null);
    if format.get("type").and_then(Value::as_str) == Some("grammar") {
        if let Some(definition) = format.get("definition").and_then(Value::as_str) {
            let syntax = format.get("syntax").and_then(Value::as_str).unwrap_or("lark");
            description.push_str(&format!(" The text must match this {syntax} grammar:\n{definition}"));
        }
    }
    let schema = json!({
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's free-form input."}},
        "required": [CUSTOM_INPUT],
    });
    Ok(function_declaration(gemini, Some(description), Some(schema)))
}

// ---------------------------------------------------------------------------
// Thought signatures in reasoning items
// ---------------------------------------------------------------------------

/// Marks the `encrypted_content` this proxy made (see the module docs).
const SIGNATURE_PREFIX: &str = "grantpool:";

/// The output item a carried signature belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    /// A function or custom tool call, by `call_id`.
    Call(&'a str),
    /// An assistant message's text, by message id.
    Message(&'a str),
}

/// `encrypted_content` carrying `signature` for `target`.
fn seal(target: Target<'_>, signature: &str) -> String {
    let (kind, id) = match target {
        Target::Call(id) => ("call", id),
        Target::Message(id) => ("msg", id),
    };
    let mut out = String::with_capacity(SIGNATURE_PREFIX.len() + 6 + id.len() * 4 / 3 + 4 + signature.len());
    out.push_str(SIGNATURE_PREFIX);
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
fn unseal(sealed: &str) -> Option<(bool, String, &str)> {
    let rest = sealed.strip_prefix(SIGNATURE_PREFIX)?;
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
struct Signatures {
    calls: std::collections::HashMap<String, String>,
    messages: std::collections::HashMap<String, String>,
}

impl Signatures {
    fn collect(items: &[Item<'_>]) -> Self {
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

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

/// Responses `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens (cached ones included).
    pub input_tokens: u64,
    /// Cached prompt tokens.
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens, thinking included.
    pub output_tokens: u64,
    /// Thinking tokens.
    pub output_tokens_details: OutputTokensDetails,
    /// Total.
    pub total_tokens: u64,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InputTokensDetails {
    /// Prompt tokens served from cache.
    pub cached_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputTokensDetails {
    /// Thinking tokens.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Responses usage from Gemini's `usageMetadata` (zeros when absent).
    pub fn from_gemini(usage: Option<&UsageMetadata>) -> Self {
        usage.map_or_else(Usage::default, |u| Usage {
            input_tokens: u.prompt(),
            input_tokens_details: InputTokensDetails { cached_tokens: u.cached() },
            output_tokens: u.output(),
            output_tokens_details: OutputTokensDetails { reasoning_tokens: u.thoughts_token_count.unwrap_or(0) },
            total_tokens: u.total(),
        })
    }
}

/// `status` and `incomplete_details.reason` for a Gemini finish.
fn outcome(kind: Option<FinishKind>) -> (&'static str, Option<&'static str>) {
    match kind {
        Some(FinishKind::MaxTokens) => ("incomplete", Some("max_output_tokens")),
        Some(FinishKind::Filtered) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// Builds the `response` object for a (non-streamed) Gemini response.
/// `model` is echoed as the client sent it. Namespaced and custom tools come
/// back under their own names only with [`response_with_tools`].
pub fn response_from_gemini(resp: &GenerateContentResponse, model: &str) -> Value {
    response_with_tools(resp, model, &ToolMap::default())
}

/// [`response_from_gemini`], giving calls back under the names in `tools`.
pub fn response_with_tools(resp: &GenerateContentResponse, model: &str, tools: &ToolMap) -> Value {
    let id = match resp.response_id.as_deref() {
        Some(id) if !id.is_empty() => format!("resp_{id}"),
        _ => new_id("resp_"),
    };
    let mut out = Output::new(tools.clone(), false);
    if let Some(meta) = resp.grounding() {
        out.grounding(meta);
    }
    for part in resp.parts() {
        out.part(part);
    }
    out.flush_search();
    out.annotate();
    out.close();
    let (status, reason) = outcome(FinishKind::of_response(resp));
    let head = Head { id: &id, model, created_at: unix_now() };
    head.object(status, out.items, Some(Usage::from_gemini(resp.usage_metadata.as_ref())), reason, None)
}

/// An error body in OpenAI's shape: `{"error":{"message","type","param","code"}}`
/// (the same as for chat completions).
pub fn error_body(status: u16, message: &str) -> Value {
    openai_chat::error_body(status, message)
}

/// What every `response` object of one answer shares.
struct Head<'a> {
    id: &'a str,
    model: &'a str,
    created_at: u64,
}

impl Head<'_> {
    /// The `response` object, with the fields the SDKs expect.
    fn object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Usage>,
        incomplete: Option<&str>,
        error: Option<Value>,
    ) -> Value {
        let mut obj = Map::with_capacity(24);
        let mut put = |k: &str, v: Value| {
            obj.insert(k.to_owned(), v);
        };
        put("id", self.id.into());
        put("object", "response".into());
        put("created_at", self.created_at.into());
        put("status", status.into());
        if status == "completed" {
            put("completed_at", unix_now().into());
        }
        put("background", false.into());
        put("error", error.unwrap_or(Value::Null));
        put("incomplete_details", incomplete.map_or(Value::Null, |r| json!({"reason": r})));
        put("instructions", Value::Null);
        put("max_output_tokens", Value::Null);
        put("model", self.model.into());
        put("output", Value::Array(output));
        put("parallel_tool_calls", true.into());
        put("previous_response_id", Value::Null);
        put("reasoning", json!({"effort": null, "summary": null}));
        put("store", false.into());
        put("temperature", Value::Null);
        put("text", json!({"format": {"type": "text"}}));
        put("tool_choice", "auto".into());
        put("tools", Value::Array(Vec::new()));
        put("top_p", Value::Null);
        put("truncation", "disabled".into());
        put("usage", usage.map_or(Value::Null, |u| serde_json::to_value(u).expect("usage serializes")));
        put("user", Value::Null);
        put("metadata", Value::Object(Map::new()));
        Value::Object(obj)
    }
}

// ---------------------------------------------------------------------------
// Output items, whole or streamed
// ---------------------------------------------------------------------------

/// The events of one answer, numbered; nothing is made when not streaming.
struct Sink {
    live: bool,
    seq: u64,
    events: Vec<SseEvent>,
}

impl Sink {
    /// An event: `type` and `sequence_number`, then `fields`' entries.
    fn emit(&mut self, name: &'static str, fields: impl FnOnce() -> Value) {
        if !self.live {
            return;
        }
        let mut obj = Map::new();
        obj.insert("type".to_owned(), name.into());
        obj.insert("sequence_number".to_owned(), self.seq.into());
        if let Value::Object(fields) = fields() {
            obj.extend(fields);
        }
        self.seq += 1;
        self.events.push(SseEvent::named(name, Value::Object(obj).to_string()));
    }

    /// A text delta, without copying the text into a `Value`.
    fn delta(&mut self, name: &'static str, item_id: &str, output_index: usize, index: DeltaIndex, delta: &str) {
        if !self.live {
            return;
        }
        let (content_index, summary_index, logprobs) = match index {
            DeltaIndex::Content => (Some(0), None, Some([])),
            DeltaIndex::Summary => (None, Some(0), None),
            DeltaIndex::None => (None, None, None),
        };
        let event = DeltaEvent {
            kind: name,
            sequence_number: self.seq,
            item_id,
            output_index,
            content_index,
            summary_index,
            delta,
            logprobs,
        };
        self.seq += 1;
        self.events.push(SseEvent::named(name, serde_json::to_string(&event).expect("event serializes")));
    }
}

#[derive(Clone, Copy)]
enum DeltaIndex {
    /// A message's one `output_text` part.
    Content,
    /// A reasoning item's one summary part.
    Summary,
    /// Call arguments or input.
    None,
}

#[derive(Serialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Reasoning,
    Message,
}

/// The output item being streamed: a reasoning summary or a message's text.
#[derive(Debug)]
struct Open {
    kind: OpenKind,
    id: String,
    index: usize,
    text: String,
    /// A reasoning item: the signature of its thoughts, for the item after.
    /// A message: the one Gemini sent on its text, sent after it.
    signature: Option<String>,
    /// A message's `url_citation` annotations (a grounded answer's).
    annotations: Vec<Value>,
}

/// The output items of one answer, built part by part. Gemini sends each
/// call whole; text and thoughts come in pieces, so one message or
/// reasoning item at a time stays open until a part of another kind comes.
///
/// With Google Search on (the request's `web_search`), the answer text is
/// held back until Gemini's sources come (with its last events), so that
/// the `web_search_call` items come before the message, as OpenAI orders
/// them.
struct Output {
    tools: ToolMap,
    items: Vec<Value>,
    open: Option<Open>,
    sink: Sink,
    grounding: Grounding,
    /// Text parts held back until the search items are out.
    held: Vec<Part>,
    /// The search items are out (or there are none to send).
    searched: bool,
}

impl Output {
    fn new(tools: ToolMap, live: bool) -> Self {
        let searched = !tools.search;
        Output {
            tools,
            items: Vec::new(),
            open: None,
            sink: Sink { live, seq: 0, events: Vec::new() },
            grounding: Grounding::default(),
            held: Vec::new(),
            searched,
        }
    }

    /// Takes in one chunk's `groundingMetadata` (read only when the
    /// request runs Google Search).
    fn grounding(&mut self, meta: &GroundingMetadata) {
        if self.tools.search {
            self.grounding.add(meta);
        }
    }

    /// The search items once the sources have come (a stream calls this
    /// after each chunk).
    fn search_ready(&mut self) {
        if !self.searched && self.grounding.has_sources() {
            self.flush_search();
        }
    }

    /// The `web_search_call` items (one per query Gemini ran, when it
    /// searched), then the text held back.
    fn flush_search(&mut self) {
        if std::mem::replace(&mut self.searched, true) {
            return;
        }
        if self.grounding.searched() {
            self.close();
            let mut queries = self.grounding.queries.clone();
            if queries.is_empty() {
                queries.push(String::new());
            }
            for query in queries {
                let id = new_id("ws_");
                let index = self.items.len();
                self.sink.emit("response.output_item.added", || {
                    json!({"output_index": index, "item": {"id": id, "type": "web_search_call", "status": "in_progress",
                           "action": {"type": "search", "query": query}}})
                });
                for stage in [
                    "response.web_search_call.in_progress",
                    "response.web_search_call.searching",
                    "response.web_search_call.completed",
                ] {
                    self.sink.emit(stage, || json!({"item_id": id, "output_index": index}));
                }
                let item = json!({"id": id, "type": "web_search_call", "status": "completed",
                                  "action": {"type": "search", "query": query}});
                self.done(index, item);
            }
        }
        for part in std::mem::take(&mut self.held) {
            self.part(&part);
        }
    }

    /// The `url_citation` annotations of the open message (a grounded
    /// answer's), before it closes: one per cited span and source, at
    /// character offsets.
    fn annotate(&mut self) {
        if !self.tools.search || !self.grounding.has_sources() {
            return;
        }
        let Some(open) = self.open.as_mut().filter(|o| o.kind == OpenKind::Message) else {
            return;
        };
        let sources = self.grounding.sources();
        for cited in self.grounding.citations(&open.text) {
            let (start, end) = (char_index(&open.text, cited.range.start), char_index(&open.text, cited.range.end));
            for &i in &cited.sources {
                let annotation = json!({"type": "url_citation", "start_index": start, "end_index": end,
                                        "url": sources[i].url, "title": sources[i].title});
                let (id, index, n) = (&open.id, open.index, open.annotations.len());
                self.sink.emit("response.output_text.annotation.added", || {
                    json!({"item_id": id, "output_index": index, "content_index": 0, "annotation_index": n,
                           "annotation": annotation.clone()})
                });
                open.annotations.push(annotation);
            }
        }
    }

    fn part(&mut self, part: &Part) {
        if !self.searched {
            if part.function_call.is_some() {
                self.flush_search();
            } else if part.text.is_some() && !part.is_thought() {
                self.held.push(part.clone());
                return;
            }
        }
        let signature = part.thought_signature.as_deref().filter(|s| !s.is_empty());
        if part.is_thought() {
            if self.open_kind() != Some(OpenKind::Reasoning) {
                self.close();
                self.open_item(OpenKind::Reasoning, new_id("rs_"));
            }
            self.append(part.text.as_deref().unwrap_or(""));
            if let (Some(open), Some(s)) = (self.open.as_mut(), signature) {
                open.signature = Some(s.to_owned());
            }
        } else if let Some(call) = &part.function_call {
            self.call(call, signature);
        } else if let Some(text) = part.text.as_deref() {
            self.text(text, signature);
        }
        // Other parts (inline data, executable code, …) have no Responses item.
    }

    fn open_kind(&self) -> Option<OpenKind> {
        self.open.as_ref().map(|o| o.kind)
    }

    /// The signature of the open reasoning item's thoughts, which belongs to
    /// the item after them.
    fn take_thought_signature(&mut self) -> Option<String> {
        match self.open.as_mut() {
            Some(open) if open.kind == OpenKind::Reasoning => open.signature.take(),
            _ => None,
        }
    }

    /// Closes the open item before a new one: a reasoning item carries
    /// `sealed`, the signature for the item that follows it.
    fn close_before(&mut self, sealed: Option<String>) {
        match self.open_kind() {
            Some(OpenKind::Reasoning) => self.close_reasoning(sealed),
            other => {
                if other.is_some() {
                    self.close();
                }
                if let Some(sealed) = sealed {
                    self.bare_reasoning(sealed);
                }
            }
        }
    }

    fn call(&mut self, call: &FunctionCall, signature: Option<&str>) {
        let call_id = match call.id.as_deref() {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => new_id("call_"),
        };
        let signature = signature.map(str::to_owned).or_else(|| self.take_thought_signature());
        self.close_before(signature.map(|s| seal(Target::Call(&call_id), &s)));
        let index = self.items.len();
        let tool = self.tools.client_tool(&call.name);
        let (name, namespace) = (tool.name.to_owned(), tool.namespace.map(str::to_owned));
        if tool.custom {
            let id = new_id("ctc_");
            let input = custom_input(call);
            self.sink.emit("response.output_item.added", || {
                json!({"output_index": index, "item": {"id": id, "type": "custom_tool_call", "status": "in_progress",
                       "call_id": call_id, "name": name, "input": ""}})
            });
            if !input.is_empty() {
                self.sink.delta("response.custom_tool_call_input.delta", &id, index, DeltaIndex::None, &input);
            }
            self.sink.emit(
                "response.custom_tool_call_input.done",
                || json!({"item_id": id, "output_index": index, "input": input}),
            );
            let item = json!({"id": id, "type": "custom_tool_call", "status": "completed", "call_id": call_id,
                              "name": name, "input": input});
            self.done(index, item);
        } else {
            let id = new_id("fc_");
            let arguments = args_json(call);
            let item = |status: &str, arguments: &str| {
                let mut item = json!({"id": id, "type": "function_call", "status": status,
                                      "arguments": arguments, "call_id": call_id, "name": name});
                if let Some(ns) = &namespace {
                    item["namespace"] = ns.as_str().into();
                }
                item
            };
            self.sink
                .emit("response.output_item.added", || json!({"output_index": index, "item": item("in_progress", "")}));
            self.sink.delta("response.function_call_arguments.delta", &id, index, DeltaIndex::None, &arguments);
            self.sink.emit(
                "response.function_call_arguments.done",
                || json!({"item_id": id, "output_index": index, "name": name, "arguments": arguments}),
            );
            let done = item("completed", &arguments);
            self.done(index, done);
        }
    }

    fn text(&mut self, text: &str, signature: Option<&str>) {
        if self.open_kind() == Some(OpenKind::Message) {
            self.append(text);
            if let (Some(open), Some(s)) = (self.open.as_mut(), signature) {
                open.signature.get_or_insert_with(|| s.to_owned());
            }
            return;
        }
        if text.is_empty() {
            // A bare signature (Gemini ends some streams so): it belongs to
            // the thoughts being streamed, or to the item just before.
            let Some(s) = signature else { return };
            if let Some(open) = self.open.as_mut() {
                open.signature = Some(s.to_owned());
            } else if let Some(sealed) = self.items.last().and_then(|item| seal_for(item, s)) {
                self.bare_reasoning(sealed);
            }
            return;
        }
        let id = new_id("msg_");
        let signature = signature.map(str::to_owned).or_else(|| self.take_thought_signature());
        self.close_before(signature.map(|s| seal(Target::Message(&id), &s)));
        self.open_item(OpenKind::Message, id);
        self.append(text);
    }

    fn open_item(&mut self, kind: OpenKind, id: String) {
        let index = self.items.len();
        match kind {
            OpenKind::Reasoning => self.sink.emit(
                "response.output_item.added",
                || json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
            ),
            OpenKind::Message => {
                self.sink.emit("response.output_item.added", || {
                    json!({"output_index": index, "item": {"id": id, "type": "message", "status": "in_progress",
                           "role": "assistant", "content": []}})
                });
                self.sink.emit("response.content_part.added", || {
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                           "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
                });
            }
        }
        self.open = Some(Open { kind, id, index, text: String::new(), signature: None, annotations: Vec::new() });
    }

    /// Adds text to the open item.
    fn append(&mut self, text: &str) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if text.is_empty() {
            return;
        }
        match open.kind {
            OpenKind::Message => {
                self.sink.delta("response.output_text.delta", &open.id, open.index, DeltaIndex::Content, text)
            }
            OpenKind::Reasoning => {
                if open.text.is_empty() {
                    let (id, index) = (&open.id, open.index);
                    self.sink.emit("response.reasoning_summary_part.added", || {
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                               "part": {"type": "summary_text", "text": ""}})
                    });
                }
                self.sink.delta(
                    "response.reasoning_summary_text.delta",
                    &open.id,
                    open.index,
                    DeltaIndex::Summary,
                    text,
                );
            }
        }
        open.text.push_str(text);
    }

    /// Closes the open item (at the end, or before a part of another kind).
    /// A reasoning item closed so carries no signature: its thoughts'
    /// signature, if any, has no item to go on.
    fn close(&mut self) {
        match self.open_kind() {
            None => {}
            Some(OpenKind::Reasoning) => self.close_reasoning(None),
            Some(OpenKind::Message) => {
                let Some(Open { id, index, text, signature, annotations, .. }) = self.open.take() else {
                    return;
                };
                let part = json!({"type": "output_text", "text": text, "annotations": annotations, "logprobs": []});
                self.sink.emit(
                    "response.output_text.done",
                    || json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.sink.emit(
                    "response.content_part.done",
                    || json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                let item = json!({"id": id, "type": "message", "status": "completed", "role": "assistant",
                                  "content": [part]});
                self.done(index, item);
                // A signature Gemini sent on the text comes after it.
                if let Some(s) = signature {
                    self.bare_reasoning(seal(Target::Message(&id), &s));
                }
            }
        }
    }

    fn close_reasoning(&mut self, sealed: Option<String>) {
        let Some(Open { id, index, text, .. }) = self.open.take() else {
            return;
        };
        let summary = if text.is_empty() {
            Vec::new()
        } else {
            let part = json!({"type": "summary_text", "text": text});
            self.sink.emit(
                "response.reasoning_summary_text.done",
                || json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
            );
            self.sink.emit(
                "response.reasoning_summary_part.done",
                || json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
            );
            vec![part]
        };
        let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
        if let Some(sealed) = sealed {
            item["encrypted_content"] = sealed.into();
        }
        self.done(index, item);
    }

    /// A reasoning item with no summary, only a signature to carry.
    fn bare_reasoning(&mut self, sealed: String) {
        let id = new_id("rs_");
        let index = self.items.len();
        self.sink.emit(
            "response.output_item.added",
            || json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
        );
        let item = json!({"id": id, "type": "reasoning", "summary": [], "encrypted_content": sealed});
        self.done(index, item);
    }

    /// `response.output_item.done`, and the item into the output.
    fn done(&mut self, index: usize, item: Value) {
        self.sink.emit("response.output_item.done", || json!({"output_index": index, "item": item.clone()}));
        self.items.push(item);
    }
}

/// `encrypted_content` binding `signature` to an output item already sent.
fn seal_for(item: &Value, signature: &str) -> Option<String> {
    let target = match item.get("type")?.as_str()? {
        "message" => Target::Message(item.get("id")?.as_str()?),
        "function_call" | "custom_tool_call" => Target::Call(item.get("call_id")?.as_str()?),
        _ => return None,
    };
    Some(seal(target, signature))
}

/// A custom tool call's input: the `input` string the model passed (or,
/// should it pass something else, its arguments as JSON).
fn custom_input(call: &FunctionCall) -> String {
    match call.args.as_ref().and_then(|a| a.get(CUSTOM_INPUT)) {
        Some(Value::String(s)) => s.clone(),
        _ => args_json(call),
    }
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// Turns a Gemini stream into Responses streaming events, one Gemini chunk
/// at a time.
///
/// The first events are `response.created` and `response.in_progress`. A
/// message is `response.output_item.added`, `response.content_part.added`,
/// `response.output_text.delta`…, then (when a part of another kind comes,
/// or at the end) `response.output_text.done`, `response.content_part.done`,
/// `response.output_item.done`. Thoughts make a reasoning item the same way
/// with `response.reasoning_summary_part.*` / `reasoning_summary_text.*`.
/// Gemini sends each call whole: `output_item.added`, one
/// `response.function_call_arguments.delta` with all the arguments,
/// `.done`, `output_item.done` (for a custom tool,
/// `response.custom_tool_call_input.*`). [`finish`](Self::finish) closes the
/// open item and sends `response.completed` (or `response.incomplete`) with
/// the whole response and its `usage`. Every event is named
/// (`event: response.…`) and carries `type` and `sequence_number`.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created_at: u64,
    started: bool,
    out: OutputState,
    finish: Option<FinishKind>,
    usage: Usage,
    done: bool,
}

/// [`Output`] behind a `Debug` the translator can derive.
struct OutputState(Output);

impl fmt::Debug for OutputState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("items", &self.0.items.len())
            .field("open", &self.0.open)
            .field("seq", &self.0.sink.seq)
            .finish()
    }
}

impl StreamTranslator {
    /// A translator for one response; `model` is echoed in the response.
    /// Calls keep Gemini's function names (see [`with_tools`](Self::with_tools)).
    pub fn new(model: &str) -> Self {
        Self::with_tools(model, ToolMap::default())
    }

    /// A translator that gives calls back under the names in `tools` (from
    /// [`parse_request_with_tools`]): namespaced functions with their
    /// `namespace`, custom tools as `custom_tool_call` items.
    pub fn with_tools(model: &str, tools: ToolMap) -> Self {
        StreamTranslator {
            id: new_id("resp_"),
            model: model.to_owned(),
            created_at: unix_now(),
            started: false,
            out: OutputState(Output::new(tools, true)),
            finish: None,
            usage: Usage::default(),
            done: false,
        }
    }

    fn head(&self) -> Head<'_> {
        Head { id: &self.id, model: &self.model, created_at: self.created_at }
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        let response = self.head().object("in_progress", Vec::new(), None, None, None);
        let sink = &mut self.out.0.sink;
        sink.emit("response.created", || json!({"response": response.clone()}));
        sink.emit("response.in_progress", || json!({"response": response}));
    }

    fn take_events(&mut self) -> Vec<SseEvent> {
        std::mem::take(&mut self.out.0.sink.events)
    }

    /// Translates one Gemini stream chunk.
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
        self.start();
        if let Some(meta) = chunk.grounding() {
            self.out.0.grounding(meta);
        }
        for part in chunk.parts() {
            self.out.0.part(part);
        }
        self.out.0.search_ready();
        self.take_events()
    }

    /// Whether a Gemini chunk has said the answer is complete (a
    /// `finishReason`, or a blocked prompt). A stream that ends without one
    /// was cut short.
    pub fn saw_finish(&self) -> bool {
        self.finish.is_some()
    }

    /// Closing events: the open item's `.done` events, then
    /// `response.completed` (or `response.incomplete`, for a `MAX_TOKENS` or
    /// content-filter finish) with every output item and `usage`. Nothing
    /// after the stream already ended.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        self.start();
        self.out.0.flush_search();
        self.out.0.annotate();
        self.out.0.close();
        let (status, reason) = outcome(self.finish);
        let response = self.head().object(status, self.out.0.items.clone(), Some(self.usage), reason, None);
        let name = if status == "completed" { "response.completed" } else { "response.incomplete" };
        self.out.0.sink.emit(name, || json!({"response": response}));
        self.take_events()
    }

    /// Ends the stream with an `error` event and `response.failed`, code
    /// `server_error` (which Codex retries).
    pub fn error(&mut self, message: &str) -> Vec<SseEvent> {
        self.error_with_code("server_error", message)
    }

    /// [`error`](Self::error) with another code, e.g. `rate_limit_exceeded`
    /// or `context_length_exceeded` (Codex does not retry the latter and
    /// says the context window is full).
    pub fn error_with_code(&mut self, code: &str, message: &str) -> Vec<SseEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        self.start();
        let error = json!({"code": code, "message": message});
        let response = self.head().object("failed", self.out.0.items.clone(), Some(self.usage), None, Some(error));
        let sink = &mut self.out.0.sink;
        sink.emit("error", || json!({"code": code, "message": message, "param": null}));
        sink.emit("response.failed", || json!({"response": response}));
        self.take_events()
    }
}

#[cfg(test)]
mod tests {
    use super::super::shared::SKIP_THOUGHT_SIGNATURE;
    use super::*;

    /// Codex CLI 0.171.0, model gpt-5.5, second request of a shell round
    /// trip (captured; long texts cut, 4 of its 10 tools kept).
    const CODEX_TURN2: &str = r##"{
 "model":"gpt-5.5",
 "stream":true,
 "input":[
  {"type":"message","id":"msg_0463f048-ccbb-5a98-b057-268b048b2c35","role":"developer","content":[{"type":"input_text","text":"You are Codex, a coding agent based on GPT-5. You and the us…"}]},
  {"type":"message","id":"msg_01a2331d-ab2a-7b03-a0a7-5b8c7158635d","role":"developer","content":[{"type":"input_text","text":"<skills_instructions>\n## Skills\nA skill is a set of local in…"},{"type":"input_text","text":"<permissions instructions>\nFilesystem sandboxing defines whi…"},{"type":"input_text","text":"<tools>\nDeferred tool namespaces:\n- multi_agent_v1: Tools fo…"}]},
  {"type":"message","id":"msg_01a2331d-ab2a-7b03-a0a7-5b97488a78b9","role":"user","content":[{"type":"input_text","text":"<environment_context>\n  <cwd>/work/notes/clis/homes/codex-gp…"}]},
  {"type":"message","id":"msg_01a2331d-ab3a-7763-9593-b146bfc51470","role":"user","content":[{"type":"input_text","text":"TOOLTEST run the echo"}]},
  {"type":"function_call","status":"completed","id":"fc_f2558127a11a4ef3","name":"exec_command","arguments":"{\"cmd\": \"echo MAGIC-4242\"}","call_id":"call_cd762e3c36f34216"},
  {"type":"function_call_output","id":"fco_01a2331d-abe2-7bf0-b09c-7e189a2b114b","call_id":"call_cd762e3c36f34216","output":"Chunk ID: cbd11f\nWall time: 0.0000 seconds\nProcess exited with code 0\nOriginal token count: 3\nOutput:\nMAGIC-4242\n"}
 ],
 "tools":[
  {"type":"function","name":"exec_command","description":"Runs a command in a PTY, returning output or a session ID for ongoing interaction.","strict":false,"parameters":{"type":"object","properties":{"cmd":{"type":"string","description":"Shell command to execute."},"justification":{"type":"string","description":"User-facing approval question for `require_escalated`; omit otherwise."},"login":{"type":"boolean","description":"Request login-shell startup. Omit to inherit."},"max_output_tokens":{"type":"number","description":"Output token budget. Defaults to 10000 tokens; larger requests may be capped by policy."},"prefix_rule":{"type":"array","description":"Reusable approval prefix for `cmd`, only with `sandbox_permissions: \"require_escalated\"`; for example [\"git\", \"pull\"].","items":{"type":"string"}},"sandbox_permissions":{"type":"string","description":"Per-command sandbox override. Defaults to `use_default`; use `require_escalated` for unsandboxed execution.","enum":["use_default","require_escalated"]},"shell":{"type":"string","description":"Shell binary to launch. Defaults to the user's default shell."},"tty":{"type":"boolean","description":"True allocates a PTY for the command; false or omitted uses plain pipes."},"workdir":{"type":"string","description":"Working directory for the command. Defaults to the turn cwd."},"yield_time_ms":{"type":"number","description":"Wait before yielding output. Defaults to 10000 ms; effective range is 250-30000 ms."}},"required":["cmd"],"additionalProperties":false}},
  {"type":"custom","name":"apply_patch","description":"The `apply_patch` tool can be used to edit files. This is a FREEFORM tool, so do not wrap the patch in JSON.","format":{"type":"grammar","syntax":"lark","definition":"start: begin_patch hunk+ end_patch\nbegin_patch: \"*** Begin Patch\" LF\nend_patch: \"*** End Patch\" LF?\n\nhunk: add_hunk | delete_hunk | update_hunk\nadd_hunk: \"*** Add File: \" filename LF add_line+\ndelete_hunk: \"*** Delete File: \" filename LF\nupdate_hunk: \"*** Update File: \" filename LF change_move? change?\n\nfilename: /(.+)/\nadd_line: \"+\" /(.*)/ LF -> line\n\nchange_move: \"*** Move to: \" filename LF\nchange: (change_context | change_line)+ eof_line?\nchange_context: (\"@@\" | \"@@ \" /(.+)/) LF\nchange_line: (\"+\" | \"-\" | \" \") /(.*)/ LF\neof_line: \"*** End of File\" LF\n\n%import common.LF\n"}},
  {"type":"function","name":"view_image","description":"View a local image file from the filesystem when visual inspection is needed. Use this for images already available on disk.","strict":false,"parameters":{"type":"object","properties":{"path":{"type":"string","description":"Local filesystem path to an image file."}},"required":["path"],"additionalProperties":false}},
  {"type":"function","name":"get_goal","description":"Get the current goal for this thread, including status, budgets, token and elapsed-time usage, and remaining token budget.","strict":false,"parameters":{"type":"object","properties":{},"required":[],"additionalProperties":false}},
  {"type":"tool_search","execution":"client","description":"# Tool discovery\n\nSearches over deferred tool metadata with ","parameters":{"type":"object","properties":{"limit":{"type":"number","description":"Maximum number of tools to return. Defaults to 8."},"query":{"type":"string","description":"Search query for deferred tools."}},"required":["query"],"additionalProperties":false}},
  {"type":"web_search","external_web_access":true,"search_content_types":["text","image"]}
 ],
 "tool_choice":"auto",
 "parallel_tool_calls":true,
 "reasoning":{"effort":"medium"},
 "store":false,
 "include":["reasoning.encrypted_content"],
 "prompt_cache_key":"01a2331d-aad0-70b0-ba58-a44efbdab9bf",
 "text":{"verbosity":"low"},
 "client_metadata":{"turn_id":"01a2331d-aaec-76b0-b50f-196dd7db1a62","session_id":"01a2331d-aad0-70b0-ba58-a44efbdab9bf","root_turn_id":"01a2331d-aaec-76b0-b50f-196dd7db1a62","thread_id":"01a2331d-aad0-70b0-ba58-a44efbdab9bf","x-codex-installation-id":"a63a1d5e-c808-44eb-8903-d8267ef8d2a8","x-codex-window-id":"01a2331d-aad0-70b0-ba58-a44efbdab9bf:0","x-codex-turn-metadata":"{\"installation_id\":\"a63a1d5e-c808-44eb-8"}
}"##;

    /// Codex CLI 0.171.0 with a model it has no metadata for (what it sends
    /// for a Gemini model name): a namespace tool and `reasoning.summary`
    /// (captured; long texts cut, 2 of the namespace's 5 tools kept).
    const CODEX_FALLBACK_TURN1: &str = r##"{
 "model":"gpt-5.1-codex",
 "stream":true,
 "input":[
  {"type":"message","id":"msg_13bdf2b3-bd80-5cc6-9e69-59f0fe3dfec8","role":"developer","content":[{"type":"input_text","text":"You are a coding agent running in the Codex CLI, a terminal-…"}]},
  {"type":"message","id":"msg_01a2331b-5a47-7802-9eb9-baffaaec6421","role":"developer","content":[{"type":"input_text","text":"<skills_instructions>\n## Skills\nA skill is a set of local in…"},{"type":"input_text","text":"<permissions instructions>\nFilesystem sandboxing defines whi…"}]},
  {"type":"message","id":"msg_01a2331b-5a47-7802-9eb9-bb0e4e062b80","role":"user","content":[{"type":"input_text","text":"<environment_context>\n  <cwd>/work/notes/clis/homes/codex-to…"}]},
  {"type":"message","id":"msg_01a2331b-5a50-78b0-9c5b-6b37c48117e0","role":"user","content":[{"type":"input_text","text":"TOOLTEST run the echo"}]}
 ],
 "tools":[
  {"type":"function","name":"exec_command","description":"Runs a command in a PTY, returning output or a session ID for ongoing interaction.","strict":false,"parameters":{"type":"object","properties":{"cmd":{"type":"string","description":"Shell command to execute."},"justification":{"type":"string","description":"User-facing approval question for `require_escalated`; omit otherwise."},"login":{"type":"boolean","description":"Request login-shell startup. Omit to inherit."},"max_output_tokens":{"type":"number","description":"Output token budget. Defaults to 10000 tokens; larger requests may be capped by policy."},"prefix_rule":{"type":"array","description":"Reusable approval prefix for `cmd`, only with `sandbox_permissions: \"require_escalated\"`; for example [\"git\", \"pull\"].","items":{"type":"string"}},"sandbox_permissions":{"type":"string","description":"Per-command sandbox override. Defaults to `use_default`; use `require_escalated` for unsandboxed execution.","enum":["use_default","require_escalated"]},"shell":{"type":"string","description":"Shell binary to launch. Defaults to the user's default shell."},"tty":{"type":"boolean","description":"True allocates a PTY for the command; false or omitted uses plain pipes."},"workdir":{"type":"string","description":"Working directory for the command. Defaults to the turn cwd."},"yield_time_ms":{"type":"number","description":"Wait before yielding output. Defaults to 10000 ms; effective range is 250-30000 ms."}},"required":["cmd"],"additionalProperties":false}},
  {"type":"function","name":"view_image","description":"View a local image file from the filesystem when visual inspection is needed. Use this for images already available on disk.","strict":false,"parameters":{"type":"object","properties":{"path":{"type":"string","description":"Local filesystem path to an image file."}},"required":["path"],"additionalProperties":false}},
  {"type":"namespace","name":"multi_agent_v1","description":"Tools for spawning and managing sub-agents.","tools":[{"type":"function","name":"close_agent","description":"Close an agent and any open descendants when they are no longer needed, and return the target agent's previous status before shutdown was requested. Completed agents remain open and count toward the concurrency limit until closed. Don't keep agents open for too long if they are not needed anymore.","strict":false,"parameters":{"type":"object","properties":{"target":{"type":"string","description":"Agent id to close (from spawn_agent)."}},"required":["target"],"additionalProperties":false}},{"type":"function","name":"resume_agent","description":"Resume a previously closed agent by id so it can receive send_input and wait_agent calls.","strict":false,"parameters":{"type":"object","properties":{"id":{"type":"string","description":"Agent id to resume."}},"required":["id"],"additionalProperties":false}}]},
  {"type":"function","name":"get_goal","description":"Get the current goal for this thread, including status, budgets, token and elapsed-time usage, and remaining token budget.","strict":false,"parameters":{"type":"object","properties":{},"required":[],"additionalProperties":false}},
  {"type":"web_search","external_web_access":true}
 ],
 "tool_choice":"auto",
 "parallel_tool_calls":true,
 "reasoning":{"summary":"auto"},
 "store":false,
 "include":["reasoning.encrypted_content"],
 "prompt_cache_key":"01a2331b-59e9-7603-a14b-bb4c2d3ba938",
 "client_metadata":{"turn_id":"01a2331b-5a04-7060-8516-c40abd4cf223","root_turn_id":"01a2331b-5a04-7060-8516-c40abd4cf223","x-codex-installation-id":"d8fd3619-066f-4380-95f5-5e08c19fd950","session_id":"01a2331b-59e9-7603-a14b-bb4c2d3ba938","x-codex-turn-metadata":"{\"installation_id\":\"d8fd3619-066f-4380-9","thread_id":"01a2331b-59e9-7603-a14b-bb4c2d3ba938","x-codex-window-id":"01a2331b-59e9-7603-a14b-bb4c2d3ba938:0"}
}"##;

    fn parse(v: Value) -> ClientRequest {
        parse_request(v.to_string().as_bytes()).unwrap()
    }

    fn parse_err(v: Value) -> String {
        parse_request(v.to_string().as_bytes()).unwrap_err().to_string()
    }

    fn gemini(v: Value) -> GenerateContentResponse {
        serde_json::from_value(v).unwrap()
    }

    fn contents(req: &ClientRequest) -> Value {
        serde_json::to_value(&req.gemini.contents).unwrap()
    }

    fn decls(req: &ClientRequest) -> Vec<Value> {
        serde_json::to_value(&req.gemini.tools[0].function_declarations).unwrap().as_array().unwrap().clone()
    }

    fn mode(req: &ClientRequest) -> Value {
        serde_json::to_value(&req.gemini.tool_config).unwrap()["functionCallingConfig"].clone()
    }

    /// Every event as (name, data), checking the frame: named, `type` equal
    /// to the name, `sequence_number` counting from `first`.
    fn events(evs: &[SseEvent], first: u64) -> Vec<(&'static str, Value)> {
        evs.iter()
            .enumerate()
            .map(|(i, e)| {
                let name = e.event.expect("every event is named");
                let data: Value = serde_json::from_str(&e.data).unwrap();
                assert_eq!(data["type"], name);
                assert_eq!(data["sequence_number"], first + i as u64, "{name}");
                (name, data)
            })
            .collect()
    }

    fn names(evs: &[(&'static str, Value)]) -> Vec<&'static str> {
        evs.iter().map(|(n, _)| *n).collect()
    }

    /// A whole answer's output items, as a client sends them back.
    fn output(v: &Value) -> Vec<Value> {
        v["output"].as_array().unwrap().clone()
    }

    #[test]
    fn codex_shell_round_trip_request() {
        let (req, tools) = parse_request_with_tools(CODEX_TURN2.as_bytes()).unwrap();
        assert_eq!(req.model, "gpt-5.5");
        assert!(req.stream);
        assert_eq!(req.session_hint.as_deref(), Some("01a2331d-aad0-70b0-ba58-a44efbdab9bf"));
        // The developer messages (no `instructions`) are the system prompt.
        let system = &req.gemini.system_instruction.as_ref().unwrap().parts;
        assert_eq!(system.len(), 4);
        assert!(system[0].text.as_deref().unwrap().starts_with("You are Codex"));
        let c = contents(&req);
        assert_eq!(c.as_array().unwrap().len(), 3);
        assert_eq!(c[0]["role"], "user");
        assert_eq!(c[0]["parts"].as_array().unwrap().len(), 2);
        assert_eq!(c[0]["parts"][1]["text"], "TOOLTEST run the echo");
        // The call came from OpenAI's API here: no signature of ours to give back.
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                "functionCall": {"id": "call_cd762e3c36f34216", "name": "exec_command", "args": {"cmd": "echo MAGIC-4242"}}}]})
        );
        assert_eq!(c[2]["role"], "user");
        let fr = &c[2]["parts"][0]["functionResponse"];
        assert_eq!((&fr["id"], &fr["name"]), (&json!("call_cd762e3c36f34216"), &json!("exec_command")));
        assert!(fr["response"]["content"].as_str().unwrap().ends_with("Output:\nMAGIC-4242\n"));

        let d = decls(&req);
        let names: Vec<&str> = d.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["exec_command", "apply_patch", "view_image", "get_goal"]);
        // Schemas go as the client wrote them (the upstream profile makes
        // Gemini's `parameters` of them where needed).
        let ours: Value = serde_json::from_str(CODEX_TURN2).unwrap();
        assert_eq!(d[0]["parametersJsonSchema"], ours["tools"][0]["parameters"]);
        // The free-form apply_patch: one string, its grammar in the description.
        assert_eq!(
            d[1]["parametersJsonSchema"],
            json!({"type": "object", "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
                   "required": ["input"]})
        );
        let about = d[1]["description"].as_str().unwrap();
        assert!(about.starts_with("The `apply_patch` tool can be used to edit files."), "{about}");
        assert!(about.contains("lark grammar:\nstart: begin_patch hunk+ end_patch"), "{about}");
        assert_eq!(d[3]["parametersJsonSchema"]["properties"], json!({}), "get_goal takes nothing");
        assert_eq!(tools.dropped(), ["tool_search"]);
        assert!(tools.search_dropped());
        assert_eq!(dropped_tools(CODEX_TURN2.as_bytes()), ["tool_search"]);
        assert_eq!(mode(&req), json!({"mode": "AUTO"}));
        assert_eq!(
            serde_json::to_value(&req.gemini.generation_config).unwrap(),
            json!({"thinkingConfig": {"thinkingBudget": 8192}})
        );
    }

    #[test]
    fn codex_namespaced_tools_round_trip() {
        let (req, tools) = parse_request_with_tools(CODEX_FALLBACK_TURN1.as_bytes()).unwrap();
        let d = decls(&req);
        let names: Vec<&str> = d.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["exec_command", "view_image", "multi_agent_v1__close_agent", "multi_agent_v1__resume_agent", "get_goal"]
        );
        assert!(d[2]["description"]
            .as_str()
            .unwrap()
            .ends_with("(From the `multi_agent_v1` tools: Tools for spawning and managing sub-agents.)"));
        assert!(tools.dropped().is_empty() && tools.search_dropped());
        // `reasoning: {"summary": "auto"}`: thought summaries on.
        assert_eq!(
            serde_json::to_value(&req.gemini.generation_config).unwrap(),
            json!({"thinkingConfig": {"includeThoughts": true}})
        );

        let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "multi_agent_v1__close_agent", "args": {"target": "a1"}}, "thoughtSignature": "SIG"}
        ]}, "finishReason": "STOP"}]}));
        let out = response_with_tools(&resp, "gpt-5.1-codex", &tools);
        let call = &out["output"][1];
        assert_eq!(
            (&call["type"], &call["name"], &call["namespace"]),
            (&json!("function_call"), &json!("close_agent"), &json!("multi_agent_v1"))
        );
        // Without the map the name is Gemini's.
        let plain = response_from_gemini(&resp, "m");
        assert_eq!(plain["output"][1]["name"], "multi_agent_v1__close_agent");
        assert!(plain["output"][1].get("namespace").is_none());

        // Codex sends the call back with its namespace.
        let mut body: Value = serde_json::from_str(CODEX_FALLBACK_TURN1).unwrap();
        let input = body["input"].as_array_mut().unwrap();
        input.extend(output(&out));
        input.push(json!({"type": "function_call_output", "call_id": call["call_id"], "output": "closed"}));
        let (req, _) = parse_request_with_tools(body.to_string().as_bytes()).unwrap();
        let c = contents(&req);
        let n = c.as_array().unwrap().len();
        assert_eq!(c[n - 2]["parts"][0]["functionCall"]["name"], "multi_agent_v1__close_agent");
        assert_eq!(c[n - 2]["parts"][0]["thoughtSignature"], "SIG");
        assert_eq!(c[n - 1]["parts"][0]["functionResponse"]["name"], "multi_agent_v1__close_agent");
    }

    #[test]
    fn codex_custom_tool_round_trip() {
        let (_, tools) = parse_request_with_tools(CODEX_TURN2.as_bytes()).unwrap();
        let patch = "*** Begin Patch\n*** Add File: hello.txt\n+MAGIC-4242\n*** End Patch\n";
        let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "apply_patch", "args": {"input": patch}}}
        ]}, "finishReason": "STOP"}]}));
        let out = response_with_tools(&resp, "gpt-5.5", &tools);
        let item = &out["output"][0];
        assert_eq!(item["type"], "custom_tool_call");
        assert!(item["id"].as_str().unwrap().starts_with("ctc_"));
        assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(
            (&item["name"], &item["input"], &item["status"]),
            (&json!("apply_patch"), &json!(patch), &json!("completed"))
        );

        let mut t = StreamTranslator::with_tools("gpt-5.5", tools.clone());
        let mut evs = t.push(&resp);
        evs.extend(t.finish());
        let evs = events(&evs, 0);
        assert_eq!(
            names(&evs)[2..],
            [
                "response.output_item.added",
                "response.custom_tool_call_input.delta",
                "response.custom_tool_call_input.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        assert_eq!(evs[3].1["delta"], patch);
        assert_eq!(evs[5].1["item"]["input"], patch);

        // Codex's next request, as captured: the call and its output.
        let mut body: Value = serde_json::from_str(CODEX_TURN2).unwrap();
        let input = body["input"].as_array_mut().unwrap();
        input.truncate(4);
        input.push(json!({"type": "custom_tool_call", "id": "ctc_6fbf29e6893b459c", "status": "completed",
            "call_id": "call_407bfe19db654c73", "name": "apply_patch", "input": patch}));
        input.push(json!({"type": "custom_tool_call_output", "id": "ctco_01a23328-4f56-75d2-855d-edc337fe4cd3",
            "call_id": "call_407bfe19db654c73", "output": "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess."}));
        let c = contents(&parse_request(body.to_string().as_bytes()).unwrap());
        assert_eq!(
            c[1]["parts"][0],
            json!({"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                   "functionCall": {"id": "call_407bfe19db654c73", "name": "apply_patch", "args": {"input": patch}}})
        );
        assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "apply_patch");
    }

    #[test]
    fn foreign_reasoning_items_are_ignored() {
        // As Codex echoes an OpenAI reasoning item (captured shape).
        let req = parse(json!({"model": "m", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "TOOLTEST run the echo"}]},
            {"type": "reasoning", "id": "rs_4a7f683222e0485a", "summary": [{"type": "summary_text", "text": "**Thinking** about it"}],
             "content": null, "encrypted_content": "gAAAAAZZZZZZZZZZ"},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "grantpool:call:!!:S"},
            {"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": "grantpool:tool:Y2FsbF8x:S"},
            {"type": "function_call", "status": "completed", "id": "fc_f06c366f66904659", "name": "exec_command",
             "arguments": "{\"cmd\": \"echo MAGIC-4242\"}", "call_id": "call_1"},
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "MAGIC-4242"}
        ]}));
        let c = contents(&req);
        assert_eq!(c.as_array().unwrap().len(), 3);
        assert_eq!(c[1]["parts"].as_array().unwrap().len(), 1, "summaries are not replayed");
        assert_eq!(c[1]["parts"][0]["thoughtSignature"], SKIP_THOUGHT_SIGNATURE);
    }

    #[test]
    fn signatures_come_back_on_their_parts() {
        let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Need the weather.", "thought": true},
            {"text": "Rome first.", "thought": true},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": "SIG1"},
            {"functionCall": {"id": "fc-2", "name": "get_weather", "args": {"city": "Oslo"}}}
        ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 8, "thoughtsTokenCount": 5, "totalTokenCount": 33}}));
        let out = response_from_gemini(&resp, "m");
        let items = output(&out);
        let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["reasoning", "function_call", "function_call"]);
        assert_eq!(items[0]["summary"], json!([{"type": "summary_text", "text": "Need the weather.Rome first."}]));
        let call_id = items[1]["call_id"].as_str().unwrap();
        assert_eq!(
            items[0]["encrypted_content"].as_str().unwrap(),
            format!("grantpool:call:{}:SIG1", URL_SAFE_NO_PAD.encode(call_id))
        );
        assert_eq!(items[2]["call_id"], "fc-2");
        assert!(items[2]["id"].as_str().unwrap().starts_with("fc_"));

        // The client sends everything back (reasoning items last, even:
        // the binding names the call), with the results.
        let mut input = vec![json!({"role": "user", "content": "weather?"})];
        input.extend(items[1..].iter().cloned());
        input.push(json!({"type": "function_call_output", "call_id": call_id, "output": "sunny"}));
        input.push(json!({"type": "function_call_output", "call_id": "fc-2", "output": "rain"}));
        input.push(items[0].clone());
        input.push(json!({"role": "user", "content": "thanks"}));
        let c = contents(&parse(json!({"model": "m", "input": input})));
        assert_eq!(c[1]["parts"][0]["thoughtSignature"], "SIG1");
        assert!(c[1]["parts"][1].get("thoughtSignature").is_none());
        assert_eq!(c[2]["parts"][1]["functionResponse"]["name"], "get_weather");

        // A signature on the text: a reasoning item before the message.
        let resp = gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Sunny in Rome.", "thoughtSignature": "SIG2"}
        ]}, "finishReason": "STOP"}]}));
        let items = output(&response_from_gemini(&resp, "m"));
        assert_eq!(items.len(), 2);
        let msg_id = items[1]["id"].as_str().unwrap();
        assert!(items[0]["encrypted_content"].as_str().unwrap().starts_with("grantpool:msg:"));
        assert_eq!(unseal(items[0]["encrypted_content"].as_str().unwrap()), Some((false, msg_id.to_owned(), "SIG2")));
        let mut input = vec![json!({"role": "user", "content": "weather?"})];
        input.extend(items);
        input.push(json!({"role": "user", "content": "and Oslo?"}));
        let c = contents(&parse(json!({"model": "m", "input": input})));
        assert_eq!(c[1], json!({"role": "model", "parts": [{"text": "Sunny in Rome.", "thoughtSignature": "SIG2"}]}));
    }

    #[test]
    fn requests_translate() {
        let req = parse(json!({
            "model": "gemini-2.5-pro",
            "instructions": "Be terse.",
            "input": [
                {"role": "system", "content": "No emoji."},
                {"role": "user", "content": "Hi"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello.", "annotations": []},
                                                                     {"type": "refusal", "refusal": "Not that."}]},
                {"role": "developer", "content": [{"type": "input_text", "text": "Answer in English."}]},
                {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_text", "text": ""}]}
            ],
            "temperature": 0.3, "top_p": 0.9, "max_output_tokens": 256,
            "user": "u-1", "store": true, "metadata": {"a": "b"}, "include": ["reasoning.encrypted_content"],
            "truncation": "auto", "service_tier": "flex", "parallel_tool_calls": false, "text": {"verbosity": "low"},
            "stream_options": {"include_obfuscation": false}, "top_logprobs": 2, "max_tool_calls": 3
        }));
        assert_eq!(req.model, "gemini-2.5-pro");
        assert!(!req.stream);
        assert_eq!(req.session_hint.as_deref(), Some("u-1"));
        let g = serde_json::to_value(&req.gemini).unwrap();
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [{"text": "Be terse."}, {"text": "No emoji."}, {"text": "Answer in English."}]})
        );
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello."}, {"text": "Not that."}]},
                {"role": "user", "parts": [{"text": "Weather?"}]}
            ])
        );
        assert_eq!(g["generationConfig"], json!({"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 256}));
        assert!(g.get("tools").is_none() && g.get("toolConfig").is_none());

        let req = parse(json!({"model": "m", "input": "just text", "safety_identifier": "s-9"}));
        assert_eq!(contents(&req), json!([{"role": "user", "parts": [{"text": "just text"}]}]));
        assert_eq!(req.session_hint.as_deref(), Some("s-9"));
    }

    #[test]
    fn images_files_and_tool_results_with_media() {
        let req = parse(json!({"model": "m", "input": [
            {"role": "user", "content": [
                {"type": "input_text", "text": "what is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0K", "detail": "auto"},
                {"type": "input_image", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"},
                {"type": "input_file", "filename": "b.PDF", "file_data": "JVBERi0y"}
            ]},
            {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{\"path\":\"x.png\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": [
                {"type": "input_text", "text": "the image:"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
            ]}
        ]}));
        let c = contents(&req);
        assert_eq!(c[0]["parts"][1], json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}));
        assert_eq!(c[0]["parts"][2], json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}));
        assert_eq!(c[0]["parts"][3], json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}}));
        assert_eq!(c[0]["parts"][4], json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0y"}}));
        assert_eq!(
            c[2]["parts"],
            json!([
                {"functionResponse": {"id": "c1", "name": "view_image", "response": {"content": "the image:"}}},
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}
            ])
        );
    }

    #[test]
    fn generation_settings() {
        let base = |extra: Value| {
            let mut body = json!({"model": "m", "input": "x"});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::to_value(parse(body).gemini.generation_config).unwrap()
        };
        assert_eq!(
            base(json!({"text": {"format": {"type": "json_schema", "name": "w", "strict": true,
                "schema": {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"], "additionalProperties": false}}}})),
            json!({"responseMimeType": "application/json",
                   "responseSchema": {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}})
        );
        assert_eq!(
            base(json!({"text": {"format": {"type": "json_object"}}})),
            json!({"responseMimeType": "application/json"})
        );
        assert_eq!(base(json!({"text": {"format": {"type": "text"}}})), Value::Null);
        for (effort, budget) in
            [("none", 0), ("minimal", 128), ("low", 1024), ("medium", 8192), ("high", 24576), ("xhigh", 24576)]
        {
            assert_eq!(
                base(json!({"reasoning": {"effort": effort}})),
                json!({"thinkingConfig": {"thinkingBudget": budget}}),
                "{effort}"
            );
        }
        assert_eq!(
            base(json!({"reasoning": {"effort": "high", "summary": "detailed"}})),
            json!({"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true}})
        );
        assert_eq!(
            base(json!({"reasoning": {"generate_summary": "concise"}})),
            json!({"thinkingConfig": {"includeThoughts": true}})
        );
        assert_eq!(base(json!({"reasoning": {"effort": null, "summary": null}})), Value::Null);
    }

    #[test]
    fn tool_choices_and_built_in_tools() {
        let tools = json!([
            {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
            {"type": "custom", "name": "run sql", "description": "SQL", "format": {"type": "text"}},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "web_search_preview"},
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {"type": "image_generation"}, {"type": "local_shell"}, {"type": "computer_use_preview"},
            {"type": "mcp", "server_label": "x"}
        ]);
        let with = |choice: Value| parse(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": choice}));
        assert_eq!(mode(&with(json!("auto"))), json!({"mode": "AUTO"}));
        assert_eq!(mode(&with(json!("none"))), json!({"mode": "NONE"}));
        assert_eq!(mode(&with(json!("required"))), json!({"mode": "ANY"}));
        assert_eq!(
            mode(&with(json!({"type": "function", "name": "get_weather"}))),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
        );
        assert_eq!(
            mode(&with(json!({"type": "custom", "name": "run sql"}))),
            json!({"mode": "ANY", "allowedFunctionNames": ["run_sql"]})
        );
        assert_eq!(
            mode(&with(
                json!({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_weather"}]})
            )),
            json!({"mode": "ANY", "allowedFunctionNames": ["get_weather"]})
        );
        assert_eq!(mode(&with(json!({"type": "allowed_tools", "mode": "auto", "tools": []}))), json!({"mode": "AUTO"}));
        assert_eq!(with(json!({"type": "file_search"})).gemini.tool_config, None);
        assert!(parse_err(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": "sometimes"}))
            .contains("`tool_choice` must be"));

        let (req, map) =
            parse_request_with_tools(json!({"model": "m", "input": "x", "tools": tools}).to_string().as_bytes())
                .unwrap();
        assert_eq!(req.gemini.tools.len(), 1);
        assert_eq!(decls(&req).len(), 2);
        assert_eq!(
            map.dropped(),
            [
                "file_search",
                "code_interpreter",
                "image_generation",
                "local_shell",
                "computer_use_preview",
                "mcp"
            ]
        );
        assert!(map.search_dropped());
        // The custom tool's name did not fit, so its calls are mapped back.
        let resp = gemini(
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "run_sql", "args": {"input": "select 1"}}}]}}]}),
        );
        let out = response_with_tools(&resp, "m", &map);
        assert_eq!(
            (&out["output"][0]["type"], &out["output"][0]["name"]),
            (&json!("custom_tool_call"), &json!("run sql"))
        );

        // Web search alone: Gemini's own.
        let g =
            serde_json::to_value(parse(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]})).gemini)
                .unwrap();
        assert_eq!(g["tools"], json!([{"googleSearch": {}}]));
        assert!(dropped_tools(json!({"tools": [{"type": "web_search"}]}).to_string().as_bytes()).is_empty());
        assert!(dropped_tools(b"{not json").is_empty());
    }

    #[test]
    fn names_fit_gemini_and_come_back() {
        let long = "a_very_long_tool_name_that_goes_on_and_on_well_past_the_limit_of_gemini";
        let (req, map) = parse_request_with_tools(
            json!({"model": "m", "input": "x", "tools": [
                {"type": "function", "name": long},
                {"type": "function", "name": "9lives.v2"},
                {"type": "namespace", "name": "mcp__srv__", "tools": [{"type": "function", "name": "read"}]},
                {"type": "function", "name": "mcp__srv____read"}
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let names: Vec<String> = decls(&req).iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect();
        assert_eq!(names[0].len(), 64);
        assert!(names[0].starts_with("a_very_long_tool_name"));
        assert_eq!(names[0], encode_name(None, long), "stable across requests");
        assert_ne!(encode_name(None, long), encode_name(None, &format!("{long}2")));
        assert_eq!(names[1], "_9lives_v2");
        assert_eq!(names[2], "mcp__srv____read");
        assert_eq!(names[3], "mcp__srv____read_2", "names are unique");
        for (gemini, ns, name) in [
            (&names[0], None, long),
            (&names[1], None, "9lives.v2"),
            (&names[2], Some("mcp__srv__"), "read"),
            (&names[3], None, "mcp__srv____read"),
        ] {
            let tool = map.client_tool(gemini);
            assert_eq!((tool.namespace, tool.name, tool.custom), (ns, name, false), "{gemini}");
            assert_eq!(&map.gemini_name(ns, name, false), gemini);
        }
        assert_eq!(map.client_tool("other").name, "other");
    }

    #[test]
    fn stateless_features_and_bad_items_are_refused() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
             "`previous_response_id` is not supported: this proxy keeps no responses or conversations: send the whole conversation in `input` (with `store: false`)"),
            (json!({"model": "m", "input": "x", "conversation": "conv_1"}), "`conversation` is not supported"),
            (json!({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}), "`prompt` is not supported"),
            (json!({"model": "m", "input": "x", "background": true}), "`background` is not supported"),
            (json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
             "`input[0]` is an item_reference (`msg_1`), but this proxy keeps no responses"),
            (json!({"model": "m", "input": [{"type": "hologram"}]}), "`input[0].type` `hologram` is not supported"),
        ];
        for (body, want) in cases {
            let got = parse_err(body.clone());
            assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
        }
        // Empty ids are no id; items of OpenAI's hosted tools are skipped.
        let req = parse(json!({"model": "m", "previous_response_id": "", "input": [
            {"role": "user", "content": "x"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
            {"type": "tool_search_call", "call_id": "s1", "execution": "client", "arguments": {"query": "q"}},
            {"type": "computer_call_output", "call_id": "cc1", "output": {"type": "computer_screenshot", "image_url": "data:,"}}
        ]}));
        assert_eq!(contents(&req).as_array().unwrap().len(), 1);
    }

    #[test]
    fn malformed_requests_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"input": "x"}), "`model` is required"),
            (json!({"model": "m"}), "`input` is required"),
            (json!({"model": "m", "input": ""}), "`input` must contain at least one"),
            (
                json!({"model": "m", "input": [{"role": "system", "content": "only rules"}]}),
                "`input` must contain at least one",
            ),
            (
                json!({"model": "m", "input": 5}),
                "`input` is invalid: invalid type: integer `5`, expected a string or an array",
            ),
            (
                json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}),
                "`input[0].role` is invalid: unknown variant `robot`",
            ),
            (json!({"model": "m", "input": [{"content": "x"}]}), "`input[0].type` is required"),
            (json!({"model": "m", "input": [{"type": "message", "content": "x"}]}), "`input[0].role` is required"),
            (json!({"model": "m", "input": [{"role": "user"}]}), "`input[0].content` is required"),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]}),
                "`input[0].content[0].text` is invalid: invalid type: integer `3`, expected a string",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/cat.png"}]}]}),
                "`input[0].content[0].image_url` must be a data: URL (this proxy does not fetch remote URLs)",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}),
                "`input[0].content[0].file_id` is not supported",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]}),
                "`input[0].content[0].file_url` is not supported",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_video"}]}]}),
                "`input[0].content[0].type` `input_video` is not supported",
            ),
            (
                json!({"model": "m", "input": [{"role": "developer", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA=="}]}]}),
                "`input[0].content[0]` must be a text part here",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
                "`input[0].call_id` is required",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}),
                "`input[0].name` is required",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{oops"}]}),
                "`input[0].arguments` is not valid JSON",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]}),
                "`input[0].arguments` must be a JSON object encoded as a string",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": "x"}, {"type": "function_call_output", "call_id": "call_9", "output": "r"}]}),
                "`input[1].call_id` `call_9` does not match the call_id of any earlier call",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}]}),
                "`input[0].arguments` must be a JSON object encoded as a string",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"},
                                            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": 1}]}]}),
                "`input[1].output[0]` is invalid: invalid type: integer `1`, expected a string",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"},
                                            {"type": "function_call_output", "call_id": "c", "output": {"x": 1}}]}),
                "`input[1].output` must be a string or an array of content parts",
            ),
            (
                json!({"model": "m", "input": "x", "temperature": "hot"}),
                "`temperature` is invalid: invalid type: string \"hot\", expected a number",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "function", "description": "no name"}]}),
                "`tools[0].name` is required",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": 1}]}]}),
                "`tools[0].tools[0].name` is invalid",
            ),
            (
                json!({"model": "m", "input": "x", "reasoning": {"effort": "max"}}),
                "`reasoning.effort` `max` is not one of",
            ),
            (json!({"model": "m", "input": "x", "reasoning": {"effort": 3}}), "`reasoning.effort` is invalid"),
            (json!({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}), "`text.format` must be"),
            (
                json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}),
                "`text.format.schema` is required",
            ),
            (json!({"model": "m", "input": "x", "instructions": 7}), "`instructions` is invalid"),
            (json!([1, 2]), "`(body)` must be a JSON object"),
        ];
        for (body, want) in cases {
            let got = parse_err(body.clone());
            assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
        }
        let e = parse_request(b"{\"model\": ").unwrap_err();
        assert!(matches!(e, TranslateError::InvalidJson(_)), "{e}");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn whole_response() {
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
        let out = response_from_gemini(&resp, "gpt-5.5");
        assert_eq!(out["id"], "resp_r-1");
        assert_eq!(
            (&out["object"], &out["status"], &out["model"]),
            (&json!("response"), &json!("completed"), &json!("gpt-5.5"))
        );
        assert!(out["created_at"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!((&out["error"], &out["incomplete_details"]), (&Value::Null, &Value::Null));
        assert_eq!((&out["tools"], &out["parallel_tool_calls"]), (&json!([]), &json!(true)));
        let items = output(&out);
        assert_eq!(items[0]["type"], "reasoning");
        assert!(items[0]["id"].as_str().unwrap().starts_with("rs_"));
        assert!(items[0].get("encrypted_content").is_none());
        assert_eq!(items[0]["summary"], json!([{"type": "summary_text", "text": "Let me think."}]));
        assert!(items[1]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(
            items[1],
            json!({"id": items[1]["id"], "type": "message", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": "Hello, world.", "annotations": [], "logprobs": []}]})
        );
        assert_eq!(
            out["usage"],
            json!({"input_tokens": 12, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 10,
                   "output_tokens_details": {"reasoning_tokens": 6}, "total_tokens": 22})
        );

        let empty = response_from_gemini(&gemini(json!({})), "m");
        assert!(empty["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!((&empty["output"], &empty["status"]), (&json!([]), &json!("completed")));
        assert_eq!(empty["usage"]["total_tokens"], 0);
        let cut = response_from_gemini(
            &gemini(json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]})),
            "m",
        );
        assert_eq!(
            (&cut["status"], &cut["incomplete_details"]),
            (&json!("incomplete"), &json!({"reason": "max_output_tokens"}))
        );
        let blocked = response_from_gemini(&gemini(json!({"promptFeedback": {"blockReason": "SAFETY"}})), "m");
        assert_eq!(blocked["incomplete_details"], json!({"reason": "content_filter"}));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(400, "bad"),
            json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": "invalid_request"}})
        );
        assert_eq!(error_body(429, "slow")["error"]["type"], "rate_limit_error");
        assert_eq!(error_body(503, "none")["error"]["code"], "service_unavailable");
    }

    #[test]
    fn stream_text_event_by_event() {
        let mut t = StreamTranslator::new("gpt-5.5");
        let a = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
                                      "usageMetadata": {"promptTokenCount": 5}})));
        let b = t.push(&gemini(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"text": "!"}]}}]}),
        ));
        // Gemini 3 ends a text answer with a bare signature.
        let c = t.push(&gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "", "thoughtSignature": "SIG"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "cachedContentTokenCount": 1, "totalTokenCount": 8}
        })));
        assert!(t.saw_finish());
        let end = t.finish();
        assert!(c.is_empty());
        let all: Vec<SseEvent> = [a, b, c, end].concat();
        let evs = events(&all, 0);
        assert_eq!(
            names(&evs),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let created = &evs[0].1["response"];
        assert!(created["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(
            (&created["status"], &created["output"], &created["usage"]),
            (&json!("in_progress"), &json!([]), &Value::Null)
        );
        assert_eq!(evs[2].1["item"]["status"], "in_progress");
        let msg_id = evs[2].1["item"]["id"].as_str().unwrap();
        assert_eq!(
            evs[4].1,
            json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": msg_id, "output_index": 0,
                   "content_index": 0, "delta": "Hel", "logprobs": []})
        );
        assert_eq!(evs[5].1["delta"], "lo");
        assert_eq!(evs[7].1["text"], "Hello!");
        assert_eq!(evs[9].1["item"]["content"][0]["text"], "Hello!");
        // The signature after the text it came on.
        assert_eq!(evs[11].1["output_index"], 1);
        assert_eq!(
            unseal(evs[11].1["item"]["encrypted_content"].as_str().unwrap()),
            Some((false, msg_id.to_owned(), "SIG"))
        );
        let done = &evs[12].1["response"];
        assert_eq!(done["id"], created["id"]);
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"].as_array().unwrap().len(), 2);
        assert_eq!(done["output"][0], evs[9].1["item"]);
        assert_eq!(
            done["usage"],
            json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 1}, "output_tokens": 3,
                   "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 8})
        );
        assert_eq!(&all[0].to_bytes()[..22], b"event: response.create");
        assert!(t.finish().is_empty());
        assert!(t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "late"}]}}]}))).is_empty());
    }

    #[test]
    fn stream_thoughts_then_calls() {
        let mut t = StreamTranslator::new("m");
        let a = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Need weather.", "thought": true}]}}]})));
        let b = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"},
            {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}}
        ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "thoughtsTokenCount": 4, "totalTokenCount": 43}})));
        let end = t.finish();
        let all: Vec<SseEvent> = [a, b, end].concat();
        let evs = events(&all, 0);
        assert_eq!(
            names(&evs),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        assert_eq!(evs[2].1["item"], json!({"id": evs[2].1["item"]["id"], "type": "reasoning", "summary": []}));
        assert_eq!((&evs[4].1["summary_index"], &evs[4].1["delta"]), (&json!(0), &json!("Need weather.")));
        let reasoning = &evs[7].1["item"];
        assert_eq!(reasoning["summary"], json!([{"type": "summary_text", "text": "Need weather."}]));
        let call = &evs[11].1["item"];
        assert_eq!(
            unseal(reasoning["encrypted_content"].as_str().unwrap()),
            Some((true, call["call_id"].as_str().unwrap().to_owned(), "SIG"))
        );
        let added = &evs[8].1["item"];
        assert_eq!(
            (&added["status"], &added["arguments"], &added["name"]),
            (&json!("in_progress"), &json!(""), &json!("get_weather"))
        );
        assert_eq!(added["call_id"], call["call_id"]);
        assert_eq!(evs[9].1["delta"], "{\"city\":\"Paris\"}");
        assert_eq!(
            evs[10].1,
            json!({"type": "response.function_call_arguments.done", "sequence_number": 10, "item_id": call["id"],
                   "output_index": 1, "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
        );
        assert_eq!(
            *call,
            json!({"id": call["id"], "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Paris\"}",
                   "call_id": call["call_id"], "name": "get_weather"})
        );
        assert_eq!(evs[15].1["item"]["call_id"], "fc-7");
        assert_eq!(evs[15].1["output_index"], 2);
        let done = &evs[16].1["response"];
        assert_eq!(done["output"].as_array().unwrap().len(), 3);
        assert_eq!(done["usage"]["output_tokens"], 13);
        assert_eq!(done["usage"]["output_tokens_details"]["reasoning_tokens"], 4);
    }

    #[test]
    fn stream_and_whole_answers_replay_alike() {
        // A text with its signature on the first part, then a call: the
        // stream names each signature's item, as the whole answer does.
        let parts = json!([
            {"text": "Checking ", "thoughtSignature": "S1"}, {"text": "now."},
            {"functionCall": {"id": "c1", "name": "f", "args": {}}, "thoughtSignature": "S2"}
        ]);
        let resp =
            gemini(json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}));
        let whole = output(&response_from_gemini(&resp, "m"));
        let mut t = StreamTranslator::new("m");
        t.push(&resp);
        let evs = t.finish();
        let completed: Value = serde_json::from_str(&evs.last().unwrap().data).unwrap();
        let streamed = output(&completed["response"]);
        for items in [whole, streamed] {
            let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
            assert_eq!(kinds, ["reasoning", "message", "reasoning", "function_call"]);
            let mut input = vec![json!({"role": "user", "content": "go"})];
            input.extend(items);
            input.push(json!({"type": "function_call_output", "call_id": "c1", "output": "ok"}));
            let c = contents(&parse(json!({"model": "m", "input": input})));
            assert_eq!(
                c[1]["parts"],
                json!([{"text": "Checking now.", "thoughtSignature": "S1"},
                       {"thoughtSignature": "S2", "functionCall": {"id": "c1", "name": "f", "args": {}}}])
            );
        }
    }

    #[test]
    fn stream_incomplete_and_failed() {
        let mut t = StreamTranslator::new("m");
        t.push(&gemini(
            json!({"candidates": [{"content": {"parts": [{"text": "long"}]}, "finishReason": "MAX_TOKENS"}]}),
        ));
        let end = t.finish();
        let last = serde_json::from_str::<Value>(&end.last().unwrap().data).unwrap();
        assert_eq!(end.last().unwrap().event, Some("response.incomplete"));
        assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], "long");

        let mut t = StreamTranslator::new("m");
        let a = t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]})));
        assert_eq!(a.len(), 5);
        assert!(!t.saw_finish());
        let err = t.error("upstream connection reset");
        let evs = events(&err, 5);
        assert_eq!(names(&evs), ["error", "response.failed"]);
        assert_eq!(
            evs[0].1,
            json!({"type": "error", "sequence_number": 5, "code": "server_error", "message": "upstream connection reset", "param": null})
        );
        let failed = &evs[1].1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"], json!({"code": "server_error", "message": "upstream connection reset"}));
        assert!(t.finish().is_empty());
        assert!(t.error("again").is_empty());

        let mut t = StreamTranslator::new("m");
        let evs = t.error_with_code("context_length_exceeded", "too long");
        let evs = events(&evs, 0);
        assert_eq!(names(&evs), ["response.created", "response.in_progress", "error", "response.failed"]);
        assert_eq!(evs[3].1["response"]["error"]["code"], "context_length_exceeded");
    }

    #[test]
    fn stream_empty_or_blocked_still_closes() {
        let mut t = StreamTranslator::new("m");
        let evs = events(&t.finish(), 0);
        assert_eq!(names(&evs), ["response.created", "response.in_progress", "response.completed"]);
        assert_eq!(evs[2].1["response"]["output"], json!([]));
        assert_eq!(evs[2].1["response"]["usage"]["total_tokens"], 0);

        let mut t = StreamTranslator::new("m");
        t.push(&gemini(json!({"promptFeedback": {"blockReason": "SAFETY"}})));
        assert!(t.saw_finish());
        let end = t.finish();
        assert_eq!(end.last().unwrap().event, Some("response.incomplete"));
        assert!(end.last().unwrap().data.contains("\"content_filter\""));
    }

    #[test]
    fn conversation_ids_in_the_body() {
        let hint = |extra: Value| {
            let mut v = json!({"model": "m", "input": "x"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(v).session_hint
        };
        // Codex's `prompt_cache_key` (its thread id) first, then OpenAI's user ids.
        assert_eq!(hint(json!({"prompt_cache_key": "k-1", "user": "u-1", "safety_identifier": "s-1"})).as_deref(), Some("k-1"));
        assert_eq!(hint(json!({"user": "u-1", "safety_identifier": "s-1"})).as_deref(), Some("u-1"));
        assert_eq!(hint(json!({"prompt_cache_key": "", "safety_identifier": "s-1"})).as_deref(), Some("s-1"));
        assert_eq!(hint(json!({})), None);
    }

    /// A grounded answer in two chunks, the metadata on the last.
    fn grounded_chunks() -> Vec<GenerateContentResponse> {
        vec![
            gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Zürich is big. "}]}}]})),
            gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Bern is the capital."}]},
                "finishReason": "STOP",
                "groundingMetadata": {
                    "webSearchQueries": ["swiss capital"],
                    "groundingChunks": [
                        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/A", "title": "example.org"}},
                        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/B", "title": "docs.example.org"}}
                    ],
                    "groundingSupports": [
                        {"segment": {"endIndex": 15, "text": "Zürich is big."}, "groundingChunkIndices": [0]},
                        {"segment": {"startIndex": 16, "endIndex": 36, "text": "Bern is the capital."}, "groundingChunkIndices": [1]}
                    ]}}]}))
        ]
    }

    #[test]
    fn web_search_calls_and_url_citations() {
        let body = |tools: Value| json!({"model": "m", "input": "capital?", "tools": tools}).to_string();
        let (req, map) = parse_request_with_tools(body(json!([{"type": "web_search_preview"}])).as_bytes()).unwrap();
        assert!(super::super::search::uses_google_search(&req.gemini) && !map.search_dropped());

        let mut whole = grounded_chunks().pop().unwrap();
        whole.candidates[0].content.as_mut().unwrap().parts.insert(0, Part::text("Zürich is big. "));
        let items = output(&response_with_tools(&whole, "m", &map));
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["type"], "web_search_call");
        assert_eq!(items[0]["status"], "completed");
        assert_eq!(items[0]["action"], json!({"type": "search", "query": "swiss capital"}));
        assert!(items[0]["id"].as_str().unwrap().starts_with("ws_"));
        assert_eq!(items[1]["type"], "message");
        let part = &items[1]["content"][0];
        assert_eq!(part["text"], "Zürich is big. Bern is the capital.");
        // Character offsets (the ü is two bytes, one character).
        assert_eq!(
            part["annotations"],
            json!([
                {"type": "url_citation", "start_index": 0, "end_index": 14,
                 "url": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/A", "title": "example.org"},
                {"type": "url_citation", "start_index": 15, "end_index": 35,
                 "url": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/B", "title": "docs.example.org"}
            ])
        );
        // Without the web_search tool the grounding is not shown.
        let plain = output(&response_from_gemini(&whole, "m"));
        assert_eq!((plain.len(), &plain[0]["content"][0]["annotations"]), (1, &json!([])));

        // Streamed: the same items, in order.
        let mut t = StreamTranslator::with_tools("m", map);
        let mut evs = Vec::new();
        for c in grounded_chunks() {
            evs.extend(t.push(&c));
        }
        evs.extend(t.finish());
        let evs = events(&evs, 0);
        assert_eq!(
            names(&evs),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.web_search_call.in_progress",
                "response.web_search_call.searching",
                "response.web_search_call.completed",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.annotation.added",
                "response.output_text.annotation.added",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(evs[2].1["item"]["type"], "web_search_call");
        assert_eq!(evs[6].1["item"]["action"]["query"], "swiss capital");
        assert_eq!((evs[7].1["output_index"].as_u64(), evs[11].1["output_index"].as_u64()), (Some(1), Some(1)));
        assert_eq!(evs[12].1["annotation_index"], 1);
        assert_eq!(evs[12].1["annotation"]["title"], "docs.example.org");
        let done = output(&evs[16].1["response"]);
        assert_eq!(done[0]["type"], "web_search_call");
        assert_eq!(done[1]["content"][0]["annotations"].as_array().unwrap().len(), 2);
    }
}
