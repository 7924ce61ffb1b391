//! What the client-protocol translators (OpenAI chat, Anthropic) share: the
//! translated request, the error that names the bad field, field paths,
//! content building, ids, and the slow-path diagnosis of a body serde
//! refused.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::gemini::{
    Blob, Content, FunctionCall, FunctionDeclaration, GenerateContentRequest, GenerationConfig, Part, Tool, ToolConfig,
};

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

/// Dummy `thoughtSignature` that Google documents as telling Gemini to skip
/// signature validation. Put on replayed function calls the client could not
/// bring back a real signature for (OpenAI clients never can), since Gemini 3
/// refuses a history whose function calls lack one; older models ignore it.
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

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

/// An OpenAI output format (`text`, `json_object`, or `json_schema` with
/// its schema) as Gemini's JSON mode; `false` for a kind it is not.
pub(super) fn json_output(config: &mut GenerationConfig, kind: Option<&str>, schema: Option<Value>) -> bool {
    match kind {
        Some("text") => {}
        Some("json_object") => config.response_mime_type = Some("application/json".to_owned()),
        Some("json_schema") => {
            config.response_mime_type = Some("application/json".to_owned());
            config.response_schema = schema.map(super::schema::sanitize_schema);
        }
        _ => return false,
    }
    true
}

/// The client's functions as Gemini tools (none when there are none).
pub(super) fn function_tools(decls: Vec<FunctionDeclaration>) -> Vec<Tool> {
    if decls.is_empty() {
        Vec::new()
    } else {
        vec![Tool { function_declarations: Some(decls), extra: Map::new() }]
    }
}

/// Gives the first function call of a replayed model turn a signature when it
/// has none (see [`SKIP_THOUGHT_SIGNATURE`]).
pub(super) fn sign_first_call(parts: &mut [Part]) {
    if let Some(first) = parts.iter_mut().find(|p| p.function_call.is_some()) {
        if first.thought_signature.is_none() {
            first.thought_signature = Some(SKIP_THOUGHT_SIGNATURE.to_owned());
        }
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

/// After typed parsing failed, finds the field to blame: re-reads the body as
/// a [`Value`] and tries each key of an object alone with `check`, so the
/// message can name it. Only runs on the error path.
pub(super) fn first_bad_key(
    obj: &Map<String, Value>,
    check: impl Fn(&Value) -> Option<serde_json::Error>,
) -> Option<(&str, &Value, String)> {
    obj.iter().find_map(|(k, v)| {
        let mut one = Map::with_capacity(1);
        one.insert(k.clone(), v.clone());
        check(&Value::Object(one)).map(|e| (k.as_str(), v, e.to_string()))
    })
}

/// Turns a serde error on the whole body into a [`TranslateError`] when
/// nothing more precise was found.
fn body_error(
    body: &[u8],
    err: serde_json::Error,
) -> Result<Map<String, Value>, TranslateError> {
    if err.is_syntax() || err.is_eof() {
        return Err(TranslateError::InvalidJson(err.to_string()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(TranslateError::field("(body)", "must be a JSON object")),
        Err(e) => Err(TranslateError::InvalidJson(e.to_string())),
    }
}

/// The error for a body serde refused: the deepest field `root` blames,
/// else serde's own message. Only runs on the error path.
pub(super) fn blame(body: &[u8], err: serde_json::Error, root: &Probe<'_>) -> TranslateError {
    let fallback = err.to_string();
    let obj = match body_error(body, err) {
        Ok(obj) => obj,
        Err(e) => return e,
    };
    match root.locate("", &Value::Object(obj)) {
        Some((field, reason)) => TranslateError::field(field, reason),
        None => TranslateError::field("(body)", clean_reason(fallback)),
    }
}

/// A field the request must have.
pub(super) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, TranslateError> {
    value.ok_or_else(|| TranslateError::field(field, "is required"))
}

/// Drills into `value` (the field at `path`) to name the deepest failing field.
/// `check` deserializes a single-key object as the element type; `children`
/// names the keys holding arrays whose elements are checked with their own
/// rules (e.g. `content` inside a message).
pub(super) struct Probe<'p> {
    pub(super) check: &'p dyn Fn(&Value) -> Option<serde_json::Error>,
    pub(super) children: &'p [(&'static str, &'p Probe<'p>)],
}

impl Probe<'_> {
    /// Finds `(path, reason)` for the first element/key that fails.
    pub(super) fn locate(&self, path: &str, value: &Value) -> Option<(String, String)> {
        // Only arrays and objects are drilled into; a scalar in the wrong
        // place is reported by the parent with serde's "expected …" wording.
        let elems: Vec<(String, &Value)> = match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
            obj @ Value::Object(_) => vec![(path.to_owned(), obj)],
            _ => return None,
        };
        for (elem_path, elem) in elems {
            let Value::Object(obj) = elem else {
                if (self.check)(elem).is_some() {
                    return Some((elem_path, "must be an object".to_owned()));
                }
                continue;
            };
            if let Some((key, v, reason)) = first_bad_key(obj, self.check) {
                let key_path = if elem_path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{elem_path}.{key}")
                };
                if let Some((_, child)) = self.children.iter().find(|(k, _)| *k == key) {
                    if let Some(found) = child.locate(&key_path, v) {
                        return Some(found);
                    }
                }
                return Some((key_path, clean_reason(reason)));
            }
        }
        None
    }
}

/// serde's message, minus the position (meaningless once the field is named)
/// and with Rust type names said in JSON words.
pub(super) fn clean_reason(reason: String) -> String {
    let reason = match reason.find(" at line ") {
        Some(i) => &reason[..i],
        None => &reason[..],
    };
    let mut out = format!("is invalid: {reason}");
    for (rust, json) in [
        ("expected f64", "expected a number"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected i64", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
    ] {
        if let Some(i) = out.find(rust) {
            out.replace_range(i..i + rust.len(), json);
        }
    }
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected an object");
    }
    out
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
