//! The usage log end to end on real files: batches and their deadline,
//! aggregates against raw rows, a full queue, retention, reopening, a
//! reader beside the writer, the groupings; and, when Debian's
//! redis-server is installed, two nodes summed in one Redis.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::*;
use crate::config::{Config, Overrides};
use crate::util::now_ms;

fn config(dir: &Path) -> Config {
    let mut c = Config::load(&Overrides { data_dir: Some(dir.to_path_buf()), ..Default::default() }).expect("default config");
    c.cluster.redis_url = None;
    c.usage = crate::config::UsageConfig::default();
    c
}

fn row(ts_ms: u64, key: &str, account: &str, model: &str, input: u64, output: u64) -> UsageRow {
    UsageRow {
        ts_ms,
        key: name(key),
        account: name(account),
        client_model: name(model),
        upstream_model: name(&format!("{model}-up")),
        protocol: "openai",
        route: "chat",
        stream: false,
        status: 200,
        input_tokens: input,
        output_tokens: output,
        cached_tokens: input / 4,
        thinking_tokens: output / 2,
        latency_ms: 100,
        attempts: 1,
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn all(by: By, since_ms: u64) -> UsageQuery {
    UsageQuery { by, since_ms, key: None, account: None, model: None }
}

#[test]
fn a_name_is_one_shared_copy_up_to_the_cap() {
    let log = UsageLog::disabled();
    let (a, b) = (log.name("gemini-2.5-pro"), log.name("gemini-2.5-pro"));
    assert_eq!((a.as_ptr(), &a[..]), (b.as_ptr(), &b"gemini-2.5-pro"[..]));
    assert_ne!(log.name("gemini-2.5-flash").as_ptr(), a.as_ptr());
    for i in 0..INTERNED_CAP {
        log.name(&format!("m{i}"));
    }
    // Past the cap a name is still right, only copied each time.
    let (c, d) = (log.name("late-model"), log.name("late-model"));
    assert_eq!((&c[..], &d[..]), (&b"late-model"[..], &b"late-model"[..]));
    assert_ne!(c.as_ptr(), d.as_ptr());
}

#[test]
fn a_batch_commits_within_its_window_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.usage.batch_ms = 100;
    let log = UsageLog::open(&c).unwrap();
    let start = Instant::now();
    for i in 0..3 {
        log.record(row(now_ms(), "k", "acc", "m", i, 1));
    }
    assert!(log.wait_written(3, Duration::from_secs(10)), "the batch was not committed");
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert_eq!(count(&c.data_dir.join("usage.db"), "SELECT COUNT(*) FROM requests"), 3);
}

#[test]
fn a_full_batch_of_waiting_rows_commits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.usage.batch_ms = 600_000;
    let log = UsageLog::open(&c).unwrap();
    let n = super::writer::BATCH_MAX as u64;
    for i in 0..n {
        log.record(row(now_ms(), "k", "acc", "m", i, 1));
    }
    assert!(log.wait_written(n, Duration::from_secs(20)), "a full batch did not commit before the window");
}

/// Hour, key, account, model (name ids), then the seven sums.
type Agg = [i64; 11];

#[test]
fn hourly_aggregates_equal_the_sums_of_raw_rows() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let log = UsageLog::open(&c).unwrap();
    let now = now_ms();
    for i in 0..2000u64 {
        let mut r = row(now - (i % 50) * 1_234_567, ["a", "b", ""][(i % 3) as usize], &format!("acc{}", i % 7), ["m1", "m2"][(i % 2) as usize], i, i * 2);
        r.status = if i % 11 == 0 { 429 } else { 200 };
        r.latency_ms = (i % 300) as u32;
        log.record(r);
    }
    log.flush();
    let db = Connection::open(c.data_dir.join("usage.db")).unwrap();
    let raw: Vec<Agg> = db
        .prepare(
            "SELECT (ts_ms / 3600000) * 3600000 h, key, account, client_model, COUNT(*), SUM(status >= 400), SUM(input), SUM(output), SUM(cached), SUM(thinking), SUM(latency_ms) \
             FROM requests GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        )
        .unwrap()
        .query_map([], |r| {
            let mut a = [0i64; 11];
            for (i, v) in a.iter_mut().enumerate() {
                *v = r.get(i)?;
            }
            Ok(a)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let hourly: Vec<Agg> = db
        .prepare("SELECT hour_ms, key, account, client_model, requests, errors, input, output, cached, thinking, latency_ms FROM hourly ORDER BY 1, 2, 3, 4")
        .unwrap()
        .query_map([], |r| {
            let mut a = [0i64; 11];
            for (i, v) in a.iter_mut().enumerate() {
                *v = r.get(i)?;
            }
            Ok(a)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(raw.len() > 50);
    assert_eq!(raw, hourly);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.usage.queue_rows = 8;
    let log = UsageLog::open(&c).unwrap();
    // Another connection holds the write lock: the writer's first commit
    // waits on it, so the queue fills behind it.
    let blocker = Connection::open(c.data_dir.join("usage.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let start = Instant::now();
    let total = 20_000u64;
    for i in 0..total {
        log.record(row(now_ms(), "k", "acc", "m", i, 1));
    }
    assert!(start.elapsed() < Duration::from_secs(2), "record blocked: {:?}", start.elapsed());
    assert!(log.dropped() > 0, "nothing was dropped");
    blocker.execute_batch("COMMIT").unwrap();
    log.flush();
    // A batch whose commit timed out on the lock is counted as dropped too.
    assert_eq!(log.written() + log.dropped(), total);
}

#[test]
fn retention_deletes_old_raw_rows_and_hourly_keeps_them_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.usage.retention_days = 1;
    let now = now_ms();
    let old = now - 3 * row::DAY_MS;
    {
        let log = UsageLog::open(&c).unwrap();
        log.record(row(old, "k", "acc", "m", 10, 5));
        log.record(row(old + 1, "k", "acc", "m", 10, 5));
        log.record(row(now, "k", "acc", "m", 1, 1));
        log.flush();
    }
    let db = c.data_dir.join("usage.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM requests"), 3);
    // Retention runs when the writer starts (and hourly after).
    let log = UsageLog::open(&c).unwrap();
    log.flush();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM requests"), 1);
    assert_eq!(count(&db, "SELECT SUM(requests) FROM hourly"), 3);
    // The old part comes from the hourly sums, the recent one from raw rows.
    let r = log.query(&all(By::Key, now - 5 * row::DAY_MS)).unwrap();
    assert_eq!((r.total.requests, r.total.input_tokens, r.total.output_tokens), (3, 21, 11));
    assert!(!r.exact_since);
    let recent = log.query(&all(By::Key, now - 3_600_000)).unwrap();
    assert_eq!(recent.total.requests, 1);
    assert!(recent.exact_since);
}

#[test]
fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let now = now_ms();
    {
        let log = UsageLog::open(&c).unwrap();
        log.record(row(now, "k", "acc", "m", 7, 3));
        // No flush: dropping the last handle commits what waits.
    }
    let log = UsageLog::open(&c).unwrap();
    log.record(row(now, "k", "acc", "m", 1, 1));
    log.flush();
    let r = log.query(&all(By::Key, now - 1000)).unwrap();
    assert_eq!((r.total.requests, r.total.input_tokens), (2, 8));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.data_dir.join("usage.db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_reader_in_another_connection_reads_while_the_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.usage.batch_ms = 5;
    let log = UsageLog::open(&c).unwrap();
    let now = now_ms();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 0..20_000u64 {
                log.record(row(now, "k", "acc", "m", 1, 1));
                if i % 2000 == 0 {
                    log.flush();
                }
            }
            log.flush();
        })
    };
    let db = c.data_dir.join("usage.db");
    let mut last = 0;
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        // As the CLI does: a fresh read-only connection each time.
        let r = query_file(&db, &all(By::Key, now - 1000), now_ms(), 30).unwrap().expect("the database exists");
        assert!(r.total.requests >= last, "went back from {last} to {}", r.total.requests);
        last = r.total.requests;
        reads += 1;
    }
    writer.join().unwrap();
    let r = query_file(&db, &all(By::Key, now - 1000), now_ms(), 30).unwrap().unwrap();
    assert_eq!(r.total.requests, 20_000 - log.dropped());
}

#[test]
fn queries_group_filter_and_sum() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let log = UsageLog::open(&c).unwrap();
    let now = now_ms();
    let yesterday = now - row::DAY_MS;
    log.record(row(now, "alice", "acc1", "flash", 100, 10));
    log.record(row(now, "alice", "acc2", "pro", 200, 20));
    let mut failed = row(now, "bob", "acc1", "flash", 0, 0);
    failed.status = 503;
    failed.latency_ms = 300;
    log.record(failed);
    log.record(row(yesterday, "", "acc1", "flash", 1000, 100));
    log.flush();
    let since = now - 2 * row::DAY_MS;

    let by_key = log.query(&all(By::Key, since)).unwrap();
    let names: Vec<&str> = by_key.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["", "alice", "bob"], "most tokens first");
    let alice = &by_key.groups[1];
    assert_eq!((alice.requests, alice.input_tokens, alice.output_tokens, alice.cached_tokens, alice.thinking_tokens), (2, 300, 30, 75, 15));
    let bob = &by_key.groups[2];
    assert_eq!((bob.requests, bob.errors, bob.avg_latency_ms), (1, 1, 300));
    assert_eq!((by_key.total.requests, by_key.total.errors, by_key.total.input_tokens, by_key.total.avg_latency_ms), (4, 1, 1300, 150));

    let by_account = log.query(&all(By::Account, since)).unwrap();
    let acc1 = by_account.groups.iter().find(|g| g.group == "acc1").unwrap();
    assert_eq!(acc1.requests, 3);

    let by_model = log.query(&UsageQuery { key: Some("alice".into()), ..all(By::Model, since) }).unwrap();
    assert_eq!(by_model.groups.len(), 2);
    assert_eq!(by_model.total.requests, 2);
    let upstream = log.query(&UsageQuery { model: Some("pro-up".into()), ..all(By::Model, since) }).unwrap();
    assert_eq!(upstream.total.requests, 1);

    let by_day = log.query(&all(By::Day, since)).unwrap();
    let days: Vec<String> = by_day.groups.iter().map(|g| g.group.clone()).collect();
    let day = |ms: u64| crate::util::utc_time((ms / 1000) as i64)[..10].to_string();
    assert_eq!(days, [day(yesterday), day(now)]);
    assert_eq!(by_day.groups[0].requests, 1);

    let by_hour = log.query(&all(By::Hour, since)).unwrap();
    assert_eq!(by_hour.groups.len(), 2);
    assert!(by_hour.groups[1].group.ends_with(":00"));

    let only_recent = log.query(&UsageQuery { account: Some("acc1".into()), ..all(By::Key, now - 60_000) }).unwrap();
    assert_eq!(only_recent.total.requests, 2);

    let series = log.series(since, By::Key).unwrap();
    let alice_tokens: u64 = series.iter().filter(|p| p.group == "alice").map(|p| p.tokens).sum();
    // Tokens are input, output and thinking (half the output here).
    assert_eq!(alice_tokens, 345);
    assert_eq!(series.iter().map(|p| p.requests).sum::<u64>(), 4);

    let windows = vec![("acc1".to_string(), now - 60_000), ("acc2".to_string(), since), ("nobody".to_string(), since)];
    let tokens = log.tokens_by_account_since(&windows).unwrap();
    assert_eq!(tokens.get("acc1"), Some(&115));
    assert_eq!(tokens.get("acc2"), Some(&230));
    assert_eq!(tokens.get("nobody"), None);

    let today = log.today_by_key().unwrap();
    assert_eq!(today.get("alice"), Some(&(2, 345)));
    assert_eq!(today.get("bob"), Some(&(1, 0)));
}

#[test]
fn token_counters_are_registered_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = UsageLog::open(&config(dir.path())).unwrap();
    let mut registry = prometheus_client::registry::Registry::with_prefix("grantpool");
    log.register_metrics(&mut registry);
    log.record(row(now_ms(), "alice", "acc", "flash", 40, 2));
    log.record(row(now_ms(), "alice", "acc", "flash", 60, 2));
    log.flush();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains(r#"grantpool_tokens_total{key="alice",model="flash",kind="input"} 100"#), "{text}");
    assert!(text.contains("grantpool_usage_rows_written_total 2"), "{text}");
    assert!(text.contains("grantpool_usage_rows_dropped_total 0"), "{text}");
}

#[test]
fn a_disabled_log_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.usage.enabled = false;
    let log = UsageLog::open(&c).unwrap();
    log.record(row(now_ms(), "k", "acc", "m", 1, 1));
    log.flush();
    assert!(!log.is_enabled());
    assert!(!c.data_dir.join("usage.db").exists());
    assert!(matches!(log.query(&all(By::Key, 0)), Err(UsageError::Disabled)));
    assert!(log.today_by_key().unwrap().is_empty());
}

#[test]
fn the_cli_formats_and_handles_a_missing_database() {
    assert_eq!(cli::thousands(0), "0");
    assert_eq!(cli::thousands(999), "999");
    assert_eq!(cli::thousands(1_234_567), "1,234,567");
    assert_eq!(cli::parse_span("24h").unwrap(), 86_400_000);
    assert_eq!(cli::parse_span("7d").unwrap(), 7 * 86_400_000);
    assert!(cli::parse_span("soon").is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(query_file(&dir.path().join("usage.db"), &all(By::Key, 0), now_ms(), 30).unwrap().is_none());

    let c = config(dir.path());
    let log = UsageLog::open(&c).unwrap();
    log.record(row(now_ms(), "alice", "acc", "flash", 1_234_567, 2));
    drop(log);
    let r = query_file(&c.data_dir.join("usage.db"), &all(By::Key, 0), now_ms(), 30).unwrap().unwrap();
    let table = cli::table(&r, "24h");
    assert!(table.contains("1,234,567"), "{table}");
    assert!(table.contains("usage.db"), "{table}");
    assert!(table.contains("TOTAL"), "{table}");
}

/// A throwaway redis-server on `port` (as store/cluster/tests.rs starts one).
struct RedisServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("/usr/bin/redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, _dir: dir }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_nodes_on_one_redis_answer_for_both_and_sums_wait_while_it_is_down() {
    if !Path::new("/usr/bin/redis-server").exists() {
        eprintln!("skipped: no /usr/bin/redis-server");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = |dir: &Path| {
        let mut c = config(dir);
        c.cluster.redis_url = Some(format!("redis://127.0.0.1:{port}/0"));
        c.cluster.key_prefix = "usage-unit".into();
        UsageLog::open(&c).unwrap()
    };
    let (a, b) = (node(d1.path()), node(d2.path()));
    let now = now_ms();
    // Redis is not up yet: node a's sums wait in memory.
    a.record(row(now, "alice", "acc1", "flash", 100, 10));
    a.flush();
    assert!(matches!(a.query(&all(By::Key, now - 60_000)), Err(UsageError::Cluster { .. })));

    let _server = RedisServer::start(port);
    a.record(row(now, "alice", "acc1", "flash", 100, 10));
    a.flush();
    b.record(row(now, "bob", "acc2", "pro", 1, 1));
    b.record(row(now, "alice", "acc2", "pro", 5, 5));
    b.flush();
    for log in [&a, &b] {
        let r = log.query(&all(By::Key, now - 60_000)).unwrap();
        assert!(r.cluster);
        assert_eq!(r.total.requests, 4);
        let alice = r.groups.iter().find(|g| g.group == "alice").unwrap();
        assert_eq!((alice.requests, alice.input_tokens, alice.output_tokens), (3, 205, 25));
        let today = log.today_by_key().unwrap();
        assert_eq!(today.get("alice"), Some(&(3, 242)));
        let tokens = log.tokens_by_account_since(&[("acc2".into(), now - 60_000)]).unwrap();
        assert_eq!(tokens.get("acc2"), Some(&14));
        let series = log.series(now - 60_000, By::Account).unwrap();
        assert_eq!(series.iter().map(|p| p.requests).sum::<u64>(), 4);
    }
    // The CLI's path: no writer at all.
    let r = query_cluster(&format!("redis://127.0.0.1:{port}/0"), "usage-unit", &all(By::Model, now - 60_000), now_ms()).unwrap();
    assert_eq!(r.total.requests, 4);
    // Each node's own file holds only its own rows.
    assert_eq!(count(&d1.path().join("usage.db"), "SELECT COUNT(*) FROM requests"), 2);
}

#[test]
fn a_period_starting_mid_hour_counts_from_its_first_ms() {
    let dir = tempfile::tempdir().unwrap();
    let log = UsageLog::open(&config(dir.path())).unwrap();
    let hour = (now_ms() - 3 * row::HOUR_MS) / row::HOUR_MS * row::HOUR_MS;
    let minute = 60_000;
    for (at, input) in [(10, 1), (30, 10), (50, 100), (70, 1000), (130, 10_000)] {
        log.record(row(hour + at * minute, "k", "acc", "m", input, 0));
    }
    log.flush();
    let r = log.query(&all(By::Hour, hour + 20 * minute)).unwrap();
    assert!(r.exact_since);
    assert_eq!((r.total.requests, r.total.input_tokens), (4, 11_110));
    assert_eq!(r.groups.len(), 3);
    let r = log.query(&all(By::Key, hour + 60 * minute)).unwrap();
    assert_eq!(r.total.input_tokens, 11_000);
    let r = log.query(&all(By::Key, hour + 71 * minute)).unwrap();
    assert_eq!(r.total.input_tokens, 10_000);
}

#[test]
fn a_version_1_database_is_upgraded_with_its_rows_and_its_sums_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let db = c.data_dir.join("usage.db");
    std::fs::create_dir_all(&c.data_dir).unwrap();
    let now = now_ms();
    {
        // The first schema: a table row per request, with its index.
        let v1 = Connection::open(&db).unwrap();
        v1.execute_batch(
            "CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
             CREATE TABLE requests (ts_ms INTEGER NOT NULL, key INTEGER NOT NULL, account INTEGER NOT NULL,
                 client_model INTEGER NOT NULL, upstream_model INTEGER NOT NULL, protocol INTEGER NOT NULL,
                 route INTEGER NOT NULL, stream INTEGER NOT NULL, status INTEGER NOT NULL, input INTEGER NOT NULL,
                 output INTEGER NOT NULL, cached INTEGER NOT NULL, thinking INTEGER NOT NULL,
                 latency_ms INTEGER NOT NULL, attempts INTEGER NOT NULL);
             CREATE INDEX requests_ts ON requests(ts_ms);
             CREATE TABLE hourly (hour_ms INTEGER NOT NULL, key INTEGER NOT NULL, account INTEGER NOT NULL,
                 client_model INTEGER NOT NULL, upstream_model INTEGER NOT NULL, protocol INTEGER NOT NULL,
                 requests INTEGER NOT NULL, errors INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL,
                 cached INTEGER NOT NULL, thinking INTEGER NOT NULL, latency_ms INTEGER NOT NULL,
                 PRIMARY KEY (hour_ms, key, account, client_model, upstream_model, protocol)) WITHOUT ROWID;
             INSERT INTO names (id, name) VALUES (1, 'team'), (2, 'acc1'), (3, 'm'), (4, 'm-up'), (5, 'openai'), (6, 'chat');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        for i in 0..5000u64 {
            // Three hours back to now, out of order.
            let ts = now - (i * 7919 % 5000) * 2000;
            v1.execute(
                "INSERT INTO requests VALUES (?1, 1, 2, 3, 4, 5, 6, 0, ?2, ?3, ?4, 0, 0, 10, 1)",
                rusqlite::params![ts as i64, if i % 10 == 0 { 429 } else { 200 }, i as i64, 2 * i as i64],
            )
            .unwrap();
        }
        // Its hourly sums, as the first writer kept them.
        v1.execute_batch(
            "INSERT INTO hourly SELECT (ts_ms / 3600000) * 3600000, key, account, client_model, upstream_model, protocol,
                 COUNT(*), SUM(status >= 400), SUM(input), SUM(output), SUM(cached), SUM(thinking), SUM(latency_ms)
             FROM requests GROUP BY 1, 2, 3, 4, 5, 6",
        )
        .unwrap();
    }
    // A reader of this build asks for the upgrade rather than reading nothing.
    let err = query_file(&db, &all(By::Key, now - 3_600_000), now, 30).unwrap_err().to_string();
    assert!(err.contains("schema version 1") && err.contains("grantpool serve"), "{err}");
    let log = UsageLog::open(&c).unwrap();
    assert_eq!(count(&db, "PRAGMA user_version"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM requests"), 5000);
    assert_eq!(count(&db, "SELECT SUM(input) FROM requests"), (0..5000).sum::<i64>());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('requests_ts', 'requests_v1')"), 0);
    // Every chunk lies within one hour.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM chunks WHERE min_ts / 3600000 != max_ts / 3600000"), 0);
    // The last 90 minutes, with its first part-hour from the raw rows.
    let since = now - 5_400_000;
    let r = log.query(&all(By::Key, since)).unwrap();
    let expect: Vec<u64> = (0..5000u64).filter(|i| now - (i * 7919 % 5000) * 2000 >= since).collect();
    assert_eq!(r.total.requests, expect.len() as u64);
    assert_eq!(r.total.input_tokens, expect.iter().sum::<u64>());
    assert_eq!(r.total.errors, expect.iter().filter(|i| *i % 10 == 0).count() as u64);
    // New rows go in beside the old ones.
    log.record(row(now, "team", "acc1", "m", 7, 1));
    log.flush();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM requests"), 5001);
}
