//! The upsert and import rules: pure decisions over account records, the
//! same for every backend (a backend only finds the record by email and
//! writes what the decision returns, atomically).

use super::file::{is_valid_id, new_account_id, AccountFile, TokenData};
use super::error::StoreError;

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

impl UpsertOutcome {
    /// A new account (normalized).
    fn created(mut account: AccountFile) -> UpsertOutcome {
        account.normalize();
        UpsertOutcome { account, created: true, recovered: false, changed: true }
    }

    /// `old` become `account` (normalized); `changed` when they differ.
    fn updated(old: &AccountFile, mut account: AccountFile, recovered: bool) -> UpsertOutcome {
        account.normalize();
        let changed = account != *old;
        UpsertOutcome { account, created: false, recovered, changed }
    }
}

/// Whether `new` carries different tokens than `old`: a different
/// `refresh_token`, or a non-empty `access_token` that differs.
pub(crate) fn tokens_differ(old: &TokenData, new: &TokenData) -> bool {
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
    if t.tier.is_none() && t.gcp_managed.is_none() {
        t.tier = old.tier.clone();
        t.gcp_managed = old.gcp_managed;
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
        return UpsertOutcome::created(AccountFile::new(new_account_id(), new.email.trim(), new.token.clone(), now));
    };
    let mut account = old.clone();
    let recovered = old.disabled && tokens_differ(&old.token, &new.token);
    account.token = merge_token(&old.token, &new.token);
    if recovered {
        account.clear_disabled();
    }
    UpsertOutcome::updated(old, account, recovered)
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
        // A state without its time gets the import's, as an update would
        // give it: importing the same file again then changes nothing.
        account.disabled_at = src.disabled_at.or(src.disabled.then_some(now));
        account.disabled_reason = src.disabled_reason.clone();
        account.proxy_disabled = src.proxy_disabled;
        account.proxy_disabled_reason = src.proxy_disabled_reason.clone();
        account.proxy_disabled_at = src
            .proxy_disabled_at
            .or(src.proxy_disabled.then_some(now));
        account.last_used = src.last_used;
        return UpsertOutcome::created(account);
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
    UpsertOutcome::updated(old, account, recovered)
}

/// Checks an account to add: an email without control characters and a
/// refresh token, both non-empty.
pub(crate) fn validate_new(new: &NewAccount) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::PersistedCooldown;

    fn new_account(email: &str, access: &str, refresh: &str) -> NewAccount {
        NewAccount { email: email.to_string(), token: TokenData::new(access, refresh, 1_700_003_600) }
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
}
