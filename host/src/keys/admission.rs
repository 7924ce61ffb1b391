//! What a client's named key is let in with or refused for: [`Admission`]
//! (at [`super::KeyRing::admit`]) and [`KeyRefusal`] (expired, revoked, a
//! model or a limit), for the client's error body.

use std::sync::Arc;

use super::record::NamedKey;

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
