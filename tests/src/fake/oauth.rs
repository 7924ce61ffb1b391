//! `POST /token` (refresh and authorization-code grants, as
//! `https://oauth2.googleapis.com/token`) and `GET /userinfo`.
//!
//! Clients (contract "OAuth clients"; bodies from facts §7): the two
//! built-in clients are always known; an unknown client id answers 401
//! `invalid_client` `The OAuth client was not found.`
//! (simonrob/email-oauth2-proxy#362), a wrong secret 401 `invalid_client`
//! `Unauthorized` (google/GTMAppAuth#15), a refresh token or code of another
//! client 401 `unauthorized_client` `Unauthorized`
//! (baptisteArno/typebot.io#580), a revoked token 400 `invalid_grant`
//! `Token has been expired or revoked.`
//! (GoogleCloudPlatform/cloud-code-intellij#2707). Access tokens remember
//! their client.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::clients::ANTIGRAVITY_CLIENT_ID;
use super::errors::{json_answer, oauth_error, unauthenticated};
use super::faults::{self, FaultAction, FaultCall};
use super::record::CallNote;
use super::server::{ConnHandle, HostLabel};
use super::state::{bump, random_hex, AccessLookup, Counters, Inner, RefreshEntry, Shared, SCOPES};
use super::types::Endpoint;
use super::{fast, v1internal};

/// The fields of a token request (form-encoded, or JSON).
#[derive(Deserialize, Default)]
struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Client credentials sent with HTTP Basic instead of in the form.
fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<TokenForm, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let mut form: TokenForm = if is_json {
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?
    } else {
        serde_urlencoded::from_bytes(body).map_err(|e| format!("Invalid form body: {e}"))?
    };
    if form.client_id.is_none() {
        if let Some((id, secret)) = basic_client(headers) {
            form.client_id = Some(id);
            form.client_secret = Some(secret);
        }
    }
    Ok(form)
}

fn invalid_grant(status: u16) -> Response {
    oauth_error(
        status,
        "invalid_grant",
        "Token has been expired or revoked.",
    )
}

/// The client check: `Err` is the answer for an unknown client, a wrong
/// secret, or a missing one; `Ok` the client id to issue to.
fn check_client(inner: &Inner, form: &TokenForm) -> Result<String, Response> {
    if inner.settings.accept_any_client {
        return Ok(form.client_id.clone().unwrap_or_default());
    }
    let Some(id) = form.client_id.as_deref().filter(|id| !id.is_empty()) else {
        // Google's answer without a client id (from memory; unverified).
        return Err(oauth_error(
            400,
            "invalid_request",
            "Could not determine client ID from request.",
        ));
    };
    let Some(secret) = inner.clients.get(id) else {
        return Err(oauth_error(
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ));
    };
    if form.client_secret.as_deref() != Some(secret.as_str()) {
        return Err(oauth_error(401, "invalid_client", "Unauthorized"));
    }
    Ok(id.to_owned())
}

/// Whether a token or code bound to `bound` (`None`: the default) may be
/// used by `client`.
fn client_may_use(inner: &Inner, bound: Option<&str>, client: &str) -> bool {
    match bound {
        Some(b) => b == client,
        None => inner.settings.accept_any_client || client == ANTIGRAVITY_CLIENT_ID,
    }
}

fn unauthorized_client() -> Response {
    oauth_error(401, "unauthorized_client", "Unauthorized")
}

fn refresh(inner: &mut Inner, form: &TokenForm, client: &str) -> Response {
    let Some(rt) = form.refresh_token.as_deref().filter(|t| !t.is_empty()) else {
        return oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let Some(entry) = inner.refresh.get(rt) else {
        return invalid_grant(400);
    };
    if let Some((status, body)) = &entry.revoked {
        return match body {
            Some(body) => json_answer(*status, body.clone()),
            None => invalid_grant(*status),
        };
    }
    let Some(email) = entry.email.clone() else {
        return invalid_grant(400);
    };
    let grant = entry.grant;
    let bound = entry.client_id.clone();
    if !client_may_use(inner, bound.as_deref(), client) {
        return unauthorized_client();
    }
    let rotate = inner.account_or_default(&email).rotate;
    let (access_token, expires_in) = inner.issue_access_token(&email, grant, client);
    let mut answer = json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "token_type": "Bearer",
        "scope": SCOPES,
    });
    if rotate {
        let new = format!("1//fake-{}", random_hex(32));
        inner.refresh.remove(rt);
        inner.refresh.insert(
            new.clone(),
            RefreshEntry {
                email: Some(email),
                grant,
                revoked: None,
                client_id: bound,
            },
        );
        answer["refresh_token"] = json!(new);
    }
    json_answer(200, answer.to_string())
}

fn exchange_code(inner: &mut Inner, form: &TokenForm, client: &str) -> Response {
    let Some(code) = form.code.as_deref().filter(|c| !c.is_empty()) else {
        return oauth_error(400, "invalid_request", "Missing required parameter: code");
    };
    // A bad or reused code (facts §7: googleapis/signet#184).
    let Some(spec) = inner.codes.get(code) else {
        return oauth_error(400, "invalid_grant", "Bad Request");
    };
    if !client_may_use(inner, spec.client_id.as_deref(), client) {
        return unauthorized_client();
    }
    if let Some(want) = &spec.redirect_uri {
        if form.redirect_uri.as_deref() != Some(want.as_str()) {
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
        }
    }
    if let Some(challenge) = &spec.code_challenge {
        let Some(verifier) = form.code_verifier.as_deref() else {
            return oauth_error(400, "invalid_grant", "Missing code verifier.");
        };
        let ok = match spec.code_challenge_method.as_deref() {
            Some("plain") => verifier == challenge,
            _ => {
                let digest = Sha256::digest(verifier.as_bytes());
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == *challenge
            }
        };
        if !ok {
            return oauth_error(400, "invalid_grant", "Invalid code verifier.");
        }
    }
    // Codes work once.
    let Some(spec) = inner.codes.remove(code) else {
        return oauth_error(400, "invalid_grant", "Bad Request");
    };
    inner.account_or_default(&spec.email);
    let rt = spec
        .refresh_token
        .unwrap_or_else(|| format!("1//fake-{}", random_hex(32)));
    // The refresh token belongs to the client that exchanged the code.
    inner.add_refresh_token(&rt, &spec.email, Some(client.to_owned()));
    let grant = inner.refresh.get(&rt).map_or(0, |e| e.grant);
    let (access_token, expires_in) = inner.issue_access_token(&spec.email, grant, client);
    let answer = json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "refresh_token": rt,
        "scope": SCOPES,
        "token_type": "Bearer",
    });
    json_answer(200, answer.to_string())
}

/// `POST /token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    Counters::bump(&shared.counters.token);
    let form = match parse_form(&headers, &body) {
        Ok(form) => form,
        Err(msg) => return oauth_error(400, "invalid_request", &msg),
    };
    let email = shared.with(|inner| {
        let email = match form.grant_type.as_deref() {
            Some("refresh_token") => {
                let rt = form.refresh_token.as_deref()?;
                bump(&mut inner.stats.token_calls_by_refresh_token, rt);
                inner.refresh.get(rt)?.email.clone()
            }
            Some("authorization_code") => {
                Some(inner.codes.get(form.code.as_deref()?)?.email.clone())
            }
            _ => None,
        }?;
        bump(&mut inner.stats.token_calls_by_email, &email);
        Some(email)
    });
    let note = |resp: Response, fault: bool| {
        v1internal::noted(
            resp,
            CallNote {
                email: email.clone(),
                fault,
                content_refused: false,
                usage: None,
            },
        )
    };
    let call = FaultCall::new(Endpoint::Token, email.as_deref(), HostLabel::of(&host));
    match faults::apply(&shared, conn.as_ref().map(|c| &c.0), call).await {
        FaultAction::Proceed => {}
        FaultAction::Respond(resp) => return note(resp, true),
        FaultAction::MidStream { .. } => {
            return note(v1internal::cut_json(fast::TOKEN.to_owned()), true)
        }
    }
    if shared.is_fast() {
        return fast::json(fast::TOKEN);
    }
    let resp = shared.with(|inner| {
        let grant = form.grant_type.as_deref();
        if !matches!(grant, Some("refresh_token" | "authorization_code")) {
            return oauth_error(
                400,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {}", grant.unwrap_or("")),
            );
        }
        let client = match check_client(inner, &form) {
            Ok(c) => c,
            Err(resp) => return resp,
        };
        match grant {
            Some("refresh_token") => refresh(inner, &form, &client),
            _ => exchange_code(inner, &form, &client),
        }
    });
    note(resp, false)
}

/// `GET /userinfo` (also `/oauth2/v2/userinfo`).
pub(crate) async fn userinfo(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: HeaderMap,
) -> Response {
    Counters::bump(&shared.counters.userinfo);
    let lookup = match bearer(&headers) {
        Some(t) => shared.with(|inner| inner.lookup_access(t)),
        None => AccessLookup::Unknown,
    };
    let note = |resp: Response, fault: bool| {
        v1internal::noted(
            resp,
            CallNote {
                email: lookup.email().map(str::to_owned),
                fault,
                content_refused: false,
                usage: None,
            },
        )
    };
    let call = FaultCall::new(Endpoint::Userinfo, lookup.email(), HostLabel::of(&host));
    match faults::apply(&shared, conn.as_ref().map(|c| &c.0), call).await {
        FaultAction::Proceed => {}
        FaultAction::Respond(resp) => return note(resp, true),
        FaultAction::MidStream { .. } => {
            return note(
                v1internal::cut_json(r#"{"email":"cut@example.com"}"#.to_owned()),
                true,
            )
        }
    }
    let AccessLookup::Valid(email) = &lookup else {
        return note(unauthenticated(), false);
    };
    let id = shared.with(|inner| inner.account_or_default(email).id.clone());
    note(
        json_answer(
            200,
            json!({"id": id, "email": email, "verified_email": true, "picture": "https://example.com/fake.png"})
                .to_string(),
        ),
        false,
    )
}
