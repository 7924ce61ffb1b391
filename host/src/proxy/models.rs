//! The model routes: the lists (Gemini, OpenAI and Anthropic shapes, from
//! the models Google lists for the pool's profiles, then the configured
//! ones) and token counting (Gemini `:countTokens`, Anthropic
//! `/v1/messages/count_tokens`, through `v1internal:countTokens`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::{Admitted, ClientBody};
use super::state::ProxyState;
use super::answer::{dispatch_error, refused};
use crate::plugins::Protocol;
use crate::translate::anthropic;
use crate::upstream::catalogue::ModelInfo;

/// Every model to list: Google's (when known), then the configured list
/// and the exact names of the `[models]` mapping.
fn listed(app: &ProxyState) -> Vec<ModelInfo> {
    let mut models = app.dispatcher.upstream.catalogue.models();
    let known: std::collections::HashSet<String> = models.iter().map(|m| m.id.clone()).collect();
    let configured = app.config.upstream.models.iter().chain(app.config.models.keys().filter(|k| !k.contains('*')));
    let mut extra: Vec<String> = configured.filter(|m| !known.contains(*m)).cloned().collect();
    extra.sort();
    extra.dedup();
    models.extend(extra.into_iter().map(|id| ModelInfo { id, ..ModelInfo::default() }));
    models
}

/// The Gemini `models[]` entries.
fn gemini_entries(models: &[ModelInfo]) -> Vec<Value> {
    models
        .iter()
        .map(|m| {
            let mut v = json!({
                "name": format!("models/{}", m.id),
                "displayName": m.display_name.as_deref().unwrap_or(&m.id),
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            });
            if let Some(n) = m.max_tokens {
                v["inputTokenLimit"] = n.into();
            }
            if let Some(n) = m.max_output_tokens {
                v["outputTokenLimit"] = n.into();
            }
            if m.supports_thinking {
                v["thinking"] = true.into();
            }
            v
        })
        .collect()
}

/// `GET /v1beta/models`.
pub async fn gemini_models(_: Admitted, State(app): State<Arc<ProxyState>>) -> Json<Value> {
    Json(json!({ "models": gemini_entries(&listed(&app)) }))
}

/// `GET /v1/models`: Anthropic's shape when the request carries an
/// `anthropic-version` header; else OpenAI's `data` together with Gemini's
/// `models` (current Gemini SDKs, whose default API version is `v1`, list
/// models here too).
pub async fn v1_models(_: Admitted, State(app): State<Arc<ProxyState>>, headers: HeaderMap) -> Json<Value> {
    let models = listed(&app);
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = models
            .iter()
            .map(|m| json!({"type": "model", "id": m.id, "display_name": m.display_name.as_deref().unwrap_or(&m.id), "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        let (first, last) = (models.first().map(|m| m.id.clone()), models.last().map(|m| m.id.clone()));
        return Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}));
    }
    let data: Vec<Value> = models.iter().map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": "google"})).collect();
    Json(json!({ "object": "list", "data": data, "models": gemini_entries(&models) }))
}

/// `POST /v1beta/models/{model}:countTokens`: `{"contents": …}` or
/// `{"generateContentRequest": {…}}` → `{"totalTokens": N}`.
pub async fn gemini_count(app: Arc<ProxyState>, client_model: &str, body: &[u8]) -> Response {
    let route = "POST /v1beta/models/{model}:countTokens";
    let v: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return refused(Protocol::Gemini, route, 400, "the request body must be a JSON object"),
        Err(e) => return refused(Protocol::Gemini, route, 400, &format!("request body is not JSON: {e}")),
    };
    let request = v.get("generateContentRequest").cloned().unwrap_or(v);
    count(app, Protocol::Gemini, client_model, &request, |n| json!({"totalTokens": n})).await
}

/// `POST /v1/messages/count_tokens` → `{"input_tokens": N}`.
pub async fn anthropic_count(_: Admitted, State(app): State<Arc<ProxyState>>, ClientBody(body): ClientBody) -> Response {
    let req = match anthropic::parse_request(&body) {
        Ok(r) => r,
        Err(e) => return refused(Protocol::Anthropic, "POST /v1/messages/count_tokens", e.status(), &e.to_string()),
    };
    let request = match serde_json::to_value(&req.gemini) {
        Ok(v) => v,
        Err(e) => return refused(Protocol::Anthropic, "POST /v1/messages/count_tokens", 500, &format!("cannot encode the translated request: {e}")),
    };
    count(app, Protocol::Anthropic, &req.model, &request, |n| json!({"input_tokens": n})).await
}

async fn count(app: Arc<ProxyState>, protocol: Protocol, client_model: &str, request: &Value, shape: impl Fn(u64) -> Value) -> Response {
    let model = app.upstream_model(client_model);
    let policy = app.policy.current();
    match app.dispatcher.count_tokens(&policy, protocol, &model, request).await {
        Ok(n) => Json(shape(n)).into_response(),
        Err(e) => dispatch_error(protocol, e),
    }
}
