//! Small helpers shared by every module.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Wall-clock time, Unix seconds, from the kernel's coarse clock (the
/// last tick's time: no hardware counter read): for counters with second
/// granularity on the request path, such as a key's limits.
#[cfg(target_os = "linux")]
pub fn coarse_secs() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME_COARSE
    // exists on every Linux since 2.6.32 and the call only writes `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        return ts.tv_sec.max(0) as u64;
    }
    now_ms() / 1000
}

/// Wall-clock time, Unix seconds (elsewhere than Linux: the precise clock).
#[cfg(not(target_os = "linux"))]
pub fn coarse_secs() -> u64 {
    now_ms() / 1000
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

/// Year, month, day, hour, minute and weekday (0 = Sunday) of a Unix time,
/// UTC (Howard Hinnant's civil-from-days).
fn civil(secs: i64) -> (i64, i64, i64, i64, i64, usize) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (m, d) = (i64::from(m), i64::from(d));
    // 1970-01-01 was a Thursday.
    let weekday = (days + 4).rem_euclid(7) as usize;
    (y, m, d, rem / 3600, (rem % 3600) / 60, weekday)
}

/// A Unix time as `2026-12-10 00:00 UTC`.
pub fn utc_time(secs: i64) -> String {
    let (y, mo, d, h, mi, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02} UTC")
}

/// A Unix time in a compact form: `Tue 14:00` within the coming week,
/// else `2026-12-10` (UTC both; listings name the zone once).
pub fn utc_short(secs: i64) -> String {
    let (y, mo, d, h, mi, wd) = civil(secs);
    if (secs - now_secs()).abs() < 6 * 86_400 {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        format!("{} {h:02}:{mi:02}", DAYS[wd])
    } else {
        format!("{y:04}-{mo:02}-{d:02}")
    }
}

/// A span of seconds in words: `45s`, `12m`, `3h20m`, `4d6h`.
pub fn span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn utc_formats() {
        assert_eq!(super::utc_time(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(super::utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::civil(1_700_000_000).5, 2, "a Tuesday");
        assert_eq!(super::span(59), "59s");
        assert_eq!(super::span(3 * 3600 + 20 * 60), "3h20m");
        assert_eq!(super::span(4 * 86_400 + 6 * 3600 + 5), "4d6h");
    }
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}
