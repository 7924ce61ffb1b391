//! The page's files, embedded in the binary (no CDN, no build step): one
//! HTML shell, three script modules (`app.js`, the accounts view and the
//! wiring; `usage.js`, the Usage view; `page.js`, what both share), one
//! style sheet, an icon.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

use super::reply::fail;

const INDEX: &str = include_str!("assets/index.html");

/// The embedded files: name, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("page.js", "text/javascript; charset=utf-8", include_str!("assets/page.js")),
    ("usage.js", "text/javascript; charset=utf-8", include_str!("assets/usage.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
];

/// `GET /ui`: the page.
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// `GET /`: to the page (`HEAD /` still answers 200 for clients that probe).
pub async fn to_page() -> Redirect {
    Redirect::to("/ui")
}

/// `GET /ui/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, body)) => ([(header::CONTENT_TYPE, *kind)], *body).into_response(),
        None => fail(404, "no such file"),
    }
}
