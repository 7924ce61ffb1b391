//! OpenAI `usage` (token counts) from Gemini's `usageMetadata`, shared by
//! the whole answer and the stream's closing chunk.

use serde::Serialize;

use crate::translate::gemini::UsageMetadata;

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
