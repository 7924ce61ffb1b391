//! The admin API of named keys and usage (behind the admin key):
//! `GET /admin/keys`, `POST /admin/keys` (make one: the key is in the
//! answer, once), `POST /admin/keys/{name}` (change its limits),
//! `POST /admin/keys/{name}/revoke`, and `GET /admin/usage`. The accounts
//! page asks the same questions through [`keys_answer`] and friends.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::admin_error;
use super::state::ProxyState;
use crate::keys::{KeyError, KeyForm, KeyRing};
use crate::usage::{By, UsageLog, UsageQuery};

/// The status a key error answers with.
fn key_status(e: &KeyError) -> StatusCode {
    match e {
        KeyError::NotFound { .. } => StatusCode::NOT_FOUND,
        KeyError::Duplicate { .. } => StatusCode::CONFLICT,
        KeyError::Io { .. } | KeyError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        KeyError::Cluster { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What a key operation answers: `(status, JSON)`, errors as
/// `{"error": {"message", "code"}}`.
pub type Answer = (StatusCode, serde_json::Value);

fn failed(e: KeyError) -> Answer {
    let status = key_status(&e);
    (status, serde_json::json!({"error": {"message": e.to_string(), "code": status.as_u16()}}))
}

fn now_secs() -> u64 {
    crate::util::now_ms() / 1000
}

/// Every key (never a key or its hash), with today's use.
pub async fn keys_answer(keys: &KeyRing) -> Answer {
    let ring = keys.clone();
    match tokio::task::spawn_blocking(move || ring.list()).await {
        Ok(list) => (StatusCode::OK, serde_json::json!({ "keys": list })),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": {"message": e.to_string(), "code": 500}})),
    }
}

/// Makes a key from a JSON [`KeyForm`]; the answer holds the key, once.
pub async fn create_answer(keys: &KeyRing, body: &[u8]) -> Answer {
    let form: KeyForm = match serde_json::from_slice(body) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, serde_json::json!({"error": {"message": format!("the body is not a key: {e} (send {{\"name\": …, \"models\": [globs], \"requests_per_minute\": n, \"tokens_per_day\": n, \"expires\": \"30d\"}})"), "code": 400}})),
    };
    let ring = keys.clone();
    let made = tokio::task::spawn_blocking(move || ring.add(form.spec(now_secs())?)).await;
    match made {
        Ok(Ok((record, secret))) => {
            tracing::info!(key = %record.name, "named key made");
            let view = keys.list().into_iter().find(|v| v.name == record.name);
            (StatusCode::CREATED, serde_json::json!({ "key": secret, "record": view, "note": "the key is shown this once: only its hash is kept" }))
        }
        Ok(Err(e)) => failed(e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": {"message": e.to_string(), "code": 500}})),
    }
}

/// Changes key `name` from a JSON [`KeyForm`] (absent fields stay).
pub async fn edit_answer(keys: &KeyRing, name: String, body: &[u8]) -> Answer {
    let form: KeyForm = match serde_json::from_slice(body) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, serde_json::json!({"error": {"message": format!("the body is not a key change: {e}"), "code": 400}})),
    };
    let ring = keys.clone();
    match tokio::task::spawn_blocking(move || ring.edit(&name, form.change(now_secs())?)).await {
        Ok(Ok(record)) => {
            tracing::info!(key = %record.name, "named key changed");
            let view = keys.list().into_iter().find(|v| v.name == record.name);
            (StatusCode::OK, serde_json::json!({ "record": view }))
        }
        Ok(Err(e)) => failed(e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": {"message": e.to_string(), "code": 500}})),
    }
}

/// Revokes key `name` (at once, on every node).
pub async fn revoke_answer(keys: &KeyRing, name: String) -> Answer {
    let ring = keys.clone();
    match tokio::task::spawn_blocking(move || ring.revoke(&name)).await {
        Ok(Ok(record)) => {
            tracing::info!(key = %record.name, "named key revoked");
            let view = keys.list().into_iter().find(|v| v.name == record.name);
            (StatusCode::OK, serde_json::json!({ "record": view }))
        }
        Ok(Err(e)) => failed(e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": {"message": e.to_string(), "code": 500}})),
    }
}

/// `?by=key|account|model|day|hour&since=24h&key=…&account=…&model=…`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct UsageParams {
    by: Option<String>,
    since: Option<String>,
    key: Option<String>,
    account: Option<String>,
    model: Option<String>,
}

impl UsageParams {
    fn query(&self) -> Result<UsageQuery, String> {
        let by = match self.by.as_deref().unwrap_or("key") {
            "key" => By::Key,
            "account" => By::Account,
            "model" => By::Model,
            "day" => By::Day,
            "hour" => By::Hour,
            other => return Err(format!("by={other}: use key, account, model, day or hour")),
        };
        let span = crate::usage::parse_span(self.since.as_deref().unwrap_or("24h")).map_err(|e| e.to_string())?;
        Ok(UsageQuery {
            by,
            since_ms: crate::util::now_ms().saturating_sub(span),
            key: self.key.clone(),
            account: self.account.clone(),
            model: self.model.clone(),
        })
    }
}

/// Asks the usage log `ask` (off the async threads), after writing what
/// waits for the writer: every row recorded so far is in the answer.
async fn ask_usage<T: Send + 'static>(
    usage: &UsageLog,
    params: &UsageParams,
    ask: impl FnOnce(&UsageLog, &UsageQuery) -> Result<T, crate::usage::UsageError> + Send + 'static,
    answer: impl FnOnce(T, &UsageQuery) -> serde_json::Value,
) -> Answer {
    let q = match params.query() {
        Ok(q) => q,
        Err(message) => return (StatusCode::BAD_REQUEST, serde_json::json!({"error": {"message": message, "code": 400}})),
    };
    let (log, asked) = (usage.clone(), q.clone());
    let fail = |message: String| (StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": {"message": message, "code": 500}}));
    match tokio::task::spawn_blocking(move || {
        log.flush();
        ask(&log, &asked)
    })
    .await
    {
        Ok(Ok(found)) => (StatusCode::OK, answer(found, &q)),
        Ok(Err(e)) => fail(e.to_string()),
        Err(e) => fail(e.to_string()),
    }
}

/// The usage report.
pub async fn usage_answer(usage: &UsageLog, params: &UsageParams) -> Answer {
    ask_usage(usage, params, |log, q| log.query(q), |report, _| serde_json::to_value(report).unwrap_or_default()).await
}

/// The page's chart: tokens and requests per hour, by key, model or account.
pub async fn series_answer(usage: &UsageLog, params: &UsageParams) -> Answer {
    ask_usage(usage, params, |log, q| log.series(q.since_ms, q.by), |points, q| serde_json::json!({ "by": q.by, "since_ms": q.since_ms, "points": points })).await
}

fn respond((status, body): Answer) -> Response {
    (status, Json(body)).into_response()
}

/// `GET /admin/keys`.
pub(super) async fn list(State(app): State<Arc<ProxyState>>) -> Response {
    respond(keys_answer(&app.keys).await)
}

/// `POST /admin/keys`.
pub(super) async fn create(State(app): State<Arc<ProxyState>>, body: Bytes) -> Response {
    respond(create_answer(&app.keys, &body).await)
}

/// `POST /admin/keys/{name}`.
pub(super) async fn edit(State(app): State<Arc<ProxyState>>, Path(name): Path<String>, body: Bytes) -> Response {
    respond(edit_answer(&app.keys, name, &body).await)
}

/// `POST /admin/keys/{name}/revoke`.
pub(super) async fn revoke(State(app): State<Arc<ProxyState>>, Path(name): Path<String>) -> Response {
    respond(revoke_answer(&app.keys, name).await)
}

/// `GET /admin/usage`.
pub(super) async fn usage(State(app): State<Arc<ProxyState>>, Query(params): Query<HashMap<String, String>>) -> Response {
    let unknown: Vec<&String> = params.keys().filter(|k| !["by", "since", "key", "account", "model"].contains(&k.as_str())).collect();
    if !unknown.is_empty() {
        return admin_error(StatusCode::BAD_REQUEST, &format!("unknown parameter(s) {unknown:?}: use by, since, key, account, model"));
    }
    let p = UsageParams {
        by: params.get("by").cloned(),
        since: params.get("since").cloned(),
        key: params.get("key").cloned(),
        account: params.get("account").cloned(),
        model: params.get("model").cloned(),
    };
    respond(usage_answer(&app.usage, &p).await)
}
