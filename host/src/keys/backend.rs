//! Where key records live: `<data_dir>/keys.json`, or the cluster's Redis.
//! Both read-modify-write under a lock (a file lock; WATCH/MULTI/EXEC), so
//! two CLIs or nodes changing keys at once lose neither change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::cluster::conn::{Fail, Redis};
use crate::store::durable;

use super::record::KeyRecord;
use super::error::KeyError;

/// A cheap marker that changes whenever the records do.
pub(crate) type Version = [u64; 4];

/// A change applied to every record, under the backend's lock; may run
/// more than once (a Redis transaction that lost a race is retried).
pub(crate) type Edit<'a> = &'a mut dyn FnMut(&mut Vec<KeyRecord>) -> Result<(), KeyError>;

/// A place records live.
pub(crate) trait Backend: Send + Sync {
    /// Every record (unreadable ones skipped with a warning).
    fn load(&self) -> Result<Vec<KeyRecord>, KeyError>;
    /// Applies `edit` under the lock and writes what changed; the records after.
    fn modify(&self, edit: Edit<'_>) -> Result<Vec<KeyRecord>, KeyError>;
    /// The change marker now.
    fn version(&self) -> Result<Version, KeyError>;
    /// Where, for messages (no password).
    fn location(&self) -> String;
    /// The cluster's Redis and key prefix, in cluster mode.
    fn cluster(&self) -> Option<(Arc<Redis>, String)>;
    /// The records last loaded, kept on this machine: what a cluster node
    /// starts with while Redis is away. `None` when there are none.
    fn fallback(&self) -> Option<Vec<KeyRecord>> {
        None
    }
}

/// `keys.json`: one document with every record.
#[derive(Serialize, Deserialize, Default)]
struct Doc {
    #[serde(default)]
    keys: Vec<KeyRecord>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// The file backend.
pub(crate) struct FileKeys {
    path: PathBuf,
    lock: PathBuf,
}

impl FileKeys {
    /// Keys in `<data_dir>/keys.json` (nothing is created until a write).
    pub(crate) fn new(data_dir: &Path) -> FileKeys {
        FileKeys { path: data_dir.join("keys.json"), lock: data_dir.join(".keys.json.lock") }
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
        let path = path.to_path_buf();
        move |e| KeyError::Io { action, path, cause: e.to_string() }
    }

    fn read(&self) -> Result<Doc, KeyError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Doc::default()),
            Err(e) => return Err(self.io("read", &self.path)(e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Doc::default());
        }
        // serde_json's message names line and column, never a value.
        serde_json::from_slice(&bytes).map_err(|e| KeyError::Corrupt { path: self.path.clone(), cause: e.to_string() })
    }
}

fn store_err(path: &Path) -> impl FnOnce(crate::store::StoreError) -> KeyError + '_ {
    move |e| KeyError::Io { action: "write", path: path.to_path_buf(), cause: e.to_string() }
}

impl Backend for FileKeys {
    fn load(&self) -> Result<Vec<KeyRecord>, KeyError> {
        Ok(self.read()?.keys)
    }

    fn modify(&self, edit: Edit<'_>) -> Result<Vec<KeyRecord>, KeyError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(self.io("create directory", dir))?;
        }
        let _held = durable::lock_file(&self.lock).map_err(store_err(&self.lock))?;
        let mut doc = self.read()?;
        let before = doc.keys.clone();
        edit(&mut doc.keys)?;
        if doc.keys != before {
            let mut bytes = serde_json::to_vec_pretty(&doc).expect("key records serialise");
            bytes.push(b'\n');
            durable::write_atomic(&self.path, "keys.json", &bytes).map_err(store_err(&self.path))?;
        }
        Ok(doc.keys)
    }

    fn version(&self) -> Result<Version, KeyError> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(file_version(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok([0; 4]),
            Err(e) => Err(self.io("read", &self.path)(e)),
        }
    }

    fn location(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn cluster(&self) -> Option<(Arc<Redis>, String)> {
        None
    }
}

#[cfg(unix)]
fn file_version(m: &std::fs::Metadata) -> Version {
    use std::os::unix::fs::MetadataExt;
    [m.mtime() as u64, m.mtime_nsec() as u64, m.len(), m.ino()]
}

#[cfg(not(unix))]
fn file_version(m: &std::fs::Metadata) -> Version {
    let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    [t.as_secs(), u64::from(t.subsec_nanos()), m.len(), 0]
}

/// The cluster backend: the hash `<prefix>:keys`, the counter
/// `<prefix>:keys:rev`, and every change announced on the channel
/// `<prefix>:keys:changed` (nodes subscribe: no polling). What was loaded
/// last is kept in `<data_dir>/cluster/keys.json` (hashes only, 0600), so
/// that a node starting while Redis is away knows the keys.
pub(crate) struct RedisKeys {
    redis: Arc<Redis>,
    prefix: String,
    snapshot: Option<PathBuf>,
    /// The snapshot's text as last written (not rewritten unchanged).
    written: parking_lot::Mutex<Option<String>>,
}

/// The channel a cluster's key changes are announced on.
pub(crate) fn changes_channel(prefix: &str) -> String {
    format!("{prefix}:keys:changed")
}

impl RedisKeys {
    /// Keys in the Redis at `url` (not connected yet); `data_dir`: where the
    /// last loaded records are kept (none for the CLI).
    pub(crate) fn open(url: &str, prefix: &str, data_dir: Option<&Path>) -> Result<RedisKeys, KeyError> {
        let place = crate::util::redact_url(url);
        let redis = Redis::open(url, &place).map_err(|e| KeyError::Cluster { place: place.clone(), cause: e.to_string() })?;
        let snapshot = data_dir.map(|d| d.join("cluster").join("keys.json"));
        Ok(RedisKeys { redis: Arc::new(redis), prefix: prefix.to_string(), snapshot, written: parking_lot::Mutex::new(None) })
    }

    /// Keeps `records` as the snapshot (best effort: a failure is logged).
    fn keep(&self, records: &[KeyRecord]) {
        let Some(path) = &self.snapshot else { return };
        let text = serde_json::to_string(records).expect("key records serialise");
        let mut written = self.written.lock();
        if written.as_deref() == Some(text.as_str()) {
            return;
        }
        let result = (|| -> std::io::Result<()> {
            let dir = path.parent().expect("a folder");
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, text.as_bytes())?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        })();
        match result {
            Ok(()) => *written = Some(text),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot keep the keys' snapshot; a restart while Redis is away would start without keys"),
        }
    }

    fn hash(&self) -> String {
        format!("{}:keys", self.prefix)
    }

    fn rev(&self) -> String {
        format!("{}:keys:rev", self.prefix)
    }

    fn fail(&self, f: Fail) -> KeyError {
        KeyError::Cluster { place: self.redis.place().to_string(), cause: f.cause }
    }
}

/// Records of a `HGETALL`, the unreadable skipped with a warning.
fn parse_fields(fields: Vec<(String, String)>, place: &str) -> Vec<(String, KeyRecord)> {
    let mut out: Vec<(String, KeyRecord)> = fields
        .into_iter()
        .filter_map(|(name, json)| match serde_json::from_str::<KeyRecord>(&json) {
            Ok(r) => Some((json, r)),
            Err(e) => {
                tracing::warn!(key_name = %name, place, cause = %e, "a key record in Redis does not parse; it is skipped (and left as it is)");
                None
            }
        })
        .collect();
    out.sort_by(|a, b| (a.1.created_at, &a.1.name).cmp(&(b.1.created_at, &b.1.name)));
    out
}

impl RedisKeys {
    /// A Redis that came back without any data (no revision at all: it
    /// keeps nothing across restarts) lost the keys this node knew: nobody
    /// removed them (a revocation keeps its record, and every change is a
    /// revision). Puts back the keys of this node's snapshot, each only
    /// where no other node did already, as the cluster store puts back the
    /// accounts.
    fn reseed_if_emptied(&self) -> Result<(), KeyError> {
        let (hash, rev) = (self.hash(), self.rev());
        // One GET on every load; the snapshot is read only when Redis has
        // no revision.
        let current: Option<u64> = self.redis.run(|c| redis::cmd("GET").arg(&rev).query(c)).map_err(|f| self.fail(f))?;
        if current.is_some() {
            return Ok(());
        }
        let Some(known) = self.fallback().filter(|k| !k.is_empty()) else { return Ok(()) };
        let restored: Option<usize> = self
            .redis
            .run(|c| {
                // Another node may have put them back meanwhile.
                let current: Option<u64> = redis::cmd("GET").arg(&rev).query(c)?;
                if current.is_some() {
                    return Ok(None);
                }
                let mut n = 0;
                for r in &known {
                    let added: i64 = redis::cmd("HSETNX").arg(&hash).arg(&r.name).arg(serde_json::to_string(r).expect("key records serialise")).query(c)?;
                    n += usize::from(added > 0);
                }
                redis::cmd("INCR").arg(&rev).query::<()>(c)?;
                redis::cmd("PUBLISH").arg(changes_channel(&self.prefix)).arg(&rev).query::<()>(c)?;
                Ok(Some(n))
            })
            .map_err(|f| self.fail(f))?;
        if let Some(n) = restored {
            tracing::error!(
                redis = %self.redis.place(),
                "the keys in Redis {} came back empty (it keeps no data across restarts: run Redis with appendonly yes); restored {n} of the {} keys this node knew",
                self.redis.place(),
                known.len()
            );
        }
        Ok(())
    }
}

impl Backend for RedisKeys {
    fn load(&self) -> Result<Vec<KeyRecord>, KeyError> {
        self.reseed_if_emptied()?;
        let fields: Vec<(String, String)> = self.redis.run(|c| redis::cmd("HGETALL").arg(self.hash()).query(c)).map_err(|f| self.fail(f))?;
        let records: Vec<KeyRecord> = parse_fields(fields, self.redis.place()).into_iter().map(|(_, r)| r).collect();
        self.keep(&records);
        Ok(records)
    }

    fn fallback(&self) -> Option<Vec<KeyRecord>> {
        let path = self.snapshot.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        match serde_json::from_str(&text) {
            Ok(records) => Some(records),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the keys' snapshot does not parse; starting without keys until Redis answers");
                None
            }
        }
    }

    fn modify(&self, edit: Edit<'_>) -> Result<Vec<KeyRecord>, KeyError> {
        let (hash, rev) = (self.hash(), self.rev());
        // The domain's error (from `edit`) travels out of the closure here.
        let mut refused: Option<KeyError> = None;
        let out = self.redis.run(|c| loop {
            redis::cmd("WATCH").arg(&hash).query::<()>(c)?;
            let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(&hash).query(c)?;
            let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
            let before = parse_fields(fields, self.redis.place());
            let mut records: Vec<KeyRecord> = before.iter().map(|(_, r)| r.clone()).collect();
            // A field that does not parse keeps its name: an edit never
            // writes over it.
            let unreadable: Vec<String> = names.into_iter().filter(|n| !before.iter().any(|(_, r)| r.name == *n)).collect();
            let outcome = edit(&mut records).and_then(|()| match records.iter().find(|r| unreadable.contains(&r.name)) {
                Some(r) => Err(KeyError::Unreadable { name: r.name.clone(), place: self.redis.place().to_string(), hash: hash.clone() }),
                None => Ok(()),
            });
            if let Err(e) = outcome {
                redis::cmd("UNWATCH").query::<()>(c)?;
                refused = Some(e);
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            pipe.atomic();
            let mut changed = 0;
            for r in &records {
                if !before.iter().any(|(_, old)| old == r) {
                    pipe.cmd("HSET").arg(&hash).arg(&r.name).arg(serde_json::to_string(r).expect("key records serialise")).ignore();
                    changed += 1;
                }
            }
            if changed == 0 {
                redis::cmd("UNWATCH").query::<()>(c)?;
                return Ok(records);
            }
            pipe.cmd("INCR").arg(&rev).ignore();
            pipe.cmd("PUBLISH").arg(changes_channel(&self.prefix)).arg(&rev).ignore();
            // EXEC answers nil when the hash changed since WATCH: again.
            let done: Option<()> = pipe.query(c)?;
            if done.is_some() {
                return Ok(records);
            }
        });
        match (out, refused) {
            (_, Some(e)) => Err(e),
            (Ok(records), None) => Ok(records),
            (Err(f), None) => Err(self.fail(f)),
        }
    }

    fn version(&self) -> Result<Version, KeyError> {
        let rev: Option<u64> = self.redis.run(|c| redis::cmd("GET").arg(self.rev()).query(c)).map_err(|f| self.fail(f))?;
        Ok([rev.unwrap_or(0), 1, 0, 0])
    }

    fn location(&self) -> String {
        format!("Redis {} ({}:keys)", self.redis.place(), self.prefix)
    }

    fn cluster(&self) -> Option<(Arc<Redis>, String)> {
        Some((self.redis.clone(), self.prefix.clone()))
    }
}
