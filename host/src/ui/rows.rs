//! What the page shows, built from the pool on demand: one row per account
//! (never a token: rows are made from [`AccountView`], which has none) and
//! the overview (policy in force, last reload, who may use the page).

use std::collections::BTreeMap;

use serde::Serialize;

use super::activity::Spark;
use super::standing::standing;
use super::state::Ui;
use crate::pool::{AccountState, AccountView, ModelBlockView};

/// One model's last known quota.
#[derive(Debug, Serialize)]
pub struct QuotaRow {
    /// The model.
    pub model: String,
    /// Remaining share, 0..=1.
    pub remaining_fraction: f64,
    /// When it resets, Unix s.
    pub reset_at: Option<i64>,
}

/// One of Google's 5-hour or weekly quota windows, as last fetched.
#[derive(Debug, Serialize)]
pub struct WindowRow {
    /// Google's bucket id (`gemini-weekly`).
    pub bucket: String,
    /// `5h`, `weekly`, or Google's word for another window.
    pub window: String,
    /// The group (`Gemini Models`, `Claude and GPT models`).
    pub group: Option<String>,
    /// Remaining share, 0..=1, when known.
    pub remaining_fraction: Option<f64>,
    /// Google's remaining amount, when it gave one.
    pub remaining_amount: Option<String>,
    /// Nothing left: the account serves none of its models until the reset.
    pub exhausted: bool,
    /// When it resets, Unix s.
    pub reset_at: Option<i64>,
}

/// One account as the page shows it.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// `active`, `disabled`, `off_proxy` or `cooling_down`.
    pub state: &'static str,
    /// The state in words: `active`, `disabled`, `off the proxy`,
    /// `cooling down`.
    pub state_words: &'static str,
    /// Why it is not active (the disable, off-the-proxy or cooldown reason).
    pub reason: Option<String>,
    /// Google's word on an account off the proxy, in a few words (`banned:
    /// Terms of Service`, `no licence`, `sign-in client retired`, …): what
    /// the page shows apart from a hand-made or quota off-the-proxy.
    pub standing: Option<&'static str>,
    /// When that was set, Unix s (disabled, off the proxy).
    pub since: Option<i64>,
    /// End of a whole-account cooldown, Unix ms.
    pub until_ms: Option<u64>,
    /// Models it may not serve for now (cooldowns, quota protection).
    pub cooldowns: Vec<ModelBlockView>,
    /// Last use, Unix s.
    pub last_used: Option<i64>,
    /// Requests in flight.
    pub in_flight: u32,
    /// Requests that ended well on it in this process.
    pub successes: u32,
    /// Requests that failed on it in this process.
    pub failures: u32,
    /// Requests and failures over the last half hour.
    pub spark: Spark,
    /// Per-model quota, as last fetched.
    pub quota: Vec<QuotaRow>,
    /// Google's 5-hour and weekly windows (Gemini's first, 5h before weekly).
    pub windows: Vec<WindowRow>,
    /// Tokens it served in its current 5-hour and weekly windows (from the
    /// usage log, at most [`super::served::FRESH`] old).
    pub served: super::served::ServedTokens,
    /// The OAuth client of its refresh token.
    pub client: String,
    /// The upstream profile it is served with.
    pub profile: &'static str,
    /// Its Code Assist project, once known.
    pub project_id: Option<String>,
    /// Labels (weight, tier, priority, …).
    pub labels: BTreeMap<String, String>,
    /// The egress proxy its calls go through, and its health (never the
    /// URL's credentials); `None`: direct.
    pub egress: Option<crate::egress::ProxyHealth>,
    /// The proxy its record names (`egress = "NAME"`); `None`: the pool's
    /// default.
    pub egress_choice: Option<String>,
}

/// The row of account `id`, if there is one.
pub fn row(ui: &Ui, id: &str) -> Option<Row> {
    let pool = &ui.proxy.dispatcher.pool;
    let slot = pool.get(id)?.slot;
    let served = ui.served.current().get(id).copied().unwrap_or_default();
    Some(row_of(ui, pool.view(id)?, slot, served))
}

/// Every row, sorted by email.
pub fn rows(ui: &Ui) -> Vec<Row> {
    let pool = &ui.proxy.dispatcher.pool;
    // The cached sums: rows never ask SQLite (see `Served::fresh`).
    let served = ui.served.current();
    pool.views()
        .into_iter()
        .filter_map(|v| Some((pool.get(&v.id)?.slot, v)))
        .map(|(slot, v)| {
            let s = served.get(&v.id).copied().unwrap_or_default();
            row_of(ui, v, slot, s)
        })
        .collect()
}

fn row_of(ui: &Ui, v: AccountView, slot: u32, served: super::served::ServedTokens) -> Row {
    let now = crate::util::now_ms();
    let (state, state_words, reason, since, until_ms) = match v.state {
        AccountState::Disabled { reason, at } => ("disabled", "disabled", reason, at, None),
        AccountState::CoolingDown { reason, until_ms } => ("cooling_down", "cooling down", Some(reason), None, Some(until_ms)),
        AccountState::ProxyDisabled { reason, at } => ("off_proxy", "off the proxy", reason, at, None),
        // Serving, but not every model: cooling down for those.
        AccountState::Active if !v.model_cooldowns.is_empty() => ("cooling_down", "cooling down", None, None, None),
        AccountState::Active => ("active", "active", None, None, None),
    };
    let client = v.oauth_client.clone().filter(|c| !c.is_empty()).unwrap_or_else(|| ui.proxy.config.oauth.client.clone());
    let standing = if state == "off_proxy" { reason.as_deref().and_then(standing) } else { None };
    let egress = ui.proxy.dispatcher.upstream.egress.of_account(v.egress.as_deref());
    Row {
        egress_choice: v.egress.clone(),
        egress,
        state,
        state_words,
        standing,
        reason,
        since,
        until_ms,
        cooldowns: v.model_cooldowns,
        last_used: v.last_used,
        in_flight: v.in_flight,
        successes: v.successes,
        failures: v.failures,
        spark: ui.activity.spark(slot, now),
        windows: window_rows(&v.quota_windows),
        served,
        quota: v
            .quota
            .into_iter()
            .map(|(model, q)| QuotaRow { model, remaining_fraction: q.remaining_fraction, reset_at: q.reset_at })
            .collect(),
        profile: ui.proxy.dispatcher.profiles.of(Some(&client)).name,
        client,
        project_id: v.project_id,
        labels: v.labels,
        id: v.id,
        email: v.email,
    }
}

fn window_rows(windows: &BTreeMap<String, crate::store::QuotaWindow>) -> Vec<WindowRow> {
    let mut rows: Vec<WindowRow> = windows
        .iter()
        .map(|(bucket, w)| WindowRow {
            bucket: bucket.clone(),
            window: w.window.clone(),
            group: w.group.clone(),
            remaining_fraction: if w.is_exhausted() { Some(0.0) } else { w.remaining_fraction },
            remaining_amount: w.remaining_amount.clone(),
            exhausted: w.is_exhausted(),
            reset_at: w.reset_at,
        })
        .collect();
    let order = |w: &str| match w {
        "5h" => 0,
        "weekly" => 1,
        _ => 2,
    };
    // Gemini's windows first (the models most accounts serve), 5h before weekly.
    let family = |r: &WindowRow| match windows.get(&r.bucket).and_then(|w| w.family(&r.bucket)) {
        Some(crate::store::ModelFamily::Gemini) => 0,
        Some(crate::store::ModelFamily::ThirdParty) => 1,
        None => 2,
    };
    rows.sort_by(|a, b| (family(a), &a.group, order(&a.window), &a.bucket).cmp(&(family(b), &b.group, order(&b.window), &b.bucket)));
    rows
}

/// The overview: the policy in force (what `policy check` prints), how the
/// last reload went, who may use the page, the OAuth clients to sign in with,
/// the outbound proxies an account may pick (names and health, never a
/// password) and the pool's default.
pub fn overview(ui: &Ui) -> serde_json::Value {
    let config = &ui.proxy.config;
    let handle = &ui.proxy.policy;
    let policy = handle.current();
    let egress = &ui.proxy.dispatcher.upstream.egress;
    let mut clients: Vec<String> = crate::profiles::ALL.iter().map(|p| p.name.to_string()).collect();
    let configured: Vec<String> = config.oauth.clients.keys().filter(|k| !clients.contains(k)).cloned().collect();
    clients.extend(configured);
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "access": ui.access(),
        "listen": config.server.listen,
        "store": ui.proxy.store.location(),
        "policy": {
            "file": policy.file.as_ref().map(|f| f.display().to_string()),
            "describe": policy.describe(),
            "generation": handle.generation(),
            "last_reload": handle.last_reload(),
        },
        "clients": clients,
        "default_client": config.oauth.client,
        "egress": {
            "proxies": egress.named_health(),
            "default": egress.default_health(),
        },
    })
}
