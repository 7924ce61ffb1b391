//! Decision safety: the host's own fallbacks whatever the policy says,
//! verified upserts, bounded input, and what a crash leaves behind.

mod common;

use std::time::Duration;

use common::{Env, ADMIN_KEY};
use grantpool_tests::fake::{AccountSpec, Endpoint, FaultSpec, RevokeSpec};

const MODEL: &str = "gemini-2.5-pro";

/// A policy whose only classifier is a `rules` plugin for a provider that
/// says `token_revoked` (the rule swap docs/writing-plugins.md shows).
const RULES_ONLY: &str = r#"
[selector]
plugin = "round-robin"

[[classifier]]
plugin = "rules"
config = { rules = [
  { phase = "token-refresh", body_contains = "token_revoked", action = "disable", reason_prefix = "token_revoked" },
] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_found_at_the_first_401_under_any_policy() {
    let env = Env::new().await;
    env.use_policy(RULES_ONLY);
    let dead: Vec<String> = futures_ids(&env, &["d1", "d2"]).await;
    let ok = env.add_account("ok@example.com", "rt-ok").await;
    let proxy = env.start().await;
    // Google revokes both grants (their access tokens stop working too);
    // this provider's token endpoint then says `token_revoked`.
    for rt in ["rt-d1", "rt-d2"] {
        env.fake.revoke(RevokeSpec::new(rt).answer(400, r#"{"error":"token_revoked","error_description":"The grant was revoked."}"#)).await.unwrap();
    }
    for _ in 0..6 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!((status, account.as_deref()), (200, Some(ok.as_str())), "{body}");
    }
    for id in &dead {
        let file = env.account_file(id);
        assert_eq!(file["disabled"], true, "the 401 made the host refresh, and the rule saw token_revoked: {file}");
        assert!(file["disabled_reason"].as_str().unwrap().starts_with("token_revoked"), "{file}");
    }
    // Each dead account cost one upstream call, then was never selected again.
    let stats = env.fake.stats().await;
    for email in ["d1@example.com", "d2@example.com"] {
        assert!(stats.content_calls_for(email) <= 1, "{email}: {}", stats.content_calls_for(email));
    }
    proxy.stop().await;
}

async fn futures_ids(env: &Env, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in names {
        ids.push(env.add_account(&format!("{n}@example.com"), &format!("rt-{n}")).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_dead_grants_and_one_healthy_account_no_client_sees_an_error() {
    let env = Env::new().await;
    let names: Vec<String> = (0..20).map(|i| format!("dead{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    futures_ids(&env, &refs).await;
    let ok = env.add_account("alive@example.com", "rt-alive").await;
    // Revoked while the proxy was down: not yet known as dead.
    for n in &names {
        env.fake.revoke(RevokeSpec::new(format!("rt-{n}"))).await.unwrap();
    }
    let proxy = env.start().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, account, _) = proxy.gemini(MODEL, "hi").await;
        statuses.push(status);
        if status == 200 {
            assert_eq!(account.as_deref(), Some(ok.as_str()));
        }
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The dead grants met along the way were disabled — up to the storm
    // guard's 10 in a window; the rest were cooled down instead, not tried
    // again on every request.
    let disabled = env.account_files().into_iter().filter(|(_, f)| f["disabled"] == true).count();
    assert!(disabled >= 10, "{disabled} disabled");
    let stats = env.fake.stats().await;
    for n in &names {
        assert!(stats.content_calls_for(&format!("{n}@example.com")) <= 1, "{n} was tried again");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_no_classifier_answers_backs_the_account_off() {
    let env = Env::new().await;
    env.use_policy(RULES_ONLY);
    env.add_account("flaky@example.com", "rt-flaky").await;
    let ok = env.add_account("fine@example.com", "rt-fine").await;
    let proxy = env.start().await;
    // The flaky account answers 500 forever; no rule says anything of it.
    env.fake.push_fault(FaultSpec::status(Endpoint::Generate, 500).for_email("flaky@example.com").forever()).await.unwrap();
    for _ in 0..10 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!((status, account.as_deref()), (200, Some(ok.as_str())), "{body}");
    }
    let calls = env.fake.stats().await.content_calls_for("flaky@example.com");
    assert_eq!(calls, 1, "one attempt, then it backs off (not one attempt per request)");
    let view = proxy.admin_account(&env.account_id("flaky@example.com").unwrap()).await;
    assert_eq!(view["state"], "cooling_down", "{view}");
    assert!(view["reason"].as_str().unwrap().contains("no classifier answered"), "{view}");
    assert_eq!(env.account_file(&env.account_id("flaky@example.com").unwrap())["disabled"], false, "never a disable");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_upserts_only_what_google_says() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("real@example.com", "rt-real")).await;
    let proxy = env.start().await;
    let post = |body: serde_json::Value| {
        let (http, url) = (proxy.http.clone(), proxy.url.clone());
        async move {
            let r = http.post(format!("{url}/admin/accounts")).bearer_auth(ADMIN_KEY).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // A made-up email (a path, even) with a real token: refused, nothing written.
    let (status, r) = post(serde_json::json!({"email": "../../x", "refresh_token": "rt-real"})).await;
    assert_eq!(status, 409, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("belongs to real@example.com"), "{r}");
    assert!(env.account_files().is_empty());
    // A token Google refuses: nothing written.
    let (status, r) = post(serde_json::json!({"refresh_token": "rt-nobody"})).await;
    assert_eq!(status, 422, "{r}");
    assert!(env.account_files().is_empty());
    // The email comes from Google.
    let (status, r) = post(serde_json::json!({"refresh_token": "rt-real"})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["account"]["email"], "real@example.com");
    let files = env.account_files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1["email"], "real@example.com");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_bounds_its_input_in_its_own_shape() {
    let env = Env::new().await;
    env.add_account("b@example.com", "rt-b").await;
    let proxy = env.start().await;
    let deep = format!("{{\"contents\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let r = proxy.http.post(format!("{}/v1beta/models/{MODEL}:generateContent", proxy.url)).header("content-type", "application/json").body(deep.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "Gemini's shape: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("deeper than"), "{body}");
    for (path, shape) in [("/v1/chat/completions", "invalid_request_error"), ("/v1/messages", "error"), ("/v1/responses", "invalid_request_error")] {
        let r = proxy.http.post(format!("{}{path}", proxy.url)).header("content-type", "application/json").body(deep.clone()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(shape), "{path}: {body}");
    }
    assert_eq!(env.fake.stats().await.content_calls_for("b@example.com"), 0, "nothing reached Google");
    assert!(proxy.logs().contains("refused a client request"), "refusals are logged");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_in_a_disable_storm_leaves_whole_files_and_no_temporaries() {
    for round in 0..3 {
        let env = Env::new().await;
        let names: Vec<String> = (0..12).map(|i| format!("s{round}x{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        futures_ids(&env, &refs).await;
        for n in &names {
            env.fake.revoke(RevokeSpec::new(format!("rt-{n}"))).await.unwrap();
        }
        for (id, _) in env.account_files() {
            env.expire_token(&id);
        }
        let mut proxy = env.start().await;
        // Requests make the refreshes (and the disables) happen at once.
        let fire: Vec<_> = (0..8)
            .map(|_| {
                let (http, url) = (proxy.http.clone(), proxy.url.clone());
                tokio::spawn(async move {
                    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]});
                    let _ = http.post(format!("{url}/v1beta/models/{MODEL}:generateContent")).json(&body).send().await;
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20 + 15 * round)).await;
        proxy.kill().await;
        for f in fire {
            let _ = f.await;
        }
        // Whatever landed, landed whole: every file parses; a disable carries its reason.
        for (id, file) in env.account_files() {
            if file["disabled"] == true {
                assert!(file["disabled_reason"].as_str().unwrap().starts_with("invalid_grant"), "{id}: {file}");
            }
        }
        assert_eq!(env.account_files().len(), 12);
        // A restart removes the temporary files of the writers that died. The
        // new proxy disables accounts too as it starts, so one of its own
        // writes may be in flight when we look: an orphan is a temporary file
        // that is still there seconds later.
        let proxy = env.start().await;
        let temporaries = || -> Vec<String> {
            std::fs::read_dir(env.data_dir().join("accounts"))
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut tmp = temporaries();
        while !tmp.is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tmp = temporaries();
        }
        assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
        proxy.stop().await;
    }
}

/// Every account cools down for a second (Google's 429 RATE_LIMIT_EXCEEDED
/// with a retryDelay): the client waits for the first one back and gets its
/// answer, not the 429; a cooldown longer than `server.max_wait_secs`, or
/// `max_wait_secs = 0`, is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_rest_of_every_account_is_waited_out_not_passed_on() {
    for (max_wait, delay, waits) in [(None, "1s", true), (Some(0), "1s", false), (None, "30s", false)] {
        let mut env = Env::new().await;
        if let Some(secs) = max_wait {
            env.server_config = format!("max_wait_secs = {secs}\n");
            env.write_config("");
        }
        env.add_account("ann@example.com", "rt-ann").await;
        env.add_account("bob@example.com", "rt-bob").await;
        let proxy = env.start().await;
        for email in ["ann@example.com", "bob@example.com"] {
            env.fake.push_fault(FaultSpec::rate_limit_exceeded(Endpoint::Generate, delay).for_email(email).times(1)).await.unwrap();
        }
        let started = std::time::Instant::now();
        let (status, _, body) = proxy.gemini(MODEL, "x").await;
        let took = started.elapsed();
        let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
        if waits {
            assert_eq!(status, 200, "waited for the first account back: {body}");
            assert!(took >= Duration::from_millis(900), "it did wait ({took:?})");
            assert!(metrics.contains("grantpool_waits_total 1"), "{metrics}");
        } else {
            assert_eq!(status, 429, "max_wait_secs = {max_wait:?}, retryDelay {delay}: answered at once: {body}");
            assert!(metrics.contains("grantpool_waits_total 0"), "no wait: {metrics}");
        }
        assert_eq!(env.fake.stats().await.content_calls_for("ann@example.com") + env.fake.stats().await.content_calls_for("bob@example.com"), if waits { 3 } else { 2 });
        proxy.stop().await;
    }
}
