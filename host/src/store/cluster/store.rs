//! The cluster backend: account records in Redis, the same JSON and the
//! same rules as the account files, shared by every node.
//!
//! - **Writes** are compare-and-set scripts (`scripts::PUT`): a change is
//!   read, decided in Rust (the store's rules, the precondition of an
//!   update), and written only if the record is still what was read — else
//!   read again. The write, a new revision and the change message are one
//!   atomic step, so no node loses another's update and every node sees
//!   changes in the order they were made.
//! - **Live:** the subscriber thread follows `P:changes` and hands each
//!   change to the pool as it comes (a message carries the record itself:
//!   no read back). After a reconnect it applies this node's journal, then
//!   reads everything again ([`Change::Reloaded`]). A node's own writes are
//!   in its pool at once; their messages are recognised by revision.
//! - **Redis away** (node role): reads come from the last known records
//!   (the mirror), updates are decided on them and kept in the journal
//!   (`journal.rs`), upserts and removals are refused (a person is there to
//!   try again). The snapshot (`snapshot.rs`) lets a node restart while
//!   Redis is away.
//! - **Tool role** (the CLI): no journal, no snapshot; Redis must answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::super::backend::{Backend, Change, ChangeSink, Cluster, LoadReport, SkippedFile, StoreError, Updated, Watch};
use super::super::file::{email_key, encode, is_valid_id, new_account_id, parse_account, peek_email, AccountFile};
use super::super::upsert::UpsertOutcome;
use super::conn::{Fail, Redis};
use super::coord::Coordinator;
use super::journal::{merge, Entry, Journal};
use super::keys::Keys;
use super::link::Link;
use super::message::{self, Event};
use super::{scripts, snapshot};

/// Compare-and-set attempts before an update gives up (each lost race
/// means another node wrote the record meanwhile).
const MAX_CAS: usize = 64;
/// How long the subscriber waits for a message before checking that
/// Redis still answers.
const QUIET_CHECK: Duration = Duration::from_millis(500);
/// Longest pause between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_millis(1000);
/// Least time between two snapshot writes.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(2);

/// Who opens the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A serving node: journal and snapshot in `<data_dir>/cluster/`; it
    /// keeps serving (and may start, from its snapshot) while Redis is away.
    Node,
    /// A command-line tool: Redis must answer.
    Tool,
}

/// How to open a [`ClusterStore`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The Redis URL (`redis://…`, `rediss://…`); may hold a password.
    pub url: String,
    /// Prefix of every key.
    pub key_prefix: String,
    /// The node's data directory (journal and snapshot in `cluster/`).
    pub data_dir: PathBuf,
    /// Node or tool.
    pub role: Role,
}

/// The cluster backend. `Send + Sync`.
pub struct ClusterStore {
    inner: Arc<Inner>,
}

/// The last known records, and the revisions they stand at.
#[derive(Default)]
struct Mirror {
    accounts: HashMap<String, AccountFile>,
    unreadable: Vec<SkippedFile>,
    /// Every change up to this revision is in `accounts` (the last full load).
    base_rev: u64,
    /// Per account, the revision of the last change applied after it.
    revs: HashMap<String, u64>,
    /// Changed since the last snapshot.
    dirty: bool,
}

struct Inner {
    redis: Arc<Redis>,
    keys: Keys,
    link: Arc<Link>,
    node: String,
    role: Role,
    mirror: RwLock<Mirror>,
    journal: Option<Journal>,
    snapshot: Option<PathBuf>,
    last_snapshot: Mutex<Option<Instant>>,
    coord: Arc<Coordinator>,
    watching: AtomicBool,
}

/// An update that did not go through.
enum Failed {
    Store(StoreError),
    Redis(Fail),
}

impl From<Fail> for Failed {
    fn from(f: Fail) -> Failed {
        Failed::Redis(f)
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Failed {
        Failed::Store(e)
    }
}

impl ClusterStore {
    /// Connects, applies what this node's journal holds from an earlier
    /// run, and reads every record. A node (not a tool) that cannot reach
    /// Redis starts from its snapshot when it has one (degraded until Redis
    /// answers), and otherwise refuses to start with an error saying so.
    pub fn open(options: ClusterOptions) -> Result<ClusterStore, StoreError> {
        let place = crate::util::redact_url(&options.url);
        let redis = Arc::new(Redis::open(&options.url, &place)?);
        let keys = Keys::new(&options.key_prefix);
        let link = Arc::new(Link::new(&place));
        let node = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let (journal, snapshot) = match options.role {
            Role::Node => {
                let dir = options.data_dir.join("cluster");
                create_private_dir(&dir)?;
                (Some(Journal::open(&dir.join("journal.json"))?), Some(dir.join("snapshot.json")))
            }
            Role::Tool => (None, None),
        };
        let coord = Arc::new(Coordinator::new(redis.clone(), keys.clone(), link.clone(), node.clone()));
        let inner = Arc::new(Inner {
            redis,
            keys,
            link,
            node,
            role: options.role,
            mirror: RwLock::new(Mirror::default()),
            journal,
            snapshot,
            last_snapshot: Mutex::new(None),
            coord,
            watching: AtomicBool::new(false),
        });
        if let Some(j) = &inner.journal {
            inner.link.set_journal_len(j.len());
        }
        let first = inner.replay_journal(false).and_then(|_| inner.load(false));
        match first {
            Ok(_) => inner.write_snapshot(),
            Err(f) if f.down && options.role == Role::Node => inner.start_from_snapshot(&f)?,
            Err(f) => return Err(f.into_store(&place)),
        }
        Ok(ClusterStore { inner })
    }

    /// This node's id in change messages.
    pub fn node_id(&self) -> &str {
        &self.inner.node
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(super::super::backend::io_err("create directory", dir))
}

impl Inner {
    fn place(&self) -> &str {
        self.redis.place()
    }

    /// Runs a command. `checked`: fail at once while the link is down (the
    /// subscriber, which brings it back, runs unchecked).
    fn run<T>(&self, checked: bool, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, Fail> {
        if checked && self.role == Role::Node && !self.link.is_up() {
            return Err(Fail { down: true, cause: self.link.status().cause.unwrap_or_else(|| "unreachable".into()) });
        }
        let r = self.redis.run(f);
        if let Err(fail) = &r {
            if fail.down && checked && self.role == Role::Node {
                self.link.down(&fail.cause);
            }
        }
        r
    }

    fn parse(&self, id: &str, bytes: &[u8]) -> Result<AccountFile, StoreError> {
        match parse_account(bytes) {
            Ok(mut a) => {
                a.id = id.to_string();
                Ok(a)
            }
            Err(cause) => Err(StoreError::CorruptRecord { id: id.to_string(), key: self.keys.account(id), cause }),
        }
    }

    /// Reads one record: `None` when there is none.
    fn fetch(&self, checked: bool, id: &str) -> Result<Option<(AccountFile, Vec<u8>)>, Failed> {
        let key = self.keys.account(id);
        let raw: Option<Vec<u8>> = self.run(checked, |c| redis::cmd("GET").arg(&key).query(c))?;
        match raw {
            None => Ok(None),
            Some(raw) => Ok(Some((self.parse(id, &raw)?, raw))),
        }
    }

    /// Compare-and-set of record `id` (see `scripts::PUT`): the revision,
    /// or 0 when it changed since it was read.
    fn put(&self, checked: bool, id: &str, expected: Option<&[u8]>, new: &[u8], email: &str, email_owner: &str) -> Result<u64, Fail> {
        let now = crate::util::now_ms();
        let rev: i64 = self.run(checked, |c| {
            scripts::PUT
                .key(self.keys.account(id))
                .key(self.keys.ids())
                .key(self.keys.rev())
                .key(self.keys.email(&email_key(email)))
                .arg(expected.unwrap_or(b""))
                .arg(new)
                .arg(id)
                .arg(email_owner)
                .arg(self.keys.channel())
                .arg(&self.node)
                .arg(now.to_string())
                .invoke(c)
        })?;
        Ok(rev.max(0) as u64)
    }

    /// Keeps `account` as the last known record (at `rev`, when written).
    fn remember(&self, account: &AccountFile, rev: Option<u64>) {
        let mut m = self.mirror.write();
        if let Some(rev) = rev {
            let r = m.revs.entry(account.id.clone()).or_default();
            *r = (*r).max(rev);
        }
        m.accounts.insert(account.id.clone(), account.clone());
        m.unreadable.retain(|s| s.id.as_deref() != Some(account.id.as_str()));
        m.dirty = true;
    }

    /// Every record, read in one step; the mirror becomes it.
    fn load(&self, checked: bool) -> Result<LoadReport, Fail> {
        let raw: Vec<Vec<u8>> = self.run(checked, |c| {
            scripts::LOAD_ALL.key(self.keys.ids()).key(self.keys.rev()).arg(self.keys.account_prefix()).invoke(c)
        })?;
        let mut items = raw.into_iter();
        let rev: u64 = items.next().and_then(|r| String::from_utf8(r).ok()).and_then(|r| r.parse().ok()).unwrap_or(0);
        let mut report = LoadReport::default();
        while let (Some(id), Some(bytes)) = (items.next(), items.next()) {
            let id = String::from_utf8_lossy(&id).into_owned();
            match self.parse(&id, &bytes) {
                Ok(a) => report.accounts.push(a),
                Err(e) => {
                    let key = self.keys.account(&id);
                    tracing::warn!(key = %key, "skipping account record {key}: {e}");
                    report.skipped.push(SkippedFile { path: PathBuf::from(key), id: Some(id), cause: e.to_string(), email: peek_email(&bytes) });
                }
            }
        }
        report.accounts.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut m = self.mirror.write();
        m.accounts = report.accounts.iter().map(|a| (a.id.clone(), a.clone())).collect();
        m.unreadable = report.skipped.clone();
        m.base_rev = rev;
        m.revs.retain(|_, r| *r > rev);
        m.dirty = true;
        Ok(report)
    }

    /// The mirror as a load report.
    fn mirror_report(&self) -> LoadReport {
        let m = self.mirror.read();
        let mut accounts: Vec<AccountFile> = m.accounts.values().cloned().collect();
        accounts.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        LoadReport { accounts, skipped: m.unreadable.clone() }
    }

    /// Read-modify-write of `id` in Redis, by compare-and-set.
    fn update_in_redis(&self, id: &str, change: &mut dyn FnMut(&mut AccountFile) -> bool) -> Result<Updated, Failed> {
        for _ in 0..MAX_CAS {
            let Some((current, raw)) = self.fetch(true, id)? else {
                return Err(StoreError::NotFound { id: id.to_string(), place: self.keys.account(id) }.into());
            };
            let mut account = current.clone();
            if !change(&mut account) {
                return Ok(Updated { account: current, applied: false });
            }
            account.id = id.to_string();
            account.normalize();
            let bytes = encode(&account);
            if bytes == raw {
                return Ok(Updated { account, applied: true });
            }
            let rev = self.put(true, id, Some(&raw), &bytes, &account.email, "*")?;
            if rev > 0 {
                self.remember(&account, Some(rev));
                return Ok(Updated { account, applied: true });
            }
        }
        Err(StoreError::Cluster { place: self.place().to_string(), cause: format!("account {id} kept changing under this update ({MAX_CAS} tries); try again") }.into())
    }

    /// The update decided on the last known record and kept in the journal.
    fn update_journaled(&self, journal: &Journal, id: &str, change: &mut dyn FnMut(&mut AccountFile) -> bool) -> Result<Updated, StoreError> {
        let Some(base) = self.mirror.read().accounts.get(id).cloned() else {
            return Err(StoreError::NotFound { id: id.to_string(), place: format!("the last known pool of {} (unreachable)", self.place()) });
        };
        let mut account = base.clone();
        if !change(&mut account) {
            return Ok(Updated { account: base, applied: false });
        }
        account.id = id.to_string();
        account.normalize();
        if account == base {
            return Ok(Updated { account, applied: true });
        }
        let n = journal.record(id, &base, &account)?;
        self.link.set_journal_len(n);
        self.remember(&account, None);
        tracing::debug!(account = %id, journal = n, "decision kept in the cluster journal until Redis is back");
        Ok(Updated { account, applied: true })
    }

    /// Applies one journal entry to Redis: true when it landed, false when
    /// it was dropped (the account is gone or got another grant).
    fn replay_entry(&self, checked: bool, journal: &Journal, entry: &Entry) -> Result<bool, Fail> {
        for _ in 0..MAX_CAS {
            let fetched = match self.fetch(checked, &entry.id) {
                Ok(f) => f,
                Err(Failed::Redis(f)) => return Err(f),
                Err(Failed::Store(e)) => {
                    tracing::error!(account = %entry.id, "journaled decisions dropped: {e}");
                    self.link.set_journal_len(journal.done(entry));
                    return Ok(false);
                }
            };
            let Some((current, raw)) = fetched else {
                tracing::info!(account = %entry.id, email = %entry.base.email, "journaled decisions for {} dropped: the account was removed meanwhile", entry.base.email);
                self.link.set_journal_len(journal.done(entry));
                return Ok(false);
            };
            let Some(mut merged) = merge(&current, &entry.base, &entry.new, crate::util::now_ms() as i64) else {
                tracing::info!(account = %entry.id, email = %current.email, "journaled decisions for {} dropped: the account got a new refresh token meanwhile", current.email);
                self.link.set_journal_len(journal.done(entry));
                return Ok(false);
            };
            merged.normalize();
            let bytes = encode(&merged);
            if bytes != raw {
                let rev = self.put(checked, &entry.id, Some(&raw), &bytes, &merged.email, "*")?;
                if rev == 0 {
                    continue;
                }
                self.remember(&merged, Some(rev));
            }
            if merged.disabled && !current.disabled {
                tracing::warn!(account = %entry.id, email = %merged.email, "journaled disable of {} applied to the cluster: {}", merged.email, merged.disabled_reason.as_deref().unwrap_or(""));
            }
            self.link.set_journal_len(journal.done(entry));
            return Ok(true);
        }
        Ok(false)
    }

    /// Applies the whole journal: (landed, dropped).
    fn replay_journal(&self, checked: bool) -> Result<(usize, usize), Fail> {
        let Some(journal) = &self.journal else { return Ok((0, 0)) };
        let (mut landed, mut dropped) = (0, 0);
        for entry in journal.pending() {
            if self.replay_entry(checked, journal, &entry)? {
                landed += 1;
            } else {
                dropped += 1;
            }
        }
        Ok((landed, dropped))
    }

    /// Redis is away at start: the snapshot (with this node's journal laid
    /// over it), or an error saying why the node cannot start.
    fn start_from_snapshot(&self, fail: &Fail) -> Result<(), StoreError> {
        let path = self.snapshot.as_ref().expect("a node has a snapshot path");
        let refuse = |why: String| StoreError::Cluster {
            place: self.place().to_string(),
            cause: format!("{}; a node starts without Redis only from the local snapshot of an earlier run, and {why}: start Redis (or fix [cluster] redis_url) and start again", fail.cause),
        };
        let (accounts, written_ms) = match snapshot::read(path, self.place(), self.keys.prefix()) {
            Ok(Some(s)) => s,
            Ok(None) => return Err(refuse(format!("there is none ({})", path.display()))),
            Err(why) => return Err(refuse(why)),
        };
        {
            let mut m = self.mirror.write();
            m.accounts = accounts.into_iter().map(|a| (a.id.clone(), a)).collect();
            if let Some(j) = &self.journal {
                for e in j.pending() {
                    let laid = match m.accounts.get(&e.id) {
                        Some(cur) => merge(cur, &e.base, &e.new, crate::util::now_ms() as i64),
                        None => Some(e.new.clone()),
                    };
                    if let Some(a) = laid {
                        m.accounts.insert(e.id.clone(), a);
                    }
                }
            }
        }
        self.link.down(&fail.cause);
        let age = crate::util::now_ms().saturating_sub(written_ms) / 1000;
        tracing::warn!(
            snapshot = %path.display(),
            "started from the local snapshot ({} accounts, written {age}s ago) because the cluster store is unreachable; this node catches up when Redis answers",
            self.mirror.read().accounts.len()
        );
        Ok(())
    }

    fn write_snapshot(&self) {
        let Some(path) = &self.snapshot else { return };
        let accounts: Vec<AccountFile> = {
            let mut m = self.mirror.write();
            m.dirty = false;
            m.accounts.values().cloned().collect()
        };
        *self.last_snapshot.lock() = Some(Instant::now());
        if let Err(e) = snapshot::write(path, self.place(), self.keys.prefix(), crate::util::now_ms(), accounts) {
            tracing::warn!("could not write the cluster snapshot: {e}");
        }
    }

    fn maybe_snapshot(&self) {
        let due = self.last_snapshot.lock().is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY);
        if due && self.mirror.read().dirty {
            self.write_snapshot();
        }
    }

    /// The bindings of every live session: (hash, account, until ms).
    fn load_sessions(&self) -> Result<Vec<(String, String, u64)>, Fail> {
        let prefix = self.keys.session_prefix();
        let pattern = format!("{prefix}*");
        let now = crate::util::now_ms();
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) =
                self.run(false, |c| redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(c))?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("GET").arg(k).cmd("PTTL").arg(k);
                }
                let values: Vec<redis::Value> = self.run(false, |c| pipe.query(c))?;
                for (k, pair) in keys.iter().zip(values.chunks(2)) {
                    let account: Option<String> = redis::from_redis_value_ref(&pair[0]).ok().flatten();
                    let ttl: i64 = redis::from_redis_value_ref(&pair[1]).unwrap_or(-2);
                    if let (Some(account), true) = (account, ttl > 0) {
                        out.push((k[prefix.len()..].to_string(), account, now + ttl as u64));
                    }
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    /// After (re)subscribing: this node's journal applied, everything read
    /// again and handed to the pool, session bindings learned.
    fn catch_up(&self, sink: &ChangeSink) -> Result<(usize, usize, usize), Fail> {
        self.reseed_if_emptied()?;
        let (landed, dropped) = self.replay_journal(false)?;
        let report = self.load(false)?;
        let n = report.accounts.len();
        sink(Change::Reloaded(report));
        match self.load_sessions() {
            Ok(sessions) => {
                for (session, account, until_ms) in sessions {
                    sink(Change::SessionBound { session, account, until_ms });
                }
            }
            Err(f) => tracing::debug!("session bindings not read: {}", f.cause),
        }
        self.write_snapshot();
        Ok((landed, dropped, n))
    }

    /// A Redis that came back without any data (no revision at all: it
    /// keeps nothing across restarts) while this node knew accounts lost
    /// them; it did not remove them (a removal is a revision). Puts back
    /// every account this node knew, each only where nobody did already.
    fn reseed_if_emptied(&self) -> Result<(), Fail> {
        let rev: Option<u64> = self.run(false, |c| redis::cmd("GET").arg(self.keys.rev()).query(c))?;
        let known: Vec<AccountFile> = {
            let m = self.mirror.read();
            if rev.is_some() || m.accounts.is_empty() {
                return Ok(());
            }
            m.accounts.values().cloned().collect()
        };
        let mut restored = 0;
        for a in &known {
            if self.put(false, &a.id, None, &encode(a), &a.email, "")? > 0 {
                restored += 1;
            }
        }
        tracing::error!(
            redis = %self.place(),
            "the cluster store {} came back empty (it keeps no data across restarts: run Redis with appendonly yes); restored {restored} of the {} accounts this node knew",
            self.place(),
            known.len()
        );
        Ok(())
    }

    /// One change message.
    fn on_message(&self, payload: &[u8], sink: &ChangeSink) {
        let Some(msg) = message::parse(payload) else { return };
        let change = match msg.event {
            Event::Put { id, rev, record } => {
                let mut m = self.mirror.write();
                if rev <= m.base_rev || m.revs.get(&id).is_some_and(|r| *r >= rev) {
                    return;
                }
                m.revs.insert(id.clone(), rev);
                match self.parse(&id, record.as_bytes()) {
                    Ok(a) => {
                        m.accounts.insert(id, a.clone());
                        m.dirty = true;
                        Change::Upserted(a)
                    }
                    Err(e) => Change::Unreadable { id, cause: e.to_string() },
                }
            }
            Event::Removed { id, rev } => {
                let mut m = self.mirror.write();
                if rev <= m.base_rev || m.revs.get(&id).is_some_and(|r| *r >= rev) {
                    return;
                }
                m.revs.insert(id.clone(), rev);
                m.accounts.remove(&id);
                m.dirty = true;
                Change::Removed(id)
            }
            Event::Session { session, account, until_ms } => Change::SessionBound { session, account, until_ms },
        };
        sink(change);
        if msg.node != self.node {
            self.link.applied(crate::util::now_ms().saturating_sub(msg.sent_ms));
        }
    }

    /// The subscriber: follows the change channel for the life of the
    /// watch, reconnecting (and catching up) whenever the link breaks.
    fn follow(self: Arc<Self>, sink: ChangeSink, stop: Arc<AtomicBool>) {
        let channel = self.keys.channel();
        let mut pause = Duration::from_millis(100);
        let mut first = true;
        while !stop.load(Ordering::Relaxed) {
            let mut con = match self.redis.connect() {
                Ok(c) => c,
                Err(f) => {
                    self.lost(&f.cause, &mut pause);
                    continue;
                }
            };
            let _ = con.set_read_timeout(Some(QUIET_CHECK));
            let mut ps = con.as_pubsub();
            if let Err(e) = ps.subscribe(&channel) {
                self.lost(&e.to_string(), &mut pause);
                continue;
            }
            // Subscribed: whatever changes from here on is queued on this
            // connection while the node catches up.
            match self.catch_up(&sink) {
                Ok((landed, dropped, accounts)) => {
                    if self.link.restored() {
                        // Decisions journaled while catching up (the link
                        // still counted as down) go too.
                        if let Err(f) = self.replay_journal(true) {
                            tracing::debug!("journal replay after the catch-up failed: {}", f.cause);
                        }
                        tracing::warn!(
                            redis = %self.place(),
                            "cluster store {} is back: {landed} journaled decisions applied, {dropped} dropped (their account was re-added or removed meanwhile), {accounts} accounts resynced",
                            self.place()
                        );
                    } else if first {
                        tracing::info!(redis = %self.place(), accounts, "following the cluster store {}", self.place());
                    }
                    first = false;
                }
                Err(f) => {
                    self.lost(&f.cause, &mut pause);
                    continue;
                }
            }
            pause = Duration::from_millis(100);
            while !stop.load(Ordering::Relaxed) {
                match ps.get_message() {
                    Ok(msg) => self.on_message(msg.get_payload_bytes(), &sink),
                    Err(e) if e.is_timeout() => {
                        // Quiet: make sure Redis is still there.
                        if let Err(f) = self.redis.run(|c| redis::cmd("PING").query::<String>(c)) {
                            if f.down {
                                self.link.down(&f.cause);
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        self.link.down(&e.to_string());
                        break;
                    }
                }
                if self.role == Role::Node {
                    self.maybe_snapshot();
                }
            }
        }
    }

    /// The link broke (or would not come back): mark it, wait a little.
    fn lost(&self, cause: &str, pause: &mut Duration) {
        self.link.down(cause);
        std::thread::sleep(*pause);
        *pause = (*pause * 2).min(RECONNECT_MAX);
    }
}

impl Backend for ClusterStore {
    fn location(&self) -> String {
        format!("cluster store {} (prefix {})", self.inner.place(), self.inner.keys.prefix())
    }

    fn load_all(&self) -> LoadReport {
        match self.inner.load(true) {
            Ok(report) => report,
            Err(f) => {
                if self.inner.role == Role::Tool {
                    tracing::error!("{}", f.clone().into_store(self.inner.place()));
                }
                self.inner.mirror_report()
            }
        }
    }

    fn get(&self, id: &str) -> Result<Option<AccountFile>, StoreError> {
        match self.inner.fetch(true, id) {
            Ok(found) => Ok(found.map(|(a, _)| a)),
            Err(Failed::Store(e)) => Err(e),
            Err(Failed::Redis(f)) if f.down && self.inner.role == Role::Node => Ok(self.inner.mirror.read().accounts.get(id).cloned()),
            Err(Failed::Redis(f)) => Err(f.into_store(self.inner.place())),
        }
    }

    fn find_by_email(&self, email: &str) -> Result<Option<AccountFile>, StoreError> {
        let wanted = email_key(email);
        if wanted.is_empty() {
            return Ok(None);
        }
        let key = self.inner.keys.email(&wanted);
        let from_mirror = || {
            let m = self.inner.mirror.read();
            m.accounts.values().filter(|a| email_key(&a.email) == wanted).min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id))).cloned()
        };
        match self.inner.run(true, |c| redis::cmd("GET").arg(&key).query::<Option<String>>(c)) {
            Ok(Some(id)) => match self.get(&id)? {
                Some(a) => Ok(Some(a)),
                None => Ok(None),
            },
            // A record written by hand has no index entry: read them all.
            Ok(None) => match self.inner.load(true) {
                Ok(_) => Ok(from_mirror()),
                Err(f) if f.down && self.inner.role == Role::Node => Ok(from_mirror()),
                Err(f) => Err(f.into_store(self.inner.place())),
            },
            Err(f) if f.down && self.inner.role == Role::Node => Ok(from_mirror()),
            Err(f) => Err(f.into_store(self.inner.place())),
        }
    }

    fn upsert_with(&self, email: &str, decide: &dyn Fn(Option<&AccountFile>) -> UpsertOutcome) -> Result<UpsertOutcome, StoreError> {
        let inner = &self.inner;
        let refused = |f: Fail| StoreError::Cluster {
            place: inner.place().to_string(),
            cause: format!("{}; accounts cannot be added or re-added while the cluster store is unreachable: try again when it is back", f.cause),
        };
        let index = inner.keys.email(&email_key(email));
        for _ in 0..MAX_CAS {
            let owner: Option<String> = inner.run(true, |c| redis::cmd("GET").arg(&index).query(c)).map_err(refused)?;
            let existing = match &owner {
                Some(id) => match inner.fetch(true, id) {
                    Ok(found) => found,
                    Err(Failed::Store(e)) => return Err(e),
                    Err(Failed::Redis(f)) => return Err(refused(f)),
                },
                None => None,
            };
            if let (Some(id), Some((current, raw))) = (&owner, &existing) {
                let mut outcome = decide(Some(current));
                outcome.account.id = id.clone();
                let bytes = encode(&outcome.account);
                if bytes == *raw {
                    outcome.changed = false;
                    return Ok(outcome);
                }
                let rev = inner.put(true, id, Some(raw), &bytes, email, "*").map_err(refused)?;
                if rev > 0 {
                    inner.remember(&outcome.account, Some(rev));
                    outcome.changed = true;
                    return Ok(outcome);
                }
                continue;
            }
            // A new account (an index entry without its record is stale: taken over).
            let mut outcome = decide(None);
            if !is_valid_id(&outcome.account.id) {
                outcome.account.id = new_account_id();
            }
            let taken: i64 = inner.run(true, |c| redis::cmd("EXISTS").arg(inner.keys.account(&outcome.account.id)).query(c)).map_err(refused)?;
            if taken > 0 {
                outcome.account.id = new_account_id();
            }
            let bytes = encode(&outcome.account);
            let rev = inner.put(true, &outcome.account.id, None, &bytes, email, owner.as_deref().unwrap_or("")).map_err(refused)?;
            if rev > 0 {
                inner.remember(&outcome.account, Some(rev));
                outcome.created = true;
                outcome.changed = true;
                return Ok(outcome);
            }
        }
        Err(StoreError::Cluster { place: inner.place().to_string(), cause: format!("accounts with email {email} kept changing under this upsert; try again") })
    }

    fn update(&self, id: &str, change: &mut dyn FnMut(&mut AccountFile) -> bool) -> Result<Updated, StoreError> {
        let inner = &self.inner;
        // What this node decided while Redis was away comes first.
        if let Some(journal) = &inner.journal {
            if let Some(entry) = journal.get(id).filter(|_| inner.link.is_up()) {
                let _ = inner.replay_entry(true, journal, &entry);
            }
        }
        match inner.update_in_redis(id, change) {
            Ok(u) => Ok(u),
            Err(Failed::Store(e)) => Err(e),
            Err(Failed::Redis(f)) => match &inner.journal {
                Some(journal) if f.down => inner.update_journaled(journal, id, change),
                _ => Err(f.into_store(inner.place())),
            },
        }
    }

    fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let place = inner.place().to_string();
        let key = inner.keys.account(id);
        let raw: Option<Vec<u8>> = inner.run(true, |c| redis::cmd("GET").arg(&key).query(c)).map_err(|f| f.into_store(&place))?;
        let email = raw.as_deref().and_then(|r| parse_account(r).ok().map(|a| a.email).or_else(|| peek_email(r))).unwrap_or_default();
        let now = crate::util::now_ms();
        let (existed, rev): (i64, i64) = inner
            .run(true, |c| {
                scripts::REMOVE
                    .key(&key)
                    .key(inner.keys.ids())
                    .key(inner.keys.rev())
                    .key(inner.keys.email(&email_key(&email)))
                    .arg(id)
                    .arg(inner.keys.channel())
                    .arg(&inner.node)
                    .arg(now.to_string())
                    .invoke(c)
            })
            .map_err(|f| f.into_store(&place))?;
        {
            let mut m = inner.mirror.write();
            m.accounts.remove(id);
            m.unreadable.retain(|s| s.id.as_deref() != Some(id));
            let r = m.revs.entry(id.to_string()).or_default();
            *r = (*r).max(rev.max(0) as u64);
            m.dirty = true;
        }
        if let Some(journal) = &inner.journal {
            if let Some(entry) = journal.get(id) {
                inner.link.set_journal_len(journal.done(&entry));
            }
        }
        Ok(existed > 0)
    }

    fn watch(&self, sink: ChangeSink) -> Result<Watch, StoreError> {
        if self.inner.watching.swap(true, Ordering::AcqRel) {
            return Err(StoreError::Cluster { place: self.inner.place().to_string(), cause: "this store is already watched".into() });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (inner, flag) = (self.inner.clone(), stop.clone());
        std::thread::Builder::new()
            .name("cluster-follow".into())
            .spawn(move || inner.follow(sink, flag))
            .map_err(super::super::backend::io_err("start the cluster subscriber for", Path::new("redis")))?;
        Ok(Watch::new(StopOnDrop(stop)))
    }

    fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        Some(self.inner.coord.clone())
    }
}

/// Ends the subscriber (within [`QUIET_CHECK`]) when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
