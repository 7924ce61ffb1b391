//! Changing accounts from a running proxy: the verified add (the same upsert
//! as `grantpool accounts add` / `login`), taking an account off the proxy
//! and back, labels, the outbound proxy, removal. The admin API and the
//! accounts page both call these, so the two cannot drift apart; each change is written through the
//! store and reaches the pool at once (the store's watch would bring it a
//! moment later anyway).

use std::collections::BTreeMap;

use crate::oauth::OAuth;
use crate::pool::Pool;
use crate::store::{AccountFile, NewAccount, Store, StoreError, UpsertOutcome};

/// Why an account could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Google refused the token or the code, or would not say whose it is;
    /// the message says which (and that nothing was written).
    #[error("{0}")]
    Refused(String),
    /// The token belongs to another account than the one asked for.
    #[error("the token belongs to {actual}, not {expected}; nothing was written (sign in as {expected}, or add it as a new account)")]
    OtherAccount {
        /// Whose it is, says Google.
        actual: String,
        /// Whose it was meant to be.
        expected: String,
    },
    /// No account has this id or email.
    #[error("no account with id or email `{0}`: it may have been removed meanwhile")]
    NotFound(String),
    /// The change itself is not valid (a label value, say).
    #[error("{0}")]
    Invalid(String),
    /// The store could not do it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store's blocking task died.
    #[error("the account store's task failed: {0}; see the log")]
    Task(String),
}

impl ManageError {
    /// The HTTP status an API answers this with.
    pub fn status(&self) -> u16 {
        match self {
            ManageError::Refused(_) => 422,
            ManageError::OtherAccount { .. } => 409,
            ManageError::NotFound(_) => 404,
            ManageError::Invalid(_) | ManageError::Store(_) => 400,
            ManageError::Task(_) => 500,
        }
    }
}

/// What an add did, in the words the page and the API show.
pub fn added_words(o: &UpsertOutcome) -> String {
    let a = &o.account;
    let mut words = if o.created {
        format!("added {}", a.email)
    } else if o.recovered {
        format!("enabled again: {} has a new refresh token and is back in the pool", a.email)
    } else if o.changed {
        format!("updated {} (new token)", a.email)
    } else {
        format!("unchanged: {} already has this token", a.email)
    };
    if a.disabled {
        words.push_str(&format!(
            "; it is still disabled ({}): the token given is the one that failed, sign in again for a new one",
            a.disabled_reason.as_deref().unwrap_or("no reason recorded")
        ));
    }
    if a.proxy_disabled {
        words.push_str(&format!(
            "; it is off the proxy ({}): put it back on the proxy to serve",
            a.proxy_disabled_reason.as_deref().unwrap_or("no reason recorded")
        ));
    }
    words
}

/// The account operations of a running proxy, over its store and pool.
pub struct Manager<'a> {
    store: &'a Store,
    pool: &'a Pool,
    oauth: &'a OAuth,
}

impl<'a> Manager<'a> {
    /// Operations on `store`, mirrored into `pool`, verified with `oauth`.
    pub fn new(store: &'a Store, pool: &'a Pool, oauth: &'a OAuth) -> Self {
        Manager { store, pool, oauth }
    }

    /// Add or re-add an account from a refresh token: Google exchanges it
    /// first (with `client`, `None` = the default) and names the account;
    /// `expected` (an email), when given, must be that account. Nothing is
    /// written for a token Google refuses. A re-add of a disabled account
    /// with a new token clears `disabled_*`. `egress`, when given, names the
    /// outbound proxy the account's calls go through (the check with Google
    /// already goes through it); a name not in `[egress.proxies]` is refused
    /// before anything is sent. Not given, a re-added account keeps its own.
    pub async fn add_refresh_token(
        &self,
        client: Option<&str>,
        refresh_token: &str,
        expected: Option<&str>,
        project_id: Option<String>,
        egress: Option<&str>,
    ) -> Result<UpsertOutcome, ManageError> {
        let egress = self.check_egress(egress)?;
        let mut new = self.oauth.verify_refresh_token(client, refresh_token, egress.as_deref()).await.map_err(ManageError::Refused)?;
        new.token.project_id = project_id.filter(|p| !p.is_empty());
        self.upsert_with_egress(new, expected, egress.as_deref()).await
    }

    /// An outbound proxy choice as given (blank or `none`: the pool's
    /// default, `None`), refused when `[egress.proxies]` does not name it.
    pub fn check_egress(&self, egress: Option<&str>) -> Result<Option<String>, ManageError> {
        let egress = egress_choice(egress);
        if let Some(name) = egress.as_deref() {
            self.oauth.egress().check_name(name).map_err(ManageError::Invalid)?;
        }
        Ok(egress)
    }

    /// [`Self::upsert`], then the account's outbound proxy set to `egress`
    /// when given (not given, the account keeps its own).
    pub async fn upsert_with_egress(&self, new: NewAccount, expected: Option<&str>, egress: Option<&str>) -> Result<UpsertOutcome, ManageError> {
        let mut outcome = self.upsert(new, expected).await?;
        if let Some(name) = egress {
            if outcome.account.egress.as_deref() != Some(name) {
                outcome.account = self.set_egress(&outcome.account.id, Some(name)).await?;
                outcome.changed = true;
            }
        }
        Ok(outcome)
    }

    /// Set the outbound proxy an account's calls go through: `Some(name)`
    /// (one of `[egress.proxies]`; any other is refused, the error naming
    /// the configured ones) or `None` for the pool's default. The record is
    /// written through the store; the account's next call takes the new way
    /// (each call reads the account's field).
    pub async fn set_egress(&self, id_or_email: &str, egress: Option<&str>) -> Result<AccountFile, ManageError> {
        let egress = self.check_egress(egress)?;
        let file = self.find(id_or_email).await?;
        let store = self.store.clone();
        let value = egress.clone();
        let file = blocking(move || store.update(&file.id, |f| f.egress = value.clone())).await?;
        self.pool.upsert_file(file.clone());
        tracing::info!(account = %file.id, email = %file.email, egress = egress.as_deref().unwrap_or("pool default"), "account's egress proxy set from a running proxy (admin API or accounts page)");
        Ok(file)
    }

    /// Upsert an account Google has vouched for (a verified token, or the
    /// answer to a sign-in), by email.
    pub async fn upsert(&self, new: NewAccount, expected: Option<&str>) -> Result<UpsertOutcome, ManageError> {
        if let Some(want) = expected.map(str::trim).filter(|e| !e.is_empty()) {
            if !want.eq_ignore_ascii_case(new.email.trim()) {
                return Err(ManageError::OtherAccount { actual: new.email, expected: want.to_string() });
            }
        }
        let store = self.store.clone();
        let outcome = blocking(move || store.upsert(new)).await?;
        self.pool.upsert_file(outcome.account.clone());
        tracing::info!(
            account = %outcome.account.id,
            email = %outcome.account.email,
            created = outcome.created,
            recovered = outcome.recovered,
            "account upserted from a running proxy (admin API or accounts page)"
        );
        Ok(outcome)
    }

    /// Take an account off the proxy (`on = false`, with `why` as the
    /// reason) or put it back (`on = true`; a disabled account stays
    /// disabled: only a new token recovers it).
    pub async fn set_on_proxy(&self, id_or_email: &str, on: bool, why: &str) -> Result<AccountFile, ManageError> {
        let file = self.find(id_or_email).await?;
        let store = self.store.clone();
        let why = why.to_string();
        let now = crate::util::now_secs();
        let file = blocking(move || {
            store.update(&file.id, |f| if on { f.clear_proxy_disabled() } else { f.proxy_disable(&why, now) })
        })
        .await?;
        self.pool.upsert_file(file.clone());
        tracing::info!(account = %file.id, email = %file.email, on_proxy = on, "account {} by hand", if on { "put back on the proxy" } else { "taken off the proxy" });
        Ok(file)
    }

    /// Set or remove labels: `Some(value)` sets, `None` (or an empty value)
    /// removes. `weight` must be a number ≥ 0 and `priority` an integer,
    /// as the bundled selectors read them.
    pub async fn set_labels(&self, id_or_email: &str, patch: BTreeMap<String, Option<String>>) -> Result<AccountFile, ManageError> {
        for (k, v) in &patch {
            check_label(k, v.as_deref().unwrap_or(""))?;
        }
        let file = self.find(id_or_email).await?;
        let store = self.store.clone();
        let file = blocking(move || {
            store.update(&file.id, |f| {
                for (k, v) in &patch {
                    match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                        Some(v) => {
                            f.labels.insert(k.clone(), v.to_string());
                        }
                        None => {
                            f.labels.remove(k);
                        }
                    }
                }
            })
        })
        .await?;
        self.pool.upsert_file(file.clone());
        Ok(file)
    }

    /// Delete an account's record; it leaves the pool at once.
    pub async fn remove(&self, id_or_email: &str) -> Result<AccountFile, ManageError> {
        let file = self.find(id_or_email).await?;
        let store = self.store.clone();
        let id = file.id.clone();
        if !blocking(move || store.remove(&id)).await? {
            return Err(ManageError::NotFound(id_or_email.to_string()));
        }
        self.pool.remove(&file.id);
        tracing::info!(account = %file.id, email = %file.email, "account removed from a running proxy (admin API or accounts page)");
        Ok(file)
    }

    async fn find(&self, id_or_email: &str) -> Result<AccountFile, ManageError> {
        let store = self.store.clone();
        let key = id_or_email.to_string();
        blocking(move || store.find(&key)).await?.ok_or_else(|| ManageError::NotFound(id_or_email.to_string()))
    }
}

/// An egress choice as given: blank or `none` (any case) is the pool's default.
fn egress_choice(egress: Option<&str>) -> Option<String> {
    egress.map(str::trim).filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("none")).map(str::to_string)
}

/// A label the page may set: a short plain name; the values the bundled
/// selectors read must parse.
fn check_label(key: &str, value: &str) -> Result<(), ManageError> {
    let bad = |m: String| Err(ManageError::Invalid(m));
    if key.is_empty() || key.len() > 32 || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return bad(format!("label name `{key}`: use 1 to 32 letters, digits, `_`, `-` or `.`"));
    }
    let value = value.trim();
    if value.len() > 128 || value.chars().any(char::is_control) {
        return bad(format!("label `{key}`: the value must be at most 128 characters of plain text"));
    }
    if value.is_empty() {
        return Ok(());
    }
    match key {
        "weight" if !value.parse::<f64>().is_ok_and(|w| w.is_finite() && w >= 0.0) => {
            bad(format!("label `weight` = `{value}`: expected a number of 0 or more (e.g. 1, 2.5)"))
        }
        "priority" if value.parse::<i64>().is_err() => bad(format!("label `priority` = `{value}`: expected a whole number (lower goes first)")),
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, ManageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ManageError::from),
        Err(e) => Err(ManageError::Task(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::check_label;

    #[test]
    fn labels_the_selectors_read_must_parse() {
        assert!(check_label("weight", "2.5").is_ok());
        assert!(check_label("weight", "-1").is_err());
        assert!(check_label("weight", "heavy").is_err());
        assert!(check_label("priority", "3").is_ok());
        assert!(check_label("priority", "first").is_err());
        assert!(check_label("tier", "paid").is_ok());
        assert!(check_label("tier", "").is_ok());
        assert!(check_label("bad name", "x").is_err());
        assert!(check_label("tier", "a\nb").is_err());
    }
}
