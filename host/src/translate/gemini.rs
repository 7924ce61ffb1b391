//! Gemini `generateContent` types, the `v1internal` envelope, and Google's
//! error shape.
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

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::LazyLock;

use memchr::memmem::{Finder, FinderRev};
use serde::de::{self, Deserializer, Visitor};
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
    /// The arguments' schema, in Gemini's OpenAPI subset (see
    /// [`super::schema::sanitize_schema`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// The arguments' schema as JSON Schema (what Gemini CLI sends);
    /// exclusive with `parameters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_json_schema: Option<Value>,
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

    /// The first candidate's `groundingMetadata`.
    pub fn grounding(&self) -> Option<&GroundingMetadata> {
        self.candidates.first()?.grounding_metadata.as_ref()
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
    /// What Google Search found, for an answer grounded by `googleSearch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_metadata: Option<GroundingMetadata>,
}

/// A candidate's `groundingMetadata` (the fields the translators read; see
/// [`search`](super::search) for what they make of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundingMetadata {
    /// The queries Google Search ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub web_search_queries: Vec<String>,
    /// The sources, in the order supports refer to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grounding_chunks: Vec<GroundingChunk>,
    /// Which span of the answer each source supports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grounding_supports: Vec<GroundingSupport>,
}

/// One source of a grounded answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundingChunk {
    /// A web page (the other kinds, e.g. `retrievedContext`, are not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebChunk>,
}

/// A web page Gemini used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebChunk {
    /// Its address (Google's `grounding-api-redirect` link to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Its title (often the site's domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A span of the answer and the sources behind it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundingSupport {
    /// The span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
    /// Indexes into `groundingChunks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grounding_chunk_indices: Vec<usize>,
}

/// A span of the answer text: UTF-8 byte offsets into the candidate's
/// whole text (`startIndex` is left out when 0, as proto3 does).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// First byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_index: Option<usize>,
    /// One past the last byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_index: Option<usize>,
    /// The span's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
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

    /// The four counts the usage log keeps.
    pub fn tokens(&self) -> TokenUse {
        TokenUse {
            input: self.prompt(),
            output: self.candidates_token_count.unwrap_or(0),
            cached: self.cached(),
            thinking: self.thoughts_token_count.unwrap_or(0),
        }
    }
}

/// One answer's tokens as Google counts them in `usageMetadata`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUse {
    /// `promptTokenCount`: prompt tokens, cached ones included.
    pub input: u64,
    /// `candidatesTokenCount`: answer tokens, thinking excluded.
    pub output: u64,
    /// `cachedContentTokenCount`: the part of the prompt read from cache.
    pub cached: u64,
    /// `thoughtsTokenCount`: thinking tokens.
    pub thinking: u64,
}

impl TokenUse {
    /// Tokens billed: prompt, answer and thinking (what a key's daily
    /// token limit counts).
    pub fn billed(&self) -> u64 {
        self.input + self.output + self.thinking
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
                    // `get`: an escape as the last byte runs past the end.
                    j += memchr::memchr2(b'"', b'\\', body.get(j..)?)?;
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

/// `usageMetadata`'s `promptTokenCount` and `cachedContentTokenCount` (0
/// when absent) in an answer or one stream event, found without parsing: the
/// Gemini route passes the upstream's bytes on, and counts the usage for
/// the metrics with this scan. It takes the last `"usageMetadata"` key
/// (Google writes it after the candidates, so the backward search is
/// short) and reads the two counts after it; a quote inside a JSON string is
/// escaped, so a quoted key cannot match inside a text. `None` when the
/// answer carries no usage.
pub fn usage_scan(body: &[u8]) -> Option<TokenUse> {
    // Searchers built once (building one costs more than a short search).
    static KEY: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(b"\"usageMetadata\""));
    static COUNTS: LazyLock<[Finder<'static>; 4]> = LazyLock::new(|| {
        [b"\"promptTokenCount\"" as &[u8], b"\"candidatesTokenCount\"", b"\"cachedContentTokenCount\"", b"\"thoughtsTokenCount\""]
            .map(Finder::new)
    });
    let at = KEY.rfind(body)?;
    let rest = &body[at + KEY.needle().len()..];
    let count = |key: &Finder<'static>| {
        let i = key.find(rest)? + key.needle().len();
        let mut v = rest.get(i..)?;
        v = v.trim_ascii_start().strip_prefix(b":")?.trim_ascii_start();
        // proto3 JSON may quote 64-bit integers.
        v = v.strip_prefix(b"\"").unwrap_or(v);
        let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&v[..digits]).ok()?.parse::<u64>().ok()
    };
    let [prompt, candidates, cached, thoughts] = &*COUNTS;
    Some(TokenUse {
        input: count(prompt).unwrap_or(0),
        output: count(candidates).unwrap_or(0),
        cached: count(cached).unwrap_or(0),
        thinking: count(thoughts).unwrap_or(0),
    })
}

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


#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn usage_scan_reads_the_counts_without_parsing() {
        let answer = br#"{"response": {"candidates": [{"content": {"parts": [{"text": "say \"usageMetadata\": {\"promptTokenCount\": 9}"}]}}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 5,
              "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}],
              "cachedContentTokenCount" : 96, "totalTokenCount": 125},
            "modelVersion": "gemini-2.5-pro"}, "traceId": "t"}"#;
        let t = |input, output, cached, thinking| Some(TokenUse { input, output, cached, thinking });
        assert_eq!(usage_scan(answer), t(120, 5, 96, 0));
        // No cache hit: no cached count; thinking counted.
        assert_eq!(usage_scan(br#"{"usageMetadata":{"promptTokenCount":7,"thoughtsTokenCount":"3","totalTokenCount":10}}"#), t(7, 0, 0, 3));
        // An event without usage, and a text that only quotes the key.
        assert_eq!(usage_scan(br#"{"candidates":[{"content":{"parts":[{"text":"\"usageMetadata\""}]}}]}"#), None);
        // What a parse of the same bytes reads.
        let parsed = parse_upstream_response(answer).unwrap().usage_metadata.unwrap();
        assert_eq!(usage_scan(answer), Some(parsed.tokens()));
        // Cut short: what is there.
        assert_eq!(usage_scan(br#"{"usageMetadata":{"promptTokenCount":"#), t(0, 0, 0, 0));
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
        // Found by fuzzing (target `gemini_answers`): an escape as the last
        // byte of a cut body ran the scan past the end.
        assert_eq!(span(r#"{"response":{"a":""#), None);
    }

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
}
