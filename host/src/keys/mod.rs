//! Named client keys: a shared pool hands each client its own key, with a
//! name, an optional expiry, the models it may use and its own limits.
//!
//! Only a SHA-256 of a key is kept (`"sha256:<hex>"`), with its first 7
//! characters (`gp-AbCd`) to tell keys apart in lists. A key is `gp-` and 40
//! base62 characters from the OS RNG, shown once by whoever creates it.
//!
//! - [`record`]: the record ([`KeyRecord`]), secrets, hashes, names, globs, dates.
//! - `error`: [`KeyError`], what went wrong managing keys.
//! - `admission`: [`Admission`] and [`KeyRefusal`], what a client's key is let
//!   in with or refused for.
//! - `backend`: where records live: `<data_dir>/keys.json` (one document,
//!   mode 0600, written atomically under a cross-process lock), or in
//!   cluster mode the Redis hash `<prefix>:keys` (field = name, value = the
//!   record's JSON) with `<prefix>:keys:rev` incremented on every change.
//! - `counters`: the per-key counters; `limits`: the checks against a key's
//!   model globs and limits.
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

mod admission;
mod backend;
mod counters;
mod error;
mod limits;
mod ring;
mod sync;

#[cfg(test)]
mod tests;

pub use admission::{Admission, KeyRefusal};
pub use error::KeyError;
pub use form::KeyForm;
pub use record::{KeyChange, KeyRecord, KeySpec, NamedKey};
pub use ring::{KeyRing, KeyView, TodayUse};
