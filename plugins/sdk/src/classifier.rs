//! Writing a classifier: implement [`Classifier`], export it with
//! [`export_classifier!`](crate::export_classifier).
//!
//! Helpers here read the two error shapes a classifier meets: the OAuth
//! token endpoint's `{"error": "invalid_grant", "error_description": …}` and
//! Google APIs' `{"error": {"code", "status", "message", "details": […]}}`
//! with `retryDelay` / `quotaResetDelay`.

use std::cell::RefCell;

pub use crate::bindings::classifier::exports::grantpool::plugin::classification::{
    Cooldown, CooldownScope, Failure, Phase, Verdict,
};

/// A classification rule set.
pub trait Classifier: Sized + 'static {
    /// Build from the policy table (JSON); `Err` refuses the policy.
    fn configure(config: &str) -> Result<Self, String>;
    /// Judge a failure; `None` defers to the next classifier.
    fn classify(&mut self, failure: &Failure) -> Option<Verdict>;
}

/// An OAuth error answer (`error`, `error_description`).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// The human description, if any.
    pub description: Option<String>,
}

impl OAuthError {
    /// `"invalid_grant: Token has been expired or revoked."`
    pub fn summary(&self) -> String {
        match &self.description {
            Some(d) => format!("{}: {}", self.error, d),
            None => self.error.clone(),
        }
    }
}

/// Read an OAuth token endpoint error body, if it is one.
pub fn oauth_error(body: &str) -> Option<OAuthError> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = v.get("error")?.as_str()?.to_string();
    let description = v
        .get("error_description")
        .and_then(|d| d.as_str())
        .map(str::to_string);
    Some(OAuthError { error, description })
}

/// A Google API error body, the parts a decision needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoogleError {
    /// `error.code`.
    pub code: Option<u16>,
    /// `error.status`, e.g. `RESOURCE_EXHAUSTED`.
    pub status: Option<String>,
    /// `error.message`.
    pub message: String,
    /// Every `reason` found in `error.details[]` (e.g. `RATE_LIMIT_EXCEEDED`,
    /// `QUOTA_EXHAUSTED`, `VALIDATION_REQUIRED`).
    pub reasons: Vec<String>,
    /// `retryDelay` or `metadata.quotaResetDelay` from the details, ms.
    pub retry_delay_ms: Option<u64>,
    /// `metadata.quotaResetTimeStamp` from the details, Unix ms.
    pub reset_at_ms: Option<u64>,
    /// `metadata.model` from the details (the model the answer is about).
    pub model: Option<String>,
    /// A validation / help URL from the details: `metadata.validation_url`
    /// (or `validationUrl`, `activationUrl`), else the first
    /// `google.rpc.Help` link.
    pub url: Option<String>,
}

/// Read a Google API error body, if it is one.
pub fn google_error(body: &str) -> Option<GoogleError> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    // Some answers are a one-element array of the error object.
    let v = match v {
        serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let err = v.get("error")?.as_object()?;
    let mut out = GoogleError {
        code: err.get("code").and_then(|c| c.as_u64()).map(|c| c as u16),
        status: err.get("status").and_then(|s| s.as_str()).map(str::to_string),
        message: err.get("message").and_then(|m| m.as_str()).unwrap_or("").to_string(),
        ..Default::default()
    };
    let mut help_link = None;
    for d in err.get("details").and_then(|d| d.as_array()).into_iter().flatten() {
        if let Some(r) = d.get("reason").and_then(|r| r.as_str()) {
            out.reasons.push(r.to_string());
        }
        let meta = d.get("metadata");
        let meta_str = |k: &str| meta.and_then(|m| m.get(k)).and_then(|x| x.as_str());
        let delay = d
            .get("retryDelay")
            .and_then(|x| x.as_str())
            .or_else(|| meta_str("quotaResetDelay"))
            .and_then(crate::duration::parse_ms);
        let reset_delay = meta_str("quotaResetDelay").and_then(crate::duration::parse_ms);
        for ms in [delay, reset_delay].into_iter().flatten() {
            out.retry_delay_ms = Some(out.retry_delay_ms.map_or(ms, |cur| cur.max(ms)));
        }
        if let Some(at) = meta_str("quotaResetTimeStamp").and_then(crate::duration::timestamp_ms) {
            out.reset_at_ms = Some(at);
        }
        if let (None, Some(m)) = (&out.model, meta_str("model")) {
            out.model = Some(m.to_string());
        }
        // `appeal_url`: a Terms-of-Service ban (CLIProxyAPI #1823).
        let url = meta_str("validation_url").or_else(|| meta_str("validationUrl")).or_else(|| meta_str("activationUrl")).or_else(|| meta_str("appeal_url"));
        if let (None, Some(u)) = (&out.url, url) {
            out.url = Some(u.to_string());
        }
        let link = d.get("links").and_then(|l| l.as_array()).and_then(|l| l.first()).and_then(|l| l.get("url")).and_then(|u| u.as_str());
        if let (None, Some(u)) = (&help_link, link) {
            help_link = Some(u.to_string());
        }
    }
    if out.url.is_none() {
        out.url = help_link;
    }
    Some(out)
}

/// A header of the failure (names are lowercase).
pub fn header<'a>(failure: &'a Failure, name: &str) -> Option<&'a str> {
    failure
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `Retry-After` in ms (seconds form; HTTP dates are left to the host).
pub fn retry_after_ms(failure: &Failure) -> Option<u64> {
    header(failure, "retry-after").and_then(crate::duration::parse_ms)
}

#[doc(hidden)]
pub fn run_configure<C: Classifier>(cell: &RefCell<Option<C>>, config: String) -> Result<(), String> {
    *cell.borrow_mut() = Some(C::configure(&config)?);
    Ok(())
}

#[doc(hidden)]
pub fn run_classify<C: Classifier>(cell: &RefCell<Option<C>>, failure: Failure) -> Option<Verdict> {
    cell.borrow_mut().as_mut()?.classify(&failure)
}

/// Export a [`Classifier`] as the plugin's `classification` interface.
#[macro_export]
macro_rules! export_classifier {
    ($classifier:ty) => {
        thread_local! {
            static __GRANTPOOL_CLASSIFIER: ::std::cell::RefCell<Option<$classifier>> =
                const { ::std::cell::RefCell::new(None) };
        }
        struct __GrantpoolClassifier;
        impl $crate::bindings::classifier::exports::grantpool::plugin::classification::Guest
            for __GrantpoolClassifier
        {
            fn configure(config: String) -> Result<(), String> {
                __GRANTPOOL_CLASSIFIER.with(|c| $crate::classifier::run_configure(c, config))
            }
            fn classify(
                failure: $crate::classifier::Failure,
            ) -> Option<$crate::classifier::Verdict> {
                __GRANTPOOL_CLASSIFIER.with(|c| $crate::classifier::run_classify(c, failure))
            }
        }
        $crate::bindings::classifier::export_classifier_world!(__GrantpoolClassifier);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oauth_errors() {
        let e = oauth_error(r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#).unwrap();
        assert_eq!(e.summary(), "invalid_grant: Token has been expired or revoked.");
        assert!(oauth_error("not json").is_none());
        assert!(oauth_error(r#"{"error":{"code":400}}"#).is_none());
    }

    #[test]
    fn reads_google_errors_with_delays() {
        let body = r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"},{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","metadata":{"quotaResetDelay":"2s"}}]}}"#;
        let g = google_error(body).unwrap();
        assert_eq!(g.code, Some(429));
        assert_eq!(g.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(g.reasons, vec!["RATE_LIMIT_EXCEEDED"]);
        assert_eq!(g.retry_delay_ms, Some(2000));
    }

    #[test]
    fn reads_quota_resets_models_and_links() {
        // Google's QUOTA_EXHAUSTED answer (antigravity2api-nodejs#44, 9router#789).
        let body = r#"{"error":{"code":429,"message":"You have exhausted your capacity on this model. Your quota will reset after 161h39m41s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"QUOTA_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"uiMessage":"true","model":"claude-sonnet-4-5","quotaResetDelay":"161h39m41.300432511s","quotaResetTimeStamp":"2025-12-18T20:18:34Z"}},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"581981.300432511s"}]}}"#;
        let g = google_error(body).unwrap();
        assert_eq!(g.reasons, vec!["QUOTA_EXHAUSTED"]);
        assert_eq!(g.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(g.retry_delay_ms, Some(581_981_300));
        assert_eq!(g.reset_at_ms, Some(1_766_089_114_000));
        // VALIDATION_REQUIRED: metadata's URL wins over the Help link.
        let body = r#"{"error":{"code":403,"message":"Verify your account to continue.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Verify your account","url":"https://help.example/h"}]},{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"VALIDATION_REQUIRED","metadata":{"validation_url":"https://accounts.google.com/signin/continue?x=1"}}]}}"#;
        assert_eq!(google_error(body).unwrap().url.as_deref(), Some("https://accounts.google.com/signin/continue?x=1"));
        let only_help = r#"{"error":{"code":403,"details":[{"@type":"type.googleapis.com/google.rpc.Help","links":[{"url":"https://help.example/h"}]}]}}"#;
        assert_eq!(google_error(only_help).unwrap().url.as_deref(), Some("https://help.example/h"));
    }
}
