//! A key as the admin API (`POST /admin/keys`) and the accounts page send
//! it: JSON, with the expiry in the CLI's words (`30d`, `2027-01-31`,
//! `never`) and `0` for "no limit", so that the three ways in agree.

use serde::Deserialize;

use super::error::KeyError;
use super::record::{parse_expiry, KeyChange, KeySpec};

/// The fields of a key to make or change. On an edit, an absent field
/// stays as it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyForm {
    /// The name (to make a key; an edit names it in the path).
    #[serde(default)]
    pub name: Option<String>,
    /// Model globs; empty = every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Requests per UTC minute; 0 = no limit.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Tokens per UTC day; 0 = no limit.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// `30d`, `12h`, `2027-01-31`, an RFC 3339 time, or `never` / empty.
    #[serde(default)]
    pub expires: Option<String>,
}

impl KeyForm {
    /// The key to make (`now`: Unix seconds, for a relative expiry).
    pub fn spec(self, now: u64) -> Result<KeySpec, KeyError> {
        let name = self.name.unwrap_or_default().trim().to_string();
        Ok(KeySpec {
            name,
            models: clean(self.models.unwrap_or_default()),
            requests_per_minute: self.requests_per_minute.filter(|n| *n > 0),
            tokens_per_day: self.tokens_per_day.filter(|n| *n > 0),
            expires_at: expiry(self.expires.as_deref(), now)?.flatten(),
        })
    }

    /// The change to make to a key.
    pub fn change(self, now: u64) -> Result<KeyChange, KeyError> {
        Ok(KeyChange {
            models: self.models.map(clean),
            requests_per_minute: self.requests_per_minute.map(|n| (n > 0).then_some(n)),
            tokens_per_day: self.tokens_per_day.map(|n| (n > 0).then_some(n)),
            expires_at: expiry(self.expires.as_deref(), now)?,
        })
    }
}

/// Globs as typed in a form: trimmed, blanks dropped.
fn clean(models: Vec<String>) -> Vec<String> {
    models.into_iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
}

/// `None`: not given; `Some(None)`: never.
fn expiry(given: Option<&str>, now: u64) -> Result<Option<Option<u64>>, KeyError> {
    match given.map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(s) => parse_expiry(s, now, true).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_makes_the_same_key_as_the_cli() {
        let form: KeyForm = serde_json::from_str(r#"{"name": " ci ", "models": ["gemini-*", " "], "requests_per_minute": 0, "tokens_per_day": 5000, "expires": "1d"}"#).unwrap();
        let spec = form.spec(1_000).unwrap();
        assert_eq!(spec.name, "ci");
        assert_eq!(spec.models, vec!["gemini-*"]);
        assert_eq!((spec.requests_per_minute, spec.tokens_per_day, spec.expires_at), (None, Some(5000), Some(1_000 + 86_400)));
        // An edit changes what it names, and 0 / "never" clear a limit.
        let change = serde_json::from_str::<KeyForm>(r#"{"tokens_per_day": 0, "expires": "never"}"#).unwrap().change(1_000).unwrap();
        assert_eq!((change.models, change.requests_per_minute, change.tokens_per_day, change.expires_at), (None, None, Some(None), Some(None)));
        assert!(serde_json::from_str::<KeyForm>(r#"{"key": "x"}"#).is_err());
        assert!(serde_json::from_str::<KeyForm>(r#"{"expires": "soon"}"#).unwrap().spec(0).is_err());
    }
}
