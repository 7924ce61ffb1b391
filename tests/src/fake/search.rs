//! Google Search grounding, as the fake answers it:
//!
//! - a request with the `googleSearch` tool (no functions: Google refuses
//!   the mix) is answered with a text and the candidate's
//!   `groundingMetadata` as Google sends it: `webSearchQueries` (one: the
//!   last user text), `searchEntryPoint`, two `groundingChunks` (`web.uri`
//!   a `grounding-api-redirect` link, `web.title` a domain of
//!   [`DOMAIN`]) and two `groundingSupports` (one per sentence, byte
//!   offsets). A stream carries the metadata in its last event, with the
//!   finishReason, as Google does;
//! - the scripted agent turn's search: a user text with `SEARCH: <query>`
//!   and a declared web search function (Claude Code's `WebSearch`, Gemini
//!   CLI's `google_web_search`, any `web_search`) → one functionCall to it
//!   with `{"query": <query>}`.
//!
//! Everything is derived from the prompt, so a test can predict it.

use serde_json::{json, Value};

/// The site every grounded answer cites.
pub(crate) const DOMAIN: &str = "example.org";

/// Where Google's grounding links point (they redirect to the page).
const REDIRECT: &str = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/";

/// Whether a request runs Google Search.
pub(crate) fn uses_search(request: &Value) -> bool {
    request
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| tools.iter().any(|t| t.get("googleSearch").or_else(|| t.get("google_search")).is_some()))
}

/// A stable token for `query` (FNV-1a), so links are predictable.
fn token(query: &str, n: u32) -> String {
    let h = query
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("example-org-{h:08x}-{n}")
}

/// The link of the `n`th source (1 or 2) of a search for `query`.
pub(crate) fn source_url(query: &str, n: u32) -> String {
    format!("{REDIRECT}{}", token(query, n))
}

/// The grounded answer to `query` (the last user text): its text and its
/// `groundingMetadata`.
pub(crate) fn grounded(query: &str) -> (String, Value) {
    let query = query.trim();
    let first = format!("{query}: the first source is {DOMAIN}.");
    let second = format!("More detail is on docs.{DOMAIN}.");
    let text = format!("{first} {second}");
    let second_at = first.len() + 1;
    let meta = json!({
        "webSearchQueries": [query],
        "searchEntryPoint": {
            "renderedContent": format!("<style>.container{{}}</style><div class=\"container\"><a class=\"chip\">{query}</a></div>")
        },
        "groundingChunks": [
            {"web": {"uri": source_url(query, 1), "title": DOMAIN}},
            {"web": {"uri": source_url(query, 2), "title": format!("docs.{DOMAIN}")}}
        ],
        "groundingSupports": [
            // proto3 leaves out a 0 startIndex, as Google's answers do.
            {"segment": {"endIndex": first.len(), "text": first}, "groundingChunkIndices": [0]},
            {"segment": {"startIndex": second_at, "endIndex": second_at + second.len(), "text": second},
             "groundingChunkIndices": [1, 0]}
        ]
    });
    (text, meta)
}

/// The query of a `SEARCH: <query>` line in `text` (the rest of that line).
pub(crate) fn search_query(text: &str) -> Option<String> {
    let at = text.find("SEARCH: ")?;
    let q = text[at + 8..].lines().next().unwrap_or("").trim();
    (!q.is_empty()).then(|| q.to_owned())
}

/// The scripted agent turn's search call: the declared web search
/// function's name and `{"query": …}`, when `user_text` holds `SEARCH:`.
pub(crate) fn search_call(request: &Value, user_text: &str) -> Option<(String, Value)> {
    let query = search_query(user_text)?;
    let name = request
        .get("tools")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|t| t.get("functionDeclarations").or_else(|| t.get("function_declarations")))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|d| d.get("name").and_then(Value::as_str))
        .find(|n| {
            let n = n.to_ascii_lowercase().replace('_', "");
            n == "websearch" || n == "googlewebsearch"
        })?;
    Some((name.to_owned(), json!({ "query": query })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grounded_answers_are_consistent() {
        let (text, meta) = grounded("  latest rust release ");
        assert_eq!(meta["webSearchQueries"], json!(["latest rust release"]));
        for s in meta["groundingSupports"].as_array().unwrap() {
            let seg = &s["segment"];
            let start = seg["startIndex"].as_u64().unwrap_or(0) as usize;
            let end = seg["endIndex"].as_u64().unwrap() as usize;
            assert_eq!(&text[start..end], seg["text"].as_str().unwrap());
        }
        let uri = meta["groundingChunks"][0]["web"]["uri"].as_str().unwrap();
        assert!(uri.starts_with(REDIRECT) && uri.contains("example-org-"));
        assert_eq!(uri, source_url("latest rust release", 1));
        assert!(uses_search(&json!({"tools": [{"googleSearch": {}}]})));
        assert!(!uses_search(&json!({"tools": [{"functionDeclarations": []}]})));
    }

    #[test]
    fn answers_carry_the_metadata_as_google_does() {
        let req = json!({"tools": [{"googleSearch": {}}],
            "contents": [{"role": "user", "parts": [{"text": "rust 2026"}]}]});
        let c = super::super::gemini::compose("a@x", &req);
        let full = c.full("gemini-2.5-flash", "r");
        let candidate = &full["response"]["candidates"][0];
        assert_eq!(candidate["groundingMetadata"]["webSearchQueries"], json!(["rust 2026"]));
        assert!(candidate["content"]["parts"][0]["text"].as_str().unwrap().starts_with("rust 2026: "));
        // Streamed: only the last event (with the finishReason) has it.
        let events: Vec<Value> = c
            .events("gemini-2.5-flash", "r")
            .iter()
            .map(|b| serde_json::from_str(std::str::from_utf8(b).unwrap().trim_start_matches("data: ").trim()).unwrap())
            .collect();
        let (last, rest) = events.split_last().unwrap();
        assert!(last["response"]["candidates"][0]["groundingMetadata"]["groundingChunks"].is_array());
        assert!(rest.iter().all(|e| e["response"]["candidates"][0].get("groundingMetadata").is_none()));
    }

    #[test]
    fn search_calls() {
        let req = json!({"tools": [{"functionDeclarations": [{"name": "Bash"}, {"name": "WebSearch"}]}]});
        assert_eq!(
            search_call(&req, "please SEARCH: rust 2026\nthanks"),
            Some(("WebSearch".to_owned(), json!({"query": "rust 2026"})))
        );
        assert_eq!(search_call(&req, "no search here"), None);
        assert_eq!(search_call(&json!({"tools": []}), "SEARCH: x"), None);
    }
}
