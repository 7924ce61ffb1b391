//! [`KeyRing`]: the keys of the running proxy, a snapshot swapped whole on
//! reload, and the watcher that reloads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::store::cluster::conn::Redis;
use super::admission::{Admission, KeyRefusal};
use super::backend::{Backend, FileKeys, RedisKeys, Version};
use super::counters::{KeyUse, Totals};
use super::error::KeyError;
use super::limits;
use super::record::{check_glob, check_name, digest, hash_text, hint_of, new_secret, parse_hash, KeyChange, KeyRecord, KeySpec, NamedKey};

/// How often the watcher looks for changes by other processes or nodes.
pub(crate) const POLL: Duration = Duration::from_millis(250);
/// How often `last_used` is written back (when it changed).
const LAST_USED_EVERY: Duration = Duration::from_secs(60);

/// Unix seconds now (injected in tests).
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Labels of `grantpool_key_limited_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    /// The key's name.
    key: String,
    /// expired | revoked | model | requests_per_minute | tokens_per_day.
    limit: &'static str,
}

#[derive(Default)]
struct Snapshot {
    /// By the SHA-256 of the key: already uniform, so hashed with Fx (a
    /// client cannot choose a digest to collide).
    by_hash: rustc_hash::FxHashMap<[u8; 32], Arc<NamedKey>>,
    /// Oldest first.
    ordered: Vec<Arc<NamedKey>>,
    /// Any key not revoked.
    any_in_force: bool,
}

pub(super) struct Inner {
    pub(super) backend: Box<dyn Backend>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Counters by name, kept across reloads (and seeded before a key loads).
    pub(super) uses: Mutex<HashMap<String, Arc<KeyUse>>>,
    /// The version last loaded.
    seen: Mutex<Option<Version>>,
    pub(super) clock: Clock,
    limited: Family<LimitLabels, Counter>,
    started: AtomicBool,
    /// The backend did not answer at the last poll (logged once).
    pub(super) down: AtomicBool,
    /// The counters' sync failed at the last try (logged once).
    pub(super) sync_down: AtomicBool,
}

/// The named keys, as the running proxy holds them. Cheap to clone;
/// `Send + Sync`. A lookup is one SHA-256 and one map lookup.
///
/// `admit`, `check`, `spent` and `has_keys` never do I/O (the request
/// path); `add`, `edit`, `revoke`, `list`, `reload` and `flush_last_used`
/// read or write the file or Redis: from async code, run them on the
/// blocking pool.
#[derive(Clone)]
pub struct KeyRing {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("location", &self.inner.backend.location()).field("keys", &self.inner.snapshot.read().ordered.len()).finish()
    }
}

/// One key as listed: its record (never the hash), its state, and what it
/// used today.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// The name.
    pub name: String,
    /// The key's first 7 characters.
    pub hint: String,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Unix seconds.
    pub revoked_at: Option<u64>,
    /// Unix seconds of the last admitted request, as far as known here.
    pub last_used: Option<u64>,
    /// Model globs; empty = every model.
    pub models: Vec<String>,
    /// Requests per UTC minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Use in the current windows.
    pub today: TodayUse,
}

/// A key's use in the current windows.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TodayUse {
    /// Requests this UTC day.
    pub requests: u64,
    /// Tokens this UTC day.
    pub tokens: u64,
    /// Requests this UTC minute.
    pub minute_requests: u64,
}

thread_local! {
    /// The key this thread admitted last, with the snapshot it was found
    /// in. A client on a kept-alive connection sends the same key with
    /// every request; a match skips the SHA-256 and the map. Held only in
    /// the serving thread's memory, where the request's own bytes are
    /// anyway; any change to the keys makes a new snapshot, which voids it
    /// (the snapshot it holds cannot be freed, so its address is not reused).
    static LAST_ADMITTED: std::cell::RefCell<Option<Admitted>> = const { std::cell::RefCell::new(None) };
}

/// A key a thread admitted: the snapshot it was found in, the key as sent
/// (in words: see [`key_words`]), the key.
type Admitted = (Arc<Snapshot>, KeyWords, Arc<NamedKey>);

/// A sent key of up to [`KEY_WORDS_MAX`] bytes as words (its length first,
/// then its bytes, zero-padded): compared in constant time word by word,
/// a tenth of the instructions of a byte-by-byte compare. Longer keys are
/// not remembered.
type KeyWords = [u64; 9];
const KEY_WORDS_MAX: usize = 64;

fn key_words(sent: &str) -> Option<KeyWords> {
    let b = sent.as_bytes();
    if b.len() > KEY_WORDS_MAX {
        return None;
    }
    let mut words = [0u64; 9];
    words[0] = b.len() as u64;
    for (w, chunk) in words[1..].iter_mut().zip(b.chunks(8)) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_le_bytes(buf);
    }
    Some(words)
}

fn system_clock() -> Clock {
    Arc::new(crate::util::coarse_secs)
}

impl KeyRing {
    /// The keys `config` names: the Redis hash in cluster mode (`[cluster]
    /// redis_url`), else `<data_dir>/keys.json`. Loads them once; fails
    /// when they cannot be read (a keys file that does not parse, Redis
    /// away), so that a proxy never starts without the keys it should
    /// enforce.
    pub fn open(config: &crate::config::Config) -> Result<KeyRing, KeyError> {
        let backend: Box<dyn Backend> = match &config.cluster.redis_url {
            Some(url) => Box::new(RedisKeys::open(url, &config.cluster.key_prefix, None)?),
            None => Box::new(FileKeys::new(&config.data_dir)),
        };
        KeyRing::with_backend(backend, system_clock())
    }

    /// The ring of a serving node: as [`KeyRing::open`], except that a
    /// cluster node whose Redis does not answer starts with the keys it
    /// loaded last (`<data_dir>/cluster/keys.json`), as it starts with its
    /// accounts' snapshot, and catches up when Redis answers.
    pub fn open_node(config: &crate::config::Config) -> Result<KeyRing, KeyError> {
        let Some(url) = &config.cluster.redis_url else { return KeyRing::open(config) };
        let backend: Box<dyn Backend> = Box::new(RedisKeys::open(url, &config.cluster.key_prefix, Some(&config.data_dir))?);
        let ring = KeyRing::bare(backend, system_clock());
        if let Err(e) = ring.reload() {
            let kept = ring.inner.backend.fallback();
            tracing::warn!(error = %e, keys = kept.as_ref().map_or(0, Vec::len), "the keys cannot be read from Redis; starting with those loaded last on this node");
            ring.install(kept.unwrap_or_default());
            ring.inner.down.store(true, Ordering::Relaxed);
        }
        Ok(ring)
    }

    pub(super) fn with_backend(backend: Box<dyn Backend>, clock: Clock) -> Result<KeyRing, KeyError> {
        let ring = KeyRing::bare(backend, clock);
        ring.reload()?;
        Ok(ring)
    }

    /// A ring with nothing loaded yet.
    fn bare(backend: Box<dyn Backend>, clock: Clock) -> KeyRing {
        KeyRing {
            inner: Arc::new(Inner {
                backend,
                snapshot: RwLock::default(),
                uses: Mutex::default(),
                seen: Mutex::new(None),
                clock,
                limited: Family::default(),
                started: AtomicBool::new(false),
                down: AtomicBool::new(false),
                sync_down: AtomicBool::new(false),
            }),
        }
    }

    /// Where the keys are, for messages.
    pub fn location(&self) -> String {
        self.inner.backend.location()
    }

    /// Whether the keys live in the cluster's Redis.
    pub fn is_cluster(&self) -> bool {
        self.inner.backend.cluster().is_some()
    }

    fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    /// Starts the background work (once; later calls do nothing): the
    /// watcher, which reloads the keys within ~0.25 s of a change made by
    /// another process or node and writes `last_used` back once a minute,
    /// and in cluster mode the counters' sync (every second). The threads
    /// end when the last clone of the ring is dropped.
    pub fn start(&self) {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        match self.inner.backend.cluster() {
            None => spawn("grantpool-keys", weak.clone(), POLL, {
                let mut flushed = Instant::now();
                move |ring| {
                    ring.poll();
                    if flushed.elapsed() >= LAST_USED_EVERY {
                        flushed = Instant::now();
                        ring.flush_last_used();
                    }
                }
            }),
            Some((redis, prefix)) => {
                // Changes come on the channel: no Redis command per tick.
                let channel = super::backend::changes_channel(&prefix);
                let watched = weak.clone();
                let spawned = std::thread::Builder::new().name("grantpool-keys".into()).spawn(move || subscribe(watched, &redis, &channel));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start the keys' subscriber; changes by other nodes will not be seen");
                }
                spawn("grantpool-keys-used", weak.clone(), LAST_USED_EVERY, |ring| ring.flush_last_used());
                spawn("grantpool-keyuse", weak, super::sync::EVERY, |ring| ring.sync_counters());
            }
        }
    }

    /// Looks up the key a client sent: `Unknown` when it is no named key,
    /// `Refused` (401) when it expired or was revoked.
    pub fn admit(&self, sent: &str) -> Admission {
        let Some(key) = self.find(sent) else { return Admission::Unknown };
        let now = self.now();
        if let Some(refusal) = limits::refusal_at(&key, now) {
            self.count_limited(&key, &refusal);
            return Admission::Refused(refusal);
        }
        key.usage.touch(now);
        Admission::Named(key)
    }

    /// The named key `sent` is, if any: the serving thread's last one when
    /// `sent` equals it (compared in constant time) and the keys have not
    /// changed since, else by its SHA-256.
    fn find(&self, sent: &str) -> Option<Arc<NamedKey>> {
        let snap = self.inner.snapshot.read();
        let words = key_words(sent);
        let last = LAST_ADMITTED.with_borrow(|last| match (last, &words) {
            (Some((s, k, key)), Some(w)) if Arc::ptr_eq(s, &snap) && bool::from(k[..].ct_eq(&w[..])) => Some(key.clone()),
            _ => None,
        });
        if last.is_some() || snap.by_hash.is_empty() {
            return last;
        }
        let hash = digest(sent);
        let key = snap.by_hash.get(&hash)?.clone();
        // The map found it by hash; compare again in constant time all the same.
        if !bool::from(key.hash.ct_eq(&hash)) {
            return None;
        }
        if let Some(w) = words {
            LAST_ADMITTED.set(Some((Arc::clone(&snap), w, key.clone())));
        }
        Some(key)
    }

    /// Whether there is any key not revoked (`auth_mode = "auto"` then
    /// asks clients for a key).
    pub fn has_keys(&self) -> bool {
        self.inner.snapshot.read().any_in_force
    }

    /// Before an account is chosen: model globs (403), requests per minute
    /// (429), tokens per day (429). Counts the request when it passes.
    pub fn check(&self, key: &NamedKey, model: &str) -> Result<(), KeyRefusal> {
        limits::check(key, model, self.now()).inspect_err(|refusal| self.count_limited(key, refusal))
    }

    /// After an answer: the tokens it used (input, output and thinking, as the caller
    /// counts them).
    pub fn spent(&self, key: &NamedKey, tokens: u64) {
        if tokens > 0 {
            key.usage.spend(tokens, self.now());
        }
    }

    /// Start-of-day totals from the usage log (so a restart does not reset
    /// a daily limit): name → tokens used today. Raises a key's count to
    /// the given total, never lowers it. Unneeded in cluster mode (Redis
    /// holds the day), where it does nothing.
    pub fn seed_today(&self, per_key: &HashMap<String, u64>) {
        if self.is_cluster() {
            tracing::debug!("key token totals are shared through Redis; the usage log's are not needed");
            return;
        }
        let now = self.now();
        let mut uses = self.inner.uses.lock();
        for (name, tokens) in per_key {
            uses.entry(name.clone()).or_default().seed_tokens(*tokens, now);
        }
    }

    /// Adds a key; returns its record and the key itself (shown once:
    /// only its hash is kept).
    pub fn add(&self, spec: KeySpec) -> Result<(KeyRecord, String), KeyError> {
        check_name(&spec.name)?;
        spec.models.iter().try_for_each(|g| check_glob(g))?;
        if spec.requests_per_minute == Some(0) {
            return Err(KeyError::BadLimit { what: "--requests-per-minute", edit: false });
        }
        if spec.tokens_per_day == Some(0) {
            return Err(KeyError::BadLimit { what: "--tokens-per-day", edit: false });
        }
        if let Some(at) = spec.expires_at.filter(|t| *t <= self.now()) {
            return Err(KeyError::InPast { at: super::record::fmt_utc(at) });
        }
        let secret = new_secret();
        let record = KeyRecord {
            name: spec.name.clone(),
            hash: hash_text(&digest(&secret)),
            hint: hint_of(&secret),
            created_at: self.now(),
            expires_at: spec.expires_at,
            revoked_at: None,
            models: spec.models,
            requests_per_minute: spec.requests_per_minute,
            tokens_per_day: spec.tokens_per_day,
            last_used: None,
            extra: Default::default(),
        };
        let records = self.inner.backend.modify(&mut |records| {
            if records.iter().any(|r| r.name == record.name) {
                return Err(KeyError::Duplicate { name: record.name.clone() });
            }
            records.push(record.clone());
            Ok(())
        })?;
        self.install(records);
        tracing::info!(key_name = %record.name, hint = %record.hint, "key added");
        Ok((record, secret))
    }

    /// Changes a key's models, limits or expiry.
    pub fn edit(&self, name: &str, change: KeyChange) -> Result<KeyRecord, KeyError> {
        if let Some(models) = &change.models {
            models.iter().try_for_each(|g| check_glob(g))?;
        }
        if change.requests_per_minute == Some(Some(0)) {
            return Err(KeyError::BadLimit { what: "--requests-per-minute", edit: true });
        }
        if change.tokens_per_day == Some(Some(0)) {
            return Err(KeyError::BadLimit { what: "--tokens-per-day", edit: true });
        }
        let record = self.change(name, |r| {
            if let Some(m) = &change.models {
                r.models = m.clone();
            }
            if let Some(v) = change.requests_per_minute {
                r.requests_per_minute = v;
            }
            if let Some(v) = change.tokens_per_day {
                r.tokens_per_day = v;
            }
            if let Some(v) = change.expires_at {
                r.expires_at = v;
            }
        })?;
        tracing::info!(key_name = %name, "key edited");
        Ok(record)
    }

    /// Revokes a key for good (a revoked key keeps its name; revoking it
    /// again changes nothing).
    pub fn revoke(&self, name: &str) -> Result<KeyRecord, KeyError> {
        let now = self.now();
        let record = self.change(name, |r| {
            r.revoked_at.get_or_insert(now);
        })?;
        tracing::info!(key_name = %name, "key revoked");
        Ok(record)
    }

    fn change(&self, name: &str, f: impl Fn(&mut KeyRecord)) -> Result<KeyRecord, KeyError> {
        let records = self.inner.backend.modify(&mut |records| match records.iter_mut().find(|r| r.name == name) {
            Some(r) => {
                f(r);
                Ok(())
            }
            None => Err(KeyError::NotFound { name: name.to_string(), known: records.iter().map(|r| r.name.clone()).collect() }),
        })?;
        let record = records.iter().find(|r| r.name == name).cloned().expect("the record just changed");
        self.install(records);
        Ok(record)
    }

    /// Every key, oldest first: record (never the hash), limits, and
    /// today's requests and tokens (in cluster mode read from Redis, else
    /// this process's counters).
    pub fn list(&self) -> Vec<KeyView> {
        let now = self.now();
        let keys = self.inner.snapshot.read().ordered.clone();
        let shared = self.shared_totals(&keys, now);
        keys.iter()
            .map(|k| {
                let r = &k.record;
                let t = shared.as_ref().and_then(|s| s.get(&r.name).copied()).unwrap_or_else(|| k.usage.totals(now));
                let seen = k.usage.last_used.load(Ordering::Relaxed);
                KeyView {
                    name: r.name.clone(),
                    hint: r.hint.clone(),
                    state: r.state(now),
                    created_at: r.created_at,
                    expires_at: r.expires_at,
                    revoked_at: r.revoked_at,
                    last_used: r.last_used.max((seen > 0).then_some(seen)),
                    models: r.models.clone(),
                    requests_per_minute: r.requests_per_minute,
                    tokens_per_day: r.tokens_per_day,
                    today: TodayUse { requests: t.day_requests, tokens: t.day_tokens, minute_requests: t.minute_requests },
                }
            })
            .collect()
    }

    fn shared_totals(&self, keys: &[Arc<NamedKey>], now: u64) -> Option<HashMap<String, Totals>> {
        let (redis, prefix) = self.inner.backend.cluster()?;
        let names: Vec<String> = keys.iter().map(|k| k.record.name.clone()).collect();
        match super::sync::read_totals(&redis, &prefix, &names, now) {
            Ok(t) => Some(names.into_iter().zip(t).collect()),
            Err(f) => {
                tracing::warn!(place = %redis.place(), cause = %f.cause, "could not read the keys' counters from Redis; listing this node's");
                None
            }
        }
    }

    /// Adds `grantpool_key_limited_total{key,limit}` (requests refused by a
    /// key's expiry, revocation, models or limits) to `registry` (the
    /// app's, whose prefix is `grantpool`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register("key_limited", "Requests refused by a named key's expiry, revocation, models or limits", self.inner.limited.clone());
    }

    fn count_limited(&self, key: &NamedKey, refusal: &KeyRefusal) {
        self.inner.limited.get_or_create(&LimitLabels { key: key.record.name.clone(), limit: refusal.limit }).inc();
        tracing::debug!(key_name = %key.record.name, limit = refusal.limit, status = refusal.status, "named key refused");
    }

    /// Reads the keys again (the watcher does this on a change).
    pub fn reload(&self) -> Result<(), KeyError> {
        let version = self.inner.backend.version()?;
        let records = self.inner.backend.load()?;
        self.install(records);
        *self.inner.seen.lock() = Some(version);
        Ok(())
    }

    /// Builds a snapshot of `records` and swaps it in.
    fn install(&self, records: Vec<KeyRecord>) {
        let mut snap = Snapshot::default();
        // A key keeps its label across reloads: usage rows and token
        // counters know a name by the address of its bytes.
        let labels: HashMap<String, bytes::Bytes> =
            self.inner.snapshot.read().ordered.iter().map(|k| (k.record.name.clone(), k.label.clone())).collect();
        let mut uses = self.inner.uses.lock();
        for record in records {
            let Some(hash) = parse_hash(&record.hash) else {
                tracing::warn!(key_name = %record.name, place = %self.inner.backend.location(), "a key record's hash is not \"sha256:<64 hex digits>\"; the key is skipped: revoke it and add a new one");
                continue;
            };
            let usage = uses.entry(record.name.clone()).or_default().clone();
            if let Some(t) = record.last_used {
                usage.last_written.fetch_max(t, Ordering::Relaxed);
            }
            snap.any_in_force |= record.revoked_at.is_none();
            let label = labels.get(&record.name).cloned().unwrap_or_else(|| bytes::Bytes::copy_from_slice(record.name.as_bytes()));
            let key = Arc::new(NamedKey { record, hash, usage, label });
            snap.by_hash.insert(hash, key.clone());
            snap.ordered.push(key);
        }
        drop(uses);
        snap.ordered.sort_by(|a, b| (a.record.created_at, &a.record.name).cmp(&(b.record.created_at, &b.record.name)));
        *self.inner.snapshot.write() = Arc::new(snap);
    }

    /// One look for a change; reloads when there is one.
    pub(super) fn poll(&self) {
        let version = match self.inner.backend.version() {
            Ok(v) => v,
            Err(e) => {
                if !self.inner.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cannot look for changes to the keys; the keys loaded last stay in force");
                }
                return;
            }
        };
        if self.inner.down.swap(false, Ordering::Relaxed) {
            tracing::info!(place = %self.inner.backend.location(), "the keys can be read again");
        }
        if *self.inner.seen.lock() == Some(version) {
            return;
        }
        match self.inner.backend.load() {
            Ok(records) => {
                self.install(records);
                tracing::debug!(place = %self.inner.backend.location(), "keys reloaded");
            }
            // Logged once per version: a fixed file has a new one.
            Err(e) => tracing::warn!(error = %e, "the keys could not be reloaded; the keys loaded last stay in force"),
        }
        *self.inner.seen.lock() = Some(version);
    }

    /// Pushes what this node counted since the last sync and reads the
    /// shared totals back, in one pipelined round trip ([`super::sync`]).
    /// On failure the counts are kept for the next try.
    pub(super) fn sync_counters(&self) {
        let Some((redis, prefix)) = self.inner.backend.cluster() else { return };
        let now = (self.inner.clock)();
        let uses: Vec<(String, Arc<KeyUse>)> = self.inner.uses.lock().iter().map(|(n, u)| (n.clone(), u.clone())).collect();
        super::sync::sync_counters(&redis, &prefix, &uses, now, &self.inner.sync_down);
    }

    /// Writes the `last_used` of keys used since it was last written (the
    /// watcher does this once a minute; call it at shutdown to keep the
    /// last minute's).
    pub fn flush_last_used(&self) {
        let keys = self.inner.snapshot.read().ordered.clone();
        let due: HashMap<String, u64> = keys
            .iter()
            .filter_map(|k| {
                let t = k.usage.last_used.load(Ordering::Relaxed);
                (t > k.usage.last_written.load(Ordering::Relaxed)).then(|| (k.record.name.clone(), t))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let result = self.inner.backend.modify(&mut |records| {
            for r in records.iter_mut() {
                if let Some(t) = due.get(&r.name) {
                    r.last_used = r.last_used.max(Some(*t));
                }
            }
            Ok(())
        });
        match result {
            Ok(records) => {
                for k in &keys {
                    if let Some(t) = due.get(&k.record.name) {
                        k.usage.last_written.fetch_max(*t, Ordering::Relaxed);
                    }
                }
                self.install(records);
            }
            Err(e) => tracing::warn!(error = %e, keys = due.len(), "could not write when the keys were last used; will try again"),
        }
    }
}

/// A named background thread running `tick` every `every` while the ring lives.
/// A cluster node's watch: subscribed to the keys' change channel, it
/// reloads on each announcement, and once on every (re)subscription for
/// what changed while it was not listening. A lost link is retried every
/// second; the thread ends when the ring goes.
fn subscribe(ring: Weak<Inner>, redis: &Redis, channel: &str) {
    loop {
        let Some(inner) = ring.upgrade() else { return };
        let mut con = match redis.connect() {
            Ok(con) => con,
            Err(_) => {
                // Logs once that Redis is away, and keeps the keys loaded last.
                KeyRing { inner }.poll();
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        drop(inner);
        // Wakes every second to see whether the ring is still there.
        let _ = con.set_read_timeout(Some(Duration::from_secs(1)));
        let mut sub = con.as_pubsub();
        if sub.subscribe(channel).is_ok() {
            let Some(inner) = ring.upgrade() else { return };
            KeyRing { inner }.poll();
            loop {
                match sub.get_message() {
                    Ok(_) => {
                        let Some(inner) = ring.upgrade() else { return };
                        KeyRing { inner }.poll();
                    }
                    Err(e) if e.is_timeout() => {
                        if ring.strong_count() == 0 {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn spawn(name: &str, ring: Weak<Inner>, every: Duration, mut tick: impl FnMut(&KeyRing) + Send + 'static) {
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || loop {
        std::thread::sleep(every);
        let Some(inner) = ring.upgrade() else { return };
        tick(&KeyRing { inner });
    });
    if let Err(e) = spawned {
        tracing::error!(thread = name, error = %e, "could not start a keys thread; changes by other processes will not be seen");
    }
}

/// For tests: the snapshot's names, oldest first.
#[cfg(test)]
pub(super) fn names(ring: &KeyRing) -> Vec<String> {
    ring.inner.snapshot.read().ordered.iter().map(|k| k.record.name.clone()).collect()
}
