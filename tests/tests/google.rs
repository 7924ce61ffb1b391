//! Real Google accounts out of the box: the built-in OAuth clients, each
//! profile's envelope, headers and hosts (in order, with fallback),
//! onboarding, Claude through Antigravity, and what each of Google's own
//! error bodies does to an account — against the fake Google, which refuses
//! what Google refuses.

mod common;

use std::time::Duration;

use common::{eventually, generates, Env, ADMIN_KEY};
use grantpool_tests::fake::{
    go_duration, AccountSpec, CodeSpec, Endpoint, FaultSpec, Outcome, RecordedRequest, ANTIGRAVITY_CLIENT_ID,
    GEMINI_CLI_CLIENT_ID,
};
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-pro";


/// The token calls the fake received, newest last.
async fn token_calls(env: &Env) -> Vec<RecordedRequest> {
    env.fake.requests().await.into_iter().filter(|r| r.endpoint == Some(Endpoint::Token)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_needs_no_oauth_settings_and_uses_the_built_in_client() {
    let env = Env::new().await;
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(!config.contains("client_id"), "no [oauth] client settings at all:\n{config}");
    for (client, client_id, email) in [(None, ANTIGRAVITY_CLIENT_ID, "ana@example.com"), (Some("gemini-cli"), GEMINI_CLI_CLIENT_ID, "gus@example.com")] {
        env.fake.add_account(AccountSpec::new(email, format!("rt-{email}"))).await;
        let mut args = vec!["--config".to_string(), env.config_path().display().to_string(), "accounts".into(), "login".into(), "--no-browser".into()];
        if let Some(c) = client {
            args.extend(["--client".into(), c.into()]);
        }
        let mut child = tokio::process::Command::new(common::binary())
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut url = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim_start().starts_with("http") {
                url = Some(line.trim().to_string());
                break;
            }
        }
        let url = reqwest::Url::parse(&url.expect("login prints the URL")).unwrap();
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], client_id, "the built-in client of {client:?}");
        assert!(q["scope"].contains("https://www.googleapis.com/auth/cloud-platform"), "{q:?}");
        assert_eq!(client.is_none(), q["scope"].contains("auth/cclog"), "Antigravity's scopes for Antigravity only: {q:?}");
        let code = format!("code-{email}");
        env.fake
            .add_code(CodeSpec::new(code.clone(), email).client_id(client_id).code_challenge(q["code_challenge"].clone()).refresh_token(format!("rt-login-{email}")))
            .await
            .unwrap();
        let page = reqwest::get(format!("{}?code={code}&state={}", q["redirect_uri"], q["state"])).await.unwrap().text().await.unwrap();
        assert!(page.contains("Signed in"), "{page}");
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
        assert!(status.success());
        let id = env.account_id(email).expect("account written");
        let file = env.account_file(&id);
        assert_eq!(file["token"]["oauth_client"], client.unwrap_or("antigravity"), "{file}");
    }
    // Both serve, each refreshing with its own client.
    let proxy = env.start().await;
    for _ in 0..4 {
        assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn antigravity_manager_accounts_refresh_and_serve_with_the_antigravity_client() {
    let env = Env::new().await;
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("accounts")).unwrap();
    for (email, rt) in [("amy@example.com", "1//rt-amy"), ("ben@example.com", "1//rt-ben")] {
        env.fake.add_account(AccountSpec::new(email, rt)).await;
        // An Antigravity-Manager account file: no client named, an expired access token.
        let file = json!({"id": format!("ag-{email}"), "email": email, "name": "x",
            "token": {"access_token": "ya29.stale", "refresh_token": rt, "expires_in": 3599, "expiry_timestamp": 1_700_000_000, "token_type": "Bearer"},
            "disabled": false, "proxy_disabled": false, "created_at": 1_690_000_000, "last_used": 1_699_999_000,
            "quota": {"models": [], "last_updated": 0, "is_forbidden": false}});
        std::fs::write(src.path().join(format!("accounts/{email}.json")), file.to_string()).unwrap();
    }
    let (ok, out, err) = env.cli(&["accounts", "import", src.path().to_str().unwrap()]).await;
    assert!(ok && out.contains("2 added"), "{out}{err}");
    for (_, f) in env.account_files() {
        assert_eq!(f["token"]["oauth_client"], "antigravity", "{f}");
    }
    let proxy = env.start().await;
    let mut served = std::collections::HashSet::new();
    for _ in 0..4 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!(status, 200, "{body}");
        served.insert(account.unwrap());
    }
    assert_eq!(served.len(), 2, "both imported accounts serve");
    for call in token_calls(&env).await {
        assert_eq!(call.body["client_id"], ANTIGRAVITY_CLIENT_ID, "refreshed with Antigravity's client: {:?}", call.body);
        assert_eq!(call.status, Some(200));
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_onboarded_account_is_onboarded_and_serves() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("neo@example.com", "rt-neo").never_onboarded().onboard_polls(3)).await;
    let (ok, out, err) = env.cli(&["accounts", "add", "--refresh-token", "rt-neo"]).await;
    assert!(ok, "{out}{err}");
    let id = env.account_id("neo@example.com").unwrap();
    assert!(env.account_file(&id)["token"].get("project_id").is_none());
    let proxy = env.start().await;
    let (status, account, body) = proxy.gemini(MODEL, "hello").await;
    assert_eq!((status, account.as_deref()), (200, Some(id.as_str())), "{body}\n{}", proxy.logs());
    let stats = env.fake.stats().await;
    assert!(stats.onboard_user_calls >= 1 && stats.operation_calls >= 1, "onboardUser, then its operation polled: {stats:?}");
    let onboard = env.fake.requests().await.into_iter().find(|r| r.endpoint == Some(Endpoint::OnboardUser)).unwrap();
    assert_eq!(onboard.body["tierId"], "free-tier");
    assert!(onboard.body.get("cloudaicompanionProject").is_none(), "the free tier takes no project: {:?}", onboard.body);
    let project = env.account_file(&id)["token"]["project_id"].as_str().unwrap().to_string();
    assert!(!project.is_empty());
    // Kept: the next request asks nothing again.
    let before = env.fake.stats().await.onboard_user_calls;
    assert_eq!(proxy.gemini(MODEL, "again").await.0, 200);
    assert_eq!(env.fake.stats().await.onboard_user_calls, before);
    assert!(proxy.logs().contains("onboarding it"), "{}", proxy.logs());
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ineligible_account_goes_off_the_proxy_with_googles_words_never_disabled() {
    let env = Env::new().await;
    let ok = env.add_account("ok@example.com", "rt-ok").await;
    env.fake.add_account(AccountSpec::new("val@example.com", "rt-val").ineligible("VALIDATION_REQUIRED")).await;
    env.fake.add_account(AccountSpec::new("loc@example.com", "rt-loc").ineligible("UNSUPPORTED_LOCATION")).await;
    for rt in ["rt-val", "rt-loc"] {
        assert!(env.cli(&["accounts", "add", "--refresh-token", rt]).await.0);
    }
    let proxy = env.start().await;
    for _ in 0..4 {
        let (status, account, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!((status, account.as_deref()), (200, Some(ok.as_str())), "the healthy account answers: {body}");
    }
    for (email, words) in [("val@example.com", "VALIDATION_REQUIRED"), ("loc@example.com", "UNSUPPORTED_LOCATION")] {
        let id = env.account_id(email).unwrap();
        let file = env.account_file(&id);
        assert_eq!(file["disabled"], false, "never disabled: {file}");
        assert_eq!(file["proxy_disabled"], true, "{file}");
        let reason = file["proxy_disabled_reason"].as_str().unwrap();
        assert!(reason.contains(words), "{reason}");
        if words == "VALIDATION_REQUIRED" {
            assert!(reason.contains("https://"), "the validation URL is in the reason: {reason}");
        }
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_profile_sends_its_envelope_headers_and_hosts_in_order() {
    let env = Env::with_hosts(&["daily", "prod"]).await;
    let ag = env.add_account("ag@example.com", "rt-ag").await;
    env.fake.add_account(AccountSpec::new("gc@example.com", "rt-gc").gemini_cli()).await;
    assert!(env.cli(&["accounts", "add", "--refresh-token", "rt-gc", "--client", "gemini-cli"]).await.0);
    let gc = env.account_id("gc@example.com").unwrap();
    let proxy = env.start().await;
    for _ in 0..4 {
        assert_eq!(proxy.gemini(MODEL, "hi").await.0, 200);
    }
    let calls = generates(&env).await;
    let of = |email: &str| calls.iter().filter(|r| r.email.as_deref() == Some(email)).collect::<Vec<_>>();
    let (ag_calls, gc_calls) = (of("ag@example.com"), of("gc@example.com"));
    assert!(!ag_calls.is_empty() && !gc_calls.is_empty(), "both accounts served: {ag:?} {gc:?}");
    for r in ag_calls {
        assert_eq!(r.host, "daily", "Antigravity tries its daily host first");
        assert!(r.user_agent.as_deref().unwrap().starts_with("antigravity/hub/"), "{:?}", r.user_agent);
        let b = &r.body;
        assert_eq!((b["userAgent"].as_str(), b["requestType"].as_str()), (Some("antigravity"), Some("agent")), "{b}");
        assert!(b["requestId"].as_str().unwrap().starts_with("agent-"), "{b}");
        assert!(!b["request"]["sessionId"].as_str().unwrap().is_empty(), "{b}");
        assert!(b["project"].as_str().is_some_and(|p| !p.is_empty()), "{b}");
        assert_eq!(r.outcome, Outcome::Served);
    }
    for r in gc_calls {
        assert_eq!(r.host, "daily", "the configured hosts are tried in order for every profile");
        assert!(r.user_agent.as_deref().unwrap().starts_with("GeminiCLI/"), "{:?}", r.user_agent);
        let b = &r.body;
        assert!(!b["user_prompt_id"].as_str().unwrap().is_empty(), "{b}");
        assert!(!b["request"]["session_id"].as_str().unwrap().is_empty(), "{b}");
        assert!(b.get("userAgent").is_none() && b.get("requestType").is_none(), "{b}");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_host_answers_after_a_5xx_or_a_rate_limit_but_not_a_quota() {
    let env = Env::with_hosts(&["daily", "prod"]).await;
    // An enterprise account: a consumer one stays on daily (google2026.rs).
    env.fake.add_account(AccountSpec::new("hop@example.com", "rt-hop").enterprise(true)).await;
    assert!(env.cli(&["accounts", "add", "--refresh-token", "rt-hop"]).await.0);
    let id = env.account_id("hop@example.com").unwrap();
    let proxy = env.start().await;
    for (fault, next) in [
        (FaultSpec::status(Endpoint::Generate, 503), true),
        (FaultSpec::rate_limit_exceeded(Endpoint::Generate, "479.417207ms"), true),
        (FaultSpec::network(Endpoint::Generate), true),
        (FaultSpec::quota_exhausted(Endpoint::Generate, "3600s").for_model(MODEL), false),
    ] {
        env.fake.reset_stats().await;
        env.fake.push_fault(fault.on_host("daily").times(1)).await.unwrap();
        let (status, account, body) = proxy.gemini(MODEL, "hop").await;
        let hosts: Vec<String> = generates(&env).await.into_iter().map(|r| r.host).collect();
        if next {
            assert_eq!((status, account.as_deref()), (200, Some(id.as_str())), "{body}");
            assert_eq!(hosts, ["daily", "prod"], "then the next host");
        } else {
            assert_eq!(status, 429, "a quota is the account's on every host: no second host, {body}");
            assert_eq!(hosts, ["daily"]);
            break;
        }
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_through_antigravity_is_shaped_as_its_backend_wants() {
    let env = Env::new().await;
    env.add_account("cla@example.com", "rt-cla").await;
    let proxy = env.start().await;
    let body = json!({
        "model": "claude-sonnet-4-6", "max_tokens": 200000,
        "thinking": {"type": "enabled", "budget_tokens": 500},
        "tools": [{"name": "Bash", "description": "run", "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": false,
            "properties": {"command": {"type": "string"}, "args": {"description": "anything"}}, "required": ["command"]}}],
        "messages": [{"role": "user", "content": "call:Bash now"}]
    });
    let resp = proxy.http.post(format!("{}/v1/messages", proxy.url)).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}\n{}", proxy.logs());
    let sent = generates(&env).await.pop().unwrap();
    let r = &sent.body["request"];
    assert_eq!(r["toolConfig"]["functionCallingConfig"]["mode"], "VALIDATED", "{r}");
    let decl = &r["tools"][0]["functionDeclarations"][0];
    assert!(decl.get("parametersJsonSchema").is_none(), "{decl}");
    assert_eq!(decl["parameters"]["properties"]["args"]["type"], "string", "an any-value property gets a type: {decl}");
    let gen = &r["generationConfig"];
    assert_eq!(gen["maxOutputTokens"], 64000, "within the model's limit: {gen}");
    assert_eq!(gen["thinkingConfig"]["thinkingBudget"], 1024, "Claude's smallest budget: {gen}");
    assert!(r.get("safetySettings").is_none());
    proxy.stop().await;
}

/// The account view in the admin API.
async fn view(env: &Env, proxy: &common::Proxy, email: &str) -> Value {
    proxy.admin_account(&env.account_id(email).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_error_bodies_decide_what_happens_to_the_account() {
    let env = Env::new().await;
    for e in ["rl", "qe", "mc", "vr", "sd", "un", "spare"] {
        env.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await;
    }
    let proxy = env.start().await;
    let week = go_duration(Duration::from_secs(166 * 3600));
    let answers = [
        (FaultSpec::rate_limit_exceeded(Endpoint::Generate, "20s"), "rl@example.com"),
        (FaultSpec::quota_exhausted(Endpoint::Generate, week).for_model(MODEL), "qe@example.com"),
        (FaultSpec::model_capacity_exhausted(Endpoint::Generate).for_model(MODEL), "mc@example.com"),
        (FaultSpec::validation_required(Endpoint::Generate).validation_url("https://accounts.google.com/signin/continue?x=vr"), "vr@example.com"),
        (FaultSpec::service_disabled(Endpoint::Generate), "sd@example.com"),
        (FaultSpec::unauthenticated(Endpoint::Generate), "un@example.com"),
    ];
    // Each account meets its answer in turn; the client never sees one.
    for (fault, email) in answers {
        env.fake.push_fault(fault.for_email(email).times(1)).await.unwrap();
        let done = eventually(Duration::from_secs(20), || async {
            let (status, _, body) = proxy.gemini(MODEL, "go").await;
            assert_eq!(status, 200, "a client never sees an error while a healthy account exists: {body}");
            env.fake.pending_faults().await.is_empty()
        })
        .await;
        assert!(done, "{email}'s answer never came: {:?}", env.fake.pending_faults().await);
    }
    let t = common::now_ms();

    let rl = view(&env, &proxy, "rl@example.com").await;
    assert_eq!(rl["state"], "cooling_down", "RATE_LIMIT_EXCEEDED cools the whole account: {rl}");
    assert!(rl["until_ms"].as_u64().unwrap() <= t + 20_000, "for the short retryDelay: {rl}");

    let qe = view(&env, &proxy, "qe@example.com").await;
    assert_eq!(qe["state"], "active", "QUOTA_EXHAUSTED is that model's only: {qe}");
    let cd = &qe["model_cooldowns"][0];
    assert_eq!(cd["model"], MODEL, "{qe}");
    let until = cd["until_ms"].as_u64().unwrap();
    assert!(until <= t + 3_600_000 && until >= t + 3_400_000, "a 166-hour reset is probed again after the ceiling (1 h): {qe}");
    assert!(cd["reason"].as_str().unwrap().contains("166h"), "{qe}");

    let mc = view(&env, &proxy, "mc@example.com").await;
    assert_eq!(mc["model_cooldowns"][0]["model"], MODEL, "MODEL_CAPACITY_EXHAUSTED cools the model: {mc}");

    for (email, words) in [("vr@example.com", "https://accounts.google.com/signin/continue?x=vr"), ("sd@example.com", "SERVICE_DISABLED")] {
        let v = view(&env, &proxy, email).await;
        assert_eq!(v["state"], "proxy_disabled", "{v}");
        assert!(v["reason"].as_str().unwrap().contains(words), "{v}");
        assert_eq!(env.account_file(&env.account_id(email).unwrap())["disabled"], false, "never disabled");
    }

    let un = view(&env, &proxy, "un@example.com").await;
    assert_eq!(un["state"], "active", "a 401 refreshes the token and retries: {un}");
    let refreshed = token_calls(&env).await.into_iter().filter(|r| r.email.as_deref() == Some("un@example.com")).count();
    assert!(refreshed >= 2, "added, then refreshed after the 401: {refreshed}");
    let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("grantpool_disables_total 0"), "no account was disabled:\n{metrics}");
    proxy.stop().await;
}

/// `upstream.http2_prior_knowledge`: generate calls to a plain-http
/// upstream go out in HTTP/2 (h2c) and are answered; without it, HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_speaks_h2c_to_a_plain_http_upstream() {
    for (h2, version) in [(false, "HTTP/1.1"), (true, "HTTP/2.0")] {
        let env = Env::new().await;
        env.add_account("h2@example.com", "rt-h2").await;
        let text = std::fs::read_to_string(env.config_path()).unwrap();
        std::fs::write(env.config_path(), text.replace("timeout_secs = 30\n", &format!("timeout_secs = 30\nhttp2_prior_knowledge = {h2}\n"))).unwrap();
        let proxy = env.start().await;
        let (status, _, body) = proxy.gemini(MODEL, "hi").await;
        assert_eq!(status, 200, "{body}");
        let generate: Vec<String> = env
            .fake
            .requests()
            .await
            .into_iter()
            .filter(|r| r.endpoint == Some(Endpoint::Generate))
            .map(|r| r.version)
            .collect();
        assert_eq!(generate, [version], "http2_prior_knowledge = {h2}");
        proxy.stop().await;
    }
}
