//! Why an account may not serve a model: the quota-protection rule's
//! blocks, Google's used-up 5-hour and weekly windows, and the tally of a
//! pool that cannot serve (what the 503 says). Pure: the pool calls these
//! under its own lock.

use std::collections::HashMap;

use super::view::{AccountState, AccountView, ModelBlockView};
use crate::store::{AccountFile, ModelFamily};

/// Quota protection as the policy sets it.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRule {
    /// Remaining fraction under which an account stops serving a model.
    pub threshold: f64,
    /// Models it applies to (empty: all).
    pub models: Vec<String>,
    /// How long to hold off when the reset time is unknown, ms.
    pub unknown_reset_ms: u64,
}

/// A cooldown or a quota block: until when, and why.
#[derive(Debug, Clone)]
pub(super) struct Block {
    /// Until, Unix ms.
    pub(super) until_ms: u64,
    /// Why.
    pub(super) reason: String,
    /// When the block was set (a request that started later and succeeded
    /// ends it early).
    pub(super) since_ms: u64,
}

/// An exhausted quota window: a family of models, until its reset.
#[derive(Debug, Clone)]
pub(super) struct WindowBlock {
    /// The models it covers.
    pub(super) family: ModelFamily,
    /// The bucket id (`gemini-weekly`).
    pub(super) bucket: String,
    /// Until, Unix ms.
    pub(super) until_ms: u64,
    /// Why (`weekly quota window gemini-weekly used up`).
    pub(super) reason: String,
}

/// The pool counted by why its accounts cannot serve a model.
pub(super) struct Tally {
    pub(super) disabled: usize,
    pub(super) grant: usize,
    pub(super) proxy: usize,
    pub(super) cooling: usize,
    pub(super) model_blocked: usize,
    /// Accounts kept off the model by a used-up quota window.
    pub(super) window_blocked: usize,
    /// Per used-up window (bucket id): how many accounts, and the first
    /// reset among them, Unix ms.
    pub(super) windows: std::collections::BTreeMap<String, (usize, u64)>,
    /// When the first resting account is back, Unix ms.
    pub(super) soonest: Option<u64>,
}

impl Tally {
    pub(super) fn of(views: &[AccountView], model: &str, now: u64) -> Tally {
        let mut t = Tally {
            disabled: 0,
            grant: 0,
            proxy: 0,
            cooling: 0,
            model_blocked: 0,
            window_blocked: 0,
            windows: Default::default(),
            soonest: None,
        };
        for v in views {
            match &v.state {
                AccountState::Disabled { reason, .. } => {
                    t.disabled += 1;
                    if reason.as_deref().is_some_and(|r| r.starts_with("invalid_grant")) {
                        t.grant += 1;
                    }
                }
                AccountState::ProxyDisabled { .. } => t.proxy += 1,
                AccountState::CoolingDown { until_ms, .. } => {
                    t.cooling += 1;
                    t.soonest = Some(t.soonest.map_or(*until_ms, |s| s.min(*until_ms)));
                }
                AccountState::Active => {
                    // Back when every block on this model has ended (a
                    // weekly window outlasts a 5-hour one).
                    let blocks: Vec<&ModelBlockView> = v.model_cooldowns.iter().filter(|b| b.until_ms > now && b.covers(model)).collect();
                    let Some(back) = blocks.iter().map(|b| b.until_ms).max() else { continue };
                    let windows: Vec<&&ModelBlockView> = blocks.iter().filter(|b| b.window.is_some()).collect();
                    if windows.is_empty() {
                        t.model_blocked += 1;
                    } else {
                        t.window_blocked += 1;
                        for b in windows {
                            let e = t.windows.entry(b.window.clone().unwrap_or_default()).or_insert((0, b.until_ms));
                            e.0 += 1;
                            e.1 = e.1.min(b.until_ms);
                        }
                    }
                    t.soonest = Some(t.soonest.map_or(back, |s| s.min(back)));
                }
            }
        }
        t
    }
}

/// The models `file`'s quota keeps it off under `rule`: remaining fraction
/// under the threshold, until the reset time (per model, not the account).
pub(super) fn quota_blocks(file: &AccountFile, rule: Option<&QuotaRule>, now: u64) -> HashMap<String, Block> {
    let Some(rule) = rule else { return HashMap::new() };
    file.quota
        .iter()
        .filter(|(model, q)| {
            q.remaining_fraction < rule.threshold && (rule.models.is_empty() || rule.models.iter().any(|m| crate::config::wildcard_match(m, model)))
        })
        .filter_map(|(model, q)| {
            let until = match q.reset_at {
                Some(s) => (s.max(0) as u64) * 1000,
                None => now + rule.unknown_reset_ms,
            };
            (until > now).then(|| {
                let reason = format!("quota {:.0}% < {:.0}% until reset", q.remaining_fraction * 100.0, rule.threshold * 100.0);
                (model.clone(), Block { until_ms: until, reason, since_ms: now })
            })
        })
        .collect()
}

/// How long an exhausted window with no reset time holds an account off
/// its models when no quota rule says (the next poll says more).
const UNKNOWN_WINDOW_RESET_MS: u64 = 600_000;

/// The model families `file`'s used-up quota windows keep it off, each
/// until its window resets. Whatever the quota-protection rule: Google
/// would answer those models with a 429 `QUOTA_EXHAUSTED` anyway. A window
/// of unknown scope is shown, never acted on.
pub(super) fn window_blocks(file: &AccountFile, rule: Option<&QuotaRule>, now: u64) -> Vec<WindowBlock> {
    let unknown = rule.map_or(UNKNOWN_WINDOW_RESET_MS, |r| r.unknown_reset_ms);
    file.quota_windows
        .iter()
        .filter(|(_, w)| w.is_exhausted())
        .filter_map(|(bucket, w)| {
            let family = w.family(bucket)?;
            let until = match w.reset_at {
                Some(s) => (s.max(0) as u64) * 1000,
                None => now + unknown,
            };
            let window = if w.window.is_empty() { "quota" } else { w.window.as_str() };
            (until > now).then(|| WindowBlock {
                family,
                bucket: bucket.clone(),
                until_ms: until,
                reason: format!("{window} quota window {bucket} used up"),
            })
        })
        .collect()
}

/// History lines for windows used up since the last look.
pub(super) fn newly_exhausted(before: &[WindowBlock], after: &[WindowBlock]) -> Vec<String> {
    after
        .iter()
        .filter(|b| !before.iter().any(|o| o.bucket == b.bucket))
        .map(|b| {
            format!(
                "quota window {} used up: off {} until it resets at {}",
                b.bucket,
                b.family.pattern(),
                crate::util::utc_time((b.until_ms / 1000) as i64)
            )
        })
        .collect()
}
