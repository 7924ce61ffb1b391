//! The one writer thread: rows wait in the queue at most one batch window
//! (or until [`BATCH_MAX`] wait), then go in one transaction — raw rows and their
//! hourly sums together, so the two never disagree. Old rows are deleted
//! about once an hour.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection};
use rustc_hash::FxHashMap;

use super::row::{name_str, HourKey, Name, Sums, UsageRow, CHUNK_ROWS, DAY_MS, HOUR_MS};
use super::share::Share;
use super::error::UsageError;

/// Rows that make a batch go at once, without waiting for the window.
/// Large: at a busy proxy's rate a batch goes by its window, and the
/// hourly sums of a batch cost one upsert per group, not per row.
pub(crate) const BATCH_MAX: usize = 16_384;
/// Room for rows the queue keeps between windows after a burst.
const KEEP_ROWS: usize = 1024;
/// How often old rows are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Names the writer knows by address at most (beyond, it forgets them all
/// and learns them again by text: model names come from clients).
const NAMES_BY_ADDRESS: usize = 65_536;

/// Where requests leave their rows and the writer takes them: one vector
/// behind a lock held for a push (no allocation per row, no wake-up per
/// row), swapped whole for an empty one once per batch window.
pub(crate) struct Queue {
    rows: Mutex<Vec<UsageRow>>,
    /// Most rows that may wait; beyond, rows are dropped.
    cap: usize,
    /// Callers of `flush` waiting for a commit.
    flushes: Mutex<Vec<SyncSender<()>>>,
    /// The log is gone: commit what waits and stop.
    closed: AtomicBool,
}

/// What [`Queue::push`] did with a row.
pub(crate) enum Pushed {
    /// Queued; the writer sleeps out its window.
    Queued,
    /// Queued, and a whole batch waits: wake the writer.
    Full,
    /// The queue was full: dropped.
    Dropped,
}

impl Queue {
    pub fn new(cap: usize) -> Queue {
        Queue { rows: Mutex::new(Vec::new()), cap: cap.max(1), flushes: Mutex::new(Vec::new()), closed: AtomicBool::new(false) }
    }

    /// Queues `row` unless `cap` rows wait already.
    pub fn push(&self, row: UsageRow) -> Pushed {
        let mut rows = self.rows.lock();
        if rows.len() >= self.cap {
            return Pushed::Dropped;
        }
        rows.push(row);
        if rows.len() == BATCH_MAX {
            Pushed::Full
        } else {
            Pushed::Queued
        }
    }

    /// Asks the writer to answer on `ack` once what waits is committed.
    pub fn flush(&self, ack: SyncSender<()>) {
        self.flushes.lock().push(ack);
    }

    /// No more rows will come.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Rows committed so far, and a way to wait for them.
#[derive(Default)]
pub(crate) struct Progress {
    written: Mutex<u64>,
    changed: Condvar,
}

impl Progress {
    pub fn written(&self) -> u64 {
        *self.written.lock()
    }

    fn add(&self, n: u64) {
        *self.written.lock() += n;
        self.changed.notify_all();
    }

    /// Waits until `rows` are committed or `within` passes.
    pub fn wait(&self, rows: u64, within: Duration) -> bool {
        let until = Instant::now() + within;
        let mut written = self.written.lock();
        while *written < rows {
            if self.changed.wait_until(&mut written, until).timed_out() {
                return *written >= rows;
            }
        }
        true
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub conn: Connection,
    pub path: PathBuf,
    pub retention_days: u32,
    pub aggregate_days: u32,
    pub batch: Duration,
    pub share: Option<Arc<Share>>,
    pub written: Counter,
    pub dropped: Counter,
    pub progress: Arc<Progress>,
    /// Ids of the names written so far (filled as names come).
    pub names: NameIds,
}

/// The ids of names in the `names` table, both ways (a few hundred: keys,
/// accounts, models, protocols, routes), filled as names come; and by the
/// address of the shared bytes a row carries, which finds a name without
/// hashing its text (the map holds a clone of each, so that an address
/// stands for one name while it is in the map).
#[derive(Default)]
pub(crate) struct NameIds {
    ids: FxHashMap<String, i64>,
    names: FxHashMap<i64, String>,
    by_address: FxHashMap<(usize, usize), i64>,
    held: Vec<Name>,
    /// Each of a row's six names' last address and id: rows in a row
    /// mostly share their key, models, protocol and route.
    last: [((usize, usize), i64); 6],
}

impl NameIds {
    /// The id of `name`, added to `names` when new.
    fn id(&mut self, tx: &rusqlite::Transaction, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.ids.get(name) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT INTO names (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?.execute([name])?;
        let id: i64 = tx.prepare_cached("SELECT id FROM names WHERE name = ?1")?.query_row([name], |r| r.get(0))?;
        self.ids.insert(name.to_string(), id);
        self.names.insert(id, name.to_string());
        Ok(id)
    }

    /// The id of a row's shared name (its `field`, 0–3): by its address
    /// when seen before.
    fn id_of(&mut self, tx: &rusqlite::Transaction, field: usize, name: &Name) -> rusqlite::Result<i64> {
        let at = (name.as_ptr() as usize, name.len());
        if let Some(id) = self.known(field, at) {
            return Ok(id);
        }
        let id = self.id(tx, name_str(name))?;
        self.remember(field, at, id);
        self.held.push(name.clone());
        Ok(id)
    }

    /// The id of a name the program holds for its whole life (a
    /// protocol's, a route's: `field` 4–5): by its address, nothing to hold.
    fn id_of_static(&mut self, tx: &rusqlite::Transaction, field: usize, name: &'static str) -> rusqlite::Result<i64> {
        let at = (name.as_ptr() as usize, name.len());
        if let Some(id) = self.known(field, at) {
            return Ok(id);
        }
        let id = self.id(tx, name)?;
        self.remember(field, at, id);
        Ok(id)
    }

    fn known(&mut self, field: usize, at: (usize, usize)) -> Option<i64> {
        if self.last[field].0 == at && at.0 != 0 {
            return Some(self.last[field].1);
        }
        let id = *self.by_address.get(&at)?;
        self.last[field] = (at, id);
        Some(id)
    }

    fn remember(&mut self, field: usize, at: (usize, usize), id: i64) {
        if self.by_address.len() >= NAMES_BY_ADDRESS {
            self.by_address.clear();
            self.held.clear();
            self.last = Default::default();
        }
        self.by_address.insert(at, id);
        self.last[field] = (at, id);
    }

    fn name(&self, id: i64) -> String {
        self.names.get(&id).cloned().unwrap_or_default()
    }

    /// Forgets every id (those handed out in a rolled-back transaction are void).
    fn clear(&mut self) {
        self.ids.clear();
        self.names.clear();
        self.by_address.clear();
        self.held.clear();
        self.last = Default::default();
    }
}

/// An hourly aggregate's dimensions by name id: hour, key, account,
/// client model, upstream model, protocol.
type IdKey = (u64, [i64; 5]);

impl Writer {
    /// Runs until the queue is closed, committing what waits last.
    ///
    /// The thread sleeps through each batch window and then takes what
    /// waits, all at once: a request never has a sleeping writer to wake
    /// (a futex call and a context switch per request, measured at about
    /// a fifth of a busy proxy's throughput on two cores). A flush, a full
    /// batch or the log's end unparks it early.
    pub fn run(mut self, queue: Arc<Queue>) {
        self.retain();
        let mut last_retention = Instant::now();
        let mut batch: Vec<UsageRow> = Vec::new();
        let mut acks: Vec<SyncSender<()>> = Vec::new();
        loop {
            std::thread::park_timeout(self.batch);
            // In this order: a flush's rows were queued before its ack.
            let closed = queue.closed.load(Ordering::Acquire);
            acks.append(&mut queue.flushes.lock());
            std::mem::swap(&mut *queue.rows.lock(), &mut batch);
            let force = !acks.is_empty() || closed;
            if batch.is_empty() {
                self.commit(&[], force);
            }
            for part in batch.chunks(BATCH_MAX) {
                self.commit(part, force);
            }
            // The next batch is about as large as this one: keep its room
            // (no reallocation under the queue's lock), but give a burst's
            // back once it has passed.
            let keep = batch.len().max(KEEP_ROWS);
            batch.clear();
            batch.shrink_to(keep);
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
            if closed {
                break;
            }
            if last_retention.elapsed() >= RETENTION_EVERY {
                self.retain();
                last_retention = Instant::now();
            }
        }
        tracing::debug!(path = %self.path.display(), "usage writer stopped");
    }

    /// Writes `batch` in one transaction, then offers its hourly sums to
    /// the cluster; `force` retries Redis even while backing off.
    fn commit(&mut self, batch: &[UsageRow], force: bool) {
        if batch.is_empty() {
            if force {
                if let Some(share) = &self.share {
                    share.push(HashMap::new(), true);
                }
            }
            return;
        }
        let n = batch.len() as u64;
        match write(&mut self.conn, &self.path, &mut self.names, batch) {
            Ok(hours) => {
                self.written.inc_by(n);
                self.progress.add(n);
                if let Some(share) = &self.share {
                    let names = &self.names;
                    let by_name = hours
                        .into_iter()
                        .map(|((hour_ms, ids), sums)| {
                            let key = HourKey {
                                hour_ms,
                                key: names.name(ids[0]),
                                account: names.name(ids[1]),
                                client_model: names.name(ids[2]),
                                upstream_model: names.name(ids[3]),
                                protocol: names.name(ids[4]),
                            };
                            (key, sums)
                        })
                        .collect();
                    share.push(by_name, force);
                }
            }
            Err(e) => {
                self.names.clear();
                self.dropped.inc_by(n);
                tracing::error!(path = %self.path.display(), rows = n, error = %e, "usage rows could not be written; dropped");
            }
        }
    }

    /// Deletes raw rows past `retention_days` and aggregates past `aggregate_days`.
    fn retain(&mut self) {
        let now = crate::util::now_ms();
        let raw_cut = now.saturating_sub(u64::from(self.retention_days) * DAY_MS);
        let hourly_cut = now.saturating_sub(u64::from(self.aggregate_days) * DAY_MS);
        let result = (|| -> rusqlite::Result<(usize, usize)> {
            let tx = self.conn.transaction()?;
            // Whole chunks (each within one hour): a row may outlive the
            // cut by less than an hour; queries count raw rows from the first
            // whole hour within retention only.
            let raw = tx.execute("DELETE FROM chunks WHERE max_ts < ?1", params![raw_cut as i64])?;
            let hourly = tx.execute("DELETE FROM hourly WHERE hour_ms < ?1", params![hourly_cut as i64])?;
            tx.commit()?;
            Ok((raw, hourly))
        })();
        match result {
            Ok((0, 0)) => {}
            Ok((raw, hourly)) => tracing::info!(path = %self.path.display(), raw, hourly, "old usage rows deleted"),
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "usage retention failed; retried in an hour"),
        }
    }
}

/// A chunk being filled: its rows (all of one hour) as JSON arrays (see `row.rs`).
struct Chunk {
    data: String,
    rows: usize,
    hour_ms: u64,
    min_ts: u64,
    max_ts: u64,
}

impl Chunk {
    fn new(hour_ms: u64) -> Chunk {
        Chunk { data: String::new(), rows: 0, hour_ms, min_ts: u64::MAX, max_ts: 0 }
    }

    /// Appends `r`, whose names have the ids `names`, as
    /// `[ts_ms,key,account,…,attempts]` (the order of `ROW_COLUMNS`).
    fn push(&mut self, r: &UsageRow, names: &[i64; 6]) {
        let mut num = itoa::Buffer::new();
        self.data.push(if self.rows == 0 { '[' } else { ',' });
        self.data.push('[');
        self.data.push_str(num.format(r.ts_ms));
        for id in names {
            self.data.push(',');
            self.data.push_str(num.format(*id));
        }
        let tail = [
            u64::from(r.stream),
            u64::from(r.status),
            r.input_tokens,
            r.output_tokens,
            r.cached_tokens,
            r.thinking_tokens,
            u64::from(r.latency_ms),
            u64::from(r.attempts),
        ];
        for v in tail {
            self.data.push(',');
            self.data.push_str(num.format(v));
        }
        self.data.push(']');
        self.rows += 1;
        self.min_ts = self.min_ts.min(r.ts_ms);
        self.max_ts = self.max_ts.max(r.ts_ms);
    }

    /// Inserts the chunk (if it holds rows) and empties it.
    fn insert(&mut self, stmt: &mut rusqlite::CachedStatement) -> rusqlite::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        self.data.push(']');
        stmt.execute(params![self.min_ts as i64, self.max_ts as i64, self.rows as i64, self.data])?;
        self.data.clear();
        self.rows = 0;
        self.min_ts = u64::MAX;
        self.max_ts = 0;
        Ok(())
    }
}

/// One transaction: the raw rows in chunks (one per hour the batch spans:
/// a chunk holds one hour; rows in the order they came, no sort), and
/// their sums added to `hourly`; returns the sums.
fn write(conn: &mut Connection, path: &std::path::Path, names: &mut NameIds, rows: &[UsageRow]) -> Result<FxHashMap<IdKey, Sums>, UsageError> {
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let mut hours: FxHashMap<IdKey, Sums> = FxHashMap::default();
    let tx = conn.transaction().map_err(sql)?;
    {
        let mut insert = tx.prepare_cached("INSERT INTO chunks (min_ts, max_ts, rows, data) VALUES (?1, ?2, ?3, ?4)").map_err(sql)?;
        // The chunks being filled, one per hour (two at most around the
        // hour, unless a request lasted hours).
        let mut open: Vec<Chunk> = Vec::with_capacity(2);
        for r in rows {
            let ids = [
                names.id_of(&tx, 0, &r.key).map_err(sql)?,
                names.id_of(&tx, 1, &r.account).map_err(sql)?,
                names.id_of(&tx, 2, &r.client_model).map_err(sql)?,
                names.id_of(&tx, 3, &r.upstream_model).map_err(sql)?,
                names.id_of_static(&tx, 4, r.protocol).map_err(sql)?,
                names.id_of_static(&tx, 5, r.route).map_err(sql)?,
            ];
            let hour_ms = r.ts_ms / HOUR_MS * HOUR_MS;
            let chunk = match open.iter().position(|c| c.hour_ms == hour_ms) {
                Some(i) => &mut open[i],
                None => {
                    open.push(Chunk::new(hour_ms));
                    open.last_mut().expect("just pushed")
                }
            };
            if chunk.rows >= CHUNK_ROWS {
                chunk.insert(&mut insert).map_err(sql)?;
            }
            chunk.push(r, &ids);
            hours.entry((hour_ms, [ids[0], ids[1], ids[2], ids[3], ids[4]])).or_default().add_row(r);
        }
        for chunk in &mut open {
            chunk.insert(&mut insert).map_err(sql)?;
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO hourly (hour_ms, key, account, client_model, upstream_model, protocol, \
                 requests, errors, input, output, cached, thinking, latency_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT (hour_ms, key, account, client_model, upstream_model, protocol) DO UPDATE SET \
                 requests = requests + excluded.requests, errors = errors + excluded.errors, \
                 input = input + excluded.input, output = output + excluded.output, \
                 cached = cached + excluded.cached, thinking = thinking + excluded.thinking, \
                 latency_ms = latency_ms + excluded.latency_ms",
            )
            .map_err(sql)?;
        for ((hour_ms, ids), s) in &hours {
            upsert
                .execute(params![
                    *hour_ms as i64,
                    ids[0],
                    ids[1],
                    ids[2],
                    ids[3],
                    ids[4],
                    s.requests as i64,
                    s.errors as i64,
                    s.input as i64,
                    s.output as i64,
                    s.cached as i64,
                    s.thinking as i64,
                    s.latency_ms as i64,
                ])
                .map_err(sql)?;
        }
    }
    tx.commit().map_err(sql)?;
    Ok(hours)
}
