//! The admin API and metrics: guarded by the admin key, never a token.

mod common;

use common::{Env, ADMIN_KEY};

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
