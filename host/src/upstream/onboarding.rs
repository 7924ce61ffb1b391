//! An account's Code Assist project: asked with `loadCodeAssist`, and for
//! an account that never used Code Assist, made with `onboardUser` (a
//! long-running operation, polled to done within a bound).
//!
//! The flow follows gemini-cli `packages/core/src/code_assist/setup.ts`: a
//! `currentTier` means onboarded (its project is `cloudaicompanionProject`);
//! otherwise the default `allowedTiers` entry is onboarded (the free tier
//! without a project: "Setting a project in the onboardUser request causes
//! a Precondition Failed error"); an `ineligibleTiers` entry with
//! `VALIDATION_REQUIRED` and a `validationUrl` needs the user in a browser.
//! Operations are polled with `GET v1internal/<name>` (gemini-cli
//! `server.ts` `getOperation`).

use std::time::Instant;

use serde::Deserialize;
use serde_json::json;

use super::{Upstream, UpstreamCallError};
use crate::profiles::Profile;

/// Why no project could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProjectError {
    /// A call failed (network, HTTP error): judged like any upstream failure.
    #[error("{0}")]
    Call(#[from] UpstreamCallError),
    /// Google says the account cannot use Code Assist as it is: take it off
    /// the proxy with this reason (never a disable: the grant is fine).
    #[error("{code}: {message}")]
    Ineligible {
        /// Google's reason code (`VALIDATION_REQUIRED`, `INELIGIBLE_ACCOUNT`, …).
        code: String,
        /// What to tell the user, with the URL to visit when there is one.
        message: String,
    },
    /// Onboarding did not finish in time (`upstream.onboard_timeout_secs`).
    #[error("onboarding did not finish within {0}s; the next request tries again")]
    Timeout(u64),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Tier {
    #[serde(default)]
    id: String,
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    user_defined_cloudaicompanion_project: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IneligibleTier {
    #[serde(default)]
    reason_code: String,
    #[serde(default)]
    reason_message: String,
    validation_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadAnswer {
    /// `false` for a consumer account (free, Google One), `true` for an
    /// enterprise one (CLIProxyAPI #5209; agy's `ResolveAuthMode`).
    gcp_managed: Option<bool>,
    current_tier: Option<Tier>,
    #[serde(default)]
    allowed_tiers: Vec<Tier>,
    #[serde(default)]
    ineligible_tiers: Vec<IneligibleTier>,
    cloudaicompanion_project: Option<serde_json::Value>,
}

/// A project id in either of Google's shapes: a string or `{"id": …}`.
fn project_id(v: Option<&serde_json::Value>) -> Option<String> {
    let id = match v? {
        serde_json::Value::String(s) => s.clone(),
        o => o.get("id")?.as_str()?.to_string(),
    };
    (!id.is_empty()).then_some(id)
}

/// What `loadCodeAssist` says of an account: its project and tier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeAssist {
    /// The Code Assist project, when it has one.
    pub project: Option<String>,
    /// The tier id (`free-tier`, `standard-tier`, …).
    pub tier: Option<String>,
    /// Enterprise (`true`) or consumer (`false`).
    pub gcp_managed: Option<bool>,
}

/// The reason code of a retired OAuth client (gemini-cli #28846: Gemini
/// CLI's client for individual accounts since 2026-06-18).
pub const UNSUPPORTED_CLIENT: &str = "UNSUPPORTED_CLIENT";

/// What to tell the user of an account whose OAuth client Google retired.
pub fn unsupported_client_advice(profile: &str, google_says: &str) -> String {
    let said = if google_says.is_empty() { String::new() } else { format!(" Google says: \"{google_says}\"") };
    format!(
        "Google no longer serves this account through the {profile} OAuth client it was signed in with.{said} Sign it in again with Antigravity's client: `grantpool accounts login` (or `grantpool accounts import agy`); the new sign-in replaces this one"
    )
}

impl IneligibleTier {
    fn into_error(self, profile: &Profile) -> ProjectError {
        if self.reason_code == UNSUPPORTED_CLIENT {
            return ProjectError::Ineligible { message: unsupported_client_advice(profile.name, &self.reason_message), code: self.reason_code };
        }
        let message = match (&self.validation_url, self.reason_message.is_empty()) {
            (Some(url), _) => format!("Google asks to verify the account in a browser: {url} — then `grantpool accounts enable` it"),
            (None, false) => self.reason_message,
            (None, true) => "Google says the account cannot use Gemini Code Assist".into(),
        };
        ProjectError::Ineligible { code: self.reason_code, message }
    }
}

/// `error.message` of a Google error body, else the body.
fn google_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string())
}

impl Upstream {
    async fn load_code_assist(&self, profile: &Profile, token: &str, egress: Option<&str>) -> Result<LoadAnswer, ProjectError> {
        let metadata = json!({"ideType": profile.ide_type, "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"});
        let v = self.json_call(profile, "loadCodeAssist", token, &json!({ "metadata": metadata }), egress).await?;
        Ok(serde_json::from_value(v)
            .map_err(|e| UpstreamCallError::Status { status: 200, body: format!("loadCodeAssist answer not understood: {e}") })?)
    }

    /// The tier of an account that already has its project (asked once, to
    /// know which hosts may serve it). A retired OAuth client is an error
    /// (the account cannot serve); a missing project is not (it is on file).
    pub async fn account_tier(&self, profile: &Profile, token: &str, egress: Option<&str>) -> Result<CodeAssist, ProjectError> {
        let answer = self.load_code_assist(profile, token, egress).await?;
        if let Some(t) = answer.ineligible_tiers.into_iter().find(|t| t.reason_code == UNSUPPORTED_CLIENT) {
            return Err(t.into_error(profile));
        }
        Ok(CodeAssist {
            project: project_id(answer.cloudaicompanion_project.as_ref()),
            tier: answer.current_tier.map(|t| t.id).filter(|t| !t.is_empty()),
            gcp_managed: answer.gcp_managed,
        })
    }

    /// The account's project (and tier): from `loadCodeAssist`, after
    /// onboarding it when it never was.
    pub async fn discover_project(&self, profile: &Profile, token: &str, egress: Option<&str>) -> Result<CodeAssist, ProjectError> {
        let metadata = json!({"ideType": profile.ide_type, "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"});
        let answer = self.load_code_assist(profile, token, egress).await?;
        let gcp_managed = answer.gcp_managed;
        let mut ineligible = answer.ineligible_tiers;
        // A retired client first: whatever else is offered, this sign-in
        // cannot use it (the advice is to sign in again, not a project).
        if let Some(i) = ineligible.iter().position(|t| t.reason_code == UNSUPPORTED_CLIENT) {
            return Err(ineligible.swap_remove(i).into_error(profile));
        }
        if let Some(current) = answer.current_tier {
            let project = project_id(answer.cloudaicompanion_project.as_ref()).ok_or_else(|| ProjectError::Ineligible {
                code: "PROJECT_REQUIRED".into(),
                message: "the account's Code Assist tier needs a Google Cloud project: put its id in the account's token.project_id".into(),
            })?;
            return Ok(CodeAssist { project: Some(project), tier: Some(current.id).filter(|t| !t.is_empty()), gcp_managed });
        }
        if let Some(i) = ineligible.iter().position(|t| t.reason_code == "VALIDATION_REQUIRED" && t.validation_url.is_some()) {
            return Err(ineligible.swap_remove(i).into_error(profile));
        }
        let Some(tier) = answer.allowed_tiers.into_iter().find(|t| t.is_default) else {
            return Err(match ineligible.into_iter().next() {
                Some(t) => t.into_error(profile),
                None => ProjectError::Ineligible { code: "NO_TIER".into(), message: "Google offers the account no Code Assist tier".into() },
            });
        };
        if tier.user_defined_cloudaicompanion_project {
            return Err(ProjectError::Ineligible {
                code: "PROJECT_REQUIRED".into(),
                message: format!("Code Assist tier `{}` needs your own Google Cloud project: put its id in the account's token.project_id", tier.id),
            });
        }
        tracing::info!(tier = %tier.id, "the account never used Code Assist: onboarding it");
        let tier_id = tier.id.clone();
        match self.onboard(profile, token, &tier.id, metadata, egress).await {
            Ok(project) => Ok(CodeAssist { project: Some(project), tier: Some(tier_id).filter(|t| !t.is_empty()), gcp_managed }),
            // Google refuses to onboard it (the reason is its message):
            // the account's standing, not this request's fault.
            Err(ProjectError::Call(UpstreamCallError::Status { status: 400..=403, body })) => {
                let code = ineligible.into_iter().next().map(|t| t.reason_code).filter(|c| !c.is_empty()).unwrap_or_else(|| "ONBOARDING_REFUSED".into());
                Err(ProjectError::Ineligible { code, message: google_message(&body) })
            }
            Err(e) => Err(e),
        }
    }

    /// `onboardUser` for `tier` (no project: the free tier takes none), then
    /// its operation polled to done.
    async fn onboard(&self, profile: &Profile, token: &str, tier: &str, metadata: serde_json::Value, egress: Option<&str>) -> Result<String, ProjectError> {
        let started = Instant::now();
        let mut op = self.json_call(profile, "onboardUser", token, &json!({"tierId": tier, "metadata": metadata}), egress).await?;
        loop {
            if op.get("done").and_then(|d| d.as_bool()) == Some(true) {
                if let Some(err) = op.get("error") {
                    let message = err.get("message").and_then(|m| m.as_str()).unwrap_or("onboarding failed").to_string();
                    return Err(ProjectError::Ineligible { code: "ONBOARDING_FAILED".into(), message });
                }
                return project_id(op.get("response").and_then(|r| r.get("cloudaicompanionProject"))).ok_or_else(|| {
                    ProjectError::Ineligible { code: "ONBOARDING_FAILED".into(), message: "onboarding finished without a project".into() }
                });
            }
            if started.elapsed() >= self.onboard_timeout {
                return Err(ProjectError::Timeout(self.onboard_timeout.as_secs()));
            }
            tokio::time::sleep(self.onboard_poll).await;
            op = match op.get("name").and_then(|n| n.as_str()) {
                Some(name) => self.json_request(profile, reqwest::Method::GET, &format!("/v1internal/{name}"), token, None, egress).await?,
                // No operation name: ask again (onboardUser is idempotent).
                None => self.json_call(profile, "onboardUser", token, &json!({"tierId": tier, "metadata": metadata}), egress).await?,
            };
        }
    }
}
