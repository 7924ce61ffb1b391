//! Outbound proxies end to end, through real proxy servers: Debian's Dante
//! (SOCKS5, the account's names resolved by the proxy) and tinyproxy (HTTP
//! CONNECT with a user and password), each started by the test on a free
//! loopback port. Each proxy leaves from its own loopback address
//! (127.0.0.3 for Dante, 127.0.0.2 for tinyproxy; grantpool's direct calls
//! come from 127.0.0.1), so the fake Google's record of each call's peer
//! says which way it came.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{eventually, Env, ADMIN_KEY};
use grantpool_tests::fake::{AccountSpec, Endpoint};
use serde_json::Value;

const MODEL: &str = "gemini-2.5-pro";
const PASSWORD: &str = "s3cret-proxy-pw";
const SOCKS_OUT: &str = "127.0.0.3";
const HTTP_OUT: &str = "127.0.0.2";
const DIRECT_OUT: &str = "127.0.0.1";

/// A proxy server of one test, killed when dropped.
struct Daemon {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (./dev test installs Debian's dante-server and tinyproxy)");
}

fn wait_listening(port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Dante on a free port, connecting out from [`SOCKS_OUT`].
fn dante(dir: &Path) -> Daemon {
    let port = free_port();
    let log = dir.join("danted.log");
    let conf = dir.join("danted.conf");
    std::fs::write(
        &conf,
        format!(
            "logoutput: {log}\ninternal: 127.0.0.1 port = {port}\nexternal: {SOCKS_OUT}\nclientmethod: none\nsocksmethod: none\n\
             user.privileged: root\nuser.unprivileged: nobody\n\
             client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}}\n\
             socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: connect error\n}}\n",
            log = log.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(program("danted"))
        .arg("-f")
        .arg(&conf)
        .args(["-N", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start danted");
    wait_listening(port, "danted");
    Daemon { child, port, log }
}

/// tinyproxy on a free port, asking for `alice` / [`PASSWORD`], connecting
/// out from [`HTTP_OUT`].
fn tinyproxy(dir: &Path) -> Daemon {
    let port = free_port();
    let log = dir.join("tinyproxy.log");
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nBind {HTTP_OUT}\nTimeout 30\nLogFile \"{log}\"\nLogLevel Connect\nMaxClients 50\n\
             Allow 127.0.0.1\nBasicAuth alice {PASSWORD}\nDisableViaHeader Yes\n",
            log = log.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(program("tinyproxy"))
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tinyproxy");
    wait_listening(port, "tinyproxy");
    Daemon { child, port, log }
}

/// An environment whose upstream is named `localhost` (so that a SOCKS5
/// proxy resolves it), with proxies `socks`, `office` and `dead` (a port
/// nothing listens on).
async fn env_with_proxies(socks: &Daemon, http: &Daemon, dead_port: u16) -> Env {
    let mut env = Env::new().await;
    let port = env.fake.base_url().rsplit(':').next().unwrap().to_string();
    env.upstream_hosts = vec![format!("http://localhost:{port}")];
    env.extra_config = format!(
        "\n[egress]\ncheck_secs = 1\n\n[egress.proxies.socks]\nurl = \"socks5h://127.0.0.1:{}\"\n\n\
         [egress.proxies.office]\nurl = \"http://alice:{PASSWORD}@127.0.0.1:{}\"\n\n\
         [egress.proxies.dead]\nurl = \"socks5h://127.0.0.1:{dead_port}\"\n",
        socks.port, http.port
    );
    // Round-robin, and quota polled every second (every account's quota calls).
    env.use_policy("[selector]\nplugin = \"round-robin\"\n\n[[classifier]]\nplugin = \"default\"\n\n[quota_protection]\nthreshold = 0.05\nrefresh_secs = 1\n");
    env
}

async fn add_with_egress(env: &Env, email: &str, egress: Option<&str>) -> String {
    let rt = format!("rt-{email}");
    env.fake.add_account(AccountSpec::new(email, rt.as_str())).await;
    let mut args = vec!["accounts", "add", "--refresh-token", rt.as_str()];
    if let Some(e) = egress {
        args.extend(["--egress", e]);
    }
    let (ok, out, err) = env.cli(&args).await;
    assert!(ok, "accounts add {email} via {egress:?}: {out}\n{err}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}\n{err}");
    env.account_id(email).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_reaches_google_through_its_own_proxy_only() {
    let dir = tempfile::tempdir().unwrap();
    let (socks, http) = (dante(dir.path()), tinyproxy(dir.path()));
    let dead_port = free_port();
    let env = env_with_proxies(&socks, &http, dead_port).await;

    // An unknown proxy is refused, naming the configured ones.
    env.fake.add_account(AccountSpec::new("x@example.com", "rt-x")).await;
    let (ok, out, err) = env.cli(&["accounts", "add", "--refresh-token", "rt-x", "--egress", "nope"]).await;
    assert!(!ok, "{out}");
    assert!(err.contains("nope") && err.contains("dead, office, socks"), "{err}");

    let a = add_with_egress(&env, "a@example.com", Some("socks")).await;
    let b = add_with_egress(&env, "b@example.com", Some("office")).await;
    let c = add_with_egress(&env, "c@example.com", None).await;
    assert_eq!(env.account_file(&a)["egress"], "socks");
    assert_eq!(env.account_file(&b)["egress"], "office");
    assert!(env.account_file(&c).get("egress").is_none(), "a direct account's file names no proxy");
    // Served, every token is refreshed again (through the account's way out).
    for id in [&a, &b, &c] {
        env.expire_token(id);
    }

    let proxy = env.start().await;
    for i in 0..9 {
        let (status, _, body) = proxy.gemini(MODEL, &format!("hello {i}")).await;
        assert_eq!(status, 200, "{body}");
    }
    // Every account's token refresh, userinfo (at `accounts add`),
    // loadCodeAssist, generate and quota poll was seen.
    let wanted = [Endpoint::Token, Endpoint::Userinfo, Endpoint::LoadCodeAssist, Endpoint::Generate, Endpoint::FetchAvailableModels];
    let seen_all = eventually(Duration::from_secs(15), || async {
        let calls = env.fake.requests().await;
        ["a@example.com", "b@example.com", "c@example.com"]
            .iter()
            .all(|e| wanted.iter().all(|w| calls.iter().any(|r| r.email.as_deref() == Some(*e) && r.endpoint == Some(*w))))
    })
    .await;
    let calls = env.fake.requests().await;
    assert!(seen_all, "every kind of call for every account: {calls:#?}");
    let mut counted = 0;
    for r in &calls {
        let want = match r.email.as_deref() {
            Some("a@example.com") => SOCKS_OUT,
            Some("b@example.com") => HTTP_OUT,
            Some("c@example.com") => DIRECT_OUT,
            _ => continue,
        };
        counted += 1;
        assert_eq!(r.peer.as_deref(), Some(want), "{} {:?} for {:?} came from the wrong place", r.method, r.endpoint, r.email);
    }
    assert!(counted >= 15, "{counted} calls checked");
    // The proxies saw the calls: Dante resolved `localhost` itself.
    let dante_log = std::fs::read_to_string(&socks.log).unwrap_or_default();
    assert!(dante_log.contains("tcp/connect"), "{dante_log}");
    let tiny_log = std::fs::read_to_string(&http.log).unwrap_or_default();
    assert!(tiny_log.contains("CONNECT"), "{tiny_log}");

    // Shown, never with the password: the admin API, the metrics, the log,
    // `accounts list`.
    let admin = proxy.admin_accounts().await;
    let text = admin.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    let by_email = |e: &str| admin["accounts"].as_array().unwrap().iter().find(|v| v["email"] == e).cloned().unwrap();
    assert_eq!(by_email("a@example.com")["egress"], "socks");
    assert_eq!(by_email("b@example.com")["egress_proxy"]["name"], "office");
    assert_eq!(by_email("b@example.com")["egress_proxy"]["healthy"], true);
    assert!(by_email("c@example.com").get("egress_proxy").is_none(), "{admin}");
    let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("grantpool_egress_up{proxy=\"office\"} 1"), "{metrics}");
    assert!(metrics.contains("grantpool_egress_up{proxy=\"socks\"} 1"), "{metrics}");
    assert!(!metrics.contains(PASSWORD));
    let (ok, out, err) = env.cli(&["accounts", "list"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("egress office (http://127.0.0.1:") && out.contains("healthy"), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}");
    assert!(!proxy.logs().contains(PASSWORD), "the log holds the proxy's password");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_proxy_fails_over_to_another_account_and_is_shown_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let (socks, http) = (dante(dir.path()), tinyproxy(dir.path()));
    let dead_port = free_port();
    let env = env_with_proxies(&socks, &http, dead_port).await;
    let d = add_with_egress(&env, "d@example.com", None).await;
    add_with_egress(&env, "e@example.com", None).await;
    // Moved onto a proxy nothing answers (its token is due: the refresh
    // must go through it).
    let (ok, out, err) = env.cli(&["accounts", "edit", "d@example.com", "--egress", "dead"]).await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(env.account_file(&d)["egress"], "dead");
    let (ok, _, err) = env.cli(&["accounts", "edit", "d@example.com", "--egress", "nope"]).await;
    assert!(!ok && err.contains("dead, office, socks"), "{err}");
    env.expire_token(&d);
    let before = env.fake.requests().await.len();

    let proxy = env.start().await;
    for i in 0..6 {
        let (status, account, body) = proxy.gemini(MODEL, &format!("over {i}")).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(account.as_deref(), Some(d.as_str()), "served by the account behind the dead proxy");
    }
    // Nothing for d left directly (or at all).
    let calls = env.fake.requests().await;
    assert!(calls[before.min(calls.len())..].iter().all(|r| r.email.as_deref() != Some("d@example.com")), "{calls:#?}");
    // Unhealthy on the admin API and in the metrics; the account is not
    // disabled (an unreachable proxy is no verdict on it).
    let unhealthy = eventually(Duration::from_secs(10), || async {
        let v = proxy.admin_account(&d).await;
        v["egress_proxy"]["healthy"] == false
    })
    .await;
    let v = proxy.admin_account(&d).await;
    assert!(unhealthy, "{v}");
    assert_ne!(v["state"], "disabled", "{v}");
    assert!(v["egress_proxy"]["error"].as_str().is_some_and(|e| e.contains(&dead_port.to_string())), "{v}");
    let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("grantpool_egress_up{proxy=\"dead\"} 0"), "{metrics}");
    let (ok, out, _) = env.cli(&["accounts", "list"]).await;
    assert!(ok);
    assert!(out.contains("egress dead") && out.contains("UNREACHABLE"), "{out}");
    assert!(!out.contains(PASSWORD) && !proxy.logs().contains(PASSWORD));
    let admin: Value = proxy.admin_accounts().await;
    assert!(!admin.to_string().contains(PASSWORD));
    // The accounts page's rows: the proxy's name and health, no password.
    let http = reqwest::Client::new();
    let resp = http.post(format!("{}/ui/api/session", proxy.url)).json(&serde_json::json!({"admin_key": ADMIN_KEY})).send().await.unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page: Value = http.get(format!("{}/ui/api/accounts", proxy.url)).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert!(!page.to_string().contains(PASSWORD), "{page}");
    let rows = page.get("accounts").and_then(|a| a.as_array()).or_else(|| page.as_array()).cloned().unwrap_or_default();
    let row = rows.iter().find(|r| r["id"] == d.as_str()).unwrap_or_else(|| panic!("{page}"));
    assert_eq!(row["egress"]["name"], "dead", "{row}");
    assert_eq!(row["egress"]["healthy"], false, "{row}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_egress_all_proxy_applies_to_every_call_generation_included() {
    let dir = tempfile::tempdir().unwrap();
    let socks = dante(dir.path());
    let mut env = Env::new().await;
    let port = env.fake.base_url().rsplit(':').next().unwrap().to_string();
    env.upstream_hosts = vec![format!("http://localhost:{port}")];
    env.use_policy("[selector]\nplugin = \"round-robin\"\n\n[[classifier]]\nplugin = \"default\"\n\n[quota_protection]\nthreshold = 0.05\nrefresh_secs = 1\n");
    let f = add_with_egress(&env, "f@example.com", None).await;
    env.expire_token(&f);
    let before = env.fake.requests().await.iter().map(|r| r.seq).max().unwrap_or(0);
    let all_proxy = format!("socks5h://127.0.0.1:{}", socks.port);
    let unset = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "all_proxy"];
    let mut envs: Vec<(&str, Option<&str>)> = unset.iter().map(|k| (*k, None)).collect();
    envs.push(("ALL_PROXY", Some(all_proxy.as_str())));
    let proxy = common::Proxy::start_config_env(&env.config_path(), &envs).await;
    for i in 0..3 {
        let (status, _, body) = proxy.gemini(MODEL, &format!("env {i}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let wanted = [Endpoint::Token, Endpoint::LoadCodeAssist, Endpoint::Generate, Endpoint::FetchAvailableModels];
    let seen = eventually(Duration::from_secs(15), || async {
        let calls = env.fake.requests().await;
        wanted.iter().all(|w| calls.iter().any(|r| r.seq > before && r.endpoint == Some(*w)))
    })
    .await;
    let calls: Vec<_> = env.fake.requests().await.into_iter().filter(|r| r.seq > before).collect();
    assert!(seen, "{calls:#?}");
    for r in &calls {
        assert_eq!(r.peer.as_deref(), Some(SOCKS_OUT), "{} {:?} left directly despite ALL_PROXY", r.method, r.endpoint);
    }
    proxy.stop().await;
}

/// Where account `email`'s generate calls after `before` came from.
async fn generate_peers(env: &Env, email: &str, before: u64) -> Vec<String> {
    let calls = env.fake.requests().await;
    calls
        .iter()
        .filter(|r| r.seq > before && r.email.as_deref() == Some(email) && r.endpoint == Some(Endpoint::Generate))
        .map(|r| r.peer.clone().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_sets_and_clears_an_accounts_proxy_and_its_next_call_goes_that_way() {
    let dir = tempfile::tempdir().unwrap();
    let (socks, http) = (dante(dir.path()), tinyproxy(dir.path()));
    let dead_port = free_port();
    let env = env_with_proxies(&socks, &http, dead_port).await;
    let h = add_with_egress(&env, "h@example.com", None).await;
    let proxy = env.start().await;
    let post = |path: String, body: Value| {
        let req = proxy.http.post(format!("{}{path}", proxy.url)).bearer_auth(ADMIN_KEY).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            assert!(!text.contains(PASSWORD), "{text}");
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), text)
        }
    };
    let last_seq = || async { env.fake.requests().await.iter().map(|r| r.seq).max().unwrap_or(0) };
    let call_from = |want: &'static str| {
        let (proxy, env, last_seq) = (&proxy, &env, &last_seq);
        async move {
            let before = last_seq().await;
            let (status, _, body) = proxy.gemini(MODEL, &format!("via {want} {before}")).await;
            assert_eq!(status, 200, "{body}");
            let peers = generate_peers(env, "h@example.com", before).await;
            assert!(!peers.is_empty() && peers.iter().all(|p| p == want), "generate calls came from {peers:?}, wanted {want}");
        }
    };
    call_from(DIRECT_OUT).await;

    // An unknown name is refused, naming the configured ones; nothing written.
    let (status, _, text) = post(format!("/admin/accounts/{h}/egress"), serde_json::json!({"egress": "nope"})).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("nope") && text.contains("dead, office, socks"), "{text}");
    assert!(env.account_file(&h).get("egress").is_none());

    // Set: written to the record, shown, and the very next call goes through it.
    let (status, v, text) = post(format!("/admin/accounts/{h}/egress"), serde_json::json!({"egress": "socks"})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(v["egress"], "socks", "{v}");
    assert_eq!(v["egress_proxy"]["name"], "socks", "{v}");
    assert_eq!(env.account_file(&h)["egress"], "socks");
    assert_eq!(proxy.admin_account(&h).await["egress_proxy"]["name"], "socks");
    call_from(SOCKS_OUT).await;
    let (status, _, text) = post("/admin/accounts/h@example.com/egress".into(), serde_json::json!({"egress": "office"})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(env.account_file(&h)["egress"], "office");
    call_from(HTTP_OUT).await;

    // Cleared: the pool's default (here: direct).
    let (status, v, text) = post(format!("/admin/accounts/{h}/egress"), serde_json::json!({"egress": null})).await;
    assert_eq!(status, 200, "{text}");
    assert!(v["egress"].is_null() && v["egress_proxy"].is_null(), "{v}");
    assert!(env.account_file(&h).get("egress").is_none(), "{}", env.account_file(&h));
    call_from(DIRECT_OUT).await;

    // Unknown account, malformed body.
    let (status, _, text) = post("/admin/accounts/nobody@example.com/egress".into(), serde_json::json!({"egress": "socks"})).await;
    assert_eq!(status, 404, "{text}");
    let (status, _, text) = post(format!("/admin/accounts/{h}/egress"), serde_json::json!({"proxy": "socks"})).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\\\"egress\\\""), "{text}");

    // POST /admin/accounts with a proxy: refused before anything is written
    // for an unknown name; recorded for a known one.
    env.fake.add_account(AccountSpec::new("g@example.com", "rt-g")).await;
    let (status, _, text) = post("/admin/accounts".into(), serde_json::json!({"refresh_token": "rt-g", "egress": "nope"})).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("dead, office, socks"), "{text}");
    assert!(env.account_id("g@example.com").is_none(), "nothing written for an unknown proxy");
    let before = last_seq().await;
    // Through tinyproxy, after calls through it a moment ago: it closes a
    // keep-alive connection unannounced, so nothing is pooled through a proxy.
    let (status, v, text) = post("/admin/accounts".into(), serde_json::json!({"refresh_token": "rt-g", "egress": "office"})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(v["created"], true, "{v}");
    let g = env.account_id("g@example.com").unwrap();
    assert_eq!(env.account_file(&g)["egress"], "office");
    assert_eq!(v["account"]["egress"], "office", "{v}");
    // Google's check of the token already went through the proxy.
    let calls = env.fake.requests().await;
    let check: Vec<_> = calls.iter().filter(|r| r.seq > before && r.email.as_deref() == Some("g@example.com")).collect();
    assert!(!check.is_empty() && check.iter().all(|r| r.peer.as_deref() == Some(HTTP_OUT)), "{check:#?}");
    assert!(!proxy.logs().contains(PASSWORD), "the log holds the proxy's password");
    proxy.stop().await;
}
