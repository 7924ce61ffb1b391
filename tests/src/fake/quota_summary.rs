//! `POST /v1internal:retrieveUserQuotaSummary`: Google's 5-hour and weekly
//! quota windows of an account, on every host (GOOGLE-2026 §3). The answer
//! groups buckets by model family,
//! `{"groups":[{"displayName":"Gemini Models","description":…,"buckets":[{"bucketId":"gemini-weekly","window":"weekly","remainingFraction":…,"resetTime":…,"displayName":…,"description":…},…]},{"displayName":"Claude and GPT models",…}]}`,
//! as Antigravity-Manager reads it (`src-tauri/src/models/quota.rs`,
//! `modules/quota.rs`); opencode-agy-auth (`src/plugin/quota-summary.ts`)
//! reads the window as `FIVE_HOUR` / `WEEKLY` instead, so the spelling is a
//! setting ([`FakeSettings::quota_window_spelling`](super::FakeSettings)).
//!
//! Every account has the four buckets at 1.0 (resets in 5 hours and in 7
//! days) until [`QuotaWindowSpec`]s change them. A used-up window is what
//! Google enforces: a generate or stream call on one of its models answers
//! the weekly-quota 429 (`QUOTA_EXHAUSTED`, router-for-me/CLIProxyAPI#3655).
//! A window whose reset time has passed is full again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::errors::{answer, json_answer, permission_denied_project_body, weekly_quota_body};
use super::server::{ConnHandle, HostLabel};
use super::state::{Inner, Shared};
use super::time::{parse_rfc3339, rfc3339, unix_now};
use super::types::{Endpoint, InvalidSpec};
use super::v1internal::{noted, small_body, small_call};

/// The buckets every account has: (bucket id, window, group).
const DEFAULT_BUCKETS: &[(&str, &str, &str)] = &[
    ("gemini-weekly", "weekly", GEMINI_GROUP),
    ("gemini-5h", "5h", GEMINI_GROUP),
    ("3p-weekly", "weekly", THIRD_PARTY_GROUP),
    ("3p-5h", "5h", THIRD_PARTY_GROUP),
];

const GEMINI_GROUP: &str = "Gemini Models";
const THIRD_PARTY_GROUP: &str = "Claude and GPT models";

/// The answer of fast mode (no state read).
const FAST_BODY: &str = r#"{"groups":[{"displayName":"Gemini Models","buckets":[{"bucketId":"gemini-weekly","window":"weekly","remainingFraction":1},{"bucketId":"gemini-5h","window":"5h","remainingFraction":1}]},{"displayName":"Claude and GPT models","buckets":[{"bucketId":"3p-weekly","window":"weekly","remainingFraction":1},{"bucketId":"3p-5h","window":"5h","remainingFraction":1}]}]}"#;

/// One quota window of one account (`POST /_fake/quota_windows`).
///
/// A window at 0 or less makes generate and stream calls on its models
/// (`gemini-*` buckets: Gemini models; `3p-*`: Claude and GPT models)
/// answer Google's weekly-quota 429 until `reset_time`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaWindowSpec {
    /// The account.
    pub email: String,
    /// `gemini-weekly`, `gemini-5h`, `3p-weekly`, `3p-5h` (another id adds
    /// a bucket: its window is the part after the last `-`).
    pub bucket_id: String,
    /// `remainingFraction`, 0.0 ..= 1.0.
    pub remaining_fraction: f64,
    /// `resetTime` (RFC 3339); default the window's length from now (5
    /// hours, else 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_time: Option<String>,
}

/// One window as set.
#[derive(Clone, Debug)]
struct Window {
    fraction: f64,
    reset_at: i64,
}

/// The windows set through [`QuotaWindowSpec`]s: email → bucket → window.
#[derive(Default)]
pub(crate) struct Windows {
    set: HashMap<String, BTreeMap<String, Window>>,
}

/// The window (`5h`, `weekly`, …) of a bucket id.
fn window_of(bucket: &str) -> &str {
    DEFAULT_BUCKETS
        .iter()
        .find(|(id, _, _)| *id == bucket)
        .map_or_else(
            || bucket.rsplit('-').next().unwrap_or(bucket),
            |(_, w, _)| w,
        )
}

/// The group a bucket id belongs to.
fn group_of(bucket: &str) -> &'static str {
    if bucket.starts_with("gemini") {
        GEMINI_GROUP
    } else if bucket.starts_with("3p") {
        THIRD_PARTY_GROUP
    } else {
        "Other models"
    }
}

/// A fresh window's length, seconds.
fn length_of(window: &str) -> i64 {
    if window == "5h" {
        5 * 3600
    } else {
        7 * 86_400
    }
}

/// Whether a bucket's limit applies to `model`.
fn gates(bucket: &str, model: &str) -> bool {
    let m = model.trim_start_matches("models/").to_ascii_lowercase();
    if bucket.starts_with("gemini") {
        m.starts_with("gemini")
    } else if bucket.starts_with("3p") {
        m.starts_with("claude") || m.starts_with("gpt")
    } else {
        false
    }
}

/// `window` as the setting spells it: `short` (`5h`, `weekly`) or `enum`
/// (`FIVE_HOUR`, `WEEKLY`).
fn spelled(window: &str, spelling: &str) -> String {
    match (spelling, window) {
        ("enum", "5h") => "FIVE_HOUR".into(),
        ("enum", "weekly") => "WEEKLY".into(),
        ("enum", other) => other.to_ascii_uppercase(),
        (_, other) => other.into(),
    }
}

impl Windows {
    /// Every bucket of `email` now: (bucket, window, fraction, reset).
    fn of(&self, email: &str, now: i64) -> Vec<(String, String, f64, i64)> {
        let set = self.set.get(email);
        let mut ids: Vec<String> = DEFAULT_BUCKETS
            .iter()
            .map(|(id, _, _)| (*id).to_owned())
            .collect();
        for id in set.into_iter().flat_map(BTreeMap::keys) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.into_iter()
            .map(|id| {
                let window = window_of(&id).to_owned();
                let (fraction, reset) = match set.and_then(|s| s.get(&id)) {
                    // Past its reset time, a window is full again.
                    Some(w) if w.reset_at > now => (w.fraction, w.reset_at),
                    _ => (1.0, now + length_of(&window)),
                };
                (id, window, fraction, reset)
            })
            .collect()
    }
}

impl Inner {
    /// The weekly-quota 429 body for a call of `email` on `model` when a
    /// window that gates the model is used up (the one that resets last
    /// decides when the call would work again).
    pub(crate) fn window_refusal(&self, email: &str, model: &str) -> Option<String> {
        let now = unix_now();
        let reset = self
            .quota_windows
            .of(email, now)
            .into_iter()
            .filter(|(id, _, fraction, _)| *fraction <= 0.0 && gates(id, model))
            .map(|(_, _, _, reset)| reset)
            .max()?;
        Some(weekly_quota_body(
            u64::try_from(reset - now).unwrap_or(1).max(1),
            model,
        ))
    }

    /// The `retrieveUserQuotaSummary` answer for `email`.
    fn quota_summary(&self, email: &str) -> Value {
        let spelling = self.settings.quota_window_spelling.as_str();
        let mut groups: Vec<(&'static str, Vec<Value>)> = Vec::new();
        for (id, window, fraction, reset) in self.quota_windows.of(email, unix_now()) {
            let group = group_of(&id);
            let label = if window == "5h" {
                "5-hour limit".to_owned()
            } else {
                format!("{window} limit")
            };
            let bucket = json!({
                "bucketId": id,
                "window": spelled(&window, spelling),
                "remainingFraction": fraction,
                "resetTime": rfc3339(reset),
                "displayName": label,
                "description": format!("Usage of {group} in the {label}."),
            });
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, list)) => list.push(bucket),
                None => groups.push((group, vec![bucket])),
            }
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(name, buckets)| {
                json!({"displayName": name, "description": format!("Quota shared by {name}."), "buckets": buckets})
            })
            .collect();
        json!({ "groups": groups })
    }
}

impl Shared {
    /// `POST /_fake/quota_windows`.
    pub(crate) fn set_quota_window(&self, spec: QuotaWindowSpec) -> Result<(), InvalidSpec> {
        if spec.bucket_id.trim().is_empty() {
            return Err(InvalidSpec("bucket_id must not be empty".into()));
        }
        if !spec.remaining_fraction.is_finite() {
            return Err(InvalidSpec("remaining_fraction must be a number".into()));
        }
        let reset_at = match &spec.reset_time {
            Some(t) => parse_rfc3339(t)
                .ok_or_else(|| InvalidSpec(format!("reset_time {t:?} is not RFC 3339")))?,
            None => unix_now() + length_of(window_of(&spec.bucket_id)),
        };
        self.with(|inner| {
            inner.account_or_default(&spec.email);
            inner
                .quota_windows
                .set
                .entry(spec.email)
                .or_default()
                .insert(
                    spec.bucket_id,
                    Window {
                        fraction: spec.remaining_fraction,
                        reset_at,
                    },
                );
        });
        Ok(())
    }
}

/// `POST /v1internal:retrieveUserQuotaSummary`: `{}` or `{"project": …}`
/// → the account's windows. A `project` that is not the account's is 403,
/// as for `fetchAvailableModels`.
pub(crate) async fn retrieve_user_quota_summary(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnHandle>>,
    host: Option<Extension<HostLabel>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let (email, who) = match small_call(
        &shared,
        conn.as_ref(),
        HostLabel::of(&host),
        &headers,
        Endpoint::RetrieveUserQuotaSummary,
        FAST_BODY,
    )
    .await
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let note = who.note(false);
    let v = match small_body(&body) {
        Ok(v) => v,
        Err(resp) => return noted(resp, note),
    };
    let answered = shared.with(|inner| {
        if let Some(p) = v
            .get("project")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            let own = inner.accounts.get(&email).and_then(|a| a.current_project());
            if own != Some(p) {
                return Err(answer(403, &permission_denied_project_body(p)));
            }
        }
        Ok(inner.quota_summary(&email))
    });
    match answered {
        Ok(b) => noted(json_answer(200, b.to_string()), note),
        Err(resp) => noted(resp, note),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_default_full_and_reset_when_due() {
        let mut w = Windows::default();
        let now = 1_000_000;
        let all = w.of("a@x", now);
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|(_, _, f, _)| *f == 1.0));
        let five = all.iter().find(|b| b.0 == "gemini-5h").unwrap();
        assert_eq!((five.1.as_str(), five.3), ("5h", now + 5 * 3600));
        w.set.entry("a@x".into()).or_default().insert(
            "gemini-weekly".into(),
            Window {
                fraction: 0.0,
                reset_at: now + 60,
            },
        );
        assert_eq!(
            w.of("a@x", now)
                .iter()
                .find(|b| b.0 == "gemini-weekly")
                .unwrap()
                .2,
            0.0
        );
        assert_eq!(
            w.of("a@x", now + 61)
                .iter()
                .find(|b| b.0 == "gemini-weekly")
                .unwrap()
                .2,
            1.0,
            "full again after the reset"
        );
        assert!(
            gates("gemini-weekly", "gemini-2.5-pro")
                && !gates("gemini-weekly", "claude-sonnet-4-6")
        );
        assert!(
            gates("3p-5h", "claude-sonnet-4-6")
                && gates("3p-5h", "gpt-oss-120b-medium")
                && !gates("3p-5h", "gemini-2.5-pro")
        );
        assert_eq!(spelled("5h", "enum"), "FIVE_HOUR");
        assert_eq!(spelled("weekly", "short"), "weekly");
    }
}
