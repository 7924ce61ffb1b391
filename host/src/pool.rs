//! The live pool: every known account, which of them may serve now, and
//! each one's live state (in flight, last use, successes, failures,
//! cooldowns, quota).
//!
//! The account files are the truth; the pool is a cache of them plus the
//! state that only matters while the process runs. It is the only owner of
//! that state. It never writes files (that is [`crate::store`]'s job, driven
//! by [`crate::actions`]).
//!
//! Selectors learn about the pool through an ordered event log
//! ([`EventFeed`]): an account joins when it becomes selectable, leaves when
//! it is disabled, taken off the proxy, cooled down or removed, and every
//! finished request is reported. A selector that falls behind gets a reset.
//!
//! People learn about it through two more channels, both off the request
//! path: each account keeps a short history of what happened to it in words
//! ([`AccountEvent`]: verdicts and the classifier that gave them, disables,
//! cooldowns, recoveries), and every change of an account's state is
//! broadcast as [`PoolNews`] (the accounts page's live updates). A served
//! request touches neither.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::plugins::{EventBatch, EventFeed, ModelQuota as WitQuota, Outcome, PluginAccount, PoolEvent, SelectRequest};
use crate::store::{AccountFile, Change, Cluster, LoadReport, ModelFamily, PersistedCooldown, TokenData};
use crate::util::now_ms;

mod blocks;
mod history;
mod sessions;
#[cfg(test)]
mod tests;
mod view;
use blocks::{newly_exhausted, quota_blocks, window_blocks, Block, Tally, WindowBlock};
use history::{joined, scrub, transitions};
use sessions::Sessions;

pub use blocks::QuotaRule;
pub use history::{AccountEvent, EventKind, PoolNews, HISTORY_CAP};
pub use view::{AccountState, AccountView, ModelBlockView};

/// Events kept for selectors that are behind; older ones mean a reset.
const EVENT_LOG_CAP: usize = 1024;

/// Pool news buffered for a slow listener before it must read everything
/// again.
const NEWS_CAP: usize = 1024;

/// One account known to the pool. Shared (`Arc`) with requests in flight.
pub struct LiveAccount {
    /// Dense handle, stable for the life of the process.
    pub slot: u32,
    /// The account id.
    pub id: String,
    /// The id as shared bytes: response headers name the account without a
    /// copy per request.
    id_bytes: bytes::Bytes,
    file: RwLock<AccountFile>,
    in_flight: AtomicU32,
    last_used_ms: AtomicU64,
    successes: AtomicU32,
    failures: AtomicU32,
    /// Held while the access token is refreshed: one refresh in flight per
    /// account, whatever the concurrency.
    pub refresh_lock: tokio::sync::Mutex<()>,
    /// Held while the account's project is found (or the account onboarded).
    pub project_lock: tokio::sync::Mutex<()>,
    /// Failures in a row that no classifier answered (the host's back-off
    /// grows with it); a success resets it.
    pub backoff: AtomicU32,
    /// What happened to it, oldest first, at most [`HISTORY_CAP`] lines.
    history: Mutex<VecDeque<AccountEvent>>,
}

impl LiveAccount {
    /// The account id as shared bytes (cheap to clone).
    pub fn id_bytes(&self) -> bytes::Bytes {
        self.id_bytes.clone()
    }

    /// The account's email.
    pub fn email(&self) -> String {
        self.file.read().email.clone()
    }

    /// Read the account's record without copying it.
    pub fn read<R>(&self, f: impl FnOnce(&AccountFile) -> R) -> R {
        f(&self.file.read())
    }

    /// A copy of the account's tokens.
    pub fn token(&self) -> TokenData {
        self.file.read().token.clone()
    }

    /// The access token when `fresh` approves it (no copy of the rest of
    /// the token data: this is on every request).
    pub fn access_token_if(&self, fresh: impl FnOnce(&TokenData) -> bool) -> Option<String> {
        let file = self.file.read();
        fresh(&file.token).then(|| file.token.access_token.clone())
    }

    /// The account's Code Assist project, when known.
    pub fn project_id(&self) -> Option<String> {
        self.file.read().token.project_id.clone().filter(|p| !p.is_empty())
    }

    /// A copy of the whole account file as last read or written.
    pub fn file(&self) -> AccountFile {
        self.file.read().clone()
    }

    /// Requests in flight on this account.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Last use, Unix ms (0 = never in this process).
    pub fn last_used_ms(&self) -> u64 {
        self.last_used_ms.load(Ordering::Relaxed)
    }

    /// Requests that ended well and badly on it in this process.
    pub fn outcomes(&self) -> (u32, u32) {
        (self.successes.load(Ordering::Relaxed), self.failures.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for LiveAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveAccount").field("slot", &self.slot).field("id", &self.id).finish()
    }
}

/// What a cooldown covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CooldownScope {
    /// The whole account.
    Account,
    /// One model of the account.
    Model(String),
}

#[derive(Debug, Default)]
struct SlotState {
    /// In the pool's selectable set (last published to selectors).
    selectable: bool,
    account_cooldown: Option<Block>,
    /// Model → cooldown.
    model_cooldowns: HashMap<String, Block>,
    /// Model → remaining fraction under the protection threshold until reset.
    quota_blocks: HashMap<String, Block>,
    /// Google's 5-hour or weekly windows that are used up: the account
    /// serves none of their models until they reset.
    window_blocks: Vec<WindowBlock>,
}

struct Inner {
    accounts: Vec<Option<Arc<LiveAccount>>>,
    state: Vec<SlotState>,
    by_id: HashMap<String, u32>,
    /// Earliest account-wide cooldown end, for cheap expiry checks.
    next_expiry_ms: u64,
    /// Slots with any model cooldown or quota block: what
    /// `unavailable_for` scans, so a request never walks the whole pool.
    blocked: std::collections::BTreeSet<u32>,
}

impl Inner {
    fn reindex(&mut self, slot: usize) {
        let st = &self.state[slot];
        if st.model_cooldowns.is_empty() && st.quota_blocks.is_empty() && st.window_blocks.is_empty() {
            self.blocked.remove(&(slot as u32));
        } else {
            self.blocked.insert(slot as u32);
        }
    }
}

struct EventLog {
    /// Sequence number of `events[0]`.
    first_seq: u64,
    events: VecDeque<PoolEvent>,
}

impl EventLog {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }
    fn push(&mut self, e: PoolEvent) {
        if self.events.len() >= EVENT_LOG_CAP {
            self.events.pop_front();
            self.first_seq += 1;
        }
        self.events.push_back(e);
    }
}

/// The live pool.
pub struct Pool {
    sessions: std::sync::OnceLock<Sessions>,
    quota_rule: RwLock<Option<QuotaRule>>,
    inner: RwLock<Inner>,
    log: Mutex<EventLog>,
    next_expiry_ms: AtomicU64,
    news: tokio::sync::broadcast::Sender<PoolNews>,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

/// A request's hold on an account: in-flight while it lives; reports the
/// outcome to selectors when finished (or dropped, counted as a failure).
pub struct Lease {
    pool: Arc<Pool>,
    account: Arc<LiveAccount>,
    started_ms: u64,
    model: String,
    session_id: Option<String>,
    /// Log a `finished` event at the end (the selector asked for outcomes).
    log_outcome: bool,
    done: bool,
}

impl Lease {
    /// The account held.
    pub fn account(&self) -> &Arc<LiveAccount> {
        &self.account
    }

    /// When the request started on it, Unix ms.
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// End the request with its outcome.
    pub fn finish(mut self, success: bool, status: Option<u16>) {
        self.report(success, status);
    }

    fn report(&mut self, success: bool, status: Option<u16>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let acc = &self.account;
        acc.in_flight.fetch_sub(1, Ordering::Relaxed);
        if success {
            acc.successes.fetch_add(1, Ordering::Relaxed);
            acc.backoff.store(0, Ordering::Relaxed);
            self.pool.success_ends_cooldown(acc.slot, &self.model, self.started_ms);
        } else {
            acc.failures.fetch_add(1, Ordering::Relaxed);
        }
        if !self.log_outcome {
            return;
        }
        let latency = now_ms().saturating_sub(self.started_ms).min(u32::MAX as u64) as u32;
        self.pool.log.lock().push(PoolEvent::Finished(Outcome {
            slot: acc.slot,
            success,
            status,
            latency_ms: latency,
            model: std::mem::take(&mut self.model),
            session_id: self.session_id.take(),
        }));
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A request dropped mid-way (client gone) counts as neither a
        // success nor an account failure: report it as finished, unsuccessful
        // but without a status.
        self.report(false, None);
    }
}

/// Each model's quota as selectors see it: the model's own fraction, or
/// less when one of its 5-hour or weekly windows has less left (so a
/// quota-aware selector weighs what the account can really still serve).
fn quota_view(file: &AccountFile) -> Vec<WitQuota> {
    file.quota
        .iter()
        .map(|(model, q)| {
            let family = ModelFamily::of_model(model);
            let mut fraction = q.remaining_fraction;
            let mut reset_at = q.reset_at;
            for (bucket, w) in &file.quota_windows {
                let left = if w.is_exhausted() { Some(0.0) } else { w.remaining_fraction };
                let Some(left) = left else { continue };
                if family.is_some() && w.family(bucket) == family && left < fraction {
                    fraction = left;
                    reset_at = w.reset_at.or(reset_at);
                }
            }
            WitQuota {
                model: model.clone(),
                remaining_fraction: fraction as f32,
                reset_at_ms: reset_at.map(|s| (s.max(0) as u64) * 1000).unwrap_or(0),
            }
        })
        .collect()
}

fn plugin_account(acc: &LiveAccount) -> PluginAccount {
    let file = acc.file.read();
    PluginAccount {
        slot: acc.slot,
        id: acc.id.clone(),
        email: file.email.clone(),
        labels: file.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        in_flight: acc.in_flight(),
        last_used_ms: acc.last_used_ms(),
        successes: acc.successes.load(Ordering::Relaxed),
        failures: acc.failures.load(Ordering::Relaxed),
        quota: quota_view(&file),
    }
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Pool {
            sessions: std::sync::OnceLock::new(),
            quota_rule: RwLock::new(None),
            inner: RwLock::new(Inner { accounts: Vec::new(), state: Vec::new(), by_id: HashMap::new(), next_expiry_ms: u64::MAX, blocked: Default::default() }),
            log: Mutex::new(EventLog { first_seq: 0, events: VecDeque::new() }),
            next_expiry_ms: AtomicU64::new(u64::MAX),
            news: tokio::sync::broadcast::channel(NEWS_CAP).0,
        }
    }

    /// Load what the store read. Load order per SPEC: `disabled` first,
    /// then cooldowns/quota protection and `proxy_disabled`.
    pub fn load(&self, report: LoadReport) {
        // Skipped files were already reported by the store. Room for all
        // at once: doubling a vector of 10,000 slots leaves a third unused.
        {
            let mut inner = self.inner.write();
            let n = report.accounts.len();
            inner.accounts.reserve_exact(n);
            inner.state.reserve_exact(n);
            inner.by_id.reserve(n);
        }
        for file in report.accounts {
            self.upsert(file, true);
        }
    }

    /// Add an account from its file, or bring a known one in line with its
    /// file (tokens, flags, labels, persisted cooldowns). Returns the account.
    pub fn upsert_file(&self, file: AccountFile) -> Arc<LiveAccount> {
        self.upsert(file, false)
    }

    /// [`Pool::upsert_file`]; `at_start`: the pool's first load, where an
    /// account that starts active gets no "in the pool" line in its
    /// history (a history is allocated per account that has one: with
    /// 10,000 accounts that line alone held about 7 MB; a disabled or
    /// off account still gets its line, which says why).
    fn upsert(&self, file: AccountFile, at_start: bool) -> Arc<LiveAccount> {
        let now = now_ms();
        let mut inner = self.inner.write();
        let (acc, is_new) = match inner.by_id.get(&file.id).copied() {
            Some(slot) => {
                let acc = inner.accounts[slot as usize].clone().expect("slot of a known id");
                (acc, false)
            }
            None => {
                let slot = inner.accounts.len() as u32;
                let acc = Arc::new(LiveAccount {
                    slot,
                    id: file.id.clone(),
                    id_bytes: bytes::Bytes::copy_from_slice(file.id.as_bytes()),
                    file: RwLock::new(file.clone()),
                    in_flight: AtomicU32::new(0),
                    last_used_ms: AtomicU64::new(file.last_used.map(|s| s.max(0) as u64 * 1000).unwrap_or(0)),
                    successes: AtomicU32::new(0),
                    failures: AtomicU32::new(0),
                    refresh_lock: tokio::sync::Mutex::new(()),
                    project_lock: tokio::sync::Mutex::new(()),
                    backoff: AtomicU32::new(0),
                    history: Mutex::new(VecDeque::new()),
                });
                inner.accounts.push(Some(acc.clone()));
                inner.state.push(SlotState::default());
                inner.by_id.insert(file.id.clone(), slot);
                (acc, true)
            }
        };
        let (labels_changed, transitions) = {
            let mut current = acc.file.write();
            let changed = is_new
                || current.labels != file.labels
                || current.email != file.email
                || current.quota != file.quota
                || current.quota_windows != file.quota_windows;
            let transitions = match (is_new, at_start) {
                (true, true) if !file.disabled && !file.proxy_disabled => Vec::new(),
                (true, _) => joined(&file),
                (false, _) => transitions(&current, &file),
            };
            *current = file.clone();
            (changed, transitions)
        };
        // Persisted cooldowns still in the future come back (restart).
        let slot = acc.slot as usize;
        for c in &file.cooldowns {
            let until = c.until_ms.max(0) as u64;
            if until <= now {
                continue;
            }
            let block = Block { until_ms: until, reason: c.reason.clone(), since_ms: now };
            let st = &mut inner.state[slot];
            if c.scope == PersistedCooldown::ACCOUNT_SCOPE {
                if st.account_cooldown.as_ref().map_or(true, |b| b.until_ms < until) {
                    st.account_cooldown = Some(block);
                }
            } else if st.model_cooldowns.get(&c.scope).map_or(true, |b| b.until_ms < until) {
                st.model_cooldowns.insert(c.scope.clone(), block);
            }
        }
        let rule = self.quota_rule.read().clone();
        inner.state[slot].quota_blocks = quota_blocks(&file, rule.as_ref(), now);
        let windows = window_blocks(&file, rule.as_ref(), now);
        let newly = newly_exhausted(&inner.state[slot].window_blocks, &windows);
        inner.state[slot].window_blocks = windows;
        inner.reindex(slot);
        self.publish(&mut inner, slot, labels_changed, now);
        drop(inner);
        for (kind, text) in transitions {
            self.record(&acc, kind, text, None, None);
        }
        for text in newly {
            tracing::info!(account = %acc.id, email = %file.email, "{text}");
            self.record(&acc, EventKind::Cooldown, text, None, None);
        }
        self.changed(&acc.id);
        acc
    }

    /// Bring the pool in line with a change the store saw (whoever made
    /// it): a new or changed record is loaded, a removed one forgotten, an
    /// unreadable one leaves what the pool had.
    pub fn apply(&self, change: Change) {
        match change {
            Change::Upserted(file) => {
                let before = self.get(&file.id).map(|a| a.file());
                if before.as_ref() == Some(&file) {
                    return;
                }
                let recovered = before.as_ref().is_some_and(|b| b.disabled && !file.disabled);
                let (id, email) = (file.id.clone(), file.email.clone());
                self.upsert_file(file);
                if before.is_none() {
                    tracing::info!(account = %id, email = %email, "account added to the running pool");
                } else if recovered {
                    tracing::info!(account = %id, email = %email, "account re-enabled with a new token: back in the pool");
                } else {
                    tracing::debug!(account = %id, "account record changed: pool updated");
                }
            }
            Change::Removed(id) => {
                if self.remove(&id) {
                    tracing::info!(account = %id, "account removed: it left the running pool");
                }
            }
            Change::Unreadable { id, cause } => {
                tracing::warn!(account = %id, "account changed but cannot be read, keeping what the pool had: {cause}");
            }
            Change::Reloaded(report) => {
                tracing::debug!(accounts = report.accounts.len(), "every account read again: pool resynced");
                self.resync(report);
            }
            Change::SessionBound { session, account, until_ms } => {
                if let Some(s) = self.sessions.get() {
                    s.learn(&session, account, until_ms, now_ms());
                }
            }
        }
    }

    /// Share session bindings with the other nodes of a cluster through
    /// `cluster`; each lasts `ttl` from its last extension. Once, at start.
    pub fn share_sessions(&self, ttl: std::time::Duration, cluster: Arc<dyn Cluster>) {
        let _ = self.sessions.set(Sessions::new(ttl.as_millis() as u64, cluster));
    }

    /// Whether session bindings are shared ([`Pool::share_sessions`]).
    pub fn sessions_shared(&self) -> bool {
        self.sessions.get().is_some()
    }

    /// The key a session is known by between nodes: a hash of its id (the
    /// id may be a conversation's text or a user's name).
    pub fn session_key(session_id: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(session_id.as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The account the session `key` is bound to, as this node knows it,
    /// while the binding lasts (no round trip).
    pub fn session_account(&self, key: &str) -> Option<String> {
        self.sessions.get()?.account(key, now_ms())
    }

    /// The session `key` was served by `slot`, the account it is bound to:
    /// past half its time the binding is extended (queued, off the request
    /// path).
    pub fn keep_session(&self, key: &str, slot: u32) {
        if let (Some(s), Some(acc)) = (self.sessions.get(), self.by_slot(slot)) {
            s.served(key, &acc.id, now_ms());
        }
    }

    /// Binds the session `key` to `slot`'s account in the cluster; blocks on
    /// one Redis round trip (bounded). A first binding when `expected` is
    /// `None`, else a move away from account `expected`. Returns the account
    /// it is bound to now — another node's when that binding held — or
    /// `None` when Redis did not answer (bound on this node alone).
    pub fn claim_session(&self, key: &str, expected: Option<&str>, slot: u32) -> Option<String> {
        let s = self.sessions.get()?;
        let acc = self.by_slot(slot)?;
        s.claim(key, expected, &acc.id, now_ms())
    }

    /// Re-read everything (`POST /admin/reload`): accounts no longer stored
    /// leave, unless their record was merely unreadable.
    pub fn resync(&self, report: LoadReport) {
        let kept: std::collections::HashSet<&str> =
            report.accounts.iter().map(|a| a.id.as_str()).chain(report.skipped.iter().filter_map(|s| s.id.as_deref())).collect();
        for id in self.ids() {
            if !kept.contains(id.as_str()) {
                self.remove(&id);
            }
        }
        for file in report.accounts {
            self.upsert_file(file);
        }
    }

    /// Set (or lift, with `None`) quota protection, and apply it to every
    /// account's last known quota now.
    pub fn set_quota_rule(&self, rule: Option<QuotaRule>) {
        if *self.quota_rule.read() == rule {
            return;
        }
        *self.quota_rule.write() = rule.clone();
        let now = now_ms();
        let mut inner = self.inner.write();
        for slot in 0..inner.accounts.len() {
            let Some(acc) = inner.accounts[slot].clone() else { continue };
            let (blocks, windows) = {
                let file = acc.file.read();
                (quota_blocks(&file, rule.as_ref(), now), window_blocks(&file, rule.as_ref(), now))
            };
            inner.state[slot].quota_blocks = blocks;
            inner.state[slot].window_blocks = windows;
            inner.reindex(slot);
        }
        let ids: Vec<String> = inner.by_id.keys().cloned().collect();
        drop(inner);
        for id in ids {
            self.changed(&id);
        }
    }

    /// Forget an account (its file was removed).
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.inner.write();
        let Some(slot) = inner.by_id.remove(id) else { return false };
        let slot = slot as usize;
        if inner.state[slot].selectable {
            self.log.lock().push(PoolEvent::Left(slot as u32));
        }
        inner.state[slot] = SlotState::default();
        inner.accounts[slot] = None;
        inner.reindex(slot);
        drop(inner);
        if self.news.receiver_count() > 0 {
            let _ = self.news.send(PoolNews::Removed(id.to_string()));
        }
        true
    }

    /// Re-derive whether `slot` is selectable and tell selectors if that (or
    /// its details, when `details_changed`) changed.
    fn publish(&self, inner: &mut Inner, slot: usize, details_changed: bool, now: u64) {
        let Some(acc) = inner.accounts[slot].clone() else { return };
        let selectable = {
            let file = acc.file.read();
            let st = &inner.state[slot];
            // `disabled` is judged first, then cooldowns and proxy_disabled.
            !file.disabled && st.account_cooldown.as_ref().map_or(true, |b| b.until_ms <= now) && !file.proxy_disabled
        };
        if let Some(b) = &inner.state[slot].account_cooldown {
            if b.until_ms > now && b.until_ms < inner.next_expiry_ms {
                inner.next_expiry_ms = b.until_ms;
                self.next_expiry_ms.store(b.until_ms, Ordering::Relaxed);
            }
        }
        let was = std::mem::replace(&mut inner.state[slot].selectable, selectable);
        let mut log = self.log.lock();
        match (was, selectable) {
            (false, true) => log.push(PoolEvent::Joined(plugin_account(&acc))),
            (true, false) => log.push(PoolEvent::Left(slot as u32)),
            (true, true) if details_changed => log.push(PoolEvent::Joined(plugin_account(&acc))),
            _ => {}
        }
    }

    /// Bring back accounts whose cooldown ended. Cheap when none is due.
    pub fn expire(&self, now: u64) {
        if now < self.next_expiry_ms.load(Ordering::Relaxed) {
            return;
        }
        let mut inner = self.inner.write();
        inner.next_expiry_ms = u64::MAX;
        self.next_expiry_ms.store(u64::MAX, Ordering::Relaxed);
        // Only accounts under an account-wide cooldown can change here.
        let cooling: Vec<usize> = (0..inner.state.len()).filter(|s| inner.state[*s].account_cooldown.is_some()).collect();
        let mut ended = Vec::new();
        for slot in cooling {
            let due = inner.state[slot].account_cooldown.as_ref().is_some_and(|b| b.until_ms <= now);
            if due {
                inner.state[slot].account_cooldown = None;
                ended.extend(inner.accounts[slot].clone());
            }
            self.publish(&mut inner, slot, false, now);
        }
        drop(inner);
        for acc in ended {
            self.record(&acc, EventKind::CooldownOver, "cooldown over (whole account): back in the pool".into(), None, None);
            self.changed(&acc.id);
        }
    }

    /// Forget model cooldowns and quota blocks that have run out, so that
    /// whoever watches the pool hears of it (requests ignore them either
    /// way), and end account cooldowns that are due. Cheap: only accounts
    /// with a block are looked at. Called once a second by the page's task.
    pub fn sweep(&self, now: u64) {
        self.expire(now);
        let due: Vec<u32> = {
            let inner = self.inner.read();
            inner
                .blocked
                .iter()
                .copied()
                .filter(|s| {
                    let st = &inner.state[*s as usize];
                    st.model_cooldowns.values().chain(st.quota_blocks.values()).any(|b| b.until_ms <= now)
                        || st.window_blocks.iter().any(|b| b.until_ms <= now)
                })
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let mut over = Vec::new();
        {
            let mut inner = self.inner.write();
            for slot in due {
                let st = &mut inner.state[slot as usize];
                let mut models: Vec<String> = st.model_cooldowns.iter().filter(|(_, b)| b.until_ms <= now).map(|(m, _)| m.clone()).collect();
                st.model_cooldowns.retain(|_, b| b.until_ms > now);
                let quota: Vec<String> = st.quota_blocks.iter().filter(|(_, b)| b.until_ms <= now).map(|(m, _)| m.clone()).collect();
                st.quota_blocks.retain(|_, b| b.until_ms > now);
                let windows: Vec<String> =
                    st.window_blocks.iter().filter(|b| b.until_ms <= now).map(|b| format!("{} ({})", b.bucket, b.family.pattern())).collect();
                st.window_blocks.retain(|b| b.until_ms > now);
                inner.reindex(slot as usize);
                models.sort();
                if let Some(acc) = inner.accounts[slot as usize].clone() {
                    over.push((acc, models, quota, windows));
                }
            }
        }
        for (acc, models, quota, windows) in over {
            if !windows.is_empty() {
                self.record(&acc, EventKind::CooldownOver, format!("quota window reset: {} serving again", windows.join(", ")), None, None);
            }
            if !models.is_empty() {
                self.record(&acc, EventKind::CooldownOver, format!("cooldown over for {}", models.join(", ")), None, None);
            }
            if !quota.is_empty() {
                self.record(&acc, EventKind::CooldownOver, format!("quota protection over for {} (quota reset)", quota.join(", ")), None, None);
            }
            self.changed(&acc.id);
        }
    }

    /// An account by id.
    pub fn get(&self, id: &str) -> Option<Arc<LiveAccount>> {
        let inner = self.inner.read();
        inner.by_id.get(id).and_then(|s| inner.accounts[*s as usize].clone())
    }

    /// An account by slot.
    pub fn by_slot(&self, slot: u32) -> Option<Arc<LiveAccount>> {
        self.inner.read().accounts.get(slot as usize).cloned().flatten()
    }

    /// Number of accounts known (any state).
    pub fn len(&self) -> usize {
        self.inner.read().by_id.len()
    }

    /// True when no account is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of every account known.
    pub fn ids(&self) -> Vec<String> {
        self.inner.read().by_id.keys().cloned().collect()
    }

    /// Put a cooldown on an account or one of its models.
    pub fn set_cooldown(&self, id: &str, scope: &CooldownScope, until_ms: u64, reason: &str) {
        let now = now_ms();
        let mut inner = self.inner.write();
        let Some(slot) = inner.by_id.get(id).copied() else { return };
        let slot = slot as usize;
        let block = Block { until_ms, reason: reason.to_string(), since_ms: now };
        match scope {
            CooldownScope::Account => inner.state[slot].account_cooldown = Some(block),
            CooldownScope::Model(m) => {
                inner.state[slot].model_cooldowns.insert(m.clone(), block);
            }
        }
        inner.reindex(slot);
        self.publish(&mut inner, slot, false, now);
        let acc = inner.accounts[slot].clone();
        drop(inner);
        if let Some(acc) = acc {
            let what = match scope {
                CooldownScope::Account => "whole account".to_string(),
                CooldownScope::Model(m) => m.clone(),
            };
            let secs = until_ms.saturating_sub(now) as f64 / 1000.0;
            self.record(&acc, EventKind::Cooldown, format!("cooling down ({what}) for {secs:.1}s: {reason}"), None, None);
            self.changed(&acc.id);
        }
    }

    /// Quota protection: keep `id` off `model` until `until_ms` (or lift it
    /// with `None`).
    pub fn set_quota_block(&self, id: &str, model: &str, block: Option<(u64, String)>) {
        let mut inner = self.inner.write();
        let Some(slot) = inner.by_id.get(id).copied() else { return };
        let st = &mut inner.state[slot as usize];
        match block {
            Some((until_ms, reason)) => {
                st.quota_blocks.insert(model.to_string(), Block { until_ms, reason, since_ms: now_ms() });
            }
            None => {
                st.quota_blocks.remove(model);
            }
        }
        inner.reindex(slot as usize);
        drop(inner);
        self.changed(id);
    }

    fn success_ends_cooldown(&self, slot: u32, model: &str, started_ms: u64) {
        let ends = {
            let inner = self.inner.read();
            let st = &inner.state[slot as usize];
            st.model_cooldowns.get(model).is_some_and(|b| b.since_ms <= started_ms)
                || st.account_cooldown.as_ref().is_some_and(|b| b.since_ms <= started_ms)
        };
        if ends {
            let mut inner = self.inner.write();
            let st = &mut inner.state[slot as usize];
            let mut lifted = Vec::new();
            if st.model_cooldowns.get(model).is_some_and(|b| b.since_ms <= started_ms) {
                st.model_cooldowns.remove(model);
                lifted.push(model.to_string());
            }
            if st.account_cooldown.as_ref().is_some_and(|b| b.since_ms <= started_ms) {
                st.account_cooldown = None;
                lifted.push("whole account".to_string());
            }
            inner.reindex(slot as usize);
            self.publish(&mut inner, slot as usize, false, now_ms());
            let acc = inner.accounts[slot as usize].clone();
            drop(inner);
            if let Some(acc) = acc.filter(|_| !lifted.is_empty()) {
                self.record(&acc, EventKind::CooldownOver, format!("a request on {model} succeeded: cooldown lifted ({})", lifted.join(", ")), None, None);
                self.changed(&acc.id);
            }
        }
    }

    /// Slots that are selectable but may not serve `model` now.
    pub fn unavailable_for(&self, model: &str, now: u64) -> Vec<u32> {
        let family = ModelFamily::of_model(model);
        let inner = self.inner.read();
        let mut out = Vec::new();
        for &slot in &inner.blocked {
            let st = &inner.state[slot as usize];
            if !st.selectable {
                continue;
            }
            let blocked = st.model_cooldowns.get(model).is_some_and(|b| b.until_ms > now)
                || st.quota_blocks.get(model).is_some_and(|b| b.until_ms > now)
                || (family.is_some() && st.window_blocks.iter().any(|b| Some(b.family) == family && b.until_ms > now));
            if blocked {
                out.push(slot);
            }
        }
        out
    }

    /// True when `slot` may serve `req`.
    pub fn is_candidate(&self, slot: u32, req: &SelectRequest) -> bool {
        let inner = self.inner.read();
        inner.state.get(slot as usize).is_some_and(|s| s.selectable)
            && !req.tried.contains(&slot)
            && !req.unavailable.contains(&slot)
    }

    /// The built-in choice when the selector plugin fails: the least
    /// recently used candidate.
    pub fn least_recently_used(&self, req: &SelectRequest) -> Option<u32> {
        let inner = self.inner.read();
        inner
            .state
            .iter()
            .enumerate()
            .filter(|(slot, st)| {
                st.selectable && !req.tried.contains(&(*slot as u32)) && !req.unavailable.contains(&(*slot as u32))
            })
            .filter_map(|(slot, _)| inner.accounts[slot].as_ref())
            .min_by_key(|a| (a.last_used_ms(), a.in_flight()))
            .map(|a| a.slot)
    }

    /// Start a request on `slot`; `log_outcome` logs its `finished` event
    /// for the selector at the end.
    pub fn begin(self: &Arc<Self>, slot: u32, model: &str, session_id: Option<&str>, log_outcome: bool) -> Option<Lease> {
        let account = self.by_slot(slot)?;
        let now = now_ms();
        account.in_flight.fetch_add(1, Ordering::Relaxed);
        account.last_used_ms.store(now, Ordering::Relaxed);
        Some(Lease {
            pool: self.clone(),
            account,
            started_ms: now,
            // Kept either way: a success ends a cooldown on this model.
            model: model.to_string(),
            session_id: session_id.filter(|_| log_outcome).map(str::to_string),
            log_outcome,
            done: false,
        })
    }

    /// One account as listings show it.
    pub fn view(&self, id: &str) -> Option<AccountView> {
        let now = now_ms();
        let inner = self.inner.read();
        let slot = *inner.by_id.get(id)?;
        let acc = inner.accounts[slot as usize].as_ref()?;
        let file = acc.file.read();
        Some(view_of(acc, &file, &inner.state[slot as usize], now))
    }

    /// Call `f` on every account (under the pool's read lock: keep it short).
    pub fn for_each_account(&self, mut f: impl FnMut(&LiveAccount)) {
        let inner = self.inner.read();
        for acc in inner.accounts.iter().flatten() {
            f(acc);
        }
    }

    /// Hear of every change from now on (see [`PoolNews`]). A listener that
    /// falls more than 1024 changes behind is told it lagged and should read
    /// the pool again.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<PoolNews> {
        self.news.subscribe()
    }

    /// Add a line to the history of account `id` (no-op for an unknown id).
    pub fn note(&self, id: &str, kind: EventKind, text: String, source: Option<&str>, detail: Option<String>) {
        if let Some(acc) = self.get(id) {
            self.record(&acc, kind, text, source, detail);
        }
    }

    /// The history of account `id`, oldest first.
    pub fn history(&self, id: &str) -> Vec<AccountEvent> {
        self.get(id).map(|a| a.history.lock().iter().cloned().collect()).unwrap_or_default()
    }

    fn record(&self, acc: &LiveAccount, kind: EventKind, text: String, source: Option<&str>, detail: Option<String>) {
        let (text, detail) = {
            let file = acc.file.read();
            (scrub(text, &file.token), detail.map(|d| scrub(d, &file.token)))
        };
        let event = AccountEvent { at_ms: now_ms(), kind, text, source: source.map(str::to_string), detail };
        {
            let mut h = acc.history.lock();
            if h.len() >= HISTORY_CAP {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        if self.news.receiver_count() > 0 {
            let _ = self.news.send(PoolNews::Event { id: acc.id.clone(), event });
        }
    }

    fn changed(&self, id: &str) {
        if self.news.receiver_count() > 0 {
            let _ = self.news.send(PoolNews::Changed(id.to_string()));
        }
    }

    /// What a failed request's log line shows of the pool, without a view
    /// of every account (with 10,000 accounts and an upstream down, a view
    /// each per failed request was most of the proxy's work): the views of
    /// the `limit` accounts nearest to serving `model` — ready first, then
    /// the soonest back, then those disabled or off the proxy — and of any
    /// account `also` names, in that order; and the pool's size.
    pub fn nearest_views(&self, model: &str, limit: usize, also: &dyn Fn(&str) -> bool) -> (Vec<AccountView>, usize) {
        let now = now_ms();
        let inner = self.inner.read();
        let mut order: Vec<(u64, u32)> = Vec::with_capacity(inner.state.len());
        for acc in inner.accounts.iter().flatten() {
            let st = &inner.state[acc.slot as usize];
            let file = acc.file.read();
            let rank = if file.disabled {
                u64::MAX
            } else if let Some(b) = st.account_cooldown.as_ref().filter(|b| b.until_ms > now) {
                1 + (b.until_ms - now)
            } else if file.proxy_disabled {
                u64::MAX
            } else if st.model_cooldowns.is_empty() && st.quota_blocks.is_empty() && st.window_blocks.is_empty() {
                0
            } else {
                // Some block: the view says whether one covers `model` (families, windows).
                view_of(acc, &file, st, now).longest_block(model, now).map_or(0, |b| 1 + (b.until_ms - now))
            };
            order.push((rank, acc.slot));
        }
        let total = order.len();
        order.sort_unstable();
        let views = order
            .iter()
            .enumerate()
            .filter_map(|(i, (_, slot))| {
                let acc = inner.accounts[*slot as usize].as_ref()?;
                (i < limit || also(&acc.id)).then(|| view_of(acc, &acc.file.read(), &inner.state[*slot as usize], now))
            })
            .collect();
        (views, total)
    }

    /// Every account as listings show it, sorted by email.
    pub fn views(&self) -> Vec<AccountView> {
        let now = now_ms();
        let inner = self.inner.read();
        let mut out: Vec<AccountView> = inner
            .accounts
            .iter()
            .flatten()
            .map(|acc| {
                let st = &inner.state[acc.slot as usize];
                let file = acc.file.read();
                view_of(acc, &file, st, now)
            })
            .collect();
        out.sort_by(|a, b| a.email.cmp(&b.email));
        out
    }

    /// Why no account can serve `model` now, in words for the client and
    /// the log (e.g. "all 3 accounts are disabled by invalid_grant: re-add
    /// them with a new refresh token").
    pub fn why_none(&self, model: &str) -> String {
        let views = self.views();
        let now = now_ms();
        let total = views.len();
        if total == 0 {
            return "no accounts in the pool: add one with `grantpool accounts add --refresh-token …` or `grantpool accounts login`".into();
        }
        let Tally { disabled, grant, proxy, cooling, model_blocked, window_blocked, windows, soonest } = Tally::of(&views, model, now);
        let all = if total == 1 { "the only account is".to_string() } else { format!("all {total} accounts are") };
        if grant == total {
            return format!("{all} disabled by invalid_grant (refresh token revoked or expired): re-add them with a new refresh token (`grantpool accounts add --refresh-token …` or `grantpool accounts login`)");
        }
        if disabled == total {
            return format!("{all} disabled: re-add them with a new refresh token");
        }
        if proxy == total {
            return format!("{all} taken off the proxy (proxy_disabled): enable them with `grantpool accounts enable ID`");
        }
        let mut parts = Vec::new();
        if disabled > 0 {
            parts.push(format!("{disabled} disabled ({grant} by invalid_grant)"));
        }
        if proxy > 0 {
            parts.push(format!("{proxy} taken off the proxy"));
        }
        if cooling > 0 {
            parts.push(format!("{cooling} cooling down"));
        }
        if model_blocked > 0 {
            parts.push(format!("{model_blocked} cooling down or out of quota for {model}"));
        }
        if window_blocked > 0 {
            let each: Vec<String> = windows
                .iter()
                .map(|(bucket, (n, reset))| {
                    let at = (*reset / 1000) as i64;
                    format!(
                        "{n} with Google's {bucket} quota window used up (first reset {}, in {})",
                        crate::util::utc_time(at),
                        crate::util::span(at - (now / 1000) as i64)
                    )
                })
                .collect();
            parts.push(each.join(", "));
        }
        let rest = total.saturating_sub(disabled + proxy + cooling + model_blocked + window_blocked);
        if rest > 0 {
            parts.push(format!("{rest} tried already for this request"));
        }
        let when = soonest
            .map(|t| match t.saturating_sub(now).div_ceil(1000) {
                secs @ 0..=120 => format!("; the first one is back in {secs}s"),
                secs => format!("; the first one is back in {}", crate::util::span(secs as i64)),
            })
            .unwrap_or_default();
        format!("no account can serve {model} now: of {total} accounts, {}{when}", parts.join(", "))
    }

    /// When the first account that is only resting (cooling down, whole or
    /// for `model`) can serve `model` again, Unix ms; `None` when none is.
    pub fn soonest_back(&self, model: &str) -> Option<u64> {
        Tally::of(&self.views(), model, now_ms()).soonest
    }
}

fn view_of(acc: &LiveAccount, file: &AccountFile, st: &SlotState, now: u64) -> AccountView {
    let state = if file.disabled {
        AccountState::Disabled { reason: file.disabled_reason.clone(), at: file.disabled_at }
    } else if let Some(b) = st.account_cooldown.as_ref().filter(|b| b.until_ms > now) {
        AccountState::CoolingDown { reason: b.reason.clone(), until_ms: b.until_ms }
    } else if file.proxy_disabled {
        AccountState::ProxyDisabled { reason: file.proxy_disabled_reason.clone(), at: file.proxy_disabled_at }
    } else {
        AccountState::Active
    };
    let mut model_cooldowns: Vec<ModelBlockView> = st
        .model_cooldowns
        .iter()
        .chain(st.quota_blocks.iter())
        .filter(|(_, b)| b.until_ms > now)
        .map(|(m, b)| ModelBlockView { model: m.clone(), until_ms: b.until_ms, reason: b.reason.clone(), window: None, family: None })
        .chain(st.window_blocks.iter().filter(|b| b.until_ms > now).map(|b| ModelBlockView {
            model: b.family.pattern().to_string(),
            until_ms: b.until_ms,
            reason: b.reason.clone(),
            window: Some(b.bucket.clone()),
            family: Some(b.family),
        }))
        .collect();
    model_cooldowns.sort_by(|a, b| a.model.cmp(&b.model));
    AccountView {
        id: acc.id.clone(),
        email: file.email.clone(),
        state,
        model_cooldowns,
        in_flight: acc.in_flight(),
        successes: acc.successes.load(Ordering::Relaxed),
        failures: acc.failures.load(Ordering::Relaxed),
        last_used: match acc.last_used_ms() {
            0 => file.last_used,
            ms => Some((ms / 1000) as i64),
        },
        quota: file.quota.clone(),
        quota_windows: file.quota_windows.clone(),
        project_id: file.token.project_id.clone(),
        oauth_client: file.token.oauth_client.clone(),
        labels: file.labels.clone(),
        egress: file.egress.clone(),
    }
}

impl EventFeed for Pool {
    fn events_since(&self, cursor: Option<u64>) -> EventBatch {
        {
            let log = self.log.lock();
            if let Some(cursor) = cursor {
                if cursor >= log.first_seq && cursor <= log.next_seq() {
                    let start = (cursor - log.first_seq) as usize;
                    let events: Vec<PoolEvent> = log.events.iter().skip(start).cloned().collect();
                    return EventBatch { events, seq: log.next_seq() };
                }
            }
        }
        // Reset: every selectable account, consistent with the log position
        // (appends of joins and leaves happen under the inner write lock).
        let inner = self.inner.read();
        let log = self.log.lock();
        let mut events = Vec::with_capacity(inner.by_id.len() + 1);
        events.push(PoolEvent::Reset);
        for (slot, st) in inner.state.iter().enumerate() {
            if st.selectable {
                if let Some(acc) = &inner.accounts[slot] {
                    events.push(PoolEvent::Joined(plugin_account(acc)));
                }
            }
        }
        EventBatch { events, seq: log.next_seq() }
    }
}
