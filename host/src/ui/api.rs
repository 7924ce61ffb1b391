//! The JSON endpoints the page talks to (`/ui/api/*`), and Google's
//! redirect at the end of a sign-in (`/ui/oauth/callback`). Each change goes
//! through [`Manager`], the same operations as the admin API and the CLI.
//! No answer ever holds a token.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::flows::{Finished, Pending};
use super::guard::CLOSED;
use super::reply::{fail, fail_retry, json};
use super::rows;
use super::session::{set_cookie, CSRF_HEADER};
use super::state::{Access, Ui};
use crate::manage::{added_words, ManageError, Manager};

type Ui_ = State<Arc<Ui>>;

fn manager(ui: &Ui) -> Manager<'_> {
    Manager::new(&ui.proxy.store, &ui.proxy.dispatcher.pool, &ui.proxy.oauth)
}

fn manage_fail(e: &ManageError) -> Response {
    fail(e.status(), &e.to_string())
}

fn with_cookie(mut resp: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn cookies(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

/// Parse a JSON body, or say what was expected.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| fail(400, &format!("expected {expected}: {e}")))
}

fn open_note(ui: &Ui) -> String {
    format!(
        "No admin key is set, so this page is open to anyone who can reach {} on this machine (the proxy listens on loopback only). Set server.admin_key to require signing in.",
        ui.proxy.config.server.listen
    )
}

// ---- session ---------------------------------------------------------------

/// `GET /ui/api/session`: who may use the page and whether this browser is
/// signed in (with its CSRF token). With no admin key on a loopback
/// listener a session is opened without one.
pub async fn session(State(ui): Ui_, headers: HeaderMap) -> Response {
    let current = ui.sessions.from_cookies(cookies(&headers));
    match ui.access() {
        Access::Closed => json(json!({"access": "closed", "signed_in": false, "message": CLOSED})),
        Access::Key => match current {
            Some(s) => json(json!({"access": "key", "signed_in": true, "csrf": s.csrf})),
            None => json(json!({"access": "key", "signed_in": false})),
        },
        Access::Open => {
            let message = open_note(&ui);
            match current {
                Some(s) => json(json!({"access": "open", "signed_in": true, "csrf": s.csrf, "message": message})),
                None => {
                    let (value, s) = ui.sessions.create();
                    let resp = json(json!({"access": "open", "signed_in": true, "csrf": s.csrf, "message": message}));
                    with_cookie(resp, &set_cookie(Some(&value)))
                }
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    admin_key: String,
}

/// `POST /ui/api/session` `{"admin_key"}`: sign in. The key is compared in
/// constant time and never kept; the browser gets an HttpOnly,
/// SameSite=Strict cookie. After 5 wrong keys in a minute sign-in pauses.
pub async fn sign_in(State(ui): Ui_, headers: HeaderMap, bytes: Bytes) -> Response {
    match ui.access() {
        Access::Closed => return fail(403, CLOSED),
        Access::Open => return session(State(ui), headers).await,
        Access::Key => {}
    }
    // A JSON body: no other site's form can post one without a preflight.
    let json_body = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return fail(415, "sign in with a JSON body {\"admin_key\": …} (content-type: application/json)");
    }
    if let Err(wait) = ui.limiter.check() {
        let secs = wait.as_secs().max(1);
        tracing::warn!("accounts page: sign-in refused, too many wrong admin keys (paused {secs}s more)");
        return fail_retry(429, &format!("too many wrong admin keys: sign-in is paused, try again in {secs} s"), secs);
    }
    let sign: SignIn = match body(&bytes, "{\"admin_key\": \"…\"}") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let key = ui.admin_key().unwrap_or_default();
    if !bool::from(sign.admin_key.trim().as_bytes().ct_eq(key.as_bytes())) {
        ui.limiter.failed();
        tracing::warn!("accounts page: sign-in with a wrong admin key");
        return fail(401, "wrong admin key (server.admin_key or $GRANTPOOL_ADMIN_KEY)");
    }
    let (value, s) = ui.sessions.create();
    tracing::info!("accounts page: signed in");
    with_cookie(json(json!({"access": "key", "signed_in": true, "csrf": s.csrf})), &set_cookie(Some(&value)))
}

/// `DELETE /ui/api/session`: sign out (the session's CSRF token needed).
pub async fn sign_out(State(ui): Ui_, headers: HeaderMap) -> Response {
    if let Some(s) = ui.sessions.from_cookies(cookies(&headers)) {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !s.csrf_matches(sent) {
            return fail(403, "refused: the request does not carry this session's CSRF token; reload the page");
        }
        ui.sessions.end(&s.key);
    }
    with_cookie(json(json!({"signed_in": false})), &set_cookie(None))
}

// ---- accounts --------------------------------------------------------------

/// `GET /ui/api/accounts`: every row.
pub async fn accounts(State(ui): Ui_) -> Response {
    ui.served.fresh(&ui.proxy).await;
    json(json!({"now_ms": crate::util::now_ms(), "accounts": rows::rows(&ui)}))
}

/// `GET /ui/api/accounts/{id}`: one row.
pub async fn account(State(ui): Ui_, Path(id): Path<String>) -> Response {
    match rows::row(&ui, &id) {
        Some(r) => json(json!({"now_ms": crate::util::now_ms(), "account": r})),
        None => fail(404, "no such account (removed?)"),
    }
}

/// `GET /ui/api/accounts/{id}/events`: its history, oldest first.
pub async fn events(State(ui): Ui_, Path(id): Path<String>) -> Response {
    let pool = &ui.proxy.dispatcher.pool;
    if pool.get(&id).is_none() {
        return fail(404, "no such account (removed?)");
    }
    json(json!({"events": pool.history(&id)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    refresh_token: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    egress: Option<String>,
}

fn added(ui: &Ui, o: &crate::store::UpsertOutcome) -> Response {
    json(json!({
        "ok": true,
        "message": added_words(o),
        "created": o.created,
        "recovered": o.recovered,
        "account": rows::row(ui, &o.account.id),
    }))
}

/// `POST /ui/api/accounts` `{"refresh_token", "client"?, "email"?,
/// "egress"?}`: add or re-add an account (verified with Google first,
/// through the outbound proxy `egress` names when given; a re-add with a
/// new token clears `disabled_*`).
pub async fn add(State(ui): Ui_, bytes: Bytes) -> Response {
    let b: AddBody = match body(&bytes, "{\"refresh_token\", \"client\"?, \"email\"?, \"egress\"?}") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let token = b.refresh_token.trim();
    if token.is_empty() {
        return fail(400, "paste a refresh token (it starts with 1//)");
    }
    let client = b.client.as_deref().filter(|c| !c.is_empty());
    match manager(&ui).add_refresh_token(client, token, b.email.as_deref(), None, b.egress.as_deref()).await {
        Ok(o) => added(&ui, &o),
        Err(e) => manage_fail(&e),
    }
}

/// `POST /ui/api/accounts/{id}/off`: take the account off the proxy.
pub async fn off_proxy(State(ui): Ui_, Path(id): Path<String>) -> Response {
    set_proxy(&ui, &id, false).await
}

/// `POST /ui/api/accounts/{id}/on`: put it back on the proxy.
pub async fn on_proxy(State(ui): Ui_, Path(id): Path<String>) -> Response {
    set_proxy(&ui, &id, true).await
}

async fn set_proxy(ui: &Ui, id: &str, on: bool) -> Response {
    match manager(ui).set_on_proxy(id, on, "taken off by hand (accounts page)").await {
        Ok(file) => {
            let note = (on && file.disabled).then_some("it is still disabled (dead refresh token): re-add it with a new refresh token to recover it");
            json(json!({"ok": true, "note": note, "account": rows::row(ui, &file.id)}))
        }
        Err(e) => manage_fail(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsBody {
    labels: BTreeMap<String, Option<String>>,
}

/// `POST /ui/api/accounts/{id}/labels` `{"labels": {name: value | null}}`.
pub async fn labels(State(ui): Ui_, Path(id): Path<String>, bytes: Bytes) -> Response {
    let b: LabelsBody = match body(&bytes, "{\"labels\": {\"weight\": \"2\", \"tier\": null}}") {
        Ok(b) => b,
        Err(r) => return r,
    };
    match manager(&ui).set_labels(&id, b.labels).await {
        Ok(file) => json(json!({"ok": true, "account": rows::row(&ui, &file.id)})),
        Err(e) => manage_fail(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressBody {
    egress: Option<String>,
}

/// `POST /ui/api/accounts/{id}/egress` `{"egress": "NAME" | null}`: the
/// outbound proxy its calls go through (`null`: the pool's default).
pub async fn egress(State(ui): Ui_, Path(id): Path<String>, bytes: Bytes) -> Response {
    let b: EgressBody = match body(&bytes, "{\"egress\": \"NAME\"} or {\"egress\": null} (the pool's default)") {
        Ok(b) => b,
        Err(r) => return r,
    };
    match manager(&ui).set_egress(&id, b.egress.as_deref()).await {
        Ok(file) => {
            let message = match &file.egress {
                Some(name) => format!("{}: its calls go through egress proxy {name}", file.email),
                None => format!("{}: its calls go the pool's default way", file.email),
            };
            json(json!({"ok": true, "message": message, "account": rows::row(&ui, &file.id)}))
        }
        Err(e) => manage_fail(&e),
    }
}

/// `DELETE /ui/api/accounts/{id}`: remove the account's record.
pub async fn remove(State(ui): Ui_, Path(id): Path<String>) -> Response {
    match manager(&ui).remove(&id).await {
        Ok(file) => json(json!({"ok": true, "message": format!("removed {}", file.email), "id": file.id})),
        Err(e) => manage_fail(&e),
    }
}

// ---- overview --------------------------------------------------------------

/// `GET /ui/api/overview`.
pub async fn overview(State(ui): Ui_) -> Response {
    json(rows::overview(&ui))
}

/// `GET /ui/api/traffic`: requests/s and errors/s over the last hour.
pub async fn traffic(State(ui): Ui_) -> Response {
    json(json!(ui.activity.chart(crate::util::now_ms())))
}

/// `POST /ui/api/reload`: read the accounts and the policy again (what
/// `POST /admin/reload` does); a refused policy leaves the running one.
pub async fn reload(State(ui): Ui_) -> Response {
    let proxy = ui.proxy.clone();
    let _ = tokio::task::spawn_blocking(move || proxy.dispatcher.pool.resync(proxy.store.load_all())).await;
    let handle = ui.proxy.policy.clone();
    match tokio::task::spawn_blocking(move || handle.reload()).await {
        Ok(Ok(p)) => json(json!({"ok": true, "message": "policy reloaded", "policy": p.describe()})),
        Ok(Err(e)) => fail(422, &format!("{e} (the running policy stays)")),
        Err(e) => fail(500, &format!("the reload task failed: {e}")),
    }
}

// ---- Google sign-in --------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    egress: Option<String>,
}

/// `POST /ui/api/signin` `{"client"?, "email"?, "egress"?}`: start a Google sign-in
/// (PKCE). When the browser is on this machine Google's redirect lands on
/// the proxy itself; otherwise the user pastes the address it went to.
pub async fn signin_start(State(ui): Ui_, headers: HeaderMap, bytes: Bytes) -> Response {
    let b: StartBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        match body(&bytes, "{\"client\"?, \"email\"?, \"egress\"?}") {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    let oauth = &ui.proxy.oauth;
    let client = match oauth.client_named(b.client.as_deref().filter(|c| !c.is_empty())) {
        Ok(c) => c,
        Err(e) => return fail(400, &e.to_string()),
    };
    let egress = match manager(&ui).check_egress(b.egress.as_deref()) {
        Ok(e) => e,
        Err(e) => return manage_fail(&e),
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let same_machine = crate::proxy::auth::is_loopback_host(host);
    // Google sends installed-app sign-ins to loopback addresses only: from
    // another machine the redirect fails there and the address is pasted.
    let redirect_uri = if same_machine {
        format!("http://{host}/ui/oauth/callback")
    } else {
        let port = host.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).unwrap_or(80);
        format!("http://127.0.0.1:{port}/ui/oauth/callback")
    };
    let (verifier, challenge) = crate::oauth::pkce_pair();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = match oauth.authorize_url(&client, &redirect_uri, &challenge, &state) {
        Ok(u) => u,
        Err(e) => return fail(500, &format!("cannot build the sign-in address: {e}")),
    };
    let client_name = client.name.clone();
    let expected = b.email.filter(|e| !e.trim().is_empty());
    ui.flows.start(state.clone(), Pending { client, verifier, redirect_uri: redirect_uri.clone(), expected, egress });
    tracing::info!(client = %client_name, same_machine, "accounts page: Google sign-in started");
    json(json!({"state": state, "url": url, "redirect_uri": redirect_uri, "same_machine": same_machine, "client": client_name}))
}

/// `GET /ui/api/signin/{state}`: where a sign-in stands.
pub async fn signin_status(State(ui): Ui_, Path(state): Path<String>) -> Response {
    json(json!(ui.flows.status(&state)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PastedBody {
    url: String,
}

/// `POST /ui/api/signin/{state}` `{"url"}`: finish a sign-in with the
/// address Google redirected to (pasted from another machine's browser).
pub async fn signin_paste(State(ui): Ui_, Path(state): Path<String>, bytes: Bytes) -> Response {
    let b: PastedBody = match body(&bytes, "{\"url\": \"http://127.0.0.1:…/ui/oauth/callback?state=…&code=…\"}") {
        Ok(b) => b,
        Err(r) => return r,
    };
    let code = match crate::oauth::code_from_redirect(&b.url, &state) {
        Ok(c) => c,
        Err(e) => return fail(400, &format!("{e}: paste the whole address the browser was sent to after signing in")),
    };
    let done = finish(&ui, &state, &code).await;
    let status = if done.ok { 200 } else { 422 };
    let mut resp = json(json!({"ok": done.ok, "message": done.message, "account": done.account_id.as_deref().and_then(|id| rows::row(&ui, id))}));
    *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    resp
}

/// Exchange the code of sign-in `state` and upsert the account.
async fn finish(ui: &Ui, state: &str, code: &str) -> Finished {
    let Some(pending) = ui.flows.take(state) else {
        return match ui.flows.status(state) {
            super::flows::Status::Done(done) => done,
            _ => Finished { ok: false, message: "this sign-in is over or unknown (a sign-in waits 10 minutes): start again".into(), account_id: None },
        };
    };
    let done = match ui.proxy.oauth.account_from_code(&pending.client, code, &pending.verifier, &pending.redirect_uri, pending.egress.as_deref()).await {
        Ok(new) => match manager(ui).upsert_with_egress(new, pending.expected.as_deref(), pending.egress.as_deref()).await {
            Ok(o) => Finished { ok: true, message: added_words(&o), account_id: Some(o.account.id.clone()) },
            Err(e) => Finished { ok: false, message: e.to_string(), account_id: None },
        },
        Err(e) => Finished { ok: false, message: e, account_id: None },
    };
    if done.ok {
        tracing::info!("accounts page: Google sign-in finished: {}", done.message);
    } else {
        tracing::warn!("accounts page: Google sign-in failed: {}", done.message);
    }
    ui.flows.finish(state, done.clone());
    done
}

/// `GET /ui/oauth/callback?state&code`: where Google sends the browser
/// back. Tied to its sign-in by `state` (Google's redirect carries no
/// SameSite=Strict cookie), it finishes the sign-in and says how it went;
/// the page that started it hears of it too.
pub async fn callback(State(ui): Ui_, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let state = q.get("state").cloned().unwrap_or_default();
    let done = if let Some(err) = q.get("error") {
        let done = Finished { ok: false, message: format!("Google answered `{err}`: nothing was written"), account_id: None };
        if ui.flows.take(&state).is_some() {
            ui.flows.finish(&state, done.clone());
        }
        done
    } else {
        match q.get("code").filter(|c| !c.is_empty()) {
            Some(code) => finish(&ui, &state, code).await,
            None => Finished { ok: false, message: "the address carries no code".into(), account_id: None },
        }
    };
    let title = if done.ok { "Signed in" } else { "Sign-in failed" };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · grantpool</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head>\
         <body class=\"callback\"><main class=\"card narrow\"><h1>{title}</h1><p role=\"status\" class=\"{cls}\">{msg}</p>\
         <p>You can close this tab; the accounts page shows it too.</p><p><a class=\"button\" href=\"/ui\">Back to the accounts</a></p></main></body></html>",
        cls = if done.ok { "result ok" } else { "result bad" },
        msg = escape(&done.message),
    );
    let status = if done.ok { 200 } else { 400 };
    let mut resp = Html(page).into_response();
    *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    resp
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
