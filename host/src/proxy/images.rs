//! OpenAI's Images API over Google's image models:
//! `POST /v1/images/generations` (JSON) and `POST /v1/images/edits`
//! (multipart/form-data). Each image asked for is one call through the pool
//! (select → token → upstream → classify → retry, like any request), so
//! quota and cooldowns are the image model's own; the translation is
//! [`crate::translate::images`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::Value;

use super::answer::{dispatch_error, error_response, refused, with_account};
use super::auth::{Admitted, ClientBody};
use super::dispatch::{Call, Served};
use super::ledger::Ledger;
use super::state::ProxyState;
use crate::keys::NamedKey;
use crate::plugins::Protocol;
use crate::policy::Policy;
use crate::pool::LiveAccount;
use crate::translate::images::{self, ImageAnswer, ImageFields, ImageRequest, InlineImage};

/// `POST /v1/images/generations`.
pub async fn generations(admitted: Admitted, State(app): State<Arc<ProxyState>>, ClientBody(body): ClientBody) -> Response {
    const ROUTE: &str = "POST /v1/images/generations";
    match images::parse_generation(&body) {
        Ok(req) => run(app, req, admitted.key).await,
        Err(e) => refused(Protocol::Openai, ROUTE, e.status(), &e.to_string()),
    }
}

/// `POST /v1/images/edits`: a form with `image` (or `image[]`, one or
/// more files), an optional `mask`, `prompt`, `n`, `size`, `model`,
/// `response_format`, `quality`. Read whole first, so the body limit
/// (`server.max_body_bytes`) bounds it.
pub async fn edits(admitted: Admitted, State(app): State<Arc<ProxyState>>, headers: HeaderMap, ClientBody(body): ClientBody) -> Response {
    const ROUTE: &str = "POST /v1/images/edits";
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return refused(Protocol::Openai, ROUTE, 400, "send the edit as multipart/form-data (fields `image`, `prompt`, …), as the OpenAI SDK's `images.edit` does");
    };
    match read_form(body, boundary).await {
        Ok((fields, imgs, mask)) => match images::parse_edit(fields, imgs, mask) {
            Ok(req) => run(app, req, admitted.key).await,
            Err(e) => refused(Protocol::Openai, ROUTE, e.status(), &e.to_string()),
        },
        Err(message) => refused(Protocol::Openai, ROUTE, 400, &message),
    }
}

/// The form's text fields, its images and its mask.
async fn read_form(body: Bytes, boundary: String) -> Result<(ImageFields, Vec<InlineImage>, Option<InlineImage>), String> {
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut fields, mut imgs, mut mask) = (ImageFields::default(), Vec::new(), None);
    let bad_form = |e: multer::Error| format!("the multipart/form-data body cannot be read: {e}");
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or("").to_string();
        let declared = field.content_type().map(|m| m.essence_str().to_string());
        let is_image = name == "image" || name.starts_with("image[");
        if is_image || name == "mask" {
            let bytes = field.bytes().await.map_err(bad_form)?;
            let mime = images::sniff_mime(&bytes)
                .map(str::to_string)
                .or(declared.filter(|m| m.starts_with("image/")))
                .ok_or_else(|| format!("`{name}` is not an image Gemini reads: send a PNG, JPEG, WebP or GIF file"))?;
            let img = InlineImage { mime_type: mime, data: base64::engine::general_purpose::STANDARD.encode(&bytes) };
            if is_image {
                imgs.push(img);
            } else {
                mask = Some(img);
            }
            continue;
        }
        let text = field.text().await.map_err(bad_form)?;
        match name.as_str() {
            "model" => fields.model = Some(text),
            "prompt" => fields.prompt = Some(text),
            // A form's number is text: a number when it reads as one (else
            // the translation says what is wrong with it).
            "n" => fields.n = Some(text.trim().parse::<u64>().map(Value::from).unwrap_or(Value::String(text))),
            "size" => fields.size = Some(text),
            "response_format" => fields.response_format = Some(text),
            "quality" => fields.quality = Some(text),
            "style" => fields.style = Some(text),
            // `background`, `output_format`, `user`, …: nothing Gemini takes.
            _ => {}
        }
    }
    Ok((fields, imgs, mask))
}

/// One call per image, side by side; the answer holds every image that
/// came. When none came, the first failure is the answer.
async fn run(app: Arc<ProxyState>, req: ImageRequest, key: Option<Arc<NamedKey>>) -> Response {
    let model = app.upstream_model(&req.model);
    let mut ledger = Ledger::open(&app, key, Protocol::Openai, "images", &req.model, &model, false);
    if let Err(refused) = ledger.admit() {
        return refused;
    }
    let request = match serde_json::to_vec(&req.gemini) {
        Ok(b) => Bytes::from(b),
        Err(e) => return error_response(Protocol::Openai, 500, &format!("cannot encode the translated request: {e}")),
    };
    let policy = app.policy.current();
    let calls = (0..req.n).map(|_| one(&app, &policy, &model, request.clone()));
    let results = futures::future::join_all(calls).await;
    let (mut answers, mut account, mut first_error) = (Vec::new(), None, None);
    for r in results {
        match r {
            Ok((a, acc)) => {
                ledger.add_input(a.prompt_tokens);
                answers.push(a);
                account.get_or_insert(acc);
            }
            Err(resp) => {
                first_error.get_or_insert(resp);
            }
        }
    }
    let Some(account) = account else {
        let resp = first_error.unwrap_or_else(|| error_response(Protocol::Openai, 502, "no image came"));
        ledger.failed(resp.status().as_u16());
        return resp;
    };
    ledger.answered_by(&account, 1);
    if first_error.is_some() {
        tracing::warn!(model = %model, asked = req.n, got = answers.len(), "an images request got fewer images than it asked for: some calls failed");
    }
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    with_account(Json(images::response(created, &answers)).into_response(), &account)
}

/// One image through the pool: its answer and the account that served,
/// or the answer to give the client.
async fn one(app: &ProxyState, policy: &Policy, model: &str, request: Bytes) -> Result<(ImageAnswer, Arc<LiveAccount>), Response> {
    let call = Call { model: model.to_string(), protocol: Protocol::Openai, session_id: None, stream: false, request };
    let Served { response, lease, account, .. } = match app.dispatcher.dispatch(policy, &call).await {
        Ok(s) => s,
        Err(e) => {
            let resp = dispatch_error(Protocol::Openai, e);
            app.dispatcher.metrics.request("openai", model, resp.status().as_u16());
            return Err(resp);
        }
    };
    let counters = app.dispatcher.metrics.served(Protocol::Openai, model);
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            lease.finish(false, None);
            return Err(with_account(error_response(Protocol::Openai, 502, &format!("upstream {e}")), &account));
        }
    };
    match images::parse_answer(&body) {
        Ok(answer) => {
            lease.finish(true, Some(200));
            counters.count(answer.prompt_tokens, 0);
            if answer.images.is_empty() {
                let (status, message) = images::no_image(&answer);
                tracing::warn!(model, status, "{message}");
                return Err(with_account(error_response(Protocol::Openai, status, &message), &account));
            }
            Ok((answer, account))
        }
        Err(message) => {
            lease.finish(false, Some(200));
            Err(with_account(error_response(Protocol::Openai, 502, &message), &account))
        }
    }
}
