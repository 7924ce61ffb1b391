//! A classifier to start from: a provider that answers a token refresh with
//! its own OAuth error (`token_revoked`) has lost the grant, so the account
//! is disabled. Anything else gets no answer here: the next classifier in
//! the chain (e.g. the bundled `default`) decides.
//!
//! Policy (the key is optional):
//!
//! ```toml
//! [[classifier]]
//! plugin = "/path/to/the.wasm"
//! config = { errors = ["token_revoked"] }
//!
//! [[classifier]]
//! plugin = "default"
//! ```

use grantpool_plugin_sdk::classifier::{oauth_error, Classifier, Failure, Phase, Verdict};

/// The plugin's table from `policy.toml`. `deny_unknown_fields` makes a
/// typo refuse the policy instead of being ignored.
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// OAuth `error` codes of a token refresh that mean the grant is gone.
    errors: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config { errors: vec!["token_revoked".into()] }
    }
}

struct Revoked {
    config: Config,
}

impl Classifier for Revoked {
    /// Called once when the policy loads; an `Err` refuses the policy.
    fn configure(config: &str) -> Result<Self, String> {
        Ok(Revoked { config: grantpool_plugin_sdk::config::parse(config)? })
    }

    /// Called for every failure; `None` defers to the next classifier.
    fn classify(&mut self, failure: &Failure) -> Option<Verdict> {
        if failure.phase != Phase::TokenRefresh {
            return None;
        }
        let e = oauth_error(&failure.body)?;
        self.config.errors.contains(&e.error).then(|| Verdict::Disable(e.summary()))
    }
}

grantpool_plugin_sdk::export_classifier!(Revoked);

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh_failure(body: &str) -> Failure {
        Failure {
            phase: Phase::TokenRefresh,
            status: Some(400),
            body: body.into(),
            headers: vec![],
            network_error: false,
            account_id: "a".into(),
            email: "a@example.com".into(),
            model: None,
            attempt: 1,
        }
    }

    #[test]
    fn disables_on_the_configured_error_only() {
        let mut c = Revoked::configure("{}").unwrap();
        let v = c.classify(&refresh_failure(r#"{"error":"token_revoked","error_description":"gone"}"#));
        assert!(matches!(v, Some(Verdict::Disable(r)) if r == "token_revoked: gone"));
        assert!(c.classify(&refresh_failure(r#"{"error":"invalid_grant"}"#)).is_none());
        assert!(Revoked::configure(r#"{"error": []}"#).is_err(), "typos refuse the policy");
    }
}
