//! What the fake tells about itself: counts, recorded requests, accounts,
//! listeners and settings.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{redact, Endpoint};

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
    /// `countTokens` calls.
    #[serde(default)]
    pub count_tokens_calls: u64,
    /// `onboardUser` calls.
    #[serde(default)]
    pub onboard_user_calls: u64,
    /// `GET operations/…` calls.
    #[serde(default)]
    pub operation_calls: u64,
    /// Calls by host label, then endpoint name (`generate`, `token`, …).
    #[serde(default)]
    pub calls_by_host: BTreeMap<String, BTreeMap<String, u64>>,
    /// The most recent requests to the Google endpoints (not `/_fake/*`),
    /// oldest first, at most [`FakeSettings::max_recorded_requests`].
    #[serde(default)]
    pub requests: Vec<RecordedRequest>,
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

    /// Calls that arrived on the listener labelled `host` (any endpoint).
    pub fn calls_on(&self, host: &str) -> u64 {
        self.calls_by_host.get(host).map_or(0, |m| m.values().sum())
    }

    /// Calls of `endpoint` that arrived on the listener labelled `host`.
    pub fn calls_on_for(&self, host: &str, endpoint: Endpoint) -> u64 {
        self.calls_by_host
            .get(host)
            .and_then(|m| m.get(endpoint.name()))
            .copied()
            .unwrap_or(0)
    }

    /// The recorded requests of `endpoint`, oldest first.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<&RecordedRequest> {
        self.requests
            .iter()
            .filter(|r| r.endpoint.is_some_and(|e| endpoint.covers(e)))
            .collect()
    }

    /// The newest recorded request of `endpoint`.
    pub fn last_request(&self, endpoint: Endpoint) -> Option<&RecordedRequest> {
        self.requests
            .iter()
            .rev()
            .find(|r| r.endpoint.is_some_and(|e| endpoint.covers(e)))
    }

    /// The host labels of the served answers' requests, in order.
    pub fn served_hosts(&self) -> Vec<&str> {
        self.requests
            .iter()
            .filter(|r| {
                r.outcome == Outcome::Served
                    && matches!(r.endpoint, Some(Endpoint::Generate | Endpoint::Stream))
            })
            .map(|r| r.host.as_str())
            .collect()
    }
}

/// How a recorded request ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No answer (yet): in flight, or its connection was dropped by a fault.
    NoAnswer,
    /// Answered 2xx.
    Served,
    /// Refused by the fake's checks (auth, validation, quota): 4xx / 5xx.
    Refused,
    /// Answered or cut by a scripted fault.
    Fault,
    /// A generate / stream call refused for its system instruction (one of
    /// [`FakeSettings::refused_phrases`]) with Google's bare 429.
    ContentRefused,
}

/// One request to a Google endpoint, as received (`GET /_fake/requests`).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// Arrival order, from 1 (not reset by `reset_stats`).
    pub seq: u64,
    /// The host label of the listener it arrived on.
    pub host: String,
    /// `POST`, `GET`, …
    pub method: String,
    /// The protocol it came in: `HTTP/1.1`, `HTTP/2.0`.
    #[serde(default)]
    pub version: String,
    /// Path and query, e.g. `/v1internal:streamGenerateContent?alt=sse`.
    pub path: String,
    /// The endpoint, if the path is one.
    pub endpoint: Option<Endpoint>,
    /// The account behind it, when known.
    pub email: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// Every header (lower-case names; `authorization` redacted).
    pub headers: BTreeMap<String, String>,
    /// The body: its JSON, a form body as a JSON object, else a string.
    pub body: Value,
    /// The `model` of a v1internal body, if any.
    pub model: Option<String>,
    /// The answer's HTTP status, once answered.
    pub status: Option<u16>,
    /// How it ended.
    pub outcome: Outcome,
    /// The `error.message` (Google) or `error_description` (OAuth) of a
    /// refusal or fault answer.
    pub message: Option<String>,
    /// The caller's IP address (a proxy's outgoing address when the call
    /// came through one).
    #[serde(default)]
    pub peer: Option<String>,
    /// The `usageMetadata` the fake answered with (a stream's last one),
    /// when it served a whole answer: what a usage log must add up to.
    #[serde(default)]
    pub usage: Option<Value>,
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("seq", &self.seq)
            .field("host", &self.host)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("email", &self.email)
            .field("user_agent", &self.user_agent)
            .field("model", &self.model)
            .field("status", &self.status)
            .field("outcome", &self.outcome)
            .field("message", &self.message)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// A listener of the fake (`GET /_fake/hosts`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostInfo {
    /// Its label: `daily`, `prod`, `sandbox`, …
    pub label: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// Switches of the fake (`GET` / `POST /_fake/settings`); kept by `reset`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FakeSettings {
    /// Hold generate / stream calls to their profile's envelope (the
    /// contract's Antigravity and Gemini CLI shapes, User-Agent, Claude
    /// generation limits). Default on. Unknown fields, tool schemas,
    /// projects, thought signatures, tool ids and model access are checked
    /// either way.
    pub strict_envelope: bool,
    /// Accept any OAuth client id and secret (what the fake did before it
    /// knew clients). Default off; `DELETE /_fake/client` turns it on,
    /// `POST /_fake/client` off.
    pub accept_any_client: bool,
    /// How many requests [`Stats::requests`] keeps. Default 200.
    pub max_recorded_requests: usize,
    /// Hold every stream open this long between its first event and the
    /// rest (a slow model, for load tests of streams held open). Default 0.
    #[serde(default)]
    pub stream_hold_ms: u64,
    /// How `retrieveUserQuotaSummary` spells a bucket's `window`: `short`
    /// (`5h`, `weekly`, as Antigravity-Manager reads it) or `enum`
    /// (`FIVE_HOUR`, `WEEKLY`, as opencode-agy-auth reads it). Default
    /// `short`.
    #[serde(default = "default_quota_window_spelling")]
    pub quota_window_spelling: String,
    /// Generate / stream calls whose `request.systemInstruction` holds one
    /// of these texts answer Google's bare 429, on every host and for every
    /// account, before quota and scripted faults. Default
    /// [`DEFAULT_REFUSED_PHRASES`].
    #[serde(default = "default_refused_phrases")]
    pub refused_phrases: Vec<String>,
    /// Google retired the Gemini CLI client for consumer accounts
    /// (google-gemini/gemini-cli#28846): when on, every account whose
    /// refresh tokens belong to the Gemini CLI client (and every Gemini CLI
    /// token) is `UNSUPPORTED_CLIENT`. Default off.
    #[serde(default)]
    pub retire_gemini_cli_client: bool,
    /// The version the Antigravity updater's manifest
    /// (`GET /manifest/latest-<arch>-<os>.yml`, CLIProxyAPI
    /// `internal/misc/antigravity_version.go`) names; `None` (default): the
    /// manifest answers 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updater_version: Option<String>,
    /// Google's implicit prompt cache: an account that sees a request
    /// whose prefix (system instruction, tools, first contents) it saw
    /// before reports that prefix's tokens as `cachedContentTokenCount`
    /// (module `prompt_cache`). Default on.
    #[serde(default = "default_prompt_cache")]
    pub prompt_cache: bool,
}

fn default_prompt_cache() -> bool {
    true
}

/// The system-instruction texts Google answers with a bare 429
/// (GOOGLE-2026 §4): router-for-me/CLIProxyAPI#4723 (Hermes), #5751
/// (Codex), #5037 (Claude Agent SDK), router-for-me/EasyCLIProxyAPI#284 and
/// Wei-Shaw/sub2api PR #7256 (the billing header), can1357/oh-my-pi#11699
/// (`<system-conventions>`).
pub const DEFAULT_REFUSED_PHRASES: &[&str] = &[
    "You are Hermes Agent, an intelligent AI assistant created by Nous Research.",
    "You are Codex, an agent based on GPT-5.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
    "x-anthropic-billing-header:",
    "<system-conventions>",
];

fn default_refused_phrases() -> Vec<String> {
    DEFAULT_REFUSED_PHRASES
        .iter()
        .map(|p| (*p).to_owned())
        .collect()
}

impl Default for FakeSettings {
    fn default() -> Self {
        Self {
            strict_envelope: true,
            accept_any_client: false,
            max_recorded_requests: 200,
            stream_hold_ms: 0,
            quota_window_spelling: default_quota_window_spelling(),
            refused_phrases: default_refused_phrases(),
            retire_gemini_cli_client: false,
            updater_version: None,
            prompt_cache: true,
        }
    }
}

fn default_quota_window_spelling() -> String {
    "short".to_owned()
}

/// A change of [`FakeSettings`]: the fields given are set.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// See [`FakeSettings::strict_envelope`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_envelope: Option<bool>,
    /// See [`FakeSettings::accept_any_client`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_any_client: Option<bool>,
    /// See [`FakeSettings::max_recorded_requests`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_recorded_requests: Option<usize>,
    /// See [`FakeSettings::stream_hold_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_hold_ms: Option<u64>,
    /// See [`FakeSettings::quota_window_spelling`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_window_spelling: Option<String>,
    /// See [`FakeSettings::refused_phrases`] (replaces the list; `[]` = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_phrases: Option<Vec<String>>,
    /// See [`FakeSettings::retire_gemini_cli_client`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_gemini_cli_client: Option<bool>,
    /// See [`FakeSettings::updater_version`] (`""` = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updater_version: Option<String>,
    /// See [`FakeSettings::prompt_cache`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache: Option<bool>,
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
    /// `onboarded`, `never_onboarded`, `onboarding` or `ineligible`.
    #[serde(default)]
    pub setup: String,
    /// Whether it is an enterprise account ([`AccountSpec::enterprise`](super::AccountSpec)).
    #[serde(default)]
    pub enterprise: bool,
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
            .field("setup", &self.setup)
            .field("enterprise", &self.enterprise)
            .finish()
    }
}
