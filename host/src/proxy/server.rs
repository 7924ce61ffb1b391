//! The axum server: routes, client authentication, the DNS-rebinding
//! guard, admin endpoints and metrics.

use std::sync::Arc;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use subtle::ConstantTimeEq;

use super::{error_response, routes};
use crate::app::App;
use crate::config::AuthMode;
use crate::plugins::Protocol;
use crate::store::{NewAccount, TokenData};

/// The whole router. The API routes carry no middleware: their handlers
/// take [`Admitted`] and [`ClientBody`], which do the same checks without a
/// boxed layer per request. Health, admin and the fallback keep layers
/// (off the hot path).
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/v1beta/models", get(routes::gemini_models))
        .route("/v1beta/models/{model_action}", post(routes::gemini_generate))
        .route("/v1/models", get(routes::openai_models))
        // Gemini SDKs that default to API version v1.
        .route("/v1/models/{model_action}", post(routes::gemini_generate))
        .route("/v1/chat/completions", post(routes::openai_chat))
        .route("/v1/messages", post(routes::anthropic_messages));
    let admin = Router::new()
        .route("/admin/accounts", get(admin_list).post(admin_upsert))
        .route("/admin/accounts/{id}/enable", post(admin_enable))
        .route("/admin/accounts/{id}/disable", post(admin_disable))
        .route("/admin/reload", post(admin_reload))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(app.clone(), admin_auth));
    Router::new()
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(app.clone(), health_auth))
        .merge(api)
        .merge(admin)
        .fallback(not_found)
        .with_state(app)
}

/// A client request the API routes accept: its `Host` passed the
/// DNS-rebinding guard and it carries a valid key (unless auth is off).
/// Refusals come in the route's protocol shape.
pub struct Admitted;

impl FromRequestParts<Arc<App>> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let path = parts.uri.path();
        if let Some(refused) = host_refused(app, &parts.headers, path) {
            return Err(refused);
        }
        if effective_mode(app) != AuthMode::Off
            && !client_key(&parts.headers).is_some_and(|k| key_matches(k, &app.config.server.api_keys))
        {
            return Err(error_response(
                protocol_of(path),
                401,
                "missing or wrong API key: send it as `Authorization: Bearer KEY`, `x-api-key` or `x-goog-api-key`",
            ));
        }
        Ok(Admitted)
    }
}

/// The conversation id a client sent (`x-session-id` or
/// `x-grantpool-session`), read without copying the other headers.
pub struct SessionHeader(pub Option<String>);

impl FromRequestParts<Arc<App>> for SessionHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<App>) -> Result<Self, Self::Rejection> {
        Ok(SessionHeader(
            ["x-session-id", "x-grantpool-session"]
                .iter()
                .find_map(|h| parts.headers.get(*h).and_then(|v| v.to_str().ok()))
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        ))
    }
}

/// A request body of at most `server.max_body_bytes`; a larger one is
/// refused with 413 in the route's protocol shape.
pub struct ClientBody(pub Bytes);

impl FromRequest<Arc<App>> for ClientBody {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Response> {
        let protocol = protocol_of(req.uri().path());
        let max = app.config.server.max_body_bytes;
        let too_large = || error_response(protocol, 413, "request body is larger than server.max_body_bytes");
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        match axum::body::to_bytes(req.into_body(), max).await {
            Ok(b) => Ok(ClientBody(b)),
            Err(e) if is_length_limit(&e) => Err(too_large()),
            Err(e) => Err(error_response(protocol, 400, &format!("could not read the request body: {e}"))),
        }
    }
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    crate::util::error_chain(e).any(|e| e.is::<http_body_util::LengthLimitError>())
}

fn protocol_of(path: &str) -> Protocol {
    if path.starts_with("/v1beta") || (path.starts_with("/v1/models/") && path.contains(':')) {
        Protocol::Gemini
    } else if path.starts_with("/v1/messages") {
        Protocol::Anthropic
    } else {
        Protocol::Openai
    }
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    error_response(protocol_of(&path), 404, &format!("no route {} {path}", req.method()))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// Loopback names and addresses.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host }),
    };
    // Compared without lowercasing into a new string (every request).
    let name = name.trim_end_matches('.');
    let (bytes, suffix) = (name.as_bytes(), b".localhost");
    name.eq_ignore_ascii_case("localhost")
        || (bytes.len() > suffix.len() && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// DNS-rebinding guard: on a loopback listener a web page could reach us
/// through a name it controls; only loopback names or configured ones pass.
fn host_refused(app: &App, headers: &HeaderMap, path: &str) -> Option<Response> {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let allowed = &app.config.server.allowed_hosts;
    let name_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let ok = if app.loopback {
        host.is_empty() || is_loopback_host(host) || allowed.iter().any(|a| a.eq_ignore_ascii_case(name_only) || a.eq_ignore_ascii_case(host))
    } else {
        allowed.is_empty() || is_loopback_host(host) || allowed.iter().any(|a| a.eq_ignore_ascii_case(name_only) || a.eq_ignore_ascii_case(host))
    };
    if !ok {
        tracing::warn!(host, "refused a request for an unknown Host (DNS-rebinding guard); add it to server.allowed_hosts if it is yours");
        return Some(error_response(protocol_of(path), 403, &format!("Host `{host}` is not allowed: add it to server.allowed_hosts")));
    }
    None
}

/// The key a client sent, from any of the three usual headers.
fn client_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(k) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(k.trim());
        }
    }
    ["x-api-key", "x-goog-api-key"].iter().find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
}

fn key_matches(sent: &str, keys: &[String]) -> bool {
    // Compare against every key, in constant time per key.
    keys.iter().fold(false, |found, k| found | bool::from(sent.as_bytes().ct_eq(k.as_bytes())))
}

fn effective_mode(app: &App) -> AuthMode {
    match app.config.server.auth_mode {
        AuthMode::Auto if app.loopback && app.config.server.api_keys.is_empty() => AuthMode::Off,
        AuthMode::Auto => AuthMode::AllExceptHealth,
        m => m,
    }
}

async fn health_auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(refused) = host_refused(&app, req.headers(), req.uri().path()) {
        return refused;
    }
    if effective_mode(&app) == AuthMode::Strict
        && !client_key(req.headers()).is_some_and(|k| key_matches(k, &app.config.server.api_keys))
    {
        return error_response(Protocol::Openai, 401, "missing or wrong API key");
    }
    next.run(req).await
}

async fn admin_auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(refused) = host_refused(&app, req.headers(), req.uri().path()) {
        return refused;
    }
    let Some(admin_key) = app.config.server.admin_key.as_deref().filter(|k| !k.is_empty()) else {
        return admin_error(StatusCode::FORBIDDEN, "the admin API is off: set server.admin_key (or $GRANTPOOL_ADMIN_KEY) to use it");
    };
    if !client_key(req.headers()).is_some_and(|k| bool::from(k.as_bytes().ct_eq(admin_key.as_bytes()))) {
        return admin_error(StatusCode::UNAUTHORIZED, "missing or wrong admin key");
    }
    next.run(req).await
}

fn admin_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"error": {"message": message, "code": status.as_u16()}}))).into_response()
}

async fn admin_list(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "accounts": app.pool.views() }))
}

/// Body of `POST /admin/accounts`.
#[derive(serde::Deserialize)]
struct UpsertBody {
    email: String,
    refresh_token: String,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expiry_timestamp: Option<i64>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    oauth_client: Option<String>,
}

async fn admin_upsert(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    let body: UpsertBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, &format!("expected {{\"email\", \"refresh_token\", …}}: {e}")),
    };
    let mut token = TokenData::new(body.access_token.unwrap_or_default(), body.refresh_token, body.expiry_timestamp.unwrap_or(0));
    token.project_id = body.project_id;
    token.oauth_client = body.oauth_client;
    let store = app.store.clone();
    let new = NewAccount { email: body.email, token };
    match tokio::task::spawn_blocking(move || store.upsert(new)).await {
        Ok(Ok(outcome)) => {
            app.pool.upsert_file(outcome.account.clone());
            tracing::info!(account = %outcome.account.id, email = %outcome.account.email, created = outcome.created, recovered = outcome.recovered, "account upserted through the admin API");
            let view = app.pool.views().into_iter().find(|v| v.id == outcome.account.id);
            Json(serde_json::json!({"created": outcome.created, "recovered": outcome.recovered, "account": view})).into_response()
        }
        Ok(Err(e)) => admin_error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn set_proxy_disabled(app: Arc<App>, id: String, disable: bool) -> Response {
    let store = app.store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let Some(file) = store.find(&id)? else { return Ok(None) };
        let now = crate::util::now_secs();
        store
            .update(&file.id, |f| {
                if disable {
                    f.proxy_disable("disabled by hand (admin API)", now)
                } else {
                    f.clear_proxy_disabled()
                }
            })
            .map(Some)
    })
    .await;
    match result {
        Ok(Ok(Some(file))) => {
            app.pool.upsert_file(file.clone());
            let note = (!disable && file.disabled).then_some(
                "the account is still disabled (dead refresh token): re-add it with a new refresh token to recover it",
            );
            let view = app.pool.views().into_iter().find(|v| v.id == file.id);
            Json(serde_json::json!({"account": view, "note": note})).into_response()
        }
        Ok(Ok(None)) => admin_error(StatusCode::NOT_FOUND, "no account with that id or email"),
        Ok(Err(e)) => admin_error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn admin_enable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    set_proxy_disabled(app, id, false).await
}

async fn admin_disable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    set_proxy_disabled(app, id, true).await
}

async fn admin_reload(State(app): State<Arc<App>>) -> Response {
    let a = app.clone();
    let _ = tokio::task::spawn_blocking(move || crate::watch::resync_all(&a)).await;
    let handle = app.policy.clone();
    match tokio::task::spawn_blocking(move || handle.reload()).await {
        Ok(Ok(p)) => Json(serde_json::json!({"reloaded": true, "policy": p.describe(), "accounts": app.pool.len()})).into_response(),
        Ok(Err(e)) => admin_error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e} (the running policy stays)")),
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    use crate::pool::AccountState;
    let (mut active, mut disabled, mut proxy, mut cooling) = (0, 0, 0, 0);
    for v in app.pool.views() {
        match v.state {
            AccountState::Active => active += 1,
            AccountState::Disabled { .. } => disabled += 1,
            AccountState::ProxyDisabled { .. } => proxy += 1,
            AccountState::CoolingDown { .. } => cooling += 1,
        }
    }
    app.metrics.set_accounts(active, disabled, proxy, cooling);
    let c = &app.actions.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let extra = format!(
        "# TYPE grantpool_token_refreshes counter\ngrantpool_token_refreshes_total {}\n\
         # TYPE grantpool_disables counter\ngrantpool_disables_total {}\n\
         # TYPE grantpool_disables_refused_by_guard counter\ngrantpool_disables_refused_by_guard_total {}\n\
         # TYPE grantpool_cooldowns counter\ngrantpool_cooldowns_total {}\n\
         # TYPE grantpool_proxy_disables counter\ngrantpool_proxy_disables_total {}\n",
        app.tokens.refresh_count(),
        load(&c.disables),
        load(&c.guarded),
        load(&c.cooldowns),
        load(&c.proxy_disables),
    );
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        Body::from(app.metrics.render(&extra)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "localhost:8045", "127.0.0.1:8045", "[::1]:8045", "127.0.0.2", "app.localhost"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["evil.com", "evil.com:8045", "10.0.0.1", "localhost.evil.com"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn keys() {
        let keys = vec!["sk-a".to_string(), "sk-bb".to_string()];
        assert!(key_matches("sk-bb", &keys));
        assert!(!key_matches("sk-b", &keys));
        assert!(!key_matches("", &keys));
    }
}
