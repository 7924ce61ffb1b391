//! The pool's quota-window blocks, end to end: used-up windows keep their
//! family off, the 503 names them, selectors see the lower fraction.

use crate::pool::{quota_view, Pool};
use crate::store::{AccountFile, QuotaWindow, TokenData};
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

/// A failed request's log line: the accounts nearest to serving first
/// (ready, then the soonest back, then disabled), limited, plus those named.
#[test]
fn nearest_views_rank_without_a_view_of_every_account() {
    let pool = Pool::new();
    let mut dead = account("dead", &[]);
    dead.disabled = true;
    pool.upsert_file(dead);
    pool.upsert_file(account("ready", &[]));
    pool.upsert_file(account("soon", &[]));
    pool.upsert_file(account("later", &[]));
    pool.upsert_file(account("other-model", &[]));
    let now = now_ms();
    pool.set_cooldown("soon", &crate::pool::CooldownScope::Model("gemini-2.5-pro".into()), now + 10_000, "MODEL_CAPACITY_EXHAUSTED");
    pool.set_cooldown("later", &crate::pool::CooldownScope::Account, now + 60_000, "rate limited");
    pool.set_cooldown("other-model", &crate::pool::CooldownScope::Model("gemini-2.5-flash".into()), now + 5_000, "quota");
    let ids = |views: &[crate::pool::AccountView]| views.iter().map(|v| v.id.clone()).collect::<Vec<_>>();
    let (views, total) = pool.nearest_views("gemini-2.5-pro", 10, &|_| false);
    assert_eq!(total, 5);
    let order = ids(&views);
    assert_eq!(order.len(), 5);
    // Ready ones first (a block on another model does not count), then by time back, disabled last.
    assert!(order[..2].contains(&"ready".to_string()) && order[..2].contains(&"other-model".to_string()), "{order:?}");
    assert_eq!(&order[2..], ["soon", "later", "dead"], "{order:?}");
    // Limited, plus whoever the request tried.
    let (views, total) = pool.nearest_views("gemini-2.5-pro", 1, &|id| id == "dead");
    assert_eq!(total, 5);
    let order = ids(&views);
    assert_eq!(order.len(), 2, "{order:?}");
    assert_eq!(order[1], "dead");
}
