//! Per-model quota: fetched from Google (`fetchAvailableModels`) on a
//! schedule and after a `QUOTA_EXHAUSTED` answer, saved in the account's
//! record, and turned into the pool's quota-protection rule.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::config::ProfileMap;
use crate::policy::{PolicyHandle, QuotaProtection};
use crate::pool::{LiveAccount, Pool, QuotaRule};
use crate::store::{ModelQuota, Store};
use crate::tokens::TokenManager;
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

/// The pool's rule for a policy's `[quota_protection]` (`None` when off).
pub fn rule_of(q: &QuotaProtection) -> Option<QuotaRule> {
    q.enabled.then(|| QuotaRule { threshold: q.threshold, models: q.models.clone(), unknown_reset_ms: q.refresh_secs * 1000 })
}

impl Quota {
    /// A quota keeper over these parts.
    pub fn new(store: Store, pool: Arc<Pool>, tokens: Arc<TokenManager>, upstream: Upstream, profiles: ProfileMap) -> Quota {
        Quota { store, pool, tokens, upstream, profiles }
    }

    /// Fetch one account's per-model quota and save it in its record.
    pub async fn fetch(&self, acc: &Arc<LiveAccount>) -> anyhow::Result<()> {
        let token = self.tokens.access_token(acc).await.map_err(|f| anyhow::anyhow!("token refresh failed: {}", f.error))?;
        let (project, client) = acc.read(|f| (f.token.project_id.clone(), f.token.oauth_client.clone()));
        let profile = self.profiles.of(client.as_deref());
        let report = self.upstream.fetch_available_models(profile, &token, project.as_deref()).await?;
        if report.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let id = acc.id.clone();
        let file = tokio::task::spawn_blocking(move || {
            store.update(&id, |f| {
                for q in &report {
                    f.quota.insert(q.model.clone(), ModelQuota { remaining_fraction: q.remaining_fraction, reset_at: q.reset_at });
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
                self.upstream.fetch_available_models(profile, &token, project.as_deref()).await?;
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
