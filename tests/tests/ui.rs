//! The accounts page's HTTP side, over real sockets: sign-in (cookie flags,
//! the brake on wrong keys), what a change must carry (same origin, the CSRF
//! token, an allowed Host), the event stream (a disable pushed at once, never
//! a token), and who may use the page without an admin key.

mod common;

use std::time::{Duration, Instant};

use common::{Env, ADMIN_KEY};
use futures::StreamExt;
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-pro";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Sign in; the session cookie (`name=value`) and its CSRF token.
async fn sign_in(http: &reqwest::Client, url: &str) -> (String, String) {
    let resp = http.post(format!("{url}/ui/api/session")).json(&json!({"admin_key": ADMIN_KEY})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_string())
}

/// Read the stream until `what` holds of what came, at most `within`.
async fn read_until(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, seen: &mut String, what: impl Fn(&str) -> bool, within: Duration) -> bool {
    let until = Instant::now() + within;
    while !what(seen) {
        match tokio::time::timeout(until.saturating_duration_since(Instant::now()), rx.recv()).await {
            Ok(Some(chunk)) => seen.push_str(&chunk),
            _ => return false,
        }
    }
    true
}

fn without_admin_key(env: &Env, server_extra: &str) {
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replace(&format!("admin_key = \"{ADMIN_KEY}\""), server_extra);
    std::fs::write(env.config_path(), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_gives_a_strict_http_only_cookie_and_pauses_after_wrong_keys() {
    let env = Env::new().await;
    env.add_account("ann@example.com", "rt-ann").await;
    let proxy = env.start().await;
    let http = client();
    let url = &proxy.url;

    let root = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(root.status().as_u16(), 303);
    assert_eq!(root.headers()["location"], "/ui");
    assert_eq!(http.head(format!("{url}/")).send().await.unwrap().status().as_u16(), 200, "HEAD / still answers 200");
    let page = http.get(format!("{url}/ui")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(">Admin key</label>") && html.contains(">Sign in</button>") && html.contains(">Refresh token</label>") && html.contains(">Add account</button>"), "{html}");
    assert!(!html.contains("cdn") && html.contains("/ui/assets/app.js"));
    let js = http.get(format!("{url}/ui/assets/app.js")).send().await.unwrap();
    assert_eq!(js.status().as_u16(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));

    assert_eq!(http.get(format!("{url}/ui/api/accounts")).send().await.unwrap().status().as_u16(), 401);
    let s: Value = http.get(format!("{url}/ui/api/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(s, json!({"access": "key", "signed_in": false}));
    let form = http.post(format!("{url}/ui/api/session")).header("content-type", "application/x-www-form-urlencoded").body(format!("admin_key={ADMIN_KEY}")).send().await.unwrap();
    assert_eq!(form.status().as_u16(), 415, "a form post (what another site can send) cannot sign in");

    let ok = http.post(format!("{url}/ui/api/session")).json(&json!({"admin_key": ADMIN_KEY})).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let set_cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["grantpool_session=", "HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains(ADMIN_KEY));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let accounts: Value = http.get(format!("{url}/ui/api/accounts")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(accounts["accounts"][0]["email"], "ann@example.com");
    assert_eq!(accounts["accounts"][0]["state_words"], "active");

    for i in 0..5 {
        let wrong = http.post(format!("{url}/ui/api/session")).json(&json!({"admin_key": format!("guess-{i}")})).send().await.unwrap();
        assert_eq!(wrong.status().as_u16(), 401, "guess {i}");
    }
    let paused = http.post(format!("{url}/ui/api/session")).json(&json!({"admin_key": ADMIN_KEY})).send().await.unwrap();
    assert_eq!(paused.status().as_u16(), 429, "even the right key waits once 5 wrong ones came in a minute");
    let wait: u64 = paused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((50..=60).contains(&wait), "{wait}");
    let body: Value = paused.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("too many wrong admin keys"), "{body}");
    // A signed-in page keeps working meanwhile.
    assert_eq!(http.get(format!("{url}/ui/api/overview")).header("cookie", &cookie).send().await.unwrap().status().as_u16(), 200);
    assert!(!proxy.logs().contains(ADMIN_KEY), "the admin key is never logged");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_needs_this_origin_the_csrf_token_and_an_allowed_host() {
    let env = Env::new().await;
    let id = env.add_account("bea@example.com", "rt-bea").await;
    let proxy = env.start().await;
    let http = client();
    let url = &proxy.url;
    let (cookie, csrf) = sign_in(&http, url).await;
    let off = format!("{url}/ui/api/accounts/{id}/off");
    let post = |extra: &[(&str, &str)]| {
        let mut req = http.post(&off).header("cookie", &cookie);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req
    };
    let refused = [
        (vec![], "CSRF"),
        (vec![("x-csrf-token", "0123")], "CSRF"),
        (vec![("x-csrf-token", csrf.as_str()), ("origin", "http://evil.example")], "cross-origin"),
        (vec![("x-csrf-token", csrf.as_str()), ("origin", "null")], "cross-origin"),
        (vec![("x-csrf-token", csrf.as_str()), ("sec-fetch-site", "cross-site")], "cross-site"),
        (vec![("x-csrf-token", csrf.as_str()), ("sec-fetch-site", "same-site")], "same-site"),
        (vec![("x-csrf-token", csrf.as_str()), ("host", "evil.example")], "allowed_hosts"),
    ];
    for (headers, why) in refused {
        let resp = post(&headers).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{headers:?}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(why), "{headers:?}: {text}");
        assert_eq!(env.account_file(&id)["proxy_disabled"], false, "{headers:?} changed the account");
    }
    // No session at all.
    let anon = http.post(&off).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    let origin = url.clone();
    let ok = post(&[("x-csrf-token", csrf.as_str()), ("origin", origin.as_str()), ("sec-fetch-site", "same-origin")]).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["account"]["state_words"], "off the proxy", "{body}");
    assert_eq!(env.account_file(&id)["proxy_disabled"], true);
    assert!(proxy.logs().contains("refused a cross-origin request"), "refusals are logged");

    // Labels are checked the way the selectors read them.
    let labels = format!("{url}/ui/api/accounts/{id}/labels");
    let bad = http.post(&labels).header("cookie", &cookie).header("x-csrf-token", &csrf).json(&json!({"labels": {"weight": "heavy"}})).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let good = http.post(&labels).header("cookie", &cookie).header("x-csrf-token", &csrf).json(&json!({"labels": {"weight": "2", "tier": "paid"}})).send().await.unwrap();
    assert_eq!(good.status().as_u16(), 200);
    assert_eq!(env.account_file(&id)["labels"], json!({"weight": "2", "tier": "paid"}));

    // Signing out ends the session.
    let out = http.delete(format!("{url}/ui/api/session")).header("cookie", &cookie).header("x-csrf-token", &csrf).send().await.unwrap();
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(http.get(format!("{url}/ui/api/accounts")).header("cookie", &cookie).send().await.unwrap().status().as_u16(), 401);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_pushes_a_disable_at_once_and_never_a_token() {
    let env = Env::new().await;
    let a = env.add_account("cid@example.com", "rt-cid").await;
    env.add_account("dot@example.com", "rt-dot").await;
    let proxy = env.start().await;
    let http = client();
    let url = &proxy.url;
    let (cookie, _) = sign_in(&http, url).await;
    assert_eq!(http.get(format!("{url}/ui/api/stream")).send().await.unwrap().status().as_u16(), 401, "no stream without a session");
    let resp = http.get(format!("{url}/ui/api/stream")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            if tx.send(String::from_utf8_lossy(&chunk).into_owned()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    assert!(read_until(&mut rx, &mut seen, |s: &str| s.contains("event: snapshot"), Duration::from_secs(5)).await, "{seen}");

    // Google revokes cid's grant; the next request on it finds out.
    env.fake.revoke_refresh_token("rt-cid").await;
    env.fake.invalidate_access_tokens(Some("cid@example.com")).await;
    let mut disabled_at = None;
    for _ in 0..6 {
        proxy.gemini(MODEL, "hi").await;
        if proxy.admin_account(&a).await["state"] == "disabled" {
            disabled_at = Some(Instant::now());
            break;
        }
    }
    let disabled_at = disabled_at.expect("cid disabled");
    let pushed = |s: &str| s.split("\n\n").any(|e| e.contains("event: account") && e.contains(&format!("\"id\":\"{a}\"")) && e.contains("\"state\":\"disabled\""));
    assert!(read_until(&mut rx, &mut seen, pushed, Duration::from_secs(2)).await, "no disable pushed:\n{seen}");
    assert!(disabled_at.elapsed() < Duration::from_secs(1), "pushed {:?} after the disable", disabled_at.elapsed());
    assert!(read_until(&mut rx, &mut seen, |s: &str| s.contains("event: note") && s.contains("disabled: invalid_grant"), Duration::from_secs(2)).await, "{seen}");
    assert!(read_until(&mut rx, &mut seen, |s: &str| s.contains("event: activity"), Duration::from_secs(3)).await, "{seen}");

    // The history says what failed, who decided and what was done.
    let events: Value = http.get(format!("{url}/ui/api/accounts/{a}/events")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    let text = events.to_string();
    assert!(text.contains("\"source\":\"default\"") && text.contains("disable (invalid_grant") && text.contains("disabled: invalid_grant"), "{text}");

    let mut secrets = vec!["rt-cid".to_string(), "rt-dot".to_string(), ADMIN_KEY.to_string()];
    for (_, f) in env.account_files() {
        secrets.push(f["token"]["access_token"].as_str().unwrap_or("").to_string());
    }
    for s in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!seen.contains(s.as_str()) && !text.contains(s.as_str()), "a token in the stream");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_key_the_page_is_open_on_loopback_and_off_elsewhere() {
    let env = Env::new().await;
    env.add_account("eve@example.com", "rt-eve").await;
    without_admin_key(&env, "");
    let proxy = env.start().await;
    let http = client();
    let s = http.get(format!("{}/ui/api/session", proxy.url)).send().await.unwrap();
    let cookie = s.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let s: Value = s.json().await.unwrap();
    assert_eq!(s["access"], "open");
    assert!(s["message"].as_str().unwrap().contains("No admin key is set"), "{s}");
    let accounts = http.get(format!("{}/ui/api/accounts", proxy.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(accounts.status().as_u16(), 200);
    // The admin API stays off without a key.
    assert_eq!(http.get(format!("{}/admin/accounts", proxy.url)).send().await.unwrap().status().as_u16(), 403);
    proxy.stop().await;

    let env = Env::new().await;
    env.add_account("fay@example.com", "rt-fay").await;
    without_admin_key(&env, "api_keys = [\"sk-test\"]");
    let text = std::fs::read_to_string(env.config_path()).unwrap().replace("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:0\"");
    std::fs::write(env.config_path(), text).unwrap();
    let proxy = env.start().await;
    let url = proxy.url.replace("0.0.0.0", "127.0.0.1");
    let s: Value = http.get(format!("{url}/ui/api/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["access"], "closed", "{s}");
    let refused = http.get(format!("{url}/ui/api/accounts")).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.text().await.unwrap().contains("set server.admin_key"));
    assert!(proxy.logs().contains("the accounts page (/ui) is off"), "{}", proxy.logs());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_redirect_for_no_sign_in_is_refused() {
    let env = Env::new().await;
    env.add_account("gus@example.com", "rt-gus").await;
    let proxy = env.start().await;
    let resp = client().get(format!("{}/ui/oauth/callback?state=nope&code=abc", proxy.url)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Sign-in failed") && html.contains("over or unknown"), "{html}");
    assert_eq!(env.account_files().len(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_policy_in_force_and_a_refused_reload_with_its_line() {
    let env = Env::new().await;
    env.use_policy("[selector]\nplugin = \"least-busy\"\n");
    env.add_account("hal@example.com", "rt-hal").await;
    let proxy = env.start().await;
    let http = client();
    let url = &proxy.url;
    let (cookie, csrf) = sign_in(&http, url).await;
    let overview = || async {
        http.get(format!("{url}/ui/api/overview")).header("cookie", &cookie).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let o = overview().await;
    assert!(o["policy"]["describe"].as_str().unwrap().starts_with("selector: least-busy"), "{o}");
    assert!(o["policy"]["file"].as_str().unwrap().ends_with("policy.toml"), "{o}");
    assert_eq!(o["policy"]["last_reload"], Value::Null);
    assert_eq!(o["clients"], json!(["antigravity", "gemini-cli"]));

    // Saved broken: the watcher refuses it and the overview says where.
    env.write_policy("[selector]\nplugin = \"no-such-plugin\"\n");
    assert!(common::eventually(Duration::from_secs(10), || async { overview().await["policy"]["last_reload"]["ok"] == false }).await);
    let o = overview().await;
    let r = &o["policy"]["last_reload"];
    assert_eq!(r["line"], 2, "{o}");
    assert!(r["file"].as_str().unwrap().ends_with("policy.toml") && r["error"].as_str().unwrap().contains("no-such-plugin"), "{o}");
    assert!(o["policy"]["describe"].as_str().unwrap().starts_with("selector: least-busy"), "the running policy stays: {o}");
    let reload = http.post(format!("{url}/ui/api/reload")).header("cookie", &cookie).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(reload.status().as_u16(), 422);
    assert!(reload.text().await.unwrap().contains("line 2"));

    env.write_policy("[selector]\nplugin = \"fill-first\"\n");
    assert!(common::eventually(Duration::from_secs(10), || async { overview().await["policy"]["last_reload"]["ok"] == true }).await);
    assert!(overview().await["policy"]["describe"].as_str().unwrap().starts_with("selector: fill-first"));
    proxy.stop().await;
}
