//! The local snapshot: the pool as this node last knew it from Redis,
//! `<data_dir>/cluster/snapshot.json` (mode 0600: it holds tokens), so a
//! node restarted while Redis is away can still serve. It names the Redis
//! it came from and the key prefix; another cluster's snapshot is not used.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::backend::StoreError;
use super::super::durable;
use super::super::file::AccountFile;

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    /// The Redis URL, password hidden.
    redis: String,
    /// The key prefix.
    prefix: String,
    /// When it was written, Unix ms.
    written_ms: u64,
    accounts: Vec<AccountFile>,
}

/// Writes the snapshot of `accounts` (atomic, durable).
pub(crate) fn write(path: &Path, redis: &str, prefix: &str, written_ms: u64, accounts: Vec<AccountFile>) -> Result<(), StoreError> {
    let file = SnapshotFile { redis: redis.to_string(), prefix: prefix.to_string(), written_ms, accounts };
    let bytes = serde_json::to_vec(&file).expect("snapshot serialises");
    durable::write_atomic(path, "snapshot", &bytes)
}

/// The accounts of the snapshot at `path` and when it was written: `Ok(None)`
/// when there is none, `Err` (why, in words) when it cannot be used.
pub(crate) fn read(path: &Path, redis: &str, prefix: &str) -> Result<Option<(Vec<AccountFile>, u64)>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: SnapshotFile = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} does not parse: {}", path.display(), super::super::file::redact_quoted(&e.to_string())))?;
    if file.redis != redis || file.prefix != prefix {
        return Err(format!("{} is of another cluster ({} prefix {}), not {redis} prefix {prefix}", path.display(), file.redis, file.prefix));
    }
    Ok(Some((file.accounts, file.written_ms)))
}
