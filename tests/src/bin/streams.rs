//! `streams`: many streaming requests held open at once through a real
//! `grantpool serve`, against the fake Google answering slowly (the first
//! event at once, the rest after `--hold-secs`). Reports errors, the
//! proxy's resident memory and descriptors while every stream is open, and
//! the time-to-first-byte overhead against calling the fake directly.
//!
//! ```text
//! cargo run --release -p grantpool-tests --bin streams -- \
//!     --grantpool target/release/grantpool --streams 9000 --hold-secs 60
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use grantpool_tests::fake::{AccountSpec, FakeGoogle, SettingsPatch};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    /// The grantpool binary.
    #[arg(long, default_value = "target/release/grantpool")]
    grantpool: PathBuf,
    /// Streams held open at once.
    #[arg(long, default_value_t = 9000)]
    streams: usize,
    /// How long the fake holds each stream between its first event and its end.
    #[arg(long, default_value_t = 60)]
    hold_secs: u64,
    /// Accounts in the pool.
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// Sequential requests for the time-to-first-byte medians.
    #[arg(long, default_value_t = 100)]
    ttfb_runs: usize,
    /// Proxy to the fake over HTTP/1.1, one connection per stream, instead
    /// of HTTP/2 (h2c), which is what the proxy speaks to Google (ALPN).
    #[arg(long)]
    upstream_http1: bool,
}

const MODEL: &str = "gemini-2.5-pro";

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// One streaming request on its own connection: the time to its first
/// event, then whether it ended complete.
async fn stream_once(addr: &str, path: &str, body: &str, host: &str, extra_headers: &str, first: Option<&AtomicUsize>) -> Result<(Duration, bool), String> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let req = format!("POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}", body.len());
    s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.map_err(|e| format!("read: {e}"))?;
    if !line.contains(" 200 ") {
        let mut rest = String::new();
        let _ = r.read_to_string(&mut rest).await;
        return Err(format!("{} {}", line.trim(), rest.chars().rev().take(300).collect::<String>().chars().rev().collect::<String>()));
    }
    let mut ttfb = None;
    let mut complete = false;
    loop {
        line.clear();
        match r.read_line(&mut line).await {
            Ok(0) => break,
            Ok(_) => {
                if line.starts_with("data:") {
                    if ttfb.is_none() {
                        ttfb = Some(started.elapsed());
                        if let Some(c) = first {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if line.contains("finishReason") {
                        complete = true;
                    }
                }
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok((ttfb.ok_or("no event")?, complete))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fake = FakeGoogle::start().await?;
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("grantpool.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{d}\"\n[server]\nlisten = \"127.0.0.1:0\"\nmax_attempts = 2\n[oauth]\ntoken_url = \"{f}/token\"\nuserinfo_url = \"{f}/userinfo\"\n[upstream]\nbase_url = \"{f}\"\ntimeout_secs = {t}\nhttp2_prior_knowledge = {h2}\n[log]\nlevel = \"warn\"\n",
            d = dir.path().display(),
            f = fake.base_url(),
            t = args.hold_secs + 120,
            h2 = !args.upstream_http1,
        ),
    )?;
    for i in 0..args.accounts {
        let (email, rt) = (format!("s{i}@example.com"), format!("rt-s{i}"));
        fake.add_account(AccountSpec::new(&email, &rt)).await;
        let out = std::process::Command::new(&args.grantpool).arg("--config").arg(&cfg).args(["accounts", "add", "--refresh-token", &rt]).output()?;
        anyhow::ensure!(out.status.success(), "accounts add: {}", String::from_utf8_lossy(&out.stderr));
    }
    fake.set_settings(SettingsPatch { max_recorded_requests: Some(16), ..Default::default() }).await;
    let mut child = tokio::process::Command::new(&args.grantpool)
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let Some(line) = lines.next_line().await? else { anyhow::bail!("grantpool exited") };
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on http://".len()..].split_whitespace().next().unwrap_or("").to_string();
        }
    };
    let log_errors = Arc::new(AtomicUsize::new(0));
    {
        let log_errors = log_errors.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(" ERROR ") || line.contains(" WARN ") {
                    if log_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("grantpool: {line}");
                    }
                }
            }
        });
    }
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hold me"}]}]}).to_string();
    let path = format!("/v1beta/models/{MODEL}:streamGenerateContent?alt=sse");

    // Time to first byte at rest: direct to the fake, then through grantpool.
    let fake_addr = fake.base_url().trim_start_matches("http://").to_string();
    let token = fake.access_token_for("s0@example.com").await;
    let envelope = serde_json::json!({"model": MODEL, "project": "fake-project-s0", "userAgent": "antigravity", "requestType": "agent", "requestId": "agent-1", "request": {"contents": [{"role": "user", "parts": [{"text": "hold me"}]}], "sessionId": "-1"}}).to_string();
    let auth = format!("authorization: Bearer {token}\r\nuser-agent: antigravity/hub/2.9.1 darwin/arm64\r\n");
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..args.ttfb_runs {
        direct.push(stream_once(&fake_addr, "/v1internal:streamGenerateContent?alt=sse", &envelope, &fake_addr, &auth, None).await.map_err(anyhow::Error::msg)?.0);
        proxied.push(stream_once(&url, &path, &body, &url, "", None).await.map_err(anyhow::Error::msg)?.0);
    }
    let (ttfb_direct, ttfb_proxied) = (median(direct), median(proxied));
    let rss_idle = rss_kib(pid);
    let fds_idle = fds(pid);

    // Every stream held open at once.
    fake.set_settings(SettingsPatch { stream_hold_ms: Some(args.hold_secs * 1000), ..Default::default() }).await;
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.streams);
    for i in 0..args.streams {
        let (url, path, body, opened) = (url.clone(), path.clone(), body.clone(), opened.clone());
        tasks.push(tokio::spawn(async move { stream_once(&url, &path, &body, &url, "", Some(&opened)).await }));
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut peak_rss = 0;
    let mut peak_fds = 0;
    let all_open_after = loop {
        peak_rss = peak_rss.max(rss_kib(pid));
        peak_fds = peak_fds.max(fds(pid));
        let n = opened.load(Ordering::Relaxed);
        if n >= args.streams {
            break Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(args.hold_secs) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Held: sample while every stream is open.
    let until = Instant::now() + Duration::from_secs(args.hold_secs / 2);
    while Instant::now() < until {
        peak_rss = peak_rss.max(rss_kib(pid));
        peak_fds = peak_fds.max(fds(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (mut ok, mut incomplete, mut errors, mut ttfbs) = (0, 0, Vec::new(), Vec::new());
    for t in tasks {
        match t.await? {
            Ok((ttfb, true)) => {
                ok += 1;
                ttfbs.push(ttfb);
            }
            Ok((_, false)) => incomplete += 1,
            Err(e) => errors.push(e),
        }
    }
    let rss_after = rss_kib(pid);
    let per_stream = peak_rss.saturating_sub(rss_idle) as f64 / args.streams as f64;
    let (hop, flag) = if args.upstream_http1 { ("HTTP/1.1, a connection per stream", " --upstream-http1") } else { ("HTTP/2 (h2c)", "") };
    println!(
        "\n### {} streams held open {} s, proxy → fake over {hop} (`streams --streams {} --hold-secs {}{flag}`)\n",
        args.streams, args.hold_secs, args.streams, args.hold_secs
    );
    println!("| figure | value |\n|---|---|");
    println!("| complete streams | {ok} of {} |", args.streams);
    println!("| errors / incomplete | {} / {incomplete} |", errors.len());
    println!("| every stream open after | {} |", all_open_after.map_or("not all opened".into(), |d| format!("{:.1} s", d.as_secs_f64())));
    println!("| grantpool resident memory: idle → peak (all open) → after | {} MiB → {} MiB → {} MiB |", rss_idle / 1024, peak_rss / 1024, rss_after / 1024);
    println!("| per stream held | {:.1} KiB |", per_stream);
    println!("| grantpool open descriptors: idle → peak | {fds_idle} → {peak_fds} |");
    println!("| time to first byte at rest, median of {}: direct → through grantpool | {:.2} ms → {:.2} ms (+{:.2} ms) |", args.ttfb_runs, ttfb_direct.as_secs_f64() * 1e3, ttfb_proxied.as_secs_f64() * 1e3, (ttfb_proxied.as_secs_f64() - ttfb_direct.as_secs_f64()) * 1e3);
    println!("| time to first byte under the load, median | {:.1} ms |", median(ttfbs).as_secs_f64() * 1e3);
    println!("| warnings/errors in grantpool's log | {} |", log_errors.load(Ordering::Relaxed));
    if !errors.is_empty() {
        println!("\nfirst errors: {:?}", &errors[..errors.len().min(5)]);
    }
    let _ = child.kill().await;
    std::process::exit(if errors.is_empty() && incomplete == 0 { 0 } else { 1 });
}
