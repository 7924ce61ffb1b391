//! What grantpool looks like to Google: the two clients whose accounts it
//! pools, each a small table of facts. An account's profile follows the
//! OAuth client that issued its refresh token (a refresh token refreshes
//! only with its own client, and Google serves each client its own models
//! and envelope).
//!
//! Sources (read with the public code, not copied):
//! - Gemini CLI: `google-gemini/gemini-cli` `packages/core/src/code_assist/`
//!   (`oauth2.ts`: client and scopes; `server.ts`: host and methods;
//!   `converter.ts`: envelope; `setup.ts`: onboarding) and
//!   `packages/core/src/core/contentGenerator.ts` (User-Agent).
//! - Antigravity: `router-for-me/CLIProxyAPI` `internal/auth/antigravity/constants.go`
//!   (client, scopes), `internal/runtime/executor/antigravity_executor_request.go`
//!   (hosts in order, envelope, `VALIDATED` for Claude, safetySettings dropped),
//!   `internal/misc/antigravity_version.go` (User-Agent, 2.9.0 floor for newer
//!   models); `lbjlaq/Antigravity-Manager` `src-tauri/src/modules/oauth.rs`
//!   (the same client) and `src-tauri/src/proxy/upstream/client.rs` (host fallback).

/// How a profile wraps a Gemini request for `v1internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `{"project","model","userAgent":"antigravity","requestType":"agent",
    /// "requestId":"agent-<uuid>","request":{…,"sessionId"}}`.
    Antigravity,
    /// `{"model","project","user_prompt_id","request":{…,"session_id"}}`.
    GeminiCli,
}

/// One client grantpool can be, as Google sees it.
#[derive(Debug)]
pub struct Profile {
    /// The profile's name (`antigravity`, `gemini-cli`), also the name of
    /// its built-in OAuth client.
    pub name: &'static str,
    /// The public installed-app OAuth client id.
    pub client_id: &'static str,
    /// Its secret (public for installed apps; not a secret in practice).
    pub client_secret: &'static str,
    /// Scopes a sign-in asks for.
    pub scopes: &'static [&'static str],
    /// `v1internal` hosts, tried in order.
    pub base_urls: &'static [&'static str],
    /// `User-Agent` of upstream calls; `{model}` is replaced by the model.
    pub user_agent: &'static str,
    /// The request envelope.
    pub envelope: Envelope,
    /// `metadata.ideType` of `loadCodeAssist` / `onboardUser`.
    pub ide_type: &'static str,
    /// `safetySettings` are left out (the real client sends none).
    pub drops_safety_settings: bool,
    /// A 429 `RATE_LIMIT_EXCEEDED` moves on to the next host.
    pub next_host_on_rate_limit: bool,
}

const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
const PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";

/// Antigravity: Claude and Gemini 3 models; the client Antigravity-Manager
/// accounts were issued to.
pub static ANTIGRAVITY: Profile = Profile {
    name: "antigravity",
    // CLIProxyAPI internal/auth/antigravity/constants.go; Antigravity-Manager modules/oauth.rs.
    client_id: "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
    client_secret: "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",
    scopes: &[
        CLOUD_PLATFORM,
        EMAIL,
        PROFILE,
        "https://www.googleapis.com/auth/cclog",
        "https://www.googleapis.com/auth/experimentsandconfigs",
    ],
    // Daily first, then prod (CLIProxyAPI antigravityBaseURLFallbackOrder).
    base_urls: &["https://daily-cloudcode-pa.googleapis.com", "https://cloudcode-pa.googleapis.com"],
    // CLIProxyAPI antigravity_version.go: newer models answer 404 below 2.9.0.
    user_agent: "antigravity/hub/2.9.1 darwin/arm64",
    envelope: Envelope::Antigravity,
    ide_type: "ANTIGRAVITY",
    drops_safety_settings: true,
    next_host_on_rate_limit: true,
};

/// Gemini CLI: Gemini models on Code Assist.
pub static GEMINI_CLI: Profile = Profile {
    name: "gemini-cli",
    // gemini-cli packages/core/src/code_assist/oauth2.ts (OAUTH_CLIENT_ID / _SECRET / OAUTH_SCOPE).
    client_id: "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
    client_secret: "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",
    scopes: &[CLOUD_PLATFORM, EMAIL, PROFILE],
    // gemini-cli code_assist/server.ts CODE_ASSIST_ENDPOINT.
    base_urls: &["https://cloudcode-pa.googleapis.com"],
    // gemini-cli contentGenerator.ts: GeminiCLI/<version>/<model> (<platform>; <arch>; <surface>).
    user_agent: "GeminiCLI/0.61.0/{model} (linux; x64; terminal)",
    envelope: Envelope::GeminiCli,
    ide_type: "IDE_UNSPECIFIED",
    drops_safety_settings: false,
    next_host_on_rate_limit: false,
};

/// Every profile, the default first.
pub static ALL: [&Profile; 2] = [&ANTIGRAVITY, &GEMINI_CLI];

/// The profile named `name`.
pub fn by_name(name: &str) -> Option<&'static Profile> {
    ALL.iter().copied().find(|p| p.name == name)
}

/// Model families only the Antigravity backend serves (Claude, and the
/// Antigravity-only Gemini ids) — for messages that say which client a
/// model needs.
pub fn needs_antigravity(model: &str) -> bool {
    model.starts_with("claude")
}
