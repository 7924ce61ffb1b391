//! The bundled strategies through the real runtime and the real pool: each
//! plugin is loaded from the binary as `policy.toml` would name it, fed the
//! pool's own events, and requests hold real leases (in flight, finished)
//! the way the proxy's do.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use grantpool::plugins::{
    ClassifierPlugin, ClassifyOutcome, Cooldown, CooldownScope as VerdictScope, EngineOptions, Failure, Phase,
    PluginEngine, PluginError, PluginKind, PluginSource, Protocol, SelectOutcome, SelectRequest, SelectorPlugin,
    Verdict,
};
use grantpool::pool::{CooldownScope, Lease, Pool};
use grantpool::store::{AccountFile, ModelQuota, TokenData};
use grantpool::util::now_ms;

/// One engine for the whole binary, with a compile cache: each plugin is
/// compiled once, not once per test.
fn engine() -> Arc<PluginEngine> {
    static ENGINE: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            PluginEngine::new(EngineOptions {
                cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("strategies-compile-cache")),
                // Debug test builds on a busy machine: generous, still bounded.
                call_timeout: Duration::from_millis(500),
                ..Default::default()
            })
            .unwrap()
        })
        .clone()
}

/// An account file `id` with `labels`.
fn account(id: &str, labels: &[(&str, &str)]) -> AccountFile {
    let mut file = AccountFile::new(id, format!("{id}@example.com"), TokenData::new("at", format!("rt-{id}"), 0), 1);
    file.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    file
}

/// A selector plugin over a real pool.
struct Harness {
    pool: Arc<Pool>,
    sel: SelectorPlugin,
}

impl Harness {
    fn new(plugin: &str, config: &str, files: Vec<AccountFile>) -> Harness {
        let pool = Arc::new(Pool::new());
        for f in files {
            pool.upsert_file(f);
        }
        let sel = SelectorPlugin::load(&engine(), &PluginSource::Bundled(plugin.into()), config)
            .unwrap_or_else(|e| panic!("{plugin}: {e}"));
        Harness { pool, sel }
    }

    /// A first-try request as the proxy builds it (model cooldowns included).
    fn request(&self, model: &str, session: Option<&str>) -> SelectRequest {
        SelectRequest {
            model: model.into(),
            protocol: Protocol::Anthropic,
            // As the routes do: no session for a selector that reads none.
            session_id: session.filter(|_| self.sel.wants_sessions()).map(str::to_string),
            attempt: 1,
            tried: vec![],
            unavailable: self.pool.unavailable_for(model, now_ms()),
        }
    }

    fn pick_for(&self, req: &SelectRequest) -> u32 {
        match self.sel.select(&*self.pool, req, |s| self.pool.is_candidate(s, req)) {
            SelectOutcome::Picked(s) => s,
            other => panic!("{}: {other:?}", self.sel.name()),
        }
    }

    /// Start a request and keep it in flight.
    fn hold(&self, model: &str, session: Option<&str>) -> Lease {
        let req = self.request(model, session);
        let slot = self.pick_for(&req);
        self.pool.begin(slot, model, session, self.sel.wants_outcomes()).expect("picked slot has an account")
    }

    /// A whole request: picked, served, finished successfully.
    fn serve(&self, model: &str, session: Option<&str>) -> u32 {
        let lease = self.hold(model, session);
        let slot = lease.account().slot;
        lease.finish(true, Some(200));
        slot
    }

    fn slot(&self, id: &str) -> u32 {
        self.pool.get(id).unwrap().slot
    }

    fn id(&self, slot: u32) -> String {
        self.pool.by_slot(slot).unwrap().id.clone()
    }

    fn cool(&self, id: &str, ms: u64) {
        self.pool.set_cooldown(id, &CooldownScope::Account, now_ms() + ms, "test");
    }
}

#[test]
fn every_strategy_is_bundled_and_the_template_is_not() {
    let names: HashMap<&str, PluginKind> = grantpool::plugins::bundled().iter().map(|(n, k, _)| (*n, *k)).collect();
    for s in ["round-robin", "fill-first", "least-busy", "sticky-session", "weighted"] {
        assert_eq!(names.get(s), Some(&PluginKind::Selector), "{s}");
    }
    for c in ["default", "rules"] {
        assert_eq!(names.get(c), Some(&PluginKind::Classifier), "{c}");
    }
    assert!(!names.contains_key("template"));
    assert!(!names.contains_key("sdk"));
}

#[test]
fn fill_first_stays_on_the_first_until_it_cannot_serve_and_returns() {
    // Order: priority ascending first (`zed` has 1), then id: zed, amy, bob, cat.
    let h = Harness::new(
        "fill-first",
        "{}",
        vec![account("cat", &[]), account("bob", &[]), account("amy", &[]), account("zed", &[("priority", "1")])],
    );
    let order: Vec<u32> = ["zed", "amy", "bob"].iter().map(|id| h.slot(id)).collect();
    for _ in 0..50 {
        assert_eq!(h.serve("m", None), order[0]);
    }
    // Busy does not matter: fill-first fills.
    let held: Vec<Lease> = (0..5).map(|_| h.hold("m", None)).collect();
    assert!(held.iter().all(|l| l.account().slot == order[0]));
    drop(held);

    // The first cools down: the next takes over, and keeps it.
    h.cool("zed", 300);
    for _ in 0..20 {
        assert_eq!(h.serve("m", None), order[1]);
    }
    // A model cooldown on the second: that model moves on, others stay.
    h.pool.set_cooldown("amy", &CooldownScope::Model("m".into()), now_ms() + 60_000, "429");
    assert_eq!(h.serve("m", None), order[2]);
    assert_eq!(h.serve("other", None), order[1]);
    // A retry skips the account just tried.
    let mut retry = h.request("other", None);
    retry.tried = vec![order[1]];
    assert_eq!(h.pick_for(&retry), order[2]);

    // The first is back once its cooldown ends.
    std::thread::sleep(Duration::from_millis(350));
    h.pool.expire(now_ms());
    for _ in 0..10 {
        assert_eq!(h.serve("m", None), order[0]);
    }
}

#[test]
fn sticky_session_keeps_a_session_and_moves_it_when_its_account_cools_down() {
    let h = Harness::new(
        "sticky-session",
        r#"{"ttl_secs": 3600, "fallback": "least-busy"}"#,
        (0..5).map(|i| account(&format!("acc{i}"), &[])).collect(),
    );
    let home = h.serve("m", Some("conv-A"));
    // Even while busy (other sessions come and go), the session stays.
    let mut others = Vec::new();
    for i in 0..100 {
        assert_eq!(h.serve("m", Some("conv-A")), home);
        others.push(h.hold("m", Some(&format!("conv-{i}"))));
    }
    // New sessions were spread by the least-busy fallback.
    let mut per_slot = HashMap::new();
    for l in &others {
        *per_slot.entry(l.account().slot).or_insert(0u32) += 1;
    }
    assert_eq!(per_slot.len(), 5, "{per_slot:?}");
    assert!(per_slot.values().all(|n| *n >= 10), "{per_slot:?}");
    // Each of those sessions is sticky too.
    for (i, l) in others.iter().enumerate().take(20) {
        assert_eq!(h.serve("m", Some(&format!("conv-{i}"))), l.account().slot);
    }
    drop(others);

    // The bound account cools down: the session moves, and stays moved
    // after the old account is back.
    h.cool(&h.id(home), 100);
    let moved = h.serve("m", Some("conv-A"));
    assert_ne!(moved, home);
    std::thread::sleep(Duration::from_millis(150));
    h.pool.expire(now_ms());
    assert!(h.pool.is_candidate(home, &h.request("m", None)));
    for _ in 0..10 {
        assert_eq!(h.serve("m", Some("conv-A")), moved);
    }
    // Unavailable for the model only: that model's request moves too.
    h.pool.set_cooldown(&h.id(moved), &CooldownScope::Model("m".into()), now_ms() + 60_000, "429");
    let third = h.serve("m", Some("conv-A"));
    assert_ne!(third, moved);
    assert_eq!(h.serve("m", Some("conv-A")), third);

    // Without a session id, requests are spread by the fallback.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        seen.insert(h.serve("other", None));
    }
    assert!(seen.len() >= 3, "{seen:?}");
}

#[test]
fn sticky_session_fallbacks_and_config_errors() {
    let files = || (0..4).map(|i| account(&format!("acc{i}"), &[])).collect::<Vec<_>>();
    let h = Harness::new("sticky-session", r#"{"fallback": "fill-first"}"#, files());
    for i in 0..10 {
        assert_eq!(h.serve("m", Some(&format!("s{i}"))), h.slot("acc0"));
    }
    let h = Harness::new("sticky-session", r#"{"fallback": "round-robin"}"#, files());
    let firsts: Vec<u32> = (0..8).map(|i| h.serve("m", Some(&format!("s{i}")))).collect();
    let mut counts = HashMap::new();
    for s in &firsts {
        *counts.entry(*s).or_insert(0) += 1;
    }
    assert!(counts.values().all(|n| *n == 2), "{firsts:?}");

    for (config, words) in [
        (r#"{"fallback": "random"}"#, "unknown variant `random`"),
        (r#"{"ttl_secs": 0}"#, "ttl_secs"),
        (r#"{"ttl": 10}"#, "unknown field `ttl`"),
    ] {
        let err = SelectorPlugin::load(&engine(), &PluginSource::Bundled("sticky-session".into()), config)
            .err()
            .expect("refused");
        assert!(matches!(err, PluginError::ConfigRejected { .. }), "{err}");
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[test]
fn least_busy_avoids_busy_accounts_and_spreads_over_idle_ones() {
    let files = || (0..8).map(|i| account(&format!("acc{i}"), &[])).collect::<Vec<_>>();

    // Exact scan: long requests on four accounts; new picks avoid them.
    let h = Harness::new("least-busy", r#"{"choices": 0}"#, files());
    let busy: Vec<Lease> = (0..4).map(|i| h.pool.begin(i, "m", None, true).unwrap()).collect();
    let mut counts = [0u32; 8];
    for _ in 0..800 {
        counts[h.serve("m", None) as usize] += 1;
    }
    assert_eq!(&counts[..4], &[0, 0, 0, 0], "{counts:?}");
    assert!(counts[4..].iter().all(|c| (120..=280).contains(c)), "{counts:?}");
    drop(busy);

    // Default (two random choices): busy accounts are picked only when both
    // samples are busy, idle ones far more often.
    let h = Harness::new("least-busy", "{}", files());
    let busy: Vec<Lease> = (0..4).map(|i| h.pool.begin(i, "m", None, true).unwrap()).collect();
    let mut counts = [0u32; 8];
    for _ in 0..2_000 {
        counts[h.serve("m", None) as usize] += 1;
    }
    let (busy_max, idle_min) = (*counts[..4].iter().max().unwrap(), *counts[4..].iter().min().unwrap());
    assert!(busy_max * 2 < idle_min, "{counts:?}");
    assert!(counts[..4].iter().sum::<u32>() < 700, "{counts:?}");
    drop(busy);

    // Concurrent load: 1,000 requests held at once stay level.
    for config in [r#"{"choices": 0}"#, "{}"] {
        let h = Harness::new("least-busy", config, files());
        let held: Vec<Lease> = (0..1_000).map(|_| h.hold("m", None)).collect();
        let loads: Vec<u32> = (0..8).map(|s| h.pool.by_slot(s).unwrap().in_flight()).collect();
        let (lo, hi) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
        let gap = if config == "{}" { 6 } else { 1 };
        assert!(hi - lo <= gap, "{config}: {loads:?}");
        drop(held);
    }
}

#[test]
fn least_busy_with_real_threads_keeps_in_flight_low() {
    let h = Arc::new(Harness::new(
        "least-busy",
        r#"{"choices": 0}"#,
        (0..8).map(|i| account(&format!("acc{i}"), &[])).collect(),
    ));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let h = h.clone();
            std::thread::spawn(move || {
                let mut worst = 0;
                for _ in 0..50 {
                    let lease = h.hold("m", None);
                    worst = worst.max(lease.account().in_flight());
                    std::thread::sleep(Duration::from_millis(2));
                    lease.finish(true, Some(200));
                }
                worst
            })
        })
        .collect();
    let worst = threads.into_iter().map(|t| t.join().unwrap()).max().unwrap();
    // Eight workers on eight accounts: one each (two in a rare race between
    // a finish and the next pick's event fetch).
    assert!(worst <= 2, "an account had {worst} in flight");
}

#[test]
fn weighted_follows_weights_quota_and_tiers() {
    let mut half = account("half", &[]);
    half.quota.insert("m".into(), ModelQuota { remaining_fraction: 0.5, reset_at: None });
    let h = Harness::new(
        "weighted",
        "{}",
        vec![account("one", &[]), account("three", &[("weight", "3")]), account("zero", &[("weight", "0")]), half],
    );
    let mut counts = HashMap::<String, u32>::new();
    for _ in 0..9_000 {
        *counts.entry(h.id(h.serve("m", None))).or_default() += 1;
    }
    // Shares 1 : 3 : 0 : 0.5 of 4.5 → 2,000 / 6,000 / 0 / 1,000.
    let c = |id: &str| counts.get(id).copied().unwrap_or(0);
    assert!((1_700..=2_300).contains(&c("one")), "{counts:?}");
    assert!((5_500..=6_500).contains(&c("three")), "{counts:?}");
    assert_eq!(c("zero"), 0, "{counts:?}");
    assert!((800..=1_200).contains(&c("half")), "{counts:?}");
    // The quota is per model: for another model "half" is a full share.
    let mut other = 0;
    for _ in 0..4_500 {
        other += u32::from(h.id(h.serve("other", None)) == "half");
    }
    assert!((800..=1_200).contains(&other), "{other}");
    // Only the zero-weight account left: it serves rather than nothing.
    for id in ["one", "three", "half"] {
        h.cool(id, 60_000);
    }
    assert_eq!(h.id(h.serve("m", None)), "zero");

    // Tiers: only the best tier with a candidate serves.
    let h = Harness::new(
        "weighted",
        r#"{"tiers": ["paid", "free"]}"#,
        vec![
            account("free1", &[("tier", "free")]),
            account("paid1", &[("tier", "paid")]),
            account("paid2", &[("tier", "paid"), ("weight", "2")]),
            account("none", &[]),
        ],
    );
    let mut counts = HashMap::<String, u32>::new();
    for _ in 0..3_000 {
        *counts.entry(h.id(h.serve("m", None))).or_default() += 1;
    }
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!((800..=1_200).contains(&counts["paid1"]), "{counts:?}");
    h.cool("paid1", 60_000);
    h.pool.set_cooldown("paid2", &CooldownScope::Model("m".into()), now_ms() + 60_000, "429");
    assert_eq!(h.id(h.serve("m", None)), "free1");
    assert_eq!(h.id(h.serve("other", None)), "paid2");
    h.cool("free1", 60_000);
    assert_eq!(h.id(h.serve("m", None)), "none");
}

#[test]
fn the_template_builds_to_a_working_selector() {
    // host/build.rs builds the whole plugins workspace, the template too.
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/wasm32-wasip2/release/template.wasm");
    if std::env::var_os("GRANTPOOL_PREBUILT_PLUGINS").is_some() && !wasm.is_file() {
        eprintln!("skipped: plugins were prebuilt elsewhere");
        return;
    }
    let pool = Arc::new(Pool::new());
    for f in [
        account("free", &[("tier", "free")]),
        account("paid-a", &[("tier", "paid")]),
        account("paid-b", &[("tier", "paid")]),
    ] {
        pool.upsert_file(f);
    }
    let sel = SelectorPlugin::load(&engine(), &PluginSource::File(wasm), "{}").unwrap();
    let h = Harness { pool, sel };
    let picks: Vec<String> = (0..6).map(|_| h.id(h.serve("m", None))).collect();
    assert!(picks.iter().all(|id| id.starts_with("paid-")), "{picks:?}");
    h.cool("paid-a", 60_000);
    h.cool("paid-b", 60_000);
    assert_eq!(h.id(h.serve("m", None)), "free");
}

// ---------------------------------------------------------------------------
// The rules classifier
// ---------------------------------------------------------------------------

const SPEC_RULES: &str = r#"{"rules": [
    {"phase": "token-refresh", "body_contains": "invalid_grant", "action": "disable", "reason_prefix": "invalid_grant"},
    {"phase": "upstream", "status": 429, "action": "cooldown"}
]}"#;

fn rules(config: &str) -> Result<ClassifierPlugin, PluginError> {
    ClassifierPlugin::load(&engine(), &PluginSource::Bundled("rules".into()), config)
}

fn failure(phase: Phase, status: Option<u16>, body: &str) -> Failure {
    Failure {
        phase,
        status,
        body: body.into(),
        headers: vec![],
        network_error: status.is_none(),
        account_id: "acc0".into(),
        email: "a0@example.com".into(),
        model: matches!(phase, Phase::Upstream).then(|| "gemini-2.5-pro".to_string()),
        attempt: 1,
    }
}

#[test]
fn rules_spec_example_disables_invalid_grant_and_cools_429() {
    let c = rules(SPEC_RULES).unwrap();
    let grant = r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#;
    let out = c.classify(&failure(Phase::TokenRefresh, Some(400), grant));
    let ClassifyOutcome::Verdict(Verdict::Disable(reason)) = &out else { panic!("{out:?}") };
    assert!(reason.starts_with("invalid_grant:"), "{reason}");
    assert_eq!(reason, "invalid_grant: Token has been expired or revoked.");

    // A refresh that fails otherwise is not for this table: the chain goes on.
    for (status, body) in [(Some(500), "backend error"), (None, "connection reset"), (Some(429), "slow down")] {
        assert_eq!(c.classify(&failure(Phase::TokenRefresh, status, body)), ClassifyOutcome::Abstain);
    }
    assert_eq!(
        c.classify(&failure(Phase::TokenRefresh, Some(401), r#"{"error":"invalid_client"}"#)),
        ClassifyOutcome::Abstain
    );

    let body = r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3.5s"}]}}"#;
    assert_eq!(
        c.classify(&failure(Phase::Upstream, Some(429), body)),
        ClassifyOutcome::Verdict(Verdict::Cooldown(Cooldown {
            duration_ms: Some(3_500),
            scope: VerdictScope::Model,
            reason: "rule: 429 RESOURCE_EXHAUSTED: Resource has been exhausted".into(),
        }))
    );
    assert_eq!(c.classify(&failure(Phase::Upstream, Some(500), "oops")), ClassifyOutcome::Abstain);
}

#[test]
fn rules_can_disable_on_token_revoked_instead() {
    let c = rules(
        r#"{"rules": [
        {"phase": "token-refresh", "oauth_error": "token_revoked", "action": "disable", "reason_prefix": "token_revoked"},
        {"phase": "token-refresh", "body_regex": "(?i)account (is )?suspended", "action": "proxy_disable", "reason": "suspended: check the account"},
        {"network_error": true, "action": "retry_next"}
    ]}"#,
    )
    .unwrap();
    let revoked = r#"{"error":"token_revoked","error_description":"The user revoked access."}"#;
    assert_eq!(
        c.classify(&failure(Phase::TokenRefresh, Some(400), revoked)),
        ClassifyOutcome::Verdict(Verdict::Disable("token_revoked: The user revoked access.".into()))
    );
    // invalid_grant is not this policy's business: deferred.
    let grant = r#"{"error":"invalid_grant","error_description":"Bad Request"}"#;
    assert_eq!(c.classify(&failure(Phase::TokenRefresh, Some(400), grant)), ClassifyOutcome::Abstain);
    assert_eq!(
        c.classify(&failure(Phase::TokenRefresh, Some(403), "Account Suspended by admin")),
        ClassifyOutcome::Verdict(Verdict::ProxyDisable("suspended: check the account".into()))
    );
    assert_eq!(
        c.classify(&failure(Phase::Upstream, None, "timed out")),
        ClassifyOutcome::Verdict(Verdict::RetryNextAccount)
    );
}

#[test]
fn rules_mistakes_are_refused_at_configure() {
    for (config, words) in [
        (
            r#"{"rules": [{"status": 429, "action": "cooldown"}, {"body_regex": "([a-z", "action": "disable"}]}"#,
            vec!["rules[1]", "body_regex"],
        ),
        (r#"{"rules": [{"action": "disable", "reason_prefix": "x"}]}"#, vec!["rules[0]", "no match key", "match_all"]),
        (r#"{"rules": [{"status": 429, "action": "cool"}]}"#, vec!["rules[0]", "unknown variant `cool`"]),
        (r#"{"rules": [{"statuss": 429, "action": "cooldown"}]}"#, vec!["rules[0]", "unknown field `statuss`"]),
    ] {
        let err = rules(config).err().expect("must be refused");
        assert!(matches!(err, PluginError::ConfigRejected { .. }), "{err}");
        let msg = err.to_string();
        for w in words {
            assert!(msg.contains(w), "`{w}` not in: {msg}");
        }
    }
    // A deliberate catch-all is accepted.
    let c = rules(r#"{"rules": [{"match_all": true, "action": "retry_next"}]}"#).unwrap();
    assert_eq!(
        c.classify(&failure(Phase::Upstream, Some(418), "teapot")),
        ClassifyOutcome::Verdict(Verdict::RetryNextAccount)
    );
}

#[test]
fn selectors_are_sent_only_what_they_ask_for() {
    use grantpool::plugins::EventFeed;
    let files = || (0..3).map(|i| account(&format!("acc{i}"), &[])).collect::<Vec<_>>();
    let expect = [
        ("round-robin", "{}", false, false, false),
        ("fill-first", "{}", false, false, false),
        ("weighted", "{}", false, false, true),
        ("weighted", r#"{"use_quota": false}"#, false, false, false),
        ("least-busy", "{}", true, false, false),
        ("sticky-session", "{}", true, true, false),
        ("sticky-session", r#"{"fallback": "round-robin"}"#, false, true, false),
    ];
    for (plugin, config, outcomes, sessions, quota) in expect {
        let h = Harness::new(plugin, config, files());
        let asked = (h.sel.wants_outcomes(), h.sel.wants_sessions(), h.sel.wants_quota());
        assert_eq!(asked, (outcomes, sessions, quota), "{plugin} {config}");
        // The pool logs a request's end only for a selector that reads it.
        let seq = h.pool.events_since(None).seq;
        h.serve("m", Some("s1"));
        let logged = h.pool.events_since(Some(seq)).events.len();
        assert_eq!(logged, usize::from(outcomes), "{plugin} {config}: events after one request");
    }
}
