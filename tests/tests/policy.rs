//! The policy, end to end: swapping the invalid_grant rule while the proxy
//! runs, hot reload under load, refusal of a broken policy, quota
//! protection, `policy check`, `plugin test` and the plugin template.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, Env};
use grantpool_tests::fake::{QuotaSpec, RevokeSpec};

const MODEL: &str = "gemini-2.5-flash";

const RULES_INVALID_GRANT: &str = r#"
[selector]
plugin = "round-robin"

[[classifier]]
plugin = "rules"
config = { rules = [
  { phase = "token-refresh", body_contains = "invalid_grant", action = "disable", reason_prefix = "invalid_grant" },
] }
"#;

const RULES_TOKEN_REVOKED: &str = r#"
[selector]
plugin = "round-robin"

[[classifier]]
plugin = "rules"
config = { rules = [
  { phase = "token-refresh", body_contains = "token_revoked", action = "disable", reason_prefix = "token_revoked" },
] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invalid_grant_rule_is_swapped_by_editing_the_policy() {
    let env = Env::new().await;
    env.use_policy(RULES_INVALID_GRANT);
    let a = env.add_account("ann@example.com", "rt-ann").await;
    let b = env.add_account("ben@example.com", "rt-ben").await;
    let c = env.add_account("cid@example.com", "rt-cid").await;
    let proxy = env.start().await;

    // Edit the policy while the proxy runs: now only `token_revoked` disables.
    env.write_policy(RULES_TOKEN_REVOKED);
    assert!(proxy.wait_log("policy reloaded", Duration::from_secs(10)).await, "{}", proxy.logs());

    // The fake's invalid_grant no longer disables…
    env.expire_token(&a);
    env.fake.revoke(RevokeSpec::new("rt-ann")).await.unwrap();
    // …and the new text does.
    env.expire_token(&c);
    env.fake.revoke(RevokeSpec::new("rt-cid").answer(400, r#"{"error":"token_revoked","error_description":"gone"}"#)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..6 {
        let (status, account, body) = proxy.gemini(MODEL, "x").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(account.as_deref(), Some(b.as_str()));
    }
    assert_eq!(env.account_file(&a)["disabled"], false, "invalid_grant no longer disables");
    let fc = env.account_file(&c);
    assert_eq!(fc["disabled"], true, "{fc}");
    assert!(fc["disabled_reason"].as_str().unwrap().starts_with("token_revoked:"), "{fc}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_loses_no_request() {
    let env = Env::new().await;
    env.use_policy("[selector]\nplugin = \"round-robin\"\n");
    for i in 0..4 {
        env.add_account(&format!("w{i}@example.com"), &format!("rt-w{i}")).await;
    }
    let proxy = Arc::new(env.start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (proxy, stop, ok, failed) = (proxy.clone(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, _, body) = proxy.gemini(MODEL, "load").await;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("FAILED {status}: {body}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let selectors = ["least-busy", "round-robin", "fill-first", "sticky-session", "weighted"];
    for i in 0..20 {
        if i == 10 {
            env.write_policy("[selector]\nplugin = \"least-busy\"\nconfig = { choices = \"two\" }\n");
            assert!(proxy.wait_log("policy refused", Duration::from_secs(10)).await, "broken policy refused");
        }
        let before = proxy.logs().matches("policy reloaded").count();
        env.write_policy(&format!("[selector]\nplugin = \"{}\"\n", selectors[i % selectors.len()]));
        let reloaded = eventually(Duration::from_secs(10), || async { proxy.logs().matches("policy reloaded").count() > before }).await;
        assert!(reloaded, "swap {i} took effect");
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "zero failed requests");
    assert!(ok.load(Ordering::Relaxed) > 20, "requests kept flowing: {}", ok.load(Ordering::Relaxed));
    let logs = proxy.logs();
    assert!(logs.contains("policy refused, the running policy stays"), "{logs}");
    assert!(logs.contains("policy.toml, line 3"), "refusal names the file and line: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_refuses_a_broken_policy() {
    let env = Env::new().await;
    env.use_policy("[selector]\nplugin = \"round-robin\"\n");
    env.add_account("xia@example.com", "rt-xia").await;
    let proxy = env.start().await;
    env.write_policy("[selector]\nplugin = \"no-such-plugin\"\n");
    let r = proxy.http.post(format!("{}/admin/reload", proxy.url)).bearer_auth(common::ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("line 2") && body.contains("no-such-plugin") && body.contains("running policy stays"), "{body}");
    assert_eq!(proxy.gemini(MODEL, "still served").await.0, 200);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_validates_and_names_the_line() {
    let env = Env::new().await;
    env.write_policy("[selector]\nplugin = \"sticky-session\"\nconfig = { ttl_secs = 60, fallback = \"least-busy\" }\n\n[[classifier]]\nplugin = \"default\"\n");
    let path = env.policy_path();
    let (ok, out, err) = env.cli(&["policy", "check", path.to_str().unwrap()]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("selector: sticky-session") && out.contains("classifier 1: default"), "{out}");
    assert!(out.contains("it asks for request outcomes, session ids"), "{out}");

    env.write_policy("[selector]\nplugin = \"round-robin\"\n\n[[classifier]]\nplugin = \"rules\"\nconfig = { rules = [ { phase = \"upstream\", body_regex = \"(unclosed\", action = \"disable\" } ] }\n");
    let (ok, _, err) = env.cli(&["policy", "check", path.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(err.contains("line 6") && err.contains("rules") && err.contains("body_regex"), "{err}");

    env.write_policy("[selector\nplugin = 3\n");
    let (ok, _, err) = env.cli(&["policy", "check", path.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(err.contains("line 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_protection_skips_one_model_until_its_reset() {
    let env = Env::new().await;
    env.use_policy(
        "[selector]\nplugin = \"round-robin\"\n\n[quota_protection]\nthreshold = 0.1\nrefresh_secs = 1\n",
    );
    let low = env.add_account("low@example.com", "rt-low").await;
    let other = env.add_account("other@example.com", "rt-other").await;
    let reset = std::time::SystemTime::now() + Duration::from_secs(4);
    let reset_secs = reset.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    env.fake
        .set_quota(QuotaSpec { email: "low@example.com".into(), model: "gemini-2.5-pro".into(), remaining_fraction: 0.05, reset_time: Some(rfc3339(reset_secs)) })
        .await
        .unwrap();
    let proxy = env.start().await;
    // Wait for the first quota poll.
    assert!(
        eventually(Duration::from_secs(10), || async {
            proxy.admin_account(&low).await["model_cooldowns"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await,
        "{}",
        proxy.logs()
    );
    for _ in 0..6 {
        let (status, account, _) = proxy.gemini("gemini-2.5-pro", "x").await;
        assert_eq!((status, account.as_deref()), (200, Some(other.as_str())), "the 5% account is skipped for that model");
    }
    let mut served = std::collections::HashSet::new();
    for _ in 0..6 {
        served.insert(proxy.gemini("gemini-2.5-flash", "x").await.1.unwrap());
    }
    assert!(served.contains(&low), "it keeps serving other models");
    let view = proxy.admin_account(&low).await;
    assert!(view["quota"]["gemini-2.5-pro"]["remaining_fraction"].as_f64().unwrap() < 0.1, "{view}");
    let (_, listed, _) = env.cli(&["accounts", "list"]).await;
    assert!(listed.contains("quota gemini-2.5-pro: 5% left"), "{listed}");
    // After the reset time, it serves that model again.
    let back = eventually(Duration::from_secs(10), || async {
        proxy.gemini("gemini-2.5-pro", "x").await.1.as_deref() == Some(low.as_str())
    })
    .await;
    assert!(back);
    proxy.stop().await;
}

fn rfc3339(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_test_runs_one_decision() {
    let env = Env::new().await;
    let case = env.data_dir().join("case.json");
    std::fs::write(&case, r#"{"classify": {"phase": "token-refresh", "status": 400, "body": "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}"}}"#).unwrap();
    let (ok, out, err) = env.cli(&["plugin", "test", "default", "--input", case.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"]["action"], "disable");
    assert_eq!(v["verdict"]["reason"], "invalid_grant: Token has been expired or revoked.");

    std::fs::write(&case, r#"{"select": {"accounts": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "request": {"model": "m", "tried": ["b"]}, "repeat": 4}}"#).unwrap();
    let (ok, out, err) = env.cli(&["plugin", "test", "round-robin", "--input", case.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let picks: Vec<&str> = v["picks"].as_array().unwrap().iter().map(|p| p["picked"].as_str().unwrap()).collect();
    assert_eq!(picks, ["a", "c", "a", "c"], "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_builds_into_a_plugin_that_runs() {
    let root = common::root();
    let status = tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root.join("plugins/template"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "the template builds with one command");
    let wasm = root.join("plugins/target/wasm32-wasip2/release/template.wasm");
    assert!(wasm.is_file());

    let env = Env::new().await;
    let case = env.data_dir().join("case.json");
    std::fs::write(&case, r#"{"select": {"accounts": [{"id": "free"}, {"id": "paid", "labels": {"tier": "paid"}}], "request": {"model": "m"}}}"#).unwrap();
    let (ok, out, err) = env.cli(&["plugin", "test", wasm.to_str().unwrap(), "--input", case.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"picked\""), "{out}");

    env.use_policy(&format!("[selector]\nplugin = \"{}\"\n", wasm.display()));
    let id = env.add_account("yan@example.com", "rt-yan").await;
    let proxy = env.start().await;
    assert!(proxy.logs().contains("selector: template"), "{}", proxy.logs());
    let (status, account, _) = proxy.gemini(MODEL, "x").await;
    assert_eq!((status, account.as_deref()), (200, Some(id.as_str())));
    proxy.stop().await;
}

/// Every account's quota is polled from Google only for a selector that
/// asks for quota (here `weighted`, and not when its `use_quota` is off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_polled_only_for_a_selector_that_asks() {
    for (config, polled) in [("", true), ("config = { use_quota = false }\n", false)] {
        let env = Env::new().await;
        env.use_policy(&format!("[selector]\nplugin = \"weighted\"\n{config}"));
        env.add_account("q@example.com", "rt-q").await;
        let proxy = env.start().await;
        assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
        // Polled: the account's per-model quota lands in its file (the one
        // model-list call at start keeps no quota).
        let id = env.account_id("q@example.com").unwrap();
        let seen = eventually(Duration::from_secs(if polled { 10 } else { 3 }), || async {
            env.account_file(&id).get("quota").is_some_and(|q| q.as_object().is_some_and(|o| !o.is_empty()))
        })
        .await;
        assert_eq!(seen, polled, "weighted {config:?}: quota polled? log:\n{}", proxy.logs());
        proxy.stop().await;
    }
}
