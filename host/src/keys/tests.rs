//! Tests of the named keys: formats, globs, dates, limits with an injected
//! clock, the file backend across rings (processes), and with a
//! `redis-server` when there is one, two nodes sharing keys and counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{FileKeys, RedisKeys};
use super::record::*;
use super::ring::{names, Clock};
use super::*;

/// 2026-12-07 12:00:37 UTC.
const T0: u64 = 1_796_644_837;

fn clock_at(t: u64) -> (Clock, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(t));
    let n = now.clone();
    (Arc::new(move || n.load(Ordering::Relaxed)), now)
}

fn file_ring(dir: &std::path::Path, clock: Clock) -> KeyRing {
    KeyRing::with_backend(Box::new(FileKeys::new(dir)), clock).unwrap()
}

fn named(a: Admission) -> Arc<NamedKey> {
    match a {
        Admission::Named(k) => k,
        other => panic!("expected a named key, got {other:?}"),
    }
}

fn refused(a: Admission) -> KeyRefusal {
    match a {
        Admission::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Waits for `cond`, polling, up to `within`.
fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < until, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn secrets_hashes_and_hints() {
    let s = new_secret();
    assert_eq!(s.len(), 43);
    assert!(s.starts_with("gp-") && s[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(s, new_secret());
    assert_eq!(hint_of(&s), &s[..7]);
    let h = hash_text(&digest("abc"));
    assert_eq!(h, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(parse_hash(&h), Some(digest("abc")));
    assert_eq!(parse_hash("sha256:xyz"), None);
    assert_eq!(parse_hash("md5:ba78"), None);
}

#[test]
fn names_globs_and_models() {
    assert!(check_name("ci-bot.v2_A").is_ok());
    for bad in ["", "has space", "slash/x", &"x".repeat(65)] {
        assert!(matches!(check_name(bad), Err(KeyError::InvalidName { .. })), "{bad:?}");
    }
    assert!(check_glob("gemini-*").is_ok());
    for bad in ["", "a b", "gpt-?", "[ab]"] {
        assert!(matches!(check_glob(bad), Err(KeyError::BadGlob { .. })), "{bad:?}");
    }
    let globs = vec!["gemini-*".to_string(), "claude-sonnet-*".to_string()];
    assert!(model_allowed(&globs, "gemini-2.5-pro"));
    assert!(model_allowed(&globs, "claude-sonnet-4-5"));
    assert!(!model_allowed(&globs, "claude-opus-4"));
    assert!(model_allowed(&[], "anything"));
}

#[test]
fn expiry_parsing() {
    assert_eq!(parse_expiry("30d", T0, false).unwrap(), Some(T0 + 30 * 86_400));
    assert_eq!(parse_expiry("12h", T0, false).unwrap(), Some(T0 + 12 * 3600));
    assert_eq!(parse_expiry("2027-01-31", T0, false).unwrap(), Some(1_801_353_600));
    assert_eq!(parse_expiry("2027-01-31T12:00:00Z", T0, false).unwrap(), Some(1_801_353_600 + 43_200));
    assert_eq!(parse_expiry("2027-01-31T14:00:00+02:00", T0, false).unwrap(), Some(1_801_353_600 + 43_200));
    assert_eq!(parse_expiry("2027-01-31T12:00:00.5Z", T0, false).unwrap(), Some(1_801_353_600 + 43_200));
    assert_eq!(parse_expiry("never", T0, true).unwrap(), None);
    for bad in ["never", "2027-02-30", "30x", "0d", "tomorrow", "2027-1-31"] {
        let e = parse_expiry(bad, T0, false).unwrap_err();
        assert!(e.to_string().contains("30d"), "{bad:?}: {e}");
    }
    assert_eq!(fmt_utc(T0), "2026-12-07 12:00:37 UTC");
    assert_eq!(yyyymmdd(T0 / 86_400), "20261207");
    for day in [0i64, 10_957, 20_794, -1] {
        let (y, m, d) = civil_from_days(day);
        assert_eq!(days_from_civil(y, m, d), day);
    }
}

#[test]
fn admit_knows_its_keys_and_refuses_expired_and_revoked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, now) = clock_at(T0);
    let ring = file_ring(dir.path(), clock);
    assert!(!ring.has_keys());
    let (rec, secret) = ring.add(KeySpec { name: "ci-bot".into(), expires_at: Some(T0 + 60), ..KeySpec::default() }).unwrap();
    assert!(ring.has_keys());
    assert!(rec.hash.starts_with("sha256:") && !rec.hash.contains(&secret[3..]));
    assert_eq!(named(ring.admit(&secret)).name(), "ci-bot");
    assert!(matches!(ring.admit("gp-not-a-key"), Admission::Unknown));
    assert!(!format!("{:?}", named(ring.admit(&secret))).contains(&secret));

    now.store(T0 + 60, Ordering::Relaxed);
    let r = refused(ring.admit(&secret));
    assert_eq!((r.status, r.limit), (401, "expired"));
    assert!(r.message.contains("\"ci-bot\"") && r.message.contains("2026-12-07 12:01:37 UTC") && !r.message.contains(&secret), "{}", r.message);
    ring.edit("ci-bot", KeyChange { expires_at: Some(None), ..KeyChange::default() }).unwrap();
    named(ring.admit(&secret));

    ring.revoke("ci-bot").unwrap();
    let r = refused(ring.admit(&secret));
    assert_eq!((r.status, r.limit), (401, "revoked"));
    assert!(!ring.has_keys());

    assert!(matches!(ring.add(KeySpec { name: "ci-bot".into(), ..KeySpec::default() }), Err(KeyError::Duplicate { .. })));
    assert!(matches!(ring.add(KeySpec { name: "old".into(), expires_at: Some(T0), ..KeySpec::default() }), Err(KeyError::InPast { .. })));
    assert!(matches!(ring.add(KeySpec { name: "z".into(), requests_per_minute: Some(0), ..KeySpec::default() }), Err(KeyError::BadLimit { .. })));
    let e = ring.revoke("nope").unwrap_err();
    assert!(e.to_string().contains("ci-bot"), "{e}");
    let mut reg = prometheus_client::registry::Registry::with_prefix("grantpool");
    ring.register_metrics(&mut reg);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(text.contains(r#"grantpool_key_limited_total{key="ci-bot",limit="revoked"} 1"#), "{text}");
}

#[test]
fn the_key_a_thread_remembers_admits_only_itself_and_only_in_its_ring() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = file_ring(da.path(), clock_at(T0).0);
    let b = file_ring(db.path(), clock_at(T0).0);
    let (_, secret) = a.add(KeySpec { name: "one".into(), ..KeySpec::default() }).unwrap();
    b.add(KeySpec { name: "other".into(), ..KeySpec::default() }).unwrap();
    assert_eq!(named(a.admit(&secret)).name(), "one");
    assert_eq!(named(a.admit(&secret)).name(), "one", "remembered");
    // The same length, one character off, and a prefix: not the key.
    let mut near = secret.clone();
    near.replace_range(secret.len() - 1.., if secret.ends_with('a') { "b" } else { "a" });
    assert!(matches!(a.admit(&near), Admission::Unknown));
    assert!(matches!(a.admit(&secret[..secret.len() - 1]), Admission::Unknown));
    // Remembered in ring a's snapshot: ring b does not know it.
    assert_eq!(named(a.admit(&secret)).name(), "one");
    assert!(matches!(b.admit(&secret), Admission::Unknown));
    // A key too long to remember is still found by its hash each time.
    assert!(matches!(a.admit(&"x".repeat(65)), Admission::Unknown));
    // A reload (here an edit) keeps the key's label: the same bytes, so
    // usage rows and token counters still know it by its address.
    let before = named(a.admit(&secret)).label();
    a.edit("one", KeyChange { requests_per_minute: Some(Some(10)), ..KeyChange::default() }).unwrap();
    let after = named(a.admit(&secret)).label();
    assert_eq!(before.as_ptr(), after.as_ptr());
}

#[test]
fn models_and_requests_per_minute_reset_at_the_minute() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, now) = clock_at(T0);
    let ring = file_ring(dir.path(), clock);
    let spec = KeySpec { name: "ci-bot".into(), models: vec!["gemini-*".into()], requests_per_minute: Some(2), ..KeySpec::default() };
    let (_, secret) = ring.add(spec).unwrap();
    let key = named(ring.admit(&secret));

    let r = ring.check(&key, "claude-opus-4").unwrap_err();
    assert_eq!((r.status, r.limit), (403, "model"));
    assert!(r.message.contains("gemini-*") && r.message.contains("claude-opus-4"), "{}", r.message);

    ring.check(&key, "gemini-2.5-pro").unwrap();
    ring.check(&key, "gemini-2.5-pro").unwrap();
    let r = ring.check(&key, "gemini-2.5-pro").unwrap_err();
    assert_eq!((r.status, r.limit, r.retry_after_secs), (429, "requests_per_minute", Some(23)));
    assert!(r.message.contains("resets in 23 s (at 12:01:00 UTC)") && r.message.contains("keys edit ci-bot --requests-per-minute N"), "{}", r.message);

    now.store(T0 + 23, Ordering::Relaxed);
    ring.check(&key, "gemini-2.5-pro").unwrap();
    let v = &ring.list()[0];
    assert_eq!((v.today.requests, v.today.minute_requests), (3, 1));
}

#[test]
fn tokens_per_day_let_the_crossing_request_finish_and_reset_at_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, now) = clock_at(T0);
    let ring = file_ring(dir.path(), clock);
    let (_, secret) = ring.add(KeySpec { name: "ci-bot".into(), tokens_per_day: Some(1000), ..KeySpec::default() }).unwrap();
    // The usage log says 900 tokens were used today before a restart.
    ring.seed_today(&HashMap::from([("ci-bot".to_string(), 900)]));
    ring.seed_today(&HashMap::from([("ci-bot".to_string(), 900)]));
    let key = named(ring.admit(&secret));
    ring.check(&key, "m").unwrap();
    ring.spent(&key, 500);
    let r = ring.check(&key, "m").unwrap_err();
    let midnight = (T0 / 86_400 + 1) * 86_400;
    assert_eq!((r.status, r.limit, r.retry_after_secs), (429, "tokens_per_day", Some(midnight - T0)));
    assert!(r.message.contains("1400 tokens") && r.message.contains("2026-12-08 00:00:00 UTC"), "{}", r.message);
    assert_eq!(ring.list()[0].today.tokens, 1400);

    now.store(midnight, Ordering::Relaxed);
    ring.check(&key, "m").unwrap();
    assert_eq!(ring.list()[0].today, TodayUse { requests: 1, tokens: 0, minute_requests: 1 });
}

#[test]
fn file_round_trip_keeps_unknown_fields_and_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = clock_at(T0);
    let ring = file_ring(dir.path(), clock.clone());
    ring.add(KeySpec { name: "a".into(), models: vec!["x-*".into()], requests_per_minute: Some(5), ..KeySpec::default() }).unwrap();
    let path = dir.path().join("keys.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["keys"][0]["note"] = "kept".into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let other = file_ring(dir.path(), clock);
    other.edit("a", KeyChange { requests_per_minute: Some(None), ..KeyChange::default() }).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["keys"][0]["note"], "kept");
    assert!(doc["keys"][0].get("requests_per_minute").is_none());
    assert_eq!(doc["keys"][0]["models"], serde_json::json!(["x-*"]));
    let text = serde_json::to_string(&other.list()).unwrap();
    assert!(!text.contains("sha256"), "the list never shows the hash: {text}");
}

#[test]
fn another_ring_sees_a_new_key_and_a_revocation_within_half_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = clock_at(T0);
    // The CLI's ring and the proxy's, as two processes would have them.
    let cli = file_ring(dir.path(), clock.clone());
    let proxy = file_ring(dir.path(), clock);
    proxy.start();
    let (_, secret) = cli.add(KeySpec { name: "late".into(), ..KeySpec::default() }).unwrap();
    let t = Instant::now();
    wait_for(Duration::from_secs(2), "the new key", || matches!(proxy.admit(&secret), Admission::Named(_)));
    assert!(t.elapsed() < Duration::from_millis(500), "seen after {:?}", t.elapsed());

    cli.revoke("late").unwrap();
    let t = Instant::now();
    wait_for(Duration::from_secs(2), "the revocation", || matches!(proxy.admit(&secret), Admission::Refused(_)));
    assert!(t.elapsed() < Duration::from_millis(500), "seen after {:?}", t.elapsed());
    assert_eq!(names(&proxy), ["late"]);
}

#[test]
fn last_used_is_written_in_a_batch_not_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, now) = clock_at(T0);
    let ring = file_ring(dir.path(), clock.clone());
    let (_, secret) = ring.add(KeySpec { name: "a".into(), ..KeySpec::default() }).unwrap();
    let path = dir.path().join("keys.json");
    let before = std::fs::read(&path).unwrap();
    for i in 0..10 {
        now.store(T0 + i, Ordering::Relaxed);
        named(ring.admit(&secret));
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "no write per request");
    assert_eq!(ring.list()[0].last_used, Some(T0 + 9));
    ring.flush_last_used();
    assert_eq!(file_ring(dir.path(), clock).list()[0].last_used, Some(T0 + 9));
    let after = std::fs::read(&path).unwrap();
    ring.flush_last_used();
    assert_eq!(std::fs::read(&path).unwrap(), after, "nothing new, nothing written");
}

#[test]
fn a_corrupt_file_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), b"{ not json").unwrap();
    let (clock, _) = clock_at(T0);
    let e = KeyRing::with_backend(Box::new(FileKeys::new(dir.path())), clock).unwrap_err();
    assert!(matches!(e, KeyError::Corrupt { .. }) && e.to_string().contains("fix it by hand"), "{e}");
    assert_eq!(std::fs::read(dir.path().join("keys.json")).unwrap(), b"{ not json");
}

// --- cluster mode (needs redis-server) -------------------------------------

fn redis_ring(server: &crate::store::cluster::tests::Server, clock: Clock) -> KeyRing {
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    KeyRing::with_backend(Box::new(RedisKeys::open(&url, "unit", None).unwrap()), clock).unwrap()
}

fn have_redis() -> bool {
    let found = std::path::Path::new("/usr/bin/redis-server").exists();
    if !found {
        eprintln!("skipped: no /usr/bin/redis-server");
    }
    found
}

#[test]
fn two_nodes_share_keys_and_limits_through_redis() {
    if !have_redis() {
        return;
    }
    let server = crate::store::cluster::tests::Server::start();
    let (clock, _) = clock_at(T0);
    let (a, b) = (redis_ring(&server, clock.clone()), redis_ring(&server, clock));
    a.start();
    b.start();
    let spec = KeySpec { name: "shared".into(), requests_per_minute: Some(4), tokens_per_day: Some(100), ..KeySpec::default() };
    let (_, secret) = a.add(spec).unwrap();
    let t = Instant::now();
    wait_for(Duration::from_secs(2), "the key on node b", || matches!(b.admit(&secret), Admission::Named(_)));
    assert!(t.elapsed() < Duration::from_millis(500), "seen after {:?}", t.elapsed());

    // Two requests on each node: after a sync, both know the minute is full.
    let (ka, kb) = (named(a.admit(&secret)), named(b.admit(&secret)));
    for _ in 0..2 {
        a.check(&ka, "m").unwrap();
        b.check(&kb, "m").unwrap();
    }
    a.spent(&ka, 150);
    // Each node's own view (what its checks use) catches up within a sync or two.
    wait_for(Duration::from_secs(4), "the shared counters", || {
        let (ta, tb) = (ka.usage.totals(T0), kb.usage.totals(T0));
        ta.minute_requests == 4 && tb.minute_requests == 4 && tb.day_tokens == 150
    });
    let r = b.check(&kb, "m").unwrap_err();
    assert_eq!(r.limit, "requests_per_minute");
    assert_eq!(b.list()[0].today, TodayUse { requests: 4, tokens: 150, minute_requests: 4 });

    // Revoked on b, refused on a.
    b.revoke("shared").unwrap();
    wait_for(Duration::from_secs(2), "the revocation on node a", || matches!(a.admit(&secret), Admission::Refused(_)));
    // seed_today does nothing in cluster mode: Redis holds the day.
    a.seed_today(&HashMap::from([("shared".to_string(), 10_000)]));
    assert_eq!(a.list()[0].today.tokens, 150);
}

#[test]
fn a_sync_that_fails_or_straddles_a_window_loses_no_count() {
    use super::counters::{Carry, Kind, KeyUse, Totals};
    let u = KeyUse::default();
    let minute = T0 / 60;
    u.spend(7, T0);
    // A failed push: the counts are pending again.
    let b = u.take(T0);
    assert_eq!((b.day_tokens, b.minute), (7, minute));
    u.settle(b, None);
    assert_eq!(u.totals(T0).day_tokens, 7);
    // A push answered with the shared totals: they become the base.
    let b = u.take(T0);
    u.spend(1, T0);
    u.settle(b, Some(Totals { minute_requests: 0, day_requests: 0, day_tokens: 20 }));
    assert_eq!(u.totals(T0).day_tokens, 21, "shared 20 + 1 counted since the push");
    // Counts left in a window that rolled over are carried to the next push.
    let midnight = (T0 / 86_400 + 1) * 86_400;
    let b = u.take(midnight);
    assert_eq!(b.carry, vec![Carry { kind: Kind::DayTokens, window: T0 / 86_400, amount: 1 }]);
    assert_eq!(b.day_tokens, 0);
    u.settle(b.clone(), None);
    assert_eq!(u.take(midnight).carry, b.carry, "kept for the next try");
}

#[test]
fn a_node_keeps_its_keys_while_redis_is_away() {
    if !have_redis() {
        return;
    }
    let server = crate::store::cluster::tests::Server::start();
    let (clock, _) = clock_at(T0);
    let ring = redis_ring(&server, clock);
    let (_, secret) = ring.add(KeySpec { name: "k".into(), requests_per_minute: Some(100), ..KeySpec::default() }).unwrap();
    ring.start();
    let key = named(ring.admit(&secret));
    drop(server);
    wait_for(Duration::from_secs(5), "the watcher to notice", || ring.inner.down.load(Ordering::Relaxed));
    named(ring.admit(&secret));
    ring.check(&key, "m").unwrap();
    let e = ring.revoke("k").unwrap_err();
    assert!(matches!(e, KeyError::Cluster { .. }) && e.to_string().contains("check that Redis is up"), "{e}");
}

#[test]
fn keys_come_back_when_redis_returns_empty() {
    if !have_redis() {
        return;
    }
    let server = crate::store::cluster::tests::Server::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let (clock, _) = clock_at(T0);
    let ring = KeyRing::with_backend(Box::new(RedisKeys::open(&url, "unit", Some(dir.path())).unwrap()), clock).unwrap();
    let (_, secret) = ring.add(KeySpec { name: "kept".into(), tokens_per_day: Some(500), ..KeySpec::default() }).unwrap();
    ring.add(KeySpec { name: "gone".into(), ..KeySpec::default() }).unwrap();
    ring.revoke("gone").unwrap();
    ring.reload().unwrap();
    // Redis restarted without persistence: no keys, no revision.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_connection().unwrap();
    redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap();
    ring.poll();
    assert!(matches!(ring.admit(&secret), Admission::Named(_)), "the key serves on");
    // Both records are in Redis again, the revoked one still revoked.
    let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg("unit:keys").query(&mut con).unwrap();
    let mut stored: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    stored.sort_unstable();
    assert_eq!(stored, ["gone", "kept"]);
    assert!(fields.iter().any(|(n, v)| n == "gone" && v.contains("revoked_at")));
    // A second node opened now sees them.
    let other = redis_ring(&server, clock_at(T0).0);
    assert_eq!(names(&other), ["gone", "kept"]);
    // An empty Redis that keeps its revision (every key removed by a change) is left alone.
    redis::cmd("DEL").arg("unit:keys").query::<()>(&mut con).unwrap();
    ring.reload().unwrap();
    let left: Vec<(String, String)> = redis::cmd("HGETALL").arg("unit:keys").query(&mut con).unwrap();
    assert!(left.is_empty());
}

#[test]
fn a_record_in_redis_that_does_not_parse_keeps_its_name() {
    if !have_redis() {
        return;
    }
    let server = crate::store::cluster::tests::Server::start();
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let mut con = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    redis::cmd("HSET").arg("unit:keys").arg("hand-made").arg("{not json").query::<()>(&mut con).unwrap();
    let ring = redis_ring(&server, clock_at(T0).0);
    let e = ring.add(KeySpec { name: "hand-made".into(), ..KeySpec::default() }).unwrap_err();
    assert!(matches!(e, KeyError::Unreadable { .. }) && e.to_string().contains("HDEL unit:keys hand-made"), "{e}");
    let raw: String = redis::cmd("HGET").arg("unit:keys").arg("hand-made").query(&mut con).unwrap();
    assert_eq!(raw, "{not json", "left as it was");
    // Other names are free.
    ring.add(KeySpec { name: "other".into(), ..KeySpec::default() }).unwrap();
}
