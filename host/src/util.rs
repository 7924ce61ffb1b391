//! Small helpers shared by every module.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Wall-clock time, Unix seconds.
pub fn now_secs() -> i64 {
    (now_ms() / 1000) as i64
}

/// Cut `s` to at most `max` bytes on a UTF-8 boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Expand a leading `~/` to the home directory.
pub fn expand_home(path: &std::path::Path) -> std::path::PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return std::path::Path::new(&home).join(rest);
        }
    }
    path.to_path_buf()
}

/// The first and last few characters of a secret, for messages that must
/// tell two tokens apart without showing either.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        return "…".into();
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({n} chars)")
}

/// An error and its sources, outermost first.
pub fn error_chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// The headers named in `names` (lowercase), as (name, value) pairs for a
/// classifier; values that are not text are left out.
pub fn kept_headers(headers: &reqwest::header::HeaderMap, names: &[&str]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// `url` with its password (if any) replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_string(),
    };
    match path {
        Some(p) => format!("{scheme}://{authority}/{p}"),
        None => format!("{scheme}://{authority}"),
    }
}
