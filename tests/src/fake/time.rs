//! Just enough RFC 3339 for `quotaInfo.resetTime`, and Go durations for
//! `quotaResetDelay` / `retryDelay`, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2024-05-01T12:00:00Z` for a Unix time.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The Unix time of `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, or `None`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Nanoseconds of a Go duration (`479.417207ms`, `161h39m41.300432511s`,
/// `33740.9s`, `2h30m`, `0`), as Google writes `quotaResetDelay` and
/// `retryDelay` (facts §5.1, §5.2); `None` when it is not one.
pub(crate) fn parse_go_duration(s: &str) -> Option<u128> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int: u128 = if int_len == 0 {
            0
        } else {
            rest[..int_len].parse().ok()?
        };
        rest = &rest[int_len..];
        let mut frac_digits = "";
        if let Some(f) = rest.strip_prefix('.') {
            let n = f.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &f[..n];
            rest = &f[n..];
        }
        if int_len == 0 && frac_digits.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        for d in frac_digits.bytes().take(18) {
            frac = frac * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        total = total
            .checked_add(int.checked_mul(unit)?)?
            .checked_add(frac * unit / scale)?;
    }
    Some(total)
}

/// `<int>[.<frac>]` of `n / unit`, trailing zeros trimmed.
fn decimal(n: u128, unit: u128) -> String {
    let (int, frac) = (n / unit, n % unit);
    if frac == 0 {
        return int.to_string();
    }
    let width = unit.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// Go's `Duration.String()` of `nanos`: `166h0m0s`, `1.5s`, `479.417207ms`.
pub(crate) fn go_duration_from_nanos(nanos: u128) -> String {
    const S: u128 = 1_000_000_000;
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}\u{b5}s", decimal(nanos, 1_000));
    }
    if nanos < S {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let (h, rem) = (nanos / (3600 * S), nanos % (3600 * S));
    let (m, rem) = (rem / (60 * S), rem % (60 * S));
    let secs = decimal(rem, S);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

/// `nanos` as plain seconds, as `RetryInfo.retryDelay` is always written
/// (facts §5.2): `581981.300432511s`, `0.479417207s`.
pub(crate) fn seconds_duration(nanos: u128) -> String {
    format!("{}s", decimal(nanos, 1_000_000_000))
}

/// Go's `Duration.String()` of `d` (`166h0m0s`): the Go-duration form of
/// `quotaResetDelay`.
pub fn go_duration(d: std::time::Duration) -> String {
    go_duration_from_nanos(d.as_nanos())
}

/// `d` in plain seconds (`597600s`, `33740.9s`): the seconds form of
/// `quotaResetDelay` and the only form of `RetryInfo.retryDelay`.
pub fn seconds_form(d: std::time::Duration) -> String {
    seconds_duration(d.as_nanos())
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-13-14T23:13:20Z"), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("479.417207ms"), Some(479_417_207));
        assert_eq!(
            parse_go_duration("161h39m41.300432511s"),
            Some(581_981_300_432_511)
        );
        assert_eq!(parse_go_duration("33740.9s"), Some(33_740_900_000_000));
        assert_eq!(parse_go_duration("2h30m"), Some(9_000_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5 minutes"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(seconds_duration(581_981_300_432_511), "581981.300432511s");
        assert_eq!(seconds_duration(479_417_207), "0.479417207s");
        assert_eq!(seconds_duration(597_600_000_000_000), "597600s");
        assert_eq!(
            go_duration(std::time::Duration::from_secs(166 * 3600)),
            "166h0m0s"
        );
        assert_eq!(
            go_duration_from_nanos(581_981_300_432_511),
            "161h39m41.300432511s"
        );
        assert_eq!(go_duration_from_nanos(1_500_000_000), "1.5s");
        assert_eq!(go_duration_from_nanos(479_417_207), "479.417207ms");
        assert_eq!(go_duration_from_nanos(61_000_000_000), "1m1s");
        assert_eq!(go_duration_from_nanos(0), "0s");
        assert_eq!(
            seconds_form(std::time::Duration::from_millis(33_740_900)),
            "33740.9s"
        );
    }
}
