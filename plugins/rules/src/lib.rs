//! `rules`: a table of rules from the policy; the first rule that matches a
//! failure gives the verdict. A failure no rule matches is passed on to the
//! next classifier in the chain.
//!
//! ```toml
//! [[classifier]]
//! plugin = "rules"
//! config = { rules = [
//!   { phase = "token-refresh", body_contains = "invalid_grant", action = "disable", reason_prefix = "invalid_grant" },
//!   { phase = "upstream", status = 429, action = "cooldown" },
//! ] }
//! ```
//!
//! Match keys (all optional; every key given must hold):
//!
//! - `phase`: `"token-refresh"` or `"upstream"`
//! - `status`: the HTTP status (a number), or `status_range = [lo, hi]`
//!   (inclusive); a network error has no status and matches neither
//! - `body_contains`: a substring of the body (case-sensitive)
//! - `body_regex`: a regular expression searched in the body (Rust `regex`
//!   syntax; `(?i)` for case-insensitive), checked when the policy loads
//! - `header = { name = "retry-after", contains = "…" }`: the header is
//!   present (names ignore case) and, with `contains`, holds that substring
//! - `network_error`: true for "no HTTP response" (connect error, timeout)
//! - `oauth_error`: the OAuth `error` field of a JSON body, exactly
//!   (e.g. `"invalid_grant"`, `"invalid_client"`)
//!
//! A rule without any match key would match every failure, so it is refused
//! unless it says so with `match_all = true` (a catch-all last rule).
//!
//! Actions (`action`, required) and their keys:
//!
//! - `"disable"`: the account is dead; persisted with a reason
//! - `"proxy_disable"`: keep the account from the proxy until enabled
//! - `"cooldown"`: keep the account (or model) out for a while, then retry
//!   elsewhere. `duration` (`"30s"`, `"5m"`, or a number of seconds) if
//!   given, else the body's `retryDelay` / `quotaResetDelay`, else the
//!   `Retry-After` header, else the host's default. `scope` = `"model"`
//!   (default for upstream failures with a model) or `"account"`
//!   (default otherwise)
//! - `"retry_next"`: retry on another account, no penalty
//! - `"retry_same"`: retry on the same account after `after` (duration;
//!   default the body's delay or `Retry-After`, else 1s)
//! - `"refresh_and_retry"`: refresh the access token, retry once
//! - `"pass_to_client"`: send the upstream's answer to the client
//! - `"none"`: stop here and defer to the next classifier (an exception
//!   ahead of a broader rule)
//!
//! `disable`, `proxy_disable` and `cooldown` take a reason: `reason` as
//! given, else `"<reason_prefix>: <detail>"` (`reason_prefix` defaults to
//! `rule`), where the detail is the OAuth error's summary
//! (`invalid_grant: Token has been expired or revoked.`), else the Google
//! error's status and message, else the first 200 characters of the body.
//! When the detail already starts with the prefix it stands alone, so the
//! first example rule gives `invalid_grant: Token has been expired or
//! revoked.`
//!
//! Mistakes are refused when the policy loads, naming the rule
//! (`rules[2]`, counting from 0) and the key: unknown keys and actions, a
//! bad regex or duration, `status` with `status_range`, and keys that do
//! not belong to the rule's action.

use std::cell::OnceCell;

use grantpool_plugin_sdk::classifier::{
    google_error, header, oauth_error, retry_after_ms, Classifier, Cooldown, CooldownScope, Failure, OAuthError, Phase,
    Verdict,
};
use grantpool_plugin_sdk::duration;
use regex::Regex;
use serde::Deserialize;

/// Longest body excerpt put in a reason, in characters.
const DETAIL_CHARS: usize = 200;
/// `retry_same` without a delay from anywhere.
const DEFAULT_RETRY_SAME_MS: u64 = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<serde_json::Value>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "kebab-case")]
enum PhaseName {
    TokenRefresh,
    Upstream,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    Disable,
    ProxyDisable,
    Cooldown,
    RetryNext,
    RetrySame,
    RefreshAndRetry,
    PassToClient,
    None,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum ScopeName {
    Account,
    Model,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct HeaderMatch {
    name: String,
    contains: Option<String>,
}

/// One rule as written in the policy.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    phase: Option<PhaseName>,
    status: Option<u16>,
    status_range: Option<[u16; 2]>,
    body_contains: Option<String>,
    body_regex: Option<String>,
    header: Option<HeaderMatch>,
    network_error: Option<bool>,
    oauth_error: Option<String>,
    #[serde(default)]
    match_all: bool,
    action: ActionName,
    reason: Option<String>,
    reason_prefix: Option<String>,
    duration: Option<serde_json::Value>,
    scope: Option<ScopeName>,
    after: Option<serde_json::Value>,
}

/// What a rule looks for.
#[derive(Debug, Default)]
struct Matcher {
    phase: Option<PhaseName>,
    status: Option<(u16, u16)>,
    body_contains: Option<String>,
    body_regex: Option<Regex>,
    header: Option<HeaderMatch>,
    network_error: Option<bool>,
    oauth_error: Option<String>,
}

/// What a rule answers.
#[derive(Debug)]
enum Action {
    Disable,
    ProxyDisable,
    Cooldown { duration_ms: Option<u64>, scope: Option<ScopeName> },
    RetryNext,
    RetrySame { after_ms: Option<u64> },
    RefreshAndRetry,
    PassToClient,
    Defer,
}

#[derive(Debug)]
struct Rule {
    matcher: Matcher,
    action: Action,
    reason: Option<String>,
    reason_prefix: Option<String>,
}

/// A failure, with the parts several rules may read parsed at most once.
struct Seen<'a> {
    failure: &'a Failure,
    oauth: OnceCell<Option<OAuthError>>,
}

impl<'a> Seen<'a> {
    fn new(failure: &'a Failure) -> Self {
        Seen { failure, oauth: OnceCell::new() }
    }

    fn oauth(&self) -> Option<&OAuthError> {
        self.oauth.get_or_init(|| oauth_error(&self.failure.body)).as_ref()
    }
}

fn parse_duration(rule: usize, key: &str, v: &serde_json::Value) -> Result<u64, String> {
    let ms = match v {
        serde_json::Value::String(s) => duration::parse_ms(s),
        serde_json::Value::Number(n) => n.as_f64().and_then(|s| duration::parse_ms(&s.to_string())),
        _ => None,
    };
    ms.ok_or_else(|| {
        format!("invalid plugin config: rules[{rule}]: `{key}` = {v} is not a duration (e.g. \"30s\", \"5m\", or a number of seconds)")
    })
}

impl Rule {
    fn compile(i: usize, value: &serde_json::Value) -> Result<Rule, String> {
        let err = |msg: String| format!("invalid plugin config: rules[{i}]: {msg}");
        if !value.is_object() {
            return Err(err(format!("expected a table of match keys and an action, found {value}")));
        }
        let raw = RawRule::deserialize(value).map_err(|e| err(e.to_string()))?;

        if raw.status.is_some() && raw.status_range.is_some() {
            return Err(err("give `status` or `status_range`, not both".into()));
        }
        if let Some([lo, hi]) = raw.status_range {
            if lo > hi {
                return Err(err(format!("`status_range` = [{lo}, {hi}] is empty (lo > hi)")));
            }
        }
        let body_regex = match &raw.body_regex {
            Some(re) => Some(Regex::new(re).map_err(|e| err(format!("`body_regex` does not compile: {e}")))?),
            None => None,
        };
        if raw.header.as_ref().is_some_and(|h| h.name.trim().is_empty()) {
            return Err(err("`header.name` must not be empty".into()));
        }
        let matcher = Matcher {
            phase: raw.phase,
            status: raw.status.map(|s| (s, s)).or(raw.status_range.map(|[lo, hi]| (lo, hi))),
            body_contains: raw.body_contains,
            body_regex,
            header: raw.header,
            network_error: raw.network_error,
            oauth_error: raw.oauth_error,
        };
        if matcher.is_empty() && !raw.match_all {
            return Err(err(
                "has no match key, so it would match every failure; add one (phase, status, status_range, \
                 body_contains, body_regex, header, network_error, oauth_error) or set `match_all = true`"
                    .into(),
            ));
        }

        // Keys that only make sense with some actions: refuse them elsewhere
        // rather than silently ignoring what the user meant.
        let takes_reason = matches!(raw.action, ActionName::Disable | ActionName::ProxyDisable | ActionName::Cooldown);
        for (present, key, valid) in [
            (raw.reason.is_some(), "reason", takes_reason),
            (raw.reason_prefix.is_some(), "reason_prefix", takes_reason),
            (raw.duration.is_some(), "duration", raw.action == ActionName::Cooldown),
            (raw.scope.is_some(), "scope", raw.action == ActionName::Cooldown),
            (raw.after.is_some(), "after", raw.action == ActionName::RetrySame),
        ] {
            if present && !valid {
                let with = match key {
                    "reason" | "reason_prefix" => "`disable`, `proxy_disable` and `cooldown`",
                    "after" => "`retry_same`",
                    _ => "`cooldown`",
                };
                return Err(err(format!("`{key}` applies only to action {with}, not `{}`", action_name(raw.action))));
            }
        }
        if raw.reason.is_some() && raw.reason_prefix.is_some() {
            return Err(err("give `reason` or `reason_prefix`, not both".into()));
        }

        let action = match raw.action {
            ActionName::Disable => Action::Disable,
            ActionName::ProxyDisable => Action::ProxyDisable,
            ActionName::Cooldown => Action::Cooldown {
                duration_ms: raw.duration.as_ref().map(|d| parse_duration(i, "duration", d)).transpose()?,
                scope: raw.scope,
            },
            ActionName::RetryNext => Action::RetryNext,
            ActionName::RetrySame => {
                Action::RetrySame { after_ms: raw.after.as_ref().map(|d| parse_duration(i, "after", d)).transpose()? }
            }
            ActionName::RefreshAndRetry => Action::RefreshAndRetry,
            ActionName::PassToClient => Action::PassToClient,
            ActionName::None => Action::Defer,
        };
        Ok(Rule { matcher, action, reason: raw.reason, reason_prefix: raw.reason_prefix })
    }

    fn verdict(&self, seen: &Seen) -> Option<Verdict> {
        let f = seen.failure;
        Some(match &self.action {
            Action::Disable => Verdict::Disable(self.reason(seen)),
            Action::ProxyDisable => Verdict::ProxyDisable(self.reason(seen)),
            Action::Cooldown { duration_ms, scope } => {
                let scope = match scope {
                    Some(ScopeName::Account) => CooldownScope::Account,
                    Some(ScopeName::Model) => CooldownScope::Model,
                    None if matches!(f.phase, Phase::Upstream) && f.model.is_some() => CooldownScope::Model,
                    None => CooldownScope::Account,
                };
                Verdict::Cooldown(Cooldown {
                    duration_ms: duration_ms.or_else(|| delay_from(f)),
                    scope,
                    reason: self.reason(seen),
                })
            }
            Action::RetryNext => Verdict::RetryNextAccount,
            Action::RetrySame { after_ms } => {
                Verdict::RetrySameAccount(after_ms.or_else(|| delay_from(f)).unwrap_or(DEFAULT_RETRY_SAME_MS))
            }
            Action::RefreshAndRetry => Verdict::RefreshAndRetry,
            Action::PassToClient => Verdict::PassToClient,
            Action::Defer => return None,
        })
    }

    fn reason(&self, seen: &Seen) -> String {
        if let Some(r) = &self.reason {
            return r.clone();
        }
        let prefix = self.reason_prefix.as_deref().unwrap_or("rule");
        let detail = detail(seen);
        if detail.starts_with(prefix) {
            detail
        } else {
            format!("{prefix}: {detail}")
        }
    }
}

fn action_name(a: ActionName) -> &'static str {
    match a {
        ActionName::Disable => "disable",
        ActionName::ProxyDisable => "proxy_disable",
        ActionName::Cooldown => "cooldown",
        ActionName::RetryNext => "retry_next",
        ActionName::RetrySame => "retry_same",
        ActionName::RefreshAndRetry => "refresh_and_retry",
        ActionName::PassToClient => "pass_to_client",
        ActionName::None => "none",
    }
}

/// A delay the failure itself asks for: the Google body's `retryDelay` /
/// `quotaResetDelay`, else `Retry-After`.
fn delay_from(f: &Failure) -> Option<u64> {
    google_error(&f.body).and_then(|g| g.retry_delay_ms).or_else(|| retry_after_ms(f))
}

/// The failure in a few words for a reason.
fn detail(seen: &Seen) -> String {
    let f = seen.failure;
    if let Some(o) = seen.oauth() {
        return truncate(&o.summary());
    }
    if let Some(g) = google_error(&f.body) {
        let head = match (g.code.or(f.status), &g.status) {
            (Some(c), Some(s)) => format!("{c} {s}"),
            (Some(c), None) => c.to_string(),
            (None, Some(s)) => s.clone(),
            (None, None) => String::new(),
        };
        let text = match (head.is_empty(), g.message.is_empty()) {
            (false, false) => format!("{head}: {}", g.message),
            (false, true) => head,
            _ => g.message,
        };
        if !text.is_empty() {
            return truncate(&text);
        }
    }
    let body = f.body.trim();
    if !body.is_empty() {
        return truncate(body);
    }
    match (f.network_error, f.status) {
        (true, _) => "network error".into(),
        (false, Some(s)) => format!("HTTP {s}"),
        (false, None) => "no details".into(),
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(DETAIL_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl Matcher {
    fn is_empty(&self) -> bool {
        self.phase.is_none()
            && self.status.is_none()
            && self.body_contains.is_none()
            && self.body_regex.is_none()
            && self.header.is_none()
            && self.network_error.is_none()
            && self.oauth_error.is_none()
    }

    /// Cheap checks first; the regex and the JSON parse last.
    fn matches(&self, seen: &Seen) -> bool {
        let f = seen.failure;
        if let Some(p) = self.phase {
            let phase = match f.phase {
                Phase::TokenRefresh => PhaseName::TokenRefresh,
                Phase::Upstream => PhaseName::Upstream,
            };
            if p != phase {
                return false;
            }
        }
        if self.network_error.is_some_and(|n| n != f.network_error) {
            return false;
        }
        if let Some((lo, hi)) = self.status {
            if !f.status.is_some_and(|s| (lo..=hi).contains(&s)) {
                return false;
            }
        }
        if let Some(h) = &self.header {
            match header(f, h.name.trim()) {
                Some(v) if h.contains.as_deref().is_none_or(|c| v.contains(c)) => {}
                _ => return false,
            }
        }
        if self.body_contains.as_deref().is_some_and(|s| !f.body.contains(s)) {
            return false;
        }
        if let Some(want) = &self.oauth_error {
            if seen.oauth().map(|o| &o.error) != Some(want) {
                return false;
            }
        }
        if self.body_regex.as_ref().is_some_and(|re| !re.is_match(&f.body)) {
            return false;
        }
        true
    }
}

/// The compiled rule table (public for the fuzz target in plugins/fuzz).
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    fn judge(&self, failure: &Failure) -> Option<Verdict> {
        let seen = Seen::new(failure);
        let rule = self.rules.iter().find(|r| r.matcher.matches(&seen))?;
        rule.verdict(&seen)
    }
}

impl Classifier for Rules {
    fn configure(config: &str) -> Result<Self, String> {
        let Config { rules } = grantpool_plugin_sdk::config::parse(config)?;
        let rules = rules.iter().enumerate().map(|(i, v)| Rule::compile(i, v)).collect::<Result<_, _>>()?;
        Ok(Rules { rules })
    }

    fn classify(&mut self, failure: &Failure) -> Option<Verdict> {
        self.judge(failure)
    }
}

grantpool_plugin_sdk::export_classifier!(Rules);

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"rules": [
        {"phase": "token-refresh", "body_contains": "invalid_grant", "action": "disable", "reason_prefix": "invalid_grant"},
        {"phase": "upstream", "status": 429, "action": "cooldown"}
    ]}"#;

    fn failure(phase: Phase, status: Option<u16>, body: &str) -> Failure {
        Failure {
            phase,
            status,
            body: body.into(),
            headers: vec![],
            network_error: status.is_none(),
            account_id: "acc0".into(),
            email: "a@example.com".into(),
            model: matches!(phase, Phase::Upstream).then(|| "gemini-2.5-pro".to_string()),
            attempt: 1,
        }
    }

    /// The WIT types have no `PartialEq`; their `Debug` shows every field.
    #[track_caller]
    fn assert_v(actual: Option<Verdict>, expected: Option<Verdict>) {
        assert_eq!(format!("{actual:?}"), format!("{expected:?}"));
    }

    fn rules(json: &str) -> Rules {
        Rules::configure(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn refused(json: &str) -> String {
        Rules::configure(json).err().expect("config must be refused")
    }

    const GRANT: &str = r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;

    #[test]
    fn spec_example_disables_invalid_grant_and_cools_429() {
        let r = rules(SPEC);
        assert_v(
            r.judge(&failure(Phase::TokenRefresh, Some(400), GRANT)),
            Some(Verdict::Disable("invalid_grant: Token has been expired or revoked.".into())),
        );
        // Not at the token endpoint: no rule.
        assert_v(r.judge(&failure(Phase::Upstream, Some(400), GRANT)), None);
        // Other refresh failures are not for this table.
        assert_v(r.judge(&failure(Phase::TokenRefresh, Some(500), "oops")), None);
        assert_v(r.judge(&failure(Phase::TokenRefresh, None, "connection refused")), None);

        let body = r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}"#;
        let Some(Verdict::Cooldown(c)) = r.judge(&failure(Phase::Upstream, Some(429), body)) else { panic!() };
        assert_eq!(c.duration_ms, Some(12_000));
        assert!(matches!(c.scope, CooldownScope::Model));
        assert_eq!(c.reason, "rule: 429 RESOURCE_EXHAUSTED: Resource has been exhausted");
        // No delay anywhere: the host's default.
        let Some(Verdict::Cooldown(c)) = r.judge(&failure(Phase::Upstream, Some(429), "slow down")) else { panic!() };
        assert_eq!(c.duration_ms, None);
        assert_eq!(c.reason, "rule: slow down");
        // Retry-After.
        let mut f = failure(Phase::Upstream, Some(429), "");
        f.headers = vec![("retry-after".into(), "7".into())];
        let Some(Verdict::Cooldown(c)) = r.judge(&f) else { panic!() };
        assert_eq!(c.duration_ms, Some(7_000));
        assert_eq!(c.reason, "rule: HTTP 429");
    }

    #[test]
    fn every_match_key_works() {
        let r = rules(
            r#"{"rules": [
            {"network_error": true, "action": "retry_next"},
            {"oauth_error": "token_revoked", "action": "disable", "reason_prefix": "token_revoked"},
            {"status_range": [500, 599], "body_regex": "(?i)overloaded|unavailable", "action": "retry_same", "after": "250ms"},
            {"status_range": [500, 599], "action": "pass_to_client"},
            {"header": {"name": "X-Reason", "contains": "quota"}, "action": "cooldown", "duration": 30, "scope": "account", "reason": "quota header"},
            {"header": {"name": "x-validate"}, "action": "proxy_disable"},
            {"status": 401, "action": "refresh_and_retry"},
            {"status": 403, "body_contains": "keep-going", "action": "none"},
            {"status": 403, "action": "proxy_disable", "reason_prefix": "403"},
            {"match_all": true, "phase": "upstream", "action": "retry_next"}
        ]}"#,
        );
        let up = |status, body| failure(Phase::Upstream, status, body);
        assert_v(r.judge(&up(None, "timeout")), Some(Verdict::RetryNextAccount));
        assert_v(
            r.judge(&failure(Phase::TokenRefresh, Some(400), r#"{"error":"token_revoked"}"#)),
            Some(Verdict::Disable("token_revoked".into())),
        );
        assert_v(r.judge(&up(Some(503), "The model is OVERLOADED")), Some(Verdict::RetrySameAccount(250)));
        assert_v(r.judge(&up(Some(500), "boom")), Some(Verdict::PassToClient));
        let mut f = up(Some(400), "x");
        f.headers = vec![("x-reason".into(), "daily quota".into())];
        assert_v(
            r.judge(&f),
            Some(Verdict::Cooldown(Cooldown {
                duration_ms: Some(30_000),
                scope: CooldownScope::Account,
                reason: "quota header".into(),
            })),
        );
        f.headers = vec![("x-reason".into(), "other".into()), ("x-validate".into(), String::new())];
        assert_v(r.judge(&f), Some(Verdict::ProxyDisable("rule: x".into())));
        assert_v(r.judge(&up(Some(401), "")), Some(Verdict::RefreshAndRetry));
        // `none` stops the table: the broader 403 rule is not reached.
        assert_v(r.judge(&up(Some(403), "keep-going")), None);
        assert_v(r.judge(&up(Some(403), "denied")), Some(Verdict::ProxyDisable("403: denied".into())));
        assert_v(r.judge(&up(Some(418), "teapot")), Some(Verdict::RetryNextAccount));
        assert_v(r.judge(&failure(Phase::TokenRefresh, Some(418), "teapot")), None);
    }

    #[test]
    fn reasons_are_bounded_and_retry_same_has_a_default() {
        let r = rules(
            r#"{"rules": [
            {"status": 400, "action": "disable"},
            {"status": 409, "action": "retry_same"}
        ]}"#,
        );
        let long = "é".repeat(500);
        let Some(Verdict::Disable(reason)) = r.judge(&failure(Phase::TokenRefresh, Some(400), &long)) else { panic!() };
        assert_eq!(reason.chars().count(), "rule: ".len() + DETAIL_CHARS + 1);
        assert_v(r.judge(&failure(Phase::Upstream, Some(409), "")), Some(Verdict::RetrySameAccount(1_000)));
    }

    #[test]
    fn mistakes_are_refused_naming_rule_and_key() {
        for (json, words) in [
            (
                r#"{"rules": [{"status": 429, "action": "cooldown", "colour": "red"}]}"#,
                vec!["rules[0]", "unknown field `colour`"],
            ),
            (
                r#"{"rules": [{"status": 1, "action": "retry_next"}, {"status": 429, "action": "explode"}]}"#,
                vec!["rules[1]", "unknown variant `explode`"],
            ),
            (r#"{"rules": [{"status": 429}]}"#, vec!["rules[0]", "missing field `action`"]),
            (
                r#"{"rules": [{"body_regex": "(unclosed", "action": "disable"}]}"#,
                vec!["rules[0]", "body_regex", "does not compile"],
            ),
            (r#"{"rules": [{"action": "disable"}]}"#, vec!["rules[0]", "no match key", "match_all"]),
            (
                r#"{"rules": [{"status": 1, "status_range": [1, 2], "action": "disable"}]}"#,
                vec!["rules[0]", "not both"],
            ),
            (r#"{"rules": [{"status_range": [5, 2], "action": "disable"}]}"#, vec!["rules[0]", "status_range"]),
            (
                r#"{"rules": [{"status": 429, "action": "cooldown", "duration": "soon"}]}"#,
                vec!["rules[0]", "`duration`", "not a duration"],
            ),
            (
                r#"{"rules": [{"status": 429, "action": "disable", "duration": "5s"}]}"#,
                vec!["rules[0]", "`duration` applies only"],
            ),
            (
                r#"{"rules": [{"status": 429, "action": "retry_next", "reason": "x"}]}"#,
                vec!["rules[0]", "`reason` applies only"],
            ),
            (
                r#"{"rules": [{"phase": "refresh", "action": "disable"}]}"#,
                vec!["rules[0]", "unknown variant `refresh`"],
            ),
            (
                r#"{"rules": [{"header": {"name": "a", "has": "b"}, "action": "disable"}]}"#,
                vec!["rules[0]", "unknown field `has`"],
            ),
            (r#"{"rules": ["disable"]}"#, vec!["rules[0]", "expected a table"]),
            (r#"{"rule": []}"#, vec!["unknown field `rule`"]),
            (r#"{}"#, vec!["missing field `rules`"]),
        ] {
            let err = refused(json);
            for w in words {
                assert!(err.contains(w), "{json}: `{w}` not in: {err}");
            }
        }
        // A catch-all is fine when it says so.
        assert!(Rules::configure(r#"{"rules": [{"match_all": true, "action": "retry_next"}]}"#).is_ok());
    }
}
