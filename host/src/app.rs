//! Wiring: every part of a running proxy, built from a [`Config`], and the
//! background tasks (account watcher, token refresher, policy watcher).

use std::sync::Arc;
use std::time::Duration;

use crate::actions::Actions;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::oauth::OAuth;
use crate::plugins::{EngineOptions, PluginEngine};
use crate::policy::{Policy, PolicyHandle};
use crate::pool::Pool;
use crate::proxy::upstream::Upstream;
use crate::store::Store;
use crate::tokens::TokenManager;

/// A running grantpool: shared by every request (typed state, no globals).
pub struct App {
    /// Settings.
    pub config: Arc<Config>,
    /// Account files.
    pub store: Store,
    /// Live accounts.
    pub pool: Arc<Pool>,
    /// The policy in force.
    pub policy: Arc<PolicyHandle>,
    /// Access tokens.
    pub tokens: Arc<TokenManager>,
    /// Verdict executor.
    pub actions: Arc<Actions>,
    /// Upstream client.
    pub upstream: Upstream,
    /// The plugin runtime.
    pub engine: Arc<PluginEngine>,
    /// OAuth client.
    pub oauth: OAuth,
    /// Metrics.
    pub metrics: Metrics,
    /// The listener is on a loopback address (decided once: the
    /// DNS-rebinding guard and auth mode `auto` ask on every request).
    pub loopback: bool,
}

/// The plugin engine for `config` (with its compile cache).
pub fn plugin_engine(config: &Config) -> anyhow::Result<Arc<PluginEngine>> {
    PluginEngine::new(EngineOptions {
        cache_dir: Some(config.plugin_cache_dir()),
        call_timeout: Duration::from_millis(config.plugins.call_timeout_ms),
        memory_limit: config.plugins.memory_limit_mib << 20,
        ..EngineOptions::default()
    })
}

impl App {
    /// Open the store, load the pool and the policy.
    pub fn build(config: Config) -> anyhow::Result<Arc<App>> {
        let config = Arc::new(config);
        let store = Store::open(&config.data_dir)?;
        let pool = Arc::new(Pool::new());
        let report = store.load_all();
        let (loaded, skipped) = (report.accounts.len(), report.skipped.len());
        pool.load(report);
        tracing::info!(accounts = loaded, skipped, dir = %store.accounts_dir().display(), "accounts loaded");

        let engine = plugin_engine(&config)?;
        let policy = Policy::load_file(&engine, config.policy.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!("policy loaded from {}:\n{}", policy.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the bundled default".into()), policy.describe());
        let policy = Arc::new(PolicyHandle::new(engine.clone(), policy));

        let oauth = OAuth::new(config.oauth.clone())?;
        let tokens = Arc::new(TokenManager::new(oauth.clone(), store.clone(), pool.clone(), config.oauth.refresh_skew_secs));
        let actions = Arc::new(Actions::new(store.clone(), pool.clone()));
        let upstream = Upstream::new(&config.upstream, crate::proxy::listener::lanes(config.server.workers))?;
        let q = policy.current().quota_protection.clone();
        pool.set_quota_rule(q.enabled.then(|| crate::pool::QuotaRule {
            threshold: q.threshold,
            models: q.models.clone(),
            unknown_reset_ms: q.refresh_secs * 1000,
        }));
        let loopback = config.listens_on_loopback();
        Ok(Arc::new(App { config, store, pool, policy, tokens, actions, upstream, engine, oauth, metrics: Metrics::new(), loopback }))
    }

    /// Start the background tasks: account watcher, policy watcher, token
    /// refresher.
    pub fn start_background(self: &Arc<Self>) -> anyhow::Result<()> {
        crate::watch::watch_accounts(self.clone())?;
        self.policy.watch()?;
        tokio::spawn(refresher(self.clone()));
        tokio::spawn(quota_poller(self.clone()));
        Ok(())
    }
}

/// Apply the policy's quota protection to the pool.
pub fn apply_quota_rule(app: &App) {
    let q = app.policy.current().quota_protection.clone();
    app.pool.set_quota_rule(q.enabled.then(|| crate::pool::QuotaRule {
        threshold: q.threshold,
        models: q.models.clone(),
        unknown_reset_ms: q.refresh_secs * 1000,
    }));
}

/// Fetch one account's per-model quota and save it in its file.
pub async fn fetch_quota(app: &App, acc: &Arc<crate::pool::LiveAccount>) -> anyhow::Result<()> {
    let token = app.tokens.access_token(acc).await.map_err(|f| anyhow::anyhow!("token refresh failed: {}", f.error))?;
    let project = acc.token().project_id;
    let report = app.upstream.fetch_available_models(&token, project.as_deref()).await?;
    if report.is_empty() {
        return Ok(());
    }
    let store = app.store.clone();
    let id = acc.id.clone();
    let file = tokio::task::spawn_blocking(move || {
        store.update(&id, |f| {
            for q in &report {
                f.quota.insert(q.model.clone(), crate::store::ModelQuota { remaining_fraction: q.remaining_fraction, reset_at: q.reset_at });
            }
        })
    })
    .await??;
    app.pool.upsert_file(file);
    Ok(())
}

/// Fetches every account's quota on a schedule (quota protection and
/// quota-aware selection), and follows the policy's quota rule.
async fn quota_poller(app: Arc<App>) {
    use futures::StreamExt;
    let mut generation = u64::MAX;
    let mut next_fetch = tokio::time::Instant::now();
    loop {
        if app.policy.generation() != generation {
            generation = app.policy.generation();
            apply_quota_rule(&app);
        }
        let policy = app.policy.current();
        let q = policy.quota_protection.clone();
        // Quota is fetched only when something uses it: quota protection
        // or a selector that asks for it (a 429 that says the quota is
        // exhausted fetches that one account's quota in any case).
        let wanted = q.enabled || policy.selector.wants_quota();
        drop(policy);
        if wanted && tokio::time::Instant::now() >= next_fetch {
            next_fetch = tokio::time::Instant::now() + Duration::from_secs(q.refresh_secs.max(1));
            let accounts: Vec<_> = app
                .pool
                .ids()
                .into_iter()
                .filter_map(|id| app.pool.get(&id))
                .filter(|a| {
                    let f = a.file();
                    !f.disabled && !f.proxy_disabled
                })
                .collect();
            futures::stream::iter(accounts)
                .for_each_concurrent(4, |acc| {
                    let app = app.clone();
                    async move {
                        if let Err(e) = fetch_quota(&app, &acc).await {
                            tracing::debug!(account = %acc.id, "quota fetch failed: {e:#}");
                        }
                    }
                })
                .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Refreshes tokens ahead of expiry so requests rarely wait on a refresh.
async fn refresher(app: Arc<App>) {
    use futures::StreamExt;
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = app.tokens.due(Duration::from_secs(60));
        if due.is_empty() {
            continue;
        }
        let policy = app.policy.current();
        futures::stream::iter(due)
            .for_each_concurrent(4, |acc| {
                let app = app.clone();
                let policy = policy.clone();
                async move {
                    if let Err(f) = app.tokens.access_token(&acc).await {
                        let email = acc.email();
                        tracing::warn!(account = %acc.id, email = %email, "Token refresh failed ({email}): {}, trying next account", f.error);
                        let failure = crate::proxy::dispatch::refresh_failure(&acc, &email, &f.error, None, 0);
                        app.actions
                            .handle(&policy, crate::actions::FailureReport { failure, account: &acc, refresh_token: f.refresh_token })
                            .await;
                    }
                }
            })
            .await;
    }
}
