//! Carrying out what the classifier chain decides: disable, take off the
//! proxy, cool down (persisted), or tell the dispatcher how to go on. The
//! disable-storm guard and shadow mode live here, between the verdict and
//! any write.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::oauth::{RefreshError, RefreshFailure};
use crate::plugins::{ClassifyOutcome, CooldownScope as WitScope, Failure, Phase, Verdict};
use crate::policy::{ClassifierMode, Policy};
use crate::pool::{CooldownScope, EventKind, LiveAccount, Pool};
use crate::store::{Cluster, GuardLimits, PersistedCooldown, Store};
use crate::util::now_ms;

/// Cooldown when a verdict gives no duration.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);
/// The first back-off of an account whose failure no classifier answered;
/// it doubles with each such failure in a row, up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const BACKOFF_STEPS: u32 = 9;
/// The longest back-off a bare 429 (no reason) costs an account: such an
/// answer is as often the request's fault as the account's.
pub const WEAK_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How the request goes on after a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Try another account.
    RetryNext,
    /// Try the same account again after a pause.
    RetrySame(Duration),
    /// Refresh the token, then retry once on the same account.
    RefreshAndRetry,
    /// Send the upstream's answer to the client.
    PassToClient,
}

/// Everything known about one failure.
pub struct FailureReport<'a> {
    /// The failure as the classifiers see it.
    pub failure: Failure,
    /// The account it happened on.
    pub account: &'a Arc<LiveAccount>,
    /// The refresh token in use when it happened (guards the disable).
    pub refresh_token: String,
}

/// Counters of what was done, for metrics.
#[derive(Debug, Default)]
pub struct ActionCounters {
    /// Disables carried out.
    pub disables: std::sync::atomic::AtomicU64,
    /// Disables refused by the guard.
    pub guarded: std::sync::atomic::AtomicU64,
    /// Cooldowns set.
    pub cooldowns: std::sync::atomic::AtomicU64,
    /// Proxy-disables.
    pub proxy_disables: std::sync::atomic::AtomicU64,
}

/// The executor of verdicts.
pub struct Actions {
    store: Store,
    pool: Arc<Pool>,
    /// The cluster's shared services: there the storm guard's window is
    /// the whole cluster's (`None`: one node).
    cluster: Option<Arc<dyn Cluster>>,
    /// This node's window (the cluster's while Redis is away).
    recent_disables: Mutex<VecDeque<(u64, String)>>,
    /// What was done.
    pub counters: ActionCounters,
}

fn verdict_name(v: &Verdict) -> String {
    match v {
        Verdict::Disable(r) => format!("disable ({r})"),
        Verdict::ProxyDisable(r) => format!("proxy-disable ({r})"),
        Verdict::Cooldown(c) => format!(
            "cooldown {}ms {:?} ({})",
            c.duration_ms.unwrap_or(DEFAULT_COOLDOWN.as_millis() as u64),
            c.scope,
            c.reason
        ),
        Verdict::RetryNextAccount => "retry-next-account".into(),
        Verdict::RetrySameAccount(ms) => format!("retry-same-account after {ms}ms"),
        Verdict::RefreshAndRetry => "refresh-and-retry".into(),
        Verdict::PassToClient => "pass-to-client".into(),
    }
}

impl Actions {
    /// An executor writing through `store` and updating `pool`.
    pub fn new(store: Store, pool: Arc<Pool>) -> Self {
        Actions { cluster: store.cluster(), store, pool, recent_disables: Mutex::new(VecDeque::new()), counters: ActionCounters::default() }
    }

    /// Run the classifier chain of `policy` on a failure: the first plugin
    /// (in `act` mode) with an answer wins; shadow plugins only log. `None`:
    /// no classifier answered (a plugin that trapped or timed out answers
    /// nothing) — the host's safe fallbacks decide.
    pub fn classify(&self, policy: &Policy, failure: &Failure) -> Option<Verdict> {
        // The account's history says what failed, what was decided and by
        // whom (the failure path only: a served request records nothing).
        let what = failure_words(failure);
        let detail = Some(body_summary(&failure.body));
        for link in &policy.classifiers {
            match link.plugin.classify(failure) {
                ClassifyOutcome::Verdict(v) if link.mode == ClassifierMode::Shadow => {
                    tracing::info!(
                        plugin = link.plugin.name(),
                        account = %failure.account_id,
                        email = %failure.email,
                        "shadow classifier would decide: {} (not acted on)",
                        verdict_name(&v)
                    );
                    let text = format!("{what}: would {} (shadow, not acted on)", verdict_name(&v));
                    self.pool.note(&failure.account_id, EventKind::Shadow, text, Some(link.plugin.name()), detail.clone());
                }
                ClassifyOutcome::Verdict(v) => {
                    tracing::debug!(plugin = link.plugin.name(), account = %failure.account_id, "verdict: {}", verdict_name(&v));
                    let text = format!("{what}: {}", verdict_name(&v));
                    self.pool.note(&failure.account_id, EventKind::Verdict, text, Some(link.plugin.name()), detail);
                    return Some(v);
                }
                ClassifyOutcome::Abstain | ClassifyOutcome::Failed(_) => {}
            }
        }
        None
    }

    /// Classify and carry the verdict out (or, when no classifier answers,
    /// the host's safe fallback). Returns how the request goes on.
    pub async fn handle(&self, policy: &Policy, report: FailureReport<'_>) -> Next {
        match self.classify(policy, &report.failure) {
            Some(verdict) => self.act(policy, report, verdict).await,
            None => self.fallback(report),
        }
    }

    /// The host's safe fallbacks, whatever the policy: an upstream 401 (a
    /// token the host held as valid was refused) → refresh it and retry once
    /// on the same account, so a revoked grant is found under any policy;
    /// anything else → another account, and this one backs off (a growing
    /// cooldown, reset by its next success), so a broken account costs one
    /// attempt per backoff window, not one per request. Never a disable.
    fn fallback(&self, report: FailureReport<'_>) -> Next {
        let f = &report.failure;
        if f.phase == Phase::Upstream && f.status == Some(401) {
            let text = format!("{}: no classifier answered, so the token is refreshed and the request retried once", failure_words(f));
            self.pool.note(&f.account_id, EventKind::Verdict, text, None, Some(body_summary(&f.body)));
            return Next::RefreshAndRetry;
        }
        let acc = report.account;
        let level = acc.backoff.fetch_add(1, std::sync::atomic::Ordering::Relaxed).min(BACKOFF_STEPS);
        let wait = (BACKOFF_BASE * 2u32.pow(level)).min(BACKOFF_MAX);
        let what = match (f.phase, f.status) {
            (Phase::TokenRefresh, _) => "token refresh failed".to_string(),
            (_, Some(s)) => format!("HTTP {s}"),
            (_, None) => "network error".to_string(),
        };
        tracing::warn!(account = %acc.id, email = %f.email, "no classifier answered ({what}); {} backs off for {:.0}s", f.email, wait.as_secs_f64());
        let text = format!(
            "{}: no classifier answered, so another account was tried and this one backs off for {:.0}s (nothing else is held against it)",
            failure_words(f),
            wait.as_secs_f64()
        );
        self.pool.note(&acc.id, EventKind::Verdict, text, None, Some(body_summary(&f.body)));
        self.pool.set_cooldown(&acc.id, &CooldownScope::Account, now_ms() + wait.as_millis() as u64, &format!("backing off: {what}, no classifier answered"));
        self.counters.cooldowns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Next::RetryNext
    }

    /// A line in the account's history (no verdict: what the host did).
    pub fn note(&self, acc: &LiveAccount, text: &str, body: &str) {
        self.pool.note(&acc.id, EventKind::Note, text.to_string(), None, Some(body_summary(body)));
    }

    /// A bare 429 (no reason) the request then got past on another
    /// account: this account backs off briefly — 1 s, doubling while it
    /// keeps getting them, reset by its next success — never longer than
    /// [`WEAK_BACKOFF_MAX`], and never out of the pool.
    pub fn weak_backoff(&self, acc: &Arc<LiveAccount>) {
        let level = acc.backoff.fetch_add(1, std::sync::atomic::Ordering::Relaxed).min(BACKOFF_STEPS);
        let wait = (BACKOFF_BASE * 2u32.pow(level)).min(WEAK_BACKOFF_MAX);
        let email = acc.email();
        tracing::info!(account = %acc.id, email = %email, "Google answered {email} HTTP 429 with no reason and another account served the request: {email} backs off for {:.0}s", wait.as_secs_f64());
        let text = format!("a bare 429 (no reason) that another account got past: backs off for {:.0}s (growing only while it keeps getting them)", wait.as_secs_f64());
        self.pool.note(&acc.id, EventKind::Note, text, None, None);
        self.pool.set_cooldown(&acc.id, &CooldownScope::Account, now_ms() + wait.as_millis() as u64, "backing off: HTTP 429 with no reason");
        self.counters.cooldowns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    async fn act(&self, policy: &Policy, report: FailureReport<'_>, verdict: Verdict) -> Next {
        let acc = report.account;
        let email = report.failure.email.clone();
        match verdict {
            Verdict::Disable(reason) => {
                let current = acc.file();
                if current.disabled || current.token.refresh_token != report.refresh_token {
                    // Already disabled, or re-added with a new token since.
                    return Next::RetryNext;
                }
                if let Some(why) = self.guard_refuses(policy, &acc.id).await {
                    self.counters.guarded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(
                        account = %acc.id, email = %email,
                        "disable storm guard engaged: {why}; NOT disabling {email} ({reason}); cooling it down for {}s instead. Check the OAuth client settings and the classifier rules; accounts already disabled stay as they are",
                        policy.guard.cooldown_secs
                    );
                    self.pool.note(&acc.id, EventKind::Note, format!("disable storm guard: {why}; not disabled ({reason}), cooled down instead"), None, None);
                    self.cooldown(acc, CooldownScope::Account, Duration::from_secs(policy.guard.cooldown_secs), &format!("guard: disable refused ({reason})")).await;
                    return Next::RetryNext;
                }
                if reason.starts_with("invalid_grant") {
                    tracing::error!(account = %acc.id, email = %email, reason = %reason, "Disabling account due to invalid_grant ({email}): refresh_token likely revoked/expired");
                } else {
                    tracing::error!(account = %acc.id, email = %email, reason = %reason, "Disabling account ({email}): {reason}");
                }
                let used = report.refresh_token.clone();
                let now = crate::util::now_secs();
                let r = reason.clone();
                // The guard reserved this disable's place in the window.
                // Only if the token that failed is still the one on file: a
                // re-add meanwhile must not be undone.
                let written = self
                    .write_if(acc, move |f| f.token.refresh_token == used && !f.disabled, move |f| f.disable(&r, now))
                    .await;
                if written.is_some_and(|f| f.disabled) {
                    self.counters.disables.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Next::RetryNext
            }
            Verdict::ProxyDisable(reason) => {
                self.take_off_proxy(acc, &reason).await;
                Next::RetryNext
            }
            Verdict::Cooldown(c) => {
                let duration = Duration::from_millis(c.duration_ms.unwrap_or(DEFAULT_COOLDOWN.as_millis() as u64));
                let scope = match (c.scope, &report.failure.model) {
                    (WitScope::Model, Some(m)) if report.failure.phase == Phase::Upstream => CooldownScope::Model(m.clone()),
                    _ => CooldownScope::Account,
                };
                tracing::warn!(account = %acc.id, email = %email, reason = %c.reason, "Cooling down {email} ({}) for {:.1}s: {}", scope_name(&scope), duration.as_secs_f64(), c.reason);
                self.cooldown(acc, scope, duration, &c.reason).await;
                Next::RetryNext
            }
            Verdict::RetryNextAccount => Next::RetryNext,
            Verdict::RetrySameAccount(ms) => Next::RetrySame(Duration::from_millis(ms.min(60_000))),
            Verdict::RefreshAndRetry => Next::RefreshAndRetry,
            Verdict::PassToClient => Next::PassToClient,
        }
    }

    /// Put a cooldown in force now and persist it (it survives a restart).
    pub async fn cooldown(&self, acc: &Arc<LiveAccount>, scope: CooldownScope, duration: Duration, reason: &str) {
        let until = now_ms() + duration.as_millis() as u64;
        self.counters.cooldowns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.pool.set_cooldown(&acc.id, &scope, until, reason);
        let scope_str = match &scope {
            CooldownScope::Account => PersistedCooldown::ACCOUNT_SCOPE.to_string(),
            CooldownScope::Model(m) => m.clone(),
        };
        let reason = crate::store::trim_reason(reason);
        self.write(acc, move |f| {
            let now = now_ms() as i64;
            f.cooldowns.retain(|c| c.until_ms > now && c.scope != scope_str);
            f.cooldowns.push(PersistedCooldown { scope: scope_str.clone(), until_ms: until as i64, reason: reason.clone() });
        })
        .await;
    }

    /// True (with the reason) when one more disable would be a storm. In a
    /// cluster the window is the cluster's (counted in Redis); with Redis
    /// away, this node's own.
    async fn guard_refuses(&self, policy: &Policy, id: &str) -> Option<String> {
        let g = &policy.guard;
        if let Some(cluster) = &self.cluster {
            let limits = GuardLimits { window_ms: g.window_secs * 1000, max_disables: g.max_disables, max_fraction: g.max_fraction, pool_size: self.pool.len() };
            let (c, a) = (cluster.clone(), id.to_string());
            match tokio::task::spawn_blocking(move || c.admit_disable(&a, limits)).await {
                Ok(Ok(None)) => return None,
                Ok(Ok(Some(count))) => return Some(self.refusal(policy, count)),
                _ => {}
            }
        }
        self.local_guard(policy, id)
    }

    /// Why one more disable is refused, `count` having gone in the window.
    fn refusal(&self, policy: &Policy, count: u32) -> String {
        let g = &policy.guard;
        if count >= g.max_disables {
            return format!("{count} accounts disabled in the last {}s (max_disables = {})", g.window_secs, g.max_disables);
        }
        format!("{} of {} accounts would be disabled within {}s (max_fraction = {})", count + 1, self.pool.len().max(1), g.window_secs, g.max_fraction)
    }

    /// The guard over this node's own window.
    fn local_guard(&self, policy: &Policy, id: &str) -> Option<String> {
        let g = &policy.guard;
        let now = now_ms();
        let mut recent = self.recent_disables.lock();
        while recent.front().is_some_and(|(t, _)| now.saturating_sub(*t) > g.window_secs * 1000) {
            recent.pop_front();
        }
        // The same account judged twice at once (a request and the
        // refresher) is one disable.
        if recent.iter().any(|(_, a)| a == id) {
            return None;
        }
        let count = recent.len() as u32;
        // The fraction applies once a few accounts went: a pool of one or
        // two must still be able to lose a dead account.
        let size = self.pool.len().max(1) as f64;
        if count >= g.max_disables || (count >= 3 && (count + 1) as f64 / size > g.max_fraction) {
            return Some(self.refusal(policy, count));
        }
        // Checked and counted under one lock: concurrent disables cannot
        // all slip under the limit.
        recent.push_back((now, id.to_string()));
        None
    }

    /// A token refresh failed on `acc`: log it (naming the OAuth client
    /// when the client is to blame, not the account), then judge and act as
    /// for any failure. A request cannot go on on this account whatever the
    /// verdict.
    pub async fn refresh_failed(&self, policy: &Policy, acc: &Arc<LiveAccount>, f: RefreshFailure, model: Option<&str>, attempt: u32) {
        let email = acc.email();
        if f.is_misconfiguration() {
            tracing::error!(account = %acc.id, email = %email, client = %f.client, "Token refresh failed ({email}): {}, trying next account. This is the OAuth client's fault (client `{}`), not the account's: the refresh token was issued to another client, or [oauth.clients.{}] client_id/client_secret are wrong; set the account's token.oauth_client to the client that issued it", f.error, f.client, f.client);
        } else {
            tracing::warn!(account = %acc.id, email = %email, "Token refresh failed ({email}): {}, trying next account", f.error);
        }
        let failure = refresh_failure(acc, &email, &f.error, model, attempt);
        self.handle(policy, FailureReport { failure, account: acc, refresh_token: f.refresh_token }).await;
    }

    /// Take the account off the proxy (`proxy_disabled`, never `disabled`:
    /// its grant is fine) with `reason`.
    pub async fn take_off_proxy(&self, acc: &Arc<LiveAccount>, reason: &str) {
        let email = acc.email();
        tracing::warn!(account = %acc.id, email = %email, reason = %reason, "Taking account off the proxy ({email}): {reason}; enable it with `grantpool accounts enable {}` when resolved", acc.id);
        let now = crate::util::now_secs();
        let r = reason.to_string();
        self.write(acc, move |f| f.proxy_disable(&r, now)).await;
        self.counters.proxy_disables.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Keep what `loadCodeAssist` said of the account: its project (when
    /// the record has none) and its tier.
    pub async fn remember_code_assist(&self, acc: &Arc<LiveAccount>, found: &crate::upstream::onboarding::CodeAssist) {
        let f = found.clone();
        let written = self
            .write(acc, move |rec| {
                if rec.token.project_id.is_none() {
                    rec.token.project_id = f.project.clone();
                }
                rec.token.tier = f.tier.clone().or(rec.token.tier.take());
                rec.token.gcp_managed = f.gcp_managed.or(Some(false));
            })
            .await;
        if written.is_some() {
            let kind = if found.gcp_managed == Some(true) { "enterprise" } else { "consumer" };
            tracing::info!(account = %acc.id, email = %acc.email(), project = ?found.project, tier = ?found.tier, "the account's Code Assist project and tier: {kind}");
        }
    }

    async fn write(
        &self,
        acc: &Arc<LiveAccount>,
        change: impl FnMut(&mut crate::store::AccountFile) + Send + 'static,
    ) -> Option<crate::store::AccountFile> {
        self.write_if(acc, |_| true, change).await
    }

    /// Store `change` when `precondition` holds on the stored record (checked
    /// under the store's lock), and bring the pool in line with the record.
    async fn write_if(
        &self,
        acc: &Arc<LiveAccount>,
        precondition: impl Fn(&crate::store::AccountFile) -> bool + Send + 'static,
        change: impl FnMut(&mut crate::store::AccountFile) + Send + 'static,
    ) -> Option<crate::store::AccountFile> {
        let store = self.store.clone();
        let id = acc.id.clone();
        match tokio::task::spawn_blocking(move || store.update_if(&id, precondition, change)).await {
            Ok(Ok(updated)) => {
                self.pool.upsert_file(updated.account.clone());
                Some(updated.account)
            }
            Ok(Err(e)) => {
                tracing::error!(account = %acc.id, "could not write the account file: {e}");
                None
            }
            Err(e) => {
                tracing::error!(account = %acc.id, "writing the account file panicked: {e}");
                None
            }
        }
    }
}

fn scope_name(s: &CooldownScope) -> String {
    match s {
        CooldownScope::Account => "whole account".into(),
        CooldownScope::Model(m) => format!("model {m}"),
    }
}

/// A failure in a few words, for the account's history.
fn failure_words(f: &Failure) -> String {
    let how = match (f.status, f.network_error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, true) => "network error".to_string(),
        (None, false) => "error".to_string(),
    };
    match (f.phase, &f.model) {
        (Phase::TokenRefresh, _) => format!("token refresh failed ({how})"),
        (Phase::Upstream, Some(m)) => format!("Google answered {how} on {m}"),
        (Phase::Upstream, None) => format!("Google answered {how}"),
    }
}

/// What an error body says, shortened: the OAuth `error: description`,
/// Google's `status: message`, else the start of the text.
pub fn body_summary(body: &str) -> String {
    let short = |s: &str| crate::util::truncate_utf8(s.trim(), 300).to_string();
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return short(body) };
    match v.get("error") {
        Some(serde_json::Value::String(code)) => match v.get("error_description").and_then(|d| d.as_str()) {
            Some(d) => short(&format!("{code}: {d}")),
            None => short(code),
        },
        Some(serde_json::Value::Object(e)) => {
            let status = e.get("status").and_then(|s| s.as_str()).unwrap_or("");
            let message = e.get("message").and_then(|s| s.as_str()).unwrap_or("");
            let reason = e
                .get("details")
                .and_then(|d| d.as_array())
                .and_then(|d| d.iter().find_map(|x| x.get("reason").and_then(|r| r.as_str())));
            let head = [status, reason.unwrap_or("")].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
            short(&if head.is_empty() { message.to_string() } else { format!("{head}: {message}") })
        }
        _ => short(body),
    }
}

/// The classifier's view of a refresh failure.
pub fn refresh_failure(acc: &LiveAccount, email: &str, error: &RefreshError, model: Option<&str>, attempt: u32) -> Failure {
    let (status, body, headers, network) = match error {
        RefreshError::Rejected { status, body, headers } => (Some(*status), body.clone(), headers.clone(), false),
        RefreshError::Network(m) => (None, m.clone(), Vec::new(), true),
        RefreshError::BadAnswer(m) | RefreshError::Misconfigured(m) => (None, m.clone(), Vec::new(), false),
    };
    Failure {
        phase: Phase::TokenRefresh,
        status,
        body,
        headers,
        network_error: network,
        account_id: acc.id.clone(),
        email: email.to_string(),
        model: model.map(str::to_string),
        attempt,
    }
}
