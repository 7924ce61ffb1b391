//! What can go wrong with the usage database or its cluster share, each
//! saying which file or Redis and what to do.

use std::path::PathBuf;

/// What went wrong with the usage database or its cluster share.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A file or directory could not be created or read.
    #[error("usage database: {path}: {source} (check that the data directory exists and is writable)")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// SQLite refused (a corrupt file, a full disk, a lock held too long).
    #[error("usage database {path}: {source} (if the file is corrupt, move it away: a new one is created at start)")]
    Sql {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The file was written by a newer grantpool.
    #[error("usage database {path} has schema version {found}, this grantpool knows up to {known}: upgrade grantpool or move the file away")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The file was written by an older grantpool and not upgraded yet.
    #[error("usage database {path} has schema version {found}, from an older grantpool; start `grantpool serve` once to upgrade it (to version {known}), then ask again")]
    OlderSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The version this build writes.
        known: i64,
    },
    /// Redis (cluster mode) did not answer or refused.
    #[error("usage in the cluster ({place}): {cause} (check [cluster] redis_url and that Redis is up)")]
    Cluster {
        /// The Redis URL, password hidden.
        place: String,
        /// What happened.
        cause: String,
    },
    /// `[usage] enabled = false`.
    #[error("usage recording is off ([usage] enabled = false in grantpool.toml)")]
    Disabled,
}
