//! The request-fault rule: a request's fault is not an account's.
//!
//! Google answers some requests for their *content* with a bare `429
//! RESOURCE_EXHAUSTED` (no ErrorInfo reason) on every account — system
//! prompts that carry certain agents' identities among them (the phrases in
//! [`crate::profiles::REFUSED_PHRASES`]). Read as "this account is
//! exhausted", one such request would rest the whole pool. So, under any
//! policy: a bare 429 is a weak signal (the account gets a short back-off
//! only when another account then serves the request), and a bare 429 — or
//! the same reasonless 4xx — met by one request on two accounts ends that
//! request with an answer that says why, resting nobody. grantpool never
//! alters what a client sent to get past such a refusal.
//!
//! Pure: the dispatcher asks, and carries out.

use crate::profiles::{RefusedPhrase, REFUSED_PHRASES};

/// Whether a Google error body says more than its status: an ErrorInfo
/// `reason` (`RATE_LIMIT_EXCEEDED`, `QUOTA_EXHAUSTED`, `TOS_VIOLATION`…) or
/// a time to come back (RetryInfo `retryDelay`, `quotaResetDelay`). Such an
/// answer is about the account and goes to the classifiers.
pub fn has_reason(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return false };
    let v = match &v {
        serde_json::Value::Array(a) => a.first().cloned().unwrap_or_default(),
        _ => v,
    };
    v.get("error")
        .and_then(|e| e.get("details"))
        .and_then(|d| d.as_array())
        .is_some_and(|d| {
            d.iter().any(|x| {
                x.get("reason").and_then(|r| r.as_str()).is_some_and(|r| !r.is_empty())
                    || x.get("retryDelay").is_some()
                    || x.get("metadata").and_then(|m| m.get("quotaResetDelay")).is_some()
            })
        })
}

/// A bare 429: no ErrorInfo reason. Weak: it may be the request's fault.
pub fn is_bare_429(status: u16, body: &[u8]) -> bool {
    status == 429 && !has_reason(body)
}

/// A reasonless client error (not 401, which has its own refresh rule):
/// met twice by one request, the request is at fault.
pub fn is_reasonless_4xx(status: u16, body: &[u8]) -> bool {
    (400..500).contains(&status) && status != 401 && !has_reason(body)
}

/// What makes two weak answers "the same": any two bare 429s, or the same
/// status with the same `error.message` (else the same body).
fn signature(status: u16, body: &[u8]) -> (u16, String) {
    if status == 429 {
        return (429, String::new());
    }
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (status, message)
}

/// The weak answers one request met, by account.
#[derive(Debug, Default)]
pub struct Seen {
    answers: Vec<(String, (u16, String))>,
}

impl Seen {
    /// Note `account`'s weak answer; `true` when another account already
    /// gave the same one (the request is at fault: stop).
    pub fn second(&mut self, account: &str, status: u16, body: &[u8]) -> bool {
        let sig = signature(status, body);
        let again = self.answers.iter().any(|(a, s)| a != account && *s == sig);
        self.answers.push((account.to_string(), sig));
        again
    }

    /// How many different accounts gave a weak answer.
    pub fn accounts(&self) -> usize {
        let mut ids: Vec<&str> = self.answers.iter().map(|(a, _)| a.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

/// The reported phrase a Gemini request's system instruction carries, if
/// any (only looked at on the refusal path).
pub fn known_cause(request: &[u8]) -> Option<&'static RefusedPhrase> {
    let v: serde_json::Value = serde_json::from_slice(request).ok()?;
    let system = v.get("systemInstruction").or_else(|| v.get("system_instruction"))?;
    let mut text = String::new();
    if let Some(parts) = system.get("parts").and_then(|p| p.as_array()) {
        for p in parts {
            if let Some(t) = p.get("text").and_then(|t| t.as_str()) {
                text.push_str(t);
                text.push('\n');
            }
        }
    } else if let Some(t) = system.as_str() {
        text.push_str(t);
    }
    REFUSED_PHRASES.iter().find(|p| text.contains(p.phrase))
}

/// What the client is told (and the log says, once, at `warn`).
pub fn message(status: u16, accounts: usize, cause: Option<&RefusedPhrase>) -> String {
    let what = if status == 429 { "HTTP 429 RESOURCE_EXHAUSTED with no reason".to_string() } else { format!("the same HTTP {status}") };
    let mut m = format!(
        "Google refused this request on {accounts} accounts ({what}), most likely for its content, not for quota: no account was rested, and other requests are served as before. Retrying the same request will not help."
    );
    match cause {
        Some(c) => m.push_str(&format!(
            " Its system prompt contains \"{}\", text Google is reported to refuse ({}): {}. grantpool does not alter requests to get past such a refusal.",
            c.phrase, c.sender, c.advice
        )),
        None => m.push_str(" Check the client's system prompt and settings; grantpool does not alter requests to get past such a refusal."),
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &str = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    const REASONED: &str = r#"{"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED"}]}}"#;

    #[test]
    fn a_bare_429_is_weak_and_a_reasoned_one_is_not() {
        assert!(is_bare_429(429, BARE.as_bytes()));
        assert!(is_bare_429(429, b"not json"));
        assert!(!is_bare_429(429, REASONED.as_bytes()));
        let retry_info = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}"#;
        assert!(!is_bare_429(429, retry_info.as_bytes()), "a time to come back is about the account");
        assert!(!is_bare_429(503, BARE.as_bytes()));
        assert!(is_reasonless_4xx(403, br#"{"error":{"code":403,"message":"The caller does not have permission"}}"#));
        assert!(!is_reasonless_4xx(401, b"{}"));
        assert!(!is_reasonless_4xx(500, b"{}"));
    }

    #[test]
    fn the_same_answer_on_a_second_account_is_the_requests_fault() {
        let mut seen = Seen::default();
        assert!(!seen.second("a", 429, BARE.as_bytes()));
        assert!(!seen.second("a", 429, BARE.as_bytes()), "the same account twice is not two accounts");
        assert!(seen.second("b", 429, b"{}"), "any two bare 429s");
        assert_eq!(seen.accounts(), 2);
        let mut seen = Seen::default();
        assert!(!seen.second("a", 403, br#"{"error":{"message":"one"}}"#));
        assert!(!seen.second("b", 403, br#"{"error":{"message":"two"}}"#));
        assert!(seen.second("c", 403, br#"{"error":{"message":"one"}}"#));
    }

    #[test]
    fn the_known_cause_is_named() {
        let req = serde_json::json!({"systemInstruction": {"parts": [{"text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=sdk-cli;"},
            {"text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."}]}, "contents": []});
        let cause = known_cause(req.to_string().as_bytes()).expect("a known phrase");
        let m = message(429, 2, Some(cause));
        assert!(m.contains("on 2 accounts") && m.contains("most likely for its content") && m.contains("no account was rested"), "{m}");
        assert!(m.contains(cause.phrase) && m.contains(cause.advice), "{m}");
        let plain = serde_json::json!({"systemInstruction": {"parts": [{"text": "be brief"}]}});
        assert!(known_cause(plain.to_string().as_bytes()).is_none());
        assert!(known_cause(b"{}").is_none());
    }
}
