//! Named client keys: a shared pool hands each client its own key, with a
//! name, an optional expiry, the models it may use and its own limits.
//!
//! Only a SHA-256 of a key is kept (`"sha256:<hex>"`), with its first 7
//! characters (`gp-AbCd`) to tell keys apart in lists. A key is `gp-` and 40
//! base62 characters from the OS RNG, shown once by whoever creates it.
//!
//! - [`record`]: the record ([`KeyRecord`]), secrets, hashes, names, globs, dates.
//! - `backend`: where records live: `<data_dir>/keys.json` (one document,
//!   mode 0600, written atomically under a cross-process lock), or in
//!   cluster mode the Redis hash `<prefix>:keys` (field = name, value = the
//!   record's JSON) with `<prefix>:keys:rev` incremented on every change.
//! - `limits`: the per-key counters and the limit checks.
//! - `ring`: [`KeyRing`], what the running proxy holds: an in-memory
//!   snapshot (one SHA-256 and one map lookup per request), reloaded within
//!   ~0.25 s of a change by another process or node (a watcher polls the
//!   file's mtime, length and inode, or the Redis revision).
//! - `sync`: the cluster's shared counters.
//! - [`cli`]: `grantpool keys add | list | revoke | edit`.
//! - [`form`]: a key as the admin API and the page send it (JSON).
//!
//! # Limits
//!
//! Checked in this order, before an account is chosen ([`KeyRing::check`]):
//!
//! 1. **Models** (403): the model must match one of the key's globs (`*`
//!    matches any run of characters); no globs = every model.
//! 2. **Requests per minute** (429): a fixed window per UTC minute. A
//!    request is admitted while the minute's count is below the limit; the
//!    retry-after is the seconds to the next minute.
//! 3. **Tokens per day** (429): the UTC day. A request is admitted while
//!    today's tokens (input, output and thinking, as [`KeyRing::spent`] reports them)
//!    are below the limit: the request that crosses it completes, the next
//!    is refused. The retry-after is the seconds to UTC midnight. On one
//!    node the day's total survives a restart through
//!    [`KeyRing::seed_today`] (from the usage log).
//!
//! An expired or revoked key is refused with 401 at [`KeyRing::admit`].
//!
//! # Cluster mode
//!
//! The counters are shared through Redis in batches, never on the request
//! path: every second a background thread pushes, pipelined, what this node
//! counted since the last push — `INCRBY <prefix>:keyuse:<name>:m:<unix
//! minute>` (expires after 180 s) and `HINCRBY
//! <prefix>:keyuse:<name>:d:<yyyymmdd>` fields `requests` and `tokens`
//! (expires after 3 days) — and reads the totals back. A check uses the
//! shared total at the last sync plus what this node counted since. So
//! the nodes together may overshoot a limit by what the *other* nodes
//! admit within one batch window (about a second, plus a Redis round
//! trip): with N nodes and a key sending evenly, up to (N−1)/N of a
//! second's traffic per minute window, or the tokens of the requests in
//! flight at the crossing. While Redis is away each node counts alone
//! (and pushes what it counted when Redis returns).
//! [`KeyRing::seed_today`] is not needed there (Redis holds the day).
//!
//! `last_used` is kept in memory and written lazily, at most once a
//! minute, never once per request.

pub mod cli;
pub mod form;
pub mod record;

mod backend;
mod limits;
mod ring;
mod sync;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use form::KeyForm;
pub use record::{KeyChange, KeyRecord, KeySpec, NamedKey};
pub use ring::{KeyRing, KeyView, TodayUse};

use std::sync::Arc;

/// What [`KeyRing::admit`] makes of the key a client sent.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Not a named key (it may still be one of `server.api_keys`).
    Unknown,
    /// A named key in force.
    Named(Arc<NamedKey>),
    /// A named key that may not be used (expired or revoked: 401).
    Refused(KeyRefusal),
}

/// Why a named key's request is refused, for the client's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRefusal {
    /// The HTTP status: 401 (expired, revoked), 403 (model), 429 (a limit).
    pub status: u16,
    /// Which limit: `"expired"`, `"revoked"`, `"model"`,
    /// `"requests_per_minute"` or `"tokens_per_day"`.
    pub limit: &'static str,
    /// What happened, naming the key's name (never the key), when it
    /// resets and what to do.
    pub message: String,
    /// Seconds until the limit resets (for `retry-after`), on 429.
    pub retry_after_secs: Option<u64>,
}

impl std::fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

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
