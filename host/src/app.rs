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
        let upstream = Upstream::new(&config.upstream)?;
        Ok(Arc::new(App { config, store, pool, policy, tokens, actions, upstream, engine, oauth, metrics: Metrics::new() }))
    }

    /// Start the background tasks: account watcher, policy watcher, token
    /// refresher.
    pub fn start_background(self: &Arc<Self>) -> anyhow::Result<()> {
        crate::watch::watch_accounts(self.clone())?;
        self.policy.watch()?;
        tokio::spawn(refresher(self.clone()));
        Ok(())
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
