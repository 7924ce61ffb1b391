//! The tokens each account served in its current 5-hour and weekly quota
//! windows ([`Served`]), summed from the usage log at most once per
//! [`FRESH`]: the accounts table shows them next to the window bars.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::pool::AccountView;
use crate::proxy::state::ProxyState;
use crate::store::QuotaWindow;

/// How long the per-account sums are reused: a page of many accounts, its
/// events and its polls ask SQLite once in this long, not once a row.
pub const FRESH: Duration = Duration::from_secs(10);

const FIVE_HOURS_MS: u64 = 5 * 3600 * 1000;
const WEEK_MS: u64 = 7 * 86_400 * 1000;

/// Tokens an account served since a window's start.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct WindowUse {
    /// Input + output tokens.
    pub tokens: u64,
    /// The window's start, Unix ms (its reset less its length, or now less
    /// its length when Google gave no window).
    pub since_ms: u64,
}

/// What an account served in its current 5-hour and weekly windows.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ServedTokens {
    /// The 5-hour window.
    pub five_hour: WindowUse,
    /// The weekly window.
    pub weekly: WindowUse,
}

/// Account id → what it served.
pub type ServedMap = Arc<HashMap<String, ServedTokens>>;

/// The per-account sums, refreshed at most once per [`FRESH`] (one
/// refresh at a time).
#[derive(Default)]
pub struct Served {
    cache: Mutex<Option<(Instant, ServedMap)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Served {
    /// The last sums, however old (empty before the first refresh): rows
    /// read this, never SQLite.
    pub fn current(&self) -> ServedMap {
        self.cache.lock().as_ref().map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn fresh_enough(&self) -> Option<ServedMap> {
        self.cache.lock().as_ref().filter(|(at, _)| at.elapsed() < FRESH).map(|(_, m)| m.clone())
    }

    /// Sums at most [`FRESH`] old, refreshed (off the async threads) when
    /// older. A failed read keeps the last sums, and is retried after
    /// [`FRESH`] rather than on every call.
    pub async fn fresh(&self, proxy: &ProxyState) -> ServedMap {
        if let Some(m) = self.fresh_enough() {
            return m;
        }
        let _one = self.refresh.lock().await;
        if let Some(m) = self.fresh_enough() {
            return m;
        }
        let views = proxy.dispatcher.pool.views();
        let usage = proxy.usage.clone();
        let sums = tokio::task::spawn_blocking(move || sums(&usage, &views, crate::util::now_ms())).await;
        let map = match sums {
            Ok(Ok(m)) => Arc::new(m),
            Ok(Err(e)) => {
                tracing::warn!("accounts page: cannot read the tokens accounts served from the usage log: {e}");
                self.current()
            }
            Err(e) => {
                tracing::warn!("accounts page: the usage read failed: {e}");
                self.current()
            }
        };
        *self.cache.lock() = Some((Instant::now(), map.clone()));
        map
    }
}

/// The start of an account's current window of kind `window` (`5h`,
/// `weekly`): Gemini's bucket first, as the rows show them; a reset that
/// has passed (windows not fetched again yet) counts as none.
fn window_start(windows: &BTreeMap<String, QuotaWindow>, window: &str, span_ms: u64, now_ms: u64) -> u64 {
    let resets = windows.iter().filter(|(_, w)| w.window == window).filter_map(|(bucket, w)| {
        let gemini = matches!(w.family(bucket), Some(crate::store::ModelFamily::Gemini));
        let reset_ms = u64::try_from(w.reset_at?).ok()?.checked_mul(1000)?;
        (reset_ms > now_ms).then_some((!gemini, reset_ms))
    });
    match resets.min() {
        Some((_, reset_ms)) => reset_ms.saturating_sub(span_ms),
        None => now_ms.saturating_sub(span_ms),
    }
}

/// One query per kind of window, for every account at once (the log takes
/// one window per account and call).
fn sums(usage: &crate::usage::UsageLog, views: &[AccountView], now_ms: u64) -> Result<HashMap<String, ServedTokens>, crate::usage::UsageError> {
    // Usage off: nothing to show (not "0 tokens").
    if !usage.is_enabled() {
        return Ok(HashMap::new());
    }
    let five: Vec<(String, u64)> = views.iter().map(|v| (v.id.clone(), window_start(&v.quota_windows, "5h", FIVE_HOURS_MS, now_ms))).collect();
    let week: Vec<(String, u64)> = views.iter().map(|v| (v.id.clone(), window_start(&v.quota_windows, "weekly", WEEK_MS, now_ms))).collect();
    let in_five = usage.tokens_by_account_since(&five)?;
    let in_week = usage.tokens_by_account_since(&week)?;
    Ok(five
        .iter()
        .zip(&week)
        .map(|((id, five_since), (_, week_since))| {
            let got = |m: &HashMap<String, u64>| m.get(id).copied().unwrap_or(0);
            let served = ServedTokens {
                five_hour: WindowUse { tokens: got(&in_five), since_ms: *five_since },
                weekly: WindowUse { tokens: got(&in_week), since_ms: *week_since },
            };
            (id.clone(), served)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::ui::served::*;

    fn window(kind: &str, reset_at: Option<i64>) -> QuotaWindow {
        QuotaWindow { window: kind.into(), reset_at, ..Default::default() }
    }

    #[test]
    fn a_window_starts_at_its_reset_less_its_length() {
        let now = 1_000_000_000_000u64;
        let reset = (now / 1000 + 3600) as i64;
        let mut w = BTreeMap::new();
        // Without windows: the last 5 hours.
        assert_eq!(window_start(&w, "5h", FIVE_HOURS_MS, now), now - FIVE_HOURS_MS);
        w.insert("3p-5h".to_string(), window("5h", Some(reset + 600)));
        w.insert("gemini-5h".to_string(), window("5h", Some(reset)));
        w.insert("gemini-weekly".to_string(), window("weekly", Some(reset + 86_400)));
        // Gemini's bucket first, as the rows show it.
        assert_eq!(window_start(&w, "5h", FIVE_HOURS_MS, now), reset as u64 * 1000 - FIVE_HOURS_MS);
        assert_eq!(window_start(&w, "weekly", WEEK_MS, now), (reset as u64 + 86_400) * 1000 - WEEK_MS);
        // A reset that has passed (not fetched again yet) counts as none.
        w.insert("gemini-5h".to_string(), window("5h", Some((now / 1000 - 10) as i64)));
        assert_eq!(window_start(&w, "5h", FIVE_HOURS_MS, now), (reset as u64 + 600) * 1000 - FIVE_HOURS_MS);
    }
}
