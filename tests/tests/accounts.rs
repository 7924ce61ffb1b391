//! Accounts, end to end: the CLI, the admin API, hand edits and the
//! running pool; corrupted files; Antigravity-Manager import; login (PKCE).

mod common;

use std::time::Duration;

use common::{eventually, Env, ADMIN_KEY};
use grantpool_tests::fake::{AccountSpec, CodeSpec};

const MODEL: &str = "gemini-2.5-pro";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_enable_disable_remove() {
    let env = Env::new().await;
    // A refused token is a clear error and writes nothing.
    let (ok, _, err) = env.cli(&["accounts", "add", "--refresh-token", "rt-unknown"]).await;
    assert!(!ok);
    assert!(err.contains("refused the refresh token") && err.contains("nothing was written"), "{err}");
    assert!(env.account_files().is_empty());
    assert!(!err.contains("rt-unknown"), "no token in errors");

    let id = env.add_account("pat@example.com", "rt-pat").await;
    let file = env.account_file(&id);
    assert_eq!(file["email"], "pat@example.com", "email from userinfo");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.data_dir().join("accounts").join(format!("{id}.json"))).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (ok, out, _) = env.cli(&["accounts", "list"]).await;
    assert!(ok && out.contains("pat@example.com") && out.contains("active"), "{out}");
    assert!(!out.contains("rt-pat") && !out.contains("ya29"), "no token in listings: {out}");
    let (_, json, _) = env.cli(&["accounts", "list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["accounts"][0]["state"], "active");
    assert!(!json.contains("rt-pat") && !json.contains("ya29"));

    let proxy = env.start().await;
    let (ok, out, _) = env.cli(&["accounts", "disable", "pat@example.com"]).await;
    assert!(ok, "{out}");
    assert!(
        eventually(Duration::from_secs(5), || async { proxy.gemini(MODEL, "x").await.0 == 503 }).await,
        "the running proxy sees the CLI's change"
    );
    let (_, _, body) = proxy.gemini(MODEL, "x").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("proxy_disabled"), "{body}");
    let (ok, out, _) = env.cli(&["accounts", "enable", &id]).await;
    assert!(ok && out.contains("back on the proxy"), "{out}");
    assert!(eventually(Duration::from_secs(5), || async { proxy.gemini(MODEL, "x").await.0 == 200 }).await);

    // Enabling a disabled (dead) account says a new token is needed.
    env.edit_account(&id, |v| {
        v["disabled"] = true.into();
        v["disabled_reason"] = "invalid_grant: test".into();
    });
    let (_, out, _) = env.cli(&["accounts", "enable", "pat@example.com"]).await;
    assert!(out.contains("still DISABLED") && out.contains("accounts add --refresh-token"), "{out}");

    let (ok, _, _) = env.cli(&["accounts", "remove", &id]).await;
    assert!(ok);
    assert!(env.account_files().is_empty());
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, _, b) = proxy.gemini(MODEL, "x").await;
            b.to_string().contains("no accounts in the pool")
        })
        .await
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_copied_in_by_hand_is_served_at_once() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("quin@example.com", "rt-quin")).await;
    let proxy = env.start().await;
    let file = serde_json::json!({
        "id": "hand-made", "email": "quin@example.com",
        "token": {"access_token": "", "refresh_token": "rt-quin", "expiry_timestamp": 0, "token_type": "Bearer"},
        "disabled": false, "proxy_disabled": false, "created_at": 1_700_000_000,
        "custom_field": {"kept": true}
    });
    let tmp = env.data_dir().join("hand-made.tmp-copy");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    std::fs::rename(&tmp, env.data_dir().join("accounts/hand-made.json")).unwrap();
    let served = eventually(Duration::from_secs(5), || async {
        let (status, account, _) = proxy.gemini(MODEL, "x").await;
        status == 200 && account.as_deref() == Some("hand-made")
    })
    .await;
    assert!(served, "{}", proxy.logs());
    // The proxy rewrote it (refreshed token, project) and kept the unknown field.
    let v = env.account_file("hand-made");
    assert_eq!(v["custom_field"]["kept"], true, "{v}");
    assert!(v["token"]["expiry_timestamp"].as_i64().unwrap() > 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_file_is_skipped_and_never_touched() {
    let env = Env::new().await;
    let good = env.add_account("ray@example.com", "rt-ray").await;
    let bad_path = env.data_dir().join("accounts/broken.json");
    let bad_bytes = b"{\"email\": \"broken@example.com\", \"token\": {\"refresh_token\": \"rt-x\"".to_vec();
    std::fs::write(&bad_path, &bad_bytes).unwrap();

    let proxy = env.start().await;
    assert!(proxy.logs().contains("broken.json"), "the warning names the file:\n{}", proxy.logs());
    let (status, account, _) = proxy.gemini(MODEL, "x").await;
    assert_eq!((status, account.as_deref()), (200, Some(good.as_str())));
    // A reload, a list and an upsert later, the bad file is byte for byte the same.
    let r = proxy.http.post(format!("{}/admin/reload", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert!(r.status().is_success());
    let (_, out, _) = env.cli(&["accounts", "list"]).await;
    assert!(out.contains("UNREADABLE") && out.contains("broken.json"), "{out}");
    let (_, _, _) = env.cli(&["accounts", "add", "--refresh-token", "rt-ray"]).await;
    assert_eq!(std::fs::read(&bad_path).unwrap(), bad_bytes);
    proxy.stop().await;
    assert_eq!(std::fs::read(&bad_path).unwrap(), bad_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_antigravity_manager() {
    let env = Env::new().await;
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("accounts")).unwrap();
    let ag = |email: &str, rt: &str, disabled: bool| {
        serde_json::json!({
            "id": format!("ag-{rt}"), "email": email, "name": "Someone",
            "token": {"access_token": "ya29.old", "refresh_token": rt, "expires_in": 3599,
                      "expiry_timestamp": 1_700_000_000, "token_type": "Bearer", "project_id": "proj-1"},
            "disabled": disabled, "disabled_reason": if disabled { "invalid_grant: revoked" } else { "" },
            "disabled_at": if disabled { 1_700_000_000 } else { 0 },
            "proxy_disabled": false, "created_at": 1_690_000_000, "last_used": 1_699_999_000,
            "quota": {"models": [], "last_updated": 0, "is_forbidden": false}
        })
    };
    std::fs::write(src.path().join("accounts/a.json"), ag("sue@example.com", "rt-sue", false).to_string()).unwrap();
    std::fs::write(src.path().join("accounts/b.json"), ag("tom@example.com", "rt-tom", true).to_string()).unwrap();
    std::fs::write(src.path().join("accounts/c.json"), "not json").unwrap();
    let path = src.path().to_str().unwrap();
    let (ok, out, err) = env.cli(&["accounts", "import", path]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("2 added") && out.contains("1 skipped"), "{out}");
    assert!(err.contains("c.json"), "the unreadable file is reported: {err}");
    let tom = env.account_id("tom@example.com").unwrap();
    let v = env.account_file(&tom);
    assert_eq!(v["disabled"], true, "an imported disabled account stays disabled");
    assert_eq!(v["token"]["project_id"], "proj-1");
    let (_, out, _) = env.cli(&["accounts", "import", path]).await;
    assert!(out.contains("0 added"), "idempotent: {out}");
    assert_eq!(env.account_files().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_pkce_over_a_loopback_redirect() {
    let env = Env::new().await;
    env.fake.add_account(AccountSpec::new("uma@example.com", "rt-uma")).await;
    let mut child = tokio::process::Command::new(common::binary())
        .arg("--config")
        .arg(env.config_path())
        .args(["accounts", "login", "--no-browser"])
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
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["access_type"], "offline");
    // Google would now redirect the browser back with a code.
    env.fake
        .add_code(CodeSpec::new("the-code", "uma@example.com").code_challenge(q["code_challenge"].clone()).refresh_token("rt-uma-login"))
        .await
        .unwrap();
    let redirect = format!("{}?code=the-code&state={}", q["redirect_uri"], q["state"]);
    let page = reqwest::get(redirect).await.unwrap().text().await.unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    let id = env.account_id("uma@example.com").expect("account written");
    assert_eq!(env.account_file(&id)["token"]["refresh_token"], "rt-uma-login");
}
