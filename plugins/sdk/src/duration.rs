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
