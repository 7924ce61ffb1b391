//! Durations as people and Google write them: `"1.5s"`, `"500ms"`, `"3m"`,
//! `"1h"`, `"2h30m"`, or a bare number of seconds.

/// Parse a duration into milliseconds. `None` when the text is not one.
pub fn parse_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Some(total.round() as u64)
}

/// Parse an RFC 3339 timestamp (`2025-12-18T20:18:34Z`, optional fraction
/// and offset) into Unix milliseconds.
pub fn timestamp_ms(text: &str) -> Option<u64> {
    let (date, time) = text.trim().split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, mo, da): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (clock, offset_secs) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let mut p = off[1..].split(':');
        let (oh, om): (i64, i64) = (p.next()?.parse().ok()?, p.next().unwrap_or("0").parse().ok()?);
        (c, sign * (oh * 3600 + om * 60))
    } else {
        (time, 0)
    };
    let mut t = clock.split(':');
    let (h, mi): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + da - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let ms = (days * 86_400 + h * 3600 + mi * 60 - offset_secs) * 1000 + (sec * 1000.0).round() as i64;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn parses_google_and_human_forms() {
        assert_eq!(parse_ms("1.5s"), Some(1500));
        assert_eq!(parse_ms("500ms"), Some(500));
        assert_eq!(parse_ms("2h30m"), Some(9_000_000));
        assert_eq!(parse_ms("42"), Some(42_000));
        assert_eq!(parse_ms("0.25"), Some(250));
        assert_eq!(parse_ms("soon"), None);
        assert_eq!(parse_ms("5x"), None);
        assert_eq!(parse_ms(""), None);
    }
}
