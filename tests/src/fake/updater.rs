//! The Antigravity updater's manifest (`GET /manifest/latest-<arch>-<os>.yml`):
//! electron-builder's YAML whose `version` names the current Antigravity
//! release. CLIProxyAPI (`internal/misc/antigravity_version.go`) reads it to
//! keep its User-Agent current; so may grantpool
//! (`[upstream] version_manifest_url`). The version comes from
//! [`FakeSettings::updater_version`](super::FakeSettings); unset, 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::Shared;

/// The manifest, as electron-builder writes it.
pub(crate) async fn manifest(State(s): State<Arc<Shared>>, Path(file): Path<String>) -> Response {
    let Some(version) = s.settings().updater_version else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    if !(file.starts_with("latest") && file.ends_with(".yml")) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let body = format!(
        "version: {version}\nfiles:\n  - url: Antigravity-{version}-arm64-mac.zip\n    sha512: AAAA\n    size: 123456789\npath: Antigravity-{version}-arm64-mac.zip\nsha512: AAAA\nreleaseDate: '2026-11-30T18:04:11.000Z'\n"
    );
    ([(header::CONTENT_TYPE, "text/yaml")], body).into_response()
}
