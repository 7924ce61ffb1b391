//! The account-file format: one JSON object per account (SPEC "Accounts on
//! disk"), the same record whatever backend holds it.
//!
//! Fields grantpool does not know (top level, inside `token`, and foreign
//! entries of `quota` such as Antigravity-Manager's `models`/`last_updated`/
//! `is_forbidden`) survive a rewrite; Antigravity-Manager's files are accepted
//! as they are. Reasons are trimmed to [`REASON_MAX_BYTES`]. No token ever
//! reaches `Debug` output or a parse error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest `disabled_reason` / `proxy_disabled_reason` kept in a file, in
/// bytes (UTF-8). Longer reasons are cut on a character boundary and end with
/// `…`; see [`trim_reason`].
pub const REASON_MAX_BYTES: usize = 512;

/// Marker appended to a reason that [`trim_reason`] had to shorten.
pub(crate) const TRIM_MARKER: &str = "…";

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
pub(crate) fn email_key(email: &str) -> String {
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
    /// The account's Code Assist tier as `loadCodeAssist` names it
    /// (`free-tier`, `g1-pro-tier`, `standard-tier`…); absent until asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// `loadCodeAssist`'s `gcpManaged`: `true` for an enterprise account
    /// (it may fall back to the prod host), `false` for a consumer one (the
    /// daily host only); absent until asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_managed: Option<bool>,
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
            tier: None,
            gcp_managed: None,
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

/// Which models a quota window (or a model name) belongs to: Google keeps
/// one pair of 5-hour and weekly windows for Gemini models and another for
/// the models of other makers (Claude, GPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFamily {
    /// Models named `gemini…`.
    Gemini,
    /// Models named `claude…` or `gpt…` (Google's "Claude and GPT models").
    ThirdParty,
}

impl ModelFamily {
    /// The family of a model name (`None`: a model no window is known to gate).
    pub fn of_model(model: &str) -> Option<ModelFamily> {
        let m = model.trim_start_matches("models/");
        let starts = |p: &str| m.len() >= p.len() && m.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
        if starts("gemini") {
            Some(ModelFamily::Gemini)
        } else if starts("claude") || starts("gpt") {
            Some(ModelFamily::ThirdParty)
        } else {
            None
        }
    }

    /// The models it covers, as a pattern for people (`gemini*`).
    pub fn pattern(self) -> &'static str {
        match self {
            ModelFamily::Gemini => "gemini*",
            ModelFamily::ThirdParty => "claude*, gpt*",
        }
    }
}

/// One of Google's 5-hour or weekly quota windows of an account, as
/// `retrieveUserQuotaSummary` last reported it (kept in the account file
/// under `quota_windows`, by bucket id such as `gemini-weekly`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QuotaWindow {
    /// `5h`, `weekly`, or Google's own word for a window grantpool does
    /// not know.
    #[serde(default)]
    pub window: String,
    /// Remaining share, 0.0 (exhausted) ..= 1.0; `None` when Google gave
    /// none (only an amount, or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_fraction: Option<f64>,
    /// When the window resets, unix seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<i64>,
    /// The group Google puts it in (`Gemini Models`, `Claude and GPT models`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Google's `remainingAmount`, as given (a count, not a share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_amount: Option<String>,
    /// Google marked the bucket `disabled` (used up).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

impl QuotaWindow {
    /// The models this window gates, from its bucket id (`gemini-…`,
    /// `3p-…`), else its group's name; `None` for a window of unknown scope
    /// (shown, never acted on).
    pub fn family(&self, bucket_id: &str) -> Option<ModelFamily> {
        let id = bucket_id.to_ascii_lowercase();
        if id.starts_with("gemini") {
            return Some(ModelFamily::Gemini);
        }
        if id.starts_with("3p") || id.starts_with("claude") || id.starts_with("gpt") {
            return Some(ModelFamily::ThirdParty);
        }
        let group = self.group.as_deref().unwrap_or_default().to_ascii_lowercase();
        if group.contains("gemini") {
            Some(ModelFamily::Gemini)
        } else if group.contains("claude") || group.contains("gpt") {
            Some(ModelFamily::ThirdParty)
        } else {
            None
        }
    }

    /// Whether nothing is left in it (Google's `disabled`, or a remaining
    /// fraction of zero or less).
    pub fn is_exhausted(&self) -> bool {
        self.disabled || self.remaining_fraction.is_some_and(|f| f <= 0.0)
    }
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
    /// The outbound proxy every call for this account goes through (a name
    /// from `[egress.proxies]`); `None`: the pool's `[egress] default`.
    pub egress: Option<String>,
    /// Cooldowns that must survive a restart.
    pub cooldowns: Vec<PersistedCooldown>,
    /// Last known quota per model name.
    pub quota: BTreeMap<String, ModelQuota>,
    /// Google's 5-hour and weekly windows by bucket id, as last fetched
    /// (`retrieveUserQuotaSummary`); empty when never fetched.
    pub quota_windows: BTreeMap<String, QuotaWindow>,
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
            egress: None,
            cooldowns: Vec::new(),
            quota: BTreeMap::new(),
            quota_windows: BTreeMap::new(),
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
    pub(crate) fn normalize(&mut self) {
        self.quota.retain(|_, q| q.remaining_fraction.is_finite());
        for w in self.quota_windows.values_mut() {
            w.remaining_fraction = w.remaining_fraction.filter(|f| f.is_finite());
        }
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
            .field("egress", &self.egress)
            .field("cooldowns", &self.cooldowns)
            .field("quota", &self.quota)
            .field("quota_windows", &self.quota_windows)
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    egress: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    cooldowns: Vec<PersistedCooldown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quota: Option<Value>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    quota_windows: BTreeMap<String, QuotaWindow>,
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
            egress: raw.egress.filter(|e| !e.is_empty()),
            cooldowns: raw.cooldowns,
            quota,
            quota_windows: raw.quota_windows,
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
            egress: a.egress,
            cooldowns: a.cooldowns,
            quota,
            quota_windows: a.quota_windows,
            extra: a.extra,
        }
    }
}

/// Replaces every double-quoted span of a parse-error message with `"…"`, so
/// that a value from the file (possibly a token) never reaches a log line or
/// an error. Field names (in backticks), line and column stay.
pub(crate) fn redact_quoted(msg: &str) -> String {
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
pub fn parse_account(bytes: &[u8]) -> Result<AccountFile, String> {
    serde_json::from_slice::<AccountFile>(bytes).map_err(|e| redact_quoted(&e.to_string()))
}

/// The `email` of a file that does not parse as an account, when it is at
/// least a JSON object with a string `email`.
pub(crate) fn peek_email(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(v.get("email")?.as_str()?.to_string())
}

/// An account file's bytes: pretty JSON and a final newline.
pub fn encode(account: &AccountFile) -> Vec<u8> {
    // Serialising plain data into memory cannot fail.
    let mut bytes = serde_json::to_vec_pretty(account).expect("account serialises");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod quota_window_format {
    use super::*;

    #[test]
    fn quota_windows_absent_is_none_and_round_trips() {
        let old = br#"{"id":"a1","email":"a@example.com","token":{"access_token":"at","refresh_token":"rt","expiry_timestamp":0}}"#;
        let mut f = parse_account(old).unwrap();
        assert!(f.quota_windows.is_empty());
        assert!(!String::from_utf8(encode(&f)).unwrap().contains("quota_windows"), "nothing written when none is known");
        f.quota_windows.insert(
            "gemini-weekly".into(),
            QuotaWindow { window: "weekly".into(), remaining_fraction: Some(0.4), reset_at: Some(1_700_000_000), group: Some("Gemini Models".into()), ..Default::default() },
        );
        let text = String::from_utf8(encode(&f)).unwrap();
        assert!(text.contains("\"quota_windows\"") && !text.contains("remaining_amount"), "only what is known is written: {text}");
        assert_eq!(parse_account(text.as_bytes()).unwrap(), f);
        let null = br#"{"id":"a1","email":"a@example.com","token":{"access_token":"at","refresh_token":"rt","expiry_timestamp":0},"quota_windows":null}"#;
        assert!(parse_account(null).unwrap().quota_windows.is_empty());
        let w = &f.quota_windows["gemini-weekly"];
        assert_eq!(w.family("gemini-weekly"), Some(ModelFamily::Gemini));
        assert_eq!(QuotaWindow::default().family("3p-5h"), Some(ModelFamily::ThirdParty));
        assert_eq!(QuotaWindow { group: Some("Claude and GPT models".into()), ..Default::default() }.family("x"), Some(ModelFamily::ThirdParty));
        assert_eq!(QuotaWindow::default().family("x"), None);
        assert_eq!(ModelFamily::of_model("models/Gemini-2.5-pro"), Some(ModelFamily::Gemini));
        assert_eq!(ModelFamily::of_model("gpt-oss-120b-medium"), Some(ModelFamily::ThirdParty));
        assert_eq!(ModelFamily::of_model("imagen"), None);
    }
}
