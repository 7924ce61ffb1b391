//! Usage: one row per client request in an embedded SQLite database
//! (`<data_dir>/usage.db`), folded into hourly aggregates, queried by the
//! page, `/admin/usage` and `grantpool usage`.
//!
//! - `row.rs`: [`UsageRow`], the schema (raw rows in chunks of one hour,
//!   a view `requests` of one row per request), opening and upgrading the file.
//! - `writer.rs`: the one writer thread; batches, one transaction each;
//!   retention.
//! - `query.rs`: [`UsageQuery`] → [`UsageReport`], series, per-account and
//!   per-key sums; read-only, from any process.
//! - `share.rs`: cluster mode — each node's hourly deltas summed in Redis,
//!   which answers the queries for the whole cluster (hour granularity).
//! - `cli.rs`: `grantpool usage`.
//! - `error.rs`: [`UsageError`].
//!
//! Recording never blocks a request: rows go through a bounded queue and
//! are dropped (and counted) when it is full. A row allocates nothing: its
//! names are shared ([`Name`]; models and keys interned by [`UsageLog::name`]).

mod cli;
mod error;
mod query;
mod row;
mod share;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::config::Config;

pub use cli::{parse_span, run as cli_run, UsageArgs};
pub use error::UsageError;
pub use query::{query_cluster, query_file, By, SeriesPoint, UsageGroup, UsageQuery, UsageReport};
pub use row::{db_path, name, Name, UsageRow};
pub(crate) use row::name_str;

use rustc_hash::{FxHashMap, FxHashSet};
use share::Share;
use writer::{Progress, Pushed, Queue};

/// The per-request usage log: a cheap handle (clone it freely) on one
/// writer thread. The thread commits what was recorded and stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct UsageLog {
    inner: Option<Arc<Inner>>,
    names: Arc<Interner>,
}

struct Inner {
    queue: Arc<Queue>,
    path: PathBuf,
    retention_days: u32,
    share: Option<Arc<Share>>,
    /// Opened on first query (read-only: never contends with the writer
    /// beyond SQLite's WAL rules).
    reader: Mutex<Option<rusqlite::Connection>>,
    metrics: UsageMetrics,
    progress: Arc<Progress>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Most names interned (model names come from clients: past it a name is
/// copied per request, still recorded).
const INTERNED_CAP: usize = 4096;

/// The model and key names rows carry, one shared copy each.
#[derive(Default)]
struct Interner {
    names: RwLock<FxHashSet<Name>>,
}

impl Interner {
    fn get(&self, s: &str) -> Name {
        if let Some(n) = self.names.read().get(s.as_bytes()) {
            return n.clone();
        }
        let mut names = self.names.write();
        if let Some(n) = names.get(s.as_bytes()) {
            return n.clone();
        }
        let n = name(s);
        if names.len() < INTERNED_CAP {
            names.insert(n.clone());
        }
        n
    }
}

/// Labels of `grantpool_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    key: String,
    model: String,
    kind: &'static str,
}

/// Most (key, model) pairs whose counters are cached (model names come
/// from clients; beyond it the family is asked each time, still counted).
const TOKEN_CACHE_CAP: usize = 1024;

/// A name's address and length: while the name is held, it stands for it.
type At = (usize, usize);

fn at(n: &Name) -> At {
    (n.as_ptr() as usize, n.len())
}

#[derive(Default)]
struct UsageMetrics {
    tokens: Family<TokenLabels, Counter>,
    dropped: Counter,
    written: Counter,
    /// The input, output, cached and thinking counters of each (key,
    /// model), by the names' addresses (the names are held with them):
    /// found under a read lock without hashing text once warm.
    cache: RwLock<FxHashMap<(At, At), (Name, Name, [Counter; 4])>>,
}

const KINDS: [&str; 4] = ["input", "output", "cached", "thinking"];

impl UsageMetrics {
    fn count(&self, row: &UsageRow) {
        let values = [row.input_tokens, row.output_tokens, row.cached_tokens, row.thinking_tokens];
        if values.iter().all(|v| *v == 0) {
            return;
        }
        let inc = |counters: &[Counter; 4]| {
            for (c, v) in counters.iter().zip(values) {
                if v > 0 {
                    c.inc_by(v);
                }
            }
        };
        let slot = (at(&row.key), at(&row.client_model));
        if let Some((_, _, c)) = self.cache.read().get(&slot) {
            inc(c);
            return;
        }
        let (key, model) = (row::name_str(&row.key).to_string(), row::name_str(&row.client_model).to_string());
        let make = |kind| self.tokens.get_or_create(&TokenLabels { key: key.clone(), model: model.clone(), kind }).clone();
        let counters = [make(KINDS[0]), make(KINDS[1]), make(KINDS[2]), make(KINDS[3])];
        inc(&counters);
        let mut cache = self.cache.write();
        if cache.len() < TOKEN_CACHE_CAP {
            cache.insert(slot, (row.key.clone(), row.client_model.clone(), counters));
        }
    }
}

impl UsageLog {
    /// Opens (or creates) `<data_dir>/usage.db` and starts the writer
    /// thread; in cluster mode also the share in Redis (not connected yet:
    /// a Redis that is down only delays the shared sums). With `[usage]
    /// enabled = false`, a log that records nothing.
    pub fn open(config: &Config) -> Result<UsageLog, UsageError> {
        let usage = &config.usage;
        if !usage.enabled {
            return Ok(UsageLog::disabled());
        }
        let path = row::db_path(&config.data_dir);
        let conn = row::open_writer(&path)?;
        let share = match &config.cluster.redis_url {
            Some(url) => Some(Arc::new(Share::open(url, &config.cluster.key_prefix, usage.aggregate_days)?)),
            None => None,
        };
        let metrics = UsageMetrics::default();
        let progress = Arc::new(Progress::default());
        let queue = Arc::new(Queue::new(usage.queue_rows));
        let writer = writer::Writer {
            conn,
            path: path.clone(),
            retention_days: usage.retention_days,
            aggregate_days: usage.aggregate_days,
            batch: Duration::from_millis(usage.batch_ms.max(1)),
            share: share.clone(),
            written: metrics.written.clone(),
            dropped: metrics.dropped.clone(),
            progress: progress.clone(),
            names: writer::NameIds::default(),
        };
        let thread = std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn({
                let queue = queue.clone();
                move || writer.run(queue)
            })
            .map_err(|source| UsageError::Io { path: path.clone(), source })?;
        tracing::info!(path = %path.display(), cluster = share.is_some(), "usage database open");
        Ok(UsageLog {
            inner: Some(Arc::new(Inner {
                queue,
                path,
                retention_days: usage.retention_days,
                share,
                reader: Mutex::new(None),
                metrics,
                progress,
                thread: Some(thread),
            })),
            names: Arc::default(),
        })
    }

    /// A log that records nothing (usage off, or tests of other parts).
    pub fn disabled() -> UsageLog {
        UsageLog { inner: None, names: Arc::default() }
    }

    /// `s` as a row's name: one shared copy per model or key name (up to
    /// a few thousand), cloned per request without an allocation.
    pub fn name(&self, s: &str) -> Name {
        self.names.get(s)
    }

    /// Whether rows are recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The database file (`None` when disabled).
    pub fn path(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.path.as_path())
    }

    /// Queues one request's usage; never blocks. A full queue drops the
    /// row (counted in `grantpool_usage_rows_dropped_total`).
    pub fn record(&self, row: UsageRow) {
        let Some(inner) = &self.inner else { return };
        inner.metrics.count(&row);
        match inner.queue.push(row) {
            Pushed::Queued => {}
            Pushed::Full => inner.wake(),
            Pushed::Dropped => {
                inner.metrics.dropped.inc();
            }
        }
    }

    /// Blocks until every row recorded before it is committed (and, in
    /// cluster mode, its deltas offered to Redis): for shutdown and tests.
    pub fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (ack, done) = sync_channel(1);
        inner.queue.flush(ack);
        inner.wake();
        loop {
            match done.recv_timeout(Duration::from_secs(1)) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                // A writer that died (a panic) answers no one.
                Err(RecvTimeoutError::Timeout) if inner.thread.as_ref().is_none_or(|t| t.is_finished()) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Rows dropped because the queue was full (or the batch failed to commit).
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.metrics.dropped.get())
    }

    /// Rows committed since open.
    pub fn written(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.progress.written())
    }

    /// Waits until at least `rows` rows are committed or `within` passes;
    /// whether they were.
    pub fn wait_written(&self, rows: u64, within: Duration) -> bool {
        self.inner.as_ref().is_some_and(|i| i.progress.wait(rows, within))
    }

    /// Registers `tokens_total{key,model,kind}`, `usage_rows_dropped_total`
    /// and `usage_rows_written_total` in `registry`, which is expected to
    /// carry the `grantpool` prefix (as [`crate::metrics::Metrics`]' does).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let Some(inner) = &self.inner else { return };
        let m = &inner.metrics;
        registry.register("tokens", "Tokens used, by named key, client model and kind (input includes cached)", m.tokens.clone());
        registry.register("usage_rows_dropped", "Usage rows dropped: the writer's queue was full", m.dropped.clone());
        registry.register("usage_rows_written", "Usage rows committed to the usage database", m.written.clone());
    }

    /// Sums by `q.by` since `q.since_ms`: exact from the raw rows within
    /// retention, from the hourly aggregates before. In cluster mode the
    /// whole cluster's, from Redis, at hour granularity.
    pub fn query(&self, q: &UsageQuery) -> Result<UsageReport, UsageError> {
        let inner = self.inner.as_ref().ok_or(UsageError::Disabled)?;
        let now = crate::util::now_ms();
        if let Some(share) = &inner.share {
            return query::cluster_report(share, q, now);
        }
        inner.with_reader(|conn| query::report(conn, &inner.path, q, now, inner.retention_days))
    }

    /// Hourly buckets since `since_ms` by key, model or account (`Day` and
    /// `Hour` give one group, `""`): for the page's chart.
    pub fn series(&self, since_ms: u64, by: By) -> Result<Vec<SeriesPoint>, UsageError> {
        let inner = self.inner.as_ref().ok_or(UsageError::Disabled)?;
        if let Some(share) = &inner.share {
            return query::cluster_series(share, since_ms, by);
        }
        inner.with_reader(|conn| query::series(conn, &inner.path, since_ms, by))
    }

    /// Tokens (input, output and thinking: what Google bills) each account served since its own instant
    /// (its current 5-hour or weekly quota window), in one query. One
    /// window per account (named twice: the last counts; ask once for the
    /// 5-hour windows, once for the weekly ones). Accounts without usage
    /// are absent. Empty when disabled. In cluster mode an hour counts
    /// whole when any part of it is in the window.
    pub fn tokens_by_account_since(&self, windows: &[(String, u64)]) -> Result<HashMap<String, u64>, UsageError> {
        let Some(inner) = &self.inner else { return Ok(HashMap::new()) };
        let unique: HashMap<&str, u64> = windows.iter().map(|(a, s)| (a.as_str(), *s)).collect();
        if unique.len() < windows.len() {
            let windows: Vec<(String, u64)> = unique.into_iter().map(|(a, s)| (a.to_string(), s)).collect();
            return self.tokens_by_account_since(&windows);
        }
        if windows.is_empty() {
            return Ok(HashMap::new());
        }
        if let Some(share) = &inner.share {
            return query::cluster_tokens_by_account(share, windows);
        }
        inner.with_reader(|conn| query::tokens_by_account(conn, &inner.path, windows))
    }

    /// Requests and tokens (input, output and thinking, the count key limits use) per
    /// named key since 00:00 UTC today. Empty when disabled.
    pub fn today_by_key(&self) -> Result<HashMap<String, (u64, u64)>, UsageError> {
        let Some(inner) = &self.inner else { return Ok(HashMap::new()) };
        let now = crate::util::now_ms();
        if let Some(share) = &inner.share {
            return query::cluster_today_by_key(share, now);
        }
        inner.with_reader(|conn| query::today_by_key(conn, &inner.path, now))
    }
}

impl Inner {
    /// Runs `f` on the reader connection (opened read-only on first use).
    fn with_reader<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T, UsageError>) -> Result<T, UsageError> {
        let mut reader = self.reader.lock();
        if reader.is_none() {
            *reader = row::open_reader(&self.path)?;
        }
        match reader.as_ref() {
            Some(conn) => f(conn),
            // The writer created it at open: someone removed it since.
            None => Err(UsageError::Io { path: self.path.clone(), source: std::io::ErrorKind::NotFound.into() }),
        }
    }
}

impl Inner {
    /// Wakes the writer before its window ends.
    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue: the writer commits what waits, then ends.
        self.queue.close();
        self.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
