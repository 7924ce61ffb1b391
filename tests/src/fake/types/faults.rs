//! Scripted faults: which endpoint, what they do, and the spec.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::string_or_json;

/// Which endpoint a fault applies to.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum Endpoint {
    /// `POST /token`.
    #[serde(rename = "token")]
    Token,
    /// `GET /userinfo`.
    #[serde(rename = "userinfo")]
    Userinfo,
    /// `POST /v1internal:generateContent`.
    #[serde(rename = "generate")]
    Generate,
    /// `POST /v1internal:streamGenerateContent`.
    #[serde(rename = "stream")]
    Stream,
    /// `POST /v1internal:loadCodeAssist`.
    #[serde(rename = "loadCodeAssist")]
    LoadCodeAssist,
    /// `POST /v1internal:fetchAvailableModels`.
    #[serde(rename = "fetchAvailableModels")]
    FetchAvailableModels,
    /// `POST /v1internal:countTokens`.
    #[serde(rename = "countTokens")]
    CountTokens,
    /// `POST /v1internal:onboardUser`.
    #[serde(rename = "onboardUser")]
    OnboardUser,
    /// `GET /v1internal/operations/<id>`.
    #[serde(rename = "operation")]
    Operation,
    /// `POST /v1internal:retrieveUserQuotaSummary`.
    #[serde(rename = "retrieveUserQuotaSummary")]
    RetrieveUserQuotaSummary,
    /// Every endpoint above.
    #[default]
    #[serde(rename = "any")]
    Any,
}

impl Endpoint {
    /// Whether a fault for `self` applies to a call of `call`.
    pub fn covers(self, call: Endpoint) -> bool {
        self == Endpoint::Any || self == call
    }

    /// The endpoint's name, as in JSON (`generate`, `loadCodeAssist`, …).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Userinfo => "userinfo",
            Endpoint::Generate => "generate",
            Endpoint::Stream => "stream",
            Endpoint::LoadCodeAssist => "loadCodeAssist",
            Endpoint::FetchAvailableModels => "fetchAvailableModels",
            Endpoint::CountTokens => "countTokens",
            Endpoint::OnboardUser => "onboardUser",
            Endpoint::Operation => "operation",
            Endpoint::RetrieveUserQuotaSummary => "retrieveUserQuotaSummary",
            Endpoint::Any => "any",
        }
    }

    /// The endpoint a request path is for (`None` for `/_fake/*` and
    /// unknown paths).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/token" => Endpoint::Token,
            "/userinfo" | "/oauth2/v2/userinfo" => Endpoint::Userinfo,
            "/v1internal:generateContent" => Endpoint::Generate,
            "/v1internal:streamGenerateContent" => Endpoint::Stream,
            "/v1internal:loadCodeAssist" => Endpoint::LoadCodeAssist,
            "/v1internal:fetchAvailableModels" => Endpoint::FetchAvailableModels,
            "/v1internal:countTokens" => Endpoint::CountTokens,
            "/v1internal:onboardUser" => Endpoint::OnboardUser,
            "/v1internal:retrieveUserQuotaSummary" => Endpoint::RetrieveUserQuotaSummary,
            p if p.starts_with("/v1internal/operations/") => Endpoint::Operation,
            _ => return None,
        })
    }
}

/// What a fault does.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer `status` (default 500) with `body` (default Google's error
    /// shape for the endpoint) and `headers`.
    Status,
    /// Answer Google's 429 `RESOURCE_EXHAUSTED` with `RetryInfo.retryDelay`
    /// and `ErrorInfo.metadata.quotaResetDelay` set to `retry_delay`
    /// (default `1.5s`) and `ErrorInfo.reason` to `reason` (default
    /// `RATE_LIMIT_EXCEEDED`); `status`, `body` and `headers` override.
    RateLimit,
    /// Wait `delay_ms` (default 1000) and then answer normally.
    Slow,
    /// Read the request, then close the connection (FIN) without an answer.
    Drop,
    /// Answer the status line and headers and part of the answer (on
    /// `stream`: the first `after_events` events, default 1, never the
    /// last), then cut the connection.
    DropMidStream,
    /// Reset the connection (RST) without an answer, like a network failure.
    Network,
    /// Google's literal 429 `RATE_LIMIT_EXCEEDED` (facts §5.1): ErrorInfo
    /// (metadata `model`, `quotaResetDelay` = `retry_delay`, default
    /// `479.417207ms`, `quotaResetTimeStamp`), then RetryInfo in seconds.
    RateLimitExceeded,
    /// Google's literal 429 `QUOTA_EXHAUSTED` (facts §5.2); `retry_delay`
    /// in either form (`161h39m41.300432511s`, the default, or `33740.9s`).
    QuotaExhausted,
    /// Google's literal 503 `MODEL_CAPACITY_EXHAUSTED` (facts §5.3);
    /// `status` 429 gives the 429 variant.
    ModelCapacityExhausted,
    /// Google's literal 403 `VALIDATION_REQUIRED` (facts §5.4), naming
    /// `validation_url`.
    ValidationRequired,
    /// Google's literal 403 `SERVICE_DISABLED` (facts §5.5) for `project`
    /// (default the account's project).
    ServiceDisabled,
    /// Google's literal 401 `UNAUTHENTICATED` (facts §5.6).
    Unauthenticated,
    /// Google's literal 403 `TOS_VIOLATION` (router-for-me/CLIProxyAPI#1823).
    TosViolation,
    /// Google's 403 `SUBSCRIPTION_REQUIRED` (#3501), the 2026-08 form
    /// (AvenCores/open-antigravity-patcher#106, #124).
    LicenseRequired,
    /// HTTP 200 `text/plain` `This version of Antigravity is no longer
    /// supported. …` (router-for-me/CLIProxyAPI#4144).
    UnsupportedVersion,
    /// A 200 `text/event-stream` that ends without any event.
    EmptyStream,
    /// Google's bare 429 `RESOURCE_EXHAUSTED` without details
    /// (router-for-me/CLIProxyAPI#5209).
    #[serde(rename = "bare_429")]
    Bare429,
    /// Google's weekly-quota 429 `Individual quota reached. … Resets in
    /// <reset_secs as 108h48m29s>.` (router-for-me/CLIProxyAPI#3655);
    /// `reset_secs` default 391709 (108h48m29s).
    WeeklyQuota,
}

impl FaultKind {
    /// Whether the fault answers with a status and body (rather than
    /// waiting or cutting the connection).
    pub fn answers(self) -> bool {
        !matches!(
            self,
            FaultKind::Slow | FaultKind::Drop | FaultKind::DropMidStream | FaultKind::Network
        )
    }
}

/// A scripted fault (`POST /_fake/faults`).
///
/// Faults are kept in a queue; a call takes the first one whose `endpoint`
/// covers it and whose `email`, `host` and `model` (each if set) are the
/// call's, and uses one of its `times`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultSpec {
    /// The endpoint; default `any`.
    #[serde(default)]
    pub endpoint: Endpoint,
    /// Only calls for this account (by refresh token on `token`, by access
    /// token elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// What to do.
    pub kind: FaultKind,
    /// HTTP status for `status` / `rate_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Body for `status` / `rate_limit`: a string, or any JSON value.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_json"
    )]
    pub body: Option<String>,
    /// Extra answer headers for `status` / `rate_limit`, e.g. `retry-after`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Wait this long before acting (any kind; `slow` defaults to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// How many calls it applies to; default 1, 0 = forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// `rate_limit`: the delay Google names, e.g. `1.5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<String>,
    /// `rate_limit`: `ErrorInfo.reason`, e.g. `QUOTA_EXHAUSTED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `drop_mid_stream`: how many SSE events go out before the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_events: Option<u32>,
    /// Only calls that arrive on the listener with this host label
    /// (`daily`, `prod`, `sandbox`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Only calls for this model (the request's `model`); also the model the
    /// Google bodies name (default: the request's model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `validation_required`: the `validation_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_url: Option<String>,
    /// `service_disabled`: the project named (default the account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `weekly_quota`: seconds until the reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_secs: Option<u64>,
}

impl FaultSpec {
    /// A fault of `kind` on `endpoint`, once, with defaults.
    pub fn new(endpoint: Endpoint, kind: FaultKind) -> Self {
        Self {
            endpoint,
            email: None,
            kind,
            status: None,
            body: None,
            headers: BTreeMap::new(),
            delay_ms: None,
            times: None,
            retry_delay: None,
            reason: None,
            after_events: None,
            host: None,
            model: None,
            validation_url: None,
            project: None,
            reset_secs: None,
        }
    }

    /// Answer `status` with Google's default error body for it.
    pub fn status(endpoint: Endpoint, status: u16) -> Self {
        let mut f = Self::new(endpoint, FaultKind::Status);
        f.status = Some(status);
        f
    }

    /// Google's 429 `RESOURCE_EXHAUSTED` naming `retry_delay` (e.g. `"1.5s"`).
    pub fn rate_limit(endpoint: Endpoint, retry_delay: impl Into<String>) -> Self {
        let mut f = Self::new(endpoint, FaultKind::RateLimit);
        f.retry_delay = Some(retry_delay.into());
        f
    }

    /// Wait `delay_ms`, then answer normally.
    pub fn slow(endpoint: Endpoint, delay_ms: u64) -> Self {
        Self::new(endpoint, FaultKind::Slow).delay_ms(delay_ms)
    }

    /// Close the connection without an answer.
    pub fn drop_connection(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::Drop)
    }

    /// Reset the connection without an answer.
    pub fn network(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::Network)
    }

    /// Cut a stream after `after_events` events.
    pub fn drop_mid_stream(after_events: u32) -> Self {
        let mut f = Self::new(Endpoint::Stream, FaultKind::DropMidStream);
        f.after_events = Some(after_events);
        f
    }

    /// Google's 429 `RATE_LIMIT_EXCEEDED` with `quotaResetDelay` (a Go
    /// duration, e.g. `"479.417207ms"`).
    pub fn rate_limit_exceeded(endpoint: Endpoint, quota_reset_delay: impl Into<String>) -> Self {
        let mut f = Self::new(endpoint, FaultKind::RateLimitExceeded);
        f.retry_delay = Some(quota_reset_delay.into());
        f
    }

    /// Google's 429 `QUOTA_EXHAUSTED` with `quotaResetDelay` in either form
    /// (`"161h39m41.300432511s"`, `"33740.9s"`; see
    /// [`go_duration`](super::super::go_duration) and
    /// [`seconds_form`](super::super::seconds_form) for a 166-hour reset).
    pub fn quota_exhausted(endpoint: Endpoint, quota_reset_delay: impl Into<String>) -> Self {
        let mut f = Self::new(endpoint, FaultKind::QuotaExhausted);
        f.retry_delay = Some(quota_reset_delay.into());
        f
    }

    /// Google's 503 `MODEL_CAPACITY_EXHAUSTED`.
    pub fn model_capacity_exhausted(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::ModelCapacityExhausted)
    }

    /// Google's 403 `VALIDATION_REQUIRED` (default validation URL).
    pub fn validation_required(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::ValidationRequired)
    }

    /// Google's 403 `SERVICE_DISABLED` for the account's project.
    pub fn service_disabled(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::ServiceDisabled)
    }

    /// Google's 401 `UNAUTHENTICATED`.
    pub fn unauthenticated(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::Unauthenticated)
    }

    /// Google's 403 `TOS_VIOLATION` (the account is banned).
    pub fn tos_violation(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::TosViolation)
    }

    /// Google's 403 `SUBSCRIPTION_REQUIRED` (#3501, no valid licence).
    pub fn license_required(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::LicenseRequired)
    }

    /// HTTP 200 `text/plain`: this version of Antigravity is no longer supported.
    pub fn unsupported_version(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::UnsupportedVersion)
    }

    /// On `streamGenerateContent`: a 200 event stream that closes with no event.
    pub fn empty_stream() -> Self {
        Self::new(Endpoint::Stream, FaultKind::EmptyStream)
    }

    /// Google's bare 429 (no ErrorInfo, no RetryInfo).
    pub fn bare_429(endpoint: Endpoint) -> Self {
        Self::new(endpoint, FaultKind::Bare429)
    }

    /// Google's weekly-quota 429, resetting in `reset_secs`.
    pub fn weekly_quota(endpoint: Endpoint, reset_secs: u64) -> Self {
        let mut f = Self::new(endpoint, FaultKind::WeeklyQuota);
        f.reset_secs = Some(reset_secs);
        f
    }

    /// Only for calls arriving on the listener labelled `host`.
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Only for calls for `model` (and the model the body names).
    pub fn for_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The `validation_url` of a `validation_required` fault.
    pub fn validation_url(mut self, url: impl Into<String>) -> Self {
        self.validation_url = Some(url.into());
        self
    }

    /// The project of a `service_disabled` fault.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Sets the HTTP status (e.g. 429 for `model_capacity_exhausted`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Only for calls of this account.
    pub fn for_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Applies to `n` calls (0 = forever).
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Applies to every matching call until cleared.
    pub fn forever(self) -> Self {
        self.times(0)
    }

    /// Sets the answer body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Adds an answer header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Waits before acting.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }
}

/// A fault still in the queue (`GET /_fake/faults`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PendingFault {
    /// The fault as pushed.
    pub fault: FaultSpec,
    /// Calls it still applies to; `None` = forever.
    pub remaining: Option<u32>,
}
