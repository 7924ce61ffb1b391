//! Named client keys and the usage log, end to end: keys made with the CLI
//! on a running proxy, their limits in each protocol's shape, and the
//! usage database (`usage.db`) against what the fake Google answered.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, fake_usage, secret_in, Env, Proxy, ADMIN_KEY};
use serde_json::{json, Value};

const MODEL: &str = "gemini-2.5-flash";
/// A Claude model: with thinking on, the fake's answers carry thoughts.
const CLAUDE: &str = "claude-sonnet-4-6";

/// `grantpool keys add NAME ARGS…`: the secret it printed once.
async fn add_key(env: &Env, name: &str, args: &[&str]) -> String {
    let mut all = vec!["keys", "add", name];
    all.extend_from_slice(args);
    let (ok, out, err) = env.cli(&all).await;
    assert!(ok, "keys add failed: {out}\n{err}");
    secret_in(&out).unwrap_or_else(|| panic!("no key in the output of keys add: {out}"))
}

/// The three client protocols, each with the path, body and error shape.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Gemini,
    Openai,
    Anthropic,
}

impl Shape {
    const ALL: [Shape; 3] = [Shape::Gemini, Shape::Openai, Shape::Anthropic];

    /// A small request of this protocol for `model`.
    fn request(self, proxy: &Proxy, key: Option<&str>, model: &str, text: &str) -> reqwest::RequestBuilder {
        let (path, body) = match self {
            Shape::Gemini => (format!("/v1beta/models/{model}:generateContent"), json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})),
            Shape::Openai => ("/v1/chat/completions".to_string(), json!({"model": model, "messages": [{"role": "user", "content": text}]})),
            Shape::Anthropic => ("/v1/messages".to_string(), json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]})),
        };
        let mut req = proxy.http.post(format!("{}{path}", proxy.url)).json(&body);
        if let Some(k) = key {
            req = match self {
                Shape::Gemini => req.header("x-goog-api-key", k),
                Shape::Openai => req.bearer_auth(k),
                Shape::Anthropic => req.header("x-api-key", k).header("anthropic-version", "2023-06-01"),
            };
        }
        req
    }

    /// (status, `retry-after`, body).
    async fn send(self, proxy: &Proxy, key: Option<&str>, model: &str, text: &str) -> (u16, Option<String>, Value) {
        let resp = self.request(proxy, key, model, text).send().await.expect("request to grantpool");
        let status = resp.status().as_u16();
        let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        (status, retry, resp.json().await.unwrap_or(Value::Null))
    }

    /// The error message, checking the body is this protocol's error shape.
    fn error_message(self, status: u16, body: &Value) -> String {
        match self {
            Shape::Gemini => {
                assert_eq!(body["error"]["code"], status, "Gemini error shape: {body}");
                assert!(body["error"]["status"].is_string(), "Gemini error shape: {body}");
                body["error"]["message"].as_str().unwrap().to_string()
            }
            Shape::Openai => {
                assert!(body["error"]["type"].is_string(), "OpenAI error shape: {body}");
                body["error"]["message"].as_str().unwrap().to_string()
            }
            Shape::Anthropic => {
                assert_eq!(body["type"], "error", "Anthropic error shape: {body}");
                let kind = body["error"]["type"].as_str().unwrap();
                let expected = match status {
                    401 => "authentication_error",
                    403 => "permission_error",
                    429 => "rate_limit_error",
                    _ => kind,
                };
                assert_eq!(kind, expected, "Anthropic error type for {status}: {body}");
                body["error"]["message"].as_str().unwrap().to_string()
            }
        }
    }
}

/// A world whose proxy asks for a key from the start (a configured
/// `api_keys` entry): a named key is taken only once the running proxy
/// has loaded it, so a first 200 proves it did.
async fn keyed_env() -> Env {
    let mut env = Env::new().await;
    env.server_config = format!("api_keys = [\"{CONFIGURED}\"]\n");
    env.write_config("");
    env
}

/// The configured (unnamed, unlimited) key.
const CONFIGURED: &str = "sk-configured-key";

async fn admin_get(proxy: &Proxy, path: &str) -> Value {
    let resp = proxy.http.get(format!("{}{path}", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

/// Usage totals as `GET /admin/usage` answers them.
async fn usage_totals(proxy: &Proxy, query: &str) -> Value {
    admin_get(proxy, &format!("/admin/usage?{query}")).await["total"].clone()
}

fn totals_of(t: &Value) -> [u64; 5] {
    let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("no {k} in {t}"));
    [n("requests"), n("input_tokens"), n("output_tokens"), n("cached_tokens"), n("thinking_tokens")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_with_the_cli_works_at_once_and_a_revoked_or_expired_one_is_refused_at_once() {
    let env = Env::new().await;
    env.add_account("a@example.com", "rt-a").await;
    let proxy = env.start().await;
    // No key anywhere: a loopback proxy is open.
    assert_eq!(Shape::Gemini.send(&proxy, None, MODEL, "hi").await.0, 200);

    let key = add_key(&env, "alice", &[]).await;
    // The running proxy takes it without a restart; from then on a request
    // without a key is refused (a key's limits could be dodged otherwise).
    assert!(eventually(Duration::from_secs(5), || async { Shape::Openai.send(&proxy, None, MODEL, "hi").await.0 == 401 }).await);
    assert_eq!(Shape::Openai.send(&proxy, Some(&key), MODEL, "hi").await.0, 200);
    // A made-up key is refused too, and never echoed back.
    let wrong = format!("gp-{}", "x".repeat(40));
    let (status, _, body) = Shape::Anthropic.send(&proxy, Some(&wrong), MODEL, "hi").await;
    assert_eq!(status, 401);
    assert!(!body.to_string().contains(&wrong));

    // `keys list` shows it by name, with today's use (from the usage log,
    // once its batch is written), never the key.
    let (ok, out, _) = env.cli(&["keys", "list"]).await;
    assert!(ok && out.contains("alice") && !out.contains(&key), "{out}");
    let used_today = || async {
        let (_, out, _) = env.cli(&["keys", "list", "--json"]).await;
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        v["keys"].as_array().into_iter().flatten().any(|k| k["name"] == "alice" && k["today"]["requests"] == 1 && k["today"]["tokens"].as_u64() > Some(0))
    };
    assert!(eventually(Duration::from_secs(5), used_today).await, "today's use in keys list");
    assert!(!std::fs::read_to_string(env.data_dir().join("keys.json")).unwrap().contains(&key), "only a hash is kept");

    // Revoked: refused at once, in each protocol's shape, naming the key's name.
    let (ok, out, err) = env.cli(&["keys", "revoke", "alice"]).await;
    assert!(ok, "{out}{err}");
    assert!(eventually(Duration::from_secs(5), || async { Shape::Gemini.send(&proxy, Some(&key), MODEL, "hi").await.0 == 401 }).await);
    for shape in Shape::ALL {
        let (status, _, body) = shape.send(&proxy, Some(&key), MODEL, "hi").await;
        assert_eq!(status, 401, "{shape:?}: {body}");
        let message = shape.error_message(status, &body);
        assert!(message.contains("alice") && message.contains("revoked"), "{shape:?}: {message}");
        assert!(!message.contains(&key));
    }

    // Expired: refused once its time has passed, saying so.
    let short = add_key(&env, "temp", &["--expires", "2s"]).await;
    assert!(eventually(Duration::from_secs(5), || async { Shape::Gemini.send(&proxy, Some(&short), MODEL, "hi").await.0 == 200 }).await);
    assert!(eventually(Duration::from_secs(10), || async { Shape::Gemini.send(&proxy, Some(&short), MODEL, "hi").await.0 == 401 }).await);
    let (status, _, body) = Shape::Anthropic.send(&proxy, Some(&short), MODEL, "hi").await;
    let message = Shape::Anthropic.error_message(status, &body);
    assert!(message.contains("temp") && message.contains("expired"), "{message}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_is_answered_in_each_protocols_shape_with_when_it_resets() {
    let env = keyed_env().await;
    env.add_account("a@example.com", "rt-a").await;
    let proxy = env.start().await;

    // A model outside the key's globs: 403, listing what it may use.
    let flash_only = add_key(&env, "flash-only", &["--models", "gemini-*-flash*"]).await;
    assert!(eventually(Duration::from_secs(5), || async { Shape::Gemini.send(&proxy, Some(&flash_only), MODEL, "hi").await.0 == 200 }).await);
    for shape in Shape::ALL {
        let (status, _, body) = shape.send(&proxy, Some(&flash_only), "gemini-2.5-pro", "hi").await;
        assert_eq!(status, 403, "{shape:?}: {body}");
        let message = shape.error_message(status, &body);
        assert!(message.contains("flash-only") && message.contains("gemini-*-flash*"), "{message}");
    }

    // Requests per minute: each protocol's third request in a minute is refused.
    for shape in Shape::ALL {
        let name = format!("rpm-{shape:?}").to_lowercase();
        let key = add_key(&env, &name, &["--requests-per-minute", "2"]).await;
        assert!(eventually(Duration::from_secs(5), || async { shape.send(&proxy, Some(&key), MODEL, "one").await.0 == 200 }).await);
        let (first, ..) = shape.send(&proxy, Some(&key), MODEL, "two").await;
        let (status, retry, body) = shape.send(&proxy, Some(&key), MODEL, "three").await;
        // The minute may turn between the two: then the second passed as the
        // first of a new minute and the third is the one to refuse.
        let (status, retry, body) = if first == 200 && status == 200 { shape.send(&proxy, Some(&key), MODEL, "four").await } else { (status, retry, body) };
        assert_eq!(status, 429, "{shape:?}: {body}");
        let secs: u64 = retry.expect("retry-after").parse().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
        let message = shape.error_message(status, &body);
        assert!(message.contains(&name) && message.contains("2 requests per minute"), "{message}");
    }

    // Tokens per day: the request that crosses the limit completes, the next is refused.
    let key = add_key(&env, "tiny", &["--tokens-per-day", "1"]).await;
    assert!(eventually(Duration::from_secs(5), || async { Shape::Anthropic.send(&proxy, Some(&key), MODEL, "hello there").await.0 == 200 }).await);
    for shape in Shape::ALL {
        let (status, retry, body) = shape.send(&proxy, Some(&key), MODEL, "again").await;
        assert_eq!(status, 429, "{shape:?}: {body}");
        let secs: u64 = retry.expect("retry-after").parse().unwrap();
        assert!((1..=86_400).contains(&secs), "{secs}");
        let message = shape.error_message(status, &body);
        assert!(message.contains("tiny") && message.contains("tokens per day"), "{message}");
    }
    // Raising the limit applies at once.
    let (ok, out, err) = env.cli(&["keys", "edit", "tiny", "--tokens-per-day", "0"]).await;
    assert!(ok, "{out}{err}");
    assert!(eventually(Duration::from_secs(5), || async { Shape::Gemini.send(&proxy, Some(&key), MODEL, "hi").await.0 == 200 }).await);

    // Refusals are counted by key and limit.
    let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    for limit in ["model", "requests_per_minute", "tokens_per_day", "revoked"].iter().take(3) {
        assert!(metrics.lines().any(|l| l.starts_with("grantpool_key_limited_total") && l.contains(&format!("limit=\"{limit}\""))), "{limit}:\n{metrics}");
    }
    proxy.stop().await;
}

/// One request of the mixed load: (protocol, stream, tools).
async fn mixed_request(proxy: &Proxy, key: &str, i: usize) -> u16 {
    let tools_openai = json!([{"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let tools_anthropic = json!([{"name": "get_weather", "description": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    // Each text comes eight times, once per kind: Google's prompt cache
    // (the fake's) hits the ones the same account saw before.
    let text = format!("request {}: say something about the weather", i / 8);
    let thinking = json!({"type": "enabled", "budget_tokens": 1024});
    let (path, body) = match i % 8 {
        0 => (format!("/v1beta/models/{MODEL}:generateContent"), json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})),
        1 => (format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"), json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})),
        2 => ("/v1/chat/completions".into(), json!({"model": MODEL, "messages": [{"role": "user", "content": text}]})),
        3 => ("/v1/chat/completions".into(), json!({"model": MODEL, "stream": true, "tools": tools_openai, "messages": [{"role": "user", "content": text}]})),
        4 => ("/v1/responses".into(), json!({"model": MODEL, "input": text})),
        5 => ("/v1/responses".into(), json!({"model": MODEL, "stream": true, "input": text})),
        6 => ("/v1/messages".into(), json!({"model": CLAUDE, "max_tokens": 2048, "thinking": thinking, "tools": tools_anthropic, "messages": [{"role": "user", "content": text}]})),
        // A tool turn: the result of a call, streamed.
        _ => ("/v1/messages".into(), json!({"model": CLAUDE, "max_tokens": 2048, "thinking": thinking, "stream": true, "tools": tools_anthropic, "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21 C"}]}]})),
    };
    let resp = proxy
        .http
        .post(format!("{}{path}", proxy.url))
        .bearer_auth(key)
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert!(status == 200, "{path}: {status} {text}");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_of_a_mixed_load_equals_the_upstreams_usage_token_for_token_and_survives_a_restart() {
    let env = keyed_env().await;
    for (email, rt) in [("a@example.com", "rt-a"), ("b@example.com", "rt-b")] {
        env.add_account(email, rt).await;
    }
    let mut proxy = env.start().await;
    let key = add_key(&env, "team", &[]).await;
    assert!(eventually(Duration::from_secs(5), || async { Shape::Gemini.send(&proxy, Some(&key), MODEL, "warm").await.0 == 200 }).await);
    for i in 0..48 {
        mixed_request(&proxy, &key, i).await;
    }
    let expected = fake_usage(&env).await;
    assert!(expected[0] >= 49 && expected[1] > 0 && expected[2] > 0 && expected[3] > 0 && expected[4] > 0, "the load has every kind of token: {expected:?}");
    let by_key = admin_get(&proxy, "/admin/usage?by=key&since=1h").await;
    assert_eq!(totals_of(&by_key["total"]), expected, "{by_key}");
    let team = by_key["groups"].as_array().unwrap().iter().find(|g| g["group"] == "team").cloned().expect("a group for the key");
    assert_eq!(totals_of(&team), expected);
    // By protocol's model and by account, the same totals.
    for by in ["model", "account", "day"] {
        assert_eq!(totals_of(&usage_totals(&proxy, &format!("by={by}&since=24h")).await), expected, "by {by}");
    }
    // The metrics count the same tokens by key.
    let metrics = proxy.http.get(format!("{}/metrics", proxy.url)).bearer_auth(ADMIN_KEY).send().await.unwrap().text().await.unwrap();
    let counted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("grantpool_tokens_total{") && l.contains("key=\"team\"") && l.contains("kind=\"input\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum();
    assert_eq!(counted, expected[1]);

    // A restart keeps it, and the CLI reads the same figures.
    proxy.terminate().await;
    let proxy = env.start().await;
    assert_eq!(totals_of(&usage_totals(&proxy, "by=key&since=1h").await), expected);
    let (ok, out, err) = env.cli(&["usage", "--by", "key", "--since", "1h", "--json"]).await;
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("usage --json: {e}: {out}"));
    assert_eq!(totals_of(&cli["total"]), expected);
    let (ok, out, _) = env.cli(&["usage", "--by", "model"]).await;
    assert!(ok && out.contains(MODEL), "{out}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_under_load_loses_at_most_the_last_batch_window_and_leaves_the_database_readable() {
    let env = Env::new().await;
    for (email, rt) in [("a@example.com", "rt-a"), ("b@example.com", "rt-b")] {
        env.add_account(email, rt).await;
    }
    let mut proxy = env.start().await;
    let proxy_url = proxy.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(parking_lot::Mutex::new(Vec::<Instant>::new()));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (stop, done, url, http) = (stop.clone(), done.clone(), proxy_url.clone(), proxy.http.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"contents": [{"role": "user", "parts": [{"text": "load"}]}]});
                if let Ok(r) = http.post(format!("{url}/v1beta/models/{MODEL}:generateContent")).json(&body).send().await {
                    if r.status() == 200 && r.bytes().await.is_ok() {
                        done.lock().push(Instant::now());
                    }
                }
            }
        }));
    }
    // Load for a while, then SIGKILL mid-load.
    assert!(eventually(Duration::from_secs(20), || async { done.lock().len() >= 1500 }).await);
    let killed_at = Instant::now();
    proxy.kill().await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    // The batch window is [usage] batch_ms (500 ms by default); a little
    // slack for the commit itself.
    let window = Duration::from_millis(500 + 300);
    let answered = done.lock().iter().filter(|t| **t + window < killed_at).count() as u64;

    // The database opens and reads (the CLI, no proxy running).
    let (ok, out, err) = env.cli(&["usage", "--by", "day", "--since", "1h", "--json"]).await;
    assert!(ok, "usage after SIGKILL: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let recorded = v["total"]["requests"].as_u64().unwrap();
    assert!(recorded >= answered, "rows lost beyond the last batch window: {recorded} recorded, {answered} answered before the window");
    // And a proxy starts on it and keeps recording.
    let proxy = env.start().await;
    assert_eq!(Shape::Gemini.send(&proxy, None, MODEL, "after").await.0, 200);
    assert!(eventually(Duration::from_secs(5), || async { usage_totals(&proxy, "by=day&since=1h").await["requests"].as_u64().unwrap_or(0) > recorded }).await);
    proxy.stop().await;
}
