//! Cache hits visible to the admin: Google reads a prompt prefix it has
//! seen on the same account from its cache (the fake plays this, module
//! `prompt_cache`), the clients see those tokens in their own usage fields
//! (Anthropic `cache_read_input_tokens`, OpenAI
//! `prompt_tokens_details.cached_tokens`, Responses
//! `input_tokens_details.cached_tokens`, Gemini
//! `usageMetadata.cachedContentTokenCount`), and `/metrics` counts them in
//! `grantpool_cached_tokens_total` next to `grantpool_input_tokens_total`.
//! A conversation kept on one account hits the cache turn after turn; the
//! same conversation spread over two accounts mostly misses it.

mod common;

use common::{Env, ADMIN_KEY};
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-pro";

const STICKY: &str = "[selector]\nplugin = \"sticky-session\"\n\n[[classifier]]\nplugin = \"default\"\n";
const ROUND_ROBIN: &str = "[selector]\nplugin = \"round-robin\"\n\n[[classifier]]\nplugin = \"default\"\n";

/// What one turn cost, as the client and the proxy saw it.
#[derive(Debug)]
struct Turn {
    /// `x-grantpool-account`.
    account: String,
    /// Prompt tokens, cached ones included.
    prompt: u64,
    /// Of them, read from Google's cache.
    cached: u64,
}

/// Two accounts, `policy`, a running proxy.
async fn two_accounts(policy: &str) -> (Env, common::Proxy) {
    let env = Env::new().await;
    env.use_policy(policy);
    for e in ["a", "b"] {
        env.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await;
    }
    let proxy = env.start().await;
    (env, proxy)
}

/// POST `body` to `path` with the conversation's `x-session-id`: the account
/// that served and the JSON answer, after checking it is 200.
async fn post(proxy: &common::Proxy, path: &str, session: &str, body: &Value) -> (String, Value) {
    let resp = proxy
        .http
        .post(format!("{}{path}", proxy.url))
        .header("anthropic-version", "2023-06-01")
        .header("x-session-id", session)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    (account, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A three-turn Anthropic Messages conversation, each turn resending the
/// history (what every coding agent does).
async fn anthropic_conversation(proxy: &common::Proxy, session: &str) -> Vec<Turn> {
    let mut messages = vec![json!({"role": "user", "content": "please look at the failing test in the parser module"})];
    let mut turns = Vec::new();
    for i in 0..3 {
        let body = json!({"model": MODEL, "max_tokens": 256, "system": "You are a careful coding agent working in a Rust repository.",
            "messages": messages.clone()});
        let (account, v) = post(proxy, "/v1/messages", session, &body).await;
        let usage = &v["usage"];
        let cached = usage["cache_read_input_tokens"].as_u64().unwrap_or(0);
        // Anthropic's input_tokens leaves the cached ones out.
        let prompt = usage["input_tokens"].as_u64().unwrap() + cached;
        turns.push(Turn { account, prompt, cached });
        let answer = v["content"][0]["text"].as_str().unwrap_or_default().to_string();
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": format!("good, now step {i} of the fix please")}));
    }
    turns
}

/// The same, as OpenAI Chat Completions.
async fn chat_conversation(proxy: &common::Proxy, session: &str) -> Vec<Turn> {
    let mut messages = vec![
        json!({"role": "system", "content": "You review pull requests and answer in short sentences."}),
        json!({"role": "user", "content": "what does this change to the scheduler do"}),
    ];
    let mut turns = Vec::new();
    for i in 0..3 {
        let body = json!({"model": MODEL, "messages": messages.clone()});
        let (account, v) = post(proxy, "/v1/chat/completions", session, &body).await;
        let usage = &v["usage"];
        let cached = usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0);
        turns.push(Turn { account, prompt: usage["prompt_tokens"].as_u64().unwrap(), cached });
        let answer = v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_string();
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": format!("and what about part {i} of it")}));
    }
    turns
}

/// The same, as a streamed Responses API conversation (Codex's way): the
/// usage of `response.completed`.
async fn responses_stream_conversation(proxy: &common::Proxy, session: &str) -> Vec<Turn> {
    let text = |role: &str, kind: &str, t: &str| json!({"type": "message", "role": role, "content": [{"type": kind, "text": t}]});
    let mut input = vec![text("user", "input_text", "rename the config loader and update its callers")];
    let mut turns = Vec::new();
    for i in 0..3 {
        let body = json!({"model": MODEL, "instructions": "You are a coding agent. Keep changes small.", "input": input.clone(), "stream": true});
        let resp = proxy
            .http
            .post(format!("{}/v1/responses", proxy.url))
            .header("x-session-id", session)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let sse = resp.text().await.unwrap();
        let completed = sse
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data:")))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|e| e["type"] == "response.completed")
            .unwrap_or_else(|| panic!("no response.completed in {sse}"));
        let usage = &completed["response"]["usage"];
        turns.push(Turn {
            account,
            prompt: usage["input_tokens"].as_u64().unwrap(),
            cached: usage["input_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0),
        });
        let answer = completed["response"]["output"][0]["content"][0]["text"].as_str().unwrap_or_default().to_string();
        input.push(text("assistant", "output_text", &answer));
        input.push(text("user", "input_text", &format!("then do step {i}")));
    }
    turns
}

/// The same, as a Gemini `streamGenerateContent` (the route that passes
/// Google's answer on without parsing it): the usage of the last event.
async fn gemini_stream_conversation(proxy: &common::Proxy, session: &str) -> Vec<Turn> {
    let mut contents = vec![json!({"role": "user", "parts": [{"text": "summarise the open issues about streaming"}]})];
    let mut turns = Vec::new();
    for i in 0..3 {
        let body = json!({"systemInstruction": {"parts": [{"text": "You triage issues for a proxy project."}]}, "contents": contents.clone()});
        let resp = proxy
            .http
            .post(format!("{}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", proxy.url))
            .header("x-session-id", session)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = resp.text().await.unwrap();
        let events: Vec<Value> =
            text.split("\n\n").filter_map(|e| e.trim().strip_prefix("data:")).map(|d| serde_json::from_str(d.trim()).unwrap()).collect();
        let usage = events.iter().rev().find_map(|e| e.get("usageMetadata")).unwrap_or_else(|| panic!("no usage in {text}"));
        turns.push(Turn {
            account,
            prompt: usage["promptTokenCount"].as_u64().unwrap(),
            cached: usage["cachedContentTokenCount"].as_u64().unwrap_or(0),
        });
        let answer: String = events.iter().filter_map(|e| e["candidates"][0]["content"]["parts"][0]["text"].as_str()).collect();
        contents.push(json!({"role": "model", "parts": [{"text": answer}]}));
        contents.push(json!({"role": "user", "parts": [{"text": format!("which of them is number {i}")}]}));
    }
    turns
}

/// `grantpool_<name>_total{model="gemini-2.5-pro"}`, 0 when absent.
async fn counter(proxy: &common::Proxy, name: &str) -> u64 {
    let text = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    let series = format!("grantpool_{name}_total{{model=\"{MODEL}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn cached(turns: &[Turn]) -> u64 {
    turns.iter().map(|t| t.cached).sum()
}

fn prompt(turns: &[Turn]) -> u64 {
    turns.iter().map(|t| t.prompt).sum()
}

/// A conversation pinned to one account sees its cached tokens grow turn
/// after turn, in each client's own usage field and in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_on_one_account_hits_the_cache_and_the_metrics_count_it() {
    let (_env, proxy) = two_accounts(STICKY).await;
    assert_eq!(counter(&proxy, "cached_tokens").await, 0);
    let mut all = Vec::new();
    for (route, turns) in [
        ("anthropic", anthropic_conversation(&proxy, "conv-anthropic").await),
        ("chat", chat_conversation(&proxy, "conv-chat").await),
        ("responses stream", responses_stream_conversation(&proxy, "conv-responses").await),
        ("gemini stream", gemini_stream_conversation(&proxy, "conv-gemini").await),
    ] {
        assert!(turns.iter().all(|t| t.account == turns[0].account && !t.account.is_empty()), "{route}: one account: {turns:?}");
        assert_eq!(turns[0].cached, 0, "{route}: nothing cached on the first turn: {turns:?}");
        assert!(0 < turns[1].cached && turns[1].cached < turns[2].cached, "{route}: cached tokens grow: {turns:?}");
        assert!(turns.iter().all(|t| t.cached < t.prompt), "{route}: the new turn is never cached: {turns:?}");
        all.extend(turns);
    }
    // The admin sees what the clients saw, summed over every route.
    assert_eq!(counter(&proxy, "cached_tokens").await, cached(&all));
    assert_eq!(counter(&proxy, "input_tokens").await, prompt(&all));
}

/// The same conversation, spread over two accounts by round-robin: every
/// other turn lands where its history was never seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreading_a_conversation_over_accounts_misses_the_cache() {
    let (_env, sticky) = two_accounts(STICKY).await;
    let kept = anthropic_conversation(&sticky, "conv-1").await;
    let (_env2, spread) = two_accounts(ROUND_ROBIN).await;
    let moved = anthropic_conversation(&spread, "conv-1").await;

    assert!(kept.iter().all(|t| t.account == kept[0].account), "{kept:?}");
    assert_ne!(moved[0].account, moved[1].account, "round-robin moves the conversation: {moved:?}");
    assert_eq!(moved[1].cached, 0, "the second account never saw the first turn: {moved:?}");
    // The same prompts either way; fewer of them cached when spread.
    assert_eq!(prompt(&kept), prompt(&moved));
    assert!(cached(&moved) < cached(&kept), "kept: {kept:?}, moved: {moved:?}");
    assert_eq!(counter(&sticky, "cached_tokens").await, cached(&kept));
    assert_eq!(counter(&spread, "cached_tokens").await, cached(&moved));
}
