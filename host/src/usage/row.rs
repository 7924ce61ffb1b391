//! One request's usage, the database's schema, and how connections to it
//! are opened (the writer's read-write, everyone else's read-only).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::error::UsageError;

/// Milliseconds in an hour and in a day: the buckets of the aggregates.
pub(crate) const HOUR_MS: u64 = 3_600_000;
pub(crate) const DAY_MS: u64 = 86_400_000;
/// Requests in one chunk at most (one SQLite row of `chunks`, below).
pub(crate) const CHUNK_ROWS: usize = 4096;

/// The schema this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

/// A name in a usage row (a key's, an account's, a model's): UTF-8 in
/// shared bytes, so that a row costs no allocation (the pool's account
/// ids and the log's interned names are cloned, a reference count each)
/// and the writer knows a name it has seen by its address.
pub type Name = bytes::Bytes;

/// A [`Name`] copied from `s` (tests, tools; the proxy uses
/// [`super::UsageLog::name`]).
pub fn name(s: &str) -> Name {
    Name::copy_from_slice(s.as_bytes())
}

/// A [`Name`] as text (names are made from `&str`; anything else reads as `"?"`).
pub(crate) fn name_str(n: &Name) -> &str {
    std::str::from_utf8(n).unwrap_or("?")
}

/// What one client request used, recorded after its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// When the request arrived, Unix ms.
    pub ts_ms: u64,
    /// A named key's name; empty for an unnamed `api_keys` key or none.
    pub key: Name,
    /// The account that served it; empty when none did.
    pub account: Name,
    /// The model the client asked for.
    pub client_model: Name,
    /// The model sent to Google.
    pub upstream_model: Name,
    /// `"gemini"` | `"openai"` | `"anthropic"`.
    pub protocol: &'static str,
    /// `"generate"` | `"chat"` | `"responses"` | `"messages"` | `"images"`.
    pub route: &'static str,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// HTTP status sent to the client (≥ 400 counts as an error).
    pub status: u16,
    /// Google's `promptTokenCount` (cached tokens included).
    pub input_tokens: u64,
    /// Google's `candidatesTokenCount`.
    pub output_tokens: u64,
    /// Google's `cachedContentTokenCount` (a part of the input).
    pub cached_tokens: u64,
    /// Google's `thoughtsTokenCount`.
    pub thinking_tokens: u64,
    /// From arrival to the end of the answer, ms.
    pub latency_ms: u32,
    /// Upstream attempts (accounts tried).
    pub attempts: u32,
}

/// The dimensions an hourly aggregate is kept by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HourKey {
    pub hour_ms: u64,
    pub key: String,
    pub account: String,
    pub client_model: String,
    pub upstream_model: String,
    pub protocol: String,
}

/// The sums kept per [`HourKey`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub requests: u64,
    pub errors: u64,
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub thinking: u64,
    pub latency_ms: u64,
}

impl Sums {
    /// Adds one request.
    pub fn add_row(&mut self, r: &UsageRow) {
        self.requests += 1;
        self.errors += u64::from(r.status >= 400);
        self.input += r.input_tokens;
        self.output += r.output_tokens;
        self.cached += r.cached_tokens;
        self.thinking += r.thinking_tokens;
        self.latency_ms += u64::from(r.latency_ms);
    }

    /// Adds another sum.
    pub fn merge(&mut self, o: &Sums) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input += o.input;
        self.output += o.output;
        self.cached += o.cached;
        self.thinking += o.thinking;
        self.latency_ms += o.latency_ms;
    }

    /// The metric names of Redis fields, with their values.
    pub fn metrics(&self) -> [(&'static str, u64); 7] {
        [
            ("requests", self.requests),
            ("errors", self.errors),
            ("input", self.input),
            ("output", self.output),
            ("cached", self.cached),
            ("thinking", self.thinking),
            ("latency_ms", self.latency_ms),
        ]
    }

    /// Adds `n` to the metric named `name` (a Redis field's last part);
    /// false for a name this build does not know.
    pub fn add_metric(&mut self, name: &str, n: u64) -> bool {
        let slot = match name {
            "requests" => &mut self.requests,
            "errors" => &mut self.errors,
            "input" => &mut self.input,
            "output" => &mut self.output,
            "cached" => &mut self.cached,
            "thinking" => &mut self.thinking,
            "latency_ms" => &mut self.latency_ms,
            _ => return false,
        };
        *slot += n;
        true
    }
}

// Names (keys, accounts, models, protocols, routes) are stored once, in
// `names`, and rows hold their ids: a row is about a third the size it
// would be with the strings repeated (measured by examples/usage_fill.rs).
//
// Raw rows are stored in chunks: one SQLite row holds up to
// `CHUNK_ROWS` requests of one hour as a JSON array of arrays (the
// columns of `ROW_COLUMNS`, in order). A table row and an index entry per
// request cost the writer thread about 4.5 µs a request, which on two
// cores every request pays (BENCHMARKS.md, "Keys and usage"); a chunk is
// one insert. The view `requests` unpacks them, one row per request, for
// anyone reading the file with `sqlite3`; the queries read `chunks`
// themselves so that its index on `max_ts` bounds them.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS chunks (
    id     INTEGER PRIMARY KEY,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    rows   INTEGER NOT NULL,
    data   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_max_ts ON chunks(max_ts);
CREATE TABLE IF NOT EXISTS hourly (
    hour_ms        INTEGER NOT NULL,
    key            INTEGER NOT NULL,
    account        INTEGER NOT NULL,
    client_model   INTEGER NOT NULL,
    upstream_model INTEGER NOT NULL,
    protocol       INTEGER NOT NULL,
    requests       INTEGER NOT NULL,
    errors         INTEGER NOT NULL,
    input          INTEGER NOT NULL,
    output         INTEGER NOT NULL,
    cached         INTEGER NOT NULL,
    thinking       INTEGER NOT NULL,
    latency_ms     INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, key, account, client_model, upstream_model, protocol)
) WITHOUT ROWID;
";

/// The columns of a raw row, in the order a chunk's arrays hold them
/// (names are ids into `names`).
pub(crate) const ROW_COLUMNS: [&str; 15] = [
    "ts_ms",
    "key",
    "account",
    "client_model",
    "upstream_model",
    "protocol",
    "route",
    "stream",
    "status",
    "input",
    "output",
    "cached",
    "thinking",
    "latency_ms",
    "attempts",
];

/// `SELECT`s the raw rows (as [`ROW_COLUMNS`]) of the chunks that may hold
/// rows with `from <= ts_ms < to` (SQL expressions, usually parameters);
/// the caller still filters on `ts_ms`.
pub(crate) fn raw_rows(from: &str, to: &str) -> String {
    format!("SELECT {} FROM chunks c, json_each(c.data) r WHERE c.max_ts >= {from} AND c.min_ts < {to}", unpacked())
}

/// `r.value ->> 0 AS ts_ms, …`: a chunk's array element as columns.
fn unpacked() -> String {
    ROW_COLUMNS.iter().enumerate().map(|(i, c)| format!("r.value ->> {i} AS {c}")).collect::<Vec<_>>().join(", ")
}

/// The view of every raw row, one per request.
fn view_sql() -> String {
    format!("CREATE VIEW IF NOT EXISTS requests AS SELECT {} FROM chunks c, json_each(c.data) r;", unpacked())
}

/// Version 1 kept a table row per request, with an index on `ts_ms`: its
/// rows move into chunks (of one hour, at most `CHUNK_ROWS`), in one
/// transaction with the rest of the upgrade.
fn from_v1() -> String {
    format!(
        "ALTER TABLE requests RENAME TO requests_v1;
         DROP INDEX IF EXISTS requests_ts;
         DROP INDEX IF EXISTS requests_account_ts;
         {SCHEMA}
         INSERT INTO chunks (min_ts, max_ts, rows, data)
             SELECT MIN(ts_ms), MAX(ts_ms), COUNT(*), json_group_array(json_array({cols}))
             FROM (SELECT rowid AS n, * FROM requests_v1 ORDER BY ts_ms)
             GROUP BY ts_ms / {HOUR_MS}, n / {rows};
         DROP TABLE requests_v1;",
        cols = ROW_COLUMNS.join(", "),
        rows = CHUNK_ROWS,
    )
}

/// `<data_dir>/usage.db`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("usage.db")
}

/// Opens (creating if missing, mode 0600) the database for writing: WAL,
/// `synchronous=NORMAL` (a crash loses at most the last batch, never the
/// file), the schema created or checked.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, UsageError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| UsageError::Io { path: dir.to_path_buf(), source })?;
    }
    create_private(path)?;
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let conn = Connection::open(path).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(UsageError::NewerSchema { path: path.to_path_buf(), found: version, known: SCHEMA_VERSION });
    }
    if version < SCHEMA_VERSION {
        let upgrade = if version == 0 { SCHEMA.to_string() } else { from_v1() };
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {upgrade} {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;", view_sql())).map_err(sql)?;
        if version > 0 {
            tracing::info!(path = %path.display(), from = version, to = SCHEMA_VERSION, "usage database upgraded");
        }
    }
    Ok(conn)
}

/// Opens the database read-only (a proxy may be writing it meanwhile:
/// WAL lets readers see the last committed batch without blocking it).
/// `Ok(None)` when there is no database yet.
pub(crate) fn open_reader(path: &Path) -> Result<Option<Connection>, UsageError> {
    if !path.exists() {
        return Ok(None);
    }
    let sql = |source| UsageError::Sql { path: path.to_path_buf(), source };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(UsageError::NewerSchema { path: path.to_path_buf(), found: version, known: SCHEMA_VERSION });
    }
    if version == 0 {
        // Created but never written: nothing recorded yet.
        return Ok(None);
    }
    if version < SCHEMA_VERSION {
        return Err(UsageError::OlderSchema { path: path.to_path_buf(), found: version, known: SCHEMA_VERSION });
    }
    Ok(Some(conn))
}

/// Creates the file with mode 0600 if missing (SQLite gives its -wal and
/// -shm files the same mode), so prompts' metadata stays the user's.
fn create_private(path: &Path) -> Result<(), UsageError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|source| UsageError::Io { path: path.to_path_buf(), source })
}

/// Every name by id (a few hundred: keys, accounts, models).
pub(crate) fn load_names(conn: &Connection) -> rusqlite::Result<std::collections::HashMap<i64, String>> {
    let mut stmt = conn.prepare("SELECT id, name FROM names")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
