//! SPEC "The invalid_grant flow", end to end: the real `grantpool serve`
//! against the fake Google, over real sockets.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{eventually, Env};
use grantpool_tests::fake::{Endpoint, FaultSpec, RevokeSpec};

const MODEL: &str = "gemini-2.5-flash";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_account_is_disabled_persisted_and_recovered_by_a_new_token() {
    let env = Env::new().await;
    let a = env.add_account("alice@example.com", "rt-alice").await;
    let b = env.add_account("bob@example.com", "rt-bob").await;
    // Alice's token is due for refresh, and Google has revoked her grant.
    env.expire_token(&a);
    env.fake.revoke(RevokeSpec::new("rt-alice")).await.unwrap();

    let proxy = env.start().await;
    for i in 0..4 {
        let (status, account, body) = proxy.gemini(MODEL, &format!("hello {i}")).await;
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(account.as_deref(), Some(b.as_str()), "served by the other account");
        assert!(common::gemini_text(&body).contains("bob@example.com"), "{body}");
    }
    let file = env.account_file(&a);
    assert_eq!(file["disabled"], true, "{file}");
    assert!(file["disabled_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(file["disabled_reason"].as_str().unwrap().starts_with("invalid_grant:"), "{file}");
    assert_eq!(file["proxy_disabled"], false, "a different flag, untouched");
    let logs = proxy.logs();
    assert!(logs.contains("Token refresh failed (alice@example.com): HTTP 400"), "{logs}");
    assert!(logs.contains(", trying next account"), "{logs}");
    assert!(
        logs.contains("Disabling account due to invalid_grant (alice@example.com): refresh_token likely revoked/expired"),
        "{logs}"
    );
    assert!(!logs.contains("rt-alice") && !logs.contains("rt-bob"), "no token in the log");
    let (_, listed, _) = env.cli(&["accounts", "list"]).await;
    assert!(listed.contains("DISABLED") && listed.contains("invalid_grant"), "{listed}");

    // After a restart it stays disabled.
    proxy.stop().await;
    let proxy = env.start().await;
    assert_eq!(proxy.admin_account(&a).await["state"], "disabled");
    for _ in 0..3 {
        let (status, account, _) = proxy.gemini(MODEL, "again").await;
        assert_eq!((status, account.as_deref()), (200, Some(b.as_str())));
    }

    // Re-adding the same (revoked) token through the admin API does not
    // revive it: Google refuses the token, so nothing is written.
    let same = serde_json::json!({"email": "alice@example.com", "refresh_token": "rt-alice"});
    let resp = proxy.http.post(format!("{}/admin/accounts", proxy.url)).bearer_auth(common::ADMIN_KEY).json(&same).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let r: serde_json::Value = resp.json().await.unwrap();
    assert!(r["error"]["message"].as_str().unwrap().contains("refused: the token endpoint answered invalid_grant"), "{r}");
    assert_eq!(env.account_file(&a)["disabled"], true);
    assert!(!r.to_string().contains("rt-alice"), "no token in admin answers");

    // Re-adding with a new refresh token (CLI, while the proxy runs) brings it back, no restart.
    env.fake.add_account(grantpool_tests::fake::AccountSpec::new("alice@example.com", "rt-alice-2")).await;
    let (ok, out, err) = env.cli(&["accounts", "add", "--refresh-token", "rt-alice-2"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("enabled again"), "{out}");
    let file = env.account_file(&a);
    assert_eq!(file["disabled"], false);
    assert!(file.get("disabled_reason").map_or(true, |r| r.is_null()), "{file}");
    let served_alice = eventually(Duration::from_secs(10), || async {
        let (status, account, _) = proxy.gemini(MODEL, "welcome back").await;
        status == 200 && account.as_deref() == Some(a.as_str())
    })
    .await;
    assert!(served_alice, "the running proxy serves the re-added account");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_with_a_revoked_grant_leads_to_refresh_and_disable() {
    // Google invalidates the access tokens of a revoked grant: the first sign
    // is a 401 on a token that should still be valid.
    let env = Env::new().await;
    let a = env.add_account("carol@example.com", "rt-carol").await;
    let b = env.add_account("dan@example.com", "rt-dan").await;
    let proxy = env.start().await;
    env.fake.revoke(RevokeSpec::new("rt-carol")).await.unwrap();
    for _ in 0..4 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(account.as_deref(), Some(b.as_str()));
    }
    assert_eq!(env.account_file(&a)["disabled"], true);
    assert!(proxy.logs().contains("Disabling account due to invalid_grant (carol@example.com)"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_disabled_gives_a_503_that_names_the_cause() {
    let env = Env::new().await;
    let mut ids = Vec::new();
    for (i, name) in ["e", "f", "g"].iter().enumerate() {
        let id = env.add_account(&format!("{name}@example.com"), &format!("rt-{i}")).await;
        env.expire_token(&id);
        env.fake.revoke(RevokeSpec::new(format!("rt-{i}"))).await.unwrap();
        ids.push(id);
    }
    let proxy = env.start().await;
    let (status, _, body) = proxy.gemini(MODEL, "anyone?").await;
    // The first request may end on the last account's refresh failure; the
    // next one finds none left.
    let (status, body) = if status == 503 && body.to_string().contains("all 3") { (status, body) } else {
        let (s, _, b) = proxy.gemini(MODEL, "anyone?").await;
        (s, b)
    };
    assert_eq!(status, 503, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("all 3 accounts are disabled by invalid_grant"), "{msg}");
    assert!(msg.contains("re-add them with a new refresh token"), "{msg}");
    // OpenAI clients get the same cause in their own error shape.
    let r = proxy
        .http
        .post(format!("{}/v1/chat/completions", proxy.url))
        .json(&serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("invalid_grant"), "{v}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_requests_share_one_refresh() {
    let env = Env::new().await;
    let a = env.add_account("hana@example.com", "rt-hana").await;
    env.expire_token(&a);
    // A slow token endpoint makes the race real.
    env.fake.push_fault(FaultSpec::slow(Endpoint::Token, 400)).await.unwrap();
    env.fake.reset_stats().await;
    let proxy = env.start().await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let http = proxy.http.clone();
        let url = format!("{}/v1beta/models/{MODEL}:generateContent", proxy.url);
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": format!("q{i}")}]}]});
            http.post(url).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let stats = env.fake.stats().await;
    assert_eq!(stats.token_calls_for("rt-hana"), 1, "exactly one refresh at the token endpoint");
    assert_eq!(stats.content_calls_for("hana@example.com"), 100);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_token_is_persisted() {
    let env = Env::new().await;
    env.fake
        .add_account(grantpool_tests::fake::AccountSpec::new("ivy@example.com", "rt-ivy").rotate_refresh_token(true))
        .await;
    let (ok, _, err) = env.cli(&["accounts", "add", "--refresh-token", "rt-ivy"]).await;
    assert!(ok, "{err}");
    let id = env.account_id("ivy@example.com").unwrap();
    let rotated = env.account_file(&id)["token"]["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, "rt-ivy", "the rotated token from `add` is kept");
    env.expire_token(&id);
    let proxy = env.start().await;
    let (status, _, _) = proxy.gemini(MODEL, "x").await;
    assert_eq!(status, 200);
    let now = env.account_file(&id)["token"]["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(now, rotated, "the rotation of the proxy's refresh is persisted");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_failures_that_are_not_invalid_grant_never_disable() {
    let env = Env::new().await;
    let a = env.add_account("jo@example.com", "rt-jo").await;
    let b = env.add_account("kim@example.com", "rt-kim").await;
    let proxy = env.start().await;
    let faults = [
        FaultSpec::network(Endpoint::Token),
        FaultSpec::drop_connection(Endpoint::Token),
        FaultSpec::status(Endpoint::Token, 503),
        FaultSpec::status(Endpoint::Token, 429),
        FaultSpec::status(Endpoint::Token, 401).body(r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#),
    ];
    for fault in faults {
        env.expire_token(&a);
        // Wait for the pool to see the hand edit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.fake.push_fault(fault.for_email("jo@example.com").times(1)).await.unwrap();
        for _ in 0..2 {
            let (status, _, body) = proxy.gemini(MODEL, "still fine?").await;
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(env.account_file(&a)["disabled"], false, "{}", proxy.logs());
    }
    assert!(proxy.logs().contains("Token refresh failed (jo@example.com)"));
    assert!(proxy.logs().contains("OAuth client's fault"), "invalid_client is named as a client problem");
    let _ = b;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_cools_the_model_down_for_the_retry_delay() {
    let env = Env::new().await;
    let a = env.add_account("lee@example.com", "rt-lee").await;
    let b = env.add_account("max@example.com", "rt-max").await;
    let proxy = env.start().await;
    // Whichever account comes first, make Lee's answer a 429 with retryDelay
    // 6s and no reason (a RATE_LIMIT_EXCEEDED cools the whole account: below).
    let body = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"6s"}]}}"#;
    env.fake.push_fault(FaultSpec::status(Endpoint::Generate, 429).body(body).for_email("lee@example.com")).await.unwrap();
    let mut served = HashSet::new();
    let t0 = common::now_ms();
    for _ in 0..4 {
        let (status, account, body) = proxy.gemini(MODEL, "x").await;
        assert_eq!(status, 200, "{body}");
        served.insert(account.unwrap());
    }
    let view = proxy.admin_account(&a).await;
    let cd = &view["model_cooldowns"][0];
    assert_eq!(cd["model"], MODEL, "{view}");
    let until = cd["until_ms"].as_u64().unwrap();
    assert!(until >= t0 + 5_900 && until <= common::now_ms() + 6_100, "cooldown of ~6s: {view}");
    assert_eq!(view["state"], "active", "only the model cools down");
    // Persisted, so it survives a restart.
    let file = env.account_file(&a);
    assert_eq!(file["cooldowns"][0]["scope"], MODEL, "{file}");
    assert!(served.contains(&b));
    proxy.stop().await;
    let proxy = env.start().await;
    let view = proxy.admin_account(&a).await;
    assert_eq!(view["model_cooldowns"][0]["until_ms"].as_u64(), Some(until), "the cooldown came back after a restart: {view}");
    // After the delay, Lee serves this model again.
    let back = eventually(Duration::from_secs(15), || async {
        let (_, account, _) = proxy.gemini(MODEL, "y").await;
        account.as_deref() == Some(a.as_str())
    })
    .await;
    assert!(back);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_storm_guard_engages() {
    let env = Env::new().await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(env.add_account(&format!("u{i}@example.com"), &format!("rt-u{i}")).await);
    }
    // Six of eight (over half the pool) revoked at once.
    for i in 0..6 {
        env.expire_token(&ids[i]);
        env.fake.revoke(RevokeSpec::new(format!("rt-u{i}"))).await.unwrap();
    }
    let proxy = env.start().await;
    for _ in 0..12 {
        let (status, _, body) = proxy.gemini(MODEL, "x").await;
        assert_eq!(status, 200, "{body}");
    }
    let disabled = ids.iter().filter(|id| env.account_file(id)["disabled"] == true).count();
    assert_eq!(disabled, 4, "guard stops after half the pool (3 + 1 of 8 ≤ 0.5)");
    assert!(proxy.logs().contains("disable storm guard engaged"), "{}", proxy.logs());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_acts_on_nothing() {
    let env = Env::new().await;
    env.use_policy("[selector]\nplugin = \"round-robin\"\n\n[[classifier]]\nplugin = \"default\"\nmode = \"shadow\"\n");
    let a = env.add_account("nia@example.com", "rt-nia").await;
    env.add_account("oli@example.com", "rt-oli").await;
    env.expire_token(&a);
    env.fake.revoke(RevokeSpec::new("rt-nia")).await.unwrap();
    let proxy = env.start().await;
    for _ in 0..4 {
        assert_eq!(proxy.gemini(MODEL, "x").await.0, 200);
    }
    assert_eq!(env.account_file(&a)["disabled"], false);
    assert!(proxy.logs().contains("shadow classifier would decide: disable (invalid_grant"), "{}", proxy.logs());
    proxy.stop().await;
}
