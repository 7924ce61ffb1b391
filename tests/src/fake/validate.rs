//! Every check of a `generateContent` / `streamGenerateContent` body, in
//! the order the fake applies them (after authentication):
//!
//! 1. the body is a JSON object; JSON → proto parsing ([`proto`]): unknown
//!    fields anywhere, values of the wrong shape, tool-schema keys and
//!    types, `parametersJsonSchema` for Claude — always on;
//! 2. `model` and `request` are present;
//! 3. the profile's envelope and User-Agent ([`envelope`]) — only with
//!    `strict_envelope`;
//! 4. the project (contract "Project") — always on;
//! 5. model access: Antigravity-only models for the Antigravity client with
//!    a ≥ 2.9.0 `antigravity/` User-Agent, else 404 — always on;
//! 6. image output only from image models, and their calls `image_gen`
//!    ones ([`images`](super::images)) — always on; then tool-schema
//!    semantics ([`schema_check`]) — always on;
//! 7. Claude's generation limits ([`envelope::claude_violation`]) — only
//!    with `strict_envelope`;
//! 8. thought signatures and Claude tool ids ([`signatures`]) — always on.

use axum::response::Response;
use serde_json::Value;

use super::catalogue;
use super::envelope::{self, ClaudeViolation};
use super::errors::{
    answer, anthropic_error_body, google_status_body, missing_project_body, not_found_body,
    parse_error_body, permission_denied_project_body,
};
use super::proto::{self, field};
use super::schema_check;
use super::signatures;
use super::state::Inner;

/// The call being checked.
pub(crate) struct Call<'a> {
    pub(crate) body: &'a Value,
    pub(crate) email: &'a str,
    /// The OAuth client the access token was issued to.
    pub(crate) client_id: &'a str,
    pub(crate) user_agent: Option<&'a str>,
}

/// A call that passed.
pub(crate) struct Checked {
    pub(crate) model: String,
    pub(crate) project: String,
}

fn invalid(message: &str) -> Response {
    answer(400, &google_status_body(400, "INVALID_ARGUMENT", message))
}

/// Runs every check; `Err` is Google's answer.
pub(crate) fn check(inner: &Inner, call: &Call<'_>) -> Result<Checked, Response> {
    let body = call.body;
    if !body.is_object() {
        // protobuf's JSON parser on a non-object root.
        return Err(invalid(
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message.",
        ));
    }
    let model_hint = body.get("model").and_then(Value::as_str).unwrap_or("");
    let violations = proto::parse_errors(body, model_hint);
    if !violations.is_empty() {
        return Err(answer(400, &parse_error_body(&violations)));
    }
    let Some(model) = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return Err(invalid("Invalid request: model is required."));
    };
    let Some(request) = body.get("request").filter(|r| r.is_object()) else {
        return Err(invalid("Invalid request: request is required."));
    };
    let strict = inner.settings.strict_envelope;
    if strict {
        let profile = envelope::profile_for(call.client_id, body, call.user_agent);
        if let Some(msg) = envelope::envelope_violation(profile, body, call.user_agent) {
            return Err(invalid(&msg));
        }
    }
    let project = field(body, "project").and_then(Value::as_str).unwrap_or("");
    if project.is_empty() {
        return Err(answer(400, &missing_project_body()));
    }
    let own = inner
        .accounts
        .get(call.email)
        .and_then(|a| a.current_project());
    if own != Some(project) {
        return Err(answer(403, &permission_denied_project_body(project)));
    }
    if !envelope::may_use_model(model, call.client_id, call.user_agent) {
        return Err(answer(404, &not_found_body()));
    }
    if let Some(msg) = super::images::violation(model, body) {
        return Err(invalid(&msg));
    }
    let claude = catalogue::is_claude(model);
    let lines = schema_check::request_lines(request, claude);
    if !lines.is_empty() {
        return Err(invalid(&lines));
    }
    if strict && claude {
        match envelope::claude_violation(model, request) {
            Some(ClaudeViolation::Google(msg)) => return Err(invalid(&msg)),
            Some(ClaudeViolation::Anthropic(msg)) => {
                return Err(answer(400, &anthropic_error_body(&msg)))
            }
            None => {}
        }
    }
    let empty = Vec::new();
    let contents = field(request, "contents")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if catalogue::is_gemini3(model) {
        if let Some(msg) = signatures::gemini3_violation(contents, &inner.signatures) {
            return Err(invalid(&msg));
        }
    }
    if claude {
        match signatures::claude_violation(contents, &inner.signatures) {
            Some(signatures::ClaudeRefusal::Google(msg)) => return Err(invalid(&msg)),
            Some(signatures::ClaudeRefusal::Anthropic(msg)) => {
                return Err(answer(400, &anthropic_error_body(&msg)))
            }
            None => {}
        }
    }
    Ok(Checked {
        model: model.to_owned(),
        project: project.to_owned(),
    })
}
