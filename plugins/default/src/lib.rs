//! `default`: the classifier grantpool runs when the policy names no other.
//! It reads Google's own error bodies (ErrorInfo `reason`, RetryInfo
//! `retryDelay`, `quotaResetDelay` / `quotaResetTimeStamp`, Help links),
//! as gemini-cli's `googleQuotaErrors.ts` and CLIProxyAPI's antigravity
//! executor read them.
//!
//! - token refresh answered with the OAuth error `invalid_grant` → disable
//!   (`invalid_grant: <description>`). Only that: a network error, a 5xx, a
//!   429 or `invalid_client` never disables an account.
//! - 429 `RATE_LIMIT_EXCEEDED` → the account cools down for the `retryDelay`
//!   (short: at most `rate_limit_max_secs`).
//! - 429 `QUOTA_EXHAUSTED` → that model cools down on the account until the
//!   quota resets, but at most `quota_probe_after_secs`: then one request
//!   probes it again (a week-long reset neither latches for a week nor is
//!   retried every minute). Any other 429 → the model, for its delay.
//! - 503 `MODEL_CAPACITY_EXHAUSTED` → that model cools down for the
//!   `retryDelay` (default `capacity_cooldown_secs`), another account serves.
//! - 401 → refresh the token and retry once on the same account.
//! - 403 `VALIDATION_REQUIRED` → off the proxy, with the validation URL
//!   (`metadata.validation_url`, else the first Help link) in the reason;
//!   403 `SERVICE_DISABLED` → off the proxy with Google's message;
//!   403 `TOS_VIOLATION` (a ban: CLIProxyAPI #1823) → off the proxy with the
//!   appeal URL; the licence 403 `#3501` (`SUBSCRIPTION_REQUIRED`) → off the
//!   proxy; a 403 `UNSUPPORTED_CLIENT` (an OAuth client Google retired,
//!   gemini-cli #28846) → off the proxy, saying to sign in again with
//!   Antigravity's client; 400 `User location is not supported` → off the
//!   proxy. Never a disable: only a dead grant is.
//! - 5xx / network → another account, no penalty.
//! - 400 / 404 / 413 → the request itself is wrong: pass it back to the
//!   client rather than burn through the pool.
//!
//! Config (all optional): `{ "cooldown_default_secs": 60,
//! "rate_limit_max_secs": 300, "quota_probe_after_secs": 3600,
//! "capacity_cooldown_secs": 30 }`.

use grantpool_plugin_sdk::classifier::{
    google_error, oauth_error, retry_after_ms, Classifier, Cooldown, CooldownScope, Failure, GoogleError,
    Phase, Verdict,
};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Cooldown when a 429 names no delay.
    cooldown_default_secs: u64,
    /// Longest cooldown for a `RATE_LIMIT_EXCEEDED` (a per-minute limit).
    rate_limit_max_secs: u64,
    /// Longest a `QUOTA_EXHAUSTED` model is left alone before a probe.
    quota_probe_after_secs: u64,
    /// Cooldown of a model out of capacity when Google names no delay.
    capacity_cooldown_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config { cooldown_default_secs: 60, rate_limit_max_secs: 300, quota_probe_after_secs: 3600, capacity_cooldown_secs: 30 }
    }
}

/// The default classifier and its settings (public for the fuzz target in
/// plugins/fuzz).
pub struct Default_ {
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
    let invalid_grant = f.status.is_some_and(|s| (400..500).contains(&s)) && oauth_error(&f.body).is_some_and(|e| e.error == "invalid_grant");
    Some(match oauth_error(&f.body) {
        Some(err) if invalid_grant => Verdict::Disable(err.summary()),
        // Anything else — a network error, a 5xx or 429 of the token
        // endpoint, `invalid_client` / `unauthorized_client` (the OAuth
        // client is wrong, not the account) — is no fault of the account:
        // another account serves, and this one keeps no mark.
        _ => Verdict::RetryNextAccount,
    })
}

fn cooldown(ms: u64, scope: CooldownScope, reason: String) -> Option<Verdict> {
    Some(Verdict::Cooldown(Cooldown { duration_ms: Some(ms.max(1)), scope, reason }))
}

/// The first reason of a Google answer, in words for a cooldown reason.
fn reason_of(status: u16, g: &GoogleError) -> String {
    match (g.reasons.first(), &g.status) {
        (Some(r), _) => format!("{status} {r}"),
        (None, Some(s)) => format!("{status} {s}"),
        _ => format!("{status} rate limited"),
    }
}

impl Default_ {
    fn upstream(&self, f: &Failure) -> Option<Verdict> {
        if f.network_error {
            return Some(Verdict::RetryNextAccount);
        }
        let status = f.status?;
        let g = google_error(&f.body).unwrap_or_default();
        let has = |r: &str| g.reasons.iter().any(|x| x == r);
        let secs = |s: u64| s * 1000;
        match status {
            429 if has("QUOTA_EXHAUSTED") => {
                let now = grantpool_plugin_sdk::now_ms();
                let until_reset = g.reset_at_ms.map(|at| at.saturating_sub(now)).or(g.retry_delay_ms).or_else(|| retry_after_ms(f));
                let ms = until_reset.unwrap_or(secs(self.config.quota_probe_after_secs)).min(secs(self.config.quota_probe_after_secs));
                let reset = match until_reset {
                    Some(r) if r > ms => format!(" (resets in {}h; probed again sooner)", (r + 1_800_000) / 3_600_000),
                    _ => String::new(),
                };
                cooldown(ms, CooldownScope::Model, format!("429 QUOTA_EXHAUSTED{reset}"))
            }
            429 if has("RATE_LIMIT_EXCEEDED") => {
                let ms = g.retry_delay_ms.or_else(|| retry_after_ms(f)).unwrap_or(secs(self.config.cooldown_default_secs));
                cooldown(ms.min(secs(self.config.rate_limit_max_secs)), CooldownScope::Account, "429 RATE_LIMIT_EXCEEDED".into())
            }
            503 | 429 if has("MODEL_CAPACITY_EXHAUSTED") || has("MODEL_CAPACITY_EXCEEDED") => {
                let ms = g.retry_delay_ms.or_else(|| retry_after_ms(f)).unwrap_or(secs(self.config.capacity_cooldown_secs));
                cooldown(ms, CooldownScope::Model, reason_of(status, &g))
            }
            429 => {
                let ms = g.retry_delay_ms.or_else(|| retry_after_ms(f)).unwrap_or(secs(self.config.cooldown_default_secs));
                cooldown(ms, CooldownScope::Model, reason_of(status, &g))
            }
            401 => Some(Verdict::RefreshAndRetry),
            403 if has("VALIDATION_REQUIRED") || f.body.contains("VALIDATION_REQUIRED") => {
                let url = g.url.map(|u| format!(": {u}")).unwrap_or_default();
                Some(Verdict::ProxyDisable(format!("403 VALIDATION_REQUIRED: verify the account in a browser{url}")))
            }
            403 if has("TOS_VIOLATION") => {
                let url = g.url.map(|u| format!(" Appeal: {u}")).unwrap_or_default();
                Some(Verdict::ProxyDisable(format!(
                    "403 TOS_VIOLATION: Google says \"{}\"{url} — then `grantpool accounts enable` it",
                    if g.message.is_empty() { "This service has been disabled in this account for violation of Terms of Service." } else { &g.message }
                )))
            }
            403 if has("SUBSCRIPTION_REQUIRED") || f.body.contains("(#3501)") => Some(Verdict::ProxyDisable(format!(
                "403 #3501 licence: Google says \"{}\" — the account has no valid licence for this product; ask its administrator (or Google One) for one, then `grantpool accounts enable` it",
                if g.message.is_empty() { "no valid licence (#3501)" } else { &g.message }
            ))),
            403 if has("UNSUPPORTED_CLIENT") || f.body.contains("This client is no longer supported") => Some(Verdict::ProxyDisable(format!(
                "403 UNSUPPORTED_CLIENT: Google says \"{}\" — the OAuth client this account signed in with is retired; sign it in again with Antigravity's client (`grantpool accounts login`, or `grantpool accounts import agy`)",
                if g.message.is_empty() { "This client is no longer supported" } else { &g.message }
            ))),
            400 if f.body.contains("User location is not supported") => Some(Verdict::ProxyDisable(format!(
                "400 UNSUPPORTED_LOCATION: Google says \"{}\" — the account (or its network) is in a region Google does not serve; route it through a supported region, then `grantpool accounts enable` it",
                g.message
            ))),
            403 if has("SERVICE_DISABLED") => {
                let message = if g.message.is_empty() { "the Code Assist API is disabled for the account's project".to_string() } else { g.message.clone() };
                Some(Verdict::ProxyDisable(format!("403 SERVICE_DISABLED: {message}")))
            }
            403 => Some(Verdict::RetryNextAccount),
            400 | 404 | 413 | 422 => Some(Verdict::PassToClient),
            500..=599 => Some(Verdict::RetryNextAccount),
            _ => None,
        }
    }
}

grantpool_plugin_sdk::export_classifier!(Default_);
