//! What went wrong managing keys ([`KeyError`]): every message says what
//! to do.

use std::path::PathBuf;

/// What went wrong managing keys. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The name is not 1–64 characters of `[A-Za-z0-9._-]`.
    #[error("{name:?} is not a valid key name: use 1 to 64 characters of letters, digits, '.', '_' and '-' (e.g. ci-bot)")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A key with this name exists.
    #[error("a key named {name:?} exists already; pick another name, or change it with `grantpool keys edit {name} …` (revoked keys keep their name)")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// No key with this name.
    #[error("no key named {name:?}; the keys are: {}", if known.is_empty() { "(none; add one with `grantpool keys add NAME`)".to_string() } else { known.join(", ") })]
    NotFound {
        /// The name looked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// A model glob that cannot be used.
    #[error("{glob:?} is not a valid model glob: {why} (e.g. gemini-* or claude-sonnet-*)")]
    BadGlob {
        /// The glob.
        glob: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A date or duration that does not parse.
    #[error("{given:?} is not a valid expiry: give a duration (30d, 12h, 90m), a date (2027-01-31, UTC midnight), an RFC 3339 time (2027-01-31T12:00:00Z){}", if *allow_never { ", or never" } else { "" })]
    BadDate {
        /// What was given.
        given: String,
        /// Whether `never` would have been accepted.
        allow_never: bool,
    },
    /// A new key's expiry that has passed already.
    #[error("the expiry {at} has passed already; give a time to come (e.g. --expires 30d)")]
    InPast {
        /// The expiry given, as a UTC time.
        at: String,
    },
    /// A limit of zero where zero means nothing.
    #[error("{what} must be at least 1 (to remove the limit, leave it out{})", if *edit { " or give 0 to `keys edit`" } else { "" })]
    BadLimit {
        /// Which limit.
        what: &'static str,
        /// Given to `edit` (where 0 removes it).
        edit: bool,
    },
    /// The keys file could not be read or written.
    #[error("could not {action} {}: {cause}; check that the data directory exists and is writable by this user", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// The keys file does not parse; it was left as it is.
    #[error("the keys file {} does not parse ({cause}); it was left untouched: fix it by hand (or move it away to start over)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// A record in Redis under this name does not parse (written by hand
    /// or by a newer grantpool): it is not overwritten.
    #[error("the key record {name:?} in Redis ({place}) does not parse, so it was left as it is and not replaced; remove it (`HDEL {hash} {name}`) or use another name")]
    Unreadable {
        /// The key's name (the hash field).
        name: String,
        /// Where (password hidden).
        place: String,
        /// The Redis hash holding the keys.
        hash: String,
    },
    /// Redis did not answer or refused.
    #[error("the cluster's Redis at {place} did not answer ({cause}); the keys were not changed: check that Redis is up and [cluster] redis_url")]
    Cluster {
        /// Where (password hidden).
        place: String,
        /// Why.
        cause: String,
    },
}
