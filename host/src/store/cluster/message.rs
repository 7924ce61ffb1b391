//! The change messages on `P:changes`, as the scripts publish them (JSON by
//! Lua's cjson): `{"op":"put","id","rev","node","ts","rec"}` (the record as
//! a JSON string), `{"op":"del","id","rev","node","ts"}`,
//! `{"op":"sess","s","a","u","node","ts"}`.

use serde_json::Value;

/// What changed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// Account `id` is now `record` (its JSON text), at revision `rev`.
    Put { id: String, rev: u64, record: String },
    /// Account `id` is gone, at revision `rev`.
    Removed { id: String, rev: u64 },
    /// Session `session` is bound to `account` until `until_ms`.
    Session { session: String, account: String, until_ms: u64 },
}

/// One message: the change, the node that made it, when it was sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// The change.
    pub event: Event,
    /// The sending node's id.
    pub node: String,
    /// When it was sent, Unix ms (the sender's clock).
    pub sent_ms: u64,
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

/// Reads a message; `None` for anything else (a foreign publisher).
pub(crate) fn parse(payload: &[u8]) -> Option<Message> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let event = match v.get("op")?.as_str()? {
        "put" => Event::Put { id: text(&v, "id")?, rev: num(v.get("rev")?)?, record: text(&v, "rec")? },
        "del" => Event::Removed { id: text(&v, "id")?, rev: num(v.get("rev")?)? },
        "sess" => Event::Session { session: text(&v, "s")?, account: text(&v, "a")?, until_ms: num(v.get("u")?)? },
        _ => return None,
    };
    Some(Message { event, node: text(&v, "node").unwrap_or_default(), sent_ms: v.get("ts").and_then(num).unwrap_or(0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_scripts_publish() {
        let m = parse(br#"{"op":"put","id":"a1","rev":7,"node":"n","ts":"1700000000123","rec":"{\"id\":\"a1\"}"}"#).unwrap();
        assert_eq!(m.event, Event::Put { id: "a1".into(), rev: 7, record: r#"{"id":"a1"}"#.into() });
        assert_eq!((m.node.as_str(), m.sent_ms), ("n", 1_700_000_000_123));
        let m = parse(br#"{"op":"del","id":"a1","rev":8,"node":"n","ts":"1"}"#).unwrap();
        assert_eq!(m.event, Event::Removed { id: "a1".into(), rev: 8 });
        let m = parse(br#"{"op":"sess","s":"h","a":"a1","u":"99","node":"n","ts":"1"}"#).unwrap();
        assert_eq!(m.event, Event::Session { session: "h".into(), account: "a1".into(), until_ms: 99 });
        assert!(parse(b"hello").is_none());
        assert!(parse(br#"{"op":"put","id":"a1"}"#).is_none());
    }
}
