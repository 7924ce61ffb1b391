//! Google as it is in 2026, against the fake Google that learned it: a
//! request refused for its text rests nobody; consumer accounts stay on the
//! daily host; a current client identity and Gemini 3.8; family names
//! without a tier; bans, licences and retired clients off the proxy with
//! what to do; a 200 that is not JSON is a failure.

mod common;

use common::{generates, Env, ADMIN_KEY};
use grantpool_tests::fake::{AccountSpec, Endpoint, FaultSpec, Outcome, SettingsPatch};
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-pro";

/// Claude Code's system blocks in print/SDK mode (`claude -p`), as its
/// 2.1 releases send them (CLIProxyAPI #5037; the attribution line:
/// anthropics/claude-code #24168).
const CLAUDE_CODE_SYSTEM: [&str; 2] = [
    "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli; cch=00000;",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
];


/// Every account's view in the admin API, by email.
async fn views(proxy: &common::Proxy) -> Vec<Value> {
    let v = proxy.admin_accounts().await;
    v.get("accounts").and_then(|a| a.as_array()).or_else(|| v.as_array()).cloned().unwrap_or_default()
}

async fn metrics(proxy: &common::Proxy) -> String {
    proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap()
}

/// POST an Anthropic Messages request; (status, headers, body).
async fn anthropic(proxy: &common::Proxy, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = proxy
        .http
        .post(format!("{}/v1/messages", proxy.url))
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_google_refuses_for_its_text_costs_two_calls_and_rests_nobody() {
    let env = Env::new().await;
    for e in ["a", "b", "c"] {
        env.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await;
    }
    let proxy = env.start().await;
    let system: Vec<Value> = CLAUDE_CODE_SYSTEM.iter().map(|t| json!({"type": "text", "text": t})).collect();
    let refused = json!({"model": "claude-sonnet-4-6", "max_tokens": 256, "system": system,
        "messages": [{"role": "user", "content": "say hi"}]});
    let (status, headers, body) = anthropic(&proxy, &refused).await;
    assert_eq!(status, 429, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(body["type"], "error", "Anthropic's error shape: {body}");
    assert!(message.contains("refused this request on 2 accounts") && message.contains("most likely for its content"), "{message}");
    assert!(message.contains("no account was rested"), "{message}");
    assert!(message.contains("Claude Agent SDK") || message.contains("CLAUDE_CODE_ATTRIBUTION_HEADER"), "names the known cause: {message}");
    assert_eq!(headers.get("x-should-retry").map(|v| v.to_str().unwrap()), Some("false"), "SDKs are told not to retry");
    let calls = generates(&env).await;
    assert_eq!(calls.len(), 2, "at most two upstream calls: {calls:?}");
    assert!(calls.iter().all(|c| c.status == Some(429)), "{calls:?}");
    assert_ne!(calls[0].email, calls[1].email, "two accounts");
    // Nobody rested: every account active, and the next requests — any
    // protocol, any prompt — are served at once, by every account in turn.
    for v in views(&proxy).await {
        assert_eq!(v["state"], "active", "{v}");
        assert!(v["model_cooldowns"].as_array().is_none_or(|c| c.is_empty()), "{v}");
    }
    let mut served = std::collections::HashSet::new();
    for i in 0..6 {
        let (status, account, body) = proxy.gemini(MODEL, &format!("next {i}")).await;
        assert_eq!(status, 200, "{body}");
        served.insert(account.unwrap());
    }
    let ok = json!({"model": "claude-sonnet-4-6", "max_tokens": 256, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(anthropic(&proxy, &ok).await.0, 200);
    assert_eq!(served.len(), 3, "every account serves at once: {served:?}");
    let logs = proxy.logs();
    assert_eq!(logs.matches("most likely for its content").count(), 1, "logged once:\n{logs}");
    let m = metrics(&proxy).await;
    assert!(m.contains("grantpool_refused_requests_total 1"), "{m}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_429_on_one_account_costs_it_a_short_back_off_only() {
    let env = Env::new().await;
    let a = env.add_account("a@example.com", "rt-a").await;
    let b = env.add_account("b@example.com", "rt-b").await;
    let proxy = env.start().await;
    env.fake.push_fault(FaultSpec::bare_429(Endpoint::Generate).for_email("a@example.com").times(1)).await.unwrap();
    // Round-robin may start on either: two requests put one on `a`.
    let t = common::now_ms();
    for _ in 0..2 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!(status, 200, "{body}");
        assert!(account.as_deref() == Some(b.as_str()) || account.as_deref() == Some(a.as_str()));
    }
    assert!(env.fake.pending_faults().await.is_empty(), "the bare 429 came");
    let va = proxy.admin_account(&a).await;
    if va["state"] == "cooling_down" {
        assert!(va["until_ms"].as_u64().unwrap() <= common::now_ms().max(t) + 2_000, "a short back-off, not a minute: {va}");
    }
    assert!(va["model_cooldowns"].as_array().is_none_or(|c| c.is_empty()), "no model cooldown: {va}");
    // Back at once: within the short rest, requests still succeed.
    for _ in 0..4 {
        assert_eq!(proxy.gemini(MODEL, "again").await.0, 200);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_accounts_stay_on_the_daily_host_and_enterprise_ones_fall_back() {
    let env = Env::with_hosts(&["daily", "prod"]).await;
    env.fake.add_account(AccountSpec::new("con@example.com", "rt-con")).await;
    env.fake.add_account(AccountSpec::new("ent@example.com", "rt-ent").enterprise(true)).await;
    for rt in ["rt-con", "rt-ent"] {
        assert!(env.cli(&["accounts", "add", "--refresh-token", rt]).await.0);
    }
    let (con, ent) = (env.account_id("con@example.com").unwrap(), env.account_id("ent@example.com").unwrap());
    let proxy = env.start().await;
    for _ in 0..4 {
        assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
    }
    assert_eq!(env.account_file(&con)["token"]["gcp_managed"], false, "the tier is kept");
    assert_eq!(env.account_file(&ent)["token"]["gcp_managed"], true);
    assert!(generates(&env).await.iter().all(|r| r.host == "daily"), "both served by daily");

    // A daily RATE_LIMIT_EXCEEDED (30 s) on the consumer account: its 30 s
    // rest, the other account serves, prod never sees it.
    env.fake.reset_stats().await;
    env.fake.push_fault(FaultSpec::rate_limit_exceeded(Endpoint::Generate, "30s").for_email("con@example.com").on_host("daily").times(1)).await.unwrap();
    let t = common::now_ms();
    for _ in 0..2 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!(status, 200, "{body}");
        assert!(account.is_some());
    }
    let v = proxy.admin_account(&con).await;
    assert_eq!(v["state"], "cooling_down", "{v}");
    let until = v["until_ms"].as_u64().unwrap();
    assert!(until >= t + 25_000 && until <= common::now_ms() + 31_000, "Google's 30 s, not prod's bare 429: {v}");
    let calls = generates(&env).await;
    assert!(calls.iter().filter(|r| r.email.as_deref() == Some("con@example.com")).all(|r| r.host == "daily"), "{calls:?}");
    assert!(calls.iter().all(|r| r.status != Some(429) || r.host == "daily"), "no prod 429: {calls:?}");

    // A daily 503 on the enterprise account: prod answers it.
    env.fake.reset_stats().await;
    env.fake.push_fault(FaultSpec::status(Endpoint::Generate, 503).for_email("ent@example.com").on_host("daily").times(1)).await.unwrap();
    let (status, account, body) = proxy.gemini(MODEL, "hop").await;
    assert_eq!((status, account.as_deref()), (200, Some(ent.as_str())), "{body}");
    let hosts: Vec<String> = generates(&env).await.into_iter().map(|r| r.host).collect();
    assert_eq!(hosts, ["daily", "prod"], "an enterprise account may fall back");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_failure_of_a_consumer_account_moves_to_the_next_account_not_to_prod() {
    let env = Env::with_hosts(&["daily", "prod"]).await;
    let a = env.add_account("a@example.com", "rt-a").await;
    let b = env.add_account("b@example.com", "rt-b").await;
    let proxy = env.start().await;
    assert_eq!(proxy.gemini(MODEL, "warm").await.0, 200);
    env.fake.reset_stats().await;
    env.fake.push_fault(FaultSpec::status(Endpoint::Generate, 503).on_host("daily").times(1)).await.unwrap();
    let (status, account, body) = proxy.gemini(MODEL, "hop").await;
    assert_eq!(status, 200, "{body}");
    let calls = generates(&env).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|r| r.host == "daily"), "never prod for consumer accounts: {calls:?}");
    assert_ne!(calls[0].email, calls[1].email, "the next account: {calls:?}");
    assert!(account == Some(a) || account == Some(b));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_antigravity_version_gets_gemini_3_8_and_family_names_resolve_to_a_tier() {
    let env = Env::new().await;
    env.add_account("a@example.com", "rt-a").await;
    let proxy = env.start().await;
    // Gemini CLI and the SDKs name the family without a tier.
    for model in ["gemini-3.8-flash", "gemini-3.7-flash", "gemini-3.8-flash-low"] {
        let (status, _, body) = proxy.gemini(model, "hi").await;
        assert_eq!(status, 200, "{model}: {body}");
    }
    let calls = generates(&env).await;
    let models: Vec<&str> = calls.iter().map(|r| r.body["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["gemini-3.8-flash-high", "gemini-3.7-flash-high", "gemini-3.8-flash-low"], "a listed tier, default high");
    let ua = calls[0].user_agent.clone().unwrap();
    assert!(ua.starts_with("antigravity/hub/2.13.0 "), "{ua}");
    // `/v1/models` keeps Google's own ids.
    let models = proxy.http.get(format!("{}/v1/models", proxy.url)).send().await.unwrap().json::<Value>().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"gemini-3.8-flash-high") && !ids.contains(&"gemini-3.8-flash"), "{ids:?}");
    proxy.stop().await;

    // An old version set by hand: Google's 404 for 3.8, and the version is
    // the one configured; a tier set by hand is the one used.
    let env2 = Env::new().await;
    env2.add_account("b@example.com", "rt-b").await;
    let config = std::fs::read_to_string(env2.config_path()).unwrap().replace("[upstream]\n", "[upstream]\nantigravity_version = \"2.10.3\"\ndefault_tier = \"medium\"\n");
    std::fs::write(env2.config_path(), config).unwrap();
    let proxy = env2.start().await;
    let (status, _, body) = proxy.gemini("gemini-3.8-flash", "hi").await;
    assert_eq!(status, 404, "Google's version gate: {body}");
    assert!(body.to_string().contains("Requested entity was not found"), "{body}");
    assert_eq!(proxy.gemini("gemini-3.7-flash", "hi").await.0, 200);
    let calls = generates(&env2).await;
    assert!(calls[0].user_agent.as_deref().unwrap().starts_with("antigravity/hub/2.10.3 "), "{:?}", calls[0].user_agent);
    assert_eq!(calls.last().unwrap().body["model"], "gemini-3.7-flash-medium");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_licences_and_retired_clients_go_off_the_proxy_with_what_to_do() {
    let env = Env::new().await;
    let ok = env.add_account("ok@example.com", "rt-ok").await;
    for e in ["ban", "lic"] {
        env.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await;
    }
    env.fake.add_account(AccountSpec::new("old@example.com", "rt-old").gemini_cli().ineligible("UNSUPPORTED_CLIENT")).await;
    assert!(env.cli(&["accounts", "add", "--refresh-token", "rt-old", "--client", "gemini-cli"]).await.0);
    env.fake.push_fault(FaultSpec::tos_violation(Endpoint::Generate).for_email("ban@example.com").forever()).await.unwrap();
    env.fake.push_fault(FaultSpec::license_required(Endpoint::Generate).for_email("lic@example.com").forever()).await.unwrap();
    let proxy = env.start().await;
    for i in 0..8 {
        let (status, account, body) = proxy.gemini(MODEL, &format!("go {i}")).await;
        assert_eq!(status, 200, "a client never sees the ban: {body}");
        assert!(account.is_some());
    }
    let expect = [
        ("ban@example.com", vec!["TOS_VIOLATION", "https://forms.gle/", "accounts enable"]),
        ("lic@example.com", vec!["#3501", "licen"]),
        ("old@example.com", vec!["UNSUPPORTED_CLIENT", "no longer supported", "grantpool accounts login"]),
    ];
    for (email, words) in expect {
        let id = env.account_id(email).unwrap();
        let file = env.account_file(&id);
        assert_eq!(file["disabled"], false, "never disabled (the grant is fine): {file}");
        assert_eq!(file["proxy_disabled"], true, "{file}");
        let reason = file["proxy_disabled_reason"].as_str().unwrap();
        for w in words {
            assert!(reason.contains(w), "{email}: `{w}` in {reason}");
        }
    }
    // Off the proxy means no more traffic.
    env.fake.reset_stats().await;
    for _ in 0..6 {
        let (status, account, _) = proxy.gemini(MODEL, "more").await;
        assert_eq!((status, account.as_deref()), (200, Some(ok.as_str())));
    }
    assert!(generates(&env).await.iter().all(|r| r.email.as_deref() == Some("ok@example.com")));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_that_is_not_json_or_a_stream_without_events_is_a_failure() {
    let env = Env::new().await;
    env.add_account("a@example.com", "rt-a").await;
    env.add_account("b@example.com", "rt-b").await;
    let proxy = env.start().await;
    env.fake.push_fault(FaultSpec::unsupported_version(Endpoint::Generate).times(1)).await.unwrap();
    let (status, _, body) = proxy.gemini(MODEL, "hi").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["candidates"].is_array(), "a real answer, not Google's text: {body}");
    let calls = generates(&env).await;
    assert_eq!(calls.len(), 2, "the next account answered: {calls:?}");
    assert!(proxy.logs().contains("This version of Antigravity is no longer supported"), "the log says what came");

    env.fake.reset_stats().await;
    env.fake.push_fault(FaultSpec::empty_stream().times(1)).await.unwrap();
    let resp = proxy
        .http
        .post(format!("{}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", proxy.url))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "stream"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("data:"), "events from the next account: {text}");
    assert_eq!(generates(&env).await.len(), 2);
    for v in views(&proxy).await {
        assert_eq!(v["state"], "active", "nobody punished: {v}");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_content_filter_can_be_set_and_a_prompt_without_the_phrases_is_served() {
    // The fake refuses only the reported phrases; with its filter off, the
    // same Claude Code prompt is served (so the refusal above is the fake's
    // filter, not something else in the request).
    let env = Env::new().await;
    env.add_account("a@example.com", "rt-a").await;
    let proxy = env.start().await;
    env.fake.set_settings(SettingsPatch { refused_phrases: Some(Vec::new()), ..Default::default() }).await;
    let system: Vec<Value> = CLAUDE_CODE_SYSTEM.iter().map(|t| json!({"type": "text", "text": t})).collect();
    let req = json!({"model": "claude-sonnet-4-6", "max_tokens": 256, "system": system, "messages": [{"role": "user", "content": "say hi"}]});
    let (status, _, body) = anthropic(&proxy, &req).await;
    assert_eq!(status, 200, "{body}");
    let calls = generates(&env).await;
    assert_eq!(calls.last().unwrap().outcome, Outcome::Served);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_follows_the_updaters_manifest_when_one_is_named() {
    // A newer version in the manifest is reported from then on.
    let env = Env::new().await;
    env.add_account("a@example.com", "rt-a").await;
    env.fake.set_settings(SettingsPatch { updater_version: Some("2.14.1".into()), ..Default::default() }).await;
    let manifest = format!("{}/manifest/latest-arm64-mac.yml", env.fake.base_url());
    let config = std::fs::read_to_string(env.config_path()).unwrap().replace("[upstream]\n", &format!("[upstream]\nversion_manifest_url = \"{manifest}\"\n"));
    std::fs::write(env.config_path(), config).unwrap();
    let proxy = env.start().await;
    assert!(proxy.wait_log("Antigravity version from the updater's manifest: 2.14.1", std::time::Duration::from_secs(20)).await, "{}", proxy.logs());
    assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
    let ua = generates(&env).await.pop().unwrap().user_agent.unwrap();
    assert!(ua.starts_with("antigravity/hub/2.14.1 "), "{ua}");
    proxy.stop().await;

    // A manifest that cannot be read keeps the built-in version, and says so.
    let env = Env::new().await;
    env.add_account("b@example.com", "rt-b").await;
    let manifest = format!("{}/manifest/latest-arm64-mac.yml", env.fake.base_url());
    let config = std::fs::read_to_string(env.config_path()).unwrap().replace("[upstream]\n", &format!("[upstream]\nversion_manifest_url = \"{manifest}\"\n"));
    std::fs::write(env.config_path(), config).unwrap();
    let proxy = env.start().await;
    assert!(proxy.wait_log("cannot read the Antigravity updater's manifest (HTTP 404)", std::time::Duration::from_secs(20)).await, "{}", proxy.logs());
    assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
    let ua = generates(&env).await.pop().unwrap().user_agent.unwrap();
    assert!(ua.starts_with("antigravity/hub/2.13.0 "), "the built-in version: {ua}");
    proxy.stop().await;
}
