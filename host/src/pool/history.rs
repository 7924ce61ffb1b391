//! Each account's history in words ([`AccountEvent`]: verdicts and the
//! classifier that gave them, disables, cooldowns, recoveries), the lines
//! written when an account joins or its record changes, and the news of
//! changes broadcast to whoever watches the pool ([`PoolNews`]).

use serde::Serialize;

use crate::store::{AccountFile, TokenData};

/// Entries kept in each account's history (the page's "why" panel).
pub const HISTORY_CAP: usize = 64;

/// What kind of thing happened to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The account joined the pool (start-up or a new record).
    Added,
    /// A classifier judged a failure (the verdict, and which classifier).
    Verdict,
    /// A shadow classifier said what it would have done.
    Shadow,
    /// Disabled (dead refresh token).
    Disabled,
    /// Taken off the proxy.
    OffProxy,
    /// Back on the proxy.
    BackOnProxy,
    /// A cooldown was set.
    Cooldown,
    /// A cooldown ended.
    CooldownOver,
    /// Enabled again after being disabled (a new refresh token).
    Recovered,
    /// Anything else worth a line (labels changed, the guard intervened).
    Note,
}

/// One line of an account's history, in words. Never holds a token: texts
/// are built from verdicts, reasons and Google's error messages, and the
/// account's own tokens are scrubbed from them on the way in.
#[derive(Debug, Clone, Serialize)]
pub struct AccountEvent {
    /// When, Unix ms.
    pub at_ms: u64,
    /// What kind of thing.
    pub kind: EventKind,
    /// What happened.
    pub text: String,
    /// The classifier plugin that decided, for verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What the failure said (Google's message, the OAuth error), shortened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A change for whoever watches the pool (the accounts page). Sent only
/// while someone listens.
#[derive(Debug, Clone)]
pub enum PoolNews {
    /// The account's state or record changed: read it again.
    Changed(String),
    /// The account left the pool (its record was removed).
    Removed(String),
    /// A new line in the account's history.
    Event {
        /// The account.
        id: String,
        /// The line.
        event: AccountEvent,
    },
}

/// The account's own tokens, cut out of a text for its history (Google's
/// messages never carry them; this makes sure).
pub(super) fn scrub(mut text: String, token: &TokenData) -> String {
    for secret in [&token.refresh_token, &token.access_token] {
        if secret.len() >= 8 && text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "[token]");
        }
    }
    text
}

/// The history line of an account that joins the pool.
pub(super) fn joined(file: &AccountFile) -> Vec<(EventKind, String)> {
    let state = if file.disabled {
        format!("disabled: {}", file.disabled_reason.as_deref().unwrap_or("no reason recorded"))
    } else if file.proxy_disabled {
        format!("off the proxy: {}", file.proxy_disabled_reason.as_deref().unwrap_or("no reason recorded"))
    } else {
        "active".to_string()
    };
    vec![(EventKind::Added, format!("in the pool ({state})"))]
}

/// History lines for the state changes between two records of an account.
pub(super) fn transitions(before: &AccountFile, after: &AccountFile) -> Vec<(EventKind, String)> {
    let mut out = Vec::new();
    match (before.disabled, after.disabled) {
        (false, true) => out.push((EventKind::Disabled, format!("disabled: {}", after.disabled_reason.as_deref().unwrap_or("no reason recorded")))),
        (true, false) if before.token.refresh_token != after.token.refresh_token => {
            out.push((EventKind::Recovered, "enabled again: re-added with a new refresh token".to_string()))
        }
        (true, false) => out.push((EventKind::Recovered, "enabled again (the record's disabled flag was cleared)".to_string())),
        _ => {}
    }
    match (before.proxy_disabled, after.proxy_disabled) {
        (false, true) => out.push((EventKind::OffProxy, format!("taken off the proxy: {}", after.proxy_disabled_reason.as_deref().unwrap_or("no reason recorded")))),
        (true, false) => out.push((EventKind::BackOnProxy, "back on the proxy".to_string())),
        _ => {}
    }
    if before.labels != after.labels {
        let labels: Vec<String> = after.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push((EventKind::Note, format!("labels now: {}", if labels.is_empty() { "none".to_string() } else { labels.join(", ") })));
    }
    out
}
