//! Anthropic Messages ⇄ Gemini.
//!
//! [`parse_request`] turns a `/v1/messages` body into a Gemini request;
//! [`response_from_gemini`] and [`StreamTranslator`] turn Gemini's answer back
//! into a `message` object or the Messages streaming events.
//!
//! Choices a reader should know:
//! - Gemini thought summaries become `thinking` blocks (Gemini returns them
//!   only when asked: `thinking.type = "enabled"` sets `includeThoughts`).
//!   A `thoughtSignature` is carried in the thinking block's `signature`
//!   (the one on the thought part, or on the text/call part right after it;
//!   with no thinking block to carry it, it is dropped),
//!   prefixed with `grantpool:` so that signatures from elsewhere (a session
//!   begun on Anthropic's own API) are told apart and never sent to Gemini,
//!   which would refuse them. Replayed `thinking` blocks are not sent back as
//!   text (Gemini does not need it); their signature goes on the next part of
//!   the same turn, where Gemini expects it. A replayed tool call still
//!   without a signature gets
//!   [`SKIP_THOUGHT_SIGNATURE`](super::shared::SKIP_THOUGHT_SIGNATURE).
//! - `tool_result` becomes `functionResponse {name, response: {"content": text}}`
//!   (plus `"is_error": true` when set); images inside a result follow it as
//!   `inlineData` parts of the same turn.
//! - Images and documents must be base64 (or, for documents, plain text);
//!   this module does no I/O, so URL sources are refused with a 400.
//! - Gemini reports a stop sequence as a plain `STOP`, so `stop_reason` is
//!   `end_turn` then, never `stop_sequence`. Content-filter stops map to
//!   `refusal`.
//! - `web_search_*` server tools map to Gemini's `googleSearch` when the
//!   request declares no custom tools (Gemini cannot mix them), and are
//!   dropped otherwise ([`parse_request_with_search`] says so, for the
//!   log); other Anthropic-defined tools are refused. A grounded answer
//!   comes back as Anthropic's own web search does (see
//!   [`response_with_search`]): a `server_tool_use` block, a
//!   `web_search_tool_result` block with Gemini's sources, then the text
//!   with `web_search_result_location` citations, and
//!   `usage.server_tool_use.web_search_requests`.
//! - `redacted_thinking`, `server_tool_use` and `web_search_tool_result`
//!   blocks in the history are dropped.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::gemini::{
    Blob, FinishKind, FunctionCall, FunctionResponse, GenerateContentResponse,
    GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig, UsageMetadata,
};
use super::schema::function_declaration;
use super::search::{Grounding, Source as WebSource};
use super::shared::{
    self, args_json, function_tools, gemini_request, new_id, sign_first_call, At, ContentsBuilder, Probe, TextOr,
};
pub use super::shared::{ClientRequest, TranslateError};
pub use super::sse::SseEvent;

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

// Every field is optional for serde so that a type error can be pinned to one
// key (see `diagnose`); required fields are checked while translating.
#[derive(Deserialize)]
struct MessagesRequest<'a> {
    model: Option<String>,
    #[serde(borrow)]
    messages: Option<Vec<Message<'a>>>,
    #[serde(borrow)]
    system: Option<TextOr<'a, Block<'a>>>,
    max_tokens: Option<u32>,
    stop_sequences: Option<Vec<String>>,
    stream: Option<bool>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u32>,
    #[serde(borrow)]
    tools: Option<Vec<ToolIn<'a>>>,
    #[serde(borrow)]
    tool_choice: Option<ToolChoiceIn<'a>>,
    metadata: Option<Metadata>,
    #[serde(borrow)]
    thinking: Option<ThinkingIn<'a>>,
    /// `output_config.effort` (how hard to think under adaptive thinking).
    output_config: Option<OutputConfig>,
    // Accepted and ignored where Google has no equivalent, never refused:
    // `context_management`, `service_tier`, `container`, `mcp_servers`,
    // `cache_control` on blocks (serde skips unknown fields).
}

#[derive(Deserialize)]
struct OutputConfig {
    effort: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
    /// A system message inside `messages` (the `mid-conversation-system`
    /// beta Claude Code sends): it joins the system instruction.
    System,
}

#[derive(Deserialize)]
struct Message<'a> {
    role: Option<Role>,
    #[serde(borrow)]
    content: Option<TextOr<'a, Block<'a>>>,
}

/// Any content block; which fields matter depends on `type`.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    text: Option<String>,
    #[serde(borrow)]
    source: Option<Source<'a>>,
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
    #[serde(borrow)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<TextOr<'a, Block<'a>>>,
    is_error: Option<bool>,
    signature: Option<String>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    media_type: Option<String>,
    data: Option<String>,
}

#[derive(Deserialize)]
struct ToolIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<Value>,
}

#[derive(Deserialize)]
struct ToolChoiceIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct ThinkingIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    budget_tokens: Option<i64>,
}

/// Anthropic's `output_config.effort` as a thinking budget, tokens.
fn effort_budget(effort: &str) -> i64 {
    match effort {
        "low" => 4096,
        "medium" => 16_384,
        "max" => 32_768,
        _ => 24_576, // high, the default effort
    }
}

/// Marks the thinking-block signatures this proxy made from Gemini's
/// `thoughtSignature` (see the module docs).
const SIGNATURE_PREFIX: &str = "grantpool:";

fn wrap_signature(signature: &str) -> String {
    let mut out = String::with_capacity(SIGNATURE_PREFIX.len() + signature.len());
    out.push_str(SIGNATURE_PREFIX);
    out.push_str(signature);
    out
}

/// Gemini's signature back from a replayed thinking block; `None` for a
/// signature this proxy did not make.
fn unwrap_signature(mut signature: String) -> Option<String> {
    if signature.len() > SIGNATURE_PREFIX.len() && signature.starts_with(SIGNATURE_PREFIX) {
        signature.drain(..SIGNATURE_PREFIX.len());
        Some(signature)
    } else {
        None
    }
}

/// Translates an Anthropic Messages request body into Gemini.
///
/// Errors name the offending field, e.g.
/// ``invalid request: `messages[2].content[0].tool_use_id` `toolu_9` does not match …``.
pub fn parse_request(body: &[u8]) -> Result<ClientRequest, TranslateError> {
    parse_request_with_search(body).map(|(req, _)| req)
}

/// [`parse_request`], and whether a web search tool was left out because
/// the request also declares custom tools (Gemini cannot mix them), for
/// the route to log.
pub fn parse_request_with_search(body: &[u8]) -> Result<(ClientRequest, bool), TranslateError> {
    match serde_json::from_slice::<MessagesRequest>(body) {
        Ok(req) => translate(req),
        Err(err) => Err(diagnose(body, err)),
    }
}

/// Slow path, only after typed parsing failed: find the field to blame.
fn diagnose(body: &[u8], err: serde_json::Error) -> TranslateError {
    let source = Probe {
        check: &|v| Source::deserialize(v).err(),
        children: &[],
    };
    let inner_block = Probe {
        check: &|v| Block::deserialize(v).err(),
        children: &[("source", &source)],
    };
    let block = Probe {
        check: &|v| Block::deserialize(v).err(),
        children: &[("source", &source), ("content", &inner_block)],
    };
    let message = Probe {
        check: &|v| Message::deserialize(v).err(),
        children: &[("content", &block)],
    };
    let tool = Probe {
        check: &|v| ToolIn::deserialize(v).err(),
        children: &[],
    };
    let choice = Probe {
        check: &|v| ToolChoiceIn::deserialize(v).err(),
        children: &[],
    };
    let metadata = Probe {
        check: &|v| Metadata::deserialize(v).err(),
        children: &[],
    };
    let thinking = Probe {
        check: &|v| ThinkingIn::deserialize(v).err(),
        children: &[],
    };
    let root = Probe {
        check: &|v| MessagesRequest::deserialize(v).err(),
        children: &[
            ("messages", &message),
            ("system", &block),
            ("tools", &tool),
            ("tool_choice", &choice),
            ("metadata", &metadata),
            ("thinking", &thinking),
        ],
    };
    shared::blame(body, err, &root)
}

fn translate(req: MessagesRequest<'_>) -> Result<(ClientRequest, bool), TranslateError> {
    let model = shared::required(req.model.filter(|m| !m.is_empty()), "model")?;
    let messages = shared::required(req.messages, "messages")?;

    let mut system = Vec::new();
    match req.system {
        Some(TextOr::Text(text)) if !text.is_empty() => system.push(Part::text(text.into_owned())),
        None | Some(TextOr::Text(_)) => {}
        Some(TextOr::Items(blocks)) => {
            for (j, block) in blocks.into_iter().enumerate() {
                match (block.kind.as_deref(), block.text) {
                    (Some("text"), Some(text)) if !text.is_empty() => system.push(Part::text(text)),
                    (Some("text"), Some(_)) => {}
                    (Some("text"), None) => {
                        return Err(TranslateError::field(
                            At::root("system").index(j).key("text"),
                            "is required",
                        ))
                    }
                    _ => {
                        return Err(TranslateError::field(
                            At::root("system").index(j).key("type"),
                            "must be \"text\" (a system prompt is text only)",
                        ))
                    }
                }
            }
        }
    }

    let mut contents = ContentsBuilder::default();
    for (i, msg) in messages.into_iter().enumerate() {
        let path = At::root("messages").index(i);
        let role = msg
            .role
            .ok_or_else(|| TranslateError::field(path.key("role"), "is required"))?;
        let content = msg
            .content
            .ok_or_else(|| TranslateError::field(path.key("content"), "is required"))?;
        match (role, content) {
            (Role::System, TextOr::Text(text)) => {
                if !text.is_empty() {
                    system.push(Part::text(text.into_owned()));
                }
            }
            (Role::System, TextOr::Items(blocks)) => {
                for (j, block) in blocks.into_iter().enumerate() {
                    match (block.kind.as_deref(), block.text) {
                        (Some("text"), Some(text)) if !text.is_empty() => system.push(Part::text(text)),
                        (Some("text"), _) => {}
                        _ => {
                            return Err(TranslateError::field(
                                path.key("content").index(j).key("type"),
                                "must be \"text\" (a system message is text only)",
                            ))
                        }
                    }
                }
            }
            (Role::User, TextOr::Text(text)) => {
                if !text.is_empty() {
                    contents.push("user", Part::text(text.into_owned()));
                }
            }
            (Role::Assistant, TextOr::Text(text)) => {
                if !text.is_empty() {
                    contents.push("model", Part::text(text.into_owned()));
                }
            }
            (Role::User, TextOr::Items(blocks)) => {
                for (j, block) in blocks.into_iter().enumerate() {
                    user_block(block, &path.key("content").index(j), &mut contents)?;
                }
            }
            (Role::Assistant, TextOr::Items(blocks)) => {
                let mut parts = Vec::with_capacity(blocks.len());
                // A thinking block's signature belongs to the part after it.
                let mut signature: Option<String> = None;
                for (j, block) in blocks.into_iter().enumerate() {
                    let block_path = path.key("content").index(j);
                    let mut part = match block.kind.as_deref() {
                        Some("text") => match block.text {
                            Some(text) if !text.is_empty() => Part::text(text),
                            Some(_) => continue,
                            None => {
                                return Err(TranslateError::field(
                                    block_path.key("text"),
                                    "is required",
                                ))
                            }
                        },
                        Some("tool_use") => tool_use_part(block, &block_path)?,
                        Some("thinking") => {
                            signature = block.signature.and_then(unwrap_signature).or(signature);
                            continue;
                        }
                        Some(
                            "redacted_thinking" | "server_tool_use" | "web_search_tool_result",
                        ) => continue,
                        other => return Err(unsupported_block(other, &block_path, "an assistant")),
                    };
                    if part.thought_signature.is_none() {
                        part.thought_signature = signature.take();
                    }
                    parts.push(part);
                }
                sign_first_call(&mut parts);
                contents.extend("model", parts);
            }
        }
    }
    if contents.is_empty() {
        return Err(TranslateError::field(
            "messages",
            "must contain at least one message with content",
        ));
    }

    let (tools, search_dropped) = translate_tools(req.tools)?;
    let has_functions = tools.iter().any(|t| t.function_declarations.is_some());
    let tool_config = match (req.tool_choice, has_functions) {
        (Some(choice), true) => Some(tool_choice(choice)?),
        (Some(choice), false) => {
            tool_choice(choice)?; // still validated
            None
        }
        (None, _) => None,
    };

    let effort = req.output_config.and_then(|o| o.effort).filter(|e| !e.is_empty());
    let thinking_config = match req.thinking {
        None => None,
        Some(t) => match t.kind.as_deref() {
            Some("enabled") => Some(ThinkingConfig {
                thinking_budget: t.budget_tokens.or_else(|| effort.as_deref().map(effort_budget)),
                include_thoughts: Some(true),
                ..ThinkingConfig::default()
            }),
            // Adaptive: the model decides (Gemini's dynamic budget, -1),
            // within the effort when one is given.
            Some("adaptive") => Some(ThinkingConfig {
                thinking_budget: Some(effort.as_deref().map_or(-1, effort_budget)),
                include_thoughts: Some(true),
                ..ThinkingConfig::default()
            }),
            // Not every Gemini model can turn thinking off; leave its default.
            Some("disabled") => None,
            _ => {
                return Err(TranslateError::field(
                    "thinking.type",
                    "must be \"enabled\", \"adaptive\" or \"disabled\"",
                ))
            }
        },
    };
    let config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k.map(f64::from),
        max_output_tokens: req.max_tokens,
        stop_sequences: req.stop_sequences.filter(|s| !s.is_empty()),
        thinking_config,
        ..GenerationConfig::default()
    };

    let req = ClientRequest {
        model,
        stream: req.stream.unwrap_or(false),
        session_hint: req.metadata.and_then(|m| m.user_id).and_then(conversation_of_user_id),
        gemini: gemini_request(contents, system, tools, tool_config, config),
    };
    Ok((req, search_dropped))
}

/// The conversation a `metadata.user_id` names. Claude Code sends its
/// session there: as JSON (`{"device_id","account_uuid","session_id"}`,
/// 2.1.x) or as `user_<hash>_account_<uuid>_session_<uuid>` (older); only
/// the session part is kept (not the device or account). Any other value
/// is the client's own user id, kept whole (like OpenAI `user`).
fn conversation_of_user_id(user_id: String) -> Option<String> {
    #[derive(Deserialize)]
    struct ClaudeCode {
        session_id: Option<String>,
    }
    let session = if user_id.starts_with('{') {
        serde_json::from_str::<ClaudeCode>(&user_id).ok().and_then(|c| c.session_id)
    } else {
        user_id.rsplit_once("_session_").map(|(_, s)| s.to_string())
    };
    match session {
        Some(s) => Some(s).filter(|s| !s.is_empty()),
        None => Some(user_id).filter(|u| !u.is_empty()),
    }
}

fn unsupported_block(kind: Option<&str>, path: &At<'_>, role: &str) -> TranslateError {
    match kind {
        None => TranslateError::field(path.key("type"), "is required"),
        Some(kind) => TranslateError::field(
            path.key("type"),
            format!("`{kind}` is not supported in {role} message"),
        ),
    }
}

/// Translates one block of a user message into `contents`.
fn user_block(
    block: Block<'_>,
    path: &At<'_>,
    contents: &mut ContentsBuilder,
) -> Result<(), TranslateError> {
    match block.kind.as_deref() {
        Some("text") => {
            let text = block
                .text
                .ok_or_else(|| TranslateError::field(path.key("text"), "is required"))?;
            if !text.is_empty() {
                contents.push("user", Part::text(text));
            }
        }
        Some("image") => contents.push("user", media_part(block.source, path, false)?),
        Some("document") => contents.push("user", media_part(block.source, path, true)?),
        Some("tool_result") => {
            let id = block
                .tool_use_id
                .ok_or_else(|| TranslateError::field(path.key("tool_use_id"), "is required"))?;
            let name = contents
                .call_name(&id)
                .ok_or_else(|| {
                    TranslateError::field(
                        path.key("tool_use_id"),
                        format!("`{id}` does not match the id of any earlier tool_use block"),
                    )
                })?
                .to_owned();
            let mut text = String::new();
            let mut images = Vec::new();
            match block.content {
                None => {}
                Some(TextOr::Text(t)) => text = t.into_owned(),
                Some(TextOr::Items(items)) => {
                    for (k, item) in items.into_iter().enumerate() {
                        let item_path = path.key("content").index(k);
                        match item.kind.as_deref() {
                            Some("text") => {
                                if !text.is_empty() {
                                    text.push('\n');
                                }
                                text.push_str(item.text.as_deref().unwrap_or(""));
                            }
                            Some("image") => images.push(media_part(item.source, &item_path, false)?),
                            other => {
                                return Err(match other {
                                    None => TranslateError::field(item_path.key("type"), "is required"),
                                    Some(kind) => TranslateError::field(
                                        item_path.key("type"),
                                        format!("`{kind}` is not supported in a tool_result (use text or image)"),
                                    ),
                                })
                            }
                        }
                    }
                }
            }
            let mut response = Map::with_capacity(2);
            response.insert("content".to_owned(), Value::String(text));
            if block.is_error == Some(true) {
                response.insert("is_error".to_owned(), Value::Bool(true));
            }
            contents.push(
                "user",
                Part {
                    function_response: Some(FunctionResponse {
                        id: Some(id.into_owned()),
                        name,
                        response: Value::Object(response),
                        extra: Map::new(),
                    }),
                    ..Part::default()
                },
            );
            contents.extend("user", images);
        }
        other => return Err(unsupported_block(other, path, "a user")),
    }
    Ok(())
}

/// An `image` or `document` block's `source` as a Gemini part.
fn media_part(
    source: Option<Source<'_>>,
    path: &At<'_>,
    document: bool,
) -> Result<Part, TranslateError> {
    let source = source.ok_or_else(|| TranslateError::field(path.key("source"), "is required"))?;
    let required =
        |field: &'static str| TranslateError::field(path.key("source").key(field), "is required");
    match source.kind.as_deref() {
        Some("base64") => Ok(Part {
            inline_data: Some(Blob {
                mime_type: source.media_type.ok_or_else(|| required("media_type"))?,
                data: source.data.ok_or_else(|| required("data"))?,
            }),
            ..Part::default()
        }),
        Some("text") if document => Ok(Part::text(source.data.ok_or_else(|| required("data"))?)),
        Some("url") => Err(TranslateError::field(
            path.key("source.type"),
            "`url` is not supported: this proxy does not fetch URLs; send the data as base64",
        )),
        Some(other) => Err(TranslateError::field(
            path.key("source.type"),
            format!(
                "`{other}` is not supported (use {})",
                if document { "base64 or text" } else { "base64" }
            ),
        )),
        None => Err(required("type")),
    }
}

fn tool_use_part(block: Block<'_>, path: &At<'_>) -> Result<Part, TranslateError> {
    let id = block
        .id
        .filter(|i| !i.is_empty())
        .ok_or_else(|| TranslateError::field(path.key("id"), "is required"))?;
    let name = block
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
    let args = match block.input {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(TranslateError::field(
                path.key("input"),
                "must be a JSON object",
            ))
        }
    };
    Ok(Part {
        function_call: Some(FunctionCall {
            id: Some(id),
            name,
            args: Some(args),
            extra: Map::new(),
        }),
        ..Part::default()
    })
}

/// The Gemini tools, and whether a web search tool was dropped for the
/// custom ones.
fn translate_tools(tools: Option<Vec<ToolIn<'_>>>) -> Result<(Vec<Tool>, bool), TranslateError> {
    let mut decls = Vec::new();
    let mut web_search = false;
    for (j, tool) in tools.unwrap_or_default().into_iter().enumerate() {
        let path = At::root("tools").index(j);
        match tool.kind.as_deref() {
            None | Some("custom") => {
                let name = tool
                    .name
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| TranslateError::field(path.key("name"), "is required"))?;
                let schema = tool
                    .input_schema
                    .ok_or_else(|| TranslateError::field(path.key("input_schema"), "is required"))?;
                decls.push(function_declaration(name, tool.description, Some(schema)));
            }
            Some(kind) if kind.starts_with("web_search") => web_search = true,
            Some(kind) => {
                return Err(TranslateError::field(
                    path.key("type"),
                    format!(
                        "`{kind}` is an Anthropic-defined tool Gemini cannot run; declare it as a custom tool with an input_schema"
                    ),
                ))
            }
        }
    }
    Ok(if !decls.is_empty() {
        (function_tools(decls), web_search)
    } else if web_search {
        let mut extra = Map::with_capacity(1);
        extra.insert("googleSearch".to_owned(), Value::Object(Map::new()));
        let tool = Tool {
            function_declarations: None,
            extra,
        };
        (vec![tool], false)
    } else {
        (Vec::new(), false)
    })
}

fn tool_choice(choice: ToolChoiceIn<'_>) -> Result<ToolConfig, TranslateError> {
    Ok(match choice.kind.as_deref() {
        Some("auto") => ToolConfig::mode("AUTO", None),
        Some("any") => ToolConfig::mode("ANY", None),
        Some("none") => ToolConfig::mode("NONE", None),
        Some("tool") => {
            let name = choice.name.filter(|n| !n.is_empty()).ok_or_else(|| {
                TranslateError::field("tool_choice.name", "is required when type is \"tool\"")
            })?;
            ToolConfig::mode("ANY", Some(name))
        }
        _ => {
            return Err(TranslateError::field(
                "tool_choice.type",
                "must be \"auto\", \"any\", \"tool\" or \"none\"",
            ))
        }
    })
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

/// An Anthropic `message` object (non-streamed answer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageResponse {
    /// `msg_…`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `assistant`.
    pub role: &'static str,
    /// The model the client asked for.
    pub model: String,
    /// Thinking, text and tool_use blocks, in Gemini's order.
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `tool_use` or `refusal`.
    pub stop_reason: &'static str,
    /// Always `null` (Gemini does not say which stop sequence matched).
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// A content block of a [`MessageResponse`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Answer text.
    Text {
        /// The text.
        text: String,
        /// The sources of this span of a grounded answer.
        #[serde(skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<Citation>>,
    },
    /// Gemini's thought summary.
    Thinking {
        /// The summary.
        thinking: String,
        /// `grantpool:` + Gemini's `thoughtSignature` (empty when none came).
        signature: String,
    },
    /// A call the model wants run.
    ToolUse {
        /// Gemini's call id when it gave one, else `toolu_…`.
        id: String,
        /// Function name.
        name: String,
        /// Arguments object.
        input: Value,
    },
    /// The web search Gemini ran (Google Search grounding).
    ServerToolUse {
        /// `srvtoolu_…`.
        id: String,
        /// Always `web_search`.
        name: &'static str,
        /// `{"query": <the first query Gemini ran>}`.
        input: Value,
    },
    /// The pages the search found.
    WebSearchToolResult {
        /// The `server_tool_use` block's id.
        tool_use_id: String,
        /// One entry per page.
        content: Vec<WebSearchResult>,
    },
}

/// One page of a `web_search_tool_result` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebSearchResult {
    /// Always `web_search_result`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The page's address.
    pub url: String,
    /// Its title.
    pub title: String,
    /// An opaque token (Anthropic's is its copy of the page; this proxy's
    /// is never read back).
    pub encrypted_content: String,
    /// Always `null` (Google does not say).
    pub page_age: Option<String>,
}

impl WebSearchResult {
    fn of(source: &WebSource) -> Self {
        WebSearchResult {
            kind: "web_search_result",
            url: source.url.clone(),
            title: source.title.clone(),
            encrypted_content: source.token(),
            page_age: None,
        }
    }
}

/// A `web_search_result_location` citation on a span of text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Citation {
    /// Always `web_search_result_location`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The page.
    pub url: String,
    /// Its title.
    pub title: String,
    /// An opaque token (the page's).
    pub encrypted_index: String,
    /// The span cited (Gemini's segment).
    pub cited_text: String,
}

impl Citation {
    fn of(source: &WebSource, cited: &str) -> Self {
        Citation {
            kind: "web_search_result_location",
            url: source.url.clone(),
            title: source.title.clone(),
            encrypted_index: source.token(),
            cited_text: cited.to_owned(),
        }
    }
}

/// `usage.server_tool_use`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerToolUsage {
    /// The searches Gemini ran (its `webSearchQueries`).
    pub web_search_requests: u64,
}

/// Anthropic `usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens not read from cache.
    pub input_tokens: u64,
    /// Output tokens, thinking included.
    pub output_tokens: u64,
    /// Prompt tokens read from cache, when Gemini reports any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// The server tools run, for a grounded answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_tool_use: Option<ServerToolUsage>,
}

impl Usage {
    /// Anthropic usage from Gemini's `usageMetadata` (zeros when absent).
    pub fn from_gemini(usage: Option<&UsageMetadata>) -> Self {
        usage.map_or_else(Usage::default, |u| Usage {
            input_tokens: u.prompt().saturating_sub(u.cached()),
            output_tokens: u.output(),
            cache_read_input_tokens: u.cached_content_token_count,
            server_tool_use: None,
        })
    }
}

fn stop_reason(kind: Option<FinishKind>, tool_use: bool) -> &'static str {
    match kind {
        _ if tool_use => "tool_use",
        Some(FinishKind::MaxTokens) => "max_tokens",
        Some(FinishKind::Filtered) => "refusal",
        _ => "end_turn",
    }
}

fn tool_use_id(call: &FunctionCall) -> Cow<'_, str> {
    match call.id.as_deref() {
        Some(id) if !id.is_empty() => Cow::Borrowed(id),
        _ => Cow::Owned(new_id("toolu_")),
    }
}

fn call_input(call: &FunctionCall) -> Value {
    match &call.args {
        Some(args @ Value::Object(_)) => args.clone(),
        _ => Value::Object(Map::new()),
    }
}

/// Builds the Anthropic `message` for a (non-streamed) Gemini response.
/// `model` is echoed as the client sent it.
pub fn response_from_gemini(resp: &GenerateContentResponse, model: &str) -> MessageResponse {
    response_with_search(resp, model, false)
}

/// [`response_from_gemini`]; with `search` (the request ran Google Search)
/// and a grounded answer, the search is shown as Anthropic's web search
/// tool shows it: after any thinking, a `server_tool_use` block
/// (`web_search`, the first query Gemini ran), a `web_search_tool_result`
/// block with Gemini's sources, then the text, cut into blocks at the
/// spans Gemini's supports cite, those with `citations`; and
/// `usage.server_tool_use.web_search_requests`, the number of queries.
pub fn response_with_search(resp: &GenerateContentResponse, model: &str, search: bool) -> MessageResponse {
    let mut message = plain_response(resp, model);
    let grounding = search.then(|| resp.grounding()).flatten().map(|m| {
        let mut g = Grounding::default();
        g.add(m);
        g
    });
    if let Some(g) = grounding.filter(Grounding::searched) {
        let sources = g.sources();
        let at = message
            .content
            .iter()
            .position(|b| !matches!(b, ContentBlock::Thinking { .. }))
            .unwrap_or(message.content.len());
        let mut blocks = search_blocks(&g, &sources).to_vec();
        // The answer text, cut at the cited spans.
        if let Some(ContentBlock::Text { text, .. }) = message.content.get(at) {
            blocks.extend(cited_blocks(text, &g, &sources));
            message.content.splice(at..=at, blocks);
        } else {
            message.content.splice(at..at, blocks);
        }
        message.usage.server_tool_use = Some(ServerToolUsage { web_search_requests: g.requests() });
    }
    message
}

/// The `server_tool_use` and `web_search_tool_result` blocks of a search.
fn search_blocks(g: &Grounding, sources: &[WebSource]) -> [ContentBlock; 2] {
    let id = new_id("srvtoolu_");
    [
        ContentBlock::ServerToolUse {
            id: id.clone(),
            name: "web_search",
            input: search_input(g),
        },
        ContentBlock::WebSearchToolResult {
            tool_use_id: id,
            content: sources.iter().map(WebSearchResult::of).collect(),
        },
    ]
}

fn search_input(g: &Grounding) -> Value {
    json!({"query": g.queries.first().map_or("", String::as_str)})
}

/// `text` as text blocks: the spans Gemini cites with their citations,
/// the rest plain.
fn cited_blocks(text: &str, g: &Grounding, sources: &[WebSource]) -> Vec<ContentBlock> {
    let mut out = Vec::new();
    let mut at = 0;
    let plain = |s: &str| ContentBlock::Text { text: s.to_owned(), citations: None };
    for cited in g.citations(text) {
        if cited.range.start > at {
            out.push(plain(&text[at..cited.range.start]));
        }
        let span = &text[cited.range.clone()];
        let citations = cited.sources.iter().map(|&i| Citation::of(&sources[i], span)).collect();
        out.push(ContentBlock::Text { text: span.to_owned(), citations: Some(citations) });
        at = cited.range.end;
    }
    if at < text.len() || out.is_empty() {
        out.push(plain(&text[at..]));
    }
    out
}

fn plain_response(resp: &GenerateContentResponse, model: &str) -> MessageResponse {
    let mut content: Vec<ContentBlock> = Vec::new();
    let mut tool_use = false;
    for part in resp.parts() {
        let signature = part.thought_signature.as_deref().filter(|s| !s.is_empty());
        let text = part.text.as_deref().unwrap_or("");
        if part.is_thought() {
            match content.last_mut() {
                Some(ContentBlock::Thinking {
                    thinking,
                    signature: sig,
                }) if sig.is_empty() => thinking.push_str(text),
                _ => content.push(ContentBlock::Thinking {
                    thinking: text.to_owned(),
                    signature: String::new(),
                }),
            }
            if let (Some(ContentBlock::Thinking { signature: sig, .. }), Some(s)) =
                (content.last_mut(), signature)
            {
                *sig = wrap_signature(s);
            }
            continue;
        }
        // A signature on the part after the thoughts belongs to them.
        if let (Some(ContentBlock::Thinking { signature: sig, .. }), Some(s)) =
            (content.last_mut(), signature)
        {
            if sig.is_empty() {
                *sig = wrap_signature(s);
            }
        }
        if let Some(call) = &part.function_call {
            tool_use = true;
            content.push(ContentBlock::ToolUse {
                id: tool_use_id(call).into_owned(),
                name: call.name.clone(),
                input: call_input(call),
            });
        } else if !text.is_empty() {
            match content.last_mut() {
                Some(ContentBlock::Text { text: existing, .. }) => existing.push_str(text),
                _ => content.push(ContentBlock::Text {
                    text: text.to_owned(),
                    citations: None,
                }),
            }
        }
    }
    MessageResponse {
        id: match resp.response_id.as_deref() {
            Some(id) if !id.is_empty() => format!("msg_{id}"),
            _ => new_id("msg_"),
        },
        kind: "message",
        role: "assistant",
        model: model.to_owned(),
        content,
        stop_reason: stop_reason(FinishKind::of_response(resp), tool_use),
        stop_sequence: None,
        usage: Usage::from_gemini(resp.usage_metadata.as_ref()),
    }
}

/// An error body in Anthropic's shape:
/// `{"type":"error","error":{"type":…,"message":…}}`, the type chosen by status.
pub fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        // 529 is Anthropic's own "overloaded"; a pool with no account left is the same to a client.
        503 | 529 => "overloaded_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockStart<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        usage: Usage,
    },
    MessageStop,
    Error {
        error: ErrorBody<'a>,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Error { .. } => "error",
        }
    }

    fn sse(&self) -> SseEvent {
        SseEvent::named(
            self.name(),
            serde_json::to_string(self).expect("event serializes"),
        )
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: Usage,
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: EmptyObject,
    },
    ServerToolUse {
        id: &'a str,
        name: &'static str,
        input: EmptyObject,
    },
    WebSearchToolResult {
        tool_use_id: &'a str,
        content: Vec<WebSearchResult>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the wire names all end in `_delta`
enum BlockDelta<'a> {
    TextDelta { text: &'a str },
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: String },
    InputJsonDelta { partial_json: String },
    CitationsDelta { citation: Citation },
}

#[derive(Serialize)]
struct MessageDeltaBody {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Thinking { signed: bool },
}

/// Turns a Gemini stream into Anthropic Messages streaming events, one
/// Gemini chunk at a time.
///
/// The first chunk opens with `message_start`. Each run of one kind of part
/// (text, thought) is one content block — `content_block_start`, its deltas
/// (`text_delta`, `thinking_delta`, `signature_delta`), `content_block_stop`
/// when the kind changes — with indexes counting up from 0. Gemini sends
/// each function call whole, so a call is a `tool_use` block opened, given
/// its complete arguments in one `input_json_delta`, and closed at once.
/// [`finish`](Self::finish) closes the open block and sends `message_delta`
/// (stop reason, usage) and `message_stop`.
///
/// For a request that runs Google Search ([`with_search`](Self::with_search))
/// the answer text is held back until Gemini's sources come (Gemini sends
/// its `groundingMetadata` with the last events), so that the blocks come
/// in Anthropic's order: a `server_tool_use` block (its input as one
/// `input_json_delta`), a `web_search_tool_result` block given whole in
/// its `content_block_start`, then the text, whose citations come as
/// `citations_delta` events before its `content_block_stop`.
#[derive(Debug)]
pub struct StreamTranslator {
    id: String,
    model: String,
    started: bool,
    open: Option<OpenBlock>,
    next_index: u32,
    tool_use: bool,
    finish: Option<FinishKind>,
    usage: Usage,
    done: bool,
    /// The request runs Google Search.
    search: bool,
    grounding: Grounding,
    /// Text held back until the search blocks are out.
    held: String,
    /// The search blocks are out (or there were none to send).
    searched: bool,
    /// The text sent since the search blocks (what Gemini's supports index).
    answer: String,
}

impl StreamTranslator {
    /// A translator for one response; `model` is echoed in `message_start`.
    pub fn new(model: &str) -> Self {
        Self::with_search(model, false)
    }

    /// A translator that shows Google Search grounding as Anthropic's web
    /// search tool when `search` (the request ran `googleSearch`).
    pub fn with_search(model: &str, search: bool) -> Self {
        StreamTranslator {
            id: new_id("msg_"),
            model: model.to_owned(),
            started: false,
            open: None,
            next_index: 0,
            tool_use: false,
            finish: None,
            usage: Usage::default(),
            done: false,
            search,
            grounding: Grounding::default(),
            held: String::new(),
            searched: !search,
            answer: String::new(),
        }
    }

    /// The search blocks (when Gemini searched), then the text held back.
    fn flush_search(&mut self, out: &mut Vec<SseEvent>) {
        if std::mem::replace(&mut self.searched, true) {
            return;
        }
        if self.grounding.searched() {
            self.close(out);
            let sources = self.grounding.sources();
            let id = new_id("srvtoolu_");
            let index = self.next_index;
            self.next_index += 2;
            let start = BlockStart::ServerToolUse { id: &id, name: "web_search", input: EmptyObject {} };
            out.push(Event::ContentBlockStart { index, content_block: start }.sse());
            let partial_json = search_input(&self.grounding).to_string();
            out.push(Event::ContentBlockDelta { index, delta: BlockDelta::InputJsonDelta { partial_json } }.sse());
            out.push(Event::ContentBlockStop { index }.sse());
            let content = sources.iter().map(WebSearchResult::of).collect();
            let result = BlockStart::WebSearchToolResult { tool_use_id: &id, content };
            out.push(Event::ContentBlockStart { index: index + 1, content_block: result }.sse());
            out.push(Event::ContentBlockStop { index: index + 1 }.sse());
            self.usage.server_tool_use = Some(ServerToolUsage { web_search_requests: self.grounding.requests() });
        }
        let held = std::mem::take(&mut self.held);
        self.text(&held, out);
    }

    /// A piece of answer text, into the open text block.
    fn text(&mut self, text: &str, out: &mut Vec<SseEvent>) {
        if text.is_empty() {
            return;
        }
        let index = self.ensure(OpenBlock::Text, out);
        out.push(Event::ContentBlockDelta { index, delta: BlockDelta::TextDelta { text } }.sse());
        if self.search {
            self.answer.push_str(text);
        }
    }

    /// The citations of the open text block of a grounded answer, before
    /// it closes.
    fn citations(&mut self, out: &mut Vec<SseEvent>) {
        if !self.search || self.open != Some(OpenBlock::Text) || !self.grounding.has_sources() {
            return;
        }
        let index = self.next_index - 1;
        let sources = self.grounding.sources();
        for cited in self.grounding.citations(&self.answer) {
            let span = &self.answer[cited.range.clone()];
            for &i in &cited.sources {
                let citation = Citation::of(&sources[i], span);
                out.push(Event::ContentBlockDelta { index, delta: BlockDelta::CitationsDelta { citation } }.sse());
            }
        }
    }

    fn start(&mut self, out: &mut Vec<SseEvent>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        out.push(
            Event::MessageStart {
                message: StartMessage {
                    id: &self.id,
                    kind: "message",
                    role: "assistant",
                    model: &self.model,
                    content: [],
                    stop_reason: None,
                    stop_sequence: None,
                    usage: self.usage,
                },
            }
            .sse(),
        );
    }

    fn close(&mut self, out: &mut Vec<SseEvent>) {
        if self.open.take().is_some() {
            out.push(
                Event::ContentBlockStop {
                    index: self.next_index - 1,
                }
                .sse(),
            );
        }
    }

    /// Opens a block of `kind` unless one is already open; returns its index.
    fn ensure(&mut self, kind: OpenBlock, out: &mut Vec<SseEvent>) -> u32 {
        let same = matches!(
            (self.open, kind),
            (Some(OpenBlock::Text), OpenBlock::Text)
                | (Some(OpenBlock::Thinking { .. }), OpenBlock::Thinking { .. })
        );
        if !same {
            self.close(out);
            let content_block = match kind {
                OpenBlock::Text => BlockStart::Text { text: "" },
                OpenBlock::Thinking { .. } => BlockStart::Thinking { thinking: "" },
            };
            out.push(
                Event::ContentBlockStart {
                    index: self.next_index,
                    content_block,
                }
                .sse(),
            );
            self.next_index += 1;
            self.open = Some(kind);
        }
        self.next_index - 1
    }

    fn signature(&mut self, signature: &str, out: &mut Vec<SseEvent>) {
        out.push(
            Event::ContentBlockDelta {
                index: self.next_index - 1,
                delta: BlockDelta::SignatureDelta {
                    signature: wrap_signature(signature),
                },
            }
            .sse(),
        );
        self.open = Some(OpenBlock::Thinking { signed: true });
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
        if let (true, Some(meta)) = (self.search, chunk.grounding()) {
            self.grounding.add(meta);
        }
        let mut out = Vec::new();
        self.start(&mut out);
        for part in chunk.parts() {
            let signature = part.thought_signature.as_deref().filter(|s| !s.is_empty());
            let text = part.text.as_deref().unwrap_or("");
            if part.is_thought() {
                // A signature closes its thinking block; later thoughts start another.
                if self.open == Some(OpenBlock::Thinking { signed: true }) {
                    self.close(&mut out);
                }
                let index = self.ensure(OpenBlock::Thinking { signed: false }, &mut out);
                if !text.is_empty() {
                    out.push(
                        Event::ContentBlockDelta {
                            index,
                            delta: BlockDelta::ThinkingDelta { thinking: text },
                        }
                        .sse(),
                    );
                }
                if let Some(s) = signature {
                    self.signature(s, &mut out);
                }
                continue;
            }
            // A signature on the part after the thoughts belongs to them.
            if let (Some(OpenBlock::Thinking { signed: false }), Some(s)) = (self.open, signature) {
                self.signature(s, &mut out);
            }
            if let Some(call) = &part.function_call {
                self.flush_search(&mut out);
                self.close(&mut out);
                let index = self.next_index;
                self.next_index += 1;
                self.tool_use = true;
                out.push(
                    Event::ContentBlockStart {
                        index,
                        content_block: BlockStart::ToolUse {
                            id: tool_use_id(call),
                            name: &call.name,
                            input: EmptyObject {},
                        },
                    }
                    .sse(),
                );
                out.push(
                    Event::ContentBlockDelta {
                        index,
                        delta: BlockDelta::InputJsonDelta {
                            partial_json: args_json(call),
                        },
                    }
                    .sse(),
                );
                out.push(Event::ContentBlockStop { index }.sse());
            } else if !self.searched {
                self.held.push_str(text);
            } else {
                self.text(text, &mut out);
            }
        }
        if !self.searched && self.grounding.has_sources() {
            self.flush_search(&mut out);
        }
        out
    }

    /// Whether a Gemini chunk has said the answer is complete (a
    /// `finishReason`, or a blocked prompt). A stream that ends without one
    /// was cut short.
    pub fn saw_finish(&self) -> bool {
        self.finish.is_some()
    }

    /// Closing events: `content_block_stop` for an open block, `message_delta`
    /// (stop reason, usage), `message_stop`. Nothing after the stream ended.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(4);
        self.start(&mut out);
        self.flush_search(&mut out);
        self.citations(&mut out);
        self.close(&mut out);
        out.push(
            Event::MessageDelta {
                delta: MessageDeltaBody {
                    stop_reason: stop_reason(self.finish, self.tool_use),
                    stop_sequence: None,
                },
                usage: self.usage,
            }
            .sse(),
        );
        out.push(Event::MessageStop.sse());
        out
    }

    /// Ends the stream with an `error` event
    /// (`{"type":"error","error":{"type":"api_error","message":…}}`).
    pub fn error(&mut self, message: &str) -> Vec<SseEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        vec![Event::Error {
            error: ErrorBody {
                kind: "api_error",
                message,
            },
        }
        .sse()]
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

    /// Each event as (name, data), checking the name matches the data's type.
    fn events(evs: &[SseEvent]) -> Vec<(&'static str, Value)> {
        evs.iter()
            .map(|e| {
                let data: Value = serde_json::from_str(&e.data).unwrap();
                let name = e.event.expect("anthropic events are named");
                assert_eq!(data["type"], name, "event name matches type");
                (name, data)
            })
            .collect()
    }

    fn names(evs: &[SseEvent]) -> Vec<&'static str> {
        evs.iter().map(|e| e.event.unwrap()).collect()
    }

    #[test]
    fn system_multi_turn_and_params() {
        let req = parse(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                       {"type": "text", "text": "Answer in English."}],
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]}
            ],
            "temperature": 0.3,
            "top_p": 0.8,
            "top_k": 40,
            "stop_sequences": ["\n\nHuman:"],
            "metadata": {"user_id": "session-abc"},
            "stream": true
        }));
        assert_eq!(req.model, "claude-sonnet-4-5");
        assert!(req.stream);
        assert_eq!(req.session_hint.as_deref(), Some("session-abc"));
        assert_eq!(
            serde_json::to_value(&req.gemini).unwrap(),
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Hi"}]},
                    {"role": "model", "parts": [{"text": "Hello."}]},
                    {"role": "user", "parts": [{"text": "Weather?"}]}
                ],
                "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
                "generationConfig": {"temperature": 0.3, "topP": 0.8, "topK": 40.0,
                                     "maxOutputTokens": 1024, "stopSequences": ["\n\nHuman:"]}
            })
        );
        let plain = parse(
            json!({"model": "m", "system": "Be kind.", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(
            serde_json::to_value(plain.gemini.system_instruction).unwrap(),
            json!({"parts": [{"text": "Be kind."}]})
        );
        assert!(!plain.stream);
        assert_eq!(plain.session_hint, None);
    }

    #[test]
    fn images_and_documents() {
        let req = parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
                {"type": "text", "text": "Describe."}
            ]}]
        }));
        assert_eq!(
            serde_json::to_value(&req.gemini.contents).unwrap(),
            json!([{"role": "user", "parts": [
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                {"text": "notes"},
                {"text": "Describe."}
            ]}])
        );
    }

    #[test]
    fn tool_round_trip() {
        let req = parse(json!({
            "model": "m",
            "max_tokens": 100,
            "tools": [{
                "name": "get_weather",
                "description": "Current weather",
                "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                    "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}
            }],
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": [
                        {"type": "text", "text": "18C"},
                        {"type": "text", "text": "sunny"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}
                    ]},
                    {"type": "text", "text": "And tomorrow?"}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_02", "content": "service down", "is_error": true}
                ]}
            ]
        }));
        let g = serde_json::to_value(&req.gemini).unwrap();
        assert_eq!(
            g["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [
                    {"text": "Let me check."},
                    {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                     "functionCall": {"id": "toolu_01", "name": "get_weather", "args": {"city": "Paris"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"id": "toolu_01", "name": "get_weather", "response": {"content": "18C\nsunny"}}},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                    {"text": "And tomorrow?"}
                ]},
                {"role": "model", "parts": [
                    {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                     "functionCall": {"id": "toolu_02", "name": "get_weather", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"id": "toolu_02", "name": "get_weather",
                                          "response": {"content": "service down", "is_error": true}}}
                ]}
            ])
        );
        // The client's schema goes as it came; the `parameters` form made of
        // it (for the backends that need it) is the cleaned one.
        let raw = &g["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"];
        assert_eq!(g["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
        assert_eq!(g["tools"][0]["functionDeclarations"][0]["description"], "Current weather");
        assert_eq!(raw["additionalProperties"], false);
        assert_eq!(
            crate::translate::schema::to_parameters(raw.clone()).unwrap(),
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
        );
        assert_eq!(
            g["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
        );

        let resp = gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Checking Oslo."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 10, "totalTokenCount": 60}
        }));
        let out = serde_json::to_value(response_from_gemini(&resp, "claude-x")).unwrap();
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            out["content"][0],
            json!({"type": "text", "text": "Checking Oslo."})
        );
        let call = &out["content"][1];
        assert_eq!(call["type"], "tool_use");
        assert!(call["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(call["name"], "get_weather");
        assert_eq!(call["input"], json!({"city": "Oslo"}));
    }

    #[test]
    fn thinking_signatures_round_trip() {
        // Gemini puts the signature on the call after its thoughts; it
        // travels in the thinking block and comes back on the call.
        let resp = gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "The user wants weather.", "thought": true},
                {"text": " Call the tool.", "thought": true},
                {"functionCall": {"id": "fc1", "name": "get_weather", "args": {"city": "Rome"}}, "thoughtSignature": "SIG1"}
            ]}, "finishReason": "STOP"}]
        }));
        let out = serde_json::to_value(response_from_gemini(&resp, "m")).unwrap();
        assert_eq!(
            out["content"],
            json!([
                {"type": "thinking", "thinking": "The user wants weather. Call the tool.", "signature": "grantpool:SIG1"},
                {"type": "tool_use", "id": "fc1", "name": "get_weather", "input": {"city": "Rome"}}
            ])
        );
        let req = parse(json!({
            "model": "m",
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "Weather in Rome?"},
                {"role": "assistant", "content": out["content"]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "fc1", "content": "20C"}]}
            ]
        }));
        let g = serde_json::to_value(&req.gemini).unwrap();
        assert_eq!(
            g["contents"][1],
            json!({"role": "model", "parts": [
                {"thoughtSignature": "SIG1", "functionCall": {"id": "fc1", "name": "get_weather", "args": {"city": "Rome"}}}
            ]})
        );
        assert_eq!(
            g["generationConfig"],
            json!({"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}})
        );

        // A signature Anthropic made (the session began on its API) means
        // nothing to Gemini: it is dropped and the call gets the dummy.
        let req = parse(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "Weather in Rome?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Use the tool.", "signature": "EqQBCkgIARABGAIiQL+anthropic"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "20C"}]}
            ]
        }));
        assert_eq!(
            serde_json::to_value(&req.gemini.contents[1]).unwrap(),
            json!({"role": "model", "parts": [
                {"text": "Checking."},
                {"thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                 "functionCall": {"id": "toolu_1", "name": "get_weather", "args": {"city": "Rome"}}}
            ]})
        );
    }

    #[test]
    fn server_tools_and_choices() {
        let only_search = parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "news?"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
        }));
        assert_eq!(
            serde_json::to_value(&only_search.gemini.tools).unwrap(),
            json!([{"googleSearch": {}}])
        );
        let mixed = parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"},
                      {"name": "now", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "any"}
        }));
        assert_eq!(
            serde_json::to_value(&mixed.gemini.tools).unwrap(),
            json!([{"functionDeclarations": [{"name": "now", "parametersJsonSchema": {"type": "object", "properties": {}}}]}])
        );
        assert_eq!(
            serde_json::to_value(mixed.gemini.tool_config).unwrap(),
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
        let g = parse(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}],
            "tool_choice": {"type": "none"}}),
        );
        assert_eq!(
            g.gemini
                .tool_config
                .unwrap()
                .function_calling_config
                .unwrap()
                .mode
                .as_deref(),
            Some("NONE")
        );
    }

    #[test]
    fn malformed_requests_name_the_field() {
        let user = json!([{"role": "user", "content": "x"}]);
        let cases: Vec<(Value, &str)> = vec![
            (json!({"messages": user}), "`model` is required"),
            (json!({"model": "m"}), "`messages` is required"),
            (json!({"model": "m", "messages": []}), "`messages` must contain"),
            (json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}), "`messages[0].role` is invalid: unknown variant `tool`, expected one of `user`, `assistant`, `system`"),
            // A system message alone is no conversation.
            (json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}), "`messages` must contain at least one message with content"),
            (json!({"model": "m", "messages": [{"role": "user"}]}), "`messages[0].content` is required"),
            (json!({"model": "m", "messages": [{"role": "user", "content": {"text": "x"}}]}), "`messages[0].content` is invalid: invalid type: map, expected a string or an array"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": ["x"]}]}]}), "`messages[0].content[0].text` is invalid: invalid type: sequence, expected a string"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]}), "`messages[0].content[0].source.type` `url` is not supported"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "AA=="}}]}]}), "`messages[0].content[0].source.media_type` is required"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": 1}}]}]}), "`messages[0].content[0].source.type` is invalid"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "r"}]}]}), "`messages[0].content[0].tool_use_id` `toolu_9` does not match"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "r"}]}]}), "`messages[0].content[0].tool_use_id` is required"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": 1}]}]}]}), "`messages[0].content[0].content[0].text` is invalid"),
            (json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}]}), "`messages[0].content[0].input` must be a JSON object"),
            (json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]}), "`messages[0].content[0].id` is required"),
            (json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": "image", "source": {}}]}]}), "`messages[0].content[0].type` `image` is not supported in an assistant message"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}), "`messages[0].content[0].type` `video` is not supported in a user message"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}), "`messages[0].content[0].type` is required"),
            (json!({"model": "m", "messages": user, "system": [{"type": "image"}]}), "`system[0].type` must be \"text\""),
            (json!({"model": "m", "messages": user, "system": 5}), "`system` is invalid"),
            (json!({"model": "m", "messages": user, "max_tokens": -1}), "`max_tokens` is invalid: invalid value: integer `-1`, expected a non-negative integer"),
            (json!({"model": "m", "messages": user, "tools": [{"name": "f"}]}), "`tools[0].input_schema` is required"),
            (json!({"model": "m", "messages": user, "tools": [{"description": "d", "input_schema": {}}]}), "`tools[0].name` is required"),
            (json!({"model": "m", "messages": user, "tools": [{"type": "bash_20250124", "name": "bash"}]}), "`tools[0].type` `bash_20250124` is an Anthropic-defined tool"),
            (json!({"model": "m", "messages": user, "tool_choice": {"type": "tool"}}), "`tool_choice.name` is required"),
            (json!({"model": "m", "messages": user, "tool_choice": {"type": "maybe"}}), "`tool_choice.type` must be"),
            (json!({"model": "m", "messages": user, "tool_choice": "auto"}), "`tool_choice` is invalid: invalid type: string \"auto\", expected an object"),
            (json!({"model": "m", "messages": user, "metadata": {"user_id": 5}}), "`metadata.user_id` is invalid"),
            (json!({"model": "m", "messages": user, "thinking": {"type": "on"}}), "`thinking.type` must be"),
            (json!({"model": "m", "messages": user, "stream": "yes"}), "`stream` is invalid: invalid type: string \"yes\", expected true or false"),
        ];
        for (body, want) in cases {
            let got = parse_err(body.clone());
            assert!(got.contains(want), "body {body}\n got: {got}\nwant: {want}");
        }
        assert!(matches!(
            parse_request(b"not json"),
            Err(TranslateError::InvalidJson(_))
        ));
        assert!(parse_request(b"\"a string\"")
            .unwrap_err()
            .to_string()
            .contains("must be a JSON object"));
    }

    #[test]
    fn response_text_thinking_usage() {
        let resp = gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Pondering.", "thought": true, "thoughtSignature": "S"},
                {"text": "Hello, "},
                {"text": "world."}
            ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 60,
                              "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "totalTokenCount": 112},
            "responseId": "resp9"
        }));
        assert_eq!(
            serde_json::to_value(response_from_gemini(&resp, "claude-opus-4")).unwrap(),
            json!({
                "id": "msg_resp9",
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-4",
                "content": [
                    {"type": "thinking", "thinking": "Pondering.", "signature": "grantpool:S"},
                    {"type": "text", "text": "Hello, world."}
                ],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": 40, "output_tokens": 12, "cache_read_input_tokens": 60}
            })
        );
    }

    #[test]
    fn stop_reasons() {
        let stop = |v: Value| response_from_gemini(&gemini(v), "m").stop_reason;
        let cand = |reason: &str| json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        assert_eq!(stop(cand("STOP")), "end_turn");
        assert_eq!(stop(cand("MAX_TOKENS")), "max_tokens");
        assert_eq!(stop(cand("SAFETY")), "refusal");
        assert_eq!(stop(cand("MALFORMED_FUNCTION_CALL")), "end_turn");
        assert_eq!(
            stop(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
            "refusal"
        );
        let empty = serde_json::to_value(response_from_gemini(&gemini(json!({})), "m")).unwrap();
        assert_eq!(empty["content"], json!([]));
        assert_eq!(
            empty["usage"],
            json!({"input_tokens": 0, "output_tokens": 0})
        );
        assert!(empty["id"].as_str().unwrap().starts_with("msg_"));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(401, "bad key"),
            json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
        );
        let kind = |s| {
            error_body(s, "m")["error"]["type"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(kind(400), "invalid_request_error");
        assert_eq!(kind(403), "permission_error");
        assert_eq!(kind(404), "not_found_error");
        assert_eq!(kind(413), "request_too_large");
        assert_eq!(kind(429), "rate_limit_error");
        assert_eq!(kind(503), "overloaded_error");
        assert_eq!(kind(529), "overloaded_error");
        assert_eq!(kind(500), "api_error");
        assert_eq!(kind(502), "api_error");
    }

    #[test]
    fn stream_text_event_by_event() {
        let mut t = StreamTranslator::new("claude-x");
        let a = t.push(&gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
            "usageMetadata": {"promptTokenCount": 20}
        })));
        let b = t.push(&gemini(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}}]}),
        ));
        let c = t.push(&gemini(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 2, "totalTokenCount": 22}
        })));
        let end = t.finish();

        let a = events(&a);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].0, "message_start");
        let msg = &a[0].1["message"];
        assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(
            msg,
            &json!({"id": msg["id"], "type": "message", "role": "assistant", "model": "claude-x", "content": [],
                    "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 20, "output_tokens": 0}})
        );
        assert_eq!(
            a[1].1,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        );
        assert_eq!(
            a[2].1,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}})
        );
        assert_eq!(
            events(&b),
            vec![(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}})
            )]
        );
        assert!(c.is_empty());
        let end = events(&end);
        assert_eq!(
            end,
            vec![
                (
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0})
                ),
                (
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                          "usage": {"input_tokens": 20, "output_tokens": 2}})
                ),
                ("message_stop", json!({"type": "message_stop"})),
            ]
        );
        assert!(t.finish().is_empty());
        assert!(t
            .push(&gemini(
                json!({"candidates": [{"content": {"parts": [{"text": "late"}]}}]})
            ))
            .is_empty());
    }

    #[test]
    fn stream_thinking_then_tool_calls() {
        let mut t = StreamTranslator::new("m");
        let a = t.push(&gemini(
            json!({"candidates": [{"content": {"role": "model", "parts": [
                {"text": "Need weather.", "thought": true}
            ]}}]}),
        ));
        let b = t.push(&gemini(
            json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "On it."}
        ], }}]}),
        ));
        let c = t.push(&gemini(json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"},
            {"functionCall": {"id": "fc2", "name": "get_time", "args": {"tz": "CET"}}}
        ]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9, "thoughtsTokenCount": 4, "totalTokenCount": 43}
        })));
        let end = t.finish();

        assert_eq!(
            names(&a),
            [
                "message_start",
                "content_block_start",
                "content_block_delta"
            ]
        );
        let a = events(&a);
        assert_eq!(
            a[1].1["content_block"],
            json!({"type": "thinking", "thinking": ""})
        );
        assert_eq!(
            a[2].1,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Need weather."}})
        );

        let b = events(&b);
        assert_eq!(
            b,
            vec![
                (
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0})
                ),
                (
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
                ),
                (
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "On it."}})
                ),
            ]
        );

        let c = events(&c);
        assert_eq!(c.len(), 7);
        assert_eq!(c[0].1, json!({"type": "content_block_stop", "index": 1}));
        assert_eq!(c[1].0, "content_block_start");
        assert_eq!(c[1].1["index"], 2);
        let block = &c[1].1["content_block"];
        assert_eq!(block["type"], "tool_use");
        assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
        assert_eq!(block["name"], "get_weather");
        assert_eq!(block["input"], json!({}));
        assert_eq!(
            c[2].1,
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":\"Paris\"}"}})
        );
        assert_eq!(c[3].1, json!({"type": "content_block_stop", "index": 2}));
        assert_eq!(
            c[4].1,
            json!({"type": "content_block_start", "index": 3,
                   "content_block": {"type": "tool_use", "id": "fc2", "name": "get_time", "input": {}}})
        );
        assert_eq!(c[5].1["delta"]["partial_json"], "{\"tz\":\"CET\"}");
        assert_eq!(c[6].1, json!({"type": "content_block_stop", "index": 3}));

        let end = events(&end);
        assert_eq!(names(&t.finish()), Vec::<&str>::new());
        assert_eq!(end.len(), 2, "no open block left to close");
        assert_eq!(end[0].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            end[0].1["usage"],
            json!({"input_tokens": 30, "output_tokens": 13})
        );
        assert_eq!(end[1].0, "message_stop");
    }

    #[test]
    fn stream_signature_goes_to_open_thinking_block() {
        let mut t = StreamTranslator::new("m");
        t.push(&gemini(
            json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}]}}]}),
        ));
        let b = events(
            &t.push(&gemini(json!({"candidates": [{"content": {"parts": [
                {"functionCall": {"id": "c1", "name": "f", "args": {}}, "thoughtSignature": "SIG"}
            ]}}]}))),
        );
        assert_eq!(
            b[0].1,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "grantpool:SIG"}})
        );
        assert_eq!(b[1].1, json!({"type": "content_block_stop", "index": 0}));
        assert_eq!(b[2].1["content_block"]["type"], "tool_use");
        assert_eq!(b[2].1["index"], 1);
        // A signature on a thought part itself is sent right away, once.
        let mut t = StreamTranslator::new("m");
        let a = events(
            &t.push(&gemini(json!({"candidates": [{"content": {"parts": [
                {"text": "x", "thought": true, "thoughtSignature": "S0"},
                {"text": "answer", "thoughtSignature": "S1"}
            ]}}]}))),
        );
        let sigs: Vec<_> = a
            .iter()
            .filter(|(_, d)| d["delta"]["type"] == "signature_delta")
            .collect();
        assert_eq!(sigs.len(), 1);
        assert_eq!(sigs[0].1["delta"]["signature"], "grantpool:S0");
        // Thoughts after a signed block go to a new thinking block.
        let mut t = StreamTranslator::new("m");
        let a = events(
            &t.push(&gemini(json!({"candidates": [{"content": {"parts": [
                {"text": "one", "thought": true, "thoughtSignature": "S0"},
                {"text": "two", "thought": true}
            ]}}]}))),
        );
        let kinds: Vec<_> = a
            .iter()
            .map(|(n, d)| format!("{n}:{}", d["index"]))
            .collect();
        assert_eq!(
            kinds,
            [
                "message_start:null",
                "content_block_start:0",
                "content_block_delta:0",
                "content_block_delta:0",
                "content_block_stop:0",
                "content_block_start:1",
                "content_block_delta:1"
            ]
        );
    }

    #[test]
    fn stream_error_mid_stream() {
        let mut t = StreamTranslator::new("m");
        let a = t.push(&gemini(
            json!({"candidates": [{"content": {"parts": [{"text": "partial"}]}}]}),
        ));
        assert_eq!(
            names(&a),
            [
                "message_start",
                "content_block_start",
                "content_block_delta"
            ]
        );
        let err = t.error("upstream connection reset");
        assert_eq!(
            events(&err),
            vec![(
                "error",
                json!({"type": "error", "error": {"type": "api_error", "message": "upstream connection reset"}})
            )]
        );
        assert_eq!(
            &err[0].to_bytes()[..],
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream connection reset\"}}\n\n"
        );
        assert!(t.finish().is_empty());
        assert!(t.error("again").is_empty());
    }

    #[test]
    fn stream_empty_upstream_still_closes() {
        let mut t = StreamTranslator::new("m");
        assert_eq!(
            names(&t.finish()),
            ["message_start", "message_delta", "message_stop"]
        );
        let mut t = StreamTranslator::new("m");
        assert!(!t.saw_finish());
        let a = t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]})));
        assert!(t.saw_finish());
        assert_eq!(a.len(), 3);
        let end = events(&t.finish());
        assert_eq!(end[0].0, "content_block_stop");
        assert_eq!(end[1].1["delta"]["stop_reason"], "max_tokens");
    }

    #[test]
    fn the_conversation_of_claude_codes_user_id() {
        let hint = |user_id: Value| {
            parse(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": {"user_id": user_id}})).session_hint
        };
        // Claude Code 2.1.x: a JSON string; only its session is kept.
        let json_form = r#"{"device_id":"170ceb","account_uuid":"acc-1","session_id":"b36d550a-2a63-4960-adb2-4dfde5704da1"}"#;
        assert_eq!(hint(json!(json_form)).as_deref(), Some("b36d550a-2a63-4960-adb2-4dfde5704da1"));
        // Older Claude Code: `user_<hash>_account_<uuid>_session_<uuid>`.
        let old_form = "user_9f2c_account_0d5e8c1a-1111-4000-8000-000000000001_session_7e1d2c3b-0000-4000-8000-00000000000a";
        assert_eq!(hint(json!(old_form)).as_deref(), Some("7e1d2c3b-0000-4000-8000-00000000000a"));
        assert_eq!(hint(json!("user_9f2c_account__session_s-2")).as_deref(), Some("s-2"));
        // Any other user id is the client's own, kept whole.
        assert_eq!(hint(json!("tenant-7")).as_deref(), Some("tenant-7"));
        assert_eq!(hint(json!(r#"{"device_id":"d"}"#)).as_deref(), Some(r#"{"device_id":"d"}"#));
        assert_eq!(hint(json!("")), None);
    }

    /// A grounded Gemini answer as Google sends it (the text in two
    /// pieces for the stream; the metadata with the last).
    fn grounded_chunks() -> Vec<GenerateContentResponse> {
        vec![
            gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Bern is the capital. "}]}}]})),
            gemini(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "It has 140k people."}]},
                "finishReason": "STOP",
                "groundingMetadata": {
                    "webSearchQueries": ["capital of switzerland", "bern population"],
                    "searchEntryPoint": {"renderedContent": "<div></div>"},
                    "groundingChunks": [
                        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AAA", "title": "example.org"}},
                        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/BBB", "title": "docs.example.org"}}
                    ],
                    "groundingSupports": [
                        {"segment": {"endIndex": 20, "text": "Bern is the capital."}, "groundingChunkIndices": [0]},
                        {"segment": {"startIndex": 21, "endIndex": 40, "text": "It has 140k people."}, "groundingChunkIndices": [1, 0]}
                    ]
                }}],
                "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9}})),
        ]
    }

    #[test]
    fn web_search_only_answers_with_search_blocks() {
        let (req, dropped) = parse_request_with_search(
            json!({"model": "m", "messages": [{"role": "user", "content": "Perform a web search for the query: capital"}],
                   "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert!(!dropped);
        assert!(super::super::search::uses_google_search(&req.gemini));
        let (_, dropped) = parse_request_with_search(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                   "tools": [{"type": "web_search_20250305", "name": "web_search"},
                             {"name": "now", "input_schema": {"type": "object"}}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert!(dropped, "the search tool is left out next to functions, and said so");

        // Whole: the stream's two chunks as one answer.
        let mut whole = grounded_chunks().pop().unwrap();
        whole.candidates[0].content.as_mut().unwrap().parts.insert(0, Part::text("Bern is the capital. "));
        let out = serde_json::to_value(response_with_search(&whole, "claude-x", true)).unwrap();
        let c = out["content"].as_array().unwrap();
        assert_eq!(c[0]["type"], "server_tool_use");
        let id = c[0]["id"].as_str().unwrap();
        assert!(id.starts_with("srvtoolu_"));
        assert_eq!((&c[0]["name"], &c[0]["input"]), (&json!("web_search"), &json!({"query": "capital of switzerland"})));
        assert_eq!(c[1]["type"], "web_search_tool_result");
        assert_eq!(c[1]["tool_use_id"], id);
        let results = c[1]["content"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["type"], "web_search_result");
        assert_eq!(results[0]["url"], "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AAA");
        assert_eq!(results[1]["title"], "docs.example.org");
        assert!(results[0]["encrypted_content"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(results[0]["page_age"], Value::Null);
        // The text cut at the cited spans.
        let texts: Vec<&str> = c[2..].iter().map(|b| b["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["Bern is the capital.", " ", "It has 140k people."]);
        assert_eq!(c[2]["citations"][0]["type"], "web_search_result_location");
        assert_eq!(c[2]["citations"][0]["title"], "example.org");
        assert_eq!(c[2]["citations"][0]["cited_text"], "Bern is the capital.");
        assert!(c[3].get("citations").is_none());
        assert_eq!(c[4]["citations"].as_array().unwrap().len(), 2);
        assert_eq!(out["usage"]["server_tool_use"], json!({"web_search_requests": 2}));
        assert_eq!(out["stop_reason"], "end_turn");

        // Without the search flag, or without grounding: plain text as before.
        let plain = serde_json::to_value(response_from_gemini(&whole, "m")).unwrap();
        assert_eq!(plain["content"].as_array().unwrap().len(), 1);
        assert!(plain["usage"].get("server_tool_use").is_none());
        let ungrounded = gemini(json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}));
        let out = serde_json::to_value(response_with_search(&ungrounded, "m", true)).unwrap();
        assert_eq!(out["content"], json!([{"type": "text", "text": "hi"}]));
    }

    #[test]
    fn web_search_stream_event_order() {
        let mut t = StreamTranslator::with_search("claude-x", true);
        let mut evs = Vec::new();
        let chunks = grounded_chunks();
        let first = t.push(&chunks[0]);
        assert_eq!(names(&first), ["message_start"], "the text waits for the sources");
        evs.extend(first);
        evs.extend(t.push(&chunks[1]));
        evs.extend(t.finish());
        let evs = events(&evs);
        let shape: Vec<String> = evs
            .iter()
            .map(|(name, d)| {
                let kind = d["content_block"]["type"].as_str().or(d["delta"]["type"].as_str()).unwrap_or("");
                format!("{name}:{kind}")
            })
            .collect();
        assert_eq!(
            shape,
            [
                "message_start:",
                "content_block_start:server_tool_use",
                "content_block_delta:input_json_delta",
                "content_block_stop:",
                "content_block_start:web_search_tool_result",
                "content_block_stop:",
                "content_block_start:text",
                // The text held back goes in one delta.
                "content_block_delta:text_delta",
                "content_block_delta:citations_delta",
                "content_block_delta:citations_delta",
                "content_block_delta:citations_delta",
                "content_block_stop:",
                "message_delta:",
                "message_stop:",
            ]
        );
        let id = evs[1].1["content_block"]["id"].as_str().unwrap();
        assert!(id.starts_with("srvtoolu_"));
        assert_eq!(evs[1].1["content_block"]["input"], json!({}));
        let input: Value = serde_json::from_str(evs[2].1["delta"]["partial_json"].as_str().unwrap()).unwrap();
        assert_eq!(input, json!({"query": "capital of switzerland"}));
        assert_eq!(evs[4].1["content_block"]["tool_use_id"], id);
        assert_eq!(evs[4].1["content_block"]["content"][0]["title"], "example.org");
        assert_eq!((evs[4].1["index"].as_u64(), evs[6].1["index"].as_u64()), (Some(1), Some(2)));
        assert_eq!(evs[7].1["delta"]["text"], "Bern is the capital. It has 140k people.");
        let citation = &evs[8].1["delta"]["citation"];
        assert_eq!(citation["type"], "web_search_result_location");
        assert_eq!(citation["cited_text"], "Bern is the capital.");
        assert_eq!(evs[12].1["usage"]["server_tool_use"], json!({"web_search_requests": 2}));

        // A grounded stream without sources still ends with its text.
        let mut t = StreamTranslator::with_search("m", true);
        let mut evs = t.push(&gemini(json!({"candidates": [{"content": {"parts": [{"text": "no search"}]}, "finishReason": "STOP"}]})));
        evs.extend(t.finish());
        assert_eq!(
            names(&evs),
            ["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
        );
    }
}
