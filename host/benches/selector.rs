//! Cost of one selection decision into a warm plugin, per bundled strategy
//! and pool size; and of loading a pool.
//!
//! `cargo bench -p grantpool --bench selector` (figures in BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use grantpool::plugins::{EngineOptions, PluginEngine, PluginSource, Protocol, SelectOutcome, SelectRequest, SelectorPlugin};
use grantpool::pool::Pool;
use grantpool::store::{AccountFile, TokenData};

fn pool(n: usize) -> Arc<Pool> {
    let pool = Arc::new(Pool::new());
    for i in 0..n {
        let mut f = AccountFile::new(format!("{i:032x}"), format!("user{i}@example.com"), TokenData::new("at", format!("rt{i}"), 0), 1);
        f.labels.insert("weight".into(), ((i % 3) + 1).to_string());
        pool.upsert_file(f);
    }
    pool
}

fn strategies() -> Vec<(&'static str, &'static str)> {
    let all = [
        ("round-robin", "{}"),
        ("fill-first", "{}"),
        ("least-busy", "{}"),
        ("sticky-session", r#"{"ttl_secs": 3600}"#),
        ("weighted", "{}"),
    ];
    all.into_iter().filter(|(name, _)| grantpool::plugins::bundled_plugin(name).is_some()).collect()
}

fn bench_select(c: &mut Criterion) {
    let engine = PluginEngine::new(EngineOptions::default()).unwrap();
    let mut group = c.benchmark_group("select");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    for (name, config) in strategies() {
        for n in [10usize, 100, 1_000, 10_000] {
            let pool = pool(n);
            let sel = SelectorPlugin::load(&engine, &PluginSource::Bundled(name.into()), config).unwrap();
            let mut session = 0u64;
            // One decision as a request makes it: the pool's pending events
            // (the previous request's `finished`), then `select`, then the
            // lease that reports this request's end.
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    session += 1;
                    let req = SelectRequest {
                        model: "gemini-2.5-pro".into(),
                        protocol: Protocol::Openai,
                        session_id: Some(format!("s{}", session % 64)),
                        attempt: 1,
                        tried: vec![],
                        unavailable: pool.unavailable_for("gemini-2.5-pro", grantpool::util::now_ms()),
                    };
                    let out = sel.select(&*pool, &req, |s| pool.is_candidate(s, &req));
                    let SelectOutcome::Picked(slot) = out else { panic!("{name}: {out:?}") };
                    pool.begin(slot, "gemini-2.5-pro", None, sel.wants_outcomes()).unwrap().finish(true, Some(200));
                })
            });
        }
    }
    group.finish();
}

fn bench_pool_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = grantpool::store::Store::open(dir.path()).unwrap();
    for i in 0..10_000 {
        store
            .upsert(grantpool::store::NewAccount { email: format!("user{i}@example.com"), token: TokenData::new("ya29.a", format!("1//rt{i}"), 1_900_000_000) })
            .unwrap();
    }
    let mut group = c.benchmark_group("pool_load");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("10000_accounts_from_disk", |b| {
        b.iter(|| {
            let pool = Pool::new();
            pool.load(store.load_all());
            assert_eq!(pool.len(), 10_000);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_select, bench_pool_load);
criterion_main!(benches);
