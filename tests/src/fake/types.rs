//! The public data types of the fake: what the control endpoints take and
//! give, and what the typed [`FakeGoogle`](super::FakeGoogle) methods take.
//!
//! Every type here is (de)serialised with the same JSON field names the
//! `/_fake/*` endpoints use, so a Python or shell client and a Rust test
//! speak the same language.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Shows the first few characters of a secret, never the whole of it.
pub fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(8).collect();
    format!("{head}…({} chars)", secret.chars().count())
}

/// An account known to the fake (`POST /_fake/accounts`).
///
/// Adding an account with an email already known replaces its settings and
/// adds `refresh_token` to the refresh tokens that work for it (the older
/// ones keep working until revoked or rotated away). Re-adding a revoked
/// refresh token makes it work again.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountSpec {
    /// The Google account's email; the key of the account.
    pub email: String,
    /// A refresh token that refreshes this account.
    pub refresh_token: String,
    /// The Code Assist project `loadCodeAssist` answers; default
    /// `fake-project-<local part of the email>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// When true, every successful refresh answers a new `refresh_token` and
    /// the presented one stops working.
    #[serde(default)]
    pub rotate_refresh_token: bool,
    /// When set, the account's refresh tokens refresh only with this OAuth
    /// client id; another answers 401 `unauthorized_client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl AccountSpec {
    /// An account with default settings.
    pub fn new(email: impl Into<String>, refresh_token: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            refresh_token: refresh_token.into(),
            project_id: None,
            rotate_refresh_token: false,
            client_id: None,
        }
    }

    /// Sets the project id `loadCodeAssist` answers.
    pub fn project_id(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }

    /// Makes every refresh rotate the refresh token.
    pub fn rotate_refresh_token(mut self, rotate: bool) -> Self {
        self.rotate_refresh_token = rotate;
        self
    }

    /// Binds the account's refresh tokens to one OAuth client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
}

impl fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSpec")
            .field("email", &self.email)
            .field("refresh_token", &redact(&self.refresh_token))
            .field("project_id", &self.project_id)
            .field("rotate_refresh_token", &self.rotate_refresh_token)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// Revokes a refresh token (`POST /_fake/revoke`).
///
/// Later refreshes with it answer `status` and `body` (default 400
/// `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`),
/// and the access tokens issued from the same grant stop working (401 on
/// `v1internal`), as Google does.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct RevokeSpec {
    /// The refresh token to revoke (need not be known to the fake).
    pub refresh_token: String,
    /// The HTTP status later refreshes get; default 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The body later refreshes get: a string, or any JSON value (sent as JSON).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_json"
    )]
    pub body: Option<String>,
}

impl RevokeSpec {
    /// A plain revoke: later refreshes get Google's `invalid_grant`.
    pub fn new(refresh_token: impl Into<String>) -> Self {
        Self {
            refresh_token: refresh_token.into(),
            status: None,
            body: None,
        }
    }

    /// Makes later refreshes answer this status and body instead.
    pub fn answer(mut self, status: u16, body: impl Into<String>) -> Self {
        self.status = Some(status);
        self.body = Some(body.into());
        self
    }
}

impl fmt::Debug for RevokeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevokeSpec")
            .field("refresh_token", &redact(&self.refresh_token))
            .field("status", &self.status)
            .field("body", &self.body)
            .finish()
    }
}

/// An OAuth client the token endpoint accepts (`POST /_fake/client`).
///
/// While no client is configured any `client_id`/`client_secret` is
/// accepted; once one or more are, any other answers 401 `invalid_client`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientSpec {
    /// The OAuth client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

impl fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field("client_secret", &redact(&self.client_secret))
            .finish()
    }
}

/// An authorization code the token endpoint will exchange once
/// (`POST /_fake/codes`).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct CodeSpec {
    /// The code, as the browser callback would carry it.
    pub code: String,
    /// The account it logs in (created with defaults when unknown).
    pub email: String,
    /// PKCE challenge; when set the exchange must carry a matching
    /// `code_verifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// `S256` (default) or `plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    /// When set, the exchange's `redirect_uri` must be equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The refresh token the exchange issues; default a fresh random one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl CodeSpec {
    /// A code for `email`, without PKCE.
    pub fn new(code: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            email: email.into(),
            code_challenge: None,
            code_challenge_method: None,
            redirect_uri: None,
            refresh_token: None,
        }
    }

    /// Requires PKCE S256 with this challenge
    /// (`BASE64URL-NOPAD(SHA256(code_verifier))`).
    pub fn code_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.code_challenge = Some(challenge.into());
        self
    }

    /// Requires this `redirect_uri` at exchange.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Fixes the refresh token the exchange issues.
    pub fn refresh_token(mut self, token: impl Into<String>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }
}

impl fmt::Debug for CodeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeSpec")
            .field("code", &redact(&self.code))
            .field("email", &self.email)
            .field("code_challenge", &self.code_challenge)
            .field("code_challenge_method", &self.code_challenge_method)
            .field("redirect_uri", &self.redirect_uri)
            .field("refresh_token", &self.refresh_token.as_deref().map(redact))
            .finish()
    }
}

/// One model's quota for one account (`POST /_fake/quota`).
///
/// A model whose `remaining_fraction` is 0 or less answers generate and
/// stream calls with Google's 429 `RESOURCE_EXHAUSTED`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QuotaSpec {
    /// The account.
    pub email: String,
    /// The model name, e.g. `gemini-2.5-pro`.
    pub model: String,
    /// `quotaInfo.remainingFraction`, 0.0 ..= 1.0.
    pub remaining_fraction: f64,
    /// `quotaInfo.resetTime` (RFC 3339); default one hour from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_time: Option<String>,
}

impl QuotaSpec {
    /// A quota with the default reset time.
    pub fn new(
        email: impl Into<String>,
        model: impl Into<String>,
        remaining_fraction: f64,
    ) -> Self {
        Self {
            email: email.into(),
            model: model.into(),
            remaining_fraction,
            reset_time: None,
        }
    }
}

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
}

/// A scripted fault (`POST /_fake/faults`).
///
/// Faults are kept in a queue; a call takes the first one whose `endpoint`
/// covers it and whose `email` (if set) is the account behind the call,
/// and uses one of its `times`.
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

/// One answer served in full by `generateContent` or `streamGenerateContent`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Served {
    /// The account whose access token was used.
    pub email: String,
    /// The `model` of the request.
    pub model: String,
    /// The `project` of the request, if any.
    pub project: Option<String>,
    /// Whether it was the streaming endpoint.
    pub stream: bool,
}

/// Call counts (`GET /_fake/stats`).
///
/// Calls are counted on arrival, including those a fault or an auth error
/// answers; `served` lists only answers given in full. Per-account counts
/// are kept only for calls whose account is known (a known refresh or
/// access token); `--fast` mode keeps only the totals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// `POST /token` calls, all grant types.
    pub token_calls: u64,
    /// `grant_type=refresh_token` calls by the refresh token presented.
    pub token_calls_by_refresh_token: BTreeMap<String, u64>,
    /// `POST /token` calls by account.
    pub token_calls_by_email: BTreeMap<String, u64>,
    /// `GET /userinfo` calls.
    pub userinfo_calls: u64,
    /// `generateContent` calls.
    pub generate_calls_total: u64,
    /// `generateContent` calls by account.
    pub generate_calls: BTreeMap<String, u64>,
    /// `streamGenerateContent` calls.
    pub stream_calls_total: u64,
    /// `streamGenerateContent` calls by account.
    pub stream_calls: BTreeMap<String, u64>,
    /// `loadCodeAssist` calls.
    pub load_code_assist_calls: u64,
    /// `loadCodeAssist` calls by account.
    pub load_code_assist_calls_by_email: BTreeMap<String, u64>,
    /// `fetchAvailableModels` calls.
    pub fetch_models_calls: u64,
    /// Answers served in full, in order.
    pub served: Vec<Served>,
}

impl Stats {
    /// Refresh calls made with `refresh_token`.
    pub fn token_calls_for(&self, refresh_token: &str) -> u64 {
        self.token_calls_by_refresh_token
            .get(refresh_token)
            .copied()
            .unwrap_or(0)
    }

    /// Generate plus stream calls made for `email`.
    pub fn content_calls_for(&self, email: &str) -> u64 {
        self.generate_calls.get(email).copied().unwrap_or(0)
            + self.stream_calls.get(email).copied().unwrap_or(0)
    }

    /// The accounts of `served`, in order.
    pub fn served_emails(&self) -> Vec<&str> {
        self.served.iter().map(|s| s.email.as_str()).collect()
    }
}

/// An account as the fake holds it (`GET /_fake/accounts`).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountInfo {
    /// The email.
    pub email: String,
    /// The stable Google user id `userinfo` answers.
    pub id: String,
    /// The project `loadCodeAssist` answers.
    pub project_id: String,
    /// Whether refreshes rotate the refresh token.
    pub rotate_refresh_token: bool,
    /// The OAuth client the account is bound to, if any.
    pub client_id: Option<String>,
    /// The refresh tokens that currently work for it.
    pub refresh_tokens: Vec<String>,
    /// Quotas set through `/_fake/quota` (model → fraction).
    pub quotas: BTreeMap<String, f64>,
}

impl fmt::Debug for AccountInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tokens: Vec<String> = self.refresh_tokens.iter().map(|t| redact(t)).collect();
        f.debug_struct("AccountInfo")
            .field("email", &self.email)
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("rotate_refresh_token", &self.rotate_refresh_token)
            .field("client_id", &self.client_id)
            .field("refresh_tokens", &tokens)
            .field("quotas", &self.quotas)
            .finish()
    }
}

/// A control request the fake refuses (bad status, bad header, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSpec(pub String);

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidSpec {}

/// Accepts a JSON string as is, and any other JSON value as its JSON text.
fn string_or_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}
