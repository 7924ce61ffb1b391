//! Cluster mode end to end: a real `redis-server` (Debian's; each test
//! starts its own on a free loopback port in a temp dir) and two or three
//! real `grantpool serve` processes on it, against the fake Google.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, fake_usage, secret_in, Env, Proxy, ADMIN_KEY};
use grantpool_tests::fake::{AccountSpec, Endpoint, FaultSpec, RevokeSpec};
use serde_json::Value;

const MODEL: &str = "gemini-2.5-flash";

/// A `redis-server` of one test, killed when dropped.
struct Redis {
    child: Option<std::process::Child>,
    port: u16,
    dir: PathBuf,
    aof: bool,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Redis {
    /// A server on a free port, its files in `dir`; `aof`: append-only file
    /// with an fsync per write.
    fn start(dir: &Path, aof: bool) -> Redis {
        let mut r = Redis { child: None, port: free_port(), dir: dir.to_path_buf(), aof };
        r.restart();
        r
    }

    /// (Re)start on the same port and files.
    fn restart(&mut self) {
        let child = StdCommand::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .args(["--appendonly", if self.aof { "yes" } else { "no" }, "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (./dev test installs Debian's redis-server)");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < until, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: gone at once, as a crashed server.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis-cli -p PORT args…`, its output.
    fn cli(&self, args: &[&str]) -> String {
        let out = StdCommand::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One cluster: the fake Google, Redis, and the data directories of its nodes.
struct Cluster {
    env: Env,
    redis: Redis,
    _redis_dir: tempfile::TempDir,
    dirs: Vec<tempfile::TempDir>,
    prefix: String,
}

impl Cluster {
    /// `nodes` node directories sharing one Redis (`aof`: durable Redis).
    async fn new(nodes: usize, aof: bool) -> Cluster {
        let mut env = Env::new().await;
        let redis_dir = tempfile::tempdir().unwrap();
        let redis = Redis::start(redis_dir.path(), aof);
        let prefix = "gp-test".to_string();
        env.extra_config = format!("[cluster]\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n", redis.url());
        env.write_config("");
        let dirs = (0..nodes).map(|_| tempfile::tempdir().unwrap()).collect();
        let c = Cluster { env, redis, _redis_dir: redis_dir, dirs, prefix };
        c.write_configs();
        c
    }

    /// Each node's grantpool.toml: the same settings, its own data dir.
    fn write_configs(&self) {
        let base = std::fs::read_to_string(self.env.config_path()).unwrap();
        let from = format!("data_dir = \"{}\"", self.env.data_dir().display());
        for d in &self.dirs {
            let text = base.replace(&from, &format!("data_dir = \"{}\"", d.path().display()));
            std::fs::write(d.path().join("grantpool.toml"), text).unwrap();
            for policy in ["policy.toml", "spread-policy.toml"] {
                let from = self.env.data_dir().join(policy);
                if from.is_file() {
                    std::fs::copy(from, d.path().join(policy)).unwrap();
                }
            }
        }
    }

    /// Every node runs `policy` (policy.toml).
    fn use_policy(&self, policy: &str) {
        self.env.write_policy(policy);
        self.env.write_config("policy = \"policy.toml\"");
        self.write_configs();
    }

    fn config(&self, node: usize) -> PathBuf {
        self.dirs[node].path().join("grantpool.toml")
    }

    async fn start(&self, node: usize) -> Proxy {
        Proxy::start_config(&self.config(node)).await
    }

    /// The CLI with node `node`'s config.
    async fn cli(&self, node: usize, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(common::binary())
            .arg("--config")
            .arg(self.config(node))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .await
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Adds an account to the cluster through node 0's CLI; its id.
    async fn add_account(&self, email: &str, refresh_token: &str) -> String {
        self.env.fake.add_account(AccountSpec::new(email, refresh_token)).await;
        let (ok, out, err) = self.cli(0, &["accounts", "add", "--refresh-token", refresh_token]).await;
        assert!(ok, "accounts add failed: {out}\n{err}");
        self.id_of(email).expect("record written")
    }

    /// The id of the account with this email, from Redis' email index.
    fn id_of(&self, email: &str) -> Option<String> {
        let id = self.redis.cli(&["GET", &format!("{}:email:{}", self.prefix, email.to_lowercase())]);
        let id = id.trim();
        (!id.is_empty()).then(|| id.to_string())
    }

    /// The account record in Redis.
    fn record(&self, id: &str) -> Value {
        // redis-cli prints the raw value when its output is not a terminal.
        let raw = self.redis.cli(&["GET", &format!("{}:acct:{id}", self.prefix)]);
        serde_json::from_str(raw.trim_end()).unwrap_or(Value::Null)
    }

    /// How many records Redis holds.
    fn record_count(&self) -> usize {
        self.redis.cli(&["SCARD", &format!("{}:ids", self.prefix)]).trim().parse().unwrap_or(0)
    }
}

/// A Gemini request with an optional session id; (status, account, body).
async fn ask(proxy: &Proxy, text: impl Into<String>, session: Option<&str>) -> (u16, Option<String>, Value) {
    let text: String = text.into();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": text}]}]});
    let mut req = proxy.http.post(format!("{}/v1beta/models/{MODEL}:generateContent", proxy.url)).json(&body);
    if let Some(s) = session {
        req = req.header("x-session-id", s);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let account = resp.headers().get("x-grantpool-account").map(|v| v.to_str().unwrap().to_string());
            (status, account, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, None, Value::String(e.to_string())),
    }
}

async fn state_on(proxy: &Proxy, id: &str) -> String {
    proxy.admin_account(id).await["state"].as_str().unwrap_or("").to_string()
}

async fn health(proxy: &Proxy) -> Value {
    proxy.http.get(format!("{}/health", proxy.url)).send().await.unwrap().json().await.unwrap()
}

async fn metrics(proxy: &Proxy) -> String {
    proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_seen_by_one_node_is_a_disable_on_all_and_a_re_add_on_another_brings_it_back() {
    let c = Cluster::new(3, false).await;
    let alice = c.add_account("alice@example.com", "rt-alice").await;
    let bob = c.add_account("bob@example.com", "rt-bob").await;
    let (a, b, n3) = (c.start(0).await, c.start(1).await, c.start(2).await);
    for node in [&a, &b, &n3] {
        let served: std::collections::HashSet<_> = futures::future::join_all((0..4).map(|i| ask(node, format!("hi {i}"), None))).await.into_iter().map(|(s, acc, body)| {
            assert_eq!(s, 200, "{body}");
            acc.unwrap()
        }).collect();
        assert_eq!(served.len(), 2, "every node serves both accounts: {served:?}");
    }

    // Google revokes Alice's grant; only node A gets traffic and finds out.
    c.env.fake.reset_stats().await;
    c.env.fake.revoke(RevokeSpec::new("rt-alice")).await.unwrap();
    let seen = eventually(Duration::from_secs(10), || async {
        let (s, _, body) = ask(&a, "on A", None).await;
        assert_eq!(s, 200, "{body}");
        state_on(&a, &alice).await == "disabled"
    })
    .await;
    assert!(seen, "node A disabled Alice");
    let t0 = Instant::now();
    for node in [&b, &n3] {
        assert!(eventually(Duration::from_secs(1), || async { state_on(node, &alice).await == "disabled" }).await, "within 1 s every node has it");
    }
    let within = t0.elapsed();
    for node in [&b, &n3] {
        for i in 0..6 {
            let (s, acc, body) = ask(node, format!("after {i}"), None).await;
            assert_eq!((s, acc.as_deref()), (200, Some(bob.as_str())), "nobody selects Alice any more: {body}");
        }
    }
    let record = c.record(&alice);
    assert_eq!(record["disabled"], true, "{record}");
    assert!(record["disabled_reason"].as_str().unwrap().starts_with("invalid_grant:"), "{record}");
    let disables: usize = [&a, &b, &n3].iter().map(|n| n.logs().matches("Disabling account due to invalid_grant (alice@example.com)").count()).sum();
    assert_eq!(disables, 1, "decided once, by the node that saw it");
    assert_eq!(c.env.fake.stats().await.token_calls_for("rt-alice"), 1, "one refresh found the revoke; the others never tried");
    // Every CLI command works on the cluster: the listing from node C's config.
    let (ok, listed, err) = c.cli(2, &["accounts", "list"]).await;
    assert!(ok && listed.contains("DISABLED") && listed.contains("invalid_grant"), "{listed}{err}");
    eprintln!("disable seen by the other nodes within {within:?}");

    // Alice re-added with a new token on node B: A serves her again, no restart.
    c.env.fake.add_account(AccountSpec::new("alice@example.com", "rt-alice-2")).await;
    let resp = b.http.post(format!("{}/admin/accounts", b.url)).bearer_auth(ADMIN_KEY).json(&serde_json::json!({"refresh_token": "rt-alice-2"})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
    let back = eventually(Duration::from_secs(5), || async {
        let (s, acc, _) = ask(&a, "welcome back", None).await;
        s == 200 && acc.as_deref() == Some(alice.as_str())
    })
    .await;
    assert!(back, "node A serves the re-added account");
    let record = c.record(&alice);
    assert_eq!(record["disabled"], false, "{record}");
    assert!(record.get("disabled_reason").is_none_or(Value::is_null), "{record}");

    // Export writes account files; the same JSON as the record.
    let out = tempfile::tempdir().unwrap();
    let (ok, text, err) = c.cli(1, &["accounts", "export", out.path().to_str().unwrap()]).await;
    assert!(ok, "{text}{err}");
    let file: Value = serde_json::from_slice(&std::fs::read(out.path().join(format!("{alice}.json"))).unwrap()).unwrap();
    assert_eq!(file, record);
    for n in [a, b, n3] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_cooldown_taken_on_one_node_is_honoured_by_another() {
    let c = Cluster::new(2, false).await;
    let rl = c.add_account("rl@example.com", "rt-rl").await;
    let _spare = c.add_account("spare@example.com", "rt-spare").await;
    let (a, b) = (c.start(0).await, c.start(1).await);
    c.env.fake.push_fault(FaultSpec::rate_limit_exceeded(Endpoint::Generate, "40s").for_email("rl@example.com").times(1)).await.unwrap();
    let hit = eventually(Duration::from_secs(10), || async {
        let (s, _, body) = ask(&a, "go", None).await;
        assert_eq!(s, 200, "the client never sees the 429: {body}");
        c.env.fake.pending_faults().await.is_empty()
    })
    .await;
    assert!(hit);
    assert_eq!(state_on(&a, &rl).await, "cooling_down");
    assert!(eventually(Duration::from_secs(1), || async { state_on(&b, &rl).await == "cooling_down" }).await, "node B knows within 1 s");
    let before = c.env.fake.stats().await.generate_calls.get("rl@example.com").copied().unwrap_or(0);
    for i in 0..8 {
        let (s, acc, _) = ask(&b, format!("b {i}"), None).await;
        assert_eq!(s, 200);
        assert_ne!(acc.as_deref(), Some(rl.as_str()), "B does not hammer the cooling account");
    }
    assert_eq!(c.env.fake.stats().await.generate_calls.get("rl@example.com").copied().unwrap_or(0), before);
    let record = c.record(&rl);
    assert_eq!(record["cooldowns"][0]["scope"], "account", "{record}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_expired_token_under_100_requests_on_3_nodes_is_refreshed_once() {
    let c = Cluster::new(3, false).await;
    let id = c.add_account("one@example.com", "rt-one").await;
    let nodes = [c.start(0).await, c.start(1).await, c.start(2).await];
    for n in &nodes {
        assert_eq!(ask(n, "warm", None).await.0, 200);
    }
    // The stored access token expires (an import of the same account with
    // an expired token: every node gets it by subscription).
    let src = tempfile::tempdir().unwrap();
    let expired = serde_json::json!({"email": "one@example.com", "token": {"access_token": "expired-token", "refresh_token": "rt-one", "expiry_timestamp": 0}});
    std::fs::write(src.path().join("one.json"), expired.to_string()).unwrap();
    let (ok, out, err) = c.cli(1, &["accounts", "import", src.path().to_str().unwrap()]).await;
    assert!(ok && out.contains("updated"), "{out}{err}");
    assert_eq!(c.record(&id)["token"]["expiry_timestamp"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.env.fake.reset_stats().await;

    let started = Instant::now();
    let results = futures::future::join_all((0..100).map(|i| ask(&nodes[i % 3], format!("q {i}"), None))).await;
    let took = started.elapsed();
    for (s, acc, body) in &results {
        assert_eq!((*s, acc.as_deref()), (200, Some(id.as_str())), "{body}");
    }
    assert_eq!(c.env.fake.stats().await.token_calls_for("rt-one"), 1, "one refresh served every node");
    assert_ne!(c.record(&id)["token"]["expiry_timestamp"], 0);
    eprintln!("100 requests over 3 nodes on one expired token: {took:?}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_stays_on_one_account_whichever_node_gets_it() {
    let c = Cluster::new(3, false).await;
    c.use_policy("[selector]\nplugin = \"sticky-session\"\nconfig = { fallback = \"round-robin\" }\n");
    for e in ["s1", "s2", "s3", "s4"] {
        c.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await;
    }
    let nodes = [c.start(0).await, c.start(1).await, c.start(2).await];
    // Each node's own round-robin stands somewhere else: left to itself,
    // each would bind a new conversation to a different account.
    for (i, node) in nodes.iter().enumerate() {
        for k in 0..i {
            assert_eq!(ask(node, format!("no session {k}"), None).await.0, 200);
        }
    }
    for session in ["conversation-1", "conversation-2", "conversation-3"] {
        let (s, first, _) = ask(&nodes[0], "first turn", Some(session)).await;
        assert_eq!(s, 200);
        // The binding reaches the other nodes by subscription.
        tokio::time::sleep(Duration::from_millis(150)).await;
        for turn in 0..9 {
            let (s, acc, _) = ask(&nodes[turn % 3], format!("turn {turn}"), Some(session)).await;
            assert_eq!(s, 200);
            assert_eq!(acc, first, "{session} turn {turn} on node {} moved", turn % 3);
        }
    }
    // Without a session id the nodes still spread the load.
    let spread: std::collections::HashSet<_> = futures::future::join_all((0..8).map(|i| ask(&nodes[1], format!("x{i}"), None))).await.into_iter().map(|r| r.1).collect();
    assert!(spread.len() > 1, "{spread:?}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load_nodes_serve_journal_and_catch_up() {
    let mut c = Cluster::new(2, true).await;
    let g1 = c.add_account("g1@example.com", "rt-g1").await;
    let _g2 = c.add_account("g2@example.com", "rt-g2").await;
    let doomed = c.add_account("doomed@example.com", "rt-doomed").await;
    let a = Arc::new(c.start(0).await);
    let b = Arc::new(c.start(1).await);
    assert_eq!(health(&a).await["status"], "ok");

    // Load on both nodes for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for (i, node) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 20_000 {
                let (s, _, body) = ask(&node, format!("load {i} {n}"), None).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if s != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed request: {s} {body}");
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    c.redis.kill();
    for node in [&a, &b] {
        assert!(eventually(Duration::from_secs(3), || async { health(node).await["status"] == "degraded" }).await, "/health says degraded");
    }
    let h = health(&a).await;
    assert!(h["cause"].as_str().unwrap().contains("unreachable"), "{h}");

    // During the outage Google revokes a grant: the nodes find out and decide.
    c.env.fake.revoke(RevokeSpec::new("rt-doomed")).await.unwrap();
    let decided = eventually(Duration::from_secs(10), || async { state_on(&a, &doomed).await == "disabled" || state_on(&b, &doomed).await == "disabled" }).await;
    assert!(decided, "a node disabled the revoked account during the outage");
    let m = metrics(&a).await + &metrics(&b).await;
    assert!(m.contains("grantpool_cluster_connected 0"), "{m}");
    assert!(m.lines().any(|l| l.starts_with("grantpool_cluster_journal_entries ") && !l.ends_with(" 0")), "the disable waits in a journal:\n{m}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Redis comes back with its append-only file: nothing lost, the journal applied.
    c.redis.restart();
    for node in [&a, &b] {
        assert!(eventually(Duration::from_secs(5), || async { health(node).await["status"] == "ok" }).await, "/health back to ok");
    }
    assert_eq!(c.record_count(), 3, "no account lost");
    let record = c.record(&doomed);
    assert_eq!(record["disabled"], true, "the disable decided during the outage is in Redis: {record}");
    assert!(record["disabled_reason"].as_str().unwrap().starts_with("invalid_grant"), "{record}");
    assert_eq!(c.record(&g1)["disabled"], false);
    for node in [&a, &b] {
        assert!(eventually(Duration::from_secs(2), || async { state_on(node, &doomed).await == "disabled" }).await, "both nodes agree");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(sent > 50, "load ran: {sent}");
    assert_eq!(failed, 0, "no failed request while a healthy account existed ({sent} sent)");
    eprintln!("Redis killed mid-load: {sent} requests on 2 nodes, {failed} failed");
    for node in [&a, &b] {
        let logs = node.logs();
        assert!(logs.matches("cluster store unreachable").count() <= 1, "said once, not per request:\n{logs}");
        assert!(logs.matches("is back:").count() <= 1, "{logs}");
        assert!(!logs.contains("rt-g1") && !logs.contains("rt-doomed"), "no token in the log");
    }
    let said: usize = [&a, &b].iter().map(|n| n.logs().matches("cluster store unreachable").count()).sum();
    assert_eq!(said, 2, "each node said it once");
    for n in [a, b] {
        Arc::try_unwrap(n).ok().unwrap().stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_without_redis_only_from_its_snapshot() {
    let mut c = Cluster::new(2, false).await;
    let id = c.add_account("snap@example.com", "rt-snap").await;
    let a = c.start(0).await;
    assert_eq!(ask(&a, "hi", None).await.0, 200);
    a.stop().await;
    c.redis.kill();

    // Node B never ran: no snapshot, so it refuses with the reason.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(common::binary()).arg("--config").arg(c.config(1)).arg("serve").env_remove("RUST_LOG").output(),
    )
    .await
    .expect("exits")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the cluster store at redis://127.0.0.1:") && err.contains("snapshot") && err.contains("there is none"), "{err}");

    // Node A ran before: it starts from its snapshot, degraded, and serves.
    let a = c.start(0).await;
    let h = health(&a).await;
    assert_eq!(h["status"], "degraded", "{h}");
    let (s, acc, body) = ask(&a, "from the snapshot", None).await;
    assert_eq!((s, acc.as_deref()), (200, Some(id.as_str())), "{body}");
    // The CLI needs Redis: it says so.
    let (ok, _, err) = c.cli(0, &["accounts", "list"]).await;
    assert!(!ok && err.contains("cannot reach the cluster store"), "{err}");

    // This Redis keeps nothing across a restart: it comes back empty, and
    // the node puts back the accounts it knew.
    c.redis.restart();
    assert!(eventually(Duration::from_secs(5), || async { health(&a).await["status"] == "ok" }).await);
    assert!(eventually(Duration::from_secs(2), || async { c.record_count() == 1 }).await, "the pool is back in Redis");
    assert_eq!(c.record(&id)["email"], "snap@example.com");
    assert!(a.logs().contains("came back empty"), "{}", a.logs());
    a.stop().await;
}

/// Every node runs the sticky-session selector with a round-robin
/// fallback, and node `i`'s round-robin stands `i` places further: left to
/// itself, each node would bind a new conversation to another account.
async fn sticky_cluster(accounts: &[&str]) -> (Cluster, Vec<String>, [Proxy; 3]) {
    let c = Cluster::new(3, false).await;
    c.use_policy("[selector]\nplugin = \"sticky-session\"\nconfig = { fallback = \"round-robin\" }\n");
    let mut ids = Vec::new();
    for e in accounts {
        ids.push(c.add_account(&format!("{e}@example.com"), &format!("rt-{e}")).await);
    }
    let nodes = [c.start(0).await, c.start(1).await, c.start(2).await];
    for (i, node) in nodes.iter().enumerate() {
        for k in 0..i {
            assert_eq!(ask(node, format!("no session {k}"), None).await.0, 200);
        }
    }
    (c, ids, nodes)
}

/// `turns` turns of `session`, turn `t` on node `(start + t) % 3`, each sent
/// as soon as the one before is answered; the account of each.
async fn converse(nodes: &[Proxy; 3], session: &str, start: usize, turns: std::ops::Range<usize>) -> Vec<String> {
    let mut served = Vec::new();
    for t in turns {
        let (s, acc, body) = ask(&nodes[(start + t) % 3], format!("{session} turn {t}"), Some(session)).await;
        assert_eq!(s, 200, "{session} turn {t}: {body}");
        served.push(acc.expect("x-grantpool-account"));
    }
    served
}

/// The calls of each command Redis ran so far (`INFO commandstats`).
fn command_calls(redis: &Redis) -> std::collections::HashMap<String, u64> {
    redis
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conversation_sent_alternately_to_three_nodes_is_served_by_one_account_50_times_out_of_50() {
    let (c, _ids, nodes) = sticky_cluster(&["t1", "t2", "t3", "t4"]).await;
    let nodes = Arc::new(nodes);
    // One after another: each conversation's first turn on another node.
    for (n, session) in ["conv-a", "conv-b", "conv-c", "conv-d"].into_iter().enumerate() {
        let served = converse(&nodes, session, n, 0..50).await;
        assert!(served.iter().all(|a| *a == served[0]), "{session}: {served:?}");
    }
    // Three conversations at once, each alternating over the nodes.
    let running: Vec<_> = ["conv-e", "conv-f", "conv-g"]
        .into_iter()
        .enumerate()
        .map(|(n, session)| {
            let nodes = nodes.clone();
            tokio::spawn(async move { (session, converse(&nodes, session, n, 0..50).await) })
        })
        .collect();
    for r in running {
        let (session, served) = r.await.unwrap();
        assert!(served.iter().all(|a| *a == served[0]), "{session}: {served:?}");
    }
    // One conversation whose first turn reaches two nodes at the same moment.
    for session in ["conv-h", "conv-i", "conv-j"] {
        let (x, y) = tokio::join!(ask(&nodes[0], format!("{session} turn 0"), Some(session)), ask(&nodes[1], format!("{session} turn 0"), Some(session)));
        assert_eq!((x.0, y.0), (200, 200));
        assert_eq!(x.1, y.1, "{session}: the two nodes agree on the first turn");
        let served = converse(&nodes, session, 2, 1..50).await;
        assert!(served.iter().all(|a| Some(a) == x.1.as_ref()), "{session}: {:?} then {served:?}", x.1);
    }

    // A binding every node knows costs no Redis command per request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = command_calls(&c.redis);
    let served = converse(&nodes, "conv-a", 1, 50..110).await;
    let after = command_calls(&c.redis);
    assert!(served.iter().all(|a| *a == served[0]));
    let grew = |cmd: &str| after.get(cmd).copied().unwrap_or(0) - before.get(cmd).copied().unwrap_or(0);
    let (scripts, reads) = (grew("evalsha") + grew("eval"), grew("get") + grew("set"));
    eprintln!("60 turns of a known conversation: {scripts} scripts, {reads} GET/SET in Redis");
    assert_eq!((scripts, reads), (0, 0), "known bindings are followed without asking Redis");
    let nodes = Arc::try_unwrap(nodes).ok().unwrap();
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conversation_whose_account_goes_off_the_proxy_moves_once_on_every_node_and_stays() {
    let (c, _ids, nodes) = sticky_cluster(&["m1", "m2", "m3", "m4"]).await;
    for (n, session) in ["move-1", "move-2"].into_iter().enumerate() {
        let before = converse(&nodes, session, n, 0..6).await;
        let old = before[0].clone();
        assert!(before.iter().all(|a| *a == old), "{session}: {before:?}");

        // The bound account goes off the proxy (by hand, on one node); every
        // node knows it within a moment.
        let resp = nodes[n].http.post(format!("{}/admin/accounts/{old}/disable", nodes[n].url)).bearer_auth(ADMIN_KEY).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().await.unwrap());
        for node in &nodes {
            assert!(eventually(Duration::from_secs(2), || async { state_on(node, &old).await == "proxy_disabled" }).await);
        }
        // The next turns, back to back on every node: one new account.
        let after = converse(&nodes, session, n + 1, 6..36).await;
        let new = after[0].clone();
        assert_ne!(new, old);
        assert!(after.iter().all(|a| *a == new), "{session} moved once: {after:?}");

        // Back on the proxy, the old account does not get it back.
        let resp = nodes[n].http.post(format!("{}/admin/accounts/{old}/enable", nodes[n].url)).bearer_auth(ADMIN_KEY).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        for node in &nodes {
            assert!(eventually(Duration::from_secs(2), || async { state_on(node, &old).await == "active" }).await);
        }
        let later = converse(&nodes, session, n + 2, 36..48).await;
        assert!(later.iter().all(|a| *a == new), "{session} stays: {later:?}");
    }

    // A rate-limited bound account: the turn that met the 429 is served by
    // another account, and the conversation stays there, on every node.
    let before = converse(&nodes, "move-3", 2, 0..6).await;
    let old = before[0].clone();
    assert!(before.iter().all(|a| *a == old), "{before:?}");
    let email = c.record(&old)["email"].as_str().unwrap().to_string();
    c.env.fake.push_fault(FaultSpec::rate_limit_exceeded(Endpoint::Generate, "1s").for_email(&email).times(1)).await.unwrap();
    let after = converse(&nodes, "move-3", 2, 6..36).await;
    assert!(c.env.fake.pending_faults().await.is_empty(), "the bound account met the 429");
    let new = after[0].clone();
    assert_ne!(new, old);
    assert!(after.iter().all(|a| *a == new), "moved once: {after:?}");
    // Rested again, the old account does not get it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = converse(&nodes, "move-3", 0, 36..48).await;
    assert!(later.iter().all(|a| *a == new), "stays: {later:?}");
    for n in nodes {
        n.stop().await;
    }
}

/// A Gemini request with a client key; its status.
async fn ask_with_key(proxy: &Proxy, key: &str, text: &str) -> u16 {
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": text}]}]});
    let resp = proxy.http.post(format!("{}/v1beta/models/{MODEL}:generateContent", proxy.url)).header("x-goog-api-key", key).json(&body).send().await;
    resp.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// `GET /admin/usage?…`'s totals on one node: [requests, input, output, cached, thinking].
async fn usage_on(proxy: &Proxy, query: &str) -> [u64; 5] {
    let v: Value = proxy.http.get(format!("{}/admin/usage?{query}", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().json().await.unwrap();
    let t = &v["total"];
    let n = |k: &str| t[k].as_u64().unwrap_or(0);
    [n("requests"), n("input_tokens"), n("output_tokens"), n("cached_tokens"), n("thinking_tokens")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_on_one_node_serves_on_the_other_its_limit_holds_across_both_and_usage_adds_up_on_either() {
    let c = Cluster::new(2, false).await;
    c.add_account("a@example.com", "rt-a").await;
    c.add_account("b@example.com", "rt-b").await;
    let nodes = [c.start(0).await, c.start(1).await];

    // A key added through node 0's CLI lives in Redis: node 1 takes it at once.
    let (ok, out, err) = c.cli(0, &["keys", "add", "team"]).await;
    assert!(ok, "{out}{err}");
    let team = secret_in(&out).unwrap_or_else(|| panic!("the key, printed once: {out}\n{err}"));
    assert!(eventually(Duration::from_secs(5), || async { ask_with_key(&nodes[1], &team, "hello").await == 200 }).await);
    assert!(!c.redis.cli(&["HGETALL", &format!("{}:keys", c.prefix)]).contains(&team), "only a hash is kept");

    // Load through both nodes; either node's usage is the whole cluster's.
    for i in 0..12 {
        assert_eq!(ask_with_key(&nodes[i % 2], &team, &format!("turn {i}")).await, 200);
    }
    let expected = fake_usage(&c.env).await;
    for n in &nodes {
        assert!(
            eventually(Duration::from_secs(5), || async { usage_on(n, "by=key&since=1h").await == expected }).await,
            "node {}: {:?} != {expected:?}",
            n.url,
            usage_on(n, "by=key&since=1h").await
        );
    }

    // A requests-per-minute limit holds across the nodes (counters shared
    // in batches of a second): 3 on node 0, then node 1 has 1 left.
    let (ok, out, err) = c.cli(1, &["keys", "add", "bot", "--requests-per-minute", "4"]).await;
    assert!(ok, "{out}{err}");
    let bot = secret_in(&out).unwrap();
    // Well inside one minute (the window is the calendar minute).
    let into_minute = common::now_ms() / 1000 % 60;
    if into_minute > 40 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    assert!(eventually(Duration::from_secs(5), || async { ask_with_key(&nodes[0], &bot, "one").await == 200 }).await);
    for _ in 0..2 {
        assert_eq!(ask_with_key(&nodes[0], &bot, "more").await, 200);
    }
    // Node 0's count reaches Redis within its batch window.
    let minute = common::now_ms() / 60_000;
    let counter = format!("{}:keyuse:bot:m:{minute}", c.prefix);
    assert!(eventually(Duration::from_secs(5), || async { c.redis.cli(&["GET", &counter]).trim() == "3" }).await, "{counter}");
    // Node 1 admits the fourth; once its own batch has gone (and read the
    // cluster's total back), the fifth is refused there.
    assert_eq!(ask_with_key(&nodes[1], &bot, "fourth").await, 200);
    assert!(eventually(Duration::from_secs(5), || async { c.redis.cli(&["GET", &counter]).trim() == "4" }).await, "{counter}");
    assert_eq!(ask_with_key(&nodes[1], &bot, "fifth").await, 429);
    // Node 0 learns it with its next batch.
    assert!(eventually(Duration::from_secs(5), || async { ask_with_key(&nodes[0], &bot, "sixth").await == 429 }).await);
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_starts_without_redis_keeps_the_named_keys_it_knew() {
    let mut c = Cluster::new(1, false).await;
    c.add_account("keys@example.com", "rt-keys").await;
    let a = c.start(0).await;
    let (ok, out, err) = c.cli(0, &["keys", "add", "team"]).await;
    assert!(ok, "{out}{err}");
    let team = secret_in(&out).unwrap();
    assert!(eventually(Duration::from_secs(5), || async { ask_with_key(&a, &team, "hi").await == 200 }).await);
    a.stop().await;
    c.redis.kill();

    // From its snapshots: the accounts and the keys. A request without a
    // key is still refused (the keys' limits hold while Redis is away).
    let a = c.start(0).await;
    assert_eq!(health(&a).await["status"], "degraded");
    assert_eq!(ask_with_key(&a, &team, "from the snapshot").await, 200);
    assert_eq!(ask(&a, "no key", None).await.0, 401);
    // Redis back (empty): the node follows it again; a key made now serves.
    c.redis.restart();
    assert!(eventually(Duration::from_secs(5), || async { health(&a).await["status"] == "ok" }).await);
    let (ok, out, err) = c.cli(0, &["keys", "add", "later"]).await;
    assert!(ok, "{out}{err}");
    let later = secret_in(&out).unwrap();
    assert!(eventually(Duration::from_secs(5), || async { ask_with_key(&a, &later, "hi").await == 200 }).await);
    a.stop().await;
}
