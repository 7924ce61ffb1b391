//! The deterministic answers of `generateContent` / `streamGenerateContent`,
//! computed from the Gemini request alone (plus the account's email), so a
//! test can predict them exactly:
//!
//! - the last user turn has a `functionResponse` part for a call of the
//!   scripted agent turn ([`agent`](super::agent)): text
//!   `The command printed: <output>`;
//! - else it has a `functionResponse` part: text
//!   `result(<name>): <json of response>` (one line per such part);
//! - else the request has the `googleSearch` tool: a grounded text with its
//!   `groundingMetadata` ([`search`](super::search));
//! - else the request declares a shell-like tool and the user text holds
//!   `RUN: <cmd>`: a `functionCall` to that tool running `cmd`;
//! - else it declares a web search function and the user text holds
//!   `SEARCH: <query>`: a `functionCall` to it with `{"query"}`;
//! - else the request declares tools (`tools[].functionDeclarations`) and the
//!   user text holds `call:<fname>`: a `functionCall` part
//!   `{"name": fname, "args": {"q": <user text without the call:fname word>}}`;
//! - else text `echo(<email>): <parts>`: the last user turn's parts in order,
//!   joined by one space, a text part as is, an `inlineData` part as
//!   `image(<mimeType>,<decoded byte length>)`, a `fileData` part as
//!   `file(<mimeType>,<fileUri>)`.
//!
//! A text answer (but `The command printed: …`) is prefixed with
//! `[sys:<system text>] ` when the request has a `systemInstruction`.
//! What depends on the fake's state (call ids, thought signatures, a
//! Claude thought part) is added by [`Decor`]. Token counts are whitespace-separated words (at
//! least 1): `promptTokenCount` over every text of the request,
//! `candidatesTokenCount` over the answer; `cachedContentTokenCount` (when
//! not 0) is the account's prompt cache's ([`prompt_cache`](super::prompt_cache)).

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::agent;

/// What the model says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// A text part.
    Text(String),
    /// A `functionCall` part; `run` for the scripted agent turn's call.
    Call {
        name: String,
        args: Value,
        run: bool,
    },
}

/// What the fake adds to an answer from its state.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Decor {
    /// The `functionCall.id`.
    pub(crate) call_id: Option<String>,
    /// The `thoughtSignature` of the functionCall part (Gemini 3).
    pub(crate) call_signature: Option<String>,
    /// A thought part before the answer: its text and signature (Claude
    /// with `thinkingConfig`).
    pub(crate) thought: Option<(String, String)>,
    /// The candidate's `groundingMetadata` (a `googleSearch` answer, see
    /// [`search`](super::search)), on the last event of a stream.
    pub(crate) grounding: Option<Value>,
}

/// An answer and its usage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Composed {
    pub(crate) answer: Answer,
    pub(crate) prompt_tokens: u64,
    /// Of `prompt_tokens`, those read from the account's prompt cache.
    pub(crate) cached_tokens: u64,
    pub(crate) candidate_tokens: u64,
    pub(crate) decor: Decor,
}

/// `obj[camel]`, else `obj[snake]` (Google accepts both spellings).
fn field<'a>(obj: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

pub(crate) fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// The texts of a `Content` (or of a bare string).
pub(crate) fn texts(content: &Value) -> Vec<&str> {
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
pub(crate) fn declares_tools(request: &Value) -> bool {
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

/// The words of every text of a request (contents and system instruction).
pub(crate) fn prompt_words(request: &Value) -> u64 {
    let empty = Vec::new();
    let contents = request
        .get("contents")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let system = field(request, "systemInstruction", "system_instruction")
        .map(|s| texts(s).join(" "))
        .unwrap_or_default();
    contents.iter().flat_map(texts).map(words).sum::<u64>() + words(&system)
}

/// The answer to `request` (the Gemini request inside the v1internal body)
/// for the account `email`.
#[cfg(test)]
pub(crate) fn compose(email: &str, request: &Value) -> Composed {
    compose_with(email, request, &|_| false)
}

/// Whether a functionResponse answers the scripted agent turn's call: its
/// id is one the fake issued for it (`is_run_id`), or it names a shell
/// tool the request declares and the user text before the latest model
/// content ran a `RUN:`.
fn answers_run(
    fr: &Value,
    request: &Value,
    run_text: bool,
    is_run_id: &dyn Fn(&str) -> bool,
) -> bool {
    if fr.get("id").and_then(Value::as_str).is_some_and(is_run_id) {
        return true;
    }
    let name = fr.get("name").and_then(Value::as_str).unwrap_or("");
    run_text && agent::shell_tool(request).is_some_and(|(tool, _)| tool == name)
}

/// [`compose`], knowing which call ids the agent turn issued.
pub(crate) fn compose_with(
    email: &str,
    request: &Value,
    is_run_id: &dyn Fn(&str) -> bool,
) -> Composed {
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

    // The user text before the latest model content: did it run a command?
    let is_model = |c: &Value| matches!(c.get("role").and_then(Value::as_str), Some("model"));
    let run_text = contents
        .iter()
        .rposition(is_model)
        .and_then(|m| {
            contents[..m]
                .iter()
                .rev()
                .find(|c| !is_model(c) && !texts(c).is_empty())
        })
        .is_some_and(|c| texts(c).iter().any(|t| agent::run_command(t).is_some()));
    let run_output = parts
        .iter()
        .filter_map(|p| field(p, "functionResponse", "function_response"))
        .find(|fr| answers_run(fr, request, run_text, is_run_id))
        .map(|fr| agent::output_text(fr.get("response").unwrap_or(&Value::Null)));

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

    let run = agent::run_command(&user_text).and_then(|cmd| {
        agent::shell_tool(request).map(|(name, schema)| (name, agent::shell_args(schema, &cmd)))
    });
    if let Some((text, grounding)) = (results.is_empty() && super::search::uses_search(request))
        .then(|| super::search::grounded(&user_text))
    {
        return Composed {
            candidate_tokens: words(&text).max(1),
            answer: Answer::Text(text),
            prompt_tokens: prompt_words.max(1),
            cached_tokens: 0,
            decor: Decor { grounding: Some(grounding), ..Decor::default() },
        };
    }
    if let Some(out) = run_output {
        let text = format!("The command printed: {out}");
        return Composed {
            candidate_tokens: words(&text).max(1),
            answer: Answer::Text(text),
            prompt_tokens: prompt_words.max(1),
            cached_tokens: 0,
            decor: Decor::default(),
        };
    }
    let answer = if !results.is_empty() {
        Answer::Text(results.join("\n"))
    } else if let Some((name, args)) = run {
        Answer::Call {
            name,
            args,
            run: true,
        }
    } else if let Some((name, args)) = super::search::search_call(request, &user_text) {
        Answer::Call {
            name,
            args,
            run: false,
        }
    } else if let Some((name, q)) = declares_tools(request)
        .then(|| find_call(&user_text))
        .flatten()
    {
        Answer::Call {
            name,
            args: json!({ "q": q }),
            run: false,
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
        Answer::Call {
            args, run: false, ..
        } => 1 + args["q"].as_str().or(args["query"].as_str()).map_or(0, words),
        Answer::Call {
            args, run: true, ..
        } => 1 + words(&args.to_string()),
    };
    Composed {
        answer,
        prompt_tokens: prompt_words.max(1),
        cached_tokens: 0,
        candidate_tokens,
        decor: Decor::default(),
    }
}

impl Composed {
    fn thought_tokens(&self) -> u64 {
        self.decor.thought.as_ref().map_or(0, |(t, _)| words(t))
    }

    /// The answer's `usageMetadata`.
    pub(crate) fn usage(&self) -> Value {
        let thoughts = self.thought_tokens();
        let mut u = json!({
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": self.candidate_tokens,
            "totalTokenCount": self.prompt_tokens + self.candidate_tokens + thoughts,
        });
        if thoughts > 0 {
            u["thoughtsTokenCount"] = json!(thoughts);
        }
        if self.cached_tokens > 0 {
            u["cachedContentTokenCount"] = json!(self.cached_tokens.min(self.prompt_tokens));
        }
        u
    }

    fn part(&self, text: Option<&str>) -> Value {
        match (&self.answer, text) {
            (_, Some(t)) => json!({ "text": t }),
            (Answer::Text(t), None) => json!({ "text": t }),
            (Answer::Call { name, args, .. }, None) => {
                let mut call = Map::new();
                if let Some(id) = &self.decor.call_id {
                    call.insert("id".into(), json!(id));
                }
                call.insert("name".into(), json!(name));
                call.insert("args".into(), args.clone());
                let mut part = json!({ "functionCall": call });
                if let Some(sig) = &self.decor.call_signature {
                    part["thoughtSignature"] = json!(sig);
                }
                part
            }
        }
    }

    /// The thought part, if any.
    fn thought_part(&self) -> Option<Value> {
        self.decor
            .thought
            .as_ref()
            .map(|(text, sig)| json!({"thought": true, "text": text, "thoughtSignature": sig}))
    }

    /// One `{"response": …}` object; `last` adds finishReason and usage.
    fn envelope(&self, part: Value, last: bool, model: &str, response_id: &str) -> Value {
        self.envelope_of(vec![part], last, model, response_id)
    }

    fn envelope_of(&self, parts: Vec<Value>, last: bool, model: &str, response_id: &str) -> Value {
        let mut candidate = Map::new();
        candidate.insert("content".into(), json!({"role": "model", "parts": parts}));
        if last {
            candidate.insert("finishReason".into(), json!("STOP"));
            if let Some(g) = &self.decor.grounding {
                candidate.insert("groundingMetadata".into(), g.clone());
            }
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

    /// The `generateContent` answer (a thought part first, if any).
    pub(crate) fn full(&self, model: &str, response_id: &str) -> Value {
        let parts: Vec<Value> = self
            .thought_part()
            .into_iter()
            .chain(std::iter::once(self.part(None)))
            .collect();
        self.envelope_of(parts, true, model, response_id)
    }

    /// The SSE events of `streamGenerateContent`: a thought part alone
    /// first, if any; then a text in three chunks (the last with
    /// finishReason and usage), a function call in one.
    pub(crate) fn events(&self, model: &str, response_id: &str) -> Vec<Bytes> {
        let mut payloads: Vec<Value> = self
            .thought_part()
            .map(|t| self.envelope(t, false, model, response_id))
            .into_iter()
            .collect();
        match &self.answer {
            Answer::Call { .. } => {
                payloads.push(self.envelope(self.part(None), true, model, response_id))
            }
            Answer::Text(t) => payloads.extend(split3(t).iter().enumerate().map(|(i, chunk)| {
                self.envelope(self.part(Some(chunk)), i == 2, model, response_id)
            })),
        }
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
                args: json!({"q": "please for Paris"}),
                run: false,
            }
        );
    }

    #[test]
    fn scripted_agent_turn() {
        let tools = json!([{"functionDeclarations": [{"name": "run_shell_command",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}]}]);
        let mut req = json!({"tools": tools, "systemInstruction": {"parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [{"text": "RUN: echo MAGIC-4242"}]}]});
        let c = compose("a@x", &req);
        assert_eq!(
            c.answer,
            Answer::Call {
                name: "run_shell_command".into(),
                args: json!({"command": "echo MAGIC-4242"}),
                run: true
            }
        );
        // The result: matched by the tool's name, or by an issued id; no [sys:] prefix.
        req["contents"].as_array_mut().unwrap().extend([
            json!({"role": "model", "parts": [{"functionCall": {"id": "call_1", "name": "run_shell_command", "args": {}}}]}),
            json!({"role": "user", "parts": [{"functionResponse": {"id": "call_1", "name": "run_shell_command",
                "response": {"output": "MAGIC-4242\n"}}}]}),
        ]);
        assert_eq!(
            text_of(&compose("a@x", &req)),
            "The command printed: MAGIC-4242"
        );
        // Claude Code sends reminders as text next to its tool results.
        let mut with_text = req.clone();
        with_text["contents"][2]["parts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"text": "<system-reminder>keep going</system-reminder>"}));
        assert_eq!(
            text_of(&compose("a@x", &with_text)),
            "The command printed: MAGIC-4242"
        );
        req["contents"][0]["parts"][0]["text"] = json!("no command here");
        assert_eq!(
            text_of(&compose("a@x", &req)),
            r#"[sys:sys] result(run_shell_command): {"output":"MAGIC-4242\n"}"#
        );
        assert_eq!(
            text_of(&compose_with("a@x", &req, &|id| id == "call_1")),
            "The command printed: MAGIC-4242"
        );
    }

    #[test]
    fn decor_adds_ids_signatures_and_thoughts() {
        let req = json!({"tools": [{"functionDeclarations": [{"name": "f"}]}],
            "contents": [{"role": "user", "parts": [{"text": "call:f x"}]}]});
        let mut c = compose("a@x", &req);
        c.decor = Decor {
            call_id: Some("toolu_7".into()),
            call_signature: Some("SIG".into()),
            thought: Some(("Thinking it over.".into(), "TSIG".into())),
            grounding: None,
        };
        let full = c.full("claude-x", "r");
        let parts = &full["response"]["candidates"][0]["content"]["parts"];
        assert_eq!(
            parts[0],
            json!({"thought": true, "text": "Thinking it over.", "thoughtSignature": "TSIG"})
        );
        assert_eq!(
            parts[1],
            json!({"functionCall": {"id": "toolu_7", "name": "f", "args": {"q": "x"}}, "thoughtSignature": "SIG"})
        );
        let usage = &full["response"]["usageMetadata"];
        assert_eq!(usage["thoughtsTokenCount"], 3);
        assert_eq!(
            usage["totalTokenCount"],
            usage["promptTokenCount"].as_u64().unwrap()
                + usage["candidatesTokenCount"].as_u64().unwrap()
                + 3
        );
        let events = c.events("claude-x", "r");
        assert_eq!(events.len(), 2);
        assert_eq!(prompt_words(&req), 2);
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
