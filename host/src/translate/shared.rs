//! What the three client-protocol translators ([`anthropic`](super::anthropic),
//! [`openai_chat`](super::openai_chat), [`openai_responses`](super::openai_responses))
//! share: the translated request, the error that names the bad field, field
//! paths and required fields, content building (turns, text, inline data,
//! calls and their results), and ids. The rest they share has rooms of its
//! own: the slow-path diagnosis of a body serde refused
//! ([`diagnose`](super::diagnose)), thought signatures
//! ([`signatures`](super::signatures)), how an answer ended
//! ([`outcome`](super::outcome)), the OpenAI protocols' settings
//! ([`openai_settings`](super::openai_settings)).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::gemini::{
    Blob, Content, FunctionCall, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerateContentResponse, GenerationConfig, Part, Tool, ToolConfig,
};

/// Also named by this path outside `translate` (the upstream client's
/// signature cache and envelope).
pub use super::signatures::SKIP_THOUGHT_SIGNATURE;

/// A client request (OpenAI or Anthropic shape) translated to Gemini.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    /// The model the client asked for, unmapped.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The conversation id the body carries, if any: OpenAI
    /// `prompt_cache_key`, `user`, `safety_identifier`; the session part of
    /// Anthropic `metadata.user_id`. Ranked against the headers by the route.
    pub session_hint: Option<String>,
    /// The translated request.
    pub gemini: GenerateContentRequest,
}

/// Why a client request could not be translated. Always the client's fault
/// (HTTP 400); the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A field is missing, of the wrong type, or has a value this proxy
    /// cannot translate.
    #[error("invalid request: `{field}` {reason}")]
    InvalidField {
        /// Path of the field, e.g. `messages[2].content[0].image_url.url`.
        field: String,
        /// What is wrong, e.g. `is required`.
        reason: String,
    },
}

impl TranslateError {
    /// The HTTP status to answer with (always 400).
    pub fn status(&self) -> u16 {
        400
    }

    pub(super) fn field(field: impl fmt::Display, reason: impl Into<String>) -> Self {
        TranslateError::InvalidField {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// A request field's path (`messages[2].content[0]`), kept on the stack and
/// formatted only when an error needs it, so the success path allocates
/// nothing for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct At<'a> {
    parent: Option<&'a At<'a>>,
    key: &'static str,
    index: Option<usize>,
}

impl<'a> At<'a> {
    pub(super) const fn root(key: &'static str) -> Self {
        At {
            parent: None,
            key,
            index: None,
        }
    }

    /// `self.key`.
    pub(super) fn key(&'a self, key: &'static str) -> At<'a> {
        At {
            parent: Some(self),
            key,
            index: None,
        }
    }

    /// `self[i]`.
    pub(super) fn index(self, i: usize) -> Self {
        At {
            index: Some(i),
            ..self
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}.")?;
        }
        f.write_str(self.key)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

/// A field the request must have.
pub(super) fn required<T>(value: Option<T>, field: impl fmt::Display) -> Result<T, TranslateError> {
    value.ok_or_else(|| TranslateError::field(field, "is required"))
}

/// A string field the request must have, not empty (a name, an id).
pub(super) fn non_empty(value: Option<String>, field: impl fmt::Display) -> Result<String, TranslateError> {
    required(value.filter(|v| !v.is_empty()), field)
}

/// Builds `contents`, merging consecutive parts of the same role into one turn
/// (Gemini wants the results of parallel calls together, and alternating roles).
#[derive(Default)]
pub(super) struct ContentsBuilder {
    contents: Vec<Content>,
}

impl ContentsBuilder {
    pub(super) fn push(&mut self, role: &str, part: Part) {
        match self.contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.push(part),
            _ => self.contents.push(Content {
                role: Some(role.to_owned()),
                parts: vec![part],
                extra: Map::new(),
            }),
        }
    }

    pub(super) fn extend(&mut self, role: &str, parts: impl IntoIterator<Item = Part>) {
        for part in parts {
            self.push(role, part);
        }
    }

    /// The name of the earlier function call with this id (searching back
    /// from the newest turn: a result usually follows its call closely).
    pub(super) fn call_name(&self, id: &str) -> Option<&str> {
        self.contents
            .iter()
            .rev()
            .flat_map(|c| c.parts.iter().rev())
            .filter_map(|p| p.function_call.as_ref())
            .find(|call| call.id.as_deref() == Some(id))
            .map(|call| call.name.as_str())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.contents.is_empty()
    }

    pub(super) fn finish(self) -> Vec<Content> {
        self.contents
    }
}

/// Deepest nesting a client's JSON may have (the typed routes stop at
/// serde's 128; Google's own JSON parser stops at 100).
pub const MAX_JSON_DEPTH: usize = 100;

/// Whether `body` nests arrays and objects deeper than `max` (strings are
/// skipped; one pass over the bytes, no parse). A body that is not JSON
/// is left to the parser to refuse.
pub fn nests_deeper_than(body: &[u8], max: usize) -> bool {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < body.len() {
        match body[i] {
            b'"' => {
                // Skip to the closing quote, past escapes.
                i += 1;
                while i < body.len() {
                    match memchr::memchr2(b'"', b'\\', &body[i..]) {
                        Some(j) if body[i + j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j;
                            break;
                        }
                        None => return false,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

/// The Gemini request a translator built: its turns, system parts (left
/// out when empty), tools and settings (left out when empty).
pub(super) fn gemini_request(
    contents: ContentsBuilder,
    system: Vec<Part>,
    tools: Vec<Tool>,
    tool_config: Option<ToolConfig>,
    config: GenerationConfig,
) -> GenerateContentRequest {
    GenerateContentRequest {
        contents: contents.finish(),
        system_instruction: (!system.is_empty()).then(|| Content { role: None, parts: system, extra: Map::new() }),
        tools,
        tool_config,
        generation_config: (!config.is_empty()).then_some(config),
        extra: Map::new(),
    }
}

/// The client's functions as Gemini tools (none when there are none).
pub(super) fn function_tools(decls: Vec<FunctionDeclaration>) -> Vec<Tool> {
    if decls.is_empty() {
        Vec::new()
    } else {
        vec![Tool { function_declarations: Some(decls), extra: Map::new() }]
    }
}

/// Parses a `data:<mime>;base64,<data>` URL in place into a Gemini blob,
/// without copying the (possibly large) payload into a new allocation.
pub(super) fn blob_from_data_url(mut url: String, field: &At<'_>) -> Result<Blob, TranslateError> {
    let bad = |why: &str| {
        TranslateError::field(
            field,
            format!("{why}; send inline data as `data:<mime type>;base64,<data>`"),
        )
    };
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(bad(
            "must be a data: URL (this proxy does not fetch remote URLs)",
        ));
    };
    let Some(comma) = rest.find(',') else {
        return Err(bad("is a data: URL without a comma"));
    };
    let header = &rest[..comma];
    let Some(mime) = header.strip_suffix(";base64") else {
        return Err(bad("is a data: URL that is not base64-encoded"));
    };
    let mime = mime.split(';').next().unwrap_or("");
    if mime.is_empty() {
        return Err(bad("is a data: URL without a MIME type"));
    }
    let mime_type = mime.to_owned();
    let prefix = "data:".len() + comma + 1;
    url.drain(..prefix);
    Ok(Blob {
        mime_type,
        data: url,
    })
}

/// A replayed function call as a Gemini part.
pub(super) fn call_part(id: Option<String>, name: String, args: Value) -> Part {
    Part {
        function_call: Some(FunctionCall { id, name, args: Some(args), extra: Map::new() }),
        ..Part::default()
    }
}

/// A tool result as a Gemini `functionResponse` part:
/// `{"content": text}`, plus `"is_error": true` for a failed call.
pub(super) fn result_part(id: Option<String>, name: String, content: String, is_error: bool) -> Part {
    let mut response = Map::with_capacity(1 + usize::from(is_error));
    response.insert("content".to_owned(), Value::String(content));
    if is_error {
        response.insert("is_error".to_owned(), Value::Bool(true));
    }
    Part {
        function_response: Some(FunctionResponse { id, name, response: Value::Object(response), extra: Map::new() }),
        ..Part::default()
    }
}

/// A replayed call's `arguments`, JSON text of an object (none or blank
/// means no arguments), as the object.
pub(super) fn object_arguments(text: Option<&str>, field: &At<'_>) -> Result<Value, TranslateError> {
    match text.map(str::trim) {
        None | Some("") => Ok(Value::Object(Map::new())),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(TranslateError::field(field, "must be a JSON object encoded as a string")),
            Err(e) => Err(TranslateError::field(field, format!("is not valid JSON: {e}"))),
        },
    }
}

/// A fresh id: `prefix` followed by 24 hex digits.
pub(super) fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    // From the thread's generator: `Uuid::new_v4` would make a getrandom
    // system call per answer.
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    id.push_str(&uuid.simple().encode_lower(&mut uuid::Uuid::encode_buffer())[..24]);
    id
}

/// A call's id: Gemini's when it gave one, else a fresh one with `prefix`.
pub(super) fn call_id<'a>(call: &'a FunctionCall, prefix: &str) -> Cow<'a, str> {
    match call.id.as_deref() {
        Some(id) if !id.is_empty() => Cow::Borrowed(id),
        _ => Cow::Owned(new_id(prefix)),
    }
}

/// An answer's id: `prefix` and Gemini's response id when it gave one, else
/// a fresh one.
pub(super) fn answer_id(resp: &GenerateContentResponse, prefix: &str) -> String {
    match resp.response_id.as_deref() {
        Some(id) if !id.is_empty() => format!("{prefix}{id}"),
        _ => new_id(prefix),
    }
}

/// Seconds since the Unix epoch (for OpenAI's `created`).
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Function-call arguments as the JSON text OpenAI and Anthropic stream.
pub(super) fn args_json(call: &FunctionCall) -> String {
    match &call.args {
        Some(args) if !args.is_null() => args.to_string(),
        _ => "{}".to_owned(),
    }
}

/// A field that is a string or an array of items (OpenAI message `content`,
/// Anthropic `system` and `tool_result.content`, OpenAI `stop`).
#[derive(Debug)]
pub(super) enum TextOr<'a, T> {
    Text(Cow<'a, str>),
    Items(Vec<T>),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for TextOr<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a, T>(PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for V<'a, T> {
            type Value = TextOr<'a, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(TextOr::Items(items))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// Calls `f` with each non-empty text of a text-only `content` (the OpenAI
/// protocols' system, developer and assistant messages). `text_of` gives a
/// part's text (`None` for none), or its type when it is not a text part.
pub(super) fn for_each_text<P>(
    content: TextOr<'_, P>,
    path: &At<'_>,
    text_of: impl Fn(P) -> Result<Option<String>, Option<String>>,
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
                match text_of(part) {
                    Ok(text) => {
                        if let Some(text) = text.filter(|t| !t.is_empty()) {
                            f(text)
                        }
                    }
                    Err(kind) => {
                        return Err(TranslateError::field(
                            path.key("content").index(j),
                            format!("must be a text part here (got type `{}`)", kind.as_deref().unwrap_or("(missing)")),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        let b =
            blob_from_data_url("data:image/png;base64,iVBORw0K".into(), &At::root("f")).unwrap();
        assert_eq!(
            (b.mime_type.as_str(), b.data.as_str()),
            ("image/png", "iVBORw0K")
        );
        let b = blob_from_data_url(
            "data:image/jpeg;name=a.jpg;base64,/9j/".into(),
            &At::root("f"),
        )
        .unwrap();
        assert_eq!(
            (b.mime_type.as_str(), b.data.as_str()),
            ("image/jpeg", "/9j/")
        );
        let root = At::root("messages").index(0);
        let content = root.key("content").index(1);
        let e = blob_from_data_url(
            "https://example.com/cat.png".into(),
            &content.key("image_url.url"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("messages[0].content[1].image_url.url"),
            "{e}"
        );
        assert!(e.to_string().contains("does not fetch remote URLs"), "{e}");
        assert!(blob_from_data_url("data:text/plain,hello".into(), &At::root("f")).is_err());
        assert!(blob_from_data_url("data:;base64,AAAA".into(), &At::root("f")).is_err());
    }

    #[test]
    fn contents_builder_merges_same_role() {
        let mut b = ContentsBuilder::default();
        b.push("user", Part::text("a"));
        b.push("user", Part::text("b"));
        b.push("model", Part::text("c"));
        let c = b.finish();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].parts.len(), 2);
        assert_eq!(c[1].role.as_deref(), Some("model"));
    }

    #[test]
    fn nesting_depth_is_measured_outside_strings() {
        assert!(!nests_deeper_than(br#"{"a":[{"b":"[[[[[[[["}]}"#, 3));
        assert!(nests_deeper_than(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!nests_deeper_than(br#"{"a":"\"[[[[","b":{}}"#, 2));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(nests_deeper_than(deep.as_bytes(), MAX_JSON_DEPTH));
        assert!(!nests_deeper_than(b"{\"unterminated", 1));
    }

    #[test]
    fn ids_have_prefix() {
        let id = new_id("call_");
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
        assert_ne!(new_id("x"), new_id("x"));
    }
}
