//! The OAuth clients the fake knows and the upstream profile each implies.

/// The Antigravity installed-app client id (facts §1.2:
/// CPA:internal/auth/antigravity/constants.go, AM:src-tauri/src/modules/oauth.rs).
pub const ANTIGRAVITY_CLIENT_ID: &str =
    "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com";
/// Its secret (public, same sources).
pub const ANTIGRAVITY_CLIENT_SECRET: &str = "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";
/// The Gemini CLI installed-app client id (facts §1.1:
/// GC:packages/core/src/code_assist/oauth2.ts `OAUTH_CLIENT_ID`).
pub const GEMINI_CLI_CLIENT_ID: &str =
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com";
/// Its secret (public, same source).
pub const GEMINI_CLI_CLIENT_SECRET: &str = "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";

/// The two built-in clients, known to every fake.
pub(crate) const BUILT_IN: [(&str, &str); 2] = [
    (ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET),
    (GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET),
];

/// Which upstream profile a request is held to (contract "Antigravity
/// envelope" / "Gemini CLI envelope").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Accounts of the Antigravity client.
    Antigravity,
    /// Accounts of the Gemini CLI client.
    GeminiCli,
}

/// The profile of a built-in client; `None` for any other client (the
/// profile then follows the request's shape).
pub(crate) fn profile_of_client(client_id: &str) -> Option<Profile> {
    match client_id {
        ANTIGRAVITY_CLIENT_ID => Some(Profile::Antigravity),
        GEMINI_CLI_CLIENT_ID => Some(Profile::GeminiCli),
        _ => None,
    }
}

/// Whether an access token of `client_id` may use Antigravity-only models.
pub(crate) fn is_antigravity(client_id: &str) -> bool {
    client_id == ANTIGRAVITY_CLIENT_ID
}
