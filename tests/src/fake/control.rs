//! `/_fake/*`: scripting the fake over HTTP (JSON in, JSON out). Each
//! endpoint is also a typed method of [`FakeGoogle`](super::FakeGoogle).
//! A body that does not parse, or a spec the fake refuses, answers 400
//! `{"error": "<why>"}`; success answers `{"ok": true}` unless it has data.
//! Where a body is one spec, a JSON list of specs is accepted too.
//!
//! | method and path | body | does |
//! |---|---|---|
//! | `POST /_fake/accounts` | [`AccountSpec`] | add or update an account |
//! | `GET /_fake/accounts` | | list [`AccountInfo`](super::AccountInfo)s |
//! | `POST /_fake/revoke` | [`RevokeSpec`] | revoke a refresh token |
//! | `POST /_fake/client` | [`ClientSpec`] | accept these OAuth clients too (the built-in two always) |
//! | `DELETE /_fake/client` | | forget them; accept any client id and secret |
//! | `POST /_fake/codes` | [`CodeSpec`] | register an authorization code |
//! | `POST /_fake/quota` | [`QuotaSpec`] | set a model's quota for an account |
//! | `POST /_fake/quota_windows` | [`QuotaWindowSpec`](super::QuotaWindowSpec) | set a 5-hour or weekly window of an account |
//! | `POST /_fake/expires_in` | `{"secs": N}` | access-token lifetime from now on |
//! | `POST /_fake/invalidate_access_tokens` | `{"email"?: ..}` | access tokens stop working |
//! | `POST /_fake/faults` | [`FaultSpec`] | queue a fault |
//! | `GET /_fake/faults` | | list [`PendingFault`](super::PendingFault)s |
//! | `DELETE /_fake/faults` | | clear the queue |
//! | `GET /_fake/stats` | | [`Stats`](super::Stats) (with the recorded requests) |
//! | `POST /_fake/reset_stats` | | zero the stats, forget the recorded requests |
//! | `POST /_fake/reset` | | forget everything but fast mode, settings and listeners |
//! | `POST /_fake/fast` | `{"on": bool}` (empty = on) | fast mode on/off; answers `{"fast": bool}` |
//! | `GET /_fake/fast` | | `{"fast": bool}` |
//! | `GET /_fake/hosts` | | the listeners: `[`[`HostInfo`](super::HostInfo)`]`, default first |
//! | `POST /_fake/hosts` | `{"label": "sandbox", "listen"?: "127.0.0.1:0"}` | one more listener; answers its [`HostInfo`](super::HostInfo) |
//! | `GET /_fake/settings` | | [`FakeSettings`](super::FakeSettings) |
//! | `POST /_fake/settings` | [`SettingsPatch`] | change some; answers the settings |
//! | `GET /_fake/requests` | query `endpoint`, `host`, `last` (all optional) | the recorded [`RecordedRequest`](super::RecordedRequest)s, oldest first |
//!
//! `POST /_fake/client` also turns `accept_any_client` off, `DELETE
//! /_fake/client` on. An account's `ineligible` may be a reason-code
//! string or an [`IneligibleSpec`](super::IneligibleSpec); faults take
//! `host` and `model`, and the kinds `rate_limit_exceeded`,
//! `quota_exhausted`, `model_capacity_exhausted`, `validation_required`,
//! `service_disabled`, `unauthenticated`, `tos_violation`,
//! `license_required`, `unsupported_version`, `empty_stream`, `bare_429`,
//! `weekly_quota` (with `reset_secs`). An account takes `"enterprise":
//! true`; the settings take `refused_phrases` (a list, replacing the
//! default five), `retire_gemini_cli_client` and `prompt_cache`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::errors::json_answer;
use super::server;
use super::state::Shared;
use super::types::{
    AccountSpec, ClientSpec, CodeSpec, Endpoint, FaultSpec, InvalidSpec, QuotaSpec, RevokeSpec,
    SettingsPatch,
};

type St = State<Arc<Shared>>;

/// `POST /_fake/expires_in` body.
#[derive(Deserialize)]
struct ExpiresIn {
    secs: u64,
}

/// `POST /_fake/fast` body; an empty body turns fast mode on.
#[derive(Deserialize)]
struct Fast {
    #[serde(default = "yes", alias = "enabled")]
    on: bool,
}

fn yes() -> bool {
    true
}

/// `POST /_fake/invalidate_access_tokens` body; empty = every account.
#[derive(Deserialize, Default)]
struct Invalidate {
    email: Option<String>,
}

/// `POST /_fake/hosts` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewHost {
    label: String,
    listen: Option<SocketAddr>,
}

/// `GET /_fake/requests` query.
#[derive(Deserialize, Default)]
struct RequestsQuery {
    endpoint: Option<Endpoint>,
    host: Option<String>,
    last: Option<usize>,
}

fn bad(msg: &str) -> Response {
    json_answer(400, json!({ "error": msg }).to_string())
}

fn ok() -> Response {
    json_answer(200, r#"{"ok":true}"#.to_owned())
}

fn data<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(s) => json_answer(200, s),
        Err(e) => json_answer(500, json!({ "error": e.to_string() }).to_string()),
    }
}

/// Parses a JSON body; an empty one parses as `empty` when given.
fn parse<T: DeserializeOwned>(body: &[u8], empty: Option<T>) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if let Some(v) = empty {
            return Ok(v);
        }
    }
    serde_json::from_slice(body).map_err(|e| format!("bad JSON body: {e}"))
}

/// Runs `f` on every item of a body holding one object or a list of them.
fn each<T: DeserializeOwned>(
    body: &[u8],
    mut f: impl FnMut(T) -> Result<(), InvalidSpec>,
) -> Response {
    let items: Vec<T> = match parse::<serde_json::Value>(body, None) {
        Ok(serde_json::Value::Array(list)) => {
            match list.into_iter().map(serde_json::from_value).collect() {
                Ok(items) => items,
                Err(e) => return bad(&format!("bad item: {e}")),
            }
        }
        Ok(one) => match serde_json::from_value(one) {
            Ok(item) => vec![item],
            Err(e) => return bad(&format!("bad body: {e}")),
        },
        Err(msg) => return bad(&msg),
    };
    for item in items {
        if let Err(e) = f(item) {
            return bad(&e.0);
        }
    }
    ok()
}

async fn add_accounts(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: AccountSpec| {
        if spec.email.is_empty() || spec.refresh_token.is_empty() {
            return Err(InvalidSpec(
                "email and refresh_token must not be empty".into(),
            ));
        }
        s.add_account(spec);
        Ok(())
    })
}

async fn list_accounts(State(s): St) -> Response {
    data(&s.accounts())
}

async fn revoke(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: RevokeSpec| s.revoke(spec))
}

async fn add_client(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: ClientSpec| {
        s.add_client(spec);
        Ok(())
    })
}

async fn clear_clients(State(s): St) -> Response {
    s.clear_clients();
    ok()
}

async fn add_codes(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: CodeSpec| s.add_code(spec))
}

async fn set_quota(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: QuotaSpec| s.set_quota(spec))
}

async fn set_quota_windows(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: super::QuotaWindowSpec| s.set_quota_window(spec))
}

async fn set_expires_in(State(s): St, body: Bytes) -> Response {
    match parse::<ExpiresIn>(&body, None) {
        Ok(e) => {
            s.set_expires_in(e.secs);
            ok()
        }
        Err(msg) => bad(&msg),
    }
}

async fn invalidate_access_tokens(State(s): St, body: Bytes) -> Response {
    match parse::<Invalidate>(&body, Some(Invalidate::default())) {
        Ok(i) => {
            s.invalidate_access_tokens(i.email.as_deref());
            ok()
        }
        Err(msg) => bad(&msg),
    }
}

async fn push_faults(State(s): St, body: Bytes) -> Response {
    each(&body, |spec: FaultSpec| s.push_fault(spec))
}

async fn list_faults(State(s): St) -> Response {
    data(&s.pending_faults())
}

async fn clear_faults(State(s): St) -> Response {
    s.clear_faults();
    ok()
}

async fn stats(State(s): St) -> Response {
    data(&s.stats())
}

async fn reset_stats(State(s): St) -> Response {
    s.reset_stats();
    ok()
}

async fn reset(State(s): St) -> Response {
    s.reset();
    ok()
}

async fn set_fast(State(s): St, body: Bytes) -> Response {
    match parse::<Fast>(&body, Some(Fast { on: true })) {
        Ok(f) => {
            s.fast.store(f.on, std::sync::atomic::Ordering::Relaxed);
            data(&json!({ "fast": f.on }))
        }
        Err(msg) => bad(&msg),
    }
}

async fn get_fast(State(s): St) -> Response {
    data(&json!({ "fast": s.is_fast() }))
}

async fn list_hosts(State(s): St) -> Response {
    data(&s.hosts())
}

async fn add_host(State(s): St, body: Bytes) -> Response {
    let spec = match parse::<NewHost>(&body, None) {
        Ok(h) => h,
        Err(msg) => return bad(&msg),
    };
    let addr = spec.listen.unwrap_or_else(|| {
        let ip = s
            .listeners
            .lock()
            .first()
            .map_or([127, 0, 0, 1].into(), |l| l.addr.ip());
        SocketAddr::new(ip, 0)
    });
    match server::add_listener(&s, &spec.label, addr).await {
        Ok(info) => data(&info),
        Err(e) => bad(&e.to_string()),
    }
}

async fn get_settings(State(s): St) -> Response {
    data(&s.settings())
}

async fn set_settings(State(s): St, body: Bytes) -> Response {
    match parse::<SettingsPatch>(&body, Some(SettingsPatch::default())) {
        Ok(p) => data(&s.patch_settings(p)),
        Err(msg) => bad(&msg),
    }
}

async fn list_requests(State(s): St, Query(q): Query<RequestsQuery>) -> Response {
    let mut list: Vec<_> = s
        .stats()
        .requests
        .into_iter()
        .filter(|r| {
            q.endpoint
                .is_none_or(|e| r.endpoint.is_some_and(|got| e.covers(got)))
        })
        .filter(|r| q.host.as_deref().is_none_or(|h| r.host == h))
        .collect();
    if let Some(n) = q.last {
        let skip = list.len().saturating_sub(n);
        list.drain(..skip);
    }
    data(&list)
}

/// The `/_fake` routes (nested under `/_fake`).
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/accounts", post(add_accounts).get(list_accounts))
        .route("/revoke", post(revoke))
        .route("/client", post(add_client).delete(clear_clients))
        .route("/codes", post(add_codes))
        .route("/quota", post(set_quota))
        .route("/quota_windows", post(set_quota_windows))
        .route("/expires_in", post(set_expires_in))
        .route("/invalidate_access_tokens", post(invalidate_access_tokens))
        .route(
            "/faults",
            post(push_faults).get(list_faults).delete(clear_faults),
        )
        .route("/stats", get(stats))
        .route("/reset_stats", post(reset_stats))
        .route("/reset", post(reset))
        .route("/fast", post(set_fast).get(get_fast))
        .route("/hosts", get(list_hosts).post(add_host))
        .route("/settings", get(get_settings).post(set_settings))
        .route("/requests", get(list_requests))
}
