//! The admin API (`/admin/*`, behind the admin key) and `/metrics`:
//! accounts without their tokens, upserts, taking an account off the proxy
//! and back, reloading the policy and the accounts.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::admin_error;
use super::state::ProxyState;
use crate::manage::{ManageError, Manager};

/// `GET /` and `HEAD /`: the proxy is up (clients probe the root).
pub(super) async fn root() -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": "grantpool", "version": env!("CARGO_PKG_VERSION"), "health": "/health"}))
}

/// `GET /health`: always 200; in cluster mode `"degraded"` with the cause
/// while Redis is unreachable (the node serves from its last known pool).
pub(super) async fn health(State(app): State<Arc<ProxyState>>) -> Json<serde_json::Value> {
    let version = env!("CARGO_PKG_VERSION");
    Json(match app.store.cluster().map(|c| c.status()) {
        Some(s) if !s.connected => serde_json::json!({
            "status": "degraded",
            "version": version,
            "cause": s.cause,
            "journal": s.journal_len,
        }),
        Some(_) => serde_json::json!({"status": "ok", "version": version, "cluster": "connected"}),
        None => serde_json::json!({"status": "ok", "version": version}),
    })
}

/// `GET /admin/accounts`.
/// Each account carries `egress_proxy` (its proxy's name, endpoint and
/// health; never the URL's credentials) when its calls go through one, and
/// `egress` lists every proxy in use.
pub(super) async fn admin_list(State(app): State<Arc<ProxyState>>) -> Json<serde_json::Value> {
    let egress = &app.dispatcher.upstream.egress;
    let accounts: Vec<serde_json::Value> = app
        .dispatcher
        .pool
        .views()
        .into_iter()
        .map(|v| {
            let proxy = egress.of_account(v.egress.as_deref());
            let mut j = serde_json::to_value(v).unwrap_or_default();
            if let (Some(p), Some(obj)) = (proxy, j.as_object_mut()) {
                obj.insert("egress_proxy".into(), serde_json::to_value(p).unwrap_or_default());
            }
            j
        })
        .collect();
    let proxies: Vec<_> = egress.entries().iter().map(|e| e.health()).collect();
    Json(serde_json::json!({ "accounts": accounts, "egress": proxies }))
}

/// Body of `POST /admin/accounts`: a refresh token, the client that
/// issued it, and (optionally) the email the caller expects.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertBody {
    refresh_token: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, alias = "oauth_client")]
    client: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    /// The outbound proxy its calls go through (a name in `[egress.proxies]`).
    #[serde(default)]
    egress: Option<String>,
}

/// `POST /admin/accounts`: the same upsert as `grantpool accounts add` —
/// the token is exchanged first and the email is the one Google's userinfo
/// returns; a given email that differs is refused; nothing is written for a
/// token Google refuses. `"egress": "NAME"` sets the account's outbound
/// proxy (an unknown name is refused with 400, nothing sent or written).
pub(super) async fn admin_upsert(State(app): State<Arc<ProxyState>>, body: axum::body::Bytes) -> Response {
    let body: UpsertBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, &format!("expected {{\"refresh_token\", \"client\"?, \"email\"?, \"project_id\"?, \"egress\"?}}: {e}")),
    };
    let manager = Manager::new(&app.store, &app.dispatcher.pool, &app.oauth);
    match manager.add_refresh_token(body.client.as_deref(), &body.refresh_token, body.email.as_deref(), body.project_id, body.egress.as_deref()).await {
        Ok(outcome) => {
            let view = app.dispatcher.pool.view(&outcome.account.id);
            Json(serde_json::json!({"created": outcome.created, "recovered": outcome.recovered, "account": view})).into_response()
        }
        Err(e) => manage_error(&e),
    }
}

/// Body of `POST /admin/accounts/{id}/egress`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressBody {
    egress: Option<String>,
}

/// `POST /admin/accounts/{id}/egress` `{"egress": "NAME"}` or
/// `{"egress": null}` (the pool's default): the account's outbound proxy,
/// written to its record; its next call goes that way. An unknown name is
/// refused with 400 naming the configured ones.
pub(super) async fn admin_egress(State(app): State<Arc<ProxyState>>, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let body: EgressBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, &format!("expected {{\"egress\": \"NAME\"}} or {{\"egress\": null}} (the pool's default): {e}")),
    };
    let manager = Manager::new(&app.store, &app.dispatcher.pool, &app.oauth);
    match manager.set_egress(&id, body.egress.as_deref()).await {
        Ok(file) => {
            let view = app.dispatcher.pool.view(&file.id);
            let proxy = app.dispatcher.upstream.egress.of_account(file.egress.as_deref());
            Json(serde_json::json!({"account": view, "egress": file.egress, "egress_proxy": proxy})).into_response()
        }
        Err(e) => manage_error(&e),
    }
}

fn manage_error(e: &ManageError) -> Response {
    admin_error(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), &e.to_string())
}

async fn set_proxy_disabled(app: Arc<ProxyState>, id: String, disable: bool) -> Response {
    let manager = Manager::new(&app.store, &app.dispatcher.pool, &app.oauth);
    match manager.set_on_proxy(&id, !disable, "disabled by hand (admin API)").await {
        Ok(file) => {
            let note = (!disable && file.disabled).then_some(
                "the account is still disabled (dead refresh token): re-add it with a new refresh token to recover it",
            );
            let view = app.dispatcher.pool.view(&file.id);
            Json(serde_json::json!({"account": view, "note": note})).into_response()
        }
        Err(e) => manage_error(&e),
    }
}

pub(super) async fn admin_enable(State(app): State<Arc<ProxyState>>, Path(id): Path<String>) -> Response {
    set_proxy_disabled(app, id, false).await
}

pub(super) async fn admin_disable(State(app): State<Arc<ProxyState>>, Path(id): Path<String>) -> Response {
    set_proxy_disabled(app, id, true).await
}

pub(super) async fn admin_reload(State(app): State<Arc<ProxyState>>) -> Response {
    let a = app.clone();
    let _ = tokio::task::spawn_blocking(move || a.dispatcher.pool.resync(a.store.load_all())).await;
    let handle = app.policy.clone();
    match tokio::task::spawn_blocking(move || handle.reload()).await {
        Ok(Ok(p)) => Json(serde_json::json!({"reloaded": true, "policy": p.describe(), "accounts": app.dispatcher.pool.len()})).into_response(),
        Ok(Err(e)) => admin_error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e} (the running policy stays)")),
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub(super) async fn metrics(State(app): State<Arc<ProxyState>>) -> Response {
    use crate::pool::AccountState;
    let (mut active, mut disabled, mut proxy, mut cooling) = (0, 0, 0, 0);
    let views = app.dispatcher.pool.views();
    for v in &views {
        match v.state {
            AccountState::Active => active += 1,
            AccountState::Disabled { .. } => disabled += 1,
            AccountState::ProxyDisabled { .. } => proxy += 1,
            AccountState::CoolingDown { .. } => cooling += 1,
        }
    }
    app.dispatcher.metrics.set_accounts(active, disabled, proxy, cooling);
    app.dispatcher.metrics.set_quota_windows(
        views.iter().flat_map(|v| v.quota_windows.iter().map(move |(bucket, w)| (v.id.as_str(), bucket.as_str(), w))),
    );
    let c = &app.dispatcher.actions.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let extra = format!(
        "# TYPE grantpool_token_refreshes counter\ngrantpool_token_refreshes_total {}\n\
         # TYPE grantpool_disables counter\ngrantpool_disables_total {}\n\
         # TYPE grantpool_disables_refused_by_guard counter\ngrantpool_disables_refused_by_guard_total {}\n\
         # TYPE grantpool_cooldowns counter\ngrantpool_cooldowns_total {}\n\
         # TYPE grantpool_proxy_disables counter\ngrantpool_proxy_disables_total {}\n",
        app.dispatcher.tokens.refresh_count(),
        load(&c.disables),
        load(&c.guarded),
        load(&c.cooldowns),
        load(&c.proxy_disables),
    );
    let mut extra = extra;
    let proxies = app.dispatcher.upstream.egress.entries();
    if !proxies.is_empty() {
        extra.push_str("# HELP grantpool_egress_up Whether an egress proxy passed its last check (or tunnel).\n# TYPE grantpool_egress_up gauge\n");
        for p in proxies {
            let name = p.name.replace('\\', "\\\\").replace('"', "\\\"");
            extra.push_str(&format!("grantpool_egress_up{{proxy=\"{name}\"}} {}\n", u8::from(p.healthy())));
        }
    }
    if let Some(s) = app.store.cluster().map(|c| c.status()) {
        extra.push_str(&format!(
            "# HELP grantpool_cluster_connected Whether Redis (the cluster store) answers.\n# TYPE grantpool_cluster_connected gauge\ngrantpool_cluster_connected {}\n\
             # HELP grantpool_cluster_sync_lag_milliseconds Last change from another node: sent to applied here.\n# TYPE grantpool_cluster_sync_lag_milliseconds gauge\ngrantpool_cluster_sync_lag_milliseconds {}\n\
             # HELP grantpool_cluster_journal_entries Decisions kept locally until Redis is back.\n# TYPE grantpool_cluster_journal_entries gauge\ngrantpool_cluster_journal_entries {}\n\
             # TYPE grantpool_cluster_changes_applied counter\ngrantpool_cluster_changes_applied_total {}\n\
             # TYPE grantpool_cluster_disconnects counter\ngrantpool_cluster_disconnects_total {}\n",
            u8::from(s.connected),
            s.sync_lag_ms,
            s.journal_len,
            s.changes_applied,
            s.disconnects,
        ));
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        Body::from(app.dispatcher.metrics.render(&extra)),
    )
        .into_response()
}

