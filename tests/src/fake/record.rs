//! The request log: every request to a Google endpoint as received (host
//! label, headers, whole body) and how it ended, the newest
//! [`FakeSettings::max_recorded_requests`](super::FakeSettings) kept.

use std::collections::{BTreeMap, VecDeque};

use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};

use super::types::{redact, Endpoint, Outcome, RecordedRequest};

/// What a handler tells the log about its call (a response extension).
#[derive(Clone, Debug, Default)]
pub(crate) struct CallNote {
    /// The account behind the call, when known.
    pub(crate) email: Option<String>,
    /// A scripted fault answered (or cut) it.
    pub(crate) fault: bool,
    /// Refused for its system instruction (a refused phrase).
    pub(crate) content_refused: bool,
    /// The `usageMetadata` of a served answer (a stream's last one).
    pub(crate) usage: Option<serde_json::Value>,
}

/// The recent requests.
#[derive(Default)]
pub(crate) struct RequestLog {
    items: VecDeque<RecordedRequest>,
    next_seq: u64,
}

/// The headers as recorded: lower-case names, `authorization` redacted.
fn headers_of(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let v = if name == header::AUTHORIZATION {
            match v.split_once(' ') {
                Some((scheme, secret)) => format!("{scheme} {}", redact(secret)),
                None => redact(&v),
            }
        } else {
            v
        };
        out.entry(name.as_str().to_owned())
            .and_modify(|old: &mut String| {
                old.push_str(", ");
                old.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// The body as recorded: JSON as is, a form as an object, else text.
fn body_of(headers: &HeaderMap, body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v;
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("x-www-form-urlencoded"));
    if is_form {
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
            let map: Map<String, Value> = pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            return Value::Object(map);
        }
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

/// The model a v1internal body names (`model`, or countTokens'
/// `request.model` without `models/`).
pub(crate) fn model_of(body: &Value) -> Option<String> {
    body.get("model")
        .or_else(|| body.get("request").and_then(|r| r.get("model")))
        .and_then(Value::as_str)
        .map(|m| m.strip_prefix("models/").unwrap_or(m).to_owned())
}

/// The `error.message` / `error_description` of an error answer.
pub(crate) fn message_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = &v["error"];
    e.get("message")
        .and_then(Value::as_str)
        .or_else(|| v.get("error_description").and_then(Value::as_str))
        .or_else(|| e.as_str())
        .map(str::to_owned)
}

/// A request as it arrives.
pub(crate) struct Arrival<'a> {
    pub(crate) host: &'a str,
    pub(crate) method: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`, …
    pub(crate) version: &'a str,
    pub(crate) path: &'a str,
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
    /// The caller's IP address.
    pub(crate) peer: Option<&'a str>,
}

impl RequestLog {
    /// Records an arrival, keeping the newest `cap`; answers its `seq`.
    pub(crate) fn arrive(&mut self, a: Arrival<'_>, cap: usize) -> u64 {
        let Arrival {
            host,
            method,
            version,
            path,
            endpoint,
            headers,
            body,
            peer,
        } = a;
        self.next_seq += 1;
        let body = body_of(headers, body);
        let model = model_of(&body);
        self.items.push_back(RecordedRequest {
            seq: self.next_seq,
            host: host.to_owned(),
            method: method.to_owned(),
            version: version.to_owned(),
            path: path.to_owned(),
            endpoint,
            email: None,
            user_agent: headers
                .get(header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            headers: headers_of(headers),
            body,
            model,
            status: None,
            outcome: Outcome::NoAnswer,
            message: None,
            usage: None,
            peer: peer.map(str::to_owned),
        });
        self.trim(cap);
        self.next_seq
    }

    /// Records the answer of request `seq` (if still kept).
    pub(crate) fn answer(
        &mut self,
        seq: u64,
        status: u16,
        note: Option<CallNote>,
        message: Option<String>,
    ) {
        let Some(r) = self.items.iter_mut().rev().find(|r| r.seq == seq) else {
            return;
        };
        let note = note.unwrap_or_default();
        r.status = Some(status);
        r.email = note.email;
        r.message = message;
        r.usage = note.usage;
        r.outcome = if note.content_refused {
            Outcome::ContentRefused
        } else if note.fault {
            Outcome::Fault
        } else if (200..300).contains(&status) {
            Outcome::Served
        } else {
            Outcome::Refused
        };
    }

    /// Keeps the newest `cap`.
    pub(crate) fn trim(&mut self, cap: usize) {
        while self.items.len() > cap {
            self.items.pop_front();
        }
    }

    /// Forgets every request (not the sequence numbers).
    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// The requests, oldest first.
    pub(crate) fn list(&self) -> Vec<RecordedRequest> {
        self.items.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn records_and_bounds() {
        let mut log = RequestLog::default();
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            HeaderValue::from_static("antigravity/hub/2.9.1 darwin/arm64"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer ya29.fake-0123456789abcdef"),
        );
        let arrival = |host, path, endpoint, headers, body| Arrival {
            host,
            method: "POST",
            version: "HTTP/1.1",
            path,
            endpoint: Some(endpoint),
            headers,
            body,
            peer: None,
        };
        let seq = log.arrive(
            arrival(
                "daily",
                "/v1internal:generateContent",
                Endpoint::Generate,
                &h,
                br#"{"model":"m"}"#,
            ),
            2,
        );
        log.answer(
            seq,
            400,
            Some(CallNote {
                email: Some("a@x".into()),
                fault: false,
                content_refused: false,
                usage: None,
            }),
            Some("bad".into()),
        );
        let r = &log.list()[0];
        assert_eq!(r.host, "daily");
        assert_eq!(
            r.user_agent.as_deref(),
            Some("antigravity/hub/2.9.1 darwin/arm64")
        );
        assert!(!r.headers["authorization"].contains("0123456789abcdef"));
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(
            (r.status, r.outcome, r.message.as_deref()),
            (Some(400), Outcome::Refused, Some("bad"))
        );
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        log.arrive(
            arrival(
                "prod",
                "/token",
                Endpoint::Token,
                &form,
                b"grant_type=refresh_token&refresh_token=1%2F%2Fx",
            ),
            2,
        );
        log.arrive(arrival("prod", "/token", Endpoint::Token, &form, b""), 2);
        let list = log.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].body["refresh_token"], "1//x");
        assert_eq!(list[0].outcome, Outcome::NoAnswer);
        assert_eq!(list[1].seq, 3);
        assert_eq!(message_of(br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#).as_deref(), Some("Token has been expired or revoked."));
        assert_eq!(
            model_of(&serde_json::json!({"request": {"model": "models/gemini-2.5-pro"}}))
                .as_deref(),
            Some("gemini-2.5-pro")
        );
    }
}
