//! Google's 5-hour and weekly quota windows (`retrieveUserQuotaSummary`),
//! end to end against the fake Google: fetched with the quota polls in
//! either spelling of `window`, kept in the account file, shown by `accounts
//! list` (text and JSON), `GET /admin/accounts`, the accounts page's rows
//! and `/metrics`; a used-up window keeps its family of models off the
//! account until it resets, and a pool with no account left says which
//! window and when.

mod common;

use std::time::Duration;

use common::{eventually, Env, Proxy, ADMIN_KEY};
use grantpool_tests::fake::{Endpoint, FaultSpec, QuotaWindowSpec, RecordedRequest, SettingsPatch};
use serde_json::{json, Value};

/// Quota polled every second, round-robin selection.
const POLICY: &str = "[selector]\nplugin = \"round-robin\"\n\n[quota_protection]\nthreshold = 0.1\nrefresh_secs = 1\n";

fn now_secs() -> u64 {
    common::now_ms() / 1000
}

/// `secs` (Unix) as RFC 3339, UTC (the fake's own formatter).
fn rfc3339(secs: u64) -> String {
    grantpool_tests::fake::rfc3339(secs as i64)
}

fn window(email: &str, bucket: &str, fraction: f64, reset_in_secs: u64) -> QuotaWindowSpec {
    QuotaWindowSpec {
        email: email.into(),
        bucket_id: bucket.into(),
        remaining_fraction: fraction,
        reset_time: Some(rfc3339(now_secs() + reset_in_secs)),
    }
}

/// Wait until the proxy shows `bucket` of account `id` at `fraction`.
async fn wait_window(proxy: &Proxy, id: &str, bucket: &str, fraction: f64) {
    let seen = eventually(Duration::from_secs(15), || async {
        proxy.admin_account(id).await["quota_windows"][bucket]["remaining_fraction"].as_f64() == Some(fraction)
    })
    .await;
    assert!(seen, "{bucket} of {id} never showed {fraction}: {}\n{}", proxy.admin_account(id).await, proxy.logs());
}

/// The generate and stream calls the fake received.
async fn generates(env: &Env) -> Vec<RecordedRequest> {
    env.fake.requests().await.into_iter().filter(|r| matches!(r.endpoint, Some(Endpoint::Generate | Endpoint::Stream))).collect()
}

/// An Anthropic Messages request; (status, account header, body).
async fn claude(proxy: &Proxy, text: &str) -> (u16, Option<String>, Value) {
    let body = json!({"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": text}]});
    let resp = proxy.http.post(format!("{}/v1/messages", proxy.url)).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string());
    (status, account, resp.json().await.unwrap_or(Value::Null))
}

async fn metrics(proxy: &Proxy) -> String {
    proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap()
}

/// The accounts page's rows (signed in with the admin key).
async fn ui_rows(proxy: &Proxy) -> Value {
    let http = reqwest::Client::new();
    let resp = http.post(format!("{}/ui/api/session", proxy.url)).json(&json!({"admin_key": ADMIN_KEY})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let resp = http.get(format!("{}/ui/api/accounts", proxy.url)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_windows_are_shown_everywhere_in_either_spelling() {
    for spelling in ["short", "enum"] {
        let env = Env::new().await;
        env.use_policy(POLICY);
        env.fake.set_settings(SettingsPatch { quota_window_spelling: Some(spelling.into()), ..Default::default() }).await;
        let id = env.add_account("win@example.com", "rt-win").await;
        let weekly_reset = now_secs() + 3 * 86_400;
        env.fake.set_quota_window(window("win@example.com", "gemini-weekly", 0.4, 3 * 86_400)).await.unwrap();
        env.fake.set_quota_window(window("win@example.com", "gemini-5h", 0.83, 3600)).await.unwrap();
        let proxy = env.start().await;
        wait_window(&proxy, &id, "gemini-weekly", 0.4).await;

        // GET /admin/accounts: every bucket, the window spelled one way.
        let view = proxy.admin_account(&id).await;
        let w = &view["quota_windows"];
        assert_eq!(w["gemini-weekly"]["window"], "weekly", "{spelling}: {view}");
        assert_eq!(w["gemini-weekly"]["reset_at"].as_u64(), Some(weekly_reset), "{view}");
        assert_eq!(w["gemini-weekly"]["group"], "Gemini Models", "{view}");
        assert_eq!(w["gemini-5h"]["window"], "5h", "{spelling}: {view}");
        assert_eq!(w["gemini-5h"]["remaining_fraction"], 0.83, "{view}");
        assert_eq!(w["3p-weekly"]["remaining_fraction"], 1.0, "{view}");
        assert_eq!(w["3p-5h"]["group"], "Claude and GPT models", "{view}");
        assert!(view["model_cooldowns"].as_array().unwrap().is_empty(), "nothing used up: {view}");
        let requested: Vec<RecordedRequest> =
            env.fake.requests().await.into_iter().filter(|r| r.endpoint == Some(Endpoint::RetrieveUserQuotaSummary)).collect();
        assert!(!requested.is_empty(), "retrieveUserQuotaSummary was called");
        assert_eq!(requested[0].email.as_deref(), Some("win@example.com"));

        // The account file keeps them.
        let file = env.account_file(&id);
        assert_eq!(file["quota_windows"]["gemini-weekly"]["remaining_fraction"], 0.4, "{file}");

        // accounts list --json and the text listing.
        let (ok, out, err) = env.cli(&["accounts", "list", "--json"]).await;
        assert!(ok, "{err}");
        let listed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(listed["accounts"][0]["quota_windows"]["gemini-5h"]["remaining_fraction"], 0.83, "{listed}");
        let (ok, out, err) = env.cli(&["accounts", "list"]).await;
        assert!(ok, "{err}");
        assert!(out.contains("windows Gemini Models: 5h 83% · week 40% (resets "), "{out}");
        assert!(out.contains("windows Claude and GPT models: 5h 100% · week 100%"), "{out}");

        // The page's rows: a bar per window.
        let rows = ui_rows(&proxy).await;
        let row = rows["accounts"].as_array().or_else(|| rows.as_array()).unwrap().iter().find(|r| r["id"] == id).cloned().unwrap();
        let windows = row["windows"].as_array().unwrap();
        assert_eq!(windows.len(), 4, "{row}");
        let weekly = windows.iter().find(|w| w["bucket"] == "gemini-weekly").unwrap();
        assert_eq!((weekly["remaining_fraction"].as_f64(), weekly["exhausted"].as_bool()), (Some(0.4), Some(false)), "{row}");
        assert_eq!(weekly["reset_at"].as_u64(), Some(weekly_reset));

        // Metrics: a gauge per account and bucket, never a token.
        let text = metrics(&proxy).await;
        let line = format!("grantpool_quota_window_remaining{{account=\"{id}\",bucket=\"gemini-weekly\",window=\"weekly\"}} 0.4");
        assert!(text.contains(&line), "missing `{line}` in:\n{text}");
        assert!(text.contains(&format!("grantpool_quota_window_reset_timestamp_seconds{{account=\"{id}\",bucket=\"gemini-weekly\",window=\"weekly\"}} {weekly_reset}")), "{text}");
        assert!(text.contains(&format!("grantpool_quota_window_remaining{{account=\"{id}\",bucket=\"3p-5h\",window=\"5h\"}} 1")), "{text}");
        let token = env.account_file(&id)["token"]["access_token"].as_str().unwrap().to_string();
        assert!(!text.contains(&token) && !text.contains("rt-win"));
        proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_gemini_window_keeps_gemini_off_the_account_but_not_claude() {
    let env = Env::new().await;
    env.use_policy(POLICY);
    let a = env.add_account("a@example.com", "rt-a").await;
    let b = env.add_account("b@example.com", "rt-b").await;
    env.fake.set_quota_window(window("a@example.com", "gemini-weekly", 0.0, 3 * 86_400)).await.unwrap();
    let proxy = env.start().await;
    wait_window(&proxy, &a, "gemini-weekly", 0.0).await;
    wait_window(&proxy, &b, "gemini-weekly", 1.0).await;
    let view = proxy.admin_account(&a).await;
    let blocks = view["model_cooldowns"].as_array().unwrap();
    assert!(blocks.iter().any(|c| c["window"] == "gemini-weekly" && c["model"] == "gemini*"), "{view}");

    env.fake.reset_stats().await;
    for model in ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash"] {
        let (status, account, body) = proxy.gemini(model, "hello").await;
        assert_eq!((status, account.as_deref()), (200, Some(b.as_str())), "{model}: {body}");
    }
    let calls = generates(&env).await;
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert!(calls.iter().all(|r| r.email.as_deref() == Some("b@example.com")), "no Gemini call reached A upstream: {calls:?}");

    // Claude is another family: A still serves it.
    let mut served = std::collections::HashSet::new();
    for _ in 0..6 {
        let (status, account, body) = claude(&proxy, "hello").await;
        assert_eq!(status, 200, "{body}");
        served.insert(account.unwrap());
    }
    assert!(served.contains(&a), "A still serves Claude: {served:?}");
    assert!(
        generates(&env).await.iter().any(|r| r.email.as_deref() == Some("a@example.com") && r.model.as_deref().is_some_and(|m| m.starts_with("claude"))),
        "a Claude call went to A upstream"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_account_left_for_gemini_names_the_window_and_its_reset() {
    let env = Env::new().await;
    env.use_policy(POLICY);
    let a = env.add_account("a@example.com", "rt-a").await;
    let b = env.add_account("b@example.com", "rt-b").await;
    env.fake.set_quota_window(window("a@example.com", "gemini-weekly", 0.0, 2 * 86_400)).await.unwrap();
    env.fake.set_quota_window(window("b@example.com", "gemini-weekly", 0.0, 3 * 86_400)).await.unwrap();
    env.fake.set_quota_window(window("b@example.com", "gemini-5h", 0.0, 3600)).await.unwrap();
    let proxy = env.start().await;
    wait_window(&proxy, &a, "gemini-weekly", 0.0).await;
    wait_window(&proxy, &b, "gemini-5h", 0.0).await;
    env.fake.reset_stats().await;

    let (status, _, body) = proxy.gemini("gemini-2.5-pro", "hello").await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("gemini-weekly quota window used up"), "{message}");
    assert!(message.contains("gemini-weekly quota window used up (first reset "), "{message}");
    assert!(message.contains(" UTC, in 1d23h)") || message.contains(" UTC, in 2d0h)"), "the first reset and how far: {message}");
    assert!(message.contains("1 with Google's gemini-5h quota window used up"), "{message}");
    assert!(generates(&env).await.is_empty(), "nothing reached Google");

    // Claude is served still.
    let (status, _, body) = claude(&proxy, "hello").await;
    assert_eq!(status, 200, "{body}");

    // The listing says so too.
    let (_, out, _) = env.cli(&["accounts", "list"]).await;
    assert!(out.contains("week 0% USED UP"), "{out}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_serves_again_after_its_reset() {
    let env = Env::new().await;
    env.use_policy(POLICY);
    let a = env.add_account("a@example.com", "rt-a").await;
    let b = env.add_account("b@example.com", "rt-b").await;
    env.fake.set_quota_window(window("a@example.com", "gemini-5h", 0.0, 4)).await.unwrap();
    let proxy = env.start().await;
    wait_window(&proxy, &a, "gemini-5h", 0.0).await;
    let (status, account, _) = proxy.gemini("gemini-2.5-pro", "x").await;
    assert_eq!((status, account.as_deref()), (200, Some(b.as_str())));
    let back = eventually(Duration::from_secs(15), || async { proxy.gemini("gemini-2.5-pro", "x").await.1.as_deref() == Some(a.as_str()) }).await;
    assert!(back, "A serves Gemini again once its window reset: {}", proxy.logs());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_quota_windows_changes_nothing() {
    let env = Env::new().await;
    env.use_policy(POLICY);
    let a = env.add_account("a@example.com", "rt-a").await;
    env.fake.push_fault(FaultSpec::status(Endpoint::RetrieveUserQuotaSummary, 404).forever()).await.unwrap();
    let proxy = env.start().await;
    let polled = eventually(Duration::from_secs(15), || async { !proxy.admin_account(&a).await["quota"].as_object().unwrap().is_empty() }).await;
    assert!(polled, "the model quota is still fetched: {}", proxy.logs());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = proxy.admin_account(&a).await;
    assert!(view["quota_windows"].as_object().unwrap().is_empty(), "{view}");
    assert!(proxy.logs().contains("quota windows fetch failed"), "logged at debug");
    let (status, account, _) = proxy.gemini("gemini-2.5-pro", "x").await;
    assert_eq!((status, account.as_deref()), (200, Some(a.as_str())));
    assert!(env.account_file(&a).get("quota_windows").is_none(), "absent from the file");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_quota_429_teaches_the_windows_without_polls() {
    let env = Env::new().await;
    // No quota protection, no quota-aware selector: nothing polls.
    env.use_policy("[selector]\nplugin = \"round-robin\"\n");
    let a = env.add_account("a@example.com", "rt-a").await;
    let b = env.add_account("b@example.com", "rt-b").await;
    env.fake.set_quota_window(window("a@example.com", "gemini-weekly", 0.0, 3 * 86_400)).await.unwrap();
    let proxy = env.start().await;
    // Until A is tried once, nobody knows: Google's 429 sends the request on.
    for _ in 0..3 {
        let (status, account, body) = proxy.gemini("gemini-2.5-pro", "x").await;
        assert_eq!((status, account.as_deref()), (200, Some(b.as_str())), "{body}");
    }
    let refused = generates(&env).await.into_iter().filter(|r| r.email.as_deref() == Some("a@example.com")).collect::<Vec<_>>();
    assert!(!refused.is_empty() && refused.iter().all(|r| r.status == Some(429)), "A met Google's weekly 429: {refused:?}");
    wait_window(&proxy, &a, "gemini-weekly", 0.0).await;
    env.fake.reset_stats().await;
    // Another Gemini model: no cooldown of its own, the window keeps A off.
    for _ in 0..4 {
        let (status, account, body) = proxy.gemini("gemini-2.5-flash", "x").await;
        assert_eq!((status, account.as_deref()), (200, Some(b.as_str())), "{body}");
    }
    assert!(generates(&env).await.iter().all(|r| r.email.as_deref() == Some("b@example.com")));
    proxy.stop().await;
}
