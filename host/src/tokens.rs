//! Access tokens: refreshed ahead of expiry (the background refresher), one
//! refresh in flight per account (single flight), rotated refresh tokens
//! persisted atomically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::actions::Actions;
use crate::oauth::{OAuth, RefreshFailure};
use crate::policy::PolicyHandle;
use crate::pool::{LiveAccount, Pool};
use crate::store::{Store, TokenData};
use crate::util::now_secs;

/// How often the refresher looks for tokens close to expiry.
const REFRESH_TICK: Duration = Duration::from_secs(30);
/// How many refreshes the refresher runs at once.
const REFRESH_CONCURRENCY: usize = 4;

/// Hands out valid access tokens.
pub struct TokenManager {
    oauth: OAuth,
    store: Store,
    pool: Arc<Pool>,
    skew_secs: i64,
    /// The last failed refresh per account, so requests that queued behind
    /// it share its answer instead of each trying again.
    failures: Mutex<HashMap<String, (Instant, RefreshFailure)>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl TokenManager {
    /// A manager refreshing `skew_secs` before expiry.
    pub fn new(oauth: OAuth, store: Store, pool: Arc<Pool>, skew_secs: u64) -> Self {
        TokenManager {
            oauth,
            store,
            pool,
            skew_secs: skew_secs as i64,
            failures: Mutex::new(HashMap::new()),
            refreshes: 0.into(),
        }
    }

    /// Refresh calls made so far (successful or not).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn fresh(&self, t: &TokenData) -> bool {
        !t.access_token.is_empty() && t.expiry_timestamp - self.skew_secs > now_secs()
    }

    /// A valid access token for `acc`, refreshing first when it is within
    /// the skew of expiry.
    pub async fn access_token(&self, acc: &Arc<LiveAccount>) -> Result<String, RefreshFailure> {
        if let Some(token) = acc.access_token_if(|t| self.fresh(t)) {
            return Ok(token);
        }
        self.refresh_if(acc, |me, t| !me.fresh(t)).await
    }

    /// Refresh now unless the token was already replaced since `stale` was
    /// handed out (after an upstream 401 with a token that should be valid).
    pub async fn force_refresh(&self, acc: &Arc<LiveAccount>, stale: &str) -> Result<String, RefreshFailure> {
        let stale = stale.to_string();
        self.refresh_if(acc, move |_, t| t.access_token == stale).await
    }

    async fn refresh_if(
        &self,
        acc: &Arc<LiveAccount>,
        needed: impl Fn(&Self, &TokenData) -> bool,
    ) -> Result<String, RefreshFailure> {
        let queued_at = Instant::now();
        let _single_flight = acc.refresh_lock.lock().await;
        let t = acc.token();
        if !needed(self, &t) {
            return Ok(t.access_token);
        }
        if let Some((at, failure)) = self.failures.lock().get(&acc.id) {
            if *at >= queued_at && failure.refresh_token == t.refresh_token {
                return Err(failure.clone());
            }
        }
        self.refreshes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.oauth.refresh(&t).await {
            Ok(new) => {
                self.failures.lock().remove(&acc.id);
                let used = t.refresh_token.clone();
                let store = self.store.clone();
                let id = acc.id.clone();
                let access = new.access_token.clone();
                let rotated = new.refresh_token.is_some();
                let result = tokio::task::spawn_blocking(move || {
                    // Re-added meanwhile with another token: leave it.
                    store.update_if(&id, |f| f.token.refresh_token == used, |f| {
                        f.token.access_token = new.access_token.clone();
                        f.token.expiry_timestamp = new.expiry_timestamp;
                        f.token.token_type = new.token_type.clone();
                        if let Some(rt) = &new.refresh_token {
                            f.token.refresh_token = rt.clone();
                        }
                    })
                })
                .await;
                match result {
                    Ok(Ok(updated)) => {
                        self.pool.upsert_file(updated.account);
                    }
                    Ok(Err(e)) => tracing::error!(account = %acc.id, "refreshed the token but could not save it: {e}"),
                    Err(e) => tracing::error!(account = %acc.id, "saving the refreshed token panicked: {e}"),
                }
                tracing::debug!(account = %acc.id, rotated, "access token refreshed");
                Ok(access)
            }
            Err(error) => {
                let client = t.oauth_client.clone().unwrap_or_else(|| self.oauth.config().client.clone());
                let failure = RefreshFailure { error, refresh_token: t.refresh_token, client };
                self.failures.lock().insert(acc.id.clone(), (Instant::now(), failure.clone()));
                Err(failure)
            }
        }
    }

    /// Accounts that may serve and whose token expires within the skew
    /// plus `ahead`.
    pub fn due(&self, ahead: Duration) -> Vec<Arc<LiveAccount>> {
        let limit = now_secs() + self.skew_secs + ahead.as_secs() as i64;
        self.pool
            .ids()
            .into_iter()
            .filter_map(|id| self.pool.get(&id))
            .filter(|a| {
                let f = a.file();
                !f.disabled && !f.proxy_disabled && (f.token.access_token.is_empty() || f.token.expiry_timestamp <= limit)
            })
            .collect()
    }
}

/// Refreshes tokens ahead of expiry so requests rarely wait on a refresh;
/// a refresh that fails is judged by the policy's classifiers like one on
/// the request path. Runs for the life of the process.
pub async fn refresher(tokens: Arc<TokenManager>, actions: Arc<Actions>, policy: Arc<PolicyHandle>) {
    use futures::StreamExt;
    let mut tick = tokio::time::interval(REFRESH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = tokens.due(Duration::from_secs(60));
        if due.is_empty() {
            continue;
        }
        let policy = policy.current();
        futures::stream::iter(due)
            .for_each_concurrent(REFRESH_CONCURRENCY, |acc| {
                let (tokens, actions, policy) = (tokens.clone(), actions.clone(), policy.clone());
                async move {
                    if let Err(f) = tokens.access_token(&acc).await {
                        actions.refresh_failed(&policy, &acc, f, None, 0).await;
                    }
                }
            })
            .await;
    }
}
