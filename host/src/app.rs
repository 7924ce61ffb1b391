//! Wiring only: builds every part of a running proxy from a [`Config`] and
//! starts the background tasks (store watch, policy watch, token refresher,
//! quota poller, the named keys' watch, the accounts page's sampler).

use std::sync::Arc;

use crate::actions::Actions;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::oauth::OAuth;
use crate::plugins::PluginEngine;
use crate::policy::{Policy, PolicyHandle};
use crate::pool::Pool;
use crate::proxy::dispatch::Dispatcher;
use crate::proxy::state::ProxyState;
use crate::quota::Quota;
use crate::store::cluster::{ClusterOptions, ClusterStore, Role};
use crate::store::{Store, Watch};
use crate::tokens::TokenManager;
use crate::upstream::Upstream;

/// A running grantpool: its parts, built once.
pub struct App {
    /// The account store.
    pub store: Store,
    /// The policy in force.
    pub policy: Arc<PolicyHandle>,
    /// What the HTTP side shares (settings, the request path, the store).
    pub proxy: Arc<ProxyState>,
    /// The accounts page.
    pub ui: Arc<crate::ui::Ui>,
}

/// The background work of a running [`App`]; the store watch ends when it
/// is dropped.
pub struct Background {
    _watch: Watch,
}

/// The store `config` names: the cluster's (Redis) when `[cluster]
/// redis_url` is set, else the account files of the data directory. A
/// `Role::Node` may start from its snapshot while Redis is away; a
/// `Role::Tool` (the CLI) needs Redis to answer.
pub fn open_store(config: &Config, role: Role) -> anyhow::Result<Store> {
    match &config.cluster.redis_url {
        Some(url) => {
            let options = ClusterOptions { url: url.clone(), key_prefix: config.cluster.key_prefix.clone(), data_dir: config.data_dir.clone(), role };
            Ok(Store::with_backend(Arc::new(ClusterStore::open(options)?)))
        }
        None => Ok(Store::open(&config.data_dir)?),
    }
}

impl App {
    /// Open the store, load the pool and the policy, build the request path.
    pub fn build(config: Config) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let store = open_store(&config, Role::Node)?;
        let pool = Arc::new(Pool::new());
        if let Some(cluster) = store.cluster() {
            // Sticky sessions hold across nodes: bindings are kept in Redis.
            pool.share_sessions(std::time::Duration::from_secs(config.cluster.session_ttl_secs), cluster);
        }
        let report = store.load_all();
        let (loaded, skipped) = (report.accounts.len(), report.skipped.len());
        pool.load(report);
        tracing::info!(accounts = loaded, skipped, store = %store.location(), "accounts loaded");

        let engine = PluginEngine::for_config(&config)?;
        let policy = Policy::load_file(&engine, config.policy.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!("policy loaded from {}:\n{}", policy.file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the bundled default".into()), policy.describe());
        pool.set_quota_rule(crate::quota::rule_of(&policy.quota_protection));
        let policy = Arc::new(PolicyHandle::new(engine, policy));

        let egress = crate::egress::Egress::new(&config.egress).map_err(|e| anyhow::anyhow!("{e}"))?;
        for e in egress.entries() {
            tracing::info!(proxy = %e.name, endpoint = %e.url.endpoint(), "egress proxy");
        }
        let oauth = OAuth::with_egress(config.oauth.clone(), egress.clone())?;
        let tokens = Arc::new(TokenManager::new(oauth.clone(), store.clone(), pool.clone(), config.oauth.refresh_skew_secs));
        let actions = Arc::new(Actions::new(store.clone(), pool.clone()));
        let upstream = Upstream::with_egress(&config.upstream, crate::proxy::listener::lanes(config.server.workers), egress)?;
        let quota = Arc::new(Quota::new(store.clone(), pool.clone(), tokens.clone(), upstream.clone(), config.profile_map()));
        let keys = crate::keys::KeyRing::open_node(&config)?;
        let usage = crate::usage::UsageLog::open(&config)?;
        if config.cluster.redis_url.is_none() {
            // A daily token limit holds over a restart: today's tokens so far.
            match usage.today_by_key() {
                Ok(today) => keys.seed_today(&today.into_iter().map(|(k, (_, tokens))| (k, tokens)).collect()),
                Err(e) => tracing::warn!("cannot read today's usage by key from the usage log ({e}); daily token limits count from now"),
            }
        }
        let mut metrics = Metrics::new();
        keys.register_metrics(metrics.registry_mut());
        usage.register_metrics(metrics.registry_mut());
        let dispatcher = Dispatcher {
            pool,
            tokens,
            actions,
            upstream,
            quota,
            metrics: Arc::new(metrics),
            max_attempts: config.server.max_attempts,
            max_wait: std::time::Duration::from_secs(config.server.max_wait_secs),
            profiles: config.profile_map(),
        };
        let loopback = config.listens_on_loopback();
        let proxy = Arc::new(ProxyState { config, policy: policy.clone(), dispatcher, store: store.clone(), oauth, keys, usage, loopback });
        let ui = crate::ui::Ui::new(proxy.clone());
        Ok(App { store, policy, proxy, ui })
    }

    /// Start the background tasks: the store watch (every change reaches
    /// the pool), the policy watch, the token refresher, the quota poller,
    /// the accounts page's once-a-second sampler.
    pub fn start_background(&self) -> anyhow::Result<Background> {
        let pool = self.proxy.dispatcher.pool.clone();
        let watch = self.store.watch(move |change| pool.apply(change))?;
        self.policy.watch()?;
        let d = &self.proxy.dispatcher;
        tokio::spawn(crate::tokens::refresher(d.tokens.clone(), d.actions.clone(), self.policy.clone()));
        tokio::spawn(d.quota.clone().run(self.policy.clone()));
        if let Some(url) = self.proxy.config.upstream.version_manifest_url.clone() {
            let every = std::time::Duration::from_secs(self.proxy.config.upstream.version_check_secs);
            tokio::spawn(crate::upstream::version::keep_current(d.upstream.clone(), url, every));
        }
        if let Some(target) = egress_check_target(&self.proxy.config) {
            let timeout = std::time::Duration::from_secs(self.proxy.config.upstream.connect_timeout_secs.max(1));
            tokio::spawn(d.upstream.egress.clone().run_checks(target, timeout));
        }
        self.proxy.keys.start();
        self.ui.start();
        Ok(Background { _watch: watch })
    }
}

/// Where the egress proxies' health checks open their tunnel: the first
/// upstream host (what the accounts' calls need to reach).
pub fn egress_check_target(config: &Config) -> Option<(String, u16)> {
    let profile = config.upstream.forced_profile().unwrap_or(&crate::profiles::ANTIGRAVITY);
    let base = config.upstream.base_urls_of(profile).into_iter().next()?;
    let url = reqwest::Url::parse(&base).ok()?;
    Some((url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_string(), url.port_or_known_default()?))
}
