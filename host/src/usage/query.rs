//! Questions to the usage database (read-only: the CLI asks while a proxy
//! writes) or, in cluster mode, to the hourly sums in Redis.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::row::{raw_rows, HourKey, Sums, DAY_MS, HOUR_MS};
use super::share::Share;
use super::error::UsageError;

/// What the sums are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// The named key (`""`: an unnamed key or none).
    Key,
    /// The account that served.
    Account,
    /// The model the client asked for.
    Model,
    /// The UTC day (`2026-12-07`).
    Day,
    /// The UTC hour (`2026-12-07 13:00`).
    Hour,
}

/// A usage question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// The grouping.
    pub by: By,
    /// From this instant (Unix ms) to now.
    pub since_ms: u64,
    /// Only this named key.
    pub key: Option<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Only this model (the client's or the upstream's name).
    pub model: Option<String>,
}

/// The sums of one group (or of all: the total).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageGroup {
    /// The group's name (a key, account, model, day or hour); `"total"` for the total.
    pub group: String,
    /// Requests.
    pub requests: u64,
    /// Requests answered with a status ≥ 400.
    pub errors: u64,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Thinking tokens.
    pub thinking_tokens: u64,
    /// Mean latency, ms.
    pub avg_latency_ms: u64,
    #[serde(skip)]
    latency_sum: u64,
}

impl UsageGroup {
    fn add(&mut self, s: &Sums) {
        self.requests += s.requests;
        self.errors += s.errors;
        self.input_tokens += s.input;
        self.output_tokens += s.output;
        self.cached_tokens += s.cached;
        self.thinking_tokens += s.thinking;
        self.latency_sum += s.latency_ms;
    }

    fn finish(&mut self) {
        self.avg_latency_ms = self.latency_sum.checked_div(self.requests).unwrap_or(0);
    }
}

/// The answer to a [`UsageQuery`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    /// The grouping.
    pub by: By,
    /// The period: from (Unix ms)…
    pub since_ms: u64,
    /// …to (Unix ms, when asked).
    pub until_ms: u64,
    /// The database file, or in cluster mode the Redis URL (password hidden).
    pub source: String,
    /// Whether the sums are the whole cluster's (Redis, hour granularity).
    pub cluster: bool,
    /// Whether the period starts exactly at `since_ms`. `false`: its first
    /// hour is counted whole (the raw rows of that time are past
    /// `retention_days`, or in cluster mode, which keeps hours only).
    pub exact_since: bool,
    /// The groups: days and hours in time order, others by tokens, most first.
    pub groups: Vec<UsageGroup>,
    /// The sums of all groups.
    pub total: UsageGroup,
}

/// One bucket of the page's chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesPoint {
    /// The hour's start, Unix ms.
    pub hour_ms: u64,
    /// The key, model or account (`""` when not grouped).
    pub group: String,
    /// Requests.
    pub requests: u64,
    /// Tokens: input, output and thinking.
    pub tokens: u64,
}

/// Asks the database at `path` (read-only) as of `now_ms`, raw rows older
/// than `retention_days` counted from the hourly aggregates. `Ok(None)`
/// when nothing was ever recorded there.
pub fn query_file(path: &Path, q: &UsageQuery, now_ms: u64, retention_days: u32) -> Result<Option<UsageReport>, UsageError> {
    match super::row::open_reader(path)? {
        Some(conn) => report(&conn, path, q, now_ms, retention_days).map(Some),
        None => Ok(None),
    }
}

/// Asks the cluster's sums in Redis (`url`, keys under `key_prefix`).
pub fn query_cluster(url: &str, key_prefix: &str, q: &UsageQuery, now_ms: u64) -> Result<UsageReport, UsageError> {
    let share = Share::open(url, key_prefix, 1)?;
    cluster_report(&share, q, now_ms)
}

fn label(by: By, key: &str, account: &str, model: &str, bucket_ms: u64) -> String {
    match by {
        By::Key => key.to_string(),
        By::Account => account.to_string(),
        By::Model => model.to_string(),
        By::Day => crate::util::utc_time((bucket_ms / 1000) as i64)[..10].to_string(),
        By::Hour => crate::util::utc_time((bucket_ms / 1000) as i64)[..16].to_string(),
    }
}

/// The SQL expression grouped on, given the table's time column.
fn group_sql(by: By, time: &str) -> String {
    match by {
        By::Key => "key".into(),
        By::Account => "account".into(),
        By::Model => "client_model".into(),
        By::Day => format!("({time} / {DAY_MS}) * {DAY_MS}"),
        By::Hour => format!("({time} / {HOUR_MS}) * {HOUR_MS}"),
    }
}

const FILTERS: &str = "(?2 IS NULL OR key = ?2) AND (?3 IS NULL OR account = ?3) AND (?4 IS NULL OR client_model = ?4 OR upstream_model = ?4)";

/// Names by id, and the ids of the query's filters (`-1`, matching
/// nothing, for a name never recorded).
struct Names {
    by_id: HashMap<i64, String>,
}

impl Names {
    fn load(conn: &Connection, path: &Path) -> Result<Names, UsageError> {
        super::row::load_names(conn).map(|by_id| Names { by_id }).map_err(|source| UsageError::Sql { path: path.to_path_buf(), source })
    }

    fn name(&self, id: i64) -> String {
        self.by_id.get(&id).cloned().unwrap_or_default()
    }

    fn id(&self, name: &str) -> Option<i64> {
        self.by_id.iter().find(|(_, n)| n.as_str() == name).map(|(id, _)| *id)
    }

    fn filter(&self, name: &Option<String>) -> Option<i64> {
        name.as_ref().map(|n| self.id(n).unwrap_or(-1))
    }
}

/// A group's name from the grouped value: a name's id, or a bucket's ms.
fn group_label(by: By, v: i64, names: &Names) -> String {
    match by {
        By::Key | By::Account | By::Model => names.name(v),
        By::Day | By::Hour => label(by, "", "", "", v.max(0) as u64),
    }
}

fn finish(by: By, mut groups: HashMap<String, UsageGroup>) -> (Vec<UsageGroup>, UsageGroup) {
    let mut total = UsageGroup { group: "total".into(), ..UsageGroup::default() };
    let mut list: Vec<UsageGroup> = groups
        .drain()
        .map(|(name, mut g)| {
            g.group = name;
            total.requests += g.requests;
            total.errors += g.errors;
            total.input_tokens += g.input_tokens;
            total.output_tokens += g.output_tokens;
            total.cached_tokens += g.cached_tokens;
            total.thinking_tokens += g.thinking_tokens;
            total.latency_sum += g.latency_sum;
            g.finish();
            g
        })
        .collect();
    total.finish();
    match by {
        By::Day | By::Hour => list.sort_by(|a, b| a.group.cmp(&b.group)),
        _ => list.sort_by(|a, b| (b.input_tokens + b.output_tokens, b.requests).cmp(&(a.input_tokens + a.output_tokens, a.requests)).then_with(|| a.group.cmp(&b.group))),
    }
    (list, total)
}

/// The report from one connection. The whole hours come from `hourly`,
/// which holds the exact sums of the same rows (written in the same
/// transactions) and is far smaller to scan; the raw rows give the part
/// of the first hour after `since_ms` — while they are within retention.
pub(crate) fn report(conn: &Connection, path: &Path, q: &UsageQuery, now_ms: u64, retention_days: u32) -> Result<UsageReport, UsageError> {
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    // Raw rows are whole from the first hour within retention (the writer
    // deletes chunks whose rows are all past the cut; those of the hour
    // the cut falls in may already be gone).
    let cut = now_ms.saturating_sub(u64::from(retention_days) * DAY_MS).div_ceil(HOUR_MS) * HOUR_MS;
    let first_whole_hour = q.since_ms.div_ceil(HOUR_MS) * HOUR_MS;
    let raw_part = q.since_ms >= cut && q.since_ms < first_whole_hour;
    let exact_since = q.since_ms >= cut || q.since_ms == first_whole_hour;
    let names = Names::load(conn, path)?;
    let (key, account, model) = (names.filter(&q.key), names.filter(&q.account), names.filter(&q.model));
    let mut groups: HashMap<String, UsageGroup> = HashMap::new();
    let mut run = |text: String, from: u64, to: u64| -> Result<(), UsageError> {
        let mut stmt = conn.prepare(&text).map_err(sql)?;
        let mut rows = stmt.query(params![from as i64, key, account, model, to as i64]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            let get = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            let s = Sums {
                requests: get(1).map_err(sql)?,
                errors: get(2).map_err(sql)?,
                input: get(3).map_err(sql)?,
                output: get(4).map_err(sql)?,
                cached: get(5).map_err(sql)?,
                thinking: get(6).map_err(sql)?,
                latency_ms: get(7).map_err(sql)?,
            };
            let name = group_label(q.by, r.get::<_, i64>(0).map_err(sql)?, &names);
            groups.entry(name).or_default().add(&s);
        }
        Ok(())
    };
    if raw_part {
        run(
            format!(
                "SELECT {g}, COUNT(*), SUM(status >= 400), SUM(input), SUM(output), SUM(cached), SUM(thinking), SUM(latency_ms) \
                 FROM ({raw}) WHERE ts_ms >= ?1 AND ts_ms < ?5 AND {FILTERS} GROUP BY 1",
                g = group_sql(q.by, "ts_ms"),
                raw = raw_rows("?1", "?5"),
            ),
            q.since_ms,
            first_whole_hour,
        )?;
    }
    // Past retention the first hour counts whole.
    let hourly_from = if exact_since { first_whole_hour } else { q.since_ms / HOUR_MS * HOUR_MS };
    run(
        format!(
            "SELECT {g}, SUM(requests), SUM(errors), SUM(input), SUM(output), SUM(cached), SUM(thinking), SUM(latency_ms) \
             FROM hourly WHERE hour_ms >= ?1 AND hour_ms < ?5 AND {FILTERS} GROUP BY 1",
            g = group_sql(q.by, "hour_ms")
        ),
        hourly_from,
        i64::MAX as u64,
    )?;
    let (groups, total) = finish(q.by, groups);
    Ok(UsageReport { by: q.by, since_ms: q.since_ms, until_ms: now_ms, source: path.display().to_string(), cluster: false, exact_since, groups, total })
}

fn matches(q: &UsageQuery, k: &HourKey) -> bool {
    q.key.as_ref().is_none_or(|v| *v == k.key)
        && q.account.as_ref().is_none_or(|v| *v == k.account)
        && q.model.as_ref().is_none_or(|v| *v == k.client_model || *v == k.upstream_model)
}

pub(crate) fn cluster_report(share: &Share, q: &UsageQuery, now_ms: u64) -> Result<UsageReport, UsageError> {
    let mut groups: HashMap<String, UsageGroup> = HashMap::new();
    for (k, s) in share.read(q.since_ms, now_ms)? {
        if matches(q, &k) {
            groups.entry(label(q.by, &k.key, &k.account, &k.client_model, k.hour_ms)).or_default().add(&s);
        }
    }
    let (groups, total) = finish(q.by, groups);
    Ok(UsageReport { by: q.by, since_ms: q.since_ms, until_ms: now_ms, source: share.place().to_string(), cluster: true, exact_since: q.since_ms.is_multiple_of(HOUR_MS), groups, total })
}

/// The series' group of an aggregate.
fn series_group(by: By, k: &HourKey) -> String {
    match by {
        By::Key => k.key.clone(),
        By::Account => k.account.clone(),
        By::Model => k.client_model.clone(),
        By::Day | By::Hour => String::new(),
    }
}

fn sorted_series(points: HashMap<(u64, String), (u64, u64)>) -> Vec<SeriesPoint> {
    let mut out: Vec<SeriesPoint> = points.into_iter().map(|((hour_ms, group), (requests, tokens))| SeriesPoint { hour_ms, group, requests, tokens }).collect();
    out.sort_by(|a, b| (a.hour_ms, &a.group).cmp(&(b.hour_ms, &b.group)));
    out
}

pub(crate) fn series(conn: &Connection, path: &Path, since_ms: u64, by: By) -> Result<Vec<SeriesPoint>, UsageError> {
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let names = Names::load(conn, path)?;
    let g = match by {
        By::Key => "key",
        By::Account => "account",
        By::Model => "client_model",
        By::Day | By::Hour => "NULL",
    };
    let mut stmt = conn
        .prepare(&format!("SELECT hour_ms, {g}, SUM(requests), SUM(input + output + thinking) FROM hourly WHERE hour_ms >= ?1 GROUP BY 1, 2 ORDER BY 1, 2"))
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![(since_ms / HOUR_MS * HOUR_MS) as i64], |r| {
            let group = r.get::<_, Option<i64>>(1)?.map(|id| names.name(id)).unwrap_or_default();
            Ok(SeriesPoint { hour_ms: r.get::<_, i64>(0)? as u64, group, requests: r.get::<_, i64>(2)? as u64, tokens: r.get::<_, i64>(3)? as u64 })
        })
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

pub(crate) fn cluster_series(share: &Share, since_ms: u64, by: By) -> Result<Vec<SeriesPoint>, UsageError> {
    let mut points: HashMap<(u64, String), (u64, u64)> = HashMap::new();
    for (k, s) in share.read(since_ms, crate::util::now_ms())? {
        let p = points.entry((k.hour_ms, series_group(by, &k))).or_default();
        p.0 += s.requests;
        p.1 += s.input + s.output + s.thinking;
    }
    Ok(sorted_series(points))
}

pub(crate) fn tokens_by_account(conn: &Connection, path: &Path, windows: &[(String, u64)]) -> Result<HashMap<String, u64>, UsageError> {
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let names = Names::load(conn, path)?;
    let ids: HashMap<&str, i64> = names.by_id.iter().map(|(id, n)| (n.as_str(), *id)).collect();
    // Accounts never recorded have used nothing.
    let since: HashMap<i64, u64> = windows.iter().filter_map(|(a, s)| ids.get(a.as_str()).map(|id| (*id, *s))).collect();
    let Some(earliest) = since.values().copied().min() else { return Ok(HashMap::new()) };
    let mut out: HashMap<i64, u64> = HashMap::new();
    // The whole hours of each window from the hourly sums (exact: written
    // in the same transaction as the rows).
    let mut stmt = conn
        .prepare("SELECT account, hour_ms, SUM(input + output + thinking) FROM hourly WHERE hour_ms >= ?1 GROUP BY account, hour_ms")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![(earliest / HOUR_MS * HOUR_MS) as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get::<_, i64>(2)?.max(0) as u64)))
        .map_err(sql)?;
    for row in rows {
        let (account, hour, tokens) = row.map_err(sql)?;
        if since.get(&account).is_some_and(|s| hour >= s.div_ceil(HOUR_MS) * HOUR_MS) {
            *out.entry(account).or_insert(0) += tokens;
        }
    }
    // The part hour a window starts in, from the raw rows: one read of
    // that hour's chunks per distinct hour, whichever accounts start in it.
    let mut hours: Vec<u64> = since.values().filter(|s| *s % HOUR_MS != 0).map(|s| s / HOUR_MS * HOUR_MS).collect();
    hours.sort_unstable();
    hours.dedup();
    let mut stmt = conn
        .prepare_cached(&format!("SELECT account, ts_ms, input + output + thinking FROM ({}) WHERE ts_ms >= ?1 AND ts_ms < ?2", raw_rows("?1", "?2")))
        .map_err(sql)?;
    for hour in hours {
        let rows = stmt
            .query_map(params![hour as i64, (hour + HOUR_MS) as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get::<_, i64>(2)?.max(0) as u64)))
            .map_err(sql)?;
        for row in rows {
            let (account, ts, tokens) = row.map_err(sql)?;
            if since.get(&account).is_some_and(|s| *s / HOUR_MS * HOUR_MS == hour && ts >= *s) {
                *out.entry(account).or_insert(0) += tokens;
            }
        }
    }
    Ok(out.into_iter().filter(|(_, t)| *t > 0).map(|(a, t)| (names.name(a), t)).collect())
}

pub(crate) fn cluster_tokens_by_account(share: &Share, windows: &[(String, u64)]) -> Result<HashMap<String, u64>, UsageError> {
    let since: HashMap<&str, u64> = windows.iter().map(|(a, s)| (a.as_str(), *s)).collect();
    let earliest = windows.iter().map(|w| w.1).min().unwrap_or(0);
    let mut out = HashMap::new();
    // Hour granularity: an hour counts when it holds any part of the window.
    for (k, s) in share.read(earliest, crate::util::now_ms())? {
        if let Some(from) = since.get(k.account.as_str()) {
            if k.hour_ms + HOUR_MS > *from {
                *out.entry(k.account).or_insert(0) += s.input + s.output + s.thinking;
            }
        }
    }
    Ok(out)
}

pub(crate) fn today_by_key(conn: &Connection, path: &Path, now_ms: u64) -> Result<HashMap<String, (u64, u64)>, UsageError> {
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let names = Names::load(conn, path)?;
    // The day starts on an hour: the hourly sums (exact, written with the
    // rows) answer it whole.
    let mut stmt = conn.prepare("SELECT key, SUM(requests), SUM(input + output + thinking) FROM hourly WHERE hour_ms >= ?1 GROUP BY key").map_err(sql)?;
    let rows = stmt
        .query_map(params![(now_ms / DAY_MS * DAY_MS) as i64], |r| Ok((names.name(r.get::<_, i64>(0)?), (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)?.max(0) as u64))))
        .map_err(sql)?;
    rows.collect::<Result<HashMap<_, _>, _>>().map_err(sql)
}

pub(crate) fn cluster_today_by_key(share: &Share, now_ms: u64) -> Result<HashMap<String, (u64, u64)>, UsageError> {
    let mut out: HashMap<String, (u64, u64)> = HashMap::new();
    for (k, s) in share.read(now_ms / DAY_MS * DAY_MS, now_ms)? {
        let e = out.entry(k.key).or_default();
        e.0 += s.requests;
        e.1 += s.input + s.output + s.thinking;
    }
    Ok(out)
}
