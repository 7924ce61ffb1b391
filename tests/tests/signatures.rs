//! Thought signatures Google refuses: the request is retried once on the
//! same account without them (Gemini: the bypass value; Claude: no
//! thinking, no signatures), and the account is never held to account for
//! it — through the real binary against the fake Google, which refuses
//! what Google refuses (`Corrupted thought signature.`, Anthropic's
//! ``Invalid `signature` in `thinking` block``).

mod common;


use std::time::Duration;

use common::{generates, Env};
use grantpool_tests::fake::{Endpoint, FaultSpec};
use serde_json::{json, Value};

const GEMINI3: &str = "gemini-3-pro-preview";
const CLAUDE: &str = "claude-sonnet-4-6";
const SKIP: &str = "skip_thought_signature_validator";
/// A well-formed signature the fake never issued.
const FORGED: &str = "Zm9yZ2VkLXNpZ25hdHVyZS1vZi1hbm90aGVyLXNlc3Npb24=";


/// POST `body` to `path` on the proxy; (status, JSON body).
async fn post(proxy: &common::Proxy, path: &str, body: &Value) -> (u16, Value) {
    let resp = proxy.http.post(format!("{}{path}", proxy.url)).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn tools() -> Value {
    json!([{"functionDeclarations": [{"name": "list_files", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}])
}

/// A Gemini conversation replaying one model function call signed `sig`.
fn replay(sig: &str) -> Value {
    json!({"tools": tools(), "contents": [
        {"role": "user", "parts": [{"text": "call:list_files here"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "list_files", "args": {"q": "here"}}, "thoughtSignature": sig}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "list_files", "response": {"files": []}}}]}
    ]})
}

/// The account is serving, unpunished: active, no model cooldown, no
/// failure counted, never disabled.
async fn unpunished(env: &Env, proxy: &common::Proxy, id: &str) {
    let view = proxy.admin_account(id).await;
    assert_eq!(view["state"], "active", "{view}");
    assert_eq!(view["model_cooldowns"], json!([]), "{view}");
    assert_eq!(view["failures"], 0, "{view}");
    assert_eq!(env.account_file(id)["disabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_gemini_signature_is_retried_once_with_the_bypass_on_the_same_account() {
    let env = Env::new().await;
    let id = env.add_account("sig@example.com", "rt-sig").await;
    env.add_account("other@example.com", "rt-other").await;
    let proxy = env.start().await;
    let path = format!("/v1beta/models/{GEMINI3}:generateContent");

    // A signature the fake issued is sent as it is: one call, no retry.
    let (status, v) = post(&proxy, &path, &json!({"tools": tools(), "contents": [{"role": "user", "parts": [{"text": "call:list_files here"}]}]})).await;
    assert_eq!(status, 200, "{v}");
    let issued = v["candidates"][0]["content"]["parts"][0]["thoughtSignature"].as_str().expect("Gemini 3 signs its call").to_owned();
    env.fake.reset_stats().await;
    let (status, v) = post(&proxy, &path, &replay(&issued)).await;
    assert_eq!(status, 200, "{v}");
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 1, "no retry for a valid signature");
    assert_eq!(sent[0].body["request"]["contents"][1]["parts"][0]["thoughtSignature"], issued.as_str());

    // A forged one: refused, then the same account again with the bypass.
    env.fake.reset_stats().await;
    let (status, v) = post(&proxy, &path, &replay(FORGED)).await;
    assert_eq!(status, 200, "{v}\n{}", proxy.logs());
    assert_eq!(common::gemini_text(&v), r#"result(list_files): {"files":[]}"#);
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 2, "one refusal, one retry: {sent:?}");
    assert_eq!(sent[0].status, Some(400));
    assert_eq!(sent[0].message.as_deref(), Some("Corrupted thought signature."));
    assert_eq!(sent[0].email, sent[1].email, "the retry stays on the account");
    assert_eq!(sent[0].body["request"]["contents"][1]["parts"][0]["thoughtSignature"], FORGED);
    assert_eq!(sent[1].body["request"]["contents"][1]["parts"][0]["thoughtSignature"], SKIP);
    assert_eq!(sent[1].status, Some(200));
    assert!(proxy.wait_log("retried once without them", Duration::from_secs(5)).await, "{}", proxy.logs());
    // A call without one (Gemini 3 wants one on a turn's first call): the
    // retry adds the bypass.
    env.fake.reset_stats().await;
    let mut unsigned = replay("");
    unsigned["contents"][1]["parts"][0].as_object_mut().unwrap().remove("thoughtSignature");
    let (status, v) = post(&proxy, &path, &unsigned).await;
    assert_eq!(status, 200, "{v}");
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].message.as_deref().unwrap_or("").starts_with("Function call is missing a thought_signature"), "{:?}", sent[0].message);
    assert_eq!(sent[1].body["request"]["contents"][1]["parts"][0]["thoughtSignature"], SKIP);
    assert_eq!(sent[0].email, sent[1].email);
    let served = env.account_id(sent[0].email.as_deref().unwrap()).unwrap();
    unpunished(&env, &proxy, &served).await;
    unpunished(&env, &proxy, &id).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_claude_thinking_signature_is_dropped_and_never_replaced_by_the_bypass() {
    let env = Env::new().await;
    let id = env.add_account("cla@example.com", "rt-cla").await;
    let proxy = env.start().await;

    // A thinking signature the fake issued comes back through Anthropic's
    // API and is replayed untouched: one call.
    let first = json!({"model": CLAUDE, "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": "hello"}]});
    let (status, v) = post(&proxy, "/v1/messages", &first).await;
    assert_eq!(status, 200, "{v}");
    let thinking = v["content"][0].clone();
    assert_eq!(thinking["type"], "thinking", "{v}");
    let conversation = |thinking: Value| {
        json!({"model": CLAUDE, "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "hello"},
                         {"role": "assistant", "content": [thinking, {"type": "text", "text": "Hi there."}]},
                         {"role": "user", "content": "again"}]})
    };
    env.fake.reset_stats().await;
    let (status, v) = post(&proxy, "/v1/messages", &conversation(thinking.clone())).await;
    assert_eq!(status, 200, "{v}");
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 1, "no retry for a valid signature");
    let issued = thinking["signature"].as_str().unwrap().trim_start_matches("grantpool:");
    assert!(sent[0].body["request"].to_string().contains(issued));

    // A forged one (as this proxy would have wrapped it): refused, then
    // sent again without it — never with the bypass, which Claude refuses.
    env.fake.reset_stats().await;
    let forged = json!({"type": "thinking", "thinking": "Let me think.", "signature": format!("grantpool:{FORGED}")});
    let (status, v) = post(&proxy, "/v1/messages", &conversation(forged)).await;
    assert_eq!(status, 200, "{v}\n{}", proxy.logs());
    assert_eq!(v["type"], "message", "{v}");
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 2, "one refusal, one retry: {sent:?}");
    assert_eq!(sent[0].status, Some(400));
    assert_eq!(sent[0].message.as_deref(), Some("Corrupted thought signature."));
    assert!(sent[0].body["request"].to_string().contains(FORGED));
    let retried = sent[1].body["request"].to_string();
    assert!(!retried.contains("thoughtSignature") && !retried.contains(SKIP), "{retried}");
    assert_eq!(sent[1].body["request"]["contents"][1]["parts"], json!([{"text": "Hi there."}]));
    assert_eq!(sent[0].email, sent[1].email);
    unpunished(&env, &proxy, &id).await;

    // A `thought` part on the Gemini route (Anthropic's own refusal of its
    // signature, inside Google's 400): the thought goes on the retry.
    env.fake.reset_stats().await;
    let body = json!({"contents": [
        {"role": "user", "parts": [{"text": "hello"}]},
        {"role": "model", "parts": [{"thought": true, "text": "Let me think.", "thoughtSignature": FORGED}, {"text": "Hi there."}]},
        {"role": "user", "parts": [{"text": "again"}]}
    ]});
    let (status, v) = post(&proxy, &format!("/v1beta/models/{CLAUDE}:generateContent"), &body).await;
    assert_eq!(status, 200, "{v}\n{}", proxy.logs());
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].message.as_deref().unwrap_or("").contains("messages.1.content.0: Invalid `signature` in `thinking` block"), "{:?}", sent[0].message);
    assert_eq!(sent[1].body["request"]["contents"][1]["parts"], json!([{"text": "Hi there."}]));
    assert_eq!(sent[1].status, Some(200));
    unpunished(&env, &proxy, &id).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_again_after_the_retry_gets_the_400_and_the_account_is_not_punished() {
    let env = Env::new().await;
    let id = env.add_account("two@example.com", "rt-two").await;
    let proxy = env.start().await;
    let refusal = json!({"error": {"code": 400, "message": "Corrupted thought signature.", "status": "INVALID_ARGUMENT"}}).to_string();
    env.fake.push_fault(FaultSpec::status(Endpoint::Generate, 400).body(refusal).times(2)).await.unwrap();
    let (status, v) = post(&proxy, &format!("/v1beta/models/{GEMINI3}:generateContent"), &replay(FORGED)).await;
    assert_eq!(status, 400, "{v}");
    assert!(v.to_string().contains("Corrupted thought signature."), "Google's words reach the client: {v}");
    let sent = generates(&env).await;
    assert_eq!(sent.len(), 2, "one retry, no more: {sent:?}");
    assert_eq!(sent[1].body["request"]["contents"][1]["parts"][0]["thoughtSignature"], SKIP);
    assert!(env.fake.pending_faults().await.is_empty());
    let view = proxy.admin_account(&id).await;
    assert_eq!(view["state"], "active", "a request's 400 rests nobody: {view}");
    assert_eq!(view["model_cooldowns"], json!([]), "{view}");
    assert_eq!(env.account_file(&id)["disabled"], false);
    // The account serves the next request at once.
    assert_eq!(proxy.gemini(GEMINI3, "hi").await.0, 200);
    proxy.stop().await;
}
