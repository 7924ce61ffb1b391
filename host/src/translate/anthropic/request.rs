//! The client's Messages request → a Gemini request.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::diagnose::{blame, read, Probe};
use super::super::gemini::{Blob, GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig};
use super::super::schema::function_declaration;
use super::super::search::google_search_tool;
use super::super::shared::{
    call_part, function_tools, gemini_request, non_empty, required, result_part, At, ClientRequest, ContentsBuilder,
    TextOr, TranslateError,
};
use super::super::signatures::sign_first_call;
use super::signature::unwrap_signature;

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
    translate(read::<MessagesRequest>(body, diagnose)?)
}

/// Slow path, only after typed parsing failed: find the field to blame.
fn diagnose(body: &[u8], err: serde_json::Error) -> TranslateError {
    let source = Probe::leaf(|v| Source::deserialize(v).err());
    let inner_block = Probe { check: |v| Block::deserialize(v).err(), children: &[("source", &source)] };
    let block =
        Probe { check: |v| Block::deserialize(v).err(), children: &[("source", &source), ("content", &inner_block)] };
    let message = Probe { check: |v| Message::deserialize(v).err(), children: &[("content", &block)] };
    let tool = Probe::leaf(|v| ToolIn::deserialize(v).err());
    let choice = Probe::leaf(|v| ToolChoiceIn::deserialize(v).err());
    let metadata = Probe::leaf(|v| Metadata::deserialize(v).err());
    let thinking = Probe::leaf(|v| ThinkingIn::deserialize(v).err());
    let root = Probe {
        check: |v| MessagesRequest::deserialize(v).err(),
        children: &[
            ("messages", &message),
            ("system", &block),
            ("tools", &tool),
            ("tool_choice", &choice),
            ("metadata", &metadata),
            ("thinking", &thinking),
        ],
    };
    blame(body, err, &root)
}

fn translate(req: MessagesRequest<'_>) -> Result<(ClientRequest, bool), TranslateError> {
    let model = non_empty(req.model, "model")?;
    let messages = required(req.messages, "messages")?;

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
        let role = required(msg.role, path.key("role"))?;
        let content = required(msg.content, path.key("content"))?;
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
            let text = required(block.text, path.key("text"))?;
            if !text.is_empty() {
                contents.push("user", Part::text(text));
            }
        }
        Some("image") => contents.push("user", media_part(block.source, path, false)?),
        Some("document") => contents.push("user", media_part(block.source, path, true)?),
        Some("tool_result") => {
            let id = required(block.tool_use_id, path.key("tool_use_id"))?;
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
            contents.push("user", result_part(Some(id.into_owned()), name, text, block.is_error == Some(true)));
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
    let source = required(source, path.key("source"))?;
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
    let id = non_empty(block.id, path.key("id"))?;
    let name = non_empty(block.name, path.key("name"))?;
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
    Ok(call_part(Some(id), name, args))
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
                let name = non_empty(tool.name, path.key("name"))?;
                let schema = required(tool.input_schema, path.key("input_schema"))?;
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
        (vec![google_search_tool()], false)
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
