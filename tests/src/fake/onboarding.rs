//! `loadCodeAssist`, `onboardUser` and its long-running operation
//! (`GET v1internal/operations/<id>`), per account state (contract
//! "loadCodeAssist / onboardUser / operations").
//!
//! Sources (facts §3): GC:code_assist/types.ts (`LoadCodeAssistResponse`,
//! tiers, `IneligibleTier`), GC:code_assist/setup.ts (the flow; "Setting a
//! project in the onboardUser request causes a Precondition Failed error";
//! polling `GET {base}/v1internal/{name}`), CPA auth.go `OnboardUser`
//! (re-POSTing onboardUser until `done`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use serde_json::{json, Value};

use super::errors::{
    answer, failed_precondition_body, google_status_body, json_answer, missing_project_body,
    not_found_body, DEFAULT_VALIDATION_URL, UNSUPPORTED_CLIENT_MESSAGE,
};
use super::fast;
use super::proto::field;
use super::server::{ConnHandle, HostLabel};
use super::state::{random_hex, Inner, Operation, Setup, Shared, UNSUPPORTED_CLIENT};
use super::types::{Endpoint, IneligibleSpec};
use super::v1internal::{noted, small_body, small_call};

/// `@type` of the done operation's response.
const ONBOARD_RESPONSE_TYPE: &str =
    "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse";

const FREE_TIER_NAME: &str = "Gemini Code Assist for individuals";

/// The fast-mode onboarding answer.
const FAST_ONBOARD: &str = r#"{"name":"operations/fast","done":true,"response":{"@type":"type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse","cloudaicompanionProject":{"id":"fake-project-fast","name":"fake-project-fast"}}}"#;

fn free_tier(default: bool) -> Value {
    json!({"id": "free-tier", "name": FREE_TIER_NAME,
           "description": "Gemini Code Assist for individuals, at no cost.",
           "userDefinedCloudaicompanionProject": false, "isDefault": default})
}

fn standard_tier() -> Value {
    json!({"id": "standard-tier", "name": "Gemini Code Assist",
           "description": "Gemini Code Assist for teams, in your Google Cloud project.",
           "userDefinedCloudaicompanionProject": true})
}

/// The default `reasonMessage` of a reason code (the fake's wording).
fn default_reason_message(code: &str) -> &'static str {
    match code {
        "VALIDATION_REQUIRED" => "Verify your account to continue.",
        "UNSUPPORTED_LOCATION" => "Your current account is not eligible for Gemini Code Assist for individuals because it is not currently available in your location.",
        UNSUPPORTED_CLIENT => UNSUPPORTED_CLIENT_MESSAGE,
        _ => "Your current account is not eligible for Gemini Code Assist for individuals.",
    }
}

fn reason_message(why: &IneligibleSpec) -> String {
    why.reason_message
        .clone()
        .unwrap_or_else(|| default_reason_message(&why.reason_code).to_owned())
}

/// `ineligibleTiers[0]` for `why`.
fn ineligible_tier(why: &IneligibleSpec) -> Value {
    let mut t = json!({"reasonCode": why.reason_code, "reasonMessage": reason_message(why),
                       "tierId": "free-tier", "tierName": FREE_TIER_NAME});
    let url = why.validation_url.clone().or_else(|| {
        (why.reason_code == "VALIDATION_REQUIRED").then(|| DEFAULT_VALIDATION_URL.to_owned())
    });
    if let Some(url) = url {
        t["validationUrl"] = json!(url);
        t["validationUrlLinkText"] = json!(why
            .validation_url_link_text
            .clone()
            .unwrap_or_else(|| "Verify your account".to_owned()));
    }
    t
}

/// The `loadCodeAssist` answer for `email`.
#[cfg(test)]
fn load_answer(inner: &mut Inner, email: &str) -> Value {
    load_answer_for(inner, email, None)
}

/// The `loadCodeAssist` answer for `email` calling with a token of
/// `token_client`. `gcpManaged` tells an enterprise account from a
/// consumer one (agy's `ResolveAuthMode`, router-for-me/CLIProxyAPI#5209);
/// an enterprise account's tier is `standard-tier`. An `UNSUPPORTED_CLIENT`
/// account gets only `ineligibleTiers` (google-gemini/gemini-cli#28846).
fn load_answer_for(inner: &mut Inner, email: &str, token_client: Option<&str>) -> Value {
    let unsupported = inner.unsupported_client(email, token_client);
    let acc = inner.account_or_default(email);
    let managed = acc.enterprise;
    let mut v = if unsupported {
        let why = match &acc.setup {
            Setup::Ineligible(why) if why.reason_code == UNSUPPORTED_CLIENT => why.clone(),
            _ => IneligibleSpec::new(UNSUPPORTED_CLIENT),
        };
        json!({"ineligibleTiers": [ineligible_tier(&why)]})
    } else {
        match &acc.setup {
            Setup::Onboarded => json!({
                "currentTier": if managed { standard_tier() } else { free_tier(true) },
                "allowedTiers": [free_tier(true), standard_tier()],
                "cloudaicompanionProject": acc.project_id,
            }),
            Setup::NeverOnboarded | Setup::Onboarding { .. } => json!({
                "allowedTiers": [free_tier(true), standard_tier()],
            }),
            Setup::Ineligible(why) => json!({
                "allowedTiers": [free_tier(true), standard_tier()],
                "ineligibleTiers": [ineligible_tier(why)],
            }),
        }
    };
    v["gcpManaged"] = json!(managed);
    v
}

/// The answer for operation `name` of `email` after one more poll.
fn poll(inner: &mut Inner, name: &str, email: &str) -> Option<Value> {
    let op = inner
        .operations
        .get_mut(name)
        .filter(|op| op.email == email)?;
    op.polls = op.polls.saturating_add(1);
    let done = op.polls >= op.needed;
    Some(if done {
        done_answer(inner, name, email)
    } else {
        json!({"name": name, "done": false})
    })
}

/// Marks `email` onboarded; the done operation `name`.
fn done_answer(inner: &mut Inner, name: &str, email: &str) -> Value {
    let acc = inner.account_or_default(email);
    acc.setup = Setup::Onboarded;
    let p = acc.project_id.clone();
    json!({"name": name, "done": true,
           "response": {"@type": ONBOARD_RESPONSE_TYPE, "cloudaicompanionProject": {"id": p, "name": p}}})
}

/// A new operation for `email` needing `needed` polls.
fn start(inner: &mut Inner, email: &str, needed: u32) -> String {
    let name = format!("operations/onboard-{}", random_hex(16));
    inner.operations.insert(
        name.clone(),
        Operation {
            email: email.to_owned(),
            polls: 0,
            needed,
        },
    );
    name
}

/// The `onboardUser` answer for `email` and `body`: `(status, body)`.
#[cfg(test)]
fn onboard(inner: &mut Inner, email: &str, body: &Value) -> (u16, Value) {
    onboard_for(inner, email, body, None)
}

/// [`onboard`] for a token of `token_client`: a retired client cannot
/// onboard (400 FAILED_PRECONDITION with the UNSUPPORTED_CLIENT message).
fn onboard_for(
    inner: &mut Inner,
    email: &str,
    body: &Value,
    token_client: Option<&str>,
) -> (u16, Value) {
    if inner.unsupported_client(email, token_client) {
        return (400, failed_precondition_body(UNSUPPORTED_CLIENT_MESSAGE));
    }
    let tier = field(body, "tierId")
        .and_then(Value::as_str)
        .unwrap_or("free-tier");
    let project = field(body, "cloudaicompanionProject")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let setup = inner.account_or_default(email).setup.clone();
    if let Setup::Ineligible(why) = &setup {
        return (400, failed_precondition_body(&reason_message(why)));
    }
    match tier {
        "free-tier" if project.is_some() => {
            return (400, failed_precondition_body("Precondition Failed"))
        }
        "free-tier" => {}
        "standard-tier" | "legacy-tier" => match project {
            Some(p) => inner.account_or_default(email).project_id = p,
            None => return (400, missing_project_body()),
        },
        other => {
            return (
                400,
                google_status_body(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Invalid tier id: {other}"),
                ),
            )
        }
    }
    match setup {
        Setup::Onboarded => {
            let name = start(inner, email, 0);
            (200, done_answer(inner, &name, email))
        }
        Setup::Onboarding { operation } => match poll(inner, &operation, email) {
            Some(v) => (200, v),
            None => (404, not_found_body()),
        },
        Setup::NeverOnboarded | Setup::Ineligible(_) => {
            let needed = inner.account_or_default(email).onboard_polls;
            let name = start(inner, email, needed);
            if needed == 0 {
                return (200, done_answer(inner, &name, email));
            }
            inner.account_or_default(email).setup = Setup::Onboarding {
                operation: name.clone(),
            };
            (200, json!({"name": name, "done": false}))
        }
    }
}

/// `POST /v1internal:loadCodeAssist`: the account's tier and project, or
/// the tiers it may onboard to, or why it is ineligible.
pub(crate) async fn load_code_assist(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (email, who) = match small_call(
        &shared,
        conn.as_ref(),
        HostLabel::of(&host),
        &headers,
        Endpoint::LoadCodeAssist,
        fast::LOAD_CODE_ASSIST,
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if let Err(resp) = small_body(&body) {
        return noted(resp, who.note(false));
    }
    let v = shared.with(|inner| load_answer_for(inner, &email, Some(&who.client_id)));
    noted(json_answer(200, v.to_string()), who.note(false))
}

/// `POST /v1internal:onboardUser`: starts (or polls) the account's
/// onboarding operation.
pub(crate) async fn onboard_user(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (email, who) = match small_call(
        &shared,
        conn.as_ref(),
        HostLabel::of(&host),
        &headers,
        Endpoint::OnboardUser,
        FAST_ONBOARD,
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let v = match small_body(&body) {
        Ok(v) => v,
        Err(resp) => return noted(resp, who.note(false)),
    };
    let (status, v) = shared.with(|inner| onboard_for(inner, &email, &v, Some(&who.client_id)));
    noted(answer(status, &v), who.note(false))
}

/// `GET /v1internal/operations/<id>`: one poll of an onboarding operation.
pub(crate) async fn get_operation(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (email, who) = match small_call(
        &shared,
        conn.as_ref(),
        HostLabel::of(&host),
        &headers,
        Endpoint::Operation,
        FAST_ONBOARD,
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let name = format!("operations/{id}");
    let v = shared.with(|inner| poll(inner, &name, &email));
    let resp = match v {
        Some(v) => answer(200, &v),
        None => answer(404, &not_found_body()),
    };
    noted(resp, who.note(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_onboarded_takes_polls() {
        let mut inner = Inner::default();
        let e = "n@x";
        inner.account_or_default(e).setup = Setup::NeverOnboarded;
        let v = load_answer(&mut inner, e);
        assert!(v.get("currentTier").is_none() && v.get("cloudaicompanionProject").is_none());
        assert_eq!(v["allowedTiers"][0]["id"], "free-tier");
        assert_eq!(
            v["allowedTiers"][0]["name"],
            "Gemini Code Assist for individuals"
        );
        assert_eq!(v["allowedTiers"][0]["isDefault"], true);
        assert_eq!(v["allowedTiers"][1]["id"], "standard-tier");
        // A project on free-tier: Precondition Failed.
        let (s, b) = onboard(
            &mut inner,
            e,
            &json!({"tierId": "free-tier", "cloudaicompanionProject": "p"}),
        );
        assert_eq!((s, b.to_string()), (400, r#"{"error":{"code":400,"message":"Precondition Failed","status":"FAILED_PRECONDITION"}}"#.to_owned()));
        let (s, b) = onboard(
            &mut inner,
            e,
            &json!({"tierId": "free-tier", "metadata": {}}),
        );
        assert_eq!((s, &b["done"]), (200, &json!(false)));
        let name = b["name"].as_str().unwrap().to_owned();
        assert!(name.starts_with("operations/"));
        // Poll 1 (re-POST, snake_case): still running; poll 2 (GET): done.
        let (_, b) = onboard(&mut inner, e, &json!({"tier_id": "free-tier"}));
        assert_eq!(
            (b["name"].as_str(), &b["done"]),
            (Some(name.as_str()), &json!(false))
        );
        assert!(load_answer(&mut inner, e).get("currentTier").is_none());
        let b = poll(&mut inner, &name, e).unwrap();
        assert_eq!(b["done"], true);
        assert_eq!(b["response"]["@type"], ONBOARD_RESPONSE_TYPE);
        assert_eq!(
            b["response"]["cloudaicompanionProject"],
            json!({"id": "fake-project-n", "name": "fake-project-n"})
        );
        let v = load_answer(&mut inner, e);
        assert_eq!(v["currentTier"]["id"], "free-tier");
        assert_eq!(v["cloudaicompanionProject"], "fake-project-n");
        // Another account cannot poll it.
        assert!(poll(&mut inner, &name, "other@x").is_none());
    }

    #[test]
    fn ineligible_accounts() {
        let mut inner = Inner::default();
        let e = "i@x";
        inner.account_or_default(e).setup =
            Setup::Ineligible(IneligibleSpec::new("VALIDATION_REQUIRED"));
        let v = load_answer(&mut inner, e);
        assert!(v.get("currentTier").is_none());
        let t = &v["ineligibleTiers"][0];
        assert_eq!(t["reasonCode"], "VALIDATION_REQUIRED");
        assert_eq!(t["tierId"], "free-tier");
        assert_eq!(t["validationUrl"], DEFAULT_VALIDATION_URL);
        assert_eq!(t["validationUrlLinkText"], "Verify your account");
        let (s, b) = onboard(&mut inner, e, &json!({"tierId": "free-tier"}));
        assert_eq!(s, 400);
        assert_eq!(b["error"]["status"], "FAILED_PRECONDITION");
        assert_eq!(b["error"]["message"], "Verify your account to continue.");
        inner.account_or_default(e).setup = Setup::Ineligible(IneligibleSpec {
            reason_message: Some("Not here.".into()),
            ..IneligibleSpec::new("UNSUPPORTED_LOCATION")
        });
        let v = load_answer(&mut inner, e);
        assert!(v["ineligibleTiers"][0].get("validationUrl").is_none());
        assert_eq!(
            onboard(&mut inner, e, &json!({})).1["error"]["message"],
            "Not here."
        );
    }

    #[test]
    fn onboarded_and_other_tiers() {
        let mut inner = Inner::default();
        let (s, b) = onboard(&mut inner, "o@x", &json!({"tierId": "free-tier"}));
        assert_eq!((s, &b["done"]), (200, &json!(true)));
        let e = "s@x";
        inner.account_or_default(e).setup = Setup::NeverOnboarded;
        inner.account_or_default(e).onboard_polls = 0;
        assert_eq!(
            onboard(&mut inner, e, &json!({"tierId": "standard-tier"})).0,
            400
        );
        let (_, b) = onboard(
            &mut inner,
            e,
            &json!({"tierId": "standard-tier", "cloudaicompanionProject": "team-p"}),
        );
        assert_eq!(b["response"]["cloudaicompanionProject"]["id"], "team-p");
        assert_eq!(
            onboard(&mut inner, e, &json!({"tierId": "gold-tier"})).0,
            400
        );
    }
}
