//! The page's routes, all behind [`guard`](super::guard::guard).

use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use super::guard::guard;
use super::state::Ui;
use super::{api, assets, stream, usage};

/// Every `/ui` route (and `GET /`, which leads to the page), ready to merge
/// into the proxy's router.
pub fn routes<S: Clone + Send + Sync + 'static>(ui: Arc<Ui>) -> Router<S> {
    Router::new()
        .route("/", get(assets::to_page))
        .route("/ui", get(assets::page))
        .route("/ui/", get(assets::page))
        .route("/ui/assets/{name}", get(assets::asset))
        .route("/ui/oauth/callback", get(api::callback))
        .route("/ui/api/session", get(api::session).post(api::sign_in).delete(api::sign_out))
        .route("/ui/api/accounts", get(api::accounts).post(api::add))
        .route("/ui/api/accounts/{id}", get(api::account).delete(api::remove))
        .route("/ui/api/accounts/{id}/events", get(api::events))
        .route("/ui/api/accounts/{id}/labels", post(api::labels))
        .route("/ui/api/accounts/{id}/on", post(api::on_proxy))
        .route("/ui/api/accounts/{id}/off", post(api::off_proxy))
        .route("/ui/api/accounts/{id}/egress", post(api::egress))
        .route("/ui/api/overview", get(api::overview))
        .route("/ui/api/traffic", get(api::traffic))
        .route("/ui/api/reload", post(api::reload))
        .route("/ui/api/stream", get(stream::stream))
        .route("/ui/api/keys", get(usage::keys).post(usage::create))
        .route("/ui/api/keys/{name}", post(usage::edit))
        .route("/ui/api/keys/{name}/revoke", post(usage::revoke))
        .route("/ui/api/usage", get(usage::usage))
        .route("/ui/api/usage/series", get(usage::series))
        .route("/ui/api/usage/accounts", get(usage::accounts))
        .route("/ui/api/signin", post(api::signin_start))
        .route("/ui/api/signin/{state}", get(api::signin_status).post(api::signin_paste))
        .layer(middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}
