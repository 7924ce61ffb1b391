//! Google's 5-hour and weekly quota windows: `POST
//! {base}/v1internal:retrieveUserQuotaSummary` (body `{}` or
//! `{"project": …}`).
//!
//! The answer groups buckets by model family:
//! `{"groups":[{"displayName":"Gemini Models","buckets":[{"bucketId":"gemini-weekly",
//! "window":"weekly","remainingFraction":0.83,"resetTime":"…"}, …]}, …]}`
//! (shape as Antigravity-Manager reads it, `src-tauri/src/models/quota.rs`
//! and `modules/quota.rs`). opencode-agy-auth (`src/plugin/quota-summary.ts`)
//! reads the window as `FIVE_HOUR` / `WEEKLY`, a `disabled` flag for a
//! bucket used up, a `remainingAmount`, and buckets at the top level; which
//! spelling Google sends is unverified, so every one of them is accepted.

use serde_json::Value;

use super::{parse_rfc3339, Upstream, UpstreamCallError};
use crate::profiles::Profile;

/// One bucket of `retrieveUserQuotaSummary`.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    /// Google's `bucketId` (`gemini-weekly`, `gemini-5h`, `3p-weekly`,
    /// `3p-5h`); made from the group and the window when Google gives none.
    pub bucket_id: String,
    /// `5h`, `weekly`, or Google's own word for another window.
    pub window: String,
    /// Remaining share, 0..=1, when Google gives one.
    pub remaining_fraction: Option<f64>,
    /// Reset time, Unix s.
    pub reset_at: Option<i64>,
    /// The group's display name.
    pub group: Option<String>,
    /// `remainingAmount`, as text.
    pub remaining_amount: Option<String>,
    /// Google's `disabled` (the bucket is used up).
    pub disabled: bool,
}

impl Upstream {
    /// The account's 5-hour and weekly quota windows. An error when the
    /// host does not serve the method (404) or refuses it: callers keep what
    /// they knew.
    pub async fn retrieve_user_quota_summary(&self, profile: &'static Profile, token: &str, project: Option<&str>, egress: Option<&str>) -> Result<Vec<WindowReport>, UpstreamCallError> {
        let body = match project {
            Some(p) => serde_json::json!({"project": p}),
            None => serde_json::json!({}),
        };
        let v = self.json_call(profile, "retrieveUserQuotaSummary", token, &body, egress).await?;
        Ok(parse_summary(&v))
    }
}

/// `5h` / `weekly` for every spelling seen (`5h`, `FIVE_HOUR`, `weekly`,
/// `WEEKLY`, …); any other word is kept as given.
pub fn normalize_window(raw: &str) -> String {
    let key: String = raw.trim().chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    match key.as_str() {
        "5h" | "fivehour" | "fivehours" | "5hour" | "5hours" | "windowfivehour" => "5h".into(),
        "weekly" | "week" | "7d" | "windowweekly" => "weekly".into(),
        _ => raw.trim().to_string(),
    }
}

/// A short family prefix for bucket ids made up for buckets without one.
fn group_prefix(group: Option<&str>) -> String {
    let g = group.unwrap_or_default().to_ascii_lowercase();
    if g.contains("gemini") {
        "gemini".into()
    } else if g.contains("claude") || g.contains("gpt") {
        "3p".into()
    } else {
        let slug: String = g.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let slug = slug.trim_matches('-').to_string();
        if slug.is_empty() { "quota".into() } else { slug }
    }
}

/// A number or a numeric string (proto3 JSON writes 64-bit numbers as
/// strings).
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bucket(b: &Value, group: Option<&str>) -> Option<WindowReport> {
    let b = b.as_object()?;
    let window = normalize_window(&text(b.get("window")).unwrap_or_default());
    let bucket_id = match text(b.get("bucketId").or_else(|| b.get("bucket_id"))) {
        Some(id) => id,
        None if !window.is_empty() => format!("{}-{}", group_prefix(group), window.to_ascii_lowercase()),
        None => return None,
    };
    let disabled = b.get("disabled").and_then(Value::as_bool).unwrap_or(false);
    let remaining_amount = text(b.get("remainingAmount"));
    // proto3 JSON leaves a zero out: a bucket that has a reset time but
    // neither a fraction nor an amount is an empty one.
    let remaining_fraction = match number(b.get("remainingFraction")) {
        Some(f) if f.is_finite() => Some(f.clamp(0.0, 1.0)),
        _ if disabled => Some(0.0),
        _ if remaining_amount.is_none() && b.contains_key("resetTime") => Some(0.0),
        _ => None,
    };
    Some(WindowReport {
        bucket_id,
        window,
        remaining_fraction,
        reset_at: text(b.get("resetTime")).as_deref().and_then(parse_rfc3339),
        group: group.map(str::to_string),
        remaining_amount,
        disabled,
    })
}

/// Every bucket of a `retrieveUserQuotaSummary` answer (grouped, at the top
/// level, or under a `response` wrapper), in the order given.
pub fn parse_summary(v: &Value) -> Vec<WindowReport> {
    let v = v.get("response").filter(|r| r.is_object()).unwrap_or(v);
    let mut out = Vec::new();
    for g in v.get("groups").and_then(Value::as_array).into_iter().flatten() {
        let name = text(g.get("displayName"));
        for b in g.get("buckets").and_then(Value::as_array).into_iter().flatten() {
            out.extend(bucket(b, name.as_deref()));
        }
    }
    for b in v.get("buckets").and_then(Value::as_array).into_iter().flatten() {
        out.extend(bucket(b, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by_id<'a>(r: &'a [WindowReport], id: &str) -> &'a WindowReport {
        r.iter().find(|w| w.bucket_id == id).unwrap_or_else(|| panic!("{id} in {r:?}"))
    }

    #[test]
    fn quota_windows_short_spelling() {
        let v = json!({"groups": [
            {"displayName": "Gemini Models", "description": "…", "buckets": [
                {"bucketId": "gemini-weekly", "window": "weekly", "remainingFraction": 0.83, "resetTime": "2026-12-10T00:00:00Z", "displayName": "Weekly"},
                {"bucketId": "gemini-5h", "window": "5h", "remainingFraction": 0.4, "resetTime": "2026-12-07T15:00:00Z"}]},
            {"displayName": "Claude and GPT models", "buckets": [
                {"bucketId": "3p-weekly", "window": "weekly", "remainingFraction": 1, "resetTime": "2026-12-10T00:00:00Z"},
                {"bucketId": "3p-5h", "window": "5h", "remainingFraction": 0.0, "resetTime": "2026-12-07T15:00:00Z"}]}]});
        let r = parse_summary(&v);
        assert_eq!(r.len(), 4);
        let w = by_id(&r, "gemini-weekly");
        assert_eq!((w.window.as_str(), w.remaining_fraction, w.group.as_deref()), ("weekly", Some(0.83), Some("Gemini Models")));
        assert_eq!(w.reset_at, parse_rfc3339("2026-12-10T00:00:00Z"));
        assert_eq!(by_id(&r, "gemini-5h").window, "5h");
        assert_eq!(by_id(&r, "3p-5h").remaining_fraction, Some(0.0));
        assert_eq!(by_id(&r, "3p-weekly").remaining_fraction, Some(1.0));
    }

    #[test]
    fn quota_windows_enum_spelling_and_extras() {
        let v = json!({"response": {"groups": [
            {"displayName": "Gemini Models", "buckets": [
                {"bucketId": "gemini-weekly", "window": "WEEKLY", "remainingFraction": 0.5, "remainingAmount": "120", "resetTime": "2026-12-10T00:00:00Z"},
                {"bucketId": "gemini-5h", "window": "FIVE_HOUR", "disabled": true, "description": "used up", "resetTime": "2026-12-07T15:00:00Z"}]}]}});
        let r = parse_summary(&v);
        let w = by_id(&r, "gemini-weekly");
        assert_eq!((w.window.as_str(), w.remaining_amount.as_deref()), ("weekly", Some("120")));
        let h = by_id(&r, "gemini-5h");
        assert_eq!((h.window.as_str(), h.disabled, h.remaining_fraction), ("5h", true, Some(0.0)));
    }

    #[test]
    fn quota_windows_missing_fields() {
        let v = json!({"groups": [
            {"displayName": "Claude and GPT models", "buckets": [
                // No bucket id: made from the group and the window.
                {"window": "5h", "remainingFraction": 0.7},
                // A zero left out (proto3 JSON), reset known: empty.
                {"bucketId": "3p-weekly", "window": "weekly", "resetTime": "2026-12-10T00:00:00Z"},
                // An amount only: the fraction is unknown, not zero.
                {"bucketId": "3p-other", "window": "MONTHLY", "remainingAmount": 12},
                // Nothing to name it by.
                {"remainingFraction": 0.1},
                "not an object"]},
            {"buckets": [{"bucketId": "x", "window": "5h", "remainingFraction": "0.25"}]}],
            "buckets": [{"bucketId": "top", "window": "weekly", "remainingFraction": 2.5, "resetTime": "garbage"}]});
        let r = parse_summary(&v);
        assert_eq!(r.len(), 5, "{r:?}");
        let made = by_id(&r, "3p-5h");
        assert_eq!((made.remaining_fraction, made.reset_at), (Some(0.7), None));
        assert_eq!(by_id(&r, "3p-weekly").remaining_fraction, Some(0.0));
        let other = by_id(&r, "3p-other");
        assert_eq!((other.window.as_str(), other.remaining_fraction, other.remaining_amount.as_deref()), ("MONTHLY", None, Some("12")));
        let x = by_id(&r, "x");
        assert_eq!((x.remaining_fraction, x.group.as_deref()), (Some(0.25), None));
        let top = by_id(&r, "top");
        assert_eq!((top.remaining_fraction, top.reset_at), (Some(1.0), None));
        assert!(parse_summary(&json!({})).is_empty());
        assert!(parse_summary(&json!({"groups": "nope"})).is_empty());
    }

    #[test]
    fn quota_window_spellings() {
        for (raw, want) in [("5h", "5h"), ("FIVE_HOUR", "5h"), ("five_hours", "5h"), ("WEEKLY", "weekly"), ("weekly", "weekly"), ("daily", "daily")] {
            assert_eq!(normalize_window(raw), want, "{raw}");
        }
    }
}
