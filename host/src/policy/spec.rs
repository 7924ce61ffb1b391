//! `policy.toml` as written: its tables, checked and turned into plugin
//! entries (the plugin named, its config as JSON, the lines for messages).
//! Pure: nothing is loaded here (see [`super::Policy::load`]).

use serde::Deserialize;
use toml::Spanned;

/// The policy grantpool runs when none is configured.
pub const DEFAULT_POLICY: &str = r#"# grantpool's bundled default policy.
# A conversation stays on the account that served its first turn while that
# account can serve the model (Google's prompt cache, thought signatures);
# new conversations, and those whose account cannot serve, go to the
# least-busy account, and stay there. Bindings end after an hour idle.
[selector]
plugin = "sticky-session"
config = { ttl_secs = 3600, fallback = "least-busy" }

[[classifier]]
plugin = "default"
"#;

/// The selector of a policy that names none, as in [`DEFAULT_POLICY`]:
/// plugin and config (JSON).
pub const DEFAULT_SELECTOR: (&str, &str) = ("sticky-session", r#"{"ttl_secs":3600,"fallback":"least-busy"}"#);

/// What a classifier's verdicts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierMode {
    /// Verdicts are carried out.
    #[default]
    Act,
    /// Verdicts are logged ("would …") and nothing is done; the chain goes on
    /// as if this classifier had no answer.
    Shadow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginSpec {
    plugin: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<toml::Value>>,
    #[serde(default)]
    mode: ClassifierMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorSpec {
    plugin: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<toml::Value>>,
}

/// `[guard]`: the brake on disable storms. More than `max_disables`
/// disables, or more than `max_fraction` of the pool, within `window_secs`
/// turns further disable verdicts into cooldowns (and logs an error).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSettings {
    /// Disables allowed in one window.
    pub max_disables: u32,
    /// Fraction of the pool that may be disabled in one window.
    pub max_fraction: f64,
    /// The window, seconds.
    pub window_secs: u64,
    /// Cooldown given instead of a refused disable, seconds.
    pub cooldown_secs: u64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings { max_disables: 10, max_fraction: 0.5, window_secs: 600, cooldown_secs: 1800 }
    }
}

/// `[quota_protection]`: keep an account off a model whose remaining quota
/// fraction is under `threshold`, until the quota resets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaProtection {
    /// On or off.
    pub enabled: bool,
    /// Remaining fraction under which an account stops serving a model.
    pub threshold: f64,
    /// Models it applies to (empty: all).
    pub models: Vec<String>,
    /// How often quotas are fetched, seconds.
    pub refresh_secs: u64,
}

impl Default for QuotaProtection {
    fn default() -> Self {
        QuotaProtection { enabled: false, threshold: 0.1, models: Vec::new(), refresh_secs: 600 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    selector: Option<SelectorSpec>,
    #[serde(default)]
    classifier: Vec<PluginSpec>,
    #[serde(default)]
    guard: GuardSettings,
    #[serde(default)]
    quota_protection: Option<QuotaProtection>,
}

/// A plugin the policy names.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `plugin = "…"`: a bundled name or a path.
    pub plugin: String,
    /// Its config, as the JSON object the plugin's `configure` gets.
    pub config_json: String,
    /// Line of `plugin = …`.
    pub line: usize,
    /// Line of `config = …` (the plugin's line when there is none).
    pub config_line: usize,
    /// Act or shadow (classifiers).
    pub mode: ClassifierMode,
}

/// A policy file read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The selector (the bundled default's, affinity, when the file names none).
    pub selector: Entry,
    /// The classifier chain as written (may be empty).
    pub classifiers: Vec<Entry>,
    /// The disable-storm guard.
    pub guard: GuardSettings,
    /// Quota protection.
    pub quota_protection: QuotaProtection,
}

/// Why a policy file's text is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Not valid TOML, or an unknown or mistyped key (toml's message, with
    /// line and column).
    #[error("{0}")]
    Parse(String),
    /// A value is out of range.
    #[error("line {line}: {cause}")]
    Invalid {
        /// Line of the value.
        line: usize,
        /// What is wrong.
        cause: String,
    },
}

/// Reads a policy file's text.
pub fn parse(text: &str) -> Result<Spec, SpecError> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| SpecError::Parse(e.to_string().trim().to_string()))?;
    let line_of = |span: std::ops::Range<usize>| text[..span.start.min(text.len())].lines().count().max(1);
    let guard = file.guard;
    if !(0.0..=1.0).contains(&guard.max_fraction) || guard.window_secs == 0 {
        return Err(SpecError::Invalid { line: 1, cause: "[guard] max_fraction must be within 0..1 and window_secs above 0".into() });
    }
    let entry = |plugin: &Spanned<String>, config: &Option<Spanned<toml::Value>>, mode: ClassifierMode| {
        let line = line_of(plugin.span());
        let config_json = to_json(config.as_ref().map(|c| c.get_ref())).map_err(|cause| SpecError::Invalid { line, cause })?;
        let config_line = config.as_ref().map_or(line, |c| line_of(c.span()));
        Ok(Entry { plugin: plugin.get_ref().clone(), config_json, line, config_line, mode })
    };
    let selector = match &file.selector {
        Some(s) => entry(&s.plugin, &s.config, ClassifierMode::Act)?,
        None => Entry {
            plugin: DEFAULT_SELECTOR.0.into(),
            config_json: DEFAULT_SELECTOR.1.into(),
            line: 1,
            config_line: 1,
            mode: ClassifierMode::Act,
        },
    };
    let classifiers = file.classifier.iter().map(|c| entry(&c.plugin, &c.config, c.mode)).collect::<Result<Vec<_>, _>>()?;
    let quota_protection = match file.quota_protection {
        Some(mut q) => {
            q.enabled = true;
            if !(0.0..=1.0).contains(&q.threshold) {
                return Err(SpecError::Invalid { line: 1, cause: "[quota_protection] threshold must be within 0..1".into() });
            }
            q
        }
        None => QuotaProtection::default(),
    };
    Ok(Spec { selector, classifiers, guard, quota_protection })
}

fn to_json(config: Option<&toml::Value>) -> Result<String, String> {
    match config {
        None => Ok("{}".into()),
        Some(v @ toml::Value::Table(_)) => serde_json::to_string(v).map_err(|e| format!("plugin config cannot be passed on: {e}")),
        Some(_) => Err("`config` must be a table, e.g. config = { ttl_secs = 60 }".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_their_lines_and_json_configs() {
        let s = parse("[selector]\nplugin = \"sticky-session\"\nconfig = { ttl_secs = 60 }\n\n[[classifier]]\nplugin = \"rules\"\nmode = \"shadow\"\n").unwrap();
        assert_eq!(s.selector.plugin, "sticky-session");
        assert_eq!((s.selector.line, s.selector.config_line), (2, 3));
        assert_eq!(s.selector.config_json, r#"{"ttl_secs":60}"#);
        assert_eq!(s.classifiers[0].mode, ClassifierMode::Shadow);
        assert_eq!(s.classifiers[0].line, 6);
        assert!(matches!(parse("[selector]\nplugin = 3"), Err(SpecError::Parse(_))));
        assert!(matches!(parse("[guard]\nmax_fraction = 2.0"), Err(SpecError::Invalid { .. })));
        assert!(matches!(parse("[selector]\nplugin = \"x\"\nconfig = 3"), Err(SpecError::Invalid { line: 2, .. })));
    }
}

#[cfg(test)]
mod default_tests {
    use super::*;

    #[test]
    fn a_policy_without_a_selector_gets_the_bundled_defaults() {
        let bundled = parse(DEFAULT_POLICY).unwrap();
        let bare = parse("[[classifier]]\nplugin = \"default\"\n").unwrap();
        assert_eq!(bundled.selector.plugin, "sticky-session");
        assert_eq!((bare.selector.plugin.as_str(), bare.selector.config_json.as_str()), DEFAULT_SELECTOR);
        let a: serde_json::Value = serde_json::from_str(&bundled.selector.config_json).unwrap();
        let b: serde_json::Value = serde_json::from_str(DEFAULT_SELECTOR.1).unwrap();
        assert_eq!(a, b, "one default, written twice");
    }
}
