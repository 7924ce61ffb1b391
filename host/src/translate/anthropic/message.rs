//! The Anthropic `message` object and its parts (content blocks,
//! citations, usage), with what the whole answer ([`super::response`]) and
//! the streamed one ([`super::stream`]) both build them from.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{json, Value};

use super::super::gemini::{FunctionCall, UsageMetadata};
use super::super::outcome::FinishWords;
use super::super::search::{Grounding, Source as WebSource};
use super::super::shared::call_id;

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
    pub(super) fn of(source: &WebSource) -> Self {
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
    pub(super) fn of(source: &WebSource, cited: &str) -> Self {
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

/// `stop_reason`: Gemini reports a stop sequence as a plain `STOP`, so
/// never `stop_sequence`.
pub(super) const STOP_REASONS: FinishWords<&str> =
    FinishWords { tool_use: "tool_use", max_tokens: "max_tokens", filtered: "refusal", stop: "end_turn" };

pub(super) fn tool_use_id(call: &FunctionCall) -> Cow<'_, str> {
    call_id(call, "toolu_")
}

pub(super) fn search_input(g: &Grounding) -> Value {
    json!({"query": g.queries.first().map_or("", String::as_str)})
}
