//! The model catalogue of `fetchAvailableModels`, per client, and which
//! models only the Antigravity client may use.
//!
//! Ids and limits: facts §2.1 (CPA:internal/registry/models/models.json key
//! `antigravity`: claude-* 64000 output tokens, gemini-3-flash 65536) and
//! §4 (AM:modules/quota.rs `ModelInfo` field names). Display names and the
//! other limits are the fake's own (unverified).

use serde_json::{json, Value};

/// One catalogue entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelEntry {
    pub(crate) id: &'static str,
    pub(crate) display_name: &'static str,
    pub(crate) max_tokens: u64,
    pub(crate) max_output_tokens: u64,
    pub(crate) supports_thinking: bool,
    /// Only for the Antigravity client.
    pub(crate) antigravity_only: bool,
}

const fn entry(
    id: &'static str,
    display_name: &'static str,
    max_tokens: u64,
    max_output_tokens: u64,
    antigravity_only: bool,
) -> ModelEntry {
    ModelEntry {
        id,
        display_name,
        max_tokens,
        max_output_tokens,
        supports_thinking: true,
        antigravity_only,
    }
}

/// The catalogue (contract "fetchAvailableModels"), plus
/// `gemini-2.5-flash-lite`, which the fake always listed.
pub(crate) const CATALOGUE: &[ModelEntry] = &[
    entry("gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576, 65_535, false),
    entry(
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        1_048_576,
        65_535,
        false,
    ),
    entry(
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash Lite",
        1_048_576,
        65_535,
        false,
    ),
    entry(
        "gemini-3-pro-preview",
        "Gemini 3 Pro Preview",
        1_048_576,
        65_535,
        false,
    ),
    entry("gemini-3-flash", "Gemini 3 Flash", 1_048_576, 65_536, false),
    entry(
        "claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        200_000,
        64_000,
        true,
    ),
    entry(
        "claude-opus-4-6-thinking",
        "Claude Opus 4.6 (Thinking)",
        200_000,
        64_000,
        true,
    ),
    // Gemini 3.8 Flash (September 2026, tuxevil/tuxevil-rotator PR #28;
    // decolua/9router PR #3732: needs Antigravity ≥ 2.11.0, not on prod).
    entry(
        "gemini-3.8-flash-high",
        "Gemini 3.8 Flash (High)",
        1_048_576,
        65_536,
        true,
    ),
    entry(
        "gemini-3.8-flash-medium",
        "Gemini 3.8 Flash (Medium)",
        1_048_576,
        65_536,
        true,
    ),
    entry(
        "gemini-3.8-flash-low",
        "Gemini 3.8 Flash (Low)",
        1_048_576,
        65_536,
        true,
    ),
    // Gemini 3.7 Flash and 3.1 Flash Lite: the "Recommended" list of
    // fetchAvailableModels, anthonyhaussman/opencode-agy-auth `models.json`
    // (2026-08-22).
    entry(
        "gemini-3.7-flash-high",
        "Gemini 3.7 Flash (High)",
        1_048_576,
        65_536,
        true,
    ),
    entry(
        "gemini-3.7-flash-medium",
        "Gemini 3.7 Flash (Medium)",
        1_048_576,
        65_536,
        true,
    ),
    entry(
        "gemini-3.7-flash-low",
        "Gemini 3.7 Flash (Low)",
        1_048_576,
        65_536,
        true,
    ),
    entry(
        "gemini-3.1-flash-lite",
        "Gemini 3.1 Flash Lite",
        1_048_576,
        65_536,
        true,
    ),
    // The image model (`imageGenerationModelIds`, GOOGLE-2026 §3); it
    // answers with image parts (module `images`). Limits are the fake's own.
    ModelEntry {
        id: "gemini-3.1-flash-image",
        display_name: "Gemini 3.1 Flash Image",
        max_tokens: 65_536,
        max_output_tokens: 32_768,
        supports_thinking: false,
        antigravity_only: true,
    },
];

/// `defaultAgentModelId` of the Antigravity client's catalogue
/// (anthonyhaussman/opencode-agy-auth `models.json`, 2026-08-22).
pub(crate) const DEFAULT_AGENT_MODEL_ID: &str = "gemini-3.7-flash-high";

/// Family names that are not models: 404 `Requested entity was not found.`
/// (tuxevil/tuxevil-rotator PR #28: the bare `gemini-3.8-flash` and its
/// `-tiered` form answer 404).
const NOT_MODELS: &[&str] = &[
    "gemini-3.8-flash",
    "gemini-3.8-flash-tiered",
    "gemini-3.7-flash",
];

/// The oldest Antigravity (hub) version that may use the newer models
/// (CPA commit a834917e8: 2.9.0).
pub(crate) const MIN_ANTIGRAVITY_VERSION: [u64; 3] = [2, 9, 0];

/// The oldest Antigravity (hub) version that may use Gemini 3.8
/// (decolua/9router PR #3732: 2.1.1 got 404, 2.11.0 works).
pub(crate) const MIN_GEMINI_38_VERSION: [u64; 3] = [2, 11, 0];

/// Whether `model` is a family name Google answers 404 for.
pub(crate) fn is_not_a_model(model: &str) -> bool {
    NOT_MODELS.contains(&model)
}

/// Whether `model` is a Gemini 3.8 model (`gemini-3.8-*`).
pub(crate) fn is_gemini38(model: &str) -> bool {
    model.starts_with("gemini-3.8-")
}

/// The oldest Antigravity hub version that may use `model` (an
/// Antigravity-only model).
pub(crate) fn min_version(model: &str) -> [u64; 3] {
    if is_gemini38(model) {
        MIN_GEMINI_38_VERSION
    } else {
        MIN_ANTIGRAVITY_VERSION
    }
}

/// `deprecatedModelIds` for the Antigravity client (contract; AM
/// proxy/common/model_mapping.rs maps claude-sonnet-4-5* to 4-6).
pub(crate) const DEPRECATED: &[(&str, &str)] = &[("claude-sonnet-4-5", "claude-sonnet-4-6")];

/// Antigravity-only ids outside the catalogue (facts §2.1, CPA registry).
const ANTIGRAVITY_ONLY_IDS: &[&str] = &[
    "gemini-pro-agent",
    "gemini-3-flash-agent",
    "gemini-3.1-pro-low",
    "gemini-3.1-flash-image",
    "gemini-3.1-flash-lite",
    "gemini-3.5-flash-low",
    "gemini-3.5-flash-extra-low",
    "gemini-3.6-flash-high",
    "gemini-3.7-flash-high",
];

/// The output-token limit of a Claude model when the catalogue does not
/// name it (contract: "default 64000").
pub(crate) const DEFAULT_CLAUDE_MAX_OUTPUT: u64 = 64_000;

/// The catalogue entry of `model`, if any.
pub(crate) fn find(model: &str) -> Option<&'static ModelEntry> {
    CATALOGUE.iter().find(|m| m.id == model)
}

/// Whether `model` is a Claude model (`claude-*`).
pub(crate) fn is_claude(model: &str) -> bool {
    model.starts_with("claude-")
}

/// Whether `model` is a Gemini 3 model (`gemini-3*`), whose function calls
/// need thought signatures (contract "Thought signatures").
pub(crate) fn is_gemini3(model: &str) -> bool {
    model.starts_with("gemini-3")
}

/// Whether only the Antigravity client (with a recent enough User-Agent)
/// may use `model`: claude-*, gpt-oss-*, and the Antigravity-only Gemini ids.
pub(crate) fn is_antigravity_only(model: &str) -> bool {
    is_claude(model)
        || model.starts_with("gpt-oss-")
        || ANTIGRAVITY_ONLY_IDS.contains(&model)
        || model.starts_with("gemini-3.8-")
        || model.starts_with("gemini-3.7-")
        || find(model).is_some_and(|m| m.antigravity_only)
}

/// The output-token limit of a Claude model.
pub(crate) fn max_output_tokens(model: &str) -> u64 {
    find(model).map_or(DEFAULT_CLAUDE_MAX_OUTPUT, |m| m.max_output_tokens)
}

/// The JSON of one `models` entry, without `quotaInfo`.
pub(crate) fn entry_json(m: &ModelEntry) -> Value {
    json!({
        "displayName": m.display_name,
        "maxTokens": m.max_tokens,
        "maxOutputTokens": m.max_output_tokens,
        "supportsThinking": m.supports_thinking,
    })
}

/// The catalogue a token of this client sees: everything for the
/// Antigravity client, the Gemini models for any other.
pub(crate) fn for_client(antigravity: bool) -> impl Iterator<Item = &'static ModelEntry> {
    CATALOGUE
        .iter()
        .filter(move |m| antigravity || !m.antigravity_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_classes() {
        assert!(is_antigravity_only("claude-sonnet-4-6"));
        assert!(is_antigravity_only("claude-grantpool-test"));
        assert!(is_antigravity_only("gemini-pro-agent"));
        assert!(!is_antigravity_only("gemini-2.5-pro"));
        assert!(!is_antigravity_only("gemini-3-flash"));
        assert!(is_gemini3("gemini-3-pro-preview") && !is_gemini3("gemini-2.5-pro"));
        assert_eq!(max_output_tokens("claude-sonnet-4-6"), 64_000);
        assert_eq!(max_output_tokens("claude-unknown"), 64_000);
        let cli: Vec<_> = for_client(false).map(|m| m.id).collect();
        assert!(
            cli.contains(&"gemini-3-pro-preview") && !cli.iter().any(|m| m.starts_with("claude"))
        );
        assert_eq!(for_client(true).count(), CATALOGUE.len());
        assert!(!cli.iter().any(|m| m.starts_with("gemini-3.8")));
        assert!(is_antigravity_only("gemini-3.8-flash-high"));
        assert!(is_not_a_model("gemini-3.8-flash") && is_not_a_model("gemini-3.7-flash"));
        assert!(!is_not_a_model("gemini-3.8-flash-low"));
        assert_eq!(min_version("gemini-3.8-flash-low"), [2, 11, 0]);
        assert_eq!(min_version("claude-sonnet-4-6"), [2, 9, 0]);
        assert!(find(DEFAULT_AGENT_MODEL_ID).is_some());
    }
}
