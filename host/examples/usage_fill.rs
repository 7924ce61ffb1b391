//! Fills a usage database through the real writer and reports its size:
//! `cargo run --release -p grantpool --example usage_fill -- 1000000 DIR`.
//!
//! Rows are realistic: a few named keys, 50 accounts, 5 models, token
//! counts of chat and agent traffic, spread over the last 28 days (within
//! the default 30-day retention, so every row stays). The recorder keeps
//! at most half the queue waiting, so the rate printed is the writer's and
//! no row should be dropped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use grantpool::config::{Config, Overrides};
use grantpool::usage::{By, UsageLog, UsageQuery, UsageRow};
use rand::Rng;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().unwrap_or_else(|| "1000000".into()).parse()?;
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "usage-fill".into()));
    std::fs::create_dir_all(&dir)?;
    let mut config = Config::load(&Overrides { data_dir: Some(dir.clone()), ..Default::default() })?;
    config.cluster.redis_url = None;
    let log = UsageLog::open(&config)?;
    let db = dir.join("usage.db");

    let keys = ["", "ci", "alice", "bob", "agents"];
    let accounts: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
    let models = [
        ("gemini-2.5-pro", "gemini-2.5-pro", "gemini", "generate"),
        ("gemini-2.5-flash", "gemini-2.5-flash", "gemini", "generate"),
        ("gpt-4o", "gemini-2.5-flash", "openai", "chat"),
        ("gpt-5-codex", "gemini-3-pro-preview", "openai", "responses"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-thinking", "anthropic", "messages"),
    ];
    let span_ms = 28 * 86_400_000u64;
    let now = grantpool::util::now_ms();
    let first = now - span_ms;
    let in_flight = (config.usage.queue_rows / 2) as u64;
    let mut rng = rand::rng();

    let start = Instant::now();
    for i in 0..n {
        if i >= in_flight && log.written() + log.dropped() < i - in_flight {
            log.wait_written(i - in_flight, Duration::from_secs(60));
        }
        let (client_model, upstream_model, protocol, route) = models[rng.random_range(0..models.len())];
        let input = rng.random_range(500..60_000u64);
        let failed = rng.random_bool(0.02);
        log.record(UsageRow {
            ts_ms: first + i * span_ms / n.max(1),
            key: log.name(keys[rng.random_range(0..keys.len())]),
            account: log.name(&accounts[rng.random_range(0..accounts.len())]),
            client_model: log.name(client_model),
            upstream_model: log.name(upstream_model),
            protocol,
            route,
            stream: rng.random_bool(0.8),
            status: if failed { 429 } else { 200 },
            input_tokens: if failed { 0 } else { input },
            output_tokens: if failed { 0 } else { rng.random_range(20..4_000) },
            cached_tokens: if failed { 0 } else { input * rng.random_range(0..80u64) / 100 },
            thinking_tokens: if failed || rng.random_bool(0.5) { 0 } else { rng.random_range(0..3_000) },
            latency_ms: rng.random_range(300..40_000),
            attempts: if failed { 3 } else { 1 },
        });
    }
    log.flush();
    let elapsed = start.elapsed();
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (db_size, wal_size) = (size(db.clone()), size(dir.join("usage.db-wal")));
    println!("rows: {n} in {:.1}s = {:.0} rows/s", elapsed.as_secs_f64(), n as f64 / elapsed.as_secs_f64());
    println!("written: {}, dropped: {}", log.written(), log.dropped());
    println!(
        "usage.db: {:.1} MiB, usage.db-wal: {:.1} MiB, {:.0} bytes/row",
        db_size as f64 / 1048576.0,
        wal_size as f64 / 1048576.0,
        (db_size + wal_size) as f64 / n.max(1) as f64
    );

    // How long the page's questions take on a database this size.
    let timed = |what: &str, f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let groups = f();
        println!("{what}: {groups} groups in {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    };
    let q = |by, since_ms| UsageQuery { by, since_ms, key: None, account: None, model: None };
    timed("query by key, 24h", &|| log.query(&q(By::Key, now - 86_400_000)).unwrap().groups.len());
    timed("query by model, 30d", &|| log.query(&q(By::Model, now - 30 * 86_400_000)).unwrap().groups.len());
    timed("query by day, 30d", &|| log.query(&q(By::Day, now - 30 * 86_400_000)).unwrap().groups.len());
    timed("series by account, 7d", &|| log.series(now - 7 * 86_400_000, By::Account).unwrap().len());
    let five_hours: Vec<(String, u64)> = accounts.iter().map(|a| (a.clone(), now - 5 * 3_600_000)).collect();
    let weekly: Vec<(String, u64)> = accounts.iter().map(|a| (a.clone(), now - 7 * 86_400_000)).collect();
    timed("tokens_by_account_since, 50 accounts, 5h", &|| log.tokens_by_account_since(&five_hours).unwrap().len());
    timed("tokens_by_account_since, 50 accounts, 7d", &|| log.tokens_by_account_since(&weekly).unwrap().len());
    timed("today_by_key", &|| log.today_by_key().unwrap().len());
    drop(log);
    println!("after close (WAL checkpointed): usage.db {:.1} MiB", size(db) as f64 / 1048576.0);
    Ok(())
}
