//! The admin API and metrics: guarded by the admin key, never a token.

mod common;

use std::time::Duration;

use common::{Env, ADMIN_KEY};
use grantpool_tests::fake::{Endpoint, FaultSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_its_key_and_shows_no_tokens() {
    let env = Env::new().await;
    let id = env.add_account("zoe@example.com", "rt-zoe").await;
    let proxy = env.start().await;
    assert_eq!(proxy.gemini("gemini-2.5-pro", "hi").await.0, 200);

    let no_key = proxy.http.get(format!("{}/admin/accounts", proxy.url)).send().await.unwrap();
    assert_eq!(no_key.status().as_u16(), 401);
    let wrong = proxy.http.get(format!("{}/admin/accounts", proxy.url)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let text = proxy.http.get(format!("{}/admin/accounts", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(&id) && text.contains("zoe@example.com"), "{text}");
    let file = env.account_file(&id);
    let access = file["token"]["access_token"].as_str().unwrap();
    assert!(!text.contains(access) && !text.contains("rt-zoe"), "no token in /admin/accounts");

    // Disable and enable through the API.
    let r: serde_json::Value = proxy.http.post(format!("{}/admin/accounts/{id}/disable", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["account"]["state"], "proxy_disabled", "{r}");
    assert_eq!(proxy.gemini("gemini-2.5-pro", "hi").await.0, 503);
    let r: serde_json::Value = proxy.http.post(format!("{}/admin/accounts/zoe@example.com/enable", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["account"]["state"], "active", "{r}");
    assert_eq!(proxy.gemini("gemini-2.5-pro", "hi").await.0, 200);

    let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    for needle in [
        "grantpool_requests_total{protocol=\"gemini\",model=\"gemini-2.5-pro\",status=\"200\"} 2",
        "grantpool_requests_total{protocol=\"gemini\",model=\"gemini-2.5-pro\",status=\"503\"} 1",
        "grantpool_upstream_latency_seconds_bucket",
        "grantpool_accounts{state=\"active\"} 1",
        "grantpool_token_refreshes_total",
        "grantpool_disables_total 0",
        "grantpool_cooldowns_total",
    ] {
        assert!(metrics.contains(needle), "missing `{needle}` in:\n{metrics}");
    }
    assert!(!metrics.contains(access));
    proxy.stop().await;
}

/// The serving threads stop cleanly: a request in flight when SIGTERM comes
/// still gets its answer, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish() {
    let env = Env::new().await;
    env.add_account("ivy@example.com", "rt-ivy").await;
    let mut proxy = env.start().await;
    // Requests from many connections land on every serving thread.
    let (http, url) = (proxy.http.clone(), proxy.url.clone());
    let many = (0..16).map(|_| {
        let (http, url) = (reqwest::Client::new(), url.clone());
        tokio::spawn(async move {
            let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
            http.post(format!("{url}/v1beta/models/gemini-2.5-pro:generateContent")).json(&body).send().await.unwrap().status().as_u16()
        })
    });
    for r in many {
        assert_eq!(r.await.unwrap(), 200);
    }

    env.fake.push_fault(FaultSpec::slow(Endpoint::Generate, 1_000).times(1)).await.unwrap();
    let slow = tokio::spawn(async move {
        let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "slow"}]}]});
        let resp = http.post(format!("{url}/v1beta/models/gemini-2.5-pro:generateContent")).json(&body).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    });
    // Let the slow request reach the upstream, then ask the proxy to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = proxy.terminate().await.expect("grantpool stops within 10 s");
    let (code, body) = slow.await.unwrap();
    assert_eq!(code, 200, "the request in flight was cut off: {body}");
    assert!(status.success(), "exit status {status:?}; log:\n{}", proxy.logs());
    assert!(proxy.wait_log("grantpool stopped", Duration::from_secs(2)).await, "{}", proxy.logs());
}
