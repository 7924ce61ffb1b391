//! The models Google serves each profile, as `fetchAvailableModels` lists
//! them (display names, output limits, deprecated ids and where they went),
//! kept per profile and refreshed with the quota polls. The configured
//! model list is the fallback until Google's is known.

use std::collections::{BTreeMap, HashMap};

use parking_lot::RwLock;
use serde::Deserialize;

/// One model as Google lists it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelInfo {
    /// The model id (`gemini-2.5-pro`, `claude-sonnet-4-6`).
    pub id: String,
    /// Its display name, when given.
    pub display_name: Option<String>,
    /// Largest input, tokens.
    pub max_tokens: Option<u64>,
    /// Largest output, tokens.
    pub max_output_tokens: Option<u64>,
    /// It can think.
    pub supports_thinking: bool,
}

/// What one `fetchAvailableModels` answer says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The models by id.
    pub models: BTreeMap<String, ModelInfo>,
    /// Deprecated id → the id that replaces it.
    pub deprecated: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawModel {
    display_name: Option<String>,
    max_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(default)]
    supports_thinking: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeprecated {
    new_model_id: Option<String>,
}

impl Listing {
    /// The listing in a `fetchAvailableModels` answer (`models` is a map
    /// keyed by model id; `deprecatedModelIds` maps old ids to
    /// `{newModelId}`; fields it cannot read are left out).
    pub fn parse(answer: &serde_json::Value) -> Listing {
        let mut listing = Listing::default();
        if let Some(models) = answer.get("models").and_then(|m| m.as_object()) {
            for (id, m) in models {
                let raw = serde_json::from_value::<RawModel>(m.clone()).ok();
                let info = ModelInfo {
                    id: id.clone(),
                    display_name: raw.as_ref().and_then(|r| r.display_name.clone()),
                    max_tokens: raw.as_ref().and_then(|r| r.max_tokens),
                    max_output_tokens: raw.as_ref().and_then(|r| r.max_output_tokens),
                    supports_thinking: raw.as_ref().is_some_and(|r| r.supports_thinking),
                };
                listing.models.insert(id.clone(), info);
            }
        }
        if let Some(dep) = answer.get("deprecatedModelIds").and_then(|m| m.as_object()) {
            for (old, v) in dep {
                if let Some(new) = serde_json::from_value::<RawDeprecated>(v.clone()).ok().and_then(|d| d.new_model_id) {
                    listing.deprecated.insert(old.clone(), new);
                }
            }
        }
        listing
    }
}

/// Every profile's latest listing.
#[derive(Debug, Default)]
pub struct Catalogue {
    by_profile: RwLock<BTreeMap<&'static str, Listing>>,
    /// The tier a family named without one resolves to (`[upstream] default_tier`).
    default_tier: String,
}

impl Catalogue {
    /// An empty catalogue whose tierless family names resolve to `tier`.
    pub fn with_default_tier(tier: &str) -> Catalogue {
        Catalogue { by_profile: RwLock::default(), default_tier: tier.to_string() }
    }

    /// A model family named without its tier (`gemini-3.8-flash`, as Gemini
    /// CLI and the Gemini SDKs send it), resolved to a tier Google lists:
    /// the default tier when listed, else the first listed of the profile's
    /// tiers; before Google's list is known, the default tier of a family
    /// the profiles' tables name as tiered. `None`: not such a name.
    fn tier_of(&self, map: &BTreeMap<&'static str, Listing>, model: &str) -> Option<String> {
        if map.values().any(|l| l.models.contains_key(model)) {
            return None;
        }
        for profile in crate::profiles::ALL {
            let mut tiers: Vec<&str> = vec![self.default_tier.as_str()];
            tiers.extend(profile.tiers.iter().copied().filter(|t| *t != self.default_tier));
            let candidates = tiers.iter().filter(|t| profile.tiers.contains(t)).map(|t| format!("{model}-{t}"));
            match map.get(profile.name) {
                Some(listing) => {
                    if let Some(found) = candidates.into_iter().find(|c| listing.models.contains_key(c)) {
                        return Some(found);
                    }
                }
                None if profile.tiered_families.contains(&model) => return candidates.into_iter().next(),
                None => {}
            }
        }
        None
    }

    /// Keep `listing` as what `profile` serves now (an empty one is ignored:
    /// a failed or partial answer must not empty the list).
    pub fn update(&self, profile: &'static str, listing: Listing) {
        if listing.models.is_empty() {
            return;
        }
        let mut map = self.by_profile.write();
        if map.get(profile) != Some(&listing) {
            tracing::info!(profile, models = listing.models.len(), "models Google serves this profile: {}", listing.models.keys().cloned().collect::<Vec<_>>().join(", "));
            map.insert(profile, listing);
        }
    }

    /// Whether any listing is known yet.
    pub fn is_known(&self) -> bool {
        !self.by_profile.read().is_empty()
    }

    /// Every model of every profile (one entry per id).
    pub fn models(&self) -> Vec<ModelInfo> {
        let map = self.by_profile.read();
        let mut all: BTreeMap<String, ModelInfo> = BTreeMap::new();
        for listing in map.values() {
            for (id, m) in &listing.models {
                all.entry(id.clone()).or_insert_with(|| m.clone());
            }
        }
        all.into_values().collect()
    }

    /// The model's output limit, from any profile that lists it.
    pub fn max_output_tokens(&self, model: &str) -> Option<u64> {
        self.by_profile.read().values().find_map(|l| l.models.get(model)?.max_output_tokens)
    }

    /// What a model id is served as now, when not as itself: a deprecated
    /// id's replacement; else, for a Claude id Google does not list (Claude
    /// Code asks for Anthropic's newest names), the listed Claude model of
    /// the same family (opus, sonnet; haiku is served by sonnet), newest
    /// first. `None`: serve the id as it is.
    pub fn replacement(&self, model: &str) -> Option<String> {
        let map = self.by_profile.read();
        if let Some(new) = map.values().find_map(|l| l.deprecated.get(model).cloned()) {
            return Some(new);
        }
        if let Some(tiered) = self.tier_of(&map, model) {
            return Some(tiered);
        }
        let family = ["claude-opus", "claude-sonnet", "claude-haiku"].into_iter().find(|f| model.starts_with(f))?;
        if map.values().any(|l| l.models.contains_key(model)) {
            return None;
        }
        let wanted = if family == "claude-haiku" { "claude-sonnet" } else { family };
        map.values().flat_map(|l| l.models.keys()).filter(|m| m.starts_with(wanted)).max().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listing_reads_models_and_deprecations() {
        let answer = json!({
            "models": {
                "claude-sonnet-4-6": {"displayName": "Claude Sonnet 4.6", "maxTokens": 200000, "maxOutputTokens": 64000,
                                       "supportsThinking": true, "quotaInfo": {"remainingFraction": 1.0}},
                "gemini-2.5-pro": {"quotaInfo": {}},
                "odd": 3
            },
            "deprecatedModelIds": {"claude-sonnet-4-5": {"newModelId": "claude-sonnet-4-6"}, "x": {}}
        });
        let l = Listing::parse(&answer);
        assert_eq!(l.models.len(), 3);
        let c = &l.models["claude-sonnet-4-6"];
        assert_eq!(c.max_output_tokens, Some(64000));
        assert!(c.supports_thinking);
        assert_eq!(l.models["odd"].display_name, None);
        assert_eq!(l.deprecated.get("claude-sonnet-4-5").map(String::as_str), Some("claude-sonnet-4-6"));
        assert!(!l.deprecated.contains_key("x"));

        let cat = Catalogue::default();
        assert!(!cat.is_known());
        cat.update("antigravity", Listing::default());
        assert!(!cat.is_known(), "an empty answer is ignored");
        cat.update("antigravity", l);
        assert_eq!(cat.max_output_tokens("claude-sonnet-4-6"), Some(64000));
        assert_eq!(cat.replacement("claude-sonnet-4-5").as_deref(), Some("claude-sonnet-4-6"));
        // Anthropic's newer names find their family; a listed id is itself.
        assert_eq!(cat.replacement("claude-sonnet-5").as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(cat.replacement("claude-haiku-4-5").as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(cat.replacement("claude-opus-4-8"), None, "no opus listed here");
        assert_eq!(cat.replacement("claude-sonnet-4-6"), None);
        assert_eq!(cat.replacement("gemini-2.5-pro"), None);
        assert_eq!(cat.models().len(), 3);
    }

    #[test]
    fn a_family_without_a_tier_resolves_to_a_listed_tier() {
        let cat = Catalogue::with_default_tier("high");
        // Before Google's list is known: the tables' tiered families only.
        assert_eq!(cat.replacement("gemini-3.8-flash").as_deref(), Some("gemini-3.8-flash-high"));
        assert_eq!(cat.replacement("gemini-2.5-flash"), None);
        let answer = json!({"models": {"gemini-3.8-flash-medium": {}, "gemini-3.8-flash-low": {}, "gemini-3.7-flash-high": {},
                                       "gemini-3.7-flash-low": {}, "gemini-2.5-flash": {}}});
        cat.update("antigravity", Listing::parse(&answer));
        // High is not listed for 3.8: the next tier that is.
        assert_eq!(cat.replacement("gemini-3.8-flash").as_deref(), Some("gemini-3.8-flash-medium"));
        assert_eq!(cat.replacement("gemini-3.7-flash").as_deref(), Some("gemini-3.7-flash-high"));
        assert_eq!(cat.replacement("gemini-3.7-flash-low"), None, "a listed id is itself");
        assert_eq!(cat.replacement("gemini-2.5-flash"), None);
        assert_eq!(cat.replacement("gemini-3.6-flash"), None, "not listed in any tier");
        let low = Catalogue::with_default_tier("low");
        low.update("antigravity", Listing::parse(&answer));
        assert_eq!(low.replacement("gemini-3.7-flash").as_deref(), Some("gemini-3.7-flash-low"));
    }
}
