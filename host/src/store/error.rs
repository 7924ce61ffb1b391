//! The store's errors: each names the file or account and what to do;
//! none contains a token. Their own room, so that the backends and the
//! upsert rules both use them without importing each other.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong in the store. Every message names the file or account and
/// what to do; none contains a token.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("could not {action} {}: {error}; check that the path exists and is writable by this user", path.display())]
    Io {
        /// What was being done (e.g. `write`, `create directory`).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// The account file exists but does not parse; it was left untouched.
    #[error("account file {} does not parse ({cause}); it was left untouched and the account is skipped: fix the file by hand or delete it", path.display())]
    Corrupt {
        /// The account id (the file name without `.json`).
        id: String,
        /// The file.
        path: PathBuf,
        /// Why it does not parse (without values from the file).
        cause: String,
    },
    /// No account with this id.
    #[error("no account {id:?} (no {place}); `grantpool accounts list` shows the accounts")]
    NotFound {
        /// The id looked for.
        id: String,
        /// Where it would be (e.g. `file /x/accounts/<id>.json`).
        place: String,
    },
    /// The id cannot name an account file.
    #[error("{id:?} is not a valid account id: an id is a file name (in {place}) and may not be empty, start with '.', or contain '/', '\\' or control characters")]
    InvalidId {
        /// The rejected id.
        id: String,
        /// Where accounts are kept.
        place: String,
    },
    /// The account to save is incomplete.
    #[error("refusing to save account {email:?}: {reason}")]
    InvalidAccount {
        /// The account's email as given.
        email: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The cluster store (Redis) could not be reached or refused a command.
    #[error("cannot reach the cluster store at {place}: {cause}; check that Redis runs there and that [cluster] redis_url (or $GRANTPOOL_REDIS_URL) points at it")]
    Cluster {
        /// The Redis URL, password hidden.
        place: String,
        /// What failed.
        cause: String,
    },
    /// A record in the cluster store does not parse; it was left untouched.
    #[error("account record {key} does not parse ({cause}); it was left untouched and the account is skipped: fix it or delete the key (`grantpool accounts remove {id}`)")]
    CorruptRecord {
        /// The account id.
        id: String,
        /// The Redis key holding it.
        key: String,
        /// Why it does not parse (without values from the record).
        cause: String,
    },
    /// Taking the lock that serialises writes failed.
    #[error("could not lock {}: {error}; if another grantpool process hangs, stop it", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
}

pub(crate) fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io {
        action,
        path: path.to_path_buf(),
        error,
    }
}

