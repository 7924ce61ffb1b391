//! The front door each connection is served by: the four client routes
//! every request of a busy proxy takes (`POST` to Gemini's
//! `models/{model}:…`, `/v1/chat/completions`, `/v1/responses`,
//! `/v1/messages`) are matched by hand and run straight into their
//! handlers; everything else goes to the axum [`Router`]. The handlers and
//! their admission are the router's own ([`Admitted`], [`SessionHeader`],
//! [`ClientBody`]), so both doors answer alike; this one skips the
//! router's path matching, its parameter map, its matched-path extension
//! and its boxed layers (about 6 % of a request's instructions, measured
//! with callgrind: BENCHMARKS.md, issue 25).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{header, HeaderValue, Method, Request};
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;

use super::auth::{Admitted, ClientBody, SessionHeader};
use super::routes;
use super::state::ProxyState;

/// A connection's service: the hot client routes by hand, the rest by the router.
#[derive(Clone)]
pub struct Front {
    router: Router,
    app: Arc<ProxyState>,
}

impl Front {
    /// `router` serves every request the hot routes do not take.
    pub fn new(router: Router, app: Arc<ProxyState>) -> Front {
        Front { router, app }
    }
}

/// A hot route, as matched.
#[derive(Debug, PartialEq, Eq)]
enum Hot {
    /// `models/{model_action}`, percent-decoded as the router's `Path` does.
    Gemini(String),
    Chat,
    Responses,
    Messages,
}

/// The hot route `method` and `path` name, exactly as the router would
/// match them (one path segment after `models/`, no trailing slash); a
/// segment that is not UTF-8 once decoded is left to the router, which
/// refuses it.
fn hot(method: &Method, path: &str) -> Option<Hot> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/chat/completions" => Some(Hot::Chat),
        "/v1/responses" => Some(Hot::Responses),
        "/v1/messages" => Some(Hot::Messages),
        _ => {
            let segment = path.strip_prefix("/v1beta/models/").or_else(|| path.strip_prefix("/v1/models/"))?;
            if segment.is_empty() || segment.contains('/') {
                return None;
            }
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
            Some(Hot::Gemini(decoded.into_owned()))
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        match hot(req.method(), req.uri().path()) {
            Some(route) => Box::pin(serve(self.app.clone(), route, req)),
            None => {
                // The router is always ready (axum's documented contract).
                let mut router = self.router.clone();
                Box::pin(async move { tower_service::Service::call(&mut router, req).await })
            }
        }
    }
}

/// A route handler's future, boxed: it is large (the whole request path),
/// and a future is copied whole each time it moves, so it is built once in
/// its box rather than inside this door's own future.
type Handler = Pin<Box<dyn Future<Output = Response> + Send>>;

/// Admission, then the route's handler, in the order the router runs its
/// extractors (the key and host before the body is read).
async fn serve(app: Arc<ProxyState>, route: Hot, req: Request<Incoming>) -> Result<Response, Infallible> {
    let (mut parts, body) = req.into_parts();
    let admitted = match Admitted::from_request_parts(&mut parts, &app).await {
        Ok(a) => a,
        Err(refused) => return Ok(refused),
    };
    let session = SessionHeader::from_headers(&parts.headers);
    let body = match ClientBody::from_request(Request::from_parts(parts, Body::new(body)), &app).await {
        Ok(b) => b,
        Err(refused) => return Ok(refused),
    };
    let handler: Handler = match route {
        Hot::Gemini(model_action) => Box::pin(routes::gemini_generate(admitted, State(app), Path(model_action), session, body)),
        Hot::Chat => Box::pin(routes::openai_chat(admitted, State(app), session, body)),
        Hot::Responses => Box::pin(routes::openai_responses(admitted, State(app), session, body)),
        Hot::Messages => Box::pin(routes::anthropic_messages(admitted, State(app), session, body)),
    };
    Ok(with_length(handler.await))
}

/// A body of known size gets its `content-length`, as the router's routes
/// give it.
fn with_length(mut resp: Response) -> Response {
    if !resp.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(n) = axum::body::HttpBody::size_hint(resp.body()).exact() {
            resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_what_the_router_matches() {
        let post = Method::POST;
        assert_eq!(hot(&post, "/v1/chat/completions"), Some(Hot::Chat));
        assert_eq!(hot(&post, "/v1/responses"), Some(Hot::Responses));
        assert_eq!(hot(&post, "/v1/messages"), Some(Hot::Messages));
        assert_eq!(hot(&post, "/v1beta/models/gemini-2.5-flash:generateContent"), Some(Hot::Gemini("gemini-2.5-flash:generateContent".into())));
        assert_eq!(hot(&post, "/v1/models/gemini-2.5-pro:streamGenerateContent"), Some(Hot::Gemini("gemini-2.5-pro:streamGenerateContent".into())));
        assert_eq!(hot(&post, "/v1beta/models/a%20b:generateContent"), Some(Hot::Gemini("a b:generateContent".into())));
    }

    #[test]
    fn leaves_the_rest_to_the_router() {
        let post = Method::POST;
        for path in [
            "/v1/messages/count_tokens",
            "/v1/chat/completions/",
            "/v1beta/models/",
            "/v1beta/models/a/b:generateContent",
            "/v1beta/models",
            "/v1/models",
            "/v1beta/models/%FF:generateContent",
            "/admin/keys",
            "/health",
        ] {
            assert_eq!(hot(&post, path), None, "{path}");
        }
        assert_eq!(hot(&Method::GET, "/v1/chat/completions"), None);
        assert_eq!(hot(&Method::GET, "/v1beta/models/gemini-2.5-flash:generateContent"), None);
    }
}
