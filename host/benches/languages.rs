//! The same selector in Rust and in Python: what the guest's language costs.
//!
//! `plugins/template` (Rust) and `plugins/examples/python-selector`
//! (componentize-py) make the same decision — prefer `tier = "paid"`, then
//! the least recently used — by a scan of the candidates, so the figures
//! differ only by language. Both are built with `grantpool plugin build`'s
//! library code (`plugins::authoring::build`; unchanged projects are not
//! rebuilt). Printed first: each component's size, its first compile (no
//! cache) and a load from the compile cache, and a fresh instance (what a
//! restart after a trap costs); then criterion measures one warm decision
//! at 10 / 100 / 1,000 accounts, and one classifier call of the Python
//! example next to the Rust template's.
//!
//! `cargo bench -p grantpool --bench languages` (figures in BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use grantpool::plugins::{
    ClassifierPlugin, EngineOptions, Failure, Phase, PluginEngine, PluginSource, Protocol, SelectOutcome, SelectRequest,
    SelectorPlugin,
};
use grantpool::pool::Pool;
use grantpool::store::{AccountFile, TokenData};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn build(project: &str) -> PathBuf {
    let built = grantpool::plugins::authoring::build(&root().join(project)).unwrap_or_else(|e| panic!("{project}: {e:#}"));
    built.wasm
}

fn pool(n: usize) -> Arc<Pool> {
    let pool = Arc::new(Pool::new());
    for i in 0..n {
        let mut f = AccountFile::new(format!("{i:032x}"), format!("user{i}@example.com"), TokenData::new("at", format!("rt{i}"), 0), 1);
        f.labels.insert("tier".into(), if i % 4 == 0 { "paid" } else { "free" }.into());
        pool.upsert_file(f);
    }
    pool
}

/// One compile cache for the whole run (the first load is measured with
/// an empty one of its own).
fn shared_cache() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path().to_path_buf()
}

fn engine(cache: Option<PathBuf>) -> Arc<PluginEngine> {
    // The proxy's defaults, but room for CPython's first call.
    PluginEngine::new(EngineOptions { cache_dir: cache, ..EngineOptions::default() }).unwrap()
}

/// Size, first compile, cached load and a fresh instance, printed.
fn costs(label: &str, wasm: &Path) {
    let size = std::fs::metadata(wasm).unwrap().len();
    // The shared cache holds nothing of this component yet: the first load compiles.
    let engine = engine(Some(shared_cache()));
    let source = PluginSource::File(wasm.into());
    let t = Instant::now();
    SelectorPlugin::load(&engine, &source, "{}").unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    let sel = SelectorPlugin::load(&engine, &source, "{}").unwrap();
    let cached = t.elapsed();
    drop(sel);
    // A second engine over the same cache: what a proxy restart costs.
    let engine2 = engine_with(&shared_cache());
    let t = Instant::now();
    SelectorPlugin::load(&engine2, &source, "{}").unwrap();
    let restart = t.elapsed();
    println!(
        "{label}: {:.1} MiB; first load (compile) {:.0} ms; load from the compile cache {:.1} ms (new process: {:.1} ms)",
        size as f64 / (1 << 20) as f64,
        first.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3,
        restart.as_secs_f64() * 1e3
    );
}

/// The first decision of a fresh instance on a pool of `n`: the `reset`
/// and `n` `joined` events it must take in (what a restart costs on a big
/// pool; it runs under the call deadline).
fn first_decision(label: &str, wasm: &Path) {
    let engine = PluginEngine::new(EngineOptions { cache_dir: Some(shared_cache()), call_timeout: Duration::from_secs(10), ..EngineOptions::default() }).unwrap();
    let source = PluginSource::File(wasm.into());
    for n in [1_000usize, 10_000] {
        let pool = pool(n);
        let sel = SelectorPlugin::load(&engine, &source, "{}").unwrap();
        let req = SelectRequest { model: "m".into(), protocol: Protocol::Openai, session_id: None, attempt: 1, tried: vec![], unavailable: vec![] };
        let t = Instant::now();
        let out = sel.select(&*pool, &req, |s| pool.is_candidate(s, &req));
        let took = t.elapsed();
        assert!(matches!(out, SelectOutcome::Picked(_)), "{out:?}");
        println!("{label}: first decision on {n} accounts (reset + {n} joined events, then select) {:.1} ms", took.as_secs_f64() * 1e3);
    }
}

fn engine_with(cache: &Path) -> Arc<PluginEngine> {
    engine(Some(cache.to_path_buf()))
}

fn bench_select(c: &mut Criterion) {
    let rust = build("plugins/template");
    let python = build("plugins/examples/python-selector");
    costs("rust selector (plugins/template)", &rust);
    costs("python selector (plugins/examples/python-selector)", &python);
    first_decision("rust", &rust);
    first_decision("python", &python);

    let engine = engine(Some(shared_cache()));
    let mut group = c.benchmark_group("select_by_language");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    for (lang, wasm) in [("rust", &rust), ("python", &python)] {
        let sel = SelectorPlugin::load(&engine, &PluginSource::File(wasm.clone()), "{}").unwrap();
        for n in [10usize, 100, 1_000] {
            let pool = pool(n);
            group.bench_with_input(BenchmarkId::new(lang, n), &n, |b, _| {
                b.iter(|| {
                    let req = SelectRequest {
                        model: "gemini-2.5-pro".into(),
                        protocol: Protocol::Openai,
                        session_id: None,
                        attempt: 1,
                        tried: vec![],
                        unavailable: vec![],
                    };
                    let out = sel.select(&*pool, &req, |s| pool.is_candidate(s, &req));
                    let SelectOutcome::Picked(slot) = out else { panic!("{lang}: {out:?}") };
                    pool.begin(slot, "gemini-2.5-pro", None, sel.wants_outcomes()).unwrap().finish(true, Some(200));
                })
            });
        }
    }
    group.finish();
}

fn bench_classify(c: &mut Criterion) {
    let rust = build("plugins/template-classifier");
    let python = build("plugins/examples/python-classifier");
    let engine = engine(Some(shared_cache()));
    let failure = Failure {
        phase: Phase::TokenRefresh,
        status: Some(400),
        body: r#"{"error":"token_revoked","error_description":"The grant was revoked by the provider."}"#.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        network_error: false,
        account_id: "acc".into(),
        email: "a@example.com".into(),
        model: None,
        attempt: 1,
    };
    let mut group = c.benchmark_group("classify_by_language");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    for (lang, wasm) in [("rust", &rust), ("python", &python)] {
        let plugin = ClassifierPlugin::load(&engine, &PluginSource::File(wasm.clone()), "{}").unwrap();
        group.bench_function(lang, |b| b.iter(|| plugin.classify(&failure)));
    }
    group.finish();
}

criterion_group!(benches, bench_select, bench_classify);
criterion_main!(benches);
