//! A conversation is one upstream session: every call of one conversation
//! carries the same envelope session id (`request.sessionId` for
//! Antigravity, `request.session_id` for Gemini CLI), two conversations
//! carry different ones, and the id never echoes the client's own text.
//! Each client shape is recognised as the real clients send it: Claude Code
//! by `x-claude-code-session-id` / `metadata.user_id`, Codex by
//! `prompt_cache_key`, Gemini CLI (no id) by its system prompt and first turn.

mod common;

use common::{generates, Env};
use grantpool_tests::fake::AccountSpec;
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-pro";

/// The envelope session id of every generate call so far, oldest first
/// (either profile's spelling).
async fn envelope_sessions(env: &Env) -> Vec<String> {
    generates(env)
        .await
        .iter()
        .map(|r| {
            let req = &r.body["request"];
            let s = req.get("sessionId").or_else(|| req.get("session_id"));
            s.and_then(Value::as_str).unwrap_or_else(|| panic!("no envelope session: {}", r.body)).to_string()
        })
        .collect()
}

/// A proxy with three accounts (so that a conversation's calls may be served
/// by several: the session id must not depend on the account).
async fn three_accounts() -> (Env, common::Proxy) {
    let env = Env::new().await;
    for e in ["a", "b", "c"] {
        env.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await;
    }
    let proxy = env.start().await;
    (env, proxy)
}

/// POST `body` to `path` with `headers`; the status, after checking it is 200.
async fn post(proxy: &common::Proxy, path: &str, headers: &[(&str, &str)], body: &Value) {
    let mut req = proxy.http.post(format!("{}{path}", proxy.url)).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{path}: {text}");
}

/// The Anthropic turns of one agent conversation: the whole history each time.
fn anthropic_turns(first: &str, user_id: Option<&str>) -> Vec<Value> {
    let mut messages = vec![json!({"role": "user", "content": first})];
    let mut out = Vec::new();
    for i in 0..3 {
        let mut body = json!({"model": MODEL, "max_tokens": 64, "system": "You are Claude Code.", "messages": messages.clone()});
        if let Some(u) = user_id {
            body["metadata"] = json!({"user_id": u});
        }
        out.push(body);
        messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        messages.push(json!({"role": "user", "content": format!("next {i}")}));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_sessions_are_upstream_sessions() {
    let (env, proxy) = three_accounts().await;
    // Two conversations with the same first turn, told apart by Claude
    // Code's header (as 2.1.197 sends it on every request of a session).
    let (one, two) = ("b36d550a-2a63-4960-adb2-4dfde5704da1", "0c7f44e2-9d1b-4b9e-8d55-3f7f6a0e2b10");
    for conv in [one, two] {
        for body in anthropic_turns("fix the bug", None) {
            post(&proxy, "/v1/messages", &[("anthropic-version", "2023-06-01"), ("x-claude-code-session-id", conv)], &body).await;
        }
    }
    let s = envelope_sessions(&env).await;
    assert_eq!(s.len(), 6, "{s:?}");
    assert!(s[..3].iter().all(|x| *x == s[0]), "one conversation, one session: {s:?}");
    assert!(s[3..].iter().all(|x| *x == s[3]), "{s:?}");
    assert_ne!(s[0], s[3], "two conversations, two sessions");
    assert!(s.iter().all(|x| x != one && x != two), "derived, not the client's id: {s:?}");

    // Without the header, the session part of `metadata.user_id` (JSON, as
    // 2.1.x sends it) names the conversation; the account in it never
    // reaches Google.
    env.fake.reset_stats().await;
    let user_id = |session: &str| format!(r#"{{"device_id":"170ceb","account_uuid":"acc-secret-1","session_id":"{session}"}}"#);
    for conv in [one, two] {
        for body in anthropic_turns("fix the bug", Some(&user_id(conv))) {
            post(&proxy, "/v1/messages", &[("anthropic-version", "2023-06-01")], &body).await;
        }
    }
    let again = envelope_sessions(&env).await;
    assert_eq!(again, s, "the same conversations, by header or by metadata: {again:?}");
    assert!(generates(&env).await.iter().all(|r| !r.body.to_string().contains("acc-secret-1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_prompt_cache_key_is_one_upstream_session() {
    let (env, proxy) = three_accounts().await;
    for key in ["01a24ffd-4897-7530-abcd-9e054fcc109d", "01a24ffe-0000-7000-8000-000000000002"] {
        let mut input = vec![json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]})];
        for i in 0..3 {
            let body = json!({"model": MODEL, "instructions": "You are Codex.", "input": input.clone(), "prompt_cache_key": key, "stream": false});
            // Codex sends its thread id as `session-id` too; the body alone must do.
            post(&proxy, "/v1/responses", &[], &body).await;
            input.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": format!("answer {i}")}]}));
            input.push(json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("next {i}")}]}));
        }
    }
    let s = envelope_sessions(&env).await;
    assert_eq!(s.len(), 6, "{s:?}");
    assert!(s[..3].iter().all(|x| *x == s[0]), "{s:?}");
    assert!(s[3..].iter().all(|x| *x == s[3]), "{s:?}");
    assert_ne!(s[0], s[3]);
    // Codex's `session-id` header (the same thread id) is the same
    // conversation, and outranks another `prompt_cache_key`.
    env.fake.reset_stats().await;
    let body = json!({"model": MODEL, "instructions": "You are Codex.", "input": "fix the bug", "prompt_cache_key": "another", "stream": false});
    post(&proxy, "/v1/responses", &[("session-id", "01a24ffd-4897-7530-abcd-9e054fcc109d")], &body).await;
    assert_eq!(envelope_sessions(&env).await, vec![s[0].clone()]);
}

/// The Gemini turns of one conversation with no id (as Gemini CLI sends
/// them: the system prompt and the whole history each time).
fn gemini_turns(first: &str) -> Vec<Value> {
    let mut contents = vec![json!({"role": "user", "parts": [{"text": first}]})];
    let mut out = Vec::new();
    for i in 0..3 {
        out.push(json!({"systemInstruction": {"parts": [{"text": "You are Gemini CLI."}]}, "contents": contents.clone()}));
        contents.push(json!({"role": "model", "parts": [{"text": format!("answer {i}")}]}));
        contents.push(json!({"role": "user", "parts": [{"text": format!("next {i}")}]}));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_conversation_without_an_id_is_one_upstream_session() {
    let (env, proxy) = three_accounts().await;
    for first in ["fix the bug", "write the docs"] {
        for body in gemini_turns(first) {
            post(&proxy, &format!("/v1beta/models/{MODEL}:generateContent"), &[], &body).await;
        }
    }
    let s = envelope_sessions(&env).await;
    assert_eq!(s.len(), 6, "{s:?}");
    assert!(s[..3].iter().all(|x| *x == s[0]), "the first turn stands for the conversation: {s:?}");
    assert!(s[3..].iter().all(|x| *x == s[3]), "{s:?}");
    assert_ne!(s[0], s[3], "another first turn, another conversation");
    // An explicit header wins over the first turn.
    env.fake.reset_stats().await;
    for (i, body) in gemini_turns("fix the bug").into_iter().enumerate() {
        let conv = if i == 0 { "mine-1" } else { "mine-2" };
        post(&proxy, &format!("/v1beta/models/{MODEL}:generateContent"), &[("x-session-id", conv)], &body).await;
    }
    let s2 = envelope_sessions(&env).await;
    assert_ne!(s2[0], s2[1], "{s2:?}");
    assert_eq!(s2[1], s2[2], "{s2:?}");
    assert!(!s2.contains(&s[0]), "{s2:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_cli_account_gets_the_session_as_session_id() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("cli@example.com", "rt-cli").gemini_cli()).await;
    assert!(env.cli(&["accounts", "add", "--refresh-token", "rt-cli", "--client", "gemini-cli"]).await.0);
    let proxy = env.start().await;
    for first in ["fix the bug", "write the docs"] {
        for body in gemini_turns(first) {
            post(&proxy, &format!("/v1beta/models/{MODEL}:generateContent"), &[], &body).await;
        }
    }
    let calls = generates(&env).await;
    let s: Vec<&str> = calls.iter().map(|r| r.body["request"]["session_id"].as_str().unwrap_or_else(|| panic!("{}", r.body))).collect();
    assert_eq!(s.len(), 6, "{s:?}");
    assert!(s[..3].iter().all(|x| *x == s[0]) && s[3..].iter().all(|x| *x == s[3]), "{s:?}");
    assert_ne!(s[0], s[3]);
    assert!(calls.iter().all(|r| r.body["request"].get("sessionId").is_none()));
}

/// One turn of conversation `conv` (by `x-session-id`) on the Gemini route;
/// the account that served it.
async fn turn(proxy: &common::Proxy, conv: &str, i: usize) -> String {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": format!("{conv} turn {i}")}]}]});
    let resp = proxy
        .http
        .post(format!("{}/v1beta/models/{MODEL}:generateContent", proxy.url))
        .header("x-session-id", conv)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status, 200, "{conv} turn {i}: {}", resp.text().await.unwrap_or_default());
    account.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_bundled_policy_a_conversation_stays_and_moves_once_when_its_account_fails() {
    let env = Env::new().await.on_bundled_policy();
    let mut ids = Vec::new();
    for e in ["a", "b", "c"] {
        ids.push(env.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await);
    }
    let email_of = |id: &str| format!("{}@example.com", ["a", "b", "c"][ids.iter().position(|x| x == id).unwrap()]);
    let proxy = env.start().await;
    // Three conversations begun together land on three accounts.
    let homes: Vec<String> = futures::future::join_all(["x", "y", "z"].map(|c| turn(&proxy, c, 0))).await;
    let distinct: std::collections::HashSet<&String> = homes.iter().collect();
    assert_eq!(distinct.len(), 3, "{homes:?}");
    let home = homes[0].clone();
    for i in 1..5 {
        assert_eq!(turn(&proxy, "x", i).await, home, "turn {i} stays");
    }

    // A 429 on its account: the conversation moves once, and stays there
    // even after the rest is over.
    env.fake
        .push_fault(grantpool_tests::fake::FaultSpec::rate_limit_exceeded(grantpool_tests::fake::Endpoint::Generate, "1s").for_email(&email_of(&home)).times(1))
        .await
        .unwrap();
    let second = turn(&proxy, "x", 5).await;
    assert_ne!(second, home, "moved off the resting account");
    let rested = common::eventually(std::time::Duration::from_secs(10), || async { proxy.admin_account(&home).await["state"] == "active" }).await;
    assert!(rested, "the first account's rest is over");
    for i in 6..10 {
        assert_eq!(turn(&proxy, "x", i).await, second, "turn {i}: stays where it moved, no way back");
    }

    // Taken off the proxy: moves once more, and stays.
    let resp = proxy.http.post(format!("{}/admin/accounts/{second}/disable", proxy.url)).bearer_auth(common::ADMIN_KEY).send().await.unwrap();
    assert!(resp.status().is_success());
    let third = turn(&proxy, "x", 10).await;
    assert!(third != second, "off the proxy: moved");
    for i in 11..14 {
        assert_eq!(turn(&proxy, "x", i).await, third);
    }

    // Its grant revoked (disabled by invalid_grant): moves once more.
    env.fake.revoke_refresh_token(&format!("rt-{}", email_of(&third).trim_end_matches("@example.com"))).await;
    env.fake.invalidate_access_tokens(Some(&email_of(&third))).await;
    let fourth = turn(&proxy, "x", 14).await;
    assert!(fourth != third && fourth != second, "{fourth}");
    assert_eq!(env.account_file(&third)["disabled"], true);
    for i in 15..18 {
        assert_eq!(turn(&proxy, "x", i).await, fourth);
    }
    proxy.stop().await;
}
