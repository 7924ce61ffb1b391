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
//! - 2026 (see each fact's comment): consumer accounts on the daily host only
//!   (CLIProxyAPI #5209, agy's `ResolveAuthMode`); Gemini 3.8 only for
//!   Antigravity ≥ 2.11 (decolua/9router PR #3732); the phrases Google
//!   refuses in a system prompt (CLIProxyAPI #4723, #5037, #5751;
//!   router-for-me/EasyCLIProxyAPI #284; can1357/oh-my-pi #11699).

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
    /// `User-Agent` of upstream calls; `{model}` is replaced by the model,
    /// `{version}` by the client version ([`Profile::version`], or
    /// `[upstream] antigravity_version`).
    pub user_agent: &'static str,
    /// The client version the User-Agent reports by default.
    pub version: &'static str,
    /// Hosts beyond the first serve only enterprise (`gcpManaged`)
    /// accounts: a consumer account is served by the first host alone.
    pub consumer_first_host_only: bool,
    /// Model families Google lists only with a tier suffix
    /// (`gemini-3.8-flash-high`/`-medium`/`-low`), never bare.
    pub tiered_families: &'static [&'static str],
    /// The tier suffixes, Google's default first.
    pub tiers: &'static [&'static str],
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
    // CLIProxyAPI internal/misc/antigravity_version.go (the hub form; newer
    // models answer 404 below 2.9.0); 9router PR #3732 (Gemini 3.8 needs
    // 2.11); jrobertogarcia/antigravity-2-fedora-installer PR #24: 2.13.0 on
    // 2026-09-12, newer than the 2.12.2 of Antigravity-Manager #3481.
    user_agent: "antigravity/hub/{version} darwin/arm64",
    version: "2.13.0",
    envelope: Envelope::Antigravity,
    ide_type: "ANTIGRAVITY",
    drops_safety_settings: true,
    next_host_on_rate_limit: true,
    // CLIProxyAPI #5209: prod answers consumer accounts 429 RESOURCE_EXHAUSTED
    // (24 of 24); agy binds `personal_consumer` to daily with no fallback.
    consumer_first_host_only: true,
    // fetchAvailableModels, 2026-08/09 (opencode-agy-auth models.json;
    // tuxevil-rotator PR #28): `gemini-3.7-flash-{high,medium,low}`, no bare id;
    // `defaultAgentModelId` is the `-high` one.
    tiered_families: &["gemini-3.8-flash", "gemini-3.7-flash", "gemini-3.6-flash"],
    tiers: &["high", "medium", "low"],
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
    user_agent: "GeminiCLI/{version}/{model} (linux; x64; terminal)",
    version: "0.61.0",
    envelope: Envelope::GeminiCli,
    ide_type: "IDE_UNSPECIFIED",
    drops_safety_settings: false,
    next_host_on_rate_limit: false,
    consumer_first_host_only: false,
    tiered_families: &[],
    tiers: &[],
};

/// Every profile, the default first.
pub static ALL: [&Profile; 2] = [&ANTIGRAVITY, &GEMINI_CLI];

/// The profile named `name`.
pub fn by_name(name: &str) -> Option<&'static Profile> {
    ALL.iter().copied().find(|p| p.name == name)
}

/// Text Google is reported to refuse in a system prompt, answering a bare
/// `429 RESOURCE_EXHAUSTED` on every account (no ErrorInfo reason): the
/// phrase, who sends it, and what the user can change. grantpool never
/// alters a request to get past this; it names the likely cause.
pub static REFUSED_PHRASES: &[RefusedPhrase] = &[
    // CLIProxyAPI #5037 (A/B tested with Claude Code 2.1.233), PR #5049.
    RefusedPhrase {
        phrase: "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
        sender: "Claude Code in print/SDK mode (`claude -p`, the Claude Agent SDK)",
        advice: "run Claude Code interactively (its system prompt differs), or give the SDK a system prompt of your own",
    },
    // sub2api PR #7256; router-for-me/EasyCLIProxyAPI #284.
    RefusedPhrase {
        phrase: "x-anthropic-billing-header:",
        sender: "Claude Code's attribution line",
        advice: "set CLAUDE_CODE_ATTRIBUTION_HEADER=0 in Claude Code's environment",
    },
    // CLIProxyAPI #5751.
    RefusedPhrase {
        phrase: "You are Codex, an agent based on GPT-5.",
        sender: "Codex CLI's built-in instructions",
        advice: "give Codex base instructions of your own in its config.toml",
    },
    // CLIProxyAPI #4723.
    RefusedPhrase {
        phrase: "You are Hermes Agent, an intelligent AI assistant created by Nous Research.",
        sender: "Hermes Agent's system prompt",
        advice: "change the agent's system prompt",
    },
    // can1357/oh-my-pi #11699.
    RefusedPhrase { phrase: "<system-conventions>", sender: "oh-my-pi's system prompt", advice: "change the agent's system prompt" },
];

/// One phrase of [`REFUSED_PHRASES`].
#[derive(Debug)]
pub struct RefusedPhrase {
    /// The text, as the client sends it.
    pub phrase: &'static str,
    /// Which client sends it.
    pub sender: &'static str,
    /// Which of the client's settings the user can change.
    pub advice: &'static str,
}

/// Model families only the Antigravity backend serves (Claude, and the
/// Antigravity-only Gemini ids) — for messages that say which client a
/// model needs.
pub fn needs_antigravity(model: &str) -> bool {
    model.starts_with("claude")
}
