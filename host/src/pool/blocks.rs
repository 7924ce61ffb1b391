//! Why an account may not serve a model: the quota-protection rule's
//! blocks, Google's used-up 5-hour and weekly windows, and the tally of a
//! pool that cannot serve (what the 503 says). Pure: the pool calls these
//! under its own lock.

use std::collections::HashMap;

use super::{AccountState, AccountView, Block, ModelBlockView, QuotaRule, WindowBlock};
use crate::store::AccountFile;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{quota_view, Pool};
    use crate::store::{QuotaWindow, TokenData};
    use crate::util::now_ms;

    fn account(id: &str, windows: &[(&str, f64, Option<i64>)]) -> AccountFile {
        let mut file = AccountFile::new(id, format!("{id}@example.com"), TokenData::new("at", format!("rt-{id}"), 0), 1);
        for (bucket, fraction, reset_at) in windows {
            let window = if bucket.ends_with("5h") { "5h" } else { "weekly" };
            file.quota_windows.insert(
                bucket.to_string(),
                QuotaWindow { window: window.into(), remaining_fraction: Some(*fraction), reset_at: *reset_at, ..QuotaWindow::default() },
            );
        }
        file
    }

    #[test]
    fn quota_window_used_up_keeps_its_family_off() {
        let later = crate::util::now_secs() + 3 * 86_400;
        let pool = Pool::new();
        let a = pool.upsert_file(account("a", &[("gemini-weekly", 0.0, Some(later)), ("3p-5h", 0.5, Some(later))]));
        let b = pool.upsert_file(account("b", &[("gemini-weekly", 1.0, Some(later))]));
        let now = now_ms();
        assert_eq!(pool.unavailable_for("gemini-2.5-pro", now), vec![a.slot]);
        assert!(pool.unavailable_for("claude-sonnet-4-6", now).is_empty(), "another family");
        assert!(pool.unavailable_for("gpt-oss-120b-medium", now).is_empty());
        // A window whose reset has passed keeps nobody off.
        pool.upsert_file(account("a", &[("gemini-weekly", 0.0, Some(crate::util::now_secs() - 1))]));
        assert!(pool.unavailable_for("gemini-2.5-pro", now_ms()).is_empty());
        // No reset time: held for a while (the next poll says more).
        pool.upsert_file(account("a", &[("gemini-5h", 0.0, None)]));
        assert_eq!(pool.unavailable_for("gemini-2.5-flash", now_ms()), vec![a.slot]);
        // Both used up: the message names the window and its reset.
        pool.upsert_file(account("a", &[("gemini-weekly", 0.0, Some(later))]));
        pool.upsert_file(account("b", &[("gemini-weekly", 0.0, Some(later + 3600))]));
        let why = pool.why_none("gemini-2.5-pro");
        assert!(why.contains("2 with Google's gemini-weekly quota window used up (first reset "), "{why}");
        assert!(why.contains(&crate::util::utc_time(later)), "{why}");
        assert_eq!(pool.soonest_back("gemini-2.5-pro"), Some(later as u64 * 1000));
        let view = pool.view(&b.id).unwrap();
        assert_eq!(view.model_cooldowns[0].window.as_deref(), Some("gemini-weekly"));
        assert_eq!(view.model_cooldowns[0].model, "gemini*");
        // Weighted selectors see the lower of a model's quota and its windows'.
        let mut file = account("c", &[("gemini-5h", 0.25, Some(later))]);
        file.quota.insert("gemini-2.5-pro".into(), crate::store::ModelQuota { remaining_fraction: 0.9, reset_at: None });
        file.quota.insert("claude-sonnet-4-6".into(), crate::store::ModelQuota { remaining_fraction: 0.9, reset_at: None });
        let q = quota_view(&file);
        let of = |m: &str| q.iter().find(|x| x.model == m).unwrap().remaining_fraction;
        assert_eq!((of("gemini-2.5-pro"), of("claude-sonnet-4-6")), (0.25, 0.9));
    }
}
