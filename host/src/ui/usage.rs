//! The page's Usage view: named keys (list, make, change, revoke) and the
//! usage log (totals and the hourly chart), through the same functions as
//! the admin API ([`crate::proxy::admin_keys`]); and the tokens each account
//! served in its current 5-hour and weekly quota windows (summed in
//! [`super::served`]), which the accounts table shows next to the window
//! bars.
//!
//! A made key is in the answer of `POST /ui/api/keys` once; nothing here
//! logs or keeps it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::reply::json;
use super::state::Ui;
use crate::proxy::admin_keys::{self, Answer, UsageParams};

type Ui_ = State<Arc<Ui>>;

fn respond((status, body): Answer) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `GET /ui/api/keys`: every named key with today's use (never a key).
pub async fn keys(State(ui): Ui_) -> Response {
    respond(admin_keys::keys_answer(&ui.proxy.keys).await)
}

/// `POST /ui/api/keys` `{"name", "models", "requests_per_minute",
/// "tokens_per_day", "expires"}`: make a key; the answer holds it, once.
pub async fn create(State(ui): Ui_, body: Bytes) -> Response {
    respond(admin_keys::create_answer(&ui.proxy.keys, &body).await)
}

/// `POST /ui/api/keys/{name}`: change its limits or expiry.
pub async fn edit(State(ui): Ui_, Path(name): Path<String>, body: Bytes) -> Response {
    respond(admin_keys::edit_answer(&ui.proxy.keys, name, &body).await)
}

/// `POST /ui/api/keys/{name}/revoke`.
pub async fn revoke(State(ui): Ui_, Path(name): Path<String>) -> Response {
    respond(admin_keys::revoke_answer(&ui.proxy.keys, name).await)
}

/// `GET /ui/api/usage?by=key|account|model&since=24h`: the period's totals.
pub async fn usage(State(ui): Ui_, Query(params): Query<UsageParams>) -> Response {
    respond(admin_keys::usage_answer(&ui.proxy.usage, &params).await)
}

/// `GET /ui/api/usage/series?by=key|account|model&since=7d`: hourly
/// requests and tokens per group, for the chart.
pub async fn series(State(ui): Ui_, Query(params): Query<UsageParams>) -> Response {
    respond(admin_keys::series_answer(&ui.proxy.usage, &params).await)
}

/// `GET /ui/api/usage/accounts`: `{"accounts": {id: {five_hour, weekly}}}`,
/// what each account served in its current windows (at most
/// [`super::served::FRESH`] old), so that the accounts table stays current
/// without a row event.
pub async fn accounts(State(ui): Ui_) -> Response {
    let served = ui.served.fresh(&ui.proxy).await;
    json(serde_json::json!({ "accounts": &*served }))
}
