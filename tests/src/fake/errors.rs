//! Google's error bodies, literal. Every body here names its public source
//! (the notes' `issue12-facts.md` section and the issue or file it quotes).
//!
//! All share one envelope:
//! `{"error":{"code","message","status","details":[{"@type":…}]}}` (facts §5).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::time::{go_duration_from_nanos, parse_go_duration, rfc3339, seconds_duration, unix_now};

/// The `domain` of Cloud Code's ErrorInfo (facts §5, GC:utils/googleQuotaErrors.ts `CLOUDCODE_DOMAINS`).
pub const CLOUDCODE_DOMAIN: &str = "cloudcode-pa.googleapis.com";

/// `@type` of google.rpc.ErrorInfo.
pub const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
/// `@type` of google.rpc.RetryInfo.
pub const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
/// `@type` of google.rpc.Help.
pub const HELP: &str = "type.googleapis.com/google.rpc.Help";
/// `@type` of google.rpc.BadRequest.
pub const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";
/// `@type` of google.rpc.LocalizedMessage.
pub const LOCALIZED_MESSAGE: &str = "type.googleapis.com/google.rpc.LocalizedMessage";

/// The 401 message for a bad access token (facts §5.6, real body in
/// badrisnarayanan/antigravity-claude-proxy#32).
pub const UNAUTHENTICATED_MESSAGE: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// The 404 message for a model the client may not use (facts §5.9: CPA
/// commit a834917e8; the literal body is unverified, the contract fixes it).
pub const NOT_FOUND_MESSAGE: &str = "Requested entity was not found.";

/// The default validation URL of a VALIDATION_REQUIRED answer (the shape of
/// the real one in lbjlaq/Antigravity-Manager#2362, with a fake `plt`).
pub const DEFAULT_VALIDATION_URL: &str = "https://accounts.google.com/signin/continue?sarp=1&scc=1&continue=https://developers.google.com/gemini-code-assist/auth/auth_success_gemini&plt=fake&flowName=GlifWebSignIn&authuser";

/// The learn-more link of VALIDATION_REQUIRED (facts §5.4).
pub const VALIDATION_LEARN_MORE_URL: &str = "https://support.google.com/accounts?p=al_alert";

/// Google's canonical status name for an HTTP status.
pub(crate) fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if code >= 500 => "INTERNAL",
        _ => "UNKNOWN",
    }
}

/// An answer with `body`, typed JSON when it parses as JSON, else text.
pub(crate) fn json_answer(code: u16, body: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ctype = if serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok() {
        "application/json; charset=UTF-8"
    } else {
        "text/plain; charset=UTF-8"
    };
    (status, [(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// `{"error":{"code":..,"message":..,"status":..}}` with the status named
/// after the HTTP code.
pub(crate) fn google_error_body(code: u16, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status_name(code)}})
}

/// `{"error":{"code","message","status"}}` with an explicit status.
pub(crate) fn google_status_body(code: u16, status: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "status": status}})
}

/// An answer with Google's error shape.
pub(crate) fn google_error(code: u16, message: &str) -> Response {
    json_answer(code, google_error_body(code, message).to_string())
}

/// An answer of `body`.
pub(crate) fn answer(code: u16, body: &Value) -> Response {
    json_answer(code, body.to_string())
}

/// The 401 `v1internal` gives for a bad access token (facts §5.6).
pub fn unauthenticated_body() -> Value {
    google_error_body(401, UNAUTHENTICATED_MESSAGE)
}

/// [`unauthenticated_body`] as an answer.
pub(crate) fn unauthenticated() -> Response {
    answer(401, &unauthenticated_body())
}

/// The 404 for a model this client may not use (contract "Antigravity envelope").
pub fn not_found_body() -> Value {
    google_error_body(404, NOT_FOUND_MESSAGE)
}

/// An OAuth token-endpoint error: `{"error":..,"error_description":..}`
/// (facts §7).
pub(crate) fn oauth_error(code: u16, error: &str, description: &str) -> Response {
    json_answer(
        code,
        json!({"error": error, "error_description": description}).to_string(),
    )
}

/// A 400 INVALID_ARGUMENT from JSON → proto parsing: one line per
/// violation in `message` (joined by `\n`) and one `BadRequest`
/// fieldViolation each (facts §5.7: openclaw/openclaw#22222,
/// smallmain/vscode-unify-chat-provider#97).
pub fn parse_error_body(violations: &[(String, String)]) -> Value {
    let message = violations
        .iter()
        .map(|(_, d)| d.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let field_violations: Vec<Value> = violations
        .iter()
        .map(|(field, description)| {
            if field.is_empty() {
                json!({ "description": description })
            } else {
                json!({ "field": field, "description": description })
            }
        })
        .collect();
    json!({"error": {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": BAD_REQUEST, "fieldViolations": field_violations}],
    }})
}

/// `Invalid JSON payload received. Unknown name "<field>" at '<path>': Cannot find field.`
/// (the top-level form has no ` at ''`) (facts §5.7, openclaw/openclaw#22222).
pub fn unknown_name(field: &str, path: &str) -> String {
    if path.is_empty() {
        format!("Invalid JSON payload received. Unknown name \"{field}\": Cannot find field.")
    } else {
        format!(
            "Invalid JSON payload received. Unknown name \"{field}\" at '{path}': Cannot find field."
        )
    }
}

/// `Invalid value at '<path>' (<type>), <value>` (facts §5.7,
/// smallmain/vscode-unify-chat-provider#97).
pub fn invalid_value(path: &str, type_name: &str, value: &Value) -> String {
    format!("Invalid value at '{path}' ({type_name}), {value}")
}

/// A 400 whose message is Anthropic's error as a JSON string, as Claude on
/// Antigravity answers (facts §5.8: lbjlaq/Antigravity-Manager#276).
pub fn anthropic_error_body(message: &str) -> Value {
    let inner =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}});
    google_status_body(400, "INVALID_ARGUMENT", &inner.to_string())
}

/// Google's 429 as earlier versions of the fake gave it: `RetryInfo` first
/// (`retryDelay`), then `ErrorInfo` (`reason`, `metadata.quotaResetDelay`).
/// Kept for [`FaultKind::RateLimit`](super::FaultKind::RateLimit) and the
/// `/_fake/quota` exhaustion; the literal Google bodies are
/// [`rate_limit_exceeded_body`] and [`quota_exhausted_body`].
pub fn rate_limit_body(retry_delay: &str, reason: &str) -> Value {
    json!({"error": {
        "code": 429,
        "message": "Resource has been exhausted",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": RETRY_INFO, "retryDelay": retry_delay},
            {"@type": ERROR_INFO, "reason": reason,
             "domain": CLOUDCODE_DOMAIN,
             "metadata": {"quotaResetDelay": retry_delay}}
        ]
    }})
}

/// Nanoseconds of a Go duration, or 1.5 s when it does not parse.
fn delay_nanos(delay: &str) -> u128 {
    parse_go_duration(delay).unwrap_or(1_500_000_000)
}

/// `Your quota will reset after <whole seconds as a Go duration>.`
fn reset_after(nanos: u128) -> String {
    go_duration_from_nanos(nanos / 1_000_000_000 * 1_000_000_000)
}

/// The reset time stamp `delay` from now.
fn reset_stamp(nanos: u128) -> String {
    let secs = (nanos / 1_000_000_000).min(i64::MAX as u128 / 2) as i64;
    rfc3339(unix_now() + secs)
}

/// 429 RATE_LIMIT_EXCEEDED, literal (facts §5.1:
/// CPA:internal/runtime/executor/antigravity_executor_credits_test.go, same
/// shape in GC:utils/googleQuotaErrors.test.ts). `quota_reset_delay` is a
/// Go duration, e.g. `479.417207ms`; RetryInfo names it in seconds.
pub fn rate_limit_exceeded_body(model: &str, quota_reset_delay: &str) -> Value {
    let nanos = delay_nanos(quota_reset_delay);
    json!({"error": {
        "code": 429,
        "message": format!("You have exhausted your capacity on this model. Your quota will reset after {}.", reset_after(nanos)),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": ERROR_INFO, "reason": "RATE_LIMIT_EXCEEDED", "domain": CLOUDCODE_DOMAIN,
             "metadata": {"model": model, "quotaResetDelay": quota_reset_delay,
                          "quotaResetTimeStamp": reset_stamp(nanos), "uiMessage": "true"}},
            {"@type": RETRY_INFO, "retryDelay": seconds_duration(nanos)}
        ]
    }})
}

/// 429 QUOTA_EXHAUSTED, literal (facts §5.2: liuw1535/antigravity2api-nodejs#44,
/// decolua/9router#789). `quota_reset_delay` in either form Google uses:
/// a Go duration (`161h39m41.300432511s`) or plain seconds (`33740.9s`,
/// google-gemini/gemini-cli#29425); RetryInfo always in seconds.
pub fn quota_exhausted_body(model: &str, quota_reset_delay: &str) -> Value {
    let nanos = delay_nanos(quota_reset_delay);
    json!({"error": {
        "code": 429,
        "message": format!("You have exhausted your capacity on this model. Your quota will reset after {}.", reset_after(nanos)),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": ERROR_INFO, "reason": "QUOTA_EXHAUSTED", "domain": CLOUDCODE_DOMAIN,
             "metadata": {"uiMessage": "true", "model": model, "quotaResetDelay": quota_reset_delay,
                          "quotaResetTimeStamp": reset_stamp(nanos)}},
            {"@type": RETRY_INFO, "retryDelay": seconds_duration(nanos)}
        ]
    }})
}

/// 503 MODEL_CAPACITY_EXHAUSTED, literal (facts §5.3:
/// CPA:antigravity_executor_credits_test.go `TestAntigravityShouldRetryNoCapacity_Standard503`).
/// `code` may be 429 too (GC fixtures).
pub fn model_capacity_exhausted_body(code: u16, model: &str) -> Value {
    let status = if code == 429 {
        "RESOURCE_EXHAUSTED"
    } else {
        "UNAVAILABLE"
    };
    json!({"error": {
        "code": code,
        "message": format!("No capacity available for model {model} on the server"),
        "status": status,
        "details": [
            {"@type": ERROR_INFO, "reason": "MODEL_CAPACITY_EXHAUSTED", "domain": CLOUDCODE_DOMAIN,
             "metadata": {"model": model}}
        ]
    }})
}

/// 403 VALIDATION_REQUIRED, literal (facts §5.4: lbjlaq/Antigravity-Manager#2362,
/// router-for-me/CLIProxyAPI#1447): metadata `validation_url` and Help links.
pub fn validation_required_body(validation_url: &str) -> Value {
    json!({"error": {
        "code": 403,
        "message": "Verify your account to continue.",
        "status": "PERMISSION_DENIED",
        "details": [
            {"@type": ERROR_INFO, "reason": "VALIDATION_REQUIRED", "domain": CLOUDCODE_DOMAIN,
             "metadata": {
                "validation_error_message": "Verify your account to continue.",
                "validation_url_link_text": "Verify your account",
                "validation_url": validation_url,
                "validation_learn_more_link_text": "Learn more",
                "validation_learn_more_url": VALIDATION_LEARN_MORE_URL}},
            {"@type": HELP, "links": [
                {"description": "Verify your account", "url": validation_url},
                {"description": "Learn more", "url": VALIDATION_LEARN_MORE_URL}]}
        ]
    }})
}

/// 403 SERVICE_DISABLED, literal (facts §5.5: lbjlaq/Antigravity-Manager#3074):
/// domain `googleapis.com`, metadata `activationUrl`.
pub fn service_disabled_body(project: &str) -> Value {
    let activation = format!(
        "https://console.developers.google.com/apis/api/cloudcode-pa.googleapis.com/overview?project={project}"
    );
    let message = format!(
        "Cloud Code Private API has not been used in project {project} before or it is disabled. Enable it by visiting {activation} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry."
    );
    json!({"error": {
        "code": 403,
        "message": message,
        "status": "PERMISSION_DENIED",
        "details": [
            {"@type": ERROR_INFO, "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
             "metadata": {"activationUrl": activation, "serviceTitle": "Cloud Code Private API",
                          "service": "cloudcode-pa.googleapis.com",
                          "consumer": format!("projects/{project}"), "containerInfo": project}},
            {"@type": LOCALIZED_MESSAGE, "locale": "en-US", "message": message}
        ]
    }})
}

/// Google's bare 429: no ErrorInfo, no RetryInfo (GOOGLE-2026 §4). Seen
/// on the prod host for consumer accounts (router-for-me/CLIProxyAPI#5209,
/// #4749) and for fingerprinted system-instruction text (CLIProxyAPI#4723,
/// #5751, #5037; router-for-me/EasyCLIProxyAPI#284; can1357/oh-my-pi#11699);
/// the literal body as in CLIProxyAPI#5891 and
/// badrisnarayanan/antigravity-claude-proxy#375.
pub const BARE_429_BODY: &str = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;

/// [`BARE_429_BODY`] as a `String`.
pub fn bare_429_body() -> String {
    BARE_429_BODY.to_owned()
}

/// 403 TOS_VIOLATION, literal (router-for-me/CLIProxyAPI#1823; the message
/// also in decolua/9router#365, google-gemini/gemini-cli#25795).
pub const TOS_VIOLATION_BODY: &str = r#"{"error":{"code":403,"message":"This service has been disabled in this account for violation of Terms of Service. Please submit an appeal to continue using this product.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"TOS_VIOLATION","domain":"cloudcode-pa.googleapis.com","metadata":{"uiMessage":"true","appeal_url_link_text":"Submit Appeal","appeal_url":"https://forms.gle/hGzM9MEUv2azZsrb9"}}]}}"#;

/// [`TOS_VIOLATION_BODY`] as a `String`.
pub fn tos_violation_body() -> String {
    TOS_VIOLATION_BODY.to_owned()
}

/// The 2026 licence message (#3501), literal: AvenCores/open-antigravity-patcher#106,
/// #117, #132 (2026-08/09), googlecodelabs/feedback#2157 (2026-06).
pub const LICENSE_REQUIRED_MESSAGE: &str = "You do not have a valid license of this product. Please contact your administrator to request a license. If you are not an enterprise user and believe you are receiving this message as an error, please try using the latest version and logging in again. (#3501)";

/// 403 SUBSCRIPTION_REQUIRED, the 2026-08 form: ErrorInfo domain
/// `cloudaicompanion.googleapis.com`, metadata `error_number` 1001 and
/// `uiMessage` (AvenCores/open-antigravity-patcher#124, 2026-08-25), then
/// Help's request-license link (same capture; lbjlaq/Antigravity-Manager#1463
/// for the older form). Google printed the fields in another order there;
/// the fake keeps its usual `code, message, status, details`.
pub fn license_required_body() -> Value {
    json!({"error": {
        "code": 403,
        "message": LICENSE_REQUIRED_MESSAGE,
        "status": "PERMISSION_DENIED",
        "details": [
            {"@type": ERROR_INFO, "reason": "SUBSCRIPTION_REQUIRED",
             "domain": "cloudaicompanion.googleapis.com",
             "metadata": {"error_number": "1001", "uiMessage": "true"}},
            {"@type": HELP, "links": [{"description": "Learn more",
             "url": "https://cloud.google.com/gemini/docs/codeassist/request-license"}]}
        ]
    }})
}

/// The plain-text 200 an old Antigravity version gets (router-for-me/CLIProxyAPI#4144:
/// the prod fallback answered it as HTTP 200 `text/plain`; also
/// Wei-Shaw/sub2api#1453).
pub const UNSUPPORTED_VERSION_TEXT: &str =
    "This version of Antigravity is no longer supported. Please upgrade to receive the latest features.";

/// `reasonMessage` of UNSUPPORTED_CLIENT (google-gemini/gemini-cli#28846;
/// Digital-Process-Tools/claude-remember#532; simonlin1212/Vibe-Research#6).
pub const UNSUPPORTED_CLIENT_MESSAGE: &str = "This client is no longer supported for Gemini Code Assist for individuals. To continue using Gemini, please migrate to the Antigravity suite of products: https://antigravity.google";

/// 403 PERMISSION_DENIED for generate with an UNSUPPORTED_CLIENT account
/// (the status on generate is not public, GOOGLE-2026 §4; the fake's choice).
pub fn unsupported_client_body() -> Value {
    google_status_body(403, "PERMISSION_DENIED", UNSUPPORTED_CLIENT_MESSAGE)
}

/// `108h48m29s`: whole seconds as a Go duration.
fn whole_go_duration(secs: u64) -> String {
    go_duration_from_nanos(u128::from(secs) * 1_000_000_000)
}

/// 429 weekly (individual) quota exhaustion, literal (router-for-me/CLIProxyAPI#3655;
/// the message also in googlecodelabs/feedback#2095, #2096 and agy logs):
/// `Individual quota reached. Contact your administrator to enable
/// overages. Resets in 108h48m29s.`, ErrorInfo QUOTA_EXHAUSTED with
/// metadata `uiMessage, model, quotaResetDelay, quotaResetTimeStamp`, then
/// RetryInfo in seconds.
pub fn weekly_quota_body(reset_secs: u64, model: &str) -> String {
    let delay = whole_go_duration(reset_secs);
    // At most ten years ahead, so the time stamp stays a date.
    let secs = i64::try_from(reset_secs.min(315_360_000)).unwrap_or(0);
    json!({"error": {
        "code": 429,
        "message": format!("Individual quota reached. Contact your administrator to enable overages. Resets in {delay}."),
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": ERROR_INFO, "reason": "QUOTA_EXHAUSTED", "domain": CLOUDCODE_DOMAIN,
             "metadata": {"uiMessage": "true", "model": model, "quotaResetDelay": delay,
                          "quotaResetTimeStamp": rfc3339(unix_now().saturating_add(secs))}},
            {"@type": RETRY_INFO, "retryDelay": format!("{reset_secs}s")}
        ]
    }})
    .to_string()
}

/// 400 without a project: `Invalid project resource name projects/` (contract "Project").
pub fn missing_project_body() -> Value {
    google_status_body(
        400,
        "INVALID_ARGUMENT",
        "Invalid project resource name projects/",
    )
}

/// 403 for another account's project (contract "Project").
pub fn permission_denied_project_body(project: &str) -> Value {
    google_status_body(
        403,
        "PERMISSION_DENIED",
        &format!("Permission denied on resource project {project}."),
    )
}

/// 400 FAILED_PRECONDITION (GC:code_assist/setup.ts: "Setting a project in
/// the onboardUser request causes a Precondition Failed error").
pub fn failed_precondition_body(message: &str) -> Value {
    google_status_body(400, "FAILED_PRECONDITION", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_bodies() {
        assert_eq!(
            unauthenticated_body().to_string(),
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED"}}"#
        );
        assert_eq!(
            not_found_body().to_string(),
            r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND"}}"#
        );
        assert_eq!(
            unknown_name("patternProperties", "request.tools[0].function_declarations[3].parameters.properties[2].value"),
            "Invalid JSON payload received. Unknown name \"patternProperties\" at 'request.tools[0].function_declarations[3].parameters.properties[2].value': Cannot find field."
        );
        assert_eq!(
            unknown_name("foo", ""),
            "Invalid JSON payload received. Unknown name \"foo\": Cannot find field."
        );
        assert_eq!(
            anthropic_error_body("messages.1.content.0: Invalid `signature` in `thinking` block")
                ["error"]["message"],
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0: Invalid `signature` in `thinking` block"}}"#
        );
    }

    #[test]
    fn rate_limit_exceeded_is_googles() {
        let b = rate_limit_exceeded_body("claude-opus-4-6-thinking", "479.417207ms");
        let e = &b["error"];
        assert_eq!(e["code"], 429);
        assert_eq!(e["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(
            e["message"],
            "You have exhausted your capacity on this model. Your quota will reset after 0s."
        );
        assert_eq!(e["details"][0]["@type"], ERROR_INFO);
        assert_eq!(e["details"][0]["reason"], "RATE_LIMIT_EXCEEDED");
        assert_eq!(e["details"][0]["domain"], "cloudcode-pa.googleapis.com");
        let md = &e["details"][0]["metadata"];
        assert_eq!(md["model"], "claude-opus-4-6-thinking");
        assert_eq!(md["quotaResetDelay"], "479.417207ms");
        assert_eq!(md["uiMessage"], "true");
        assert!(md["quotaResetTimeStamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(e["details"][1]["@type"], RETRY_INFO);
        assert_eq!(e["details"][1]["retryDelay"], "0.479417207s");
    }

    #[test]
    fn quota_exhausted_both_forms_and_long_resets() {
        let b = quota_exhausted_body("claude-sonnet-4-5", "161h39m41.300432511s");
        let e = &b["error"];
        assert_eq!(
            e["message"],
            "You have exhausted your capacity on this model. Your quota will reset after 161h39m41s."
        );
        assert_eq!(e["details"][0]["reason"], "QUOTA_EXHAUSTED");
        assert_eq!(
            e["details"][0]["metadata"]["quotaResetDelay"],
            "161h39m41.300432511s"
        );
        assert_eq!(e["details"][1]["retryDelay"], "581981.300432511s");
        let b = quota_exhausted_body("gemini-2.5-pro", "33740.9s");
        assert_eq!(
            b["error"]["details"][0]["metadata"]["quotaResetDelay"],
            "33740.9s"
        );
        assert_eq!(b["error"]["details"][1]["retryDelay"], "33740.9s");
        assert_eq!(
            b["error"]["message"],
            "You have exhausted your capacity on this model. Your quota will reset after 9h22m20s."
        );
        // A 166-hour reset (longer than a week of 24h days minus two).
        let b = quota_exhausted_body("gemini-2.5-pro", "166h0m0s");
        assert_eq!(b["error"]["details"][1]["retryDelay"], "597600s");
        let stamp = b["error"]["details"][0]["metadata"]["quotaResetTimeStamp"]
            .as_str()
            .unwrap();
        let t = super::super::time::parse_rfc3339(stamp).unwrap();
        assert!((t - unix_now() - 597_600).abs() <= 2, "{stamp}");
    }

    #[test]
    fn bodies_of_2026() {
        assert_eq!(
            bare_429_body(),
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#
        );
        let v: Value = serde_json::from_str(TOS_VIOLATION_BODY).unwrap();
        assert_eq!(
            v.to_string(),
            TOS_VIOLATION_BODY,
            "valid JSON, Google's order"
        );
        assert_eq!(v["error"]["details"][0]["reason"], "TOS_VIOLATION");
        let b = weekly_quota_body(391_709, "gemini-3.7-flash-high");
        let v: Value = serde_json::from_str(&b).unwrap();
        let e = &v["error"];
        assert_eq!(
            (e["code"].as_u64(), e["status"].as_str()),
            (Some(429), Some("RESOURCE_EXHAUSTED"))
        );
        assert_eq!(
            e["message"],
            "Individual quota reached. Contact your administrator to enable overages. Resets in 108h48m29s."
        );
        assert_eq!(e["details"][0]["@type"], ERROR_INFO);
        assert_eq!(e["details"][0]["reason"], "QUOTA_EXHAUSTED");
        let md = &e["details"][0]["metadata"];
        assert_eq!(md["uiMessage"], "true");
        assert_eq!(md["model"], "gemini-3.7-flash-high");
        assert_eq!(md["quotaResetDelay"], "108h48m29s");
        let stamp = md["quotaResetTimeStamp"].as_str().unwrap();
        let t = super::super::time::parse_rfc3339(stamp).unwrap();
        assert!((t - unix_now() - 391_709).abs() <= 2, "{stamp}");
        assert_eq!(e["details"][1]["@type"], RETRY_INFO);
        assert_eq!(e["details"][1]["retryDelay"], "391709s");
        assert!(weekly_quota_body(0, "m").contains("Resets in 0s."));
        assert!(weekly_quota_body(u64::MAX, "m").contains("quotaResetTimeStamp"));
        let b = license_required_body();
        assert_eq!(b["error"]["code"], 403);
        assert_eq!(b["error"]["message"], LICENSE_REQUIRED_MESSAGE);
        assert_eq!(b["error"]["details"][1]["@type"], HELP);
        assert_eq!(
            unsupported_client_body()["error"]["message"],
            UNSUPPORTED_CLIENT_MESSAGE
        );
    }

    #[test]
    fn capacity_validation_service_disabled() {
        let b = model_capacity_exhausted_body(503, "gemini-3.1-flash-image");
        assert_eq!(
            b.to_string(),
            r#"{"error":{"code":503,"message":"No capacity available for model gemini-3.1-flash-image on the server","status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_CAPACITY_EXHAUSTED","domain":"cloudcode-pa.googleapis.com","metadata":{"model":"gemini-3.1-flash-image"}}]}}"#
        );
        let b = validation_required_body("https://v.example/x");
        let e = &b["error"];
        assert_eq!(
            (e["code"].as_u64(), e["status"].as_str()),
            (Some(403), Some("PERMISSION_DENIED"))
        );
        assert_eq!(e["message"], "Verify your account to continue.");
        assert_eq!(e["details"][0]["reason"], "VALIDATION_REQUIRED");
        assert_eq!(
            e["details"][0]["metadata"]["validation_url"],
            "https://v.example/x"
        );
        assert_eq!(e["details"][1]["@type"], HELP);
        assert_eq!(e["details"][1]["links"][0]["url"], "https://v.example/x");
        assert_eq!(e["details"][1]["links"][1]["description"], "Learn more");
        let b = service_disabled_body("p-1");
        let e = &b["error"];
        assert!(e["message"].as_str().unwrap().starts_with(
            "Cloud Code Private API has not been used in project p-1 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/cloudcode-pa.googleapis.com/overview?project=p-1 then retry."
        ));
        assert_eq!(e["details"][0]["domain"], "googleapis.com");
        assert_eq!(e["details"][0]["metadata"]["consumer"], "projects/p-1");
        assert_eq!(e["details"][1]["@type"], LOCALIZED_MESSAGE);
    }
}
