//! Who may use the proxy: the DNS-rebinding guard, client keys (compared in
//! constant time), the admin key, and the request extractors the API
//! routes take instead of middleware ([`Admitted`], [`ClientBody`],
//! [`SessionHeader`]). Refusals come in the route's protocol shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use subtle::ConstantTimeEq;

use super::answer::error_response;
use super::state::ProxyState;
use crate::config::AuthMode;
use crate::keys::{Admission, KeyRefusal, NamedKey};
use crate::plugins::Protocol;

/// A client request the API routes accept: its `Host` passed the
/// DNS-rebinding guard and it carries a valid key (unless auth is off).
/// Refusals come in the route's protocol shape.
pub struct Admitted {
    /// The named key it came with (`grantpool keys add`): its limits and
    /// its usage. `None` for a `server.api_keys` key, or none with auth off.
    pub key: Option<Arc<NamedKey>>,
}

impl FromRequestParts<Arc<ProxyState>> for Admitted {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<ProxyState>) -> Result<Self, Response> {
        let path = parts.uri.path();
        if let Some(refused) = host_refused(app, &parts.headers, path) {
            return Err(refused);
        }
        let sent = client_key(&parts.headers);
        // A configured key first (no hash to work out); then the named keys,
        // even with auth off, so that a named key's limits and usage hold.
        if let Some(k) = sent {
            if key_matches(k, &app.config.server.api_keys) {
                return Ok(Admitted { key: None });
            }
            match app.keys.admit(k) {
                Admission::Named(key) => return Ok(Admitted { key: Some(key) }),
                Admission::Refused(r) => return Err(key_refused(protocol_of(path), &r)),
                Admission::Unknown => {}
            }
        }
        if effective_mode(app) != AuthMode::Off {
            return Err(error_response(
                protocol_of(path),
                401,
                "missing or wrong API key: send it as `Authorization: Bearer KEY`, `x-api-key` or `x-goog-api-key`",
            ));
        }
        Ok(Admitted { key: None })
    }
}

/// A named key's refusal (expired, revoked, a model it may not use, over a
/// limit) in the route's protocol shape, with `retry-after` when it resets;
/// counted in `grantpool_key_limited_total` by the ring.
pub(crate) fn key_refused(protocol: Protocol, r: &KeyRefusal) -> Response {
    tracing::info!(limit = r.limit, status = r.status, "refused a named key's request: {}", r.message);
    let mut resp = error_response(protocol, r.status, &r.message);
    if let Some(v) = r.retry_after_secs.and_then(|s| axum::http::HeaderValue::from_str(&s.max(1).to_string()).ok()) {
        resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// The conversation ids a client sent in headers, by rank (see
/// `routes::conversation_id`): header lookups only, nothing else copied.
#[derive(Debug, Default)]
pub struct SessionHeader {
    /// `x-session-id`, `x-grantpool-session` (any client, set by hand) or
    /// Claude Code's `x-claude-code-session-id`: above any id in the body.
    pub explicit: Option<String>,
    /// Codex's `session-id` (or the `conversation_id` older Codex sent):
    /// below Claude Code's `metadata.user_id`, above the OpenAI body ids.
    pub codex: Option<String>,
}

impl SessionHeader {
    /// Headers that name the conversation above any body id, in order.
    pub const EXPLICIT: [&'static str; 3] = ["x-session-id", "x-grantpool-session", "x-claude-code-session-id"];
    /// Codex's headers, in order.
    pub const CODEX: [&'static str; 2] = ["session-id", "conversation_id"];

    /// The ids found in `headers` (an empty or non-ASCII value counts as none).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let first = |names: &[&str]| {
            names.iter().find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())).map(str::to_string)
        };
        SessionHeader { explicit: first(&Self::EXPLICIT), codex: first(&Self::CODEX) }
    }
}

impl FromRequestParts<Arc<ProxyState>> for SessionHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<ProxyState>) -> Result<Self, Self::Rejection> {
        Ok(SessionHeader::from_headers(&parts.headers))
    }
}

/// A request body of at most `server.max_body_bytes`; a larger one is
/// refused with 413 in the route's protocol shape.
pub struct ClientBody(pub Bytes);

impl FromRequest<Arc<ProxyState>> for ClientBody {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<ProxyState>) -> Result<Self, Response> {
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

pub(crate) fn protocol_of(path: &str) -> Protocol {
    if path.starts_with("/v1beta") || (path.starts_with("/v1/models/") && path.contains(':')) {
        Protocol::Gemini
    } else if path.starts_with("/v1/messages") {
        Protocol::Anthropic
    } else {
        Protocol::Openai
    }
}

/// Loopback names and addresses.
pub(crate) fn is_loopback_host(host: &str) -> bool {
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
pub(crate) fn host_refused(app: &ProxyState, headers: &HeaderMap, path: &str) -> Option<Response> {
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

/// `auto` is open on a loopback listener only while no key exists at all:
/// once the admin gives out named keys, a request without one is refused
/// (else a key's limits could be dodged by sending none).
fn effective_mode(app: &ProxyState) -> AuthMode {
    match app.config.server.auth_mode {
        AuthMode::Auto if app.loopback && app.config.server.api_keys.is_empty() && !app.keys.has_keys() => AuthMode::Off,
        AuthMode::Auto => AuthMode::AllExceptHealth,
        m => m,
    }
}

pub(super) async fn health_auth(State(app): State<Arc<ProxyState>>, req: Request, next: Next) -> Response {
    if let Some(refused) = host_refused(&app, req.headers(), req.uri().path()) {
        return refused;
    }
    if effective_mode(&app) == AuthMode::Strict
        && !client_key(req.headers()).is_some_and(|k| key_matches(k, &app.config.server.api_keys) || matches!(app.keys.admit(k), Admission::Named(_)))
    {
        return error_response(Protocol::Openai, 401, "missing or wrong API key");
    }
    next.run(req).await
}

pub(super) async fn admin_auth(State(app): State<Arc<ProxyState>>, req: Request, next: Next) -> Response {
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

pub(super) fn admin_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"error": {"message": message, "code": status.as_u16()}}))).into_response()
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

    #[test]
    fn session_headers_by_rank() {
        let of = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, axum::http::HeaderValue::from_static(v));
            }
            let s = SessionHeader::from_headers(&h);
            (s.explicit, s.codex)
        };
        let s = |v: &str| Some(v.to_string());
        assert_eq!(of(&[]), (None, None));
        assert_eq!(of(&[("x-grantpool-session", "g"), ("x-session-id", "x")]), (s("x"), None));
        assert_eq!(of(&[("x-grantpool-session", "g"), ("x-claude-code-session-id", "c")]), (s("g"), None));
        assert_eq!(of(&[("x-claude-code-session-id", "c")]), (s("c"), None));
        assert_eq!(of(&[("session-id", "k"), ("conversation_id", "old")]), (None, s("k")));
        assert_eq!(of(&[("conversation_id", "old")]), (None, s("old")));
        // An empty header is no id: the next one counts.
        assert_eq!(of(&[("x-session-id", ""), ("x-claude-code-session-id", "c")]), (s("c"), None));
    }
}
