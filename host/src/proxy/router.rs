//! The axum router: every route of the HTTP surface and the layers of the
//! ones off the hot path.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, head, post};
use axum::Router;

use super::state::ProxyState;
use super::answer::refused;
use super::{admin, admin_keys, auth, images, models, routes};

/// The whole router. The API routes carry no middleware: their handlers
/// take [`auth::Admitted`] and [`auth::ClientBody`], which do the same checks without a
/// boxed layer per request. Health, admin and the fallback keep layers
/// (off the hot path). The accounts page (`/ui`, and `GET /` that leads
/// to it) brings its own routes and guard.
pub fn router(app: Arc<ProxyState>, ui: Arc<crate::ui::Ui>) -> Router {
    let api = Router::new()
        .route("/v1beta/models", get(models::gemini_models))
        .route("/v1beta/models/{model_action}", post(routes::gemini_generate))
        .route("/v1/models", get(models::v1_models))
        // Gemini SDKs that default to API version v1.
        .route("/v1/models/{model_action}", post(routes::gemini_generate))
        .route("/v1/chat/completions", post(routes::openai_chat))
        .route("/v1/responses", post(routes::openai_responses))
        .route("/v1/messages", post(routes::anthropic_messages))
        .route("/v1/messages/count_tokens", post(models::anthropic_count))
        .route("/v1/images/generations", post(images::generations))
        .route("/v1/images/edits", post(images::edits));
    let admin = Router::new()
        .route("/admin/accounts", get(admin::admin_list).post(admin::admin_upsert))
        .route("/admin/accounts/{id}/enable", post(admin::admin_enable))
        .route("/admin/accounts/{id}/disable", post(admin::admin_disable))
        .route("/admin/accounts/{id}/egress", post(admin::admin_egress))
        .route("/admin/reload", post(admin::admin_reload))
        .route("/admin/keys", get(admin_keys::list).post(admin_keys::create))
        .route("/admin/keys/{name}", post(admin_keys::edit))
        .route("/admin/keys/{name}/revoke", post(admin_keys::revoke))
        .route("/admin/usage", get(admin_keys::usage))
        .route("/metrics", get(admin::metrics))
        .layer(middleware::from_fn_with_state(app.clone(), auth::admin_auth));
    Router::new()
        // Clients probe the root (Claude Code sends `HEAD /`); `GET /` is
        // the page's.
        .route("/", head(admin::root))
        .route("/health", get(admin::health))
        .layer(middleware::from_fn_with_state(app.clone(), auth::health_auth))
        .merge(api)
        .merge(admin)
        .merge(crate::ui::routes(ui))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let route = format!("{} {path}", req.method());
    refused(auth::protocol_of(&path), &route, 404, &format!("no route {route}"))
}

