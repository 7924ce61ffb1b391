//! The public data types of the fake: what the control endpoints take and
//! give, and what the typed [`FakeGoogle`](super::FakeGoogle) methods take.
//!
//! Every type here is (de)serialised with the same JSON field names the
//! `/_fake/*` endpoints use, so a Python or shell client and a Rust test
//! speak the same language.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::clients::{
    ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET, GEMINI_CLI_CLIENT_ID,
    GEMINI_CLI_CLIENT_SECRET,
};

mod faults;
mod stats;

pub use faults::{Endpoint, FaultKind, FaultSpec, PendingFault};
pub use stats::{
    AccountInfo, FakeSettings, HostInfo, Outcome, RecordedRequest, Served, SettingsPatch, Stats,
    DEFAULT_REFUSED_PHRASES,
};

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
    /// The OAuth client the account's refresh tokens belong to: refreshing
    /// with another answers 401 `unauthorized_client`. Default: the
    /// Antigravity client ([`ANTIGRAVITY_CLIENT_ID`]); while the fake accepts
    /// any client ([`FakeSettings::accept_any_client`]) an account without
    /// one refreshes with any client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `false`: the account was never onboarded: `loadCodeAssist` answers no
    /// `currentTier` and no project until `onboardUser` is done. Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub onboarded: bool,
    /// The account is ineligible for the free tier: `loadCodeAssist` answers
    /// `ineligibleTiers` and `onboardUser` 400 `FAILED_PRECONDITION`. A JSON
    /// string is taken as the `reason_code`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "ineligible_spec"
    )]
    pub ineligible: Option<IneligibleSpec>,
    /// How many polls (`GET operations/…` or `onboardUser` again) the
    /// onboarding operation takes to be done; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboard_polls: Option<u32>,
    /// An enterprise (GCP-managed, licensed) account rather than a consumer
    /// one: `loadCodeAssist` answers `standard-tier` and `gcpManaged: true`,
    /// and the prod host serves it. A consumer account (the default) gets
    /// `free-tier`, `gcpManaged: false`, and Google's bare 429 on the prod
    /// host of a fake that also has a daily host (router-for-me/CLIProxyAPI#5209).
    #[serde(default, skip_serializing_if = "is_false")]
    pub enterprise: bool,
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Why an account is ineligible (`ineligibleTiers[]` of `loadCodeAssist`;
/// field names from GC:code_assist/types.ts `IneligibleTier`, facts §3).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IneligibleSpec {
    /// `VALIDATION_REQUIRED`, `INELIGIBLE_ACCOUNT`, `UNSUPPORTED_LOCATION`,
    /// `UNSUPPORTED_CLIENT` (or another of GC's `IneligibleTierReasonCode`).
    /// `UNSUPPORTED_CLIENT` also refuses generate with 403 (google-gemini/gemini-cli#28846).
    pub reason_code: String,
    /// `reasonMessage`; default a message for the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_message: Option<String>,
    /// `validationUrl`; default a Google sign-in URL for
    /// `VALIDATION_REQUIRED`, none otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_url: Option<String>,
    /// `validationUrlLinkText`; default `Verify your account` with a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_url_link_text: Option<String>,
}

impl IneligibleSpec {
    /// Ineligible for `reason_code`, with the default texts.
    pub fn new(reason_code: impl Into<String>) -> Self {
        Self {
            reason_code: reason_code.into(),
            reason_message: None,
            validation_url: None,
            validation_url_link_text: None,
        }
    }
}

/// An [`IneligibleSpec`], or a string naming its reason code.
fn ineligible_spec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IneligibleSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Code(String),
        Spec(IneligibleSpec),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::Code(c)) => Some(IneligibleSpec::new(c)),
        Some(Either::Spec(s)) => Some(s),
    })
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
            onboarded: true,
            ineligible: None,
            onboard_polls: None,
            enterprise: false,
        }
    }

    /// Makes the account an enterprise (true) or consumer (false) account.
    pub fn enterprise(mut self, enterprise: bool) -> Self {
        self.enterprise = enterprise;
        self
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

    /// Binds the account to the Gemini CLI client.
    pub fn gemini_cli(self) -> Self {
        self.client_id(GEMINI_CLI_CLIENT_ID)
    }

    /// Makes the account never onboarded (no tier, no project until
    /// `onboardUser` is done).
    pub fn never_onboarded(mut self) -> Self {
        self.onboarded = false;
        self
    }

    /// Makes the account ineligible for `reason_code`.
    pub fn ineligible(mut self, reason_code: impl Into<String>) -> Self {
        self.ineligible = Some(IneligibleSpec::new(reason_code));
        self
    }

    /// Sets how many polls onboarding takes.
    pub fn onboard_polls(mut self, polls: u32) -> Self {
        self.onboard_polls = Some(polls);
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
            .field("onboarded", &self.onboarded)
            .field("ineligible", &self.ineligible)
            .field("onboard_polls", &self.onboard_polls)
            .field("enterprise", &self.enterprise)
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
/// The two built-in clients (Antigravity and Gemini CLI) are always known;
/// an unknown client id answers 401 `invalid_client` `The OAuth client was
/// not found.`, a known id with another secret 401 `invalid_client`
/// `Unauthorized` (facts §7).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientSpec {
    /// The OAuth client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

impl ClientSpec {
    /// A client.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    /// The built-in Antigravity client.
    pub fn antigravity() -> Self {
        Self::new(ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET)
    }

    /// The built-in Gemini CLI client.
    pub fn gemini_cli() -> Self {
        Self::new(GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET)
    }
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
    /// The OAuth client the code was issued to: another client exchanging
    /// it gets 401 `unauthorized_client`. Default: the Antigravity client
    /// (any client while the fake accepts any client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
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
            client_id: None,
        }
    }

    /// Binds the code to one OAuth client.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
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
            .field("client_id", &self.client_id)
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
pub(crate) fn string_or_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}
