//! The account store: the only writer of account files.
//!
//! One pretty-printed JSON file per account, `<data_dir>/accounts/<id>.json`
//! (mode 0600, directory 0700). The file is the authoritative state of the
//! account; the in-memory pool is a cache of it.
//!
//! Guarantees:
//!
//! - **Atomic, durable writes.** A write goes to a temporary file in the same
//!   folder (`.<id>.XXXXXX.tmp`), is fsynced, renamed over the account file,
//!   and the folder is fsynced. A crash at any moment leaves either the old or
//!   the new file, never a partial one.
//! - **Unknown fields are kept.** Fields grantpool does not know (top level,
//!   inside `token`, and foreign entries of `quota` such as
//!   Antigravity-Manager's `models`/`last_updated`/`is_forbidden`) survive a
//!   rewrite. Antigravity-Manager's files are accepted as they are.
//! - **A file that does not parse is never overwritten.** Loading skips it with
//!   a warning naming the file and the cause; an update or upsert that would
//!   touch it is refused with an error naming the file.
//! - **Writes to one account are serialised**, within the process (a per-id
//!   mutex) and across processes (an exclusive lock on the sidecar file
//!   `accounts/.<id>.lock`); every change is a read-modify-write inside that
//!   lock, so a `disable` racing an upsert never loses either. Upserts (which
//!   look an account up by email) are also serialised store-wide through
//!   `accounts/.lock`, so two processes adding the same email cannot create
//!   two accounts.
//! - **No token ever reaches an error message, a log line or `Debug` output.**
//!   Parse errors are reported without the offending values.
//!
//! Everything here is synchronous std I/O; async callers run it on tokio's
//! blocking pool (`tokio::task::spawn_blocking`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest `disabled_reason` / `proxy_disabled_reason` kept in a file, in
/// bytes (UTF-8). Longer reasons are cut on a character boundary and end with
/// `…`; see [`trim_reason`].
pub const REASON_MAX_BYTES: usize = 512;

/// Marker appended to a reason that [`trim_reason`] had to shorten.
const TRIM_MARKER: &str = "…";

/// Name of the folder, inside the data directory, that holds the account files.
pub const ACCOUNTS_DIR_NAME: &str = "accounts";

/// Temporary files older than this, left by a crashed writer, are removed by
/// [`Store::open`].
const STALE_TMP_AGE: Duration = Duration::from_secs(3600);

/// Longest accepted account id, in bytes.
const ID_MAX_BYTES: usize = 200;

/// Shortens `s` to at most [`REASON_MAX_BYTES`] bytes, cutting on a UTF-8
/// character boundary. A shortened reason ends with `…` (inside the limit);
/// a reason that fits is returned unchanged.
pub fn trim_reason(s: &str) -> String {
    if s.len() <= REASON_MAX_BYTES {
        return s.to_string();
    }
    let mut cut = REASON_MAX_BYTES - TRIM_MARKER.len();
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + TRIM_MARKER.len());
    out.push_str(&s[..cut]);
    out.push_str(TRIM_MARKER);
    out
}

/// The current time as unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether `id` can name an account file: not empty, at most 200 bytes, not
/// starting with `.`, and without `/`, `\` or control characters (so that
/// `<accounts>/<id>.json` always stays inside the accounts folder).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_MAX_BYTES
        && !id.starts_with('.')
        && !id.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// A fresh account id: a v4 UUID in its simple (32 hex digits) form.
pub fn new_account_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The form of an email used for comparisons: trimmed and lower-cased.
/// Emails are stored as given; only comparisons ignore case.
fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

// ---------------------------------------------------------------------------
// File format
// ---------------------------------------------------------------------------

fn default_token_type() -> String {
    "Bearer".to_string()
}

/// Deserialises `null` as the type's default (for maps and lists).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The OAuth tokens of an account (the `token` object of an account file).
///
/// `Debug` is written by hand and never shows a token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenData {
    /// The current access token; empty when none was issued yet (the host
    /// refreshes it before first use).
    #[serde(default)]
    pub access_token: String,
    /// The refresh token: what makes this an account of the pool.
    pub refresh_token: String,
    /// When `access_token` expires, unix seconds (0 = unknown: refresh first).
    #[serde(default)]
    pub expiry_timestamp: i64,
    /// Token type, normally `Bearer`.
    #[serde(default = "default_token_type")]
    pub token_type: String,
    /// The Code Assist project of the account; absent until discovered
    /// (`loadCodeAssist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Name of the OAuth client (a key of `[oauth.clients]`) that issued the
    /// refresh token; absent = the default `[oauth]` client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client: Option<String>,
    /// Fields of `token` grantpool does not know (e.g. Antigravity-Manager's
    /// `expires_in`, `session_id`), kept verbatim on rewrite. May hold
    /// secrets: never logged, `Debug` shows only the keys.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TokenData {
    /// Tokens with `token_type` `Bearer` and no project, client or extra field.
    pub fn new(
        access_token: impl Into<String>,
        refresh_token: impl Into<String>,
        expiry_timestamp: i64,
    ) -> TokenData {
        TokenData {
            access_token: access_token.into(),
            refresh_token: refresh_token.into(),
            expiry_timestamp,
            token_type: default_token_type(),
            project_id: None,
            oauth_client: None,
            extra: Map::new(),
        }
    }
}

/// Shows whether a secret is set, never its value.
fn redacted(s: &str) -> &'static str {
    if s.is_empty() {
        "<empty>"
    } else {
        "<redacted>"
    }
}

impl fmt::Debug for TokenData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenData")
            .field("access_token", &redacted(&self.access_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("expiry_timestamp", &self.expiry_timestamp)
            .field("token_type", &self.token_type)
            .field("project_id", &self.project_id)
            .field("oauth_client", &self.oauth_client)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A cooldown kept in the account file so it survives restarts
/// (JSON: `{"scope": "account" | <model>, "until": <unix ms>, "reason": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedCooldown {
    /// `"account"` for the whole account, else the model name it applies to.
    pub scope: String,
    /// End of the cooldown, unix **milliseconds** (JSON key `until`;
    /// `until_ms` is accepted too).
    #[serde(rename = "until", alias = "until_ms")]
    pub until_ms: i64,
    /// Why the account cools down (free text, e.g. `429 quota exhausted`).
    #[serde(default)]
    pub reason: String,
}

impl PersistedCooldown {
    /// The scope value that means "the whole account".
    pub const ACCOUNT_SCOPE: &'static str = "account";
}

/// The last known quota of one model for an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelQuota {
    /// Remaining share of the quota, 0.0 (exhausted) ..= 1.0 (full).
    pub remaining_fraction: f64,
    /// When the quota resets, unix seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<i64>,
}

/// One account file, as read from and written to disk.
///
/// Serialises to the format of SPEC "Accounts on disk" plus grantpool's own
/// optional fields (`labels`, `cooldowns`, `quota`). Unknown fields are kept
/// in [`AccountFile::extra`] (top level) and [`TokenData::extra`] (token), and
/// entries of a `quota` object that are not grantpool's per-model shape in
/// [`AccountFile::quota_foreign`]. `Debug` never shows a token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAccount", into = "RawAccount")]
pub struct AccountFile {
    /// The account id; always the file's name without `.json`.
    pub id: String,
    /// The Google account's email, stored as given (compared case-insensitively).
    pub email: String,
    /// The OAuth tokens.
    pub token: TokenData,
    /// The account is dead (typically `invalid_grant`): the pool skips it.
    pub disabled: bool,
    /// When `disabled` was set, unix seconds.
    pub disabled_at: Option<i64>,
    /// Why `disabled` was set (at most [`REASON_MAX_BYTES`] bytes).
    pub disabled_reason: Option<String>,
    /// The account is kept from the proxy only (by hand, quota protection, a
    /// 403 verdict…); a different meaning from `disabled`.
    pub proxy_disabled: bool,
    /// Why `proxy_disabled` was set (at most [`REASON_MAX_BYTES`] bytes).
    pub proxy_disabled_reason: Option<String>,
    /// When `proxy_disabled` was set, unix seconds.
    pub proxy_disabled_at: Option<i64>,
    /// When the account was first added, unix seconds (0 if the file had none).
    pub created_at: i64,
    /// When the account last served a request, unix seconds.
    pub last_used: Option<i64>,
    /// Free labels used by selection strategies (e.g. `tier = "pro"`).
    pub labels: BTreeMap<String, String>,
    /// Cooldowns that must survive a restart.
    pub cooldowns: Vec<PersistedCooldown>,
    /// Last known quota per model name.
    pub quota: BTreeMap<String, ModelQuota>,
    /// Entries of the file's `quota` object that are not grantpool's
    /// per-model shape (e.g. Antigravity-Manager's `models`, `last_updated`,
    /// `is_forbidden`); written back verbatim inside `quota`.
    pub quota_foreign: Map<String, Value>,
    /// Top-level fields grantpool does not know, kept verbatim on rewrite.
    pub extra: Map<String, Value>,
}

impl AccountFile {
    /// A new, enabled account created at `now` (unix seconds), with no
    /// labels, cooldowns, quota or extra fields.
    pub fn new(
        id: impl Into<String>,
        email: impl Into<String>,
        token: TokenData,
        now: i64,
    ) -> Self {
        AccountFile {
            id: id.into(),
            email: email.into(),
            token,
            disabled: false,
            disabled_at: None,
            disabled_reason: None,
            proxy_disabled: false,
            proxy_disabled_reason: None,
            proxy_disabled_at: None,
            created_at: now,
            last_used: None,
            labels: BTreeMap::new(),
            cooldowns: Vec::new(),
            quota: BTreeMap::new(),
            quota_foreign: Map::new(),
            extra: Map::new(),
        }
    }

    /// Whether this account's email equals `email`, ignoring case and
    /// surrounding whitespace.
    pub fn email_matches(&self, email: &str) -> bool {
        email_key(&self.email) == email_key(email)
    }

    /// Marks the account dead: `disabled`, `disabled_at = now`,
    /// `disabled_reason` = `reason` trimmed to [`REASON_MAX_BYTES`].
    pub fn disable(&mut self, reason: &str, now: i64) {
        self.disabled = true;
        self.disabled_at = Some(now);
        self.disabled_reason = Some(trim_reason(reason));
    }

    /// Clears `disabled`, `disabled_at` and `disabled_reason`.
    pub fn clear_disabled(&mut self) {
        self.disabled = false;
        self.disabled_at = None;
        self.disabled_reason = None;
    }

    /// Keeps the account from the proxy: `proxy_disabled`,
    /// `proxy_disabled_at = now`, `proxy_disabled_reason` = `reason` trimmed.
    pub fn proxy_disable(&mut self, reason: &str, now: i64) {
        self.proxy_disabled = true;
        self.proxy_disabled_at = Some(now);
        self.proxy_disabled_reason = Some(trim_reason(reason));
    }

    /// Clears `proxy_disabled`, `proxy_disabled_at` and `proxy_disabled_reason`.
    pub fn clear_proxy_disabled(&mut self) {
        self.proxy_disabled = false;
        self.proxy_disabled_at = None;
        self.proxy_disabled_reason = None;
    }

    /// Applies the invariants every written file keeps: reasons trimmed to
    /// [`REASON_MAX_BYTES`]; no quota entry with a non-finite fraction (JSON
    /// cannot hold NaN or infinity).
    fn normalize(&mut self) {
        self.quota.retain(|_, q| q.remaining_fraction.is_finite());
        if let Some(r) = &mut self.disabled_reason {
            if r.len() > REASON_MAX_BYTES {
                *r = trim_reason(r);
            }
        }
        if let Some(r) = &mut self.proxy_disabled_reason {
            if r.len() > REASON_MAX_BYTES {
                *r = trim_reason(r);
            }
        }
    }
}

impl fmt::Debug for AccountFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountFile")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("token", &self.token)
            .field("disabled", &self.disabled)
            .field("disabled_at", &self.disabled_at)
            .field("disabled_reason", &self.disabled_reason)
            .field("proxy_disabled", &self.proxy_disabled)
            .field("proxy_disabled_reason", &self.proxy_disabled_reason)
            .field("proxy_disabled_at", &self.proxy_disabled_at)
            .field("created_at", &self.created_at)
            .field("last_used", &self.last_used)
            .field("labels", &self.labels)
            .field("cooldowns", &self.cooldowns)
            .field("quota", &self.quota)
            .field(
                "quota_foreign_keys",
                &self.quota_foreign.keys().collect::<Vec<_>>(),
            )
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The on-disk shape of an account file; [`AccountFile`] converts through it
/// so that the `quota` object can hold both grantpool's and foreign entries.
#[derive(Serialize, Deserialize)]
struct RawAccount {
    #[serde(default)]
    id: String,
    email: String,
    token: TokenData,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    disabled_at: Option<i64>,
    #[serde(default)]
    disabled_reason: Option<String>,
    #[serde(default)]
    proxy_disabled: bool,
    #[serde(default)]
    proxy_disabled_reason: Option<String>,
    #[serde(default)]
    proxy_disabled_at: Option<i64>,
    #[serde(default)]
    created_at: i64,
    // Antigravity-Manager reads `last_used` as a plain integer: never write null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<i64>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    cooldowns: Vec<PersistedCooldown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quota: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl TryFrom<RawAccount> for AccountFile {
    type Error = String;

    fn try_from(raw: RawAccount) -> Result<Self, String> {
        let mut quota = BTreeMap::new();
        let mut quota_foreign = Map::new();
        match raw.quota {
            None => {}
            Some(Value::Object(entries)) => {
                for (key, value) in entries {
                    let ours = value.is_object() && value.get("remaining_fraction").is_some();
                    match ours.then(|| serde_json::from_value::<ModelQuota>(value.clone())) {
                        Some(Ok(q)) => {
                            quota.insert(key, q);
                        }
                        _ => {
                            quota_foreign.insert(key, value);
                        }
                    }
                }
            }
            Some(_) => return Err("field `quota`: expected an object or null".to_string()),
        }
        Ok(AccountFile {
            id: raw.id,
            email: raw.email,
            token: raw.token,
            disabled: raw.disabled,
            disabled_at: raw.disabled_at,
            disabled_reason: raw.disabled_reason,
            proxy_disabled: raw.proxy_disabled,
            proxy_disabled_reason: raw.proxy_disabled_reason,
            proxy_disabled_at: raw.proxy_disabled_at,
            created_at: raw.created_at,
            last_used: raw.last_used,
            labels: raw.labels,
            cooldowns: raw.cooldowns,
            quota,
            quota_foreign,
            extra: raw.extra,
        })
    }
}

impl From<AccountFile> for RawAccount {
    fn from(a: AccountFile) -> RawAccount {
        let quota = if a.quota.is_empty() && a.quota_foreign.is_empty() {
            None
        } else {
            let mut obj = a.quota_foreign;
            for (model, q) in a.quota {
                let v = serde_json::to_value(q).unwrap_or(Value::Null);
                obj.insert(model, v);
            }
            Some(Value::Object(obj))
        };
        RawAccount {
            id: a.id,
            email: a.email,
            token: a.token,
            disabled: a.disabled,
            disabled_at: a.disabled_at,
            disabled_reason: a.disabled_reason,
            proxy_disabled: a.proxy_disabled,
            proxy_disabled_reason: a.proxy_disabled_reason,
            proxy_disabled_at: a.proxy_disabled_at,
            created_at: a.created_at,
            last_used: a.last_used,
            labels: a.labels,
            cooldowns: a.cooldowns,
            quota,
            extra: a.extra,
        }
    }
}

/// Replaces every double-quoted span of a parse-error message with `"…"`, so
/// that a value from the file (possibly a token) never reaches a log line or
/// an error. Field names (in backticks), line and column stay.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"…\"");
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => {}
            }
        }
    }
    out
}

/// Parses an account file's bytes. The error is a cause safe to show (no
/// values from the file).
fn parse_account(bytes: &[u8]) -> Result<AccountFile, String> {
    serde_json::from_slice::<AccountFile>(bytes).map_err(|e| redact_quoted(&e.to_string()))
}

/// The `email` of a file that does not parse as an account, when it is at
/// least a JSON object with a string `email`.
fn peek_email(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(v.get("email")?.as_str()?.to_string())
}

fn encode(account: &AccountFile) -> Vec<u8> {
    // Serialising plain data into memory cannot fail.
    let mut bytes = serde_json::to_vec_pretty(account).expect("account serialises");
    bytes.push(b'\n');
    bytes
}

// ---------------------------------------------------------------------------
// Upsert rules (pure)
// ---------------------------------------------------------------------------

/// An account to add or update by email ([`Store::upsert`]).
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The Google account's email; matched case-insensitively.
    pub email: String,
    /// The tokens just obtained. An empty `access_token` means "none given".
    pub token: TokenData,
}

/// What [`Store::upsert`] (or [`upsert_decision`]) did.
#[derive(Debug, Clone)]
pub struct UpsertOutcome {
    /// The account as it is now on disk.
    pub account: AccountFile,
    /// A new account was created (no stored account had this email).
    pub created: bool,
    /// The stored account was `disabled` and got new tokens, so `disabled`,
    /// `disabled_reason` and `disabled_at` were cleared.
    pub recovered: bool,
    /// The file changed (false when the upsert was a no-op, e.g. the same
    /// tokens again; the file is then not rewritten).
    pub changed: bool,
}

/// Whether `new` carries different tokens than `old`: a different
/// `refresh_token`, or a non-empty `access_token` that differs.
fn tokens_differ(old: &TokenData, new: &TokenData) -> bool {
    old.refresh_token != new.refresh_token
        || (!new.access_token.is_empty() && old.access_token != new.access_token)
}

/// The stored token replaced by `new`: `project_id` kept when `new` has none;
/// `oauth_client` kept when `new` has none and the refresh token is the same;
/// access token and expiry kept when `new` has no access token and the
/// refresh token is the same; unknown fields merged (new ones win).
fn merge_token(old: &TokenData, new: &TokenData) -> TokenData {
    let same_grant = old.refresh_token == new.refresh_token;
    let mut t = new.clone();
    if t.project_id.as_deref().is_none_or(str::is_empty) {
        t.project_id = old.project_id.clone();
    }
    if t.oauth_client.is_none() && same_grant {
        t.oauth_client = old.oauth_client.clone();
    }
    if t.access_token.is_empty() && same_grant {
        t.access_token = old.access_token.clone();
        t.expiry_timestamp = old.expiry_timestamp;
    }
    let mut extra = old.extra.clone();
    for (k, v) in &new.extra {
        extra.insert(k.clone(), v.clone());
    }
    t.extra = extra;
    t
}

/// The upsert rules, without disk.
///
/// - `existing == None`: a new account with a fresh id ([`new_account_id`]),
///   the email as given (trimmed), `created_at = now`.
/// - Otherwise the stored account with its tokens replaced (see
///   `project_id`/`oauth_client` below); labels, cooldowns, quota, email,
///   `proxy_disabled*` and unknown fields kept. If it was `disabled` and the
///   new `refresh_token` differs, or the new `access_token` is non-empty and
///   differs, `disabled`, `disabled_reason` and `disabled_at` are cleared
///   (`recovered`). The same tokens on a disabled account leave it disabled.
///   `project_id` is kept when the new token has none; `oauth_client` is kept
///   when the new token has none and the refresh token is unchanged; an empty
///   new `access_token` with an unchanged refresh token keeps the stored
///   access token and expiry.
///
/// `changed` tells whether the result differs from `existing`.
pub fn upsert_decision(
    existing: Option<&AccountFile>,
    new: &NewAccount,
    now: i64,
) -> UpsertOutcome {
    let Some(old) = existing else {
        let mut account =
            AccountFile::new(new_account_id(), new.email.trim(), new.token.clone(), now);
        account.normalize();
        return UpsertOutcome {
            account,
            created: true,
            recovered: false,
            changed: true,
        };
    };
    let mut account = old.clone();
    let recovered = old.disabled && tokens_differ(&old.token, &new.token);
    account.token = merge_token(&old.token, &new.token);
    if recovered {
        account.clear_disabled();
    }
    account.normalize();
    let changed = account != *old;
    UpsertOutcome {
        account,
        created: false,
        recovered,
        changed,
    }
}

/// One account as read from an Antigravity-Manager (or another grantpool)
/// account file by [`Store::import_antigravity`].
#[derive(Debug, Clone)]
pub struct ImportedAccount {
    /// The source's id; reused for a new account when valid and free.
    pub id: Option<String>,
    /// The account's email and tokens.
    pub account: NewAccount,
    /// Source `disabled`.
    pub disabled: bool,
    /// Source `disabled_at`.
    pub disabled_at: Option<i64>,
    /// Source `disabled_reason`.
    pub disabled_reason: Option<String>,
    /// Source `proxy_disabled`.
    pub proxy_disabled: bool,
    /// Source `proxy_disabled_reason`.
    pub proxy_disabled_reason: Option<String>,
    /// Source `proxy_disabled_at`.
    pub proxy_disabled_at: Option<i64>,
    /// Source `created_at`.
    pub created_at: Option<i64>,
    /// Source `last_used`.
    pub last_used: Option<i64>,
}

/// The import rules, without disk.
///
/// - New email: a new account with the source's id (if valid; the store
///   replaces it by a fresh one when taken), email, tokens, `disabled*`,
///   `proxy_disabled*`, `created_at` (else `now`) and `last_used`, as they are.
/// - Known email: tokens replaced as in [`upsert_decision`]; then
///   - `disabled*`: an imported disabled account stays disabled (the source's
///     flags, reason and time are taken); if the source is enabled, the stored
///     account is enabled too unless it was disabled and the tokens are the
///     same (then it stays disabled: grantpool's verdict is newer);
///   - `proxy_disabled*`: taken from the source when the source has
///     `proxy_disabled`, else the stored ones are kept;
///   - labels, cooldowns, quota, unknown fields, `created_at` kept.
pub fn import_decision(
    existing: Option<&AccountFile>,
    src: &ImportedAccount,
    now: i64,
) -> UpsertOutcome {
    let Some(old) = existing else {
        let id = src
            .id
            .clone()
            .filter(|id| is_valid_id(id))
            .unwrap_or_else(new_account_id);
        let mut account = AccountFile::new(
            id,
            src.account.email.trim(),
            src.account.token.clone(),
            src.created_at.unwrap_or(now),
        );
        account.disabled = src.disabled;
        account.disabled_at = src.disabled_at;
        account.disabled_reason = src.disabled_reason.clone();
        account.proxy_disabled = src.proxy_disabled;
        account.proxy_disabled_reason = src.proxy_disabled_reason.clone();
        account.proxy_disabled_at = src.proxy_disabled_at;
        account.last_used = src.last_used;
        account.normalize();
        return UpsertOutcome {
            account,
            created: true,
            recovered: false,
            changed: true,
        };
    };
    let mut account = old.clone();
    let tokens_changed = tokens_differ(&old.token, &src.account.token);
    account.token = merge_token(&old.token, &src.account.token);
    let mut recovered = false;
    if src.disabled {
        account.disabled = true;
        account.disabled_at = src.disabled_at.or(old.disabled_at).or(Some(now));
        account.disabled_reason = src
            .disabled_reason
            .clone()
            .or_else(|| old.disabled_reason.clone());
    } else if old.disabled && tokens_changed {
        account.clear_disabled();
        recovered = true;
    }
    if src.proxy_disabled {
        account.proxy_disabled = true;
        account.proxy_disabled_at = src
            .proxy_disabled_at
            .or(old.proxy_disabled_at)
            .or(Some(now));
        account.proxy_disabled_reason = src
            .proxy_disabled_reason
            .clone()
            .or_else(|| old.proxy_disabled_reason.clone());
    }
    if account.last_used.is_none() {
        account.last_used = src.last_used;
    }
    account.normalize();
    let changed = account != *old;
    UpsertOutcome {
        account,
        created: false,
        recovered,
        changed,
    }
}

// ---------------------------------------------------------------------------
// Errors and reports
// ---------------------------------------------------------------------------

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
    /// No account file with this id.
    #[error("no account {id:?} (no file {}); `grantpool accounts list` shows the accounts", path.display())]
    NotFound {
        /// The id looked for.
        id: String,
        /// Where its file would be.
        path: PathBuf,
    },
    /// The id cannot name an account file.
    #[error("{id:?} is not a valid account id: an id is a file name in {} and may not be empty, start with '.', or contain '/', '\\' or control characters", dir.display())]
    InvalidId {
        /// The rejected id.
        id: String,
        /// The accounts folder.
        dir: PathBuf,
    },
    /// The account to save is incomplete.
    #[error("refusing to save account {email:?}: {reason}")]
    InvalidAccount {
        /// The account's email as given.
        email: String,
        /// What is missing or wrong.
        reason: String,
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

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io {
        action,
        path: path.to_path_buf(),
        error,
    }
}

/// A file that was skipped (it could not be read or does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped (no values from the file).
    pub cause: String,
    /// Its `email`, when the file is JSON with a string `email`.
    pub email: Option<String>,
}

/// The result of [`Store::load_all`].
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The accounts that parsed, oldest `created_at` first (then by id).
    pub accounts: Vec<AccountFile>,
    /// The files that were skipped (already logged with `warn`).
    pub skipped: Vec<SkippedFile>,
}

/// One account handled by [`Store::import_antigravity`].
#[derive(Debug, Clone)]
pub struct ImportEntry {
    /// The source file.
    pub source: PathBuf,
    /// The id of the account in this store.
    pub id: String,
    /// The account's email.
    pub email: String,
    /// A new account was created.
    pub created: bool,
    /// A disabled account was enabled because the source had new tokens.
    pub recovered: bool,
    /// The account file changed (false: already imported, nothing to do).
    pub changed: bool,
}

/// The result of [`Store::import_antigravity`].
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The folder the account files were read from.
    pub source_dir: PathBuf,
    /// The accounts imported (created, updated or already up to date).
    pub imported: Vec<ImportEntry>,
    /// Source files (or the folder) that could not be read or imported,
    /// with the cause; each is skipped (and logged with `warn`).
    pub failed: Vec<SkippedFile>,
}

impl ImportReport {
    /// How many accounts were created.
    pub fn created(&self) -> usize {
        self.imported.iter().filter(|e| e.created).count()
    }
    /// How many existing accounts changed.
    pub fn updated(&self) -> usize {
        self.imported
            .iter()
            .filter(|e| !e.created && e.changed)
            .count()
    }
    /// How many accounts were already up to date.
    pub fn unchanged(&self) -> usize {
        self.imported.iter().filter(|e| !e.changed).count()
    }
}

// ---------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------

/// An exclusive lock on a lock file, held until dropped. With `unlink` set the
/// lock file is removed (still locked) before the lock is released.
struct HeldLock {
    path: PathBuf,
    file: Option<File>,
    unlink: bool,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.unlink {
            let _ = fs::remove_file(&self.path);
        }
        // Closing the file releases the lock.
        self.file.take();
    }
}

/// Whether the lock file we hold is still the one at `path` (it may have been
/// unlinked by a `remove` while we waited for it).
#[cfg(unix)]
fn still_linked(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_linked(path: &Path, _file: &File) -> bool {
    path.exists()
}

fn open_private(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Takes the cross-process exclusive lock on `path` (created if missing).
fn lock_file(path: &Path) -> Result<HeldLock, StoreError> {
    loop {
        let file = open_private(path).map_err(|error| StoreError::Lock {
            path: path.to_path_buf(),
            error,
        })?;
        match file.lock() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                tracing::warn!(
                    file = %path.display(),
                    "file locks are not supported here; writes from other processes are not serialised"
                );
                return Ok(HeldLock {
                    path: path.to_path_buf(),
                    file: Some(file),
                    unlink: false,
                });
            }
            Err(error) => {
                return Err(StoreError::Lock {
                    path: path.to_path_buf(),
                    error,
                })
            }
        }
        if still_linked(path, &file) {
            return Ok(HeldLock {
                path: path.to_path_buf(),
                file: Some(file),
                unlink: false,
            });
        }
        // The file we locked was unlinked meanwhile: lock the current one.
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

// ---------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------

/// The account store of one data directory. Cheap to clone; `Send + Sync`.
/// Several `Store`s (in one or several processes) on the same directory are
/// safe: writes are serialised through lock files.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// In-process per-id locks; an entry lives while someone holds or waits for it.
    id_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// In-process half of the store-wide upsert lock.
    upsert_lock: Mutex<()>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("accounts_dir", &self.inner.dir)
            .finish()
    }
}

/// Result of one attempt to apply an upsert to the account an email matched.
enum Attempt {
    Done(Box<UpsertOutcome>),
    /// The matched file disappeared (removed meanwhile): look again.
    Vanished,
}

impl Store {
    /// Opens the store of `data_dir`, creating `data_dir` (mode 0700) and
    /// `data_dir/accounts` (mode 0700; an existing folder open to group or
    /// others is tightened to 0700) when missing. Removes temporary files
    /// older than an hour left by a crashed writer.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let dir = data_dir.join(ACCOUNTS_DIR_NAME);
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(io_err("create directory", &dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(&dir).map_err(io_err("read metadata of", &dir))?;
            if meta.permissions().mode() & 0o077 != 0 {
                set_mode(&dir, 0o700).map_err(io_err("set mode 0700 on", &dir))?;
                tracing::info!(dir = %dir.display(), "accounts folder was open to other users; set to mode 0700");
            }
        }
        let store = Store {
            inner: Arc::new(Inner {
                dir,
                id_locks: Mutex::new(HashMap::new()),
                upsert_lock: Mutex::new(()),
            }),
        };
        store.remove_stale_tmp();
        Ok(store)
    }

    /// The folder holding the account files (`<data_dir>/accounts`).
    pub fn accounts_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where the file of account `id` is: `<accounts_dir>/<id>.json`.
    /// Meaningful only for ids that pass [`is_valid_id`].
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.inner.dir.join(format!("{id}.json"))
    }

    /// The account id of an account file path: `"<dir>/x.json"` → `"x"`.
    /// `None` for anything the store does not load (not `.json`, a dot-file,
    /// a temporary or lock file, an invalid id). For the directory watcher.
    pub fn id_from_path(path: &Path) -> Option<String> {
        let name = path.file_name()?.to_str()?;
        let id = name.strip_suffix(".json")?;
        is_valid_id(id).then(|| id.to_string())
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        self.inner.dir.join(format!(".{id}.lock"))
    }

    fn check_id(&self, id: &str) -> Result<(), StoreError> {
        if is_valid_id(id) {
            Ok(())
        } else {
            Err(StoreError::InvalidId {
                id: id.to_string(),
                dir: self.inner.dir.clone(),
            })
        }
    }

    /// Runs `f` holding the in-process and the cross-process lock of `id`.
    fn with_id_lock<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut HeldLock) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let slot = {
            let mut map = self
                .inner
                .id_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.entry(id.to_string()).or_default().clone()
        };
        let result = {
            let _guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            lock_file(&self.lock_path(id)).and_then(|mut held| f(&mut held))
        };
        let mut map = self
            .inner
            .id_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Only the map and `slot` refer to it: nobody else holds or waits.
        if Arc::strong_count(&slot) == 2 {
            map.remove(id);
        }
        result
    }

    /// Runs `f` holding the store-wide upsert lock (in-process and
    /// `accounts/.lock`). Lock order: upsert lock, then id lock.
    fn with_upsert_lock<R>(
        &self,
        f: impl FnOnce() -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _guard = self
            .inner
            .upsert_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _held = lock_file(&self.inner.dir.join(".lock"))?;
        f()
    }

    /// Reads the file of `id`: `None` when missing, `Corrupt` when it does not
    /// parse. Returns the bytes too, to skip rewriting identical content.
    fn read_account(&self, id: &str) -> Result<Option<(AccountFile, Vec<u8>)>, StoreError> {
        let path = self.path_of(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        match parse_account(&bytes) {
            Ok(mut account) => {
                if account.id != id {
                    if !account.id.is_empty() {
                        tracing::warn!(
                            file = %path.display(),
                            "account file says id {:?}; using its file name's id {:?}",
                            account.id,
                            id
                        );
                    }
                    account.id = id.to_string();
                }
                Ok(Some((account, bytes)))
            }
            Err(cause) => Err(StoreError::Corrupt {
                id: id.to_string(),
                path,
                cause,
            }),
        }
    }

    /// Writes `account` atomically and durably unless its encoding equals
    /// `previous`. Returns whether the file was written. Call with the id lock held.
    fn write_account(
        &self,
        account: &AccountFile,
        previous: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let bytes = encode(account);
        if previous == Some(bytes.as_slice()) {
            return Ok(false);
        }
        let dir = &self.inner.dir;
        let path = self.path_of(&account.id);
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", account.id))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io_err("create a temporary file in", dir))?;
        #[cfg(unix)]
        set_mode(tmp.path(), 0o600).map_err(io_err("set mode 0600 on", tmp.path()))?;
        tmp.write_all(&bytes).map_err(io_err("write", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(io_err("sync", tmp.path()))?;
        tmp.persist(&path)
            .map_err(|e| io_err("replace", &path)(e.error))?;
        sync_dir(dir)?;
        Ok(true)
    }

    /// Reads every account file. Files that cannot be read or do not parse
    /// are skipped, each logged with `warn` (field `file`) and listed in
    /// [`LoadReport::skipped`]; they are never modified. Dot-files, `*.tmp`
    /// and anything not `*.json` are ignored.
    pub fn load_all(&self) -> LoadReport {
        let mut report = LoadReport::default();
        let (files, dir_error) = self.list_files();
        if let Some(skipped) = dir_error {
            report.skipped.push(skipped);
        }
        for (id, path) in files {
            match self.read_account(&id) {
                Ok(Some((account, _))) => report.accounts.push(account),
                Ok(None) => {} // removed since listed
                Err(e) => {
                    let (cause, email) = match &e {
                        StoreError::Corrupt { cause, .. } => (
                            cause.clone(),
                            fs::read(&path).ok().and_then(|b| peek_email(&b)),
                        ),
                        other => (other.to_string(), None),
                    };
                    tracing::warn!(
                        file = %path.display(),
                        cause = %cause,
                        "skipping account file {}: {cause}; it is left untouched: fix it by hand or delete it",
                        path.display()
                    );
                    report.skipped.push(SkippedFile { path, cause, email });
                }
            }
        }
        report
            .accounts
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        report
    }

    /// The account files in the folder, sorted by id, and an entry for the
    /// folder itself when it cannot be listed.
    fn list_files(&self) -> (Vec<(String, PathBuf)>, Option<SkippedFile>) {
        let dir = &self.inner.dir;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                let cause = format!("cannot list the accounts folder: {e}");
                tracing::warn!(file = %dir.display(), cause = %cause, "no accounts loaded from {}: {cause}", dir.display());
                return (
                    Vec::new(),
                    Some(SkippedFile {
                        path: dir.clone(),
                        cause,
                        email: None,
                    }),
                );
            }
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let path = e.path();
                let id = Self::id_from_path(&path)?;
                // Follow symlinks; skip folders.
                fs::metadata(&path).ok().filter(|m| m.is_file())?;
                Some((id, path))
            })
            .collect();
        files.sort();
        (files, None)
    }

    /// The account `id`: `None` when it has no file; `Corrupt` when its file
    /// does not parse.
    pub fn load(&self, id: &str) -> Result<Option<AccountFile>, StoreError> {
        self.check_id(id)?;
        Ok(self.read_account(id)?.map(|(a, _)| a))
    }

    /// The account whose id is `id_or_email`, else the one whose email equals
    /// it ignoring case (the oldest when several do). `Corrupt` when the
    /// matching file does not parse (for an email: a file that is JSON with
    /// that `email` but not a valid account).
    pub fn find(&self, id_or_email: &str) -> Result<Option<AccountFile>, StoreError> {
        let key = id_or_email.trim();
        if is_valid_id(key) {
            if let Some(account) = self.load(key)? {
                return Ok(Some(account));
            }
        }
        self.find_by_email(key)
    }

    /// The oldest parsed account with this email; `Corrupt` if no parsed one
    /// matches but a file that does not parse carries this email.
    fn find_by_email(&self, email: &str) -> Result<Option<AccountFile>, StoreError> {
        let wanted = email_key(email);
        if wanted.is_empty() {
            return Ok(None);
        }
        let (files, _) = self.list_files();
        let mut found: Option<AccountFile> = None;
        let mut corrupt: Option<StoreError> = None;
        let mut matches = 0;
        for (id, path) in files {
            match self.read_account(&id) {
                Ok(Some((account, _))) => {
                    if email_key(&account.email) == wanted {
                        matches += 1;
                        let older = found.as_ref().is_none_or(|f| {
                            (account.created_at, &account.id) < (f.created_at, &f.id)
                        });
                        if older {
                            found = Some(account);
                        }
                    }
                }
                Ok(None) => {}
                Err(e @ StoreError::Corrupt { .. }) => {
                    let peeked = fs::read(&path).ok().and_then(|b| peek_email(&b));
                    if corrupt.is_none() && peeked.is_some_and(|p| email_key(&p) == wanted) {
                        corrupt = Some(e);
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), cause = %e, "could not read account file: {e}");
                }
            }
        }
        if matches > 1 {
            if let Some(f) = &found {
                tracing::warn!(
                    email = %email,
                    "{matches} account files have email {email}; using the oldest, {}",
                    f.id
                );
            }
        }
        match (found, corrupt) {
            (Some(a), _) => Ok(Some(a)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Locked read-modify-write of account `id`: reads the file, applies `f`,
    /// writes the result atomically (not at all when nothing changed), and
    /// returns it. The id cannot be changed by `f`; reasons are trimmed to
    /// [`REASON_MAX_BYTES`]. `NotFound` when there is no file, `Corrupt` (file
    /// untouched) when it does not parse.
    pub fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut AccountFile),
    ) -> Result<AccountFile, StoreError> {
        self.check_id(id)?;
        self.with_id_lock(id, |held| {
            let Some((mut account, bytes)) = self.read_account(id)? else {
                held.unlink = true;
                return Err(StoreError::NotFound {
                    id: id.to_string(),
                    path: self.path_of(id),
                });
            };
            f(&mut account);
            account.id = id.to_string();
            account.normalize();
            self.write_account(&account, Some(&bytes))?;
            Ok(account)
        })
    }

    /// Adds or updates an account by email (see [`upsert_decision`] for the
    /// rules). Refused (`Corrupt`) when the account with this email has a file
    /// that does not parse; `InvalidAccount` when the email or the refresh
    /// token is empty.
    pub fn upsert(&self, new: NewAccount) -> Result<UpsertOutcome, StoreError> {
        validate_new(&new)?;
        self.upsert_with(&new.email, &|existing| {
            upsert_decision(existing, &new, unix_now())
        })
    }

    /// The common path of [`Store::upsert`] and the import: under the upsert
    /// lock, find the account by email and apply `decide` to it inside its id
    /// lock, or create the account `decide(None)` returns.
    fn upsert_with(
        &self,
        email: &str,
        decide: &dyn Fn(Option<&AccountFile>) -> UpsertOutcome,
    ) -> Result<UpsertOutcome, StoreError> {
        self.with_upsert_lock(|| loop {
            let Some(found) = self.find_by_email(email)? else {
                return self.create(decide(None));
            };
            let attempt = self.with_id_lock(&found.id, |_| {
                let Some((current, bytes)) = self.read_account(&found.id)? else {
                    return Ok(Attempt::Vanished);
                };
                let mut outcome = decide(Some(&current));
                outcome.account.id = current.id.clone();
                outcome.changed = self.write_account(&outcome.account, Some(&bytes))?;
                Ok(Attempt::Done(Box::new(outcome)))
            })?;
            match attempt {
                Attempt::Done(outcome) => return Ok(*outcome),
                Attempt::Vanished => continue,
            }
        })
    }

    /// Writes a new account; its id is replaced by a fresh one when a file
    /// (even one that does not parse) already has it or it is invalid.
    fn create(&self, mut outcome: UpsertOutcome) -> Result<UpsertOutcome, StoreError> {
        if !is_valid_id(&outcome.account.id) {
            outcome.account.id = new_account_id();
        }
        loop {
            let id = outcome.account.id.clone();
            let written = self.with_id_lock(&id, |_| {
                if fs::symlink_metadata(self.path_of(&id)).is_ok() {
                    return Ok(false);
                }
                self.write_account(&outcome.account, None)?;
                Ok(true)
            })?;
            if written {
                outcome.created = true;
                outcome.changed = true;
                return Ok(outcome);
            }
            outcome.account.id = new_account_id();
        }
    }

    /// Deletes the file of account `id` (even one that does not parse).
    /// Returns whether there was one.
    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.check_id(id)?;
        self.with_id_lock(id, |held| {
            held.unlink = true;
            let path = self.path_of(id);
            match fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(&self.inner.dir)?;
                    Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_err("delete", &path)(e)),
            }
        })
    }

    /// Imports the accounts of an Antigravity-Manager data directory: the
    /// `*.json` files of `dir/accounts/`, or of `dir` itself when it has no
    /// `accounts` folder. Each is upserted by email with the rules of
    /// [`import_decision`] (an imported disabled account stays disabled).
    /// A file that cannot be read or is not an account is listed in
    /// [`ImportReport::failed`] (and logged) and skipped. Running it twice
    /// changes nothing the second time.
    pub fn import_antigravity(&self, dir: &Path) -> ImportReport {
        let accounts = dir.join("accounts");
        let source_dir = if accounts.is_dir() {
            accounts
        } else {
            dir.to_path_buf()
        };
        let mut report = ImportReport {
            source_dir: source_dir.clone(),
            ..Default::default()
        };
        let fail = |report: &mut ImportReport, path: PathBuf, cause: String| {
            tracing::warn!(file = %path.display(), cause = %cause, "not imported: {}: {cause}", path.display());
            report.failed.push(SkippedFile {
                path,
                cause,
                email: None,
            });
        };
        let entries = match fs::read_dir(&source_dir) {
            Ok(e) => e,
            Err(e) => {
                fail(
                    &mut report,
                    source_dir,
                    format!("cannot list the folder: {e}"),
                );
                return report;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".json") && !name.starts_with('.') && p.is_file()
            })
            .collect();
        files.sort();
        for path in files {
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    fail(&mut report, path, format!("cannot read: {e}"));
                    continue;
                }
            };
            let value: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    fail(
                        &mut report,
                        path,
                        format!("not JSON: {}", redact_quoted(&e.to_string())),
                    );
                    continue;
                }
            };
            // Antigravity-Manager's index (`accounts.json`) sits beside account files.
            if value.get("token").is_none() && value.get("accounts").is_some_and(Value::is_array) {
                continue;
            }
            let src = match imported_from_value(&value) {
                Ok(s) => s,
                Err(cause) => {
                    fail(&mut report, path, cause);
                    continue;
                }
            };
            let now = unix_now();
            match self.upsert_with(&src.account.email, &|existing| {
                import_decision(existing, &src, now)
            }) {
                Ok(outcome) => report.imported.push(ImportEntry {
                    source: path,
                    id: outcome.account.id.clone(),
                    email: outcome.account.email.clone(),
                    created: outcome.created,
                    recovered: outcome.recovered,
                    changed: outcome.changed,
                }),
                Err(e) => fail(&mut report, path, e.to_string()),
            }
        }
        report
    }

    /// Removes `.*.tmp` files older than [`STALE_TMP_AGE`] (left by a crash).
    fn remove_stale_tmp(&self) {
        let Ok(entries) = fs::read_dir(&self.inner.dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with('.') && name.ends_with(".tmp")) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TMP_AGE);
            if old && fs::remove_file(&path).is_ok() {
                tracing::info!(file = %path.display(), "removed a temporary file left by an interrupted write");
            }
        }
    }
}

fn validate_new(new: &NewAccount) -> Result<(), StoreError> {
    let invalid = |reason: &str| StoreError::InvalidAccount {
        email: new.email.clone(),
        reason: reason.to_string(),
    };
    if new.email.trim().is_empty() {
        return Err(invalid("the email is empty"));
    }
    if new.email.chars().any(char::is_control) {
        return Err(invalid("the email contains control characters"));
    }
    if new.token.refresh_token.trim().is_empty() {
        return Err(invalid("the refresh token is empty"));
    }
    Ok(())
}

/// Reads one account from the JSON of an Antigravity-Manager (or grantpool)
/// account file. The error names the field, never its value.
fn imported_from_value(v: &Value) -> Result<ImportedAccount, String> {
    fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
        obj.get(name).filter(|v| !v.is_null())
    }
    fn string(obj: &Value, name: &str, ctx: &str) -> Result<Option<String>, String> {
        match field(obj, name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("field `{ctx}{name}`: expected a string")),
        }
    }
    fn int(obj: &Value, name: &str, ctx: &str) -> Result<Option<i64>, String> {
        match field(obj, name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("field `{ctx}{name}`: expected a number")),
        }
    }
    fn boolean(obj: &Value, name: &str) -> Result<bool, String> {
        match field(obj, name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("field `{name}`: expected true or false")),
        }
    }
    if !v.is_object() {
        return Err("not an account file: expected a JSON object".to_string());
    }
    let email = string(v, "email", "")?
        .filter(|e| !e.trim().is_empty())
        .ok_or("not an account file: no `email`")?;
    let token = field(v, "token")
        .filter(|t| t.is_object())
        .ok_or("not an account file: no `token` object")?;
    let refresh_token = string(token, "refresh_token", "token.")?
        .filter(|t| !t.trim().is_empty())
        .ok_or("not an account file: no `token.refresh_token`")?;
    let mut t = TokenData::new(
        string(token, "access_token", "token.")?.unwrap_or_default(),
        refresh_token,
        int(token, "expiry_timestamp", "token.")?.unwrap_or(0),
    );
    if let Some(tt) = string(token, "token_type", "token.")?.filter(|s| !s.is_empty()) {
        t.token_type = tt;
    }
    t.project_id = string(token, "project_id", "token.")?.filter(|s| !s.is_empty());
    t.oauth_client = string(token, "oauth_client", "token.")?.filter(|s| !s.is_empty());
    Ok(ImportedAccount {
        id: string(v, "id", "")?,
        account: NewAccount { email, token: t },
        disabled: boolean(v, "disabled")?,
        disabled_at: int(v, "disabled_at", "")?,
        disabled_reason: string(v, "disabled_reason", "")?,
        proxy_disabled: boolean(v, "proxy_disabled")?,
        proxy_disabled_reason: string(v, "proxy_disabled_reason", "")?,
        proxy_disabled_at: int(v, "proxy_disabled_at", "")?,
        created_at: int(v, "created_at", "")?,
        last_used: int(v, "last_used", "")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::thread;

    fn tokens(access: &str, refresh: &str) -> TokenData {
        TokenData::new(access, refresh, 1_700_003_600)
    }

    fn new_account(email: &str, access: &str, refresh: &str) -> NewAccount {
        NewAccount {
            email: email.to_string(),
            token: tokens(access, refresh),
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        (tmp, store)
    }

    fn raw_json(store: &Store, id: &str) -> Value {
        serde_json::from_slice(&fs::read(store.path_of(id)).unwrap()).unwrap()
    }

    /// Runs `f` with a subscriber that records every log line; returns them.
    fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        let r = tracing::subscriber::with_default(subscriber, f);
        let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        (r, logs)
    }

    const AG_FILE: &str = r#"{
  "id": "5f0c7a2e-1111-2222-3333-444455556666",
  "email": "Ag.User@Example.com",
  "name": "Ag User",
  "token": {
    "access_token": "ya29.AG-ACCESS",
    "refresh_token": "1//AG-REFRESH",
    "expires_in": 3599,
    "expiry_timestamp": 1700003600,
    "token_type": "Bearer",
    "email": "Ag.User@Example.com",
    "project_id": "proj-ag",
    "session_id": "sess-1",
    "is_gcp_tos": true
  },
  "quota": {
    "models": [{"name": "gemini-2.5-pro", "percentage": 80, "reset_time": "2025-01-01T00:00:00Z"}],
    "last_updated": 1700000000,
    "is_forbidden": false
  },
  "disabled": false,
  "proxy_disabled": true,
  "proxy_disabled_reason": "by hand",
  "proxy_disabled_at": 1699000000,
  "created_at": 1690000000,
  "last_used": 1699999000,
  "nested_unknown": {"a": [1, 2, {"b": null}]}
}"#;

    #[test]
    fn antigravity_file_round_trips_with_unknown_fields_kept() {
        let (_tmp, store) = open();
        let id = "5f0c7a2e-1111-2222-3333-444455556666";
        fs::write(store.path_of(id), AG_FILE).unwrap();

        let a = store.load(id).unwrap().expect("parses");
        assert_eq!(a.email, "Ag.User@Example.com");
        assert_eq!(a.token.project_id.as_deref(), Some("proj-ag"));
        assert_eq!(a.token.oauth_client, None);
        assert!(a.proxy_disabled);
        assert!(a.quota.is_empty());
        assert_eq!(a.quota_foreign.len(), 3);
        assert_eq!(a.last_used, Some(1_699_999_000));

        let updated = store
            .update(id, |a| {
                a.labels.insert("tier".into(), "pro".into());
                a.quota.insert(
                    "gemini-2.5-flash".into(),
                    ModelQuota {
                        remaining_fraction: 0.5,
                        reset_at: Some(42),
                    },
                );
                a.cooldowns.push(PersistedCooldown {
                    scope: "account".into(),
                    until_ms: 1_700_000_000_123,
                    reason: "429".into(),
                });
            })
            .unwrap();
        assert_eq!(updated.labels["tier"], "pro");

        let v = raw_json(&store, id);
        let original: Value = serde_json::from_str(AG_FILE).unwrap();
        // Every original field is still there with the same value.
        for (k, val) in original.as_object().unwrap() {
            if k == "quota" {
                continue;
            }
            assert_eq!(&v[k], val, "top-level field {k}");
        }
        for (k, val) in original["token"].as_object().unwrap() {
            assert_eq!(&v["token"][k], val, "token field {k}");
        }
        for (k, val) in original["quota"].as_object().unwrap() {
            assert_eq!(&v["quota"][k], val, "quota field {k}");
        }
        assert_eq!(v["quota"]["gemini-2.5-flash"]["remaining_fraction"], 0.5);
        assert_eq!(v["labels"]["tier"], "pro");
        assert_eq!(v["cooldowns"][0]["until"], 1_700_000_000_123i64);
        assert_eq!(v["cooldowns"][0]["scope"], "account");

        // And it reads back to the same value.
        let again = store.load(id).unwrap().unwrap();
        assert_eq!(again, updated);
        let reencoded: AccountFile = serde_json::from_slice(&encode(&again)).unwrap();
        assert_eq!(reencoded, again);
    }

    #[test]
    fn minimal_file_gets_defaults_and_spec_example_parses() {
        let (_tmp, store) = open();
        fs::write(
            store.path_of("min"),
            r#"{"email": "m@example.com", "token": {"refresh_token": "r"}, "quota": null, "labels": null}"#,
        )
        .unwrap();
        let a = store.load("min").unwrap().unwrap();
        assert_eq!(a.id, "min");
        assert_eq!(a.token.token_type, "Bearer");
        assert_eq!(a.token.access_token, "");
        assert!(!a.disabled && !a.proxy_disabled);
        fs::write(
            store.path_of("spec"),
            r#"{
  "id": "spec", "email": "a@example.com",
  "token": {"access_token": "x", "refresh_token": "y",
            "expiry_timestamp": 1700003600, "token_type": "Bearer",
            "project_id": "optional-project"},
  "disabled": true, "disabled_at": 1700000000,
  "disabled_reason": "invalid_grant: x",
  "proxy_disabled": false, "proxy_disabled_reason": null, "proxy_disabled_at": null,
  "created_at": 1690000000, "last_used": 1699999000
}"#,
        )
        .unwrap();
        let s = store.load("spec").unwrap().unwrap();
        assert!(s.disabled);
        assert_eq!(s.disabled_reason.as_deref(), Some("invalid_grant: x"));
        let report = store.load_all();
        assert_eq!(report.accounts.len(), 2);
        assert!(report.skipped.is_empty());
        // Oldest first.
        assert_eq!(report.accounts[0].id, "min");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_0600_and_folder_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let store = Store::open(&data).unwrap();
        let out = store
            .upsert(new_account("p@example.com", "a", "r"))
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store.path_of(&out.account.id)), 0o600);
        assert_eq!(mode(store.accounts_dir()), 0o700);
        assert_eq!(mode(&data), 0o700);
        store
            .update(&out.account.id, |a| a.last_used = Some(1))
            .unwrap();
        assert_eq!(mode(&store.path_of(&out.account.id)), 0o600);

        // A pre-existing, too-open accounts folder is tightened.
        set_mode(store.accounts_dir(), 0o755).unwrap();
        let _ = Store::open(&data).unwrap();
        assert_eq!(mode(store.accounts_dir()), 0o700);
    }

    #[test]
    fn corrupt_file_is_skipped_reported_untouched_and_refused() {
        let (_tmp, store) = open();
        let good1 = store
            .upsert(new_account("g1@example.com", "a1", "r1"))
            .unwrap()
            .account;
        let good2 = store
            .upsert(new_account("g2@example.com", "a2", "r2"))
            .unwrap()
            .account;
        let truncated =
            br#"{"id": "trunc", "email": "t@example.com", "token": {"refresh_tok"#.to_vec();
        // Valid JSON, wrong type; the bad value looks like a token and must not leak.
        let wrong_type =
            br#"{"email": "w@example.com", "token": {"refresh_token": "r", "expiry_timestamp": "ya29.SECRET-VALUE"}}"#
                .to_vec();
        fs::write(store.path_of("trunc"), &truncated).unwrap();
        fs::write(store.path_of("wrong"), &wrong_type).unwrap();
        // Ignored entirely: dot-files, temporary files, other extensions, folders.
        fs::write(store.accounts_dir().join(".hidden.json"), b"garbage").unwrap();
        fs::write(store.accounts_dir().join(".x.123.tmp"), b"garbage").unwrap();
        fs::write(store.accounts_dir().join("notes.txt"), b"garbage").unwrap();
        fs::create_dir(store.accounts_dir().join("dir.json")).unwrap();

        let (report, logs) = capture_logs(|| store.load_all());
        let ids: Vec<_> = report.accounts.iter().map(|a| a.id.clone()).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&good1.id) && ids.contains(&good2.id));
        assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
        let wrong = report
            .skipped
            .iter()
            .find(|s| s.path == store.path_of("wrong"))
            .unwrap();
        assert_eq!(wrong.email.as_deref(), Some("w@example.com"));
        assert!(wrong.cause.contains("line"), "{}", wrong.cause);
        assert!(report
            .skipped
            .iter()
            .any(|s| s.path == store.path_of("trunc")));
        // The warning names the file in a `file` field and gives the cause.
        assert!(logs.contains("WARN"), "{logs}");
        assert!(
            logs.contains(&format!("file={}", store.path_of("trunc").display())),
            "{logs}"
        );
        assert!(
            logs.contains(&format!("file={}", store.path_of("wrong").display())),
            "{logs}"
        );
        assert!(logs.contains("EOF while parsing"), "{logs}");
        assert!(!logs.contains("SECRET"), "{logs}");
        assert!(!format!("{:?}", report.skipped).contains("SECRET"));

        // update refused, naming the file; bytes unchanged.
        let err = store.update("trunc", |a| a.disabled = true).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&store.path_of("trunc").display().to_string()),
            "{err}"
        );
        let err = store.update("wrong", |a| a.disabled = true).unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
        // An upsert of the email of a file that does not parse is refused too.
        let err = store
            .upsert(new_account("W@example.com", "a", "r"))
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { ref path, .. } if *path == store.path_of("wrong")),
            "{err}"
        );
        // find / load report it.
        assert!(matches!(
            store.load("trunc"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            store.find("w@example.com"),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(fs::read(store.path_of("trunc")).unwrap(), truncated);
        assert_eq!(fs::read(store.path_of("wrong")).unwrap(), wrong_type);
        // Other accounts still work.
        store.update(&good1.id, |a| a.last_used = Some(5)).unwrap();
        // remove deletes even a corrupt file.
        assert!(store.remove("trunc").unwrap());
    }

    #[test]
    fn reasons_are_trimmed_on_a_char_boundary() {
        assert_eq!(trim_reason("short"), "short");
        let exact = "a".repeat(REASON_MAX_BYTES);
        assert_eq!(trim_reason(&exact), exact);
        let long = "a".repeat(REASON_MAX_BYTES + 1);
        let t = trim_reason(&long);
        assert_eq!(t.len(), REASON_MAX_BYTES);
        assert!(t.ends_with('…'));
        // Every alignment of 2-, 3- and 4-byte characters around the cut.
        for ch in ["é", "€", "😀"] {
            for pad in 0..4 {
                let s = format!("{}{}", "a".repeat(pad), ch.repeat(400));
                let t = trim_reason(&s);
                assert!(t.len() <= REASON_MAX_BYTES, "{ch} {pad}: {}", t.len());
                assert!(t.len() > REASON_MAX_BYTES - TRIM_MARKER.len() - 4);
                assert!(t.ends_with('…'));
                assert!(s.starts_with(t.trim_end_matches('…')));
            }
        }
        // Writes trim whatever a caller put in.
        let (_tmp, store) = open();
        let id = store
            .upsert(new_account("t@example.com", "a", "r"))
            .unwrap()
            .account
            .id;
        let a = store
            .update(&id, |a| {
                a.disabled = true;
                a.disabled_reason = Some("invalid_grant: ".to_string() + &"é".repeat(600));
                a.proxy_disable(&"x".repeat(1000), 7);
            })
            .unwrap();
        assert!(a.disabled_reason.as_ref().unwrap().len() <= REASON_MAX_BYTES);
        let on_disk = store.load(&id).unwrap().unwrap();
        assert!(on_disk.disabled_reason.unwrap().len() <= REASON_MAX_BYTES);
        assert!(on_disk.proxy_disabled_reason.unwrap().len() <= REASON_MAX_BYTES);
    }

    #[test]
    fn upsert_decision_rules() {
        let now = 1_700_000_000;
        let new = new_account("New@Example.com ", "a1", "r1");
        let created = upsert_decision(None, &new, now);
        assert!(created.created && created.changed && !created.recovered);
        assert_eq!(created.account.email, "New@Example.com");
        assert_eq!(created.account.created_at, now);
        assert_eq!(created.account.id.len(), 32);
        assert!(created.account.id.chars().all(|c| c.is_ascii_hexdigit()));

        let mut disabled = created.account.clone();
        disabled.token.project_id = Some("proj".into());
        disabled.token.oauth_client = Some("gemini-cli".into());
        disabled.labels.insert("k".into(), "v".into());
        disabled.cooldowns.push(PersistedCooldown {
            scope: "m".into(),
            until_ms: 1,
            reason: "r".into(),
        });
        disabled.disable("invalid_grant: revoked", now);
        disabled.proxy_disable("by hand", now);

        // Same tokens: stays disabled, nothing changes.
        let same = upsert_decision(
            Some(&disabled),
            &new_account("new@example.com", "a1", "r1"),
            now + 1,
        );
        assert!(!same.recovered && !same.changed && !same.created);
        assert!(same.account.disabled);
        // Same refresh token, no access token given: still the same grant.
        let no_access = upsert_decision(
            Some(&disabled),
            &new_account("new@example.com", "", "r1"),
            now + 1,
        );
        assert!(!no_access.recovered && no_access.account.disabled);
        assert_eq!(no_access.account.token.access_token, "a1");

        for (access, refresh) in [("a1", "r2"), ("a2", "r1"), ("", "r2")] {
            let out = upsert_decision(
                Some(&disabled),
                &new_account("NEW@example.com", access, refresh),
                now + 1,
            );
            assert!(
                out.recovered && out.changed && !out.created,
                "{access} {refresh}"
            );
            let a = &out.account;
            assert!(!a.disabled && a.disabled_at.is_none() && a.disabled_reason.is_none());
            // proxy_disabled untouched, labels/cooldowns/project kept, email as stored.
            assert!(a.proxy_disabled);
            assert_eq!(a.proxy_disabled_reason.as_deref(), Some("by hand"));
            assert_eq!(a.labels["k"], "v");
            assert_eq!(a.cooldowns.len(), 1);
            assert_eq!(a.token.project_id.as_deref(), Some("proj"));
            assert_eq!(a.email, "New@Example.com");
            assert_eq!(a.id, disabled.id);
            assert_eq!(a.token.refresh_token, refresh);
            // The client that issued the refresh token follows the refresh token.
            let client = if refresh == "r1" {
                Some("gemini-cli")
            } else {
                None
            };
            assert_eq!(a.token.oauth_client.as_deref(), client);
        }

        // A new project id replaces the stored one.
        let mut with_project = new_account("new@example.com", "a3", "r1");
        with_project.token.project_id = Some("other".into());
        let out = upsert_decision(Some(&disabled), &with_project, now);
        assert_eq!(out.account.token.project_id.as_deref(), Some("other"));

        // An enabled account with new tokens is not "recovered".
        let enabled = created.account.clone();
        let out = upsert_decision(
            Some(&enabled),
            &new_account("new@example.com", "a9", "r9"),
            now,
        );
        assert!(!out.recovered && out.changed);
    }

    #[test]
    fn upsert_through_the_store() {
        let (_tmp, store) = open();
        let first = store
            .upsert(new_account("Case@Example.com", "a1", "r1"))
            .unwrap();
        assert!(first.created);
        let id = first.account.id.clone();
        assert_eq!(
            store.path_of(&id),
            store.accounts_dir().join(format!("{id}.json"))
        );
        store
            .update(&id, |a| {
                a.disable("invalid_grant: Token has been expired or revoked.", 100);
                a.proxy_disable("quota protection", 100);
                a.labels.insert("n".into(), "1".into());
            })
            .unwrap();
        let before = fs::read(store.path_of(&id)).unwrap();

        // Same tokens, other case: same account, still disabled, file untouched.
        let same = store
            .upsert(new_account("case@EXAMPLE.com", "a1", "r1"))
            .unwrap();
        assert!(!same.created && !same.recovered && !same.changed);
        assert_eq!(same.account.id, id);
        assert!(same.account.disabled);
        assert_eq!(fs::read(store.path_of(&id)).unwrap(), before);

        // New refresh token: recovered, proxy_disabled untouched.
        let rec = store
            .upsert(new_account("CASE@example.com", "a1", "r2"))
            .unwrap();
        assert!(rec.recovered && rec.changed && !rec.created);
        let a = store.load(&id).unwrap().unwrap();
        assert!(!a.disabled && a.disabled_reason.is_none() && a.disabled_at.is_none());
        assert!(a.proxy_disabled);
        assert_eq!(a.labels["n"], "1");
        assert_eq!(a.email, "Case@Example.com");
        assert_eq!(a.token.refresh_token, "r2");

        // New access token on a disabled account: recovered too.
        store
            .update(&id, |a| a.disable("invalid_grant", 200))
            .unwrap();
        let rec = store
            .upsert(new_account("case@example.com", "a2", "r2"))
            .unwrap();
        assert!(rec.recovered);
        assert!(!store.load(&id).unwrap().unwrap().disabled);

        // Still one file; another email makes another account.
        let other = store
            .upsert(new_account("other@example.com", "b", "rb"))
            .unwrap();
        assert!(other.created && other.account.id != id);
        assert_eq!(store.load_all().accounts.len(), 2);
        assert_eq!(store.find("CASE@example.com").unwrap().unwrap().id, id);
        assert_eq!(
            store.find(&other.account.id).unwrap().unwrap().email,
            "other@example.com"
        );
        assert!(store.find("nobody@example.com").unwrap().is_none());

        // Incomplete accounts are refused.
        assert!(matches!(
            store.upsert(new_account("  ", "a", "r")),
            Err(StoreError::InvalidAccount { .. })
        ));
        assert!(matches!(
            store.upsert(new_account("x@example.com", "a", "")),
            Err(StoreError::InvalidAccount { .. })
        ));
    }

    #[test]
    fn update_remove_and_ids() {
        let (_tmp, store) = open();
        assert!(matches!(
            store.update("missing", |_| {}),
            Err(StoreError::NotFound { .. })
        ));
        for bad in ["", "../x", "a/b", ".hidden", "a\\b", "a\nb"] {
            assert!(
                matches!(store.update(bad, |_| {}), Err(StoreError::InvalidId { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(store.load(bad), Err(StoreError::InvalidId { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(store.remove(bad), Err(StoreError::InvalidId { .. })),
                "{bad:?}"
            );
        }
        let id = store
            .upsert(new_account("r@example.com", "a", "r"))
            .unwrap()
            .account
            .id;
        // The closure cannot move the account to another id.
        let a = store.update(&id, |a| a.id = "elsewhere".into()).unwrap();
        assert_eq!(a.id, id);
        assert!(!store.path_of("elsewhere").exists());
        assert!(store.remove(&id).unwrap());
        assert!(!store.remove(&id).unwrap());
        assert!(store.load(&id).unwrap().is_none());
        // No lock or temporary file is left behind.
        let left: Vec<_> = fs::read_dir(store.accounts_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != ".lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");

        assert_eq!(
            Store::id_from_path(Path::new("/d/abc.json")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            Store::id_from_path(Path::new("abc-1.2.json")).as_deref(),
            Some("abc-1.2")
        );
        assert_eq!(Store::id_from_path(Path::new("/d/.abc.json")), None);
        assert_eq!(Store::id_from_path(Path::new("/d/.abc.x1.tmp")), None);
        assert_eq!(Store::id_from_path(Path::new("/d/.abc.lock")), None);
        assert_eq!(Store::id_from_path(Path::new("/d/abc.txt")), None);
        assert_eq!(Store::id_from_path(Path::new("/d/.json")), None);
    }

    #[test]
    fn stale_temporary_files_are_cleaned_fresh_ones_kept() {
        let (tmp, store) = open();
        let old = store.accounts_dir().join(".a.XXXX.tmp");
        let fresh = store.accounts_dir().join(".b.YYYY.tmp");
        fs::write(&old, b"partial").unwrap();
        fs::write(&fresh, b"partial").unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        let _ = Store::open(tmp.path()).unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
        assert!(store.load_all().skipped.is_empty());
    }

    #[test]
    fn tokens_never_in_debug_or_errors() {
        let mut t = tokens("ya29.ACCESS-SECRET", "1//REFRESH-SECRET");
        t.extra
            .insert("id_token".into(), Value::String("ID-SECRET".into()));
        let mut a = AccountFile::new("x", "d@example.com", t.clone(), 1);
        a.extra
            .insert("api_key".into(), Value::String("TOP-SECRET".into()));
        let dbg = format!(
            "{a:?} {t:?} {:?}",
            NewAccount {
                email: "e".into(),
                token: t.clone()
            }
        );
        for secret in ["ACCESS-SECRET", "REFRESH-SECRET", "ID-SECRET", "TOP-SECRET"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        assert!(dbg.contains("<redacted>") && dbg.contains("id_token"));
        assert_eq!(
            redact_quoted(r#"invalid type: string "a\"b", expected i64 at line 1"#),
            r#"invalid type: string "…", expected i64 at line 1"#
        );
    }

    #[test]
    fn concurrent_updates_from_threads_and_two_stores_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        // Two independent stores on one folder stand in for two processes:
        // they share no in-process lock, only the lock files.
        let stores = [
            Store::open(tmp.path()).unwrap(),
            Store::open(tmp.path()).unwrap(),
        ];
        let id = stores[0]
            .upsert(new_account("c@example.com", "a", "r"))
            .unwrap()
            .account
            .id;
        const THREADS: usize = 8;
        const ROUNDS: usize = 50;
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let store = stores[i % 2].clone();
                let id = id.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..ROUNDS {
                        store
                            .update(&id, |a| {
                                let n: usize =
                                    a.labels.get("counter").map_or(0, |v| v.parse().unwrap());
                                a.labels.insert("counter".into(), (n + 1).to_string());
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let a = stores[1].load(&id).unwrap().unwrap();
        assert_eq!(a.labels["counter"], (THREADS * ROUNDS).to_string());
        assert!(stores[0].inner.id_locks.lock().unwrap().is_empty());
    }

    #[test]
    fn racing_upserts_and_disables_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Store::open(tmp.path()).unwrap();
        let b = Store::open(tmp.path()).unwrap();
        // Eight racing first upserts of one email make one account.
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    store
                        .upsert(new_account("Race@example.com", "a0", "r0"))
                        .unwrap()
                        .created
                })
            })
            .collect();
        let created = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|c| *c)
            .count();
        assert_eq!(created, 1);
        let report = a.load_all();
        assert_eq!(report.accounts.len(), 1);
        let id = report.accounts[0].id.clone();

        // One thread counts in a label; another upserts new tokens; a third
        // takes the account on and off the proxy. Every effect survives.
        let counter = {
            let store = a.clone();
            let id = id.clone();
            thread::spawn(move || {
                for _ in 0..50 {
                    store
                        .update(&id, |acc| {
                            let n: usize = acc.labels.get("n").map_or(0, |v| v.parse().unwrap());
                            acc.labels.insert("n".into(), (n + 1).to_string());
                        })
                        .unwrap();
                }
            })
        };
        let upserter = {
            let store = b.clone();
            thread::spawn(move || {
                for i in 1..=50 {
                    store
                        .upsert(new_account(
                            "race@example.com",
                            &format!("a{i}"),
                            &format!("r{i}"),
                        ))
                        .unwrap();
                }
            })
        };
        let proxy = {
            let store = b.clone();
            let id = id.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    store
                        .update(&id, |acc| {
                            let n: usize = acc.labels.get("p").map_or(0, |v| v.parse().unwrap());
                            acc.labels.insert("p".into(), (n + 1).to_string());
                            if i % 2 == 0 {
                                acc.proxy_disable("flap", 1)
                            } else {
                                acc.clear_proxy_disabled()
                            }
                        })
                        .unwrap();
                }
            })
        };
        for h in [counter, upserter, proxy] {
            h.join().unwrap();
        }
        let acc = a.load(&id).unwrap().unwrap();
        assert_eq!(acc.labels["n"], "50");
        assert_eq!(acc.labels["p"], "50");
        assert_eq!(acc.token.refresh_token, "r50");
        assert!(!acc.proxy_disabled);
    }

    fn write_ag_fixtures(root: &Path) -> PathBuf {
        let dir = root.join("accounts");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("5f0c7a2e-1111-2222-3333-444455556666.json"),
            AG_FILE,
        )
        .unwrap();
        fs::write(
            dir.join("dead.json"),
            r#"{"id": "dead-1", "email": "dead@example.com", "name": null,
                "token": {"access_token": "ya29.D", "refresh_token": "1//D", "expires_in": 3599,
                          "expiry_timestamp": 1700003600, "token_type": "Bearer", "email": null},
                "quota": null, "disabled": true, "disabled_reason": "invalid_grant: revoked",
                "disabled_at": 1700000500, "created_at": 1690000001, "last_used": 1690000002}"#,
        )
        .unwrap();
        fs::write(
            dir.join("broken.json"),
            b"{\"email\": \"b@example.com\", \"token\": {",
        )
        .unwrap();
        fs::write(dir.join("no-token.json"), br#"{"email": "n@example.com"}"#).unwrap();
        fs::write(
            dir.join("bad-type.json"),
            br#"{"email": "bt@example.com", "token": {"refresh_token": 12345}}"#,
        )
        .unwrap();
        fs::write(dir.join("readme.txt"), b"not an account").unwrap();
        fs::write(
            root.join("accounts.json"),
            br#"{"version": "2.0", "accounts": [], "current_account_id": null}"#,
        )
        .unwrap();
        dir
    }

    #[test]
    fn import_antigravity_dir_twice() {
        let src = tempfile::tempdir().unwrap();
        let dir = write_ag_fixtures(src.path());
        let (_tmp, store) = open();

        let (report, logs) = capture_logs(|| store.import_antigravity(src.path()));
        assert_eq!(report.source_dir, dir);
        assert_eq!(report.created(), 2, "{report:?}");
        assert_eq!(report.failed.len(), 3, "{report:?}");
        for name in ["broken.json", "no-token.json", "bad-type.json"] {
            assert!(
                report.failed.iter().any(|f| f.path == dir.join(name)),
                "{name}"
            );
            assert!(
                logs.contains(&format!("file={}", dir.join(name).display())),
                "{logs}"
            );
        }
        assert!(!logs.contains("12345"), "{logs}");

        let ag = store
            .load("5f0c7a2e-1111-2222-3333-444455556666")
            .unwrap()
            .expect("source id kept");
        assert_eq!(ag.email, "Ag.User@Example.com");
        assert_eq!(ag.token.refresh_token, "1//AG-REFRESH");
        assert_eq!(ag.token.access_token, "ya29.AG-ACCESS");
        assert_eq!(ag.token.expiry_timestamp, 1_700_003_600);
        assert_eq!(ag.token.project_id.as_deref(), Some("proj-ag"));
        assert!(ag.proxy_disabled);
        assert_eq!(ag.proxy_disabled_reason.as_deref(), Some("by hand"));
        assert_eq!(ag.created_at, 1_690_000_000);
        let dead = store.load("dead-1").unwrap().unwrap();
        assert!(dead.disabled);
        assert_eq!(
            dead.disabled_reason.as_deref(),
            Some("invalid_grant: revoked")
        );
        assert_eq!(dead.disabled_at, Some(1_700_000_500));

        let snapshot: Vec<(PathBuf, Vec<u8>)> = store
            .load_all()
            .accounts
            .iter()
            .map(|a| {
                (
                    store.path_of(&a.id),
                    fs::read(store.path_of(&a.id)).unwrap(),
                )
            })
            .collect();
        let again = store.import_antigravity(src.path());
        assert_eq!(again.created(), 0);
        assert_eq!(again.updated(), 0);
        assert_eq!(again.unchanged(), 2);
        assert_eq!(again.failed.len(), 3);
        assert_eq!(store.load_all().accounts.len(), 2);
        for (path, bytes) in snapshot {
            assert_eq!(fs::read(&path).unwrap(), bytes, "{}", path.display());
        }

        // The folder holding the files directly works too; the index is ignored.
        let flat = tempfile::tempdir().unwrap();
        fs::copy(dir.join("dead.json"), flat.path().join("dead.json")).unwrap();
        fs::copy(
            src.path().join("accounts.json"),
            flat.path().join("accounts.json"),
        )
        .unwrap();
        let (_tmp2, store2) = open();
        let r = store2.import_antigravity(flat.path());
        assert_eq!((r.created(), r.failed.len()), (1, 0), "{r:?}");

        // A folder that does not exist is reported, not a panic.
        let r = store2.import_antigravity(&flat.path().join("nope"));
        assert_eq!(r.failed.len(), 1);
    }

    #[test]
    fn import_rules_against_existing_accounts() {
        let (_tmp, store) = open();
        let src = tempfile::tempdir().unwrap();
        let dir = write_ag_fixtures(src.path());
        // Stored: the AG account, disabled by grantpool, same tokens, labelled;
        // the dead account, enabled here with other tokens.
        let ag = store
            .upsert(new_account(
                "ag.user@example.com",
                "ya29.AG-ACCESS",
                "1//AG-REFRESH",
            ))
            .unwrap()
            .account;
        store
            .update(&ag.id, |a| {
                a.disable("invalid_grant: seen by grantpool", 5);
                a.labels.insert("keep".into(), "me".into());
            })
            .unwrap();
        let dead = store
            .upsert(new_account("DEAD@example.com", "other", "other-r"))
            .unwrap()
            .account;

        let r = store.import_antigravity(src.path());
        assert_eq!(r.created(), 0);
        let ag_now = store.load(&ag.id).unwrap().unwrap();
        // Same tokens, source enabled: grantpool's newer verdict stands.
        assert!(ag_now.disabled);
        assert_eq!(
            ag_now.disabled_reason.as_deref(),
            Some("invalid_grant: seen by grantpool")
        );
        assert_eq!(ag_now.labels["keep"], "me");
        assert!(ag_now.proxy_disabled); // the source had it
        assert_eq!(ag_now.token.project_id.as_deref(), Some("proj-ag"));
        assert_eq!(ag_now.email, "ag.user@example.com");
        // An imported disabled account stays disabled, with the source's reason.
        let dead_now = store.load(&dead.id).unwrap().unwrap();
        assert!(dead_now.disabled);
        assert_eq!(
            dead_now.disabled_reason.as_deref(),
            Some("invalid_grant: revoked")
        );
        assert_eq!(dead_now.token.refresh_token, "1//D");
        assert!(!store.path_of("dead-1").exists());

        // New tokens in the source on an account grantpool disabled: recovered.
        let text = fs::read_to_string(dir.join("5f0c7a2e-1111-2222-3333-444455556666.json"))
            .unwrap()
            .replace("1//AG-REFRESH", "1//AG-NEW");
        fs::write(dir.join("5f0c7a2e-1111-2222-3333-444455556666.json"), text).unwrap();
        let r = store.import_antigravity(src.path());
        assert_eq!(r.updated(), 1);
        assert!(r.imported.iter().any(|e| e.recovered && e.id == ag.id));
        assert!(!store.load(&ag.id).unwrap().unwrap().disabled);
    }
}
