//! The slow path of a request body serde refused: finding the field to
//! blame, so that the 400 names it. Used by the three request translators
//! ([`anthropic`](super::anthropic), [`openai_chat`](super::openai_chat),
//! [`openai_responses`](super::openai_responses)): each reads its body with
//! [`read`] and describes its request's shape as a tree of [`Probe`]s for
//! [`blame`], which runs only after typed parsing failed.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::shared::TranslateError;

/// Parses `body` as `T`; when serde refuses it, `diagnose` (the
/// translator's slow path) makes the error.
pub(crate) fn read<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    diagnose: impl FnOnce(&[u8], serde_json::Error) -> TranslateError,
) -> Result<T, TranslateError> {
    serde_json::from_slice(body).map_err(|err| diagnose(body, err))
}

/// Drills into a value (the field at some path) to name the deepest failing
/// field. `check` deserializes a single-key object as the element type;
/// `children` names the keys holding arrays whose elements are checked with
/// their own rules (e.g. `content` inside a message).
pub(crate) struct Probe<'p> {
    /// Deserializes a value as the element type, returning serde's error.
    pub(crate) check: fn(&Value) -> Option<serde_json::Error>,
    /// The keys drilled into, each with its own probe.
    pub(crate) children: &'p [(&'static str, &'p Probe<'p>)],
}

impl Probe<'_> {
    /// A probe with no children.
    pub(crate) const fn leaf(check: fn(&Value) -> Option<serde_json::Error>) -> Self {
        Probe { check, children: &[] }
    }

    /// Finds `(path, reason)` for the first element/key that fails.
    fn locate(&self, path: &str, value: &Value) -> Option<(String, String)> {
        // Only arrays and objects are drilled into; a scalar in the wrong
        // place is reported by the parent with serde's "expected …" wording.
        let elems: Vec<(String, &Value)> = match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
            obj @ Value::Object(_) => vec![(path.to_owned(), obj)],
            _ => return None,
        };
        for (elem_path, elem) in elems {
            let Value::Object(obj) = elem else {
                if (self.check)(elem).is_some() {
                    return Some((elem_path, "must be an object".to_owned()));
                }
                continue;
            };
            if let Some((key, v, reason)) = first_bad_key(obj, self.check) {
                let key_path = if elem_path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{elem_path}.{key}")
                };
                if let Some((_, child)) = self.children.iter().find(|(k, _)| *k == key) {
                    if let Some(found) = child.locate(&key_path, v) {
                        return Some(found);
                    }
                }
                return Some((key_path, clean_reason(reason)));
            }
        }
        None
    }
}

/// After typed parsing failed, finds the field to blame: re-reads the body as
/// a [`Value`] and tries each key of an object alone with `check`, so the
/// message can name it. Only runs on the error path.
fn first_bad_key(
    obj: &Map<String, Value>,
    check: impl Fn(&Value) -> Option<serde_json::Error>,
) -> Option<(&str, &Value, String)> {
    obj.iter().find_map(|(k, v)| {
        let mut one = Map::with_capacity(1);
        one.insert(k.clone(), v.clone());
        check(&Value::Object(one)).map(|e| (k.as_str(), v, e.to_string()))
    })
}

/// Turns a serde error on the whole body into a [`TranslateError`] when
/// nothing more precise was found.
fn body_error(
    body: &[u8],
    err: serde_json::Error,
) -> Result<Map<String, Value>, TranslateError> {
    if err.is_syntax() || err.is_eof() {
        return Err(TranslateError::InvalidJson(err.to_string()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(TranslateError::field("(body)", "must be a JSON object")),
        Err(e) => Err(TranslateError::InvalidJson(e.to_string())),
    }
}

/// The error for a body serde refused: the deepest field `root` blames,
/// else serde's own message. Only runs on the error path.
pub(crate) fn blame(body: &[u8], err: serde_json::Error, root: &Probe<'_>) -> TranslateError {
    let fallback = err.to_string();
    let obj = match body_error(body, err) {
        Ok(obj) => obj,
        Err(e) => return e,
    };
    match root.locate("", &Value::Object(obj)) {
        Some((field, reason)) => TranslateError::field(field, reason),
        None => TranslateError::field("(body)", clean_reason(fallback)),
    }
}

/// serde's message, minus the position (meaningless once the field is named)
/// and with Rust type names said in JSON words.
pub(crate) fn clean_reason(reason: String) -> String {
    let reason = match reason.find(" at line ") {
        Some(i) => &reason[..i],
        None => &reason[..],
    };
    let mut out = format!("is invalid: {reason}");
    for (rust, json) in [
        ("expected f64", "expected a number"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected i64", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
    ] {
        if let Some(i) = out.find(rust) {
            out.replace_range(i..i + rust.len(), json);
        }
    }
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected an object");
    }
    out
}
