//! Per-model quota and the 5-hour and weekly windows: fetched from Google
//! (`fetchAvailableModels`, `retrieveUserQuotaSummary`) on a schedule and
//! after a `QUOTA_EXHAUSTED` answer, saved in the account's record, and
//! turned into the pool's quota-protection rule (an exhausted window keeps
//! the account off its models whatever the rule; see [`crate::pool`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::config::ProfileMap;
use crate::policy::{PolicyHandle, QuotaProtection};
use crate::pool::{LiveAccount, Pool, QuotaRule};
use crate::store::{ModelQuota, QuotaWindow, Store};
use crate::tokens::TokenManager;
use crate::upstream::quota_windows::WindowReport;
use crate::upstream::Upstream;

/// How many accounts are polled at once.
const POLL_CONCURRENCY: usize = 4;
/// How often the model list is asked again when no quota poll asks it.
const CATALOGUE_EVERY: Duration = Duration::from_secs(1800);

/// Fetches and keeps every account's quota.
pub struct Quota {
    store: Store,
    pool: Arc<Pool>,
    tokens: Arc<TokenManager>,
    upstream: Upstream,
    profiles: ProfileMap,
}

/// The record of one bucket Google reported.
fn window_of(w: WindowReport) -> QuotaWindow {
    QuotaWindow {
        window: w.window,
        remaining_fraction: w.remaining_fraction,
        reset_at: w.reset_at,
        group: w.group,
        remaining_amount: w.remaining_amount,
        disabled: w.disabled,
    }
}

/// The pool's rule for a policy's `[quota_protection]` (`None` when off).
pub fn rule_of(q: &QuotaProtection) -> Option<QuotaRule> {
    q.enabled.then(|| QuotaRule { threshold: q.threshold, models: q.models.clone(), unknown_reset_ms: q.refresh_secs * 1000 })
}

impl Quota {
    /// A quota keeper over these parts.
    pub fn new(store: Store, pool: Arc<Pool>, tokens: Arc<TokenManager>, upstream: Upstream, profiles: ProfileMap) -> Quota {
        Quota { store, pool, tokens, upstream, profiles }
    }

    /// Fetch one account's per-model quota and its 5-hour and weekly
    /// windows, and save them in its record. The windows are best effort: a
    /// host that does not serve `retrieveUserQuotaSummary` (404) or refuses
    /// it changes nothing.
    pub async fn fetch(&self, acc: &Arc<LiveAccount>) -> anyhow::Result<()> {
        let token = self.tokens.access_token(acc).await.map_err(|f| anyhow::anyhow!("token refresh failed: {}", f.error))?;
        let (project, client, egress) = acc.read(|f| (f.token.project_id.clone(), f.token.oauth_client.clone(), f.egress.clone()));
        let profile = self.profiles.of(client.as_deref());
        let (models, windows) = futures::join!(
            self.upstream.fetch_available_models(profile, &token, project.as_deref(), egress.as_deref()),
            self.upstream.retrieve_user_quota_summary(profile, &token, project.as_deref(), egress.as_deref()),
        );
        let windows = match windows {
            Ok(w) => Some(w.into_iter().map(|w| (w.bucket_id.clone(), window_of(w))).collect::<std::collections::BTreeMap<_, _>>()),
            Err(e) => {
                tracing::debug!(account = %acc.id, "quota windows fetch failed (kept what was known): {e}");
                None
            }
        };
        let report = match models {
            Ok(r) => r,
            // The windows still count when the model list failed.
            Err(e) if windows.is_some() => {
                tracing::debug!(account = %acc.id, "quota fetch failed: {e}");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        if report.is_empty() && windows.is_none() {
            return Ok(());
        }
        let store = self.store.clone();
        let id = acc.id.clone();
        let file = tokio::task::spawn_blocking(move || {
            store.update(&id, |f| {
                for q in &report {
                    f.quota.insert(q.model.clone(), ModelQuota { remaining_fraction: q.remaining_fraction, reset_at: q.reset_at });
                }
                if let Some(windows) = &windows {
                    // Google's answer is the whole picture: a bucket it no
                    // longer lists is gone.
                    f.quota_windows = windows.clone();
                }
            })
        })
        .await??;
        self.pool.upsert_file(file);
        Ok(())
    }

    /// Learn one account's real quota (and reset time) now, in the
    /// background, not at the next poll.
    pub fn fetch_soon(self: &Arc<Self>, acc: &Arc<LiveAccount>) {
        let (me, acc) = (self.clone(), acc.clone());
        tokio::spawn(async move {
            if let Err(e) = me.fetch(&acc).await {
                tracing::debug!(account = %acc.id, "quota fetch failed: {e:#}");
            }
        });
    }

    /// Asks Google which models each profile serves, through one account of
    /// each profile in the pool (only the list is kept: quota is kept by the
    /// polls, when something asks for it).
    pub async fn refresh_catalogue(&self) {
        for profile in crate::profiles::ALL {
            let account = self.serving_accounts().into_iter().find(|a| std::ptr::eq(a.read(|f| self.profiles.of(f.token.oauth_client.as_deref())), profile));
            let Some(acc) = account else { continue };
            let listed = async {
                let token = self.tokens.access_token(&acc).await.map_err(|f| anyhow::anyhow!("token refresh failed: {}", f.error))?;
                let project = acc.project_id();
                let egress = acc.read(|f| f.egress.clone());
                self.upstream.fetch_available_models(profile, &token, project.as_deref(), egress.as_deref()).await?;
                anyhow::Ok(())
            };
            if let Err(e) = listed.await {
                tracing::debug!(account = %acc.id, profile = profile.name, "model list fetch failed: {e:#}");
            }
        }
    }

    /// Accounts that may serve (not disabled, not off the proxy).
    fn serving_accounts(&self) -> Vec<Arc<LiveAccount>> {
        self.pool
            .ids()
            .into_iter()
            .filter_map(|id| self.pool.get(&id))
            .filter(|a| a.read(|f| !f.disabled && !f.proxy_disabled))
            .collect()
    }

    /// Fetches every account's quota on a schedule (quota protection and
    /// quota-aware selection) and follows the policy's quota rule, for the
    /// life of the process.
    pub async fn run(self: Arc<Self>, policy: Arc<PolicyHandle>) {
        let mut generation = u64::MAX;
        let mut next_fetch = tokio::time::Instant::now();
        let mut next_catalogue = tokio::time::Instant::now();
        loop {
            let current = policy.current();
            if policy.generation() != generation {
                generation = policy.generation();
                self.pool.set_quota_rule(rule_of(&current.quota_protection));
            }
            let refresh_secs = current.quota_protection.refresh_secs;
            // Quota is fetched only when something uses it: quota protection
            // or a selector that asks for it (a 429 that says the quota is
            // exhausted fetches that one account's quota in any case).
            let wanted = current.quota_protection.enabled || current.selector.wants_quota();
            drop(current);
            let now = tokio::time::Instant::now();
            if wanted && now >= next_fetch {
                next_fetch = now + Duration::from_secs(refresh_secs.max(1));
                next_catalogue = now + CATALOGUE_EVERY;
                futures::stream::iter(self.serving_accounts())
                    .for_each_concurrent(POLL_CONCURRENCY, |acc| {
                        let me = self.clone();
                        async move {
                            if let Err(e) = me.fetch(&acc).await {
                                tracing::debug!(account = %acc.id, "quota fetch failed: {e:#}");
                            }
                        }
                    })
                    .await;
            } else if now >= next_catalogue {
                // Retried soon while no list is known (a fresh pool).
                next_catalogue = now + if self.upstream.catalogue.is_known() { CATALOGUE_EVERY } else { Duration::from_secs(30) };
                self.refresh_catalogue().await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// An account's quota windows in a few words, one line per group, for
/// `grantpool accounts list`: `Gemini Models: 5h 83% · week 40% (resets Tue
/// 14:00 UTC)`. The reset shown is that of the window with least left (the
/// one that decides when the account serves those models again).
pub fn describe_windows(windows: &std::collections::BTreeMap<String, QuotaWindow>) -> Vec<String> {
    let mut groups: std::collections::BTreeMap<String, Vec<(&String, &QuotaWindow)>> = Default::default();
    for (bucket, w) in windows {
        let group = w.group.clone().unwrap_or_else(|| match w.family(bucket) {
            Some(crate::store::ModelFamily::Gemini) => "Gemini Models".into(),
            Some(crate::store::ModelFamily::ThirdParty) => "Claude and GPT models".into(),
            None => "other".into(),
        });
        groups.entry(group).or_default().push((bucket, w));
    }
    let mut out = Vec::new();
    for (group, mut list) in groups {
        // 5h before weekly, then the rest by id.
        list.sort_by_key(|(b, w)| (match w.window.as_str() { "5h" => 0, "weekly" => 1, _ => 2 }, (*b).clone()));
        let left = |w: &QuotaWindow| if w.is_exhausted() { 0.0 } else { w.remaining_fraction.unwrap_or(1.0) };
        let parts: Vec<String> = list
            .iter()
            .map(|(_, w)| {
                let label = match w.window.as_str() { "weekly" => "week", "" => "window", other => other };
                let amount = match (w.remaining_fraction, &w.remaining_amount) {
                    _ if w.is_exhausted() => "0% USED UP".to_string(),
                    (Some(f), _) => format!("{:.0}%", f * 100.0),
                    (None, Some(a)) => format!("{a} left"),
                    (None, None) => "?".to_string(),
                };
                format!("{label} {amount}")
            })
            .collect();
        let limiting = list.iter().filter(|(_, w)| w.reset_at.is_some()).min_by(|a, b| left(a.1).total_cmp(&left(b.1)));
        let reset = limiting
            .and_then(|(_, w)| w.reset_at)
            .filter(|t| *t > crate::util::now_secs())
            .map(|t| format!(" (resets {} UTC)", crate::util::utc_short(t)))
            .unwrap_or_default();
        out.push(format!("{group}: {}{reset}", parts.join(" · ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_windows_in_words() {
        let soon = crate::util::now_secs() + 3600;
        let mut w = std::collections::BTreeMap::new();
        let win = |window: &str, f: Option<f64>, group: &str| QuotaWindow {
            window: window.into(),
            remaining_fraction: f,
            reset_at: Some(soon),
            group: Some(group.into()),
            ..QuotaWindow::default()
        };
        w.insert("gemini-weekly".to_string(), win("weekly", Some(0.4), "Gemini Models"));
        w.insert("gemini-5h".to_string(), win("5h", Some(0.83), "Gemini Models"));
        w.insert("3p-weekly".to_string(), win("weekly", Some(0.0), "Claude and GPT models"));
        let lines = describe_windows(&w);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("Claude and GPT models: week 0% USED UP (resets "), "{lines:?}");
        assert!(lines[1].starts_with("Gemini Models: 5h 83% · week 40% (resets "), "{lines:?}");
        assert!(describe_windows(&Default::default()).is_empty());
    }
}
