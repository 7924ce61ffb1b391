//! Access tokens: refreshed ahead of expiry (the background refresher), one
//! refresh in flight per account (single flight), rotated refresh tokens
//! persisted atomically.
//!
//! In a cluster the single flight spans every node: the node that takes
//! the account's lease (`refresh:<id>`, SET NX PX in Redis) refreshes and
//! saves the token, which reaches the other nodes through the store's
//! change feed; the others wait for it in their pool (a failure is left
//! as a note for them), and a holder that died frees the lease when it
//! expires. With Redis away, each node refreshes on its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::actions::Actions;
use crate::oauth::{OAuth, RefreshFailure};
use crate::policy::PolicyHandle;
use crate::pool::{LiveAccount, Pool};
use crate::oauth::RefreshError;
use crate::store::{Cluster, Store, TokenData};
use crate::util::{now_ms, now_secs};

/// How often the refresher looks for tokens close to expiry.
const REFRESH_TICK: Duration = Duration::from_secs(30);
/// How many refreshes the refresher runs at once.
const REFRESH_CONCURRENCY: usize = 4;
/// How long a node may hold an account's cluster-wide refresh lease (more
/// than a refresh takes); a holder that died frees it after this.
const LEASE_MS: u64 = 15_000;
/// How often a node waiting on another node's refresh looks at its pool.
const WAIT_POLL: Duration = Duration::from_millis(20);
/// Every how many looks it also asks Redis whether the lease is still held.
const POLLS_PER_CHECK: u32 = 5;
/// How long a failed refresh's note stays for the nodes that waited on it.
const NOTE_MS: u64 = 10_000;

/// How a cluster-wide refresh turned out for this node.
enum Flight {
    /// This node holds the lease (its token): refresh.
    Mine(String),
    /// Another node refreshed: its result.
    Done(Result<String, RefreshFailure>),
    /// Redis is away: refresh on this node's own single flight.
    Alone,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// A refresh token's fingerprint, to match a note to the grant it is about.
fn grant_tag(refresh_token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(refresh_token.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The note a failed refresh leaves for the nodes waiting on it (no token:
/// the grant is named by its fingerprint).
fn failure_note(f: &RefreshFailure) -> String {
    let (kind, status, body, headers) = match &f.error {
        RefreshError::Rejected { status, body, headers } => ("rejected", *status, body.clone(), headers.clone()),
        RefreshError::Network(m) => ("network", 0, m.clone(), Vec::new()),
        RefreshError::BadAnswer(m) => ("bad_answer", 0, m.clone(), Vec::new()),
        RefreshError::Misconfigured(m) => ("misconfigured", 0, m.clone(), Vec::new()),
    };
    serde_json::json!({"grant": grant_tag(&f.refresh_token), "client": f.client, "kind": kind, "status": status, "body": body, "headers": headers, "at": now_ms()}).to_string()
}

/// The failure a note tells, when it is about `refresh_token` and was
/// written after `since_ms` (less a second of clock difference).
fn read_note(note: &str, refresh_token: &str, since_ms: u64) -> Option<RefreshFailure> {
    let v: serde_json::Value = serde_json::from_str(note).ok()?;
    if v["grant"].as_str()? != grant_tag(refresh_token) || v["at"].as_u64()? + 1000 < since_ms {
        return None;
    }
    let body = v["body"].as_str().unwrap_or_default().to_string();
    let error = match v["kind"].as_str()? {
        "rejected" => RefreshError::Rejected {
            status: v["status"].as_u64()? as u16,
            body,
            headers: serde_json::from_value(v["headers"].clone()).unwrap_or_default(),
        },
        "network" => RefreshError::Network(body),
        "bad_answer" => RefreshError::BadAnswer(body),
        _ => RefreshError::Misconfigured(body),
    };
    Some(RefreshFailure { error, refresh_token: refresh_token.to_string(), client: v["client"].as_str().unwrap_or_default().to_string() })
}

/// Hands out valid access tokens.
pub struct TokenManager {
    oauth: OAuth,
    store: Store,
    pool: Arc<Pool>,
    skew_secs: i64,
    /// The cluster's shared services (`None`: one node).
    cluster: Option<Arc<dyn Cluster>>,
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
            cluster: store.cluster(),
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
        let lease = match &self.cluster {
            Some(cluster) => match self.cluster_flight(cluster, acc, &needed).await {
                Flight::Done(Err(failure)) => {
                    // Requests queued here behind this one share it too.
                    self.failures.lock().insert(acc.id.clone(), (Instant::now(), failure.clone()));
                    return Err(failure);
                }
                Flight::Done(ok) => return ok,
                Flight::Mine(token) => Some((cluster.clone(), token)),
                Flight::Alone => None,
            },
            None => None,
        };
        let result = self.refresh_now(acc).await;
        if let Some((cluster, token)) = lease {
            let name = format!("refresh:{}", acc.id);
            let note = result.as_ref().err().map(failure_note);
            let id = acc.id.clone();
            // The token is saved (and so on its way to the other nodes)
            // before the lease is given back.
            blocking(move || {
                if let Some(note) = note {
                    let _ = cluster.put_note(&format!("refresh-failed:{id}"), &note, NOTE_MS);
                }
                cluster.release(&name, &token);
            })
            .await;
        }
        result
    }

    /// Waits for the cluster-wide lease of `acc`'s refresh, or for the
    /// result of the node that holds it.
    async fn cluster_flight(&self, cluster: &Arc<dyn Cluster>, acc: &Arc<LiveAccount>, needed: &impl Fn(&Self, &TokenData) -> bool) -> Flight {
        let name = format!("refresh:{}", acc.id);
        let started = now_ms();
        let give_up = Instant::now() + Duration::from_millis(LEASE_MS * 2);
        loop {
            let (c, n) = (cluster.clone(), name.clone());
            let token = match blocking(move || c.try_lease(&n, LEASE_MS)).await {
                Some(Ok(t)) => t,
                _ => return Flight::Alone,
            };
            if let Some(token) = token {
                // Another node may have saved a new token just before this
                // one took the lease, its message not here yet: read it.
                let (store, id) = (self.store.clone(), acc.id.clone());
                if let Some(Ok(Some(file))) = blocking(move || store.load(&id)).await {
                    if file.token.refresh_token == acc.token().refresh_token && !needed(self, &file.token) {
                        let access = file.token.access_token.clone();
                        self.pool.upsert_file(file);
                        let (c, n) = (cluster.clone(), name.clone());
                        blocking(move || c.release(&n, &token)).await;
                        return Flight::Done(Ok(access));
                    }
                }
                return Flight::Mine(token);
            }
            // Another node refreshes: its token arrives in the pool.
            let mut polls = 0u32;
            loop {
                tokio::time::sleep(WAIT_POLL).await;
                let t = acc.token();
                if !needed(self, &t) {
                    return Flight::Done(Ok(t.access_token));
                }
                polls += 1;
                if polls % POLLS_PER_CHECK != 0 {
                    continue;
                }
                let (c, n) = (cluster.clone(), name.clone());
                match blocking(move || c.lease_held(&n)).await {
                    Some(Ok(true)) if Instant::now() < give_up => {}
                    Some(Ok(true)) => return Flight::Alone,
                    Some(Ok(false)) => {
                        let (c, n) = (cluster.clone(), format!("refresh-failed:{}", acc.id));
                        if let Some(Ok(Some(note))) = blocking(move || c.note(&n)).await {
                            if let Some(f) = read_note(&note, &t.refresh_token, started) {
                                return Flight::Done(Err(f));
                            }
                        }
                        // Given back (or expired): take it, or find the token.
                        break;
                    }
                    _ => return Flight::Alone,
                }
            }
        }
    }

    /// One refresh of `acc`'s token with the token endpoint; the new token
    /// is saved (only if the refresh token is still the stored one).
    async fn refresh_now(&self, acc: &Arc<LiveAccount>) -> Result<String, RefreshFailure> {
        let t = acc.token();
        self.refreshes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let egress = acc.read(|f| f.egress.clone());
        match self.oauth.refresh(&t, egress.as_deref()).await {
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
