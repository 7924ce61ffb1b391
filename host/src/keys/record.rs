//! A named key's record, its secret and hash, and the checks of what a
//! record may hold (names, model globs, expiry dates).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::counters::KeyUse;
use super::error::KeyError;

/// Characters a secret shows in lists (`gp-AbCd`).
pub const HINT_LEN: usize = 7;
/// The secret's prefix.
pub const SECRET_PREFIX: &str = "gp-";
/// Random base62 characters after the prefix (~238 bits).
pub const SECRET_CHARS: usize = 40;

/// One named key as stored (`keys.json`, or a field of `<prefix>:keys`).
/// Never holds the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Unique; 1–64 characters of `[A-Za-z0-9._-]`.
    pub name: String,
    /// `"sha256:<hex>"` of the key.
    pub hash: String,
    /// The key's first 7 characters, to tell keys apart.
    pub hint: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; from then on the key is refused (401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Unix seconds; set once, the key is refused (401) from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// Model globs (`*` wildcards); empty = every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Requests per UTC minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input, output and thinking) per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Unix seconds of the last admitted request (written lazily, so up to
    /// a minute behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<u64>,
    /// Fields this version does not know, kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl KeyRecord {
    /// `"active"`, `"expired"` or `"revoked"` at `now`.
    pub fn state(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|t| t <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// What `add` makes a key with.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// The name.
    pub name: String,
    /// Model globs; empty = every model.
    pub models: Vec<String>,
    /// Requests per UTC minute (`None`: no limit).
    pub requests_per_minute: Option<u32>,
    /// Tokens per UTC day (`None`: no limit).
    pub tokens_per_day: Option<u64>,
    /// Unix seconds (`None`: never).
    pub expires_at: Option<u64>,
}

/// What `edit` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    /// New model globs (`Some(vec![])`: every model).
    pub models: Option<Vec<String>>,
    /// New requests-per-minute limit (`Some(None)`: none).
    pub requests_per_minute: Option<Option<u32>>,
    /// New tokens-per-day limit (`Some(None)`: none).
    pub tokens_per_day: Option<Option<u64>>,
    /// New expiry (`Some(None)`: never).
    pub expires_at: Option<Option<u64>>,
}

impl KeyChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.models.is_none() && self.requests_per_minute.is_none() && self.tokens_per_day.is_none() && self.expires_at.is_none()
    }
}

/// A key of the running ring: its record and its counters (kept across
/// reloads).
pub struct NamedKey {
    pub(super) record: KeyRecord,
    pub(super) hash: [u8; 32],
    pub(super) usage: Arc<KeyUse>,
    /// The name as shared bytes: each usage row names the key without a copy.
    pub(super) label: bytes::Bytes,
}

impl NamedKey {
    /// The key's name (for logs, metrics, the usage log).
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The key's name as shared bytes (a usage row's `key`).
    pub fn label(&self) -> bytes::Bytes {
        self.label.clone()
    }

    /// The record it was loaded from.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey").field("name", &self.record.name).field("hint", &self.record.hint).finish()
    }
}

/// A new key: `gp-` and 40 base62 characters from the OS RNG.
pub fn new_secret() -> String {
    use rand::TryRngCore;
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(SECRET_PREFIX.len() + SECRET_CHARS);
    out.push_str(SECRET_PREFIX);
    let mut buf = [0u8; 64];
    while out.len() < SECRET_PREFIX.len() + SECRET_CHARS {
        rand::rngs::OsRng.try_fill_bytes(&mut buf).expect("the OS random number generator failed");
        // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == SECRET_PREFIX.len() + SECRET_CHARS {
                break;
            }
            out.push(ALPHABET[(*b % 62) as usize] as char);
        }
    }
    out
}

/// SHA-256 of what a client sent.
pub fn digest(sent: &str) -> [u8; 32] {
    Sha256::digest(sent.as_bytes()).into()
}

/// `"sha256:<hex>"`.
pub fn hash_text(hash: &[u8; 32]) -> String {
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The bytes of `"sha256:<hex>"`, if well formed.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The first 7 characters of a key.
pub fn hint_of(secret: &str) -> String {
    secret.chars().take(HINT_LEN).collect()
}

/// Checks a key name: 1–64 characters of `[A-Za-z0-9._-]`.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidName { name: name.to_string() })
    }
}

/// Checks a model glob: 1–128 printable characters without spaces; `*` is
/// the only wildcard.
pub fn check_glob(glob: &str) -> Result<(), KeyError> {
    let bad = |why| Err(KeyError::BadGlob { glob: glob.to_string(), why });
    if glob.is_empty() {
        return bad("it is empty");
    }
    if glob.len() > 128 {
        return bad("it is longer than 128 characters");
    }
    if glob.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it holds a space or a control character");
    }
    if glob.contains(['?', '[', ']', '{', '}']) {
        return bad("only * is a wildcard here");
    }
    Ok(())
}

/// Whether `model` may be used with these globs (none = every model).
pub fn model_allowed(globs: &[String], model: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| crate::config::wildcard_match(g, model))
}

// --- dates (UTC, proleptic Gregorian) -------------------------------------

pub(crate) use crate::util::{civil_from_days, days_from_civil};

/// `yyyymmdd` of a UTC day number (days since 1970-01-01).
pub(crate) fn yyyymmdd(day: u64) -> String {
    let (y, m, d) = civil_from_days(day as i64);
    format!("{y:04}{m:02}{d:02}")
}

/// `2026-12-07 12:01:00 UTC`.
pub(crate) fn fmt_utc(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let r = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", r / 3600, r % 3600 / 60, r % 60)
}

/// `12:01:00 UTC`.
pub(crate) fn fmt_clock(secs: u64) -> String {
    let r = secs % 86_400;
    format!("{:02}:{:02}:{:02} UTC", r / 3600, r % 3600 / 60, r % 60)
}

/// An expiry as given to the CLI: a duration from `now` (`30d`, `12h`,
/// `90m`, `45s`, `2w`), a date (`2027-01-31`, UTC midnight), an RFC 3339
/// time, or (with `allow_never`) `never` → `None`.
pub fn parse_expiry(given: &str, now: u64, allow_never: bool) -> Result<Option<u64>, KeyError> {
    let s = given.trim();
    let bad = || KeyError::BadDate { given: given.to_string(), allow_never };
    if allow_never && s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let digits = s.len().saturating_sub(1);
    if let Some(unit) = s.chars().last().filter(|c| c.is_ascii_alphabetic() && digits > 0 && s[..digits].bytes().all(|b| b.is_ascii_digit())) {
        let n: u64 = s[..digits].parse().map_err(|_| bad())?;
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        if n == 0 {
            return Err(bad());
        }
        return n.checked_mul(mult).and_then(|d| d.checked_add(now)).map(Some).ok_or_else(bad);
    }
    parse_time(s).map(Some).ok_or_else(bad)
}

/// `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn parse_time(s: &str) -> Option<u64> {
    let num = |t: &str| -> Option<u32> { t.bytes().all(|b| b.is_ascii_digit()).then(|| t.parse().ok()).flatten() };
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d) = (num(y)? as i64, num(m)?, num(d)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let (clock, offset) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0i64)
        } else {
            let i = t.rfind(['+', '-'])?;
            let (c, o) = t.split_at(i);
            let (oh, om) = o[1..].split_once(':')?;
            let off = (num(oh)? as i64 * 3600) + num(om)? as i64 * 60;
            (c, if o.starts_with('-') { -off } else { off })
        };
        let clock = clock.split_once('.').map_or(clock, |(c, _)| c);
        let mut hms = clock.splitn(3, ':');
        let (h, mi, se) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        secs += (h * 3600 + mi * 60 + se) as i64 - offset;
    }
    u64::try_from(secs).ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
