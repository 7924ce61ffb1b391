//! What every `/ui` request passes: the DNS-rebinding guard of the API,
//! then for the page's API a live session, and for anything that changes
//! something the same origin (`Origin` and `Sec-Fetch-Site`) and the
//! session's CSRF token in `x-csrf-token` — a custom header, which no other
//! site's page can send without a CORS preflight the proxy never grants.
//! Every answer gets headers that keep it to this origin (CSP, no framing,
//! no referrer, no caching of the API).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::reply::fail;
use super::session::CSRF_HEADER;
use super::state::{Access, Ui};

/// The page's Content-Security-Policy: its own scripts and styles only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Said when the page cannot be used at all.
pub const CLOSED: &str = "the accounts page is off: no admin key is set and this listener can be reached from other machines; \
                          set server.admin_key (or $GRANTPOOL_ADMIN_KEY) and restart, or listen on a loopback address";

/// The middleware of every `/ui` route.
pub async fn guard(State(ui): State<Arc<Ui>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut resp = match admit(&ui, &mut req, &path) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused,
    };
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    if path.starts_with("/ui/api/") || path.starts_with("/ui/oauth/") {
        set(h, header::CACHE_CONTROL, "no-store");
    } else if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-cache");
    }
    resp
}

fn admit(ui: &Ui, req: &mut Request, path: &str) -> Result<(), Response> {
    if let Some(refused) = crate::proxy::auth::host_refused(&ui.proxy, req.headers(), path) {
        return Err(refused);
    }
    let changing = !matches!(*req.method(), Method::GET | Method::HEAD);
    if changing {
        if let Err(why) = same_origin(req.headers()) {
            tracing::warn!(path, "accounts page: {why}");
            return Err(fail(403, &why));
        }
    }
    // The page, its files, the sign-in and Google's redirect need no session.
    let open = !path.starts_with("/ui/api/") || path == "/ui/api/session";
    if open {
        return Ok(());
    }
    if ui.access() == Access::Closed {
        return Err(fail(403, CLOSED));
    }
    let cookies = req.headers().get(header::COOKIE).and_then(|v| v.to_str().ok());
    let Some(session) = ui.sessions.from_cookies(cookies) else {
        return Err(fail(401, "not signed in (no session, or it expired): sign in on the accounts page"));
    };
    if changing {
        let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !session.csrf_matches(sent) {
            tracing::warn!(path, "accounts page: refused a change without this session's CSRF token");
            return Err(fail(403, "refused: the request does not carry this session's CSRF token (x-csrf-token); reload the page"));
        }
    }
    req.extensions_mut().insert(session);
    Ok(())
}

/// `Err` (why) when a browser says the request comes from another origin:
/// an `Origin` that is not this `Host`, or `Sec-Fetch-Site` other than
/// `same-origin` / `none`. Requests without either (not from a browser)
/// still need the session and its CSRF token.
pub fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let ours = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host);
        if !ours || host.is_empty() {
            return Err(format!("refused a cross-origin request (Origin `{origin}` is not this page's, http://{host})"));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(format!("refused a {site} request: only the accounts page itself may change accounts"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_origin;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_this_origin_may_change_things() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8045"), ("origin", "http://127.0.0.1:8045"), ("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8045")])).is_ok());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8045"), ("origin", "http://127.0.0.1:9999")])).is_err());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8045"), ("origin", "null")])).is_err());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8045"), ("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8045"), ("origin", "http://127.0.0.1:8045.evil.com")])).is_err());
    }
}
