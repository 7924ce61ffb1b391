//! Gemini request/response types shared by the protocol translators.
//!
//! The Code Assist `v1internal` backend speaks the public Gemini
//! `generateContent` shapes inside an envelope (`{"model","project","request"}`
//! up, `{"response": …}` down). These types model the fields the translators
//! read or write, in Gemini's camelCase. Request-side structs keep the fields
//! they do not know in a flattened `extra` map, so a request passes through
//! unchanged. Response-only structs (`GenerateContentResponse`, `Candidate`,
//! `UsageMetadata`, `PromptFeedback`) do not: the translators build their own
//! answers from the fields they read, and a catch-all map makes serde buffer
//! every field of every answer first (that parse is on every translated
//! request).
//!
//! Also here: what `openai` and `anthropic` share — [`ClientRequest`],
//! [`TranslateError`], [`SseEvent`], the tool-schema cleaner and small helpers.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

/// A Gemini `generateContent` request body (the `request` of a `v1internal` call).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    /// The conversation, oldest first; roles are `user` and `model`.
    #[serde(default)]
    pub contents: Vec<Content>,
    /// The system prompt (its `role` is left unset).
    #[serde(
        default,
        alias = "system_instruction",
        skip_serializing_if = "Option::is_none"
    )]
    pub system_instruction: Option<Content>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// How the model must use the tools.
    #[serde(
        default,
        alias = "tool_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_config: Option<ToolConfig>,
    /// Sampling and output settings.
    #[serde(
        default,
        alias = "generation_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_config: Option<GenerationConfig>,
    /// Any other field (`safetySettings`, `cachedContent`, …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One turn of a conversation, or a system instruction.
///
/// `Content` and [`Part`] read themselves, field by field, keeping unknown
/// fields in `extra` as `flatten` would: a derived `Deserialize` with a
/// `flatten`ed map makes serde buffer every field first, and these two are in
/// every upstream answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// `user` or `model`; absent on system instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The turn's parts, in order.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One piece of a turn. Gemini treats the data fields as a oneof; exactly one
/// of `text`, `inline_data`, `function_call`, `function_response` (or an
/// unknown one in `extra`, e.g. `fileData`, `executableCode`) is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text, an answer or (with `thought`) a thought summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `true` marks a thought summary: reasoning, not the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque signature of the model's reasoning; must be sent back unchanged
    /// with the part it came on (Gemini 3 refuses function calls without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    /// Inline bytes (an image, audio, a PDF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob>,
    /// A call the model asks the client to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    /// The result of a call, sent back by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A map key, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A struct that reads itself from a JSON object field by field: the
/// fields it knows into place, every other one verbatim into `extra` (what
/// `#[serde(flatten)]` does, without buffering the object first).
trait ReadFields: Default {
    /// For the error message: "expected …".
    const WHAT: &'static str;
    /// Read the value of `key` if the struct knows it; `false` leaves the
    /// value unread (it goes to `extra`).
    fn read_known<'de, A: de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
    /// The map of unknown fields.
    fn extra(&mut self) -> &mut Map<String, Value>;
}

struct FieldsVisitor<T>(PhantomData<T>);

impl<'de, T: ReadFields> Visitor<'de> for FieldsVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::WHAT)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut out = T::default();
        while let Some(Key(key)) = map.next_key()? {
            if !out.read_known(&key, &mut map)? {
                let value: Value = map.next_value()?;
                out.extra().insert(key.into_owned(), value);
            }
        }
        Ok(out)
    }
}

impl ReadFields for Content {
    const WHAT: &'static str = "a Gemini content object";

    fn read_known<'de, A: de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "role" => self.role = map.next_value()?,
            "parts" => self.parts = map.next_value::<Option<Vec<Part>>>()?.unwrap_or_default(),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn extra(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl ReadFields for Part {
    const WHAT: &'static str = "a Gemini part object";

    fn read_known<'de, A: de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "text" => self.text = map.next_value()?,
            "thought" => self.thought = map.next_value()?,
            "thoughtSignature" => self.thought_signature = map.next_value()?,
            "inlineData" => self.inline_data = map.next_value()?,
            "functionCall" => self.function_call = map.next_value()?,
            "functionResponse" => self.function_response = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn extra(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor(PhantomData))
    }
}

impl Part {
    /// A plain text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part {
            text: Some(text.into()),
            ..Part::default()
        }
    }

    /// Whether this part is a thought summary (never shown as answer text).
    pub fn is_thought(&self) -> bool {
        self.thought == Some(true)
    }
}

/// Base64 bytes with their MIME type (`inlineData`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// e.g. `image/png`.
    pub mime_type: String,
    /// Standard base64, no `data:` prefix.
    pub data: String,
}

/// A function call made by the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCall {
    /// Call id; set by some backends, and by us from the client's tool-call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The declared function's name.
    pub name: String,
    /// Arguments, a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A function's result, sent back to the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionResponse {
    /// The id of the call this answers, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function's name (Gemini matches results to calls by name).
    pub name: String,
    /// The result, a JSON object; the translators use `{"content": …}`.
    #[serde(default)]
    pub response: Value,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `tools`: function declarations, or a built-in tool kept in
/// `extra` (`googleSearch`, `codeExecution`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_declarations: Option<Vec<FunctionDeclaration>>,
    /// Unknown fields (built-in tools), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A function the model may call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    /// Name, `[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}`.
    pub name: String,
    /// What the function does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The arguments' schema, in Gemini's OpenAPI subset (see [`sanitize_schema`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `toolConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// How functions may be called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_calling_config: Option<FunctionCallingConfig>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `toolConfig.functionCallingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// `AUTO`, `ANY` (must call one) or `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// With `ANY`: the functions allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_function_names: Option<Vec<String>>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ToolConfig {
    /// A config with just a calling mode and, optionally, one allowed function.
    pub fn mode(mode: &str, only: Option<String>) -> Self {
        ToolConfig {
            function_calling_config: Some(FunctionCallingConfig {
                mode: Some(mode.to_owned()),
                allowed_function_names: only.map(|name| vec![name]),
                extra: Map::new(),
            }),
            extra: Map::new(),
        }
    }
}

/// `generationConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<f64>,
    /// Number of candidates (the translators only ever ask for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Up to 5 strings that end the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// `application/json` for JSON mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<String>,
    /// Output schema for JSON mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    /// Thinking budget and whether thought summaries are returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl GenerationConfig {
    /// Whether no field is set (so the whole object can be left out).
    pub fn is_empty(&self) -> bool {
        *self == GenerationConfig::default()
    }
}

/// `generationConfig.thinkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    /// Token budget for thinking (`0` off, `-1` dynamic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i64>,
    /// Return thought summaries as `thought: true` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
    /// Unknown fields (`thinkingLevel`, …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------

/// A Gemini `generateContent` response, or one chunk of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// Candidates; the translators read only the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
    /// Token counts (in a stream: cumulative, usually on every chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Upstream response id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Set when the prompt itself was blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
}

impl GenerateContentResponse {
    /// The parts of the first candidate (empty when there is none).
    pub fn parts(&self) -> &[Part] {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map_or(&[], |c| c.parts.as_slice())
    }

    /// The first candidate's `finishReason`.
    pub fn finish_reason(&self) -> Option<&str> {
        self.candidates.first()?.finish_reason.as_deref()
    }

    /// `promptFeedback.blockReason`, when the prompt was blocked.
    pub fn block_reason(&self) -> Option<&str> {
        self.prompt_feedback.as_ref()?.block_reason.as_deref()
    }
}

/// One candidate answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The answer (absent when blocked before any output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, … (on the last chunk of a stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Candidate index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// `usageMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Prompt tokens, cached ones included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_count: Option<u64>,
    /// Answer tokens, thoughts excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_token_count: Option<u64>,
    /// Thinking tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
    /// Prompt tokens served from cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    /// Total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Prompt tokens (cached ones included).
    pub fn prompt(&self) -> u64 {
        self.prompt_token_count.unwrap_or(0)
    }

    /// Output tokens as OpenAI and Anthropic count them: answer plus thinking.
    pub fn output(&self) -> u64 {
        self.candidates_token_count.unwrap_or(0) + self.thoughts_token_count.unwrap_or(0)
    }

    /// Prompt tokens read from cache.
    pub fn cached(&self) -> u64 {
        self.cached_content_token_count.unwrap_or(0)
    }

    /// Total tokens (Gemini's figure, else prompt + output).
    pub fn total(&self) -> u64 {
        self.total_token_count
            .unwrap_or_else(|| self.prompt() + self.output())
    }
}

/// `promptFeedback`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// Why the prompt was blocked (`SAFETY`, `OTHER`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
}

/// What a Gemini `finishReason` means to a client protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishKind {
    /// Natural end or a stop sequence (Gemini reports both as `STOP`).
    Stop,
    /// `maxOutputTokens` reached.
    MaxTokens,
    /// Stopped or blocked by a content filter (safety, recitation, …).
    Filtered,
    /// Anything else (`MALFORMED_FUNCTION_CALL`, `OTHER`, …): reported as a plain stop.
    Other,
}

impl FinishKind {
    /// Classifies a Gemini `finishReason` (or `promptFeedback.blockReason`).
    pub fn from_gemini(reason: &str) -> Self {
        match reason {
            "STOP" => FinishKind::Stop,
            "MAX_TOKENS" => FinishKind::MaxTokens,
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION" => FinishKind::Filtered,
            _ => FinishKind::Other,
        }
    }

    /// The kind of a whole response: a blocked prompt counts as filtered.
    pub fn of_response(resp: &GenerateContentResponse) -> Option<Self> {
        match resp.finish_reason() {
            Some(reason) => Some(FinishKind::from_gemini(reason)),
            None if resp.block_reason().is_some() => Some(FinishKind::Filtered),
            None => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Upstream envelope
// ---------------------------------------------------------------------------

/// The body of a `v1internal:generateContent` / `streamGenerateContent` call.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UpstreamRequest<'a> {
    /// The Gemini model name.
    pub model: &'a str,
    /// The account's Cloud project id.
    pub project: &'a str,
    /// The Gemini request.
    pub request: &'a GenerateContentRequest,
}

/// Parses an upstream answer (or one SSE event's data): the `v1internal`
/// envelope `{"response": …}`, or a bare Gemini response.
pub fn parse_upstream_response(body: &[u8]) -> Result<GenerateContentResponse, serde_json::Error> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        response: Option<GenerateContentResponse>,
    }
    match serde_json::from_slice::<Envelope>(body)? {
        Envelope {
            response: Some(resp),
        } => Ok(resp),
        Envelope { response: None } => serde_json::from_slice(body),
    }
}

/// Where the `response` value sits in a `v1internal` answer that starts
/// `{"response": {…}` (the usual shape; trailing keys such as `traceId`
/// follow). Found by matching brackets and skipping strings, without
/// parsing: the Gemini route passes the upstream's bytes on as they came,
/// and this scan costs a fraction of a parse. `None` for any other shape
/// (the caller then parses).
pub fn response_span(body: &[u8]) -> Option<std::ops::Range<usize>> {
    const KEY: &[u8] = b"\"response\"";
    let ws = |mut i: usize| {
        while body.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    (body.get(i) == Some(&b'{')).then_some(())?;
    i = ws(i + 1);
    body[i..].starts_with(KEY).then_some(())?;
    i = ws(i + KEY.len());
    (body.get(i) == Some(&b':')).then_some(())?;
    let start = ws(i + 1);
    (body.get(start) == Some(&b'{')).then_some(())?;
    let mut depth = 0usize;
    let mut j = start;
    while j < body.len() {
        match body[j] {
            b'"' => {
                // To the closing quote, over escapes.
                j += 1;
                loop {
                    j += memchr::memchr2(b'"', b'\\', &body[j..])?;
                    if body[j] == b'\\' {
                        j += 2;
                    } else {
                        break;
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(start..j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

// ---------------------------------------------------------------------------
// Shared client-side types
// ---------------------------------------------------------------------------

/// A client request (OpenAI or Anthropic shape) translated to Gemini.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    /// The model the client asked for, unmapped.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// A stable per-user/session string for sticky selection: OpenAI `user`,
    /// Anthropic `metadata.user_id`.
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

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` line (Anthropic names every event; OpenAI none).
    pub event: Option<&'static str>,
    /// The `data:` payload, usually one line of JSON.
    pub data: String,
}

impl SseEvent {
    /// An unnamed event.
    pub fn data(data: String) -> Self {
        SseEvent { event: None, data }
    }

    /// A named event.
    pub fn named(event: &'static str, data: String) -> Self {
        SseEvent {
            event: Some(event),
            data,
        }
    }

    /// The wire form: `event: …\ndata: …\n\n` (one `data:` line per line of
    /// `data`, so a payload with newlines stays one event).
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut out = String::with_capacity(self.data.len() + 24);
        if let Some(event) = self.event {
            out.push_str("event: ");
            out.push_str(event);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        bytes::Bytes::from(out)
    }
}

/// Dummy `thoughtSignature` that Google documents as telling Gemini to skip
/// signature validation. Put on replayed function calls the client could not
/// bring back a real signature for (OpenAI clients never can), since Gemini 3
/// refuses a history whose function calls lack one; older models ignore it.
pub const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

/// An error body in Google's shape: `{"error":{"code","message","status"}}`.
pub fn error_body(status: u16, message: &str) -> Value {
    let status_name = match status {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if (400..500).contains(&s) => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    };
    serde_json::json!({"error": {"code": status, "message": message, "status": status_name}})
}

// ---------------------------------------------------------------------------
// Tool schemas
// ---------------------------------------------------------------------------

/// JSON-schema keywords Gemini's function `parameters` (an OpenAPI 3.0
/// subset) accepts; every other keyword is dropped.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "anyOf",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
];

/// How many `$ref`s deep a schema is inlined; deeper (recursive) references
/// become a bare `{"type":"object"}`.
const MAX_REF_DEPTH: u8 = 8;

/// Rewrites a client's JSON Schema into what Gemini's function `parameters`
/// accept:
///
/// - keywords outside Gemini's subset are dropped (`$schema`,
///   `additionalProperties`, `$id`, `examples`, `not`, `if`, `strict`, …);
/// - local `$ref`s (`#/$defs/X`, `#/definitions/X`) are inlined, at most
///   8 levels deep;
/// - `oneOf` becomes `anyOf`; `allOf` members are merged into their parent;
/// - a `null` type (in a `type` array or an `anyOf` member) becomes
///   `nullable: true`, and a `type` array keeps its first other type;
/// - `const` (a string) becomes a one-value `enum`; an `enum` with
///   non-string values is dropped (Gemini enums are strings);
/// - `format` is kept only where Gemini knows it (`enum`/`date-time` on
///   strings, `float`/`double`, `int32`/`int64`);
/// - `required` keeps only names that are in `properties`.
pub fn sanitize_schema(mut schema: Value) -> Value {
    let mut defs = Map::new();
    if let Value::Object(root) = &mut schema {
        for key in ["$defs", "definitions"] {
            if let Some(Value::Object(map)) = root.remove(key) {
                defs.extend(map);
            }
        }
    }
    sanitize_node(&mut schema, &defs, 0);
    schema
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn sanitize_node(node: &mut Value, defs: &Map<String, Value>, depth: u8) {
    let Value::Object(obj) = node else { return };

    if let Some(reference) = obj.remove("$ref") {
        let target = reference
            .as_str()
            .filter(|r| r.starts_with("#/") && depth < MAX_REF_DEPTH)
            .and_then(|r| r.rsplit('/').next())
            .and_then(|name| defs.get(name));
        match target {
            Some(Value::Object(target)) => {
                // Sibling keywords (usually `description`) win over the target's.
                for (k, v) in target {
                    if !obj.contains_key(k) {
                        obj.insert(k.clone(), v.clone());
                    }
                }
                return sanitize_node(node, defs, depth + 1);
            }
            _ => {
                obj.entry("type").or_insert_with(|| "object".into());
            }
        }
    }

    if let Some(Value::Array(members)) = obj.remove("allOf") {
        for mut member in members {
            sanitize_node(&mut member, defs, depth);
            let Value::Object(member) = member else {
                continue;
            };
            for (k, v) in member {
                match (obj.get_mut(&k), v) {
                    (Some(Value::Object(mine)), Value::Object(theirs)) if k == "properties" => {
                        for (name, s) in theirs {
                            mine.entry(name).or_insert(s);
                        }
                    }
                    (Some(Value::Array(mine)), Value::Array(theirs)) if k == "required" => {
                        mine.extend(theirs)
                    }
                    (Some(_), _) => {}
                    (None, v) => {
                        obj.insert(k, v);
                    }
                }
            }
        }
    }

    if let Some(one_of) = obj.remove("oneOf") {
        obj.entry("anyOf").or_insert(one_of);
    }

    if let Some(Value::Array(mut any)) = obj.remove("anyOf") {
        let before = any.len();
        any.retain(|m| !is_null_schema(m));
        if any.len() < before {
            obj.insert("nullable".into(), true.into());
        }
        if any.len() == 1 {
            // `anyOf: [X, null]` (pydantic's Optional) is just a nullable X.
            if let Some(Value::Object(only)) = any.pop() {
                for (k, v) in only {
                    if !obj.contains_key(&k) {
                        obj.insert(k, v);
                    }
                }
            }
            return sanitize_node(node, defs, depth);
        }
        if !any.is_empty() {
            for member in &mut any {
                sanitize_node(member, defs, depth);
            }
            obj.insert("anyOf".into(), Value::Array(any));
        }
    }

    match obj.get_mut("type") {
        Some(Value::Array(types)) => {
            let nullable = types.iter().any(|t| t == "null");
            let first = types.iter().find(|t| *t != "null").cloned();
            match first {
                Some(t) => {
                    obj.insert("type".into(), t);
                }
                None => {
                    obj.remove("type");
                }
            }
            if nullable {
                obj.insert("nullable".into(), true.into());
            }
        }
        Some(Value::String(t)) if t == "null" => {
            obj.remove("type");
            obj.insert("nullable".into(), true.into());
        }
        _ => {}
    }

    if let Some(c) = obj.remove("const") {
        if c.is_string() && !obj.contains_key("enum") {
            obj.insert("enum".into(), Value::Array(vec![c]));
        }
    }
    if let Some(Value::Array(values)) = obj.get("enum") {
        if !values.iter().all(Value::is_string) {
            obj.remove("enum");
        }
    }

    if let Some(format) = obj.get("format").and_then(Value::as_str) {
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let known = matches!(
            (ty, format),
            ("string", "enum" | "date-time")
                | ("number", "float" | "double")
                | ("integer", "int32" | "int64")
        );
        if !known {
            obj.remove("format");
        }
    }

    obj.retain(|k, _| SCHEMA_KEYS.contains(&k.as_str()));

    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for schema in props.values_mut() {
            sanitize_node(schema, defs, depth);
        }
    }
    match obj.get_mut("items") {
        Some(items @ Value::Object(_)) => sanitize_node(items, defs, depth),
        // Tuple form: Gemini has one `items` schema; keep the first.
        Some(Value::Array(tuple)) => {
            let first = tuple.drain(..).next();
            match first {
                Some(mut first) => {
                    sanitize_node(&mut first, defs, depth);
                    obj.insert("items".into(), first);
                }
                None => {
                    obj.remove("items");
                }
            }
        }
        _ => {}
    }

    if let Some(Value::Array(required)) = obj.get("required") {
        let props = obj.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = required
            .iter()
            .filter(
                |r| matches!((r.as_str(), props), (Some(name), Some(p)) if p.contains_key(name)),
            )
            .cloned()
            .collect();
        if kept.is_empty() {
            obj.remove("required");
        } else if kept.len() != required.len() {
            obj.insert("required".into(), Value::Array(kept));
        }
    }
}

/// Builds a function declaration from a client's tool, with its schema
/// cleaned by [`sanitize_schema`]. An object schema without properties is left
/// out: Gemini rejects `OBJECT` parameters whose `properties` are empty.
pub fn function_declaration(
    name: String,
    description: Option<String>,
    schema: Option<Value>,
) -> FunctionDeclaration {
    let parameters = schema
        .filter(|s| !s.is_null())
        .map(sanitize_schema)
        .filter(|s| {
            let empty_props = s
                .get("properties")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
            !(s.get("type").and_then(Value::as_str) == Some("object") && empty_props)
                && s.as_object().is_some_and(|o| !o.is_empty())
        });
    FunctionDeclaration {
        name,
        description: description.filter(|d| !d.is_empty()),
        parameters,
        extra: Map::new(),
    }
}

// ---------------------------------------------------------------------------
// Helpers for the translators
// ---------------------------------------------------------------------------

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
    let uuid = uuid::Uuid::new_v4();
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
pub(super) fn body_error(
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
    #[test]
    fn content_and_part_read_known_fields_and_keep_the_rest() {
        let raw = br#"{"role":"model","parts":[{"text":"a\"b","thoughtSignature":"s","executableCode":{"code":"1"}},{"functionCall":{"name":"f","args":{"x":1}}}],"custom":[1]}"#;
        let c: Content = serde_json::from_slice(raw).unwrap();
        assert_eq!(c.role.as_deref(), Some("model"));
        assert_eq!(c.parts[0].text.as_deref(), Some("a\"b"));
        assert_eq!(c.parts[0].thought_signature.as_deref(), Some("s"));
        assert_eq!(c.parts[0].extra["executableCode"], json!({"code": "1"}));
        assert_eq!(c.parts[1].function_call.as_ref().unwrap().name, "f");
        assert_eq!(c.extra["custom"], json!([1]));
        // Written back as it came.
        assert_eq!(serde_json::to_value(&c).unwrap(), serde_json::from_slice::<Value>(raw).unwrap());
        // Wrong types are errors, as with a derived reader.
        assert!(serde_json::from_str::<Part>(r#"{"text": 1}"#).is_err());
        assert!(serde_json::from_str::<Content>(r#"[]"#).is_err());
    }

    #[test]
    fn response_span_finds_the_inner_answer() {
        fn span(b: &str) -> Option<&str> {
            super::response_span(b.as_bytes()).map(|r| &b[r])
        }
        assert_eq!(span(r#"{"response":{"a":[1,{"b":"x}"}]},"traceId":"t"}"#), Some(r#"{"a":[1,{"b":"x}"}]}"#));
        assert_eq!(span(" {\n \"response\" : {\"s\":\"q\\\"}{\\\\\"}}"), Some("{\"s\":\"q\\\"}{\\\\\"}"));
        // Other shapes are left to the parser.
        assert_eq!(span(r#"{"traceId":"t","response":{}}"#), None);
        assert_eq!(span(r#"{"response":null}"#), None);
        assert_eq!(span(r#"{"response":{"a":"unterminated}"#), None);
        assert_eq!(span(r#"{"response":{"a":1"#), None);
        assert_eq!(span(""), None);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_unknown_fields() {
        let raw = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "hi"},
                {"fileData": {"mimeType": "video/mp4", "fileUri": "gs://b/v.mp4"}}
            ]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"temperature": 0.5, "responseModalities": ["TEXT"]},
            "tools": [{"googleSearch": {}}]
        });
        let req: GenerateContentRequest = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(req.contents[0].parts[0].text.as_deref(), Some("hi"));
        assert!(req.contents[0].parts[1].extra.contains_key("fileData"));
        assert_eq!(
            req.generation_config.as_ref().unwrap().temperature,
            Some(0.5)
        );
        assert_eq!(serde_json::to_value(&req).unwrap(), raw);
    }

    #[test]
    fn snake_case_request_keys_are_understood() {
        let req: GenerateContentRequest = serde_json::from_value(json!({
            "contents": [],
            "system_instruction": {"parts": [{"text": "sys"}]},
            "generation_config": {"maxOutputTokens": 10}
        }))
        .unwrap();
        assert_eq!(
            req.system_instruction.unwrap().parts[0].text.as_deref(),
            Some("sys")
        );
        assert_eq!(req.generation_config.unwrap().max_output_tokens, Some(10));
    }

    #[test]
    fn response_parses_with_helpers() {
        let resp: GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "thinking…", "thought": true},
                    {"text": "Hello"},
                    {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "sig"}
                ]},
                "finishReason": "STOP",
                "safetyRatings": []
            }],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                              "thoughtsTokenCount": 3, "totalTokenCount": 18},
            "modelVersion": "gemini-2.5-pro",
            "responseId": "abc"
        }))
        .unwrap();
        assert_eq!(resp.parts().len(), 3);
        assert!(resp.parts()[0].is_thought());
        assert_eq!(resp.parts()[2].thought_signature.as_deref(), Some("sig"));
        assert_eq!(resp.finish_reason(), Some("STOP"));
        let usage = resp.usage_metadata.unwrap();
        assert_eq!((usage.prompt(), usage.output(), usage.total()), (10, 8, 18));
    }

    #[test]
    fn finish_kinds() {
        assert_eq!(FinishKind::from_gemini("STOP"), FinishKind::Stop);
        assert_eq!(FinishKind::from_gemini("MAX_TOKENS"), FinishKind::MaxTokens);
        assert_eq!(FinishKind::from_gemini("SAFETY"), FinishKind::Filtered);
        assert_eq!(FinishKind::from_gemini("RECITATION"), FinishKind::Filtered);
        assert_eq!(
            FinishKind::from_gemini("MALFORMED_FUNCTION_CALL"),
            FinishKind::Other
        );
        let blocked: GenerateContentResponse =
            serde_json::from_value(json!({"promptFeedback": {"blockReason": "SAFETY"}})).unwrap();
        assert_eq!(
            FinishKind::of_response(&blocked),
            Some(FinishKind::Filtered)
        );
        assert_eq!(
            FinishKind::of_response(&GenerateContentResponse::default()),
            None
        );
    }

    #[test]
    fn upstream_envelope() {
        let wrapped = br#"{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]}}]},"traceId":"t"}"#;
        assert_eq!(
            parse_upstream_response(wrapped).unwrap().parts()[0]
                .text
                .as_deref(),
            Some("x")
        );
        let bare = br#"{"candidates":[{"content":{"parts":[{"text":"y"}]}}]}"#;
        assert_eq!(
            parse_upstream_response(bare).unwrap().parts()[0]
                .text
                .as_deref(),
            Some("y")
        );
        assert!(parse_upstream_response(b"{not json").is_err());

        let req = GenerateContentRequest::default();
        let up = UpstreamRequest {
            model: "gemini-2.5-pro",
            project: "p-1",
            request: &req,
        };
        assert_eq!(
            serde_json::to_value(up).unwrap(),
            json!({"model": "gemini-2.5-pro", "project": "p-1", "request": {"contents": []}})
        );
    }

    #[test]
    fn google_error_body() {
        assert_eq!(
            error_body(429, "quota"),
            json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        );
        assert_eq!(error_body(401, "x")["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(error_body(503, "x")["error"]["status"], "UNAVAILABLE");
        assert_eq!(error_body(500, "x")["error"]["status"], "INTERNAL");
    }

    #[test]
    fn sse_wire_form() {
        let e = SseEvent::named("message_stop", r#"{"type":"message_stop"}"#.into());
        assert_eq!(
            &e.to_bytes()[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(
            &SseEvent::data("[DONE]".into()).to_bytes()[..],
            b"data: [DONE]\n\n"
        );
        assert_eq!(
            &SseEvent::data("a\nb".into()).to_bytes()[..],
            b"data: a\ndata: b\n\n"
        );
    }

    #[test]
    fn schema_strips_unsupported_keywords() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "path": {"type": "string", "description": "file", "format": "uri", "examples": ["/a"]},
                "mode": {"type": ["string", "null"], "enum": ["r", "w"]},
                "count": {"type": "integer", "format": "int32", "exclusiveMinimum": 0},
                "kind": {"const": "file"},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}},
                "additionalProperties": {"type": "boolean"}
            },
            "required": ["path", "missing"]
        });
        assert_eq!(
            sanitize_schema(schema),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "file"},
                    "mode": {"type": "string", "enum": ["r", "w"], "nullable": true},
                    "count": {"type": "integer", "format": "int32"},
                    "kind": {"enum": ["file"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    // A *property* called additionalProperties is kept.
                    "additionalProperties": {"type": "boolean"}
                },
                "required": ["path"]
            })
        );
    }

    #[test]
    fn schema_inlines_refs_and_flattens_combinators() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
            },
            "properties": {
                "at": {"$ref": "#/$defs/Point", "description": "where"},
                "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "opt"},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "both": {"allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "string"}}}
                ]},
                "list": {"$ref": "#/$defs/Node"},
                "ext": {"$ref": "https://example.com/schema.json"}
            }
        });
        let out = sanitize_schema(schema);
        let props = &out["properties"];
        assert_eq!(
            props["at"],
            json!({"type": "object", "description": "where", "properties": {"x": {"type": "number"}}, "required": ["x"]})
        );
        assert_eq!(
            props["maybe"],
            json!({"type": "string", "description": "opt", "nullable": true})
        );
        assert_eq!(
            props["either"],
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(
            props["both"],
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]})
        );
        assert_eq!(props["ext"], json!({"type": "object"}));
        // The recursive reference is cut off, not expanded forever.
        let mut depth = 0;
        let mut node = &props["list"];
        while let Some(next) = node.get("properties").and_then(|p| p.get("next")) {
            node = next;
            depth += 1;
        }
        assert!(depth <= MAX_REF_DEPTH as usize + 1, "depth {depth}");
        assert!(out.get("$defs").is_none());
    }

    #[test]
    fn declaration_drops_empty_object_parameters() {
        let d = function_declaration(
            "now".into(),
            Some("time".into()),
            Some(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        );
        assert_eq!(d.parameters, None);
        let d = function_declaration("f".into(), Some(String::new()), None);
        assert_eq!(serde_json::to_value(d).unwrap(), json!({"name": "f"}));
    }

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
    fn ids_have_prefix() {
        let id = new_id("call_");
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
        assert_ne!(new_id("x"), new_id("x"));
    }
}
