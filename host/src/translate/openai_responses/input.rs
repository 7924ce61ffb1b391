//! The request's input items → Gemini's conversation turns: messages and
//! their content parts, replayed calls and tool results.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::diagnose::clean_reason;
use super::super::gemini::{Blob, Part};
use super::super::shared::{
    self, blob_from_data_url, for_each_text, non_empty, object_arguments, required, result_part, At, ContentsBuilder,
    TextOr, TranslateError,
};
use super::super::signatures::sign_first_call;
use super::request_body::{ContentPart, Item, Role, UrlField, NO_STATE};
use super::signatures::Signatures;
use super::tools::{ToolMap, CUSTOM_INPUT};

/// The conversation being built. A model turn is gathered apart until the
/// next user part, so that its first call can be signed
/// ([`sign_first_call`]) once the whole turn is known.
#[derive(Default)]
pub(super) struct Turns {
    contents: ContentsBuilder,
    model: Vec<Part>,
}

impl Turns {
    fn model(&mut self, part: Part) {
        self.model.push(part);
    }

    pub(super) fn user(&mut self, part: Part) {
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

    pub(super) fn finish(mut self) -> ContentsBuilder {
        self.flush();
        self.contents
    }
}

/// Translates one input item into system parts or conversation turns.
pub(super) fn input_item(
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
            let role = required(item.role, path.key("role"))?;
            let content = required(item.content, path.key("content"))?;
            match role {
                Role::System | Role::Developer => {
                    for_each_text(content, path, part_text, |text| system.push(Part::text(text)))?;
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
                    for_each_text(content, path, part_text, |text| turns.model(Part::text(text)))?;
                    let signature = item.id.as_deref().and_then(|id| signatures.messages.get(id));
                    if let (Some(signature), Some(last)) = (signature, turns.model[first..].last_mut()) {
                        last.thought_signature.get_or_insert_with(|| signature.clone());
                    }
                }
            }
        }
        "function_call" => {
            let call_id = required_id(item.call_id, path)?;
            let name = non_empty(item.name, path.key("name"))?;
            let args = call_arguments(item.arguments, &path.key("arguments"))?;
            let name = tools.gemini_name(item.namespace.as_deref(), &name, false);
            turns.model(call_part(call_id, name, args, signatures));
        }
        "custom_tool_call" => {
            let call_id = required_id(item.call_id, path)?;
            let name = non_empty(item.name, path.key("name"))?;
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
            turns.user(result_part(Some(call_id), name, text, false));
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
    non_empty(id, path.key("call_id"))
}

/// A replayed call, with the signature Gemini gave it when it came from here.
fn call_part(call_id: String, name: String, args: Value, signatures: &Signatures) -> Part {
    let thought_signature = signatures.calls.get(&call_id).cloned();
    Part { thought_signature, ..shared::call_part(Some(call_id), name, args) }
}

/// A call's `arguments`: JSON text of an object (empty means none).
fn call_arguments(arguments: Option<Value>, path: &At<'_>) -> Result<Value, TranslateError> {
    match &arguments {
        None | Some(Value::Null) => object_arguments(None, path),
        Some(Value::String(text)) => object_arguments(Some(text), path),
        Some(_) => Err(TranslateError::field(path, "must be a JSON object encoded as a string")),
    }
}

/// The text of a part of a text-only `content` (system, developer and
/// assistant messages, for [`for_each_text`]; a `refusal` counts as text),
/// else its type.
pub(super) fn part_text(part: ContentPart<'_>) -> Result<Option<String>, Option<String>> {
    match part.kind.as_deref() {
        Some("input_text" | "output_text" | "text") | None if part.text.is_some() => Ok(part.text),
        Some("refusal") if part.refusal.is_some() => Ok(part.refusal),
        kind => Err(kind.map(str::to_owned)),
    }
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
                    .map_err(|e| TranslateError::field(path.index(j), clean_reason(e.to_string())))?;
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
