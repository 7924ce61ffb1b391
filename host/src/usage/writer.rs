//! The one writer thread: rows wait in the queue at most one batch window
//! (or until [`BATCH_MAX`] wait), then go in one transaction — raw rows and their
//! hourly sums together, so the two never disagree. Old rows are deleted
//! about once an hour.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection};

use super::row::{HourKey, Sums, UsageRow, DAY_MS};
use super::share::Share;
use super::UsageError;

/// Rows that make a batch go at once, without waiting for the window.
/// Large: at a busy proxy's rate a batch goes by its window, and the
/// hourly sums of a batch cost one upsert per group, not per row.
pub(crate) const BATCH_MAX: usize = 16_384;
/// How often old rows are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// What the queue carries.
pub(crate) enum Msg {
    /// One request's usage (boxed: the queue's slots are allocated up
    /// front, 8 bytes each rather than a whole row).
    Row(Box<UsageRow>),
    /// Commit what waits, then answer.
    Flush(SyncSender<()>),
}

/// Rows in the queue, so that a sender wakes the writer early only when a
/// whole batch waits (once per batch, not per row).
#[derive(Default)]
pub(crate) struct Waiting {
    rows: AtomicUsize,
}

impl Waiting {
    /// One more row queued: `true` when it makes a full batch (wake the writer).
    pub fn queued(&self) -> bool {
        self.rows.fetch_add(1, Ordering::Relaxed) + 1 == BATCH_MAX
    }

    /// The writer took `n` rows off the queue.
    fn taken(&self, n: usize) {
        let _ = self.rows.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| Some(r.saturating_sub(n)));
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
    pub ids: HashMap<String, i64>,
}

impl Writer {
    /// Runs until every sender is gone, committing what waits last.
    ///
    /// The thread sleeps through each batch window and then takes what
    /// waits, all at once: a request's `try_send` never has a sleeping
    /// receiver to wake (a futex call and a context switch per request,
    /// measured at about a fifth of a busy proxy's throughput on two
    /// cores). A flush, a full batch or the last handle going unparks it
    /// early (see [`Waiting`]).
    pub fn run(mut self, rx: Receiver<Msg>, waiting: Arc<Waiting>) {
        self.retain();
        let mut last_retention = Instant::now();
        let mut batch: Vec<UsageRow> = Vec::with_capacity(BATCH_MAX);
        let mut acks: Vec<SyncSender<()>> = Vec::new();
        loop {
            std::thread::park_timeout(self.batch);
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok(Msg::Row(row)) => {
                        batch.push(*row);
                        if batch.len() >= BATCH_MAX {
                            waiting.taken(batch.len());
                            self.commit(&mut batch, false);
                        }
                    }
                    Ok(Msg::Flush(ack)) => acks.push(ack),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            waiting.taken(batch.len());
            self.commit(&mut batch, !acks.is_empty() || closed);
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

    /// Writes `batch` (emptied) in one transaction, then offers its hourly
    /// sums to the cluster; `force` retries Redis even while backing off.
    fn commit(&mut self, batch: &mut Vec<UsageRow>, force: bool) {
        if batch.is_empty() {
            if force {
                if let Some(share) = &self.share {
                    share.push(HashMap::new(), true);
                }
            }
            return;
        }
        let mut hours: HashMap<HourKey, Sums> = HashMap::new();
        for row in batch.iter() {
            hours.entry(HourKey::of(row)).or_default().add_row(row);
        }
        let n = batch.len() as u64;
        match write(&mut self.conn, &self.path, &mut self.ids, batch, &hours) {
            Ok(()) => {
                self.written.inc_by(n);
                self.progress.add(n);
                if let Some(share) = &self.share {
                    share.push(hours, force);
                }
            }
            Err(e) => {
                // Ids handed out inside the rolled-back transaction are void.
                self.ids.clear();
                self.dropped.inc_by(n);
                tracing::error!(path = %self.path.display(), rows = n, error = %e, "usage rows could not be written; dropped");
            }
        }
        batch.clear();
    }

    /// Deletes raw rows past `retention_days` and aggregates past `aggregate_days`.
    fn retain(&mut self) {
        let now = crate::util::now_ms();
        let raw_cut = now.saturating_sub(u64::from(self.retention_days) * DAY_MS);
        let hourly_cut = now.saturating_sub(u64::from(self.aggregate_days) * DAY_MS);
        let result = (|| -> rusqlite::Result<(usize, usize)> {
            let tx = self.conn.transaction()?;
            let raw = tx.execute("DELETE FROM requests WHERE ts_ms < ?1", params![raw_cut as i64])?;
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

/// The id of `name`, added to `names` when new.
fn id(tx: &rusqlite::Transaction, ids: &mut HashMap<String, i64>, name: &str) -> rusqlite::Result<i64> {
    if let Some(id) = ids.get(name) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT INTO names (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?.execute([name])?;
    let id: i64 = tx.prepare_cached("SELECT id FROM names WHERE name = ?1")?.query_row([name], |r| r.get(0))?;
    ids.insert(name.to_string(), id);
    Ok(id)
}

/// One transaction: the raw rows, and their sums added to `hourly`.
fn write(conn: &mut Connection, path: &std::path::Path, ids: &mut HashMap<String, i64>, rows: &[UsageRow], hours: &HashMap<HourKey, Sums>) -> Result<(), UsageError> {
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let tx = conn.transaction().map_err(sql)?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO requests (ts_ms, key, account, client_model, upstream_model, protocol, route, stream, status, \
                 input, output, cached, thinking, latency_ms, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )
            .map_err(sql)?;
        for r in rows {
            let mut name_id = |name: &str| id(&tx, ids, name).map_err(sql);
            let names = [name_id(&r.key)?, name_id(&r.account)?, name_id(&r.client_model)?, name_id(&r.upstream_model)?, name_id(r.protocol)?, name_id(r.route)?];
            insert
                .execute(params![
                    r.ts_ms as i64,
                    names[0],
                    names[1],
                    names[2],
                    names[3],
                    names[4],
                    names[5],
                    r.stream,
                    r.status,
                    r.input_tokens as i64,
                    r.output_tokens as i64,
                    r.cached_tokens as i64,
                    r.thinking_tokens as i64,
                    r.latency_ms,
                    r.attempts,
                ])
                .map_err(sql)?;
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
        for (k, s) in hours {
            let mut name_id = |name: &str| id(&tx, ids, name).map_err(sql);
            let names = [name_id(&k.key)?, name_id(&k.account)?, name_id(&k.client_model)?, name_id(&k.upstream_model)?, name_id(&k.protocol)?];
            upsert
                .execute(params![
                    k.hour_ms as i64,
                    names[0],
                    names[1],
                    names[2],
                    names[3],
                    names[4],
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
    tx.commit().map_err(sql)
}
