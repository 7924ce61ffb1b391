//! `default`: the classifier grantpool runs when the policy names no other.
//!
//! - token refresh answered with the OAuth error `invalid_grant` → disable
//!   (`invalid_grant: <description>`). Only that: a network error, a 5xx, a
//!   429 or `invalid_client` never disables an account.
//! - upstream 429 → cool the model (or the account, when the quota is
//!   exhausted for the whole account) down for the delay the answer gives.
//! - upstream 401 → refresh the token and retry once on the same account.
//! - upstream 403 `VALIDATION_REQUIRED` → take the account off the proxy,
//!   with the validation URL in the reason.
//! - upstream 5xx / overloaded → another account, no penalty.
//! - upstream 400 / 404 / 413 → the request itself is wrong: pass it back
//!   to the client rather than burn through the pool.
//!
//! Config (all optional): `{ "cooldown_default_secs": 60 }`.

use grantpool_plugin_sdk::classifier::{
    google_error, oauth_error, retry_after_ms, Classifier, Cooldown, CooldownScope, Failure, Phase,
    Verdict,
};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Cooldown when a 429 names no delay.
    cooldown_default_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { cooldown_default_secs: 60 }
    }
}

struct Default_ {
    config: Config,
}

impl Classifier for Default_ {
    fn configure(config: &str) -> Result<Self, String> {
        Ok(Default_ { config: grantpool_plugin_sdk::config::parse(config)? })
    }

    fn classify(&mut self, f: &Failure) -> Option<Verdict> {
        match f.phase {
            Phase::TokenRefresh => token_refresh(f),
            Phase::Upstream => self.upstream(f),
        }
    }
}

fn token_refresh(f: &Failure) -> Option<Verdict> {
    if f.network_error {
        return Some(Verdict::RetryNextAccount);
    }
    let status = f.status?;
    let err = oauth_error(&f.body)?;
    if (400..500).contains(&status) && err.error == "invalid_grant" {
        return Some(Verdict::Disable(err.summary()));
    }
    None
}

impl Default_ {
    fn upstream(&self, f: &Failure) -> Option<Verdict> {
        if f.network_error {
            return Some(Verdict::RetryNextAccount);
        }
        let status = f.status?;
        let google = google_error(&f.body);
        match status {
            429 => {
                let g = google.unwrap_or_default();
                let delay = g.retry_delay_ms.or_else(|| retry_after_ms(f));
                // A daily quota that is gone covers the whole account's use
                // of the model; a rate limit is short. Both are per model.
                let exhausted = g.reasons.iter().any(|r| r == "QUOTA_EXHAUSTED");
                let reason = match (&g.status, g.reasons.first()) {
                    (_, Some(r)) => format!("429 {r}"),
                    (Some(s), None) => format!("429 {s}"),
                    _ => "429 rate limited".to_string(),
                };
                Some(Verdict::Cooldown(Cooldown {
                    duration_ms: Some(delay.unwrap_or(if exhausted {
                        3_600_000
                    } else {
                        self.config.cooldown_default_secs * 1000
                    })),
                    scope: CooldownScope::Model,
                    reason,
                }))
            }
            401 => Some(Verdict::RefreshAndRetry),
            403 => {
                let g = google.unwrap_or_default();
                if g.reasons.iter().any(|r| r == "VALIDATION_REQUIRED")
                    || f.body.contains("VALIDATION_REQUIRED")
                {
                    let url = g.url.map(|u| format!(": {u}")).unwrap_or_default();
                    Some(Verdict::ProxyDisable(format!(
                        "403 VALIDATION_REQUIRED: verify the account in a browser{url}"
                    )))
                } else {
                    Some(Verdict::RetryNextAccount)
                }
            }
            400 | 404 | 413 | 422 => Some(Verdict::PassToClient),
            500..=599 => Some(Verdict::RetryNextAccount),
            _ => None,
        }
    }
}

grantpool_plugin_sdk::export_classifier!(Default_);
