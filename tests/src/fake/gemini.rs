//! The deterministic answers of `generateContent` / `streamGenerateContent`,
//! computed from the Gemini request alone (plus the account's email), so a
//! test can predict them exactly:
//!
//! - the last user turn has a `functionResponse` part: text
//!   `result(<name>): <json of response>` (one line per such part);
//! - else the request declares tools (`tools[].functionDeclarations`) and the
//!   user text holds `call:<fname>`: a `functionCall` part
//!   `{"name": fname, "args": {"q": <user text without the call:fname word>}}`;
//! - else text `echo(<email>): <parts>`: the last user turn's parts in order,
//!   joined by one space, a text part as is, an `inlineData` part as
//!   `image(<mimeType>,<decoded byte length>)`, a `fileData` part as
//!   `file(<mimeType>,<fileUri>)`.
//!
//! A text answer is prefixed with `[sys:<system text>] ` when the request has
//! a `systemInstruction`. Token counts are whitespace-separated words (at
//! least 1): `promptTokenCount` over every text of the request,
//! `candidatesTokenCount` over the answer.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// What the model says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// A text part.
    Text(String),
    /// A `functionCall` part.
    Call { name: String, args: Value },
}

/// An answer and its usage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Composed {
    pub(crate) answer: Answer,
    pub(crate) prompt_tokens: u64,
    pub(crate) candidate_tokens: u64,
}

/// `obj[camel]`, else `obj[snake]` (Google accepts both spellings).
fn field<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// The texts of a `Content` (or of a bare string).
fn texts(content: &Value) -> Vec<&str> {
    if let Some(s) = content.as_str() {
        return vec![s];
    }
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The byte length of base64 data, standard or URL-safe, padded or not.
fn decoded_len(data: &str) -> Option<usize> {
    let clean: String = data
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&clean))
        .ok()
        .map(|v| v.len())
}

/// How one user part reads in an echo.
fn render_part(part: &Value) -> Option<String> {
    if let Some(t) = part.get("text").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    if let Some(inline) = field(part, "inlineData", "inline_data") {
        let mime = field(inline, "mimeType", "mime_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
        let len = decoded_len(data).map_or_else(|| "invalid".to_owned(), |n| n.to_string());
        return Some(format!("image({mime},{len})"));
    }
    if let Some(file) = field(part, "fileData", "file_data") {
        let mime = field(file, "mimeType", "mime_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let uri = field(file, "fileUri", "file_uri")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Some(format!("file({mime},{uri})"));
    }
    None
}

/// Whether the request declares at least one function.
fn declares_tools(request: &Value) -> bool {
    request
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools.iter().any(|t| {
                field(t, "functionDeclarations", "function_declarations")
                    .and_then(Value::as_array)
                    .is_some_and(|d| !d.is_empty())
            })
        })
}

/// `call:<name>` in `text`: the name and the text without that word.
fn find_call(text: &str) -> Option<(String, String)> {
    let at = text.find("call:")?;
    let after = &text[at + 5..];
    let len = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .unwrap_or(after.len());
    if len == 0 {
        return None;
    }
    let name = after[..len].to_owned();
    let rest = format!("{} {}", &text[..at], &after[len..]);
    Some((name, rest.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// The answer to `request` (the Gemini request inside the v1internal body)
/// for the account `email`.
pub(crate) fn compose(email: &str, request: &Value) -> Composed {
    let empty = Vec::new();
    let contents = request
        .get("contents")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let system = field(request, "systemInstruction", "system_instruction")
        .map(|s| texts(s).join(" "))
        .filter(|s| !s.is_empty());

    let prompt_words: u64 = contents.iter().flat_map(texts).map(words).sum::<u64>()
        + system.as_deref().map_or(0, words);

    let last_user = contents.iter().rev().find(|c| {
        matches!(
            c.get("role").and_then(Value::as_str),
            None | Some("user" | "function" | "")
        )
    });
    let parts: &[Value] = last_user
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);

    let results: Vec<String> = parts
        .iter()
        .filter_map(|p| field(p, "functionResponse", "function_response"))
        .map(|fr| {
            let name = fr.get("name").and_then(Value::as_str).unwrap_or("");
            let response = fr.get("response").cloned().unwrap_or(Value::Null);
            format!("result({name}): {response}")
        })
        .collect();

    let user_text = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ");

    let answer = if !results.is_empty() {
        Answer::Text(results.join("\n"))
    } else if let Some((name, q)) = declares_tools(request)
        .then(|| find_call(&user_text))
        .flatten()
    {
        Answer::Call {
            name,
            args: json!({ "q": q }),
        }
    } else {
        let rendered: Vec<String> = parts.iter().filter_map(render_part).collect();
        Answer::Text(format!("echo({email}): {}", rendered.join(" ")))
    };
    let answer = match (answer, system) {
        (Answer::Text(t), Some(sys)) => Answer::Text(format!("[sys:{sys}] {t}")),
        (a, _) => a,
    };
    let candidate_tokens = match &answer {
        Answer::Text(t) => words(t).max(1),
        Answer::Call { args, .. } => 1 + args["q"].as_str().map_or(0, words),
    };
    Composed {
        answer,
        prompt_tokens: prompt_words.max(1),
        candidate_tokens,
    }
}

impl Composed {
    fn usage(&self) -> Value {
        json!({
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": self.candidate_tokens,
            "totalTokenCount": self.prompt_tokens + self.candidate_tokens,
        })
    }

    fn part(&self, text: Option<&str>) -> Value {
        match (&self.answer, text) {
            (_, Some(t)) => json!({ "text": t }),
            (Answer::Text(t), None) => json!({ "text": t }),
            (Answer::Call { name, args }, None) => {
                json!({"functionCall": {"name": name, "args": args}})
            }
        }
    }

    /// One `{"response": …}` object; `last` adds finishReason and usage.
    fn envelope(&self, part: Value, last: bool, model: &str, response_id: &str) -> Value {
        let mut candidate = Map::new();
        candidate.insert("content".into(), json!({"role": "model", "parts": [part]}));
        if last {
            candidate.insert("finishReason".into(), json!("STOP"));
        }
        candidate.insert("index".into(), json!(0));
        let mut response = Map::new();
        response.insert("candidates".into(), json!([candidate]));
        if last {
            response.insert("usageMetadata".into(), self.usage());
        }
        response.insert("modelVersion".into(), json!(model));
        response.insert("responseId".into(), json!(response_id));
        json!({ "response": response })
    }

    /// The `generateContent` answer.
    pub(crate) fn full(&self, model: &str, response_id: &str) -> Value {
        self.envelope(self.part(None), true, model, response_id)
    }

    /// The SSE events of `streamGenerateContent`: a text in three chunks
    /// (the last with finishReason and usage), a function call in one.
    pub(crate) fn events(&self, model: &str, response_id: &str) -> Vec<Bytes> {
        let payloads: Vec<Value> = match &self.answer {
            Answer::Call { .. } => vec![self.full(model, response_id)],
            Answer::Text(t) => split3(t)
                .iter()
                .enumerate()
                .map(|(i, chunk)| self.envelope(self.part(Some(chunk)), i == 2, model, response_id))
                .collect(),
        };
        payloads
            .iter()
            .map(|p| Bytes::from(format!("data: {p}\n\n")))
            .collect()
    }
}

/// `s` in three consecutive pieces of about equal length (in chars).
fn split3(s: &str) -> [&str; 3] {
    let n = s.chars().count();
    let cut = |k: usize| s.char_indices().nth(k).map_or(s.len(), |(i, _)| i);
    let (a, b) = (cut(n / 3), cut(2 * n / 3));
    [&s[..a], &s[a..b], &s[b..]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(c: &Composed) -> &str {
        match &c.answer {
            Answer::Text(t) => t,
            Answer::Call { .. } => panic!("not text"),
        }
    }

    #[test]
    fn echoes_last_user_turn() {
        let req = json!({"contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "reply"}]},
            {"role": "user", "parts": [{"text": "hello there"}, {"inlineData": {"mimeType": "image/png", "data": "AAECAw=="}}]}
        ]});
        let c = compose("a@x.com", &req);
        assert_eq!(text_of(&c), "echo(a@x.com): hello there image(image/png,4)");
        assert_eq!(c.prompt_tokens, 4);
        assert_eq!(c.candidate_tokens, 4);
    }

    #[test]
    fn system_prefix_and_function_results() {
        let req = json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [{"role": "user", "parts": [
                {"functionResponse": {"name": "lookup", "response": {"b": 1, "a": "x"}}}
            ]}]
        });
        assert_eq!(
            text_of(&compose("a@x", &req)),
            r#"[sys:be brief] result(lookup): {"b":1,"a":"x"}"#
        );
    }

    #[test]
    fn function_call_needs_declared_tools() {
        let mut req = json!({"contents": [{"role": "user", "parts": [{"text": "please call:get_weather for Paris"}]}]});
        assert!(matches!(compose("a@x", &req).answer, Answer::Text(_)));
        req["tools"] = json!([{"functionDeclarations": [{"name": "get_weather"}]}]);
        assert_eq!(
            compose("a@x", &req).answer,
            Answer::Call {
                name: "get_weather".into(),
                args: json!({"q": "please for Paris"})
            }
        );
    }

    #[test]
    fn odd_requests_do_not_panic() {
        for req in [
            json!(null),
            json!({"contents": 3}),
            json!({"contents": [{"parts": [{"inlineData": {"data": "!!"}}]}]}),
            json!({"contents": [{"role": "user", "parts": [{"text": "call:"}]}], "tools": [{"functionDeclarations": [{}]}]}),
        ] {
            let c = compose("a@x", &req);
            assert!(!c.events("m", "r").is_empty());
        }
        assert_eq!(split3("ab"), ["", "a", "b"]);
        assert_eq!(split3("héllo wörld").concat(), "héllo wörld");
    }

    #[test]
    fn stream_events_reassemble() {
        let req = json!({"contents": [{"role": "user", "parts": [{"text": "stream me"}]}]});
        let c = compose("a@x", &req);
        let events = c.events("gemini-2.5-pro", "r1");
        assert_eq!(events.len(), 3);
        let mut text = String::new();
        for (i, e) in events.iter().enumerate() {
            let s = std::str::from_utf8(e).unwrap();
            let v: Value =
                serde_json::from_str(s.strip_prefix("data: ").unwrap().trim_end()).unwrap();
            let cand = &v["response"]["candidates"][0];
            text.push_str(cand["content"]["parts"][0]["text"].as_str().unwrap());
            assert_eq!(cand.get("finishReason").is_some(), i == 2);
            assert_eq!(v["response"].get("usageMetadata").is_some(), i == 2);
        }
        assert_eq!(text, "echo(a@x): stream me");
    }
}
