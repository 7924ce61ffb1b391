//! End-to-end harness: the fake Google (in process, real sockets) and the
//! real `grantpool` binary as a child process, configured to talk to it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grantpool_tests::fake::{AccountSpec, Endpoint, FakeGoogle, RecordedRequest};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Admin key of every test proxy.
pub const ADMIN_KEY: &str = "test-admin-key";

/// Wall-clock time, Unix milliseconds (as the proxy writes it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `grantpool` binary: `$GRANTPOOL_BIN`, else the workspace's debug
/// build (`./dev test` builds it first with `cargo build --workspace
/// --bins`), built here only when missing. Building it from inside a test
/// would resolve features differently from the workspace build and rebuild
/// the host every time.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GRANTPOOL_BIN") {
        return p.into();
    }
    let path = root().join("target/debug/grantpool");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if path.is_file() {
            return;
        }
        let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root())
            .args(["build", "--workspace", "--bins", "--quiet"])
            .status()
            .expect("cargo build grantpool");
        assert!(status.success());
    });
    path
}

/// One test's world: a fake Google and a data directory with a config
/// pointing at it.
pub struct Env {
    /// The fake upstream.
    pub fake: FakeGoogle,
    /// The data directory (accounts/, logs/, grantpool.toml).
    pub dir: tempfile::TempDir,
    /// Extra TOML appended to the config.
    pub extra_config: String,
    /// Lines added to `[server]` (e.g. `max_wait_secs = 0`).
    pub server_config: String,
    /// The upstream hosts the config names, in order (`base_urls`); empty:
    /// the fake's one URL as `base_url`.
    pub upstream_hosts: Vec<String>,
    /// Run on the bundled default policy (affinity: a conversation stays on
    /// one account). Off by default: most tests are about what happens to
    /// accounts and need every account used, so a config that names no
    /// policy gets [`SPREAD_POLICY`] (round-robin) instead.
    pub bundled_policy: bool,
}

/// The policy of a test that names none and does not ask for the bundled
/// default: requests spread over every account in turn.
pub const SPREAD_POLICY: &str = "[selector]\nplugin = \"round-robin\"\n\n[[classifier]]\nplugin = \"default\"\n";

impl Env {
    /// A fresh fake and data directory.
    pub async fn new() -> Env {
        let fake = FakeGoogle::start().await.expect("start fake google");
        let dir = tempfile::tempdir().unwrap();
        let env = Env { fake, dir, extra_config: String::new(), server_config: String::new(), upstream_hosts: Vec::new(), bundled_policy: false };
        env.write_config("");
        env
    }

    /// A fake with these labelled hosts (e.g. `daily`, `prod`), and a config
    /// that tries them in this order, as a profile's own hosts are tried.
    pub async fn with_hosts(labels: &[&str]) -> Env {
        let fake = FakeGoogle::start_with_hosts(labels).await.expect("start fake google");
        let upstream_hosts = labels.iter().map(|l| fake.base_url_of(l).expect("host")).collect();
        let dir = tempfile::tempdir().unwrap();
        let env = Env { fake, dir, extra_config: String::new(), server_config: String::new(), upstream_hosts, bundled_policy: false };
        env.write_config("");
        env
    }

    /// The same world on the bundled default policy (affinity).
    pub fn on_bundled_policy(mut self) -> Env {
        self.bundled_policy = true;
        self.write_config("");
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("grantpool.toml")
    }

    /// The policy file path (exists once written).
    pub fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.toml")
    }

    /// (Re)write grantpool.toml with `extra` appended to the server section
    /// defaults (extra may hold whole tables).
    pub fn write_config(&self, top: &str) {
        let fake = self.fake.base_url();
        let top = if self.bundled_policy || top.contains("policy =") {
            top.to_string()
        } else {
            std::fs::write(self.dir.path().join("spread-policy.toml"), SPREAD_POLICY).unwrap();
            format!("policy = \"spread-policy.toml\"\n{top}")
        };
        let text = format!(
            r#"data_dir = "{dir}"
{top}
[server]
listen = "127.0.0.1:0"
admin_key = "{ADMIN_KEY}"
{server}
[oauth]
token_url = "{fake}/token"
userinfo_url = "{fake}/userinfo"
refresh_skew_secs = 300

[upstream]
{upstream}
timeout_secs = 30
onboard_poll_ms = 50

[plugins]
call_timeout_ms = 200
cache_dir = "{cache}"
{extra}
"#,
            dir = self.dir.path().display(),
            cache = root().join("target/test-plugin-cache").display(),
            extra = self.extra_config,
            server = self.server_config,
            upstream = if self.upstream_hosts.is_empty() {
                format!("base_url = \"{fake}\"")
            } else {
                format!("base_urls = {:?}", self.upstream_hosts)
            },
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// Use `policy` as policy.toml.
    pub fn write_policy(&self, policy: &str) {
        let tmp = self.dir.path().join(".policy.toml.new");
        std::fs::write(&tmp, policy).unwrap();
        std::fs::rename(tmp, self.policy_path()).unwrap();
    }

    /// Point the config at policy.toml.
    pub fn use_policy(&self, policy: &str) {
        self.write_policy(policy);
        self.write_config("policy = \"policy.toml\"");
    }

    /// Run the CLI with this environment's config; (status ok, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(binary())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .await
            .expect("run grantpool");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// [`Env::cli`] with these environment variables set (e.g. `HOME`,
    /// `PATH`) on top of the test's own.
    pub async fn cli_env(&self, args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> (bool, String, String) {
        let out = Command::new(binary())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .output()
            .await
            .expect("run grantpool");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Make `email` known to the fake with `refresh_token`, then add it with
    /// `grantpool accounts add`. Returns the account id.
    pub async fn add_account(&self, email: &str, refresh_token: &str) -> String {
        self.fake.add_account(AccountSpec::new(email, refresh_token)).await;
        let (ok, out, err) = self.cli(&["accounts", "add", "--refresh-token", refresh_token]).await;
        assert!(ok, "accounts add failed: {out}\n{err}");
        self.account_id(email).expect("account file written")
    }

    /// The id of the account file with this email.
    pub fn account_id(&self, email: &str) -> Option<String> {
        self.account_files().into_iter().find(|(_, v)| v["email"] == email).map(|(id, _)| id)
    }

    /// Every account file: (id, JSON).
    pub fn account_files(&self) -> Vec<(String, Value)> {
        let dir = self.dir.path().join("accounts");
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") && !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap()) {
                    out.push((p.file_stem().unwrap().to_string_lossy().into_owned(), v));
                }
            }
        }
        out
    }

    /// One account file by id.
    pub fn account_file(&self, id: &str) -> Value {
        let p = self.dir.path().join("accounts").join(format!("{id}.json"));
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    /// Edit one account file by hand (as a user would), atomically.
    pub fn edit_account(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let p = self.dir.path().join("accounts").join(format!("{id}.json"));
        let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        f(&mut v);
        let tmp = p.with_extension("edit");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        std::fs::rename(tmp, p).unwrap();
    }

    /// Make an account's access token due for refresh.
    pub fn expire_token(&self, id: &str) {
        self.edit_account(id, |v| v["token"]["expiry_timestamp"] = Value::from(0));
    }

    /// Start `grantpool serve`.
    pub async fn start(&self) -> Proxy {
        Proxy::start(self).await
    }
}

/// A running `grantpool serve`.
pub struct Proxy {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    logs: Arc<Mutex<String>>,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl Proxy {
    async fn start(env: &Env) -> Proxy {
        Proxy::start_config(&env.config_path()).await
    }

    /// Start `grantpool serve` with this config file.
    pub async fn start_config(config: &Path) -> Proxy {
        Proxy::start_config_env(config, &[]).await
    }

    /// [`Proxy::start_config`] with these environment variables (`None`:
    /// removed) on top of the test's own.
    pub async fn start_config_env(config: &Path, envs: &[(&str, Option<&str>)]) -> Proxy {
        let mut cmd = Command::new(binary());
        for (k, v) in envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", "info,grantpool=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn grantpool serve");
        let logs = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let plain = strip_ansi(&line);
                if let Some(i) = plain.find("listening on http://") {
                    let addr = plain[i + "listening on ".len()..].split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                eprintln!("[grantpool] {plain}");
                let mut l = sink.lock().unwrap();
                l.push_str(&plain);
                l.push('\n');
            }
        });
        let url = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("grantpool did not start; log:\n{}", logs.lock().unwrap()))
            .expect("grantpool exited before listening");
        Proxy { child, url, logs, http: reqwest::Client::new() }
    }

    /// Everything the proxy logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Wait until the log holds `needle`.
    pub async fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.logs().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Stop it (SIGTERM, then wait).
    pub async fn stop(mut self) {
        let _ = self.terminate().await;
    }

    /// SIGTERM, then its exit status (`None` if it is still running after
    /// 10 s).
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            unsafe_kill(pid);
        }
        tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.ok().and_then(Result::ok)
    }

    /// SIGKILL: the process dies at once, mid-write if it was writing.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// POST a Gemini generateContent with `text`; (status, account header, JSON body).
    pub async fn gemini(&self, model: &str, text: &str) -> (u16, Option<String>, Value) {
        let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": text}]}]});
        let resp = self
            .http
            .post(format!("{}/v1beta/models/{model}:generateContent", self.url))
            .json(&body)
            .send()
            .await
            .expect("request to grantpool");
        let status = resp.status().as_u16();
        let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string());
        let json = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, account, json)
    }

    /// GET /admin/accounts.
    pub async fn admin_accounts(&self) -> Value {
        self.http
            .get(format!("{}/admin/accounts", self.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// One account as /admin/accounts shows it.
    pub async fn admin_account(&self, id: &str) -> Value {
        let all = self.admin_accounts().await;
        all["accounts"].as_array().unwrap().iter().find(|a| a["id"] == id).cloned().unwrap_or(Value::Null)
    }
}

fn unsafe_kill(pid: u32) {
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

/// Text of a response's first candidate.
pub fn gemini_text(v: &Value) -> String {
    v["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap_or("").to_string()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Poll `f` until it returns true.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The generate and stream calls the fake received, oldest first.
pub async fn generates(env: &Env) -> Vec<RecordedRequest> {
    env.fake
        .requests()
        .await
        .into_iter()
        .filter(|r| matches!(r.endpoint, Some(Endpoint::Generate | Endpoint::Stream)))
        .collect()
}

/// The `gp-…` key `grantpool keys add` printed in a text.
pub fn secret_in(text: &str) -> Option<String> {
    text.match_indices("gp-").find_map(|(at, _)| {
        let key: String = text[at + 3..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        (key.len() == 40).then(|| format!("gp-{key}"))
    })
}

/// The sum of the `usageMetadata` the fake answered with, over the
/// answers it served whole: [requests, input, output, cached, thinking].
pub async fn fake_usage(env: &Env) -> [u64; 5] {
    let mut sum = [0u64; 5];
    for r in generates(env).await {
        let Some(u) = r.usage else { continue };
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        sum[0] += 1;
        sum[1] += n("promptTokenCount");
        sum[2] += n("candidatesTokenCount");
        sum[3] += n("cachedContentTokenCount");
        sum[4] += n("thoughtsTokenCount");
    }
    sum
}
