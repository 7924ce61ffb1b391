//! Tests of the store over the file backend: format, durability, rules,
//! locks, import.

use super::durable::set_mode;
use super::file::{encode, parse_account, redact_quoted, TRIM_MARKER};
use super::*;
use serde_json::Value;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

/// A store over a file backend, with that backend (for its paths).
#[derive(Clone)]
struct TestStore {
    store: Store,
    files: Arc<FileStore>,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    fn open(data_dir: &Path) -> Result<TestStore, StoreError> {
        let files = Arc::new(FileStore::open(data_dir)?);
        Ok(TestStore { store: Store::with_backend(files.clone()), files })
    }
    fn path_of(&self, id: &str) -> PathBuf {
        self.files.path_of(id)
    }
    fn accounts_dir(&self) -> &Path {
        self.files.accounts_dir()
    }
}

fn tokens(access: &str, refresh: &str) -> TokenData {
    TokenData::new(access, refresh, 1_700_003_600)
}

fn new_account(email: &str, access: &str, refresh: &str) -> NewAccount {
    NewAccount {
        email: email.to_string(),
        token: tokens(access, refresh),
    }
}

fn open() -> (tempfile::TempDir, TestStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = TestStore::open(tmp.path()).unwrap();
    (tmp, store)
}

fn raw_json(store: &TestStore, id: &str) -> Value {
    serde_json::from_slice(&fs::read(store.path_of(id)).unwrap()).unwrap()
}

/// Runs `f` with a subscriber that records every log line; returns them.
fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (r, logs)
}

const AG_FILE: &str = r#"{
  "id": "5f0c7a2e-1111-2222-3333-444455556666",
  "email": "Ag.User@Example.com",
  "name": "Ag User",
  "token": {
"access_token": "ya29.AG-ACCESS",
"refresh_token": "1//AG-REFRESH",
"expires_in": 3599,
"expiry_timestamp": 1700003600,
"token_type": "Bearer",
"email": "Ag.User@Example.com",
"project_id": "proj-ag",
"session_id": "sess-1",
"is_gcp_tos": true
  },
  "quota": {
"models": [{"name": "gemini-2.5-pro", "percentage": 80, "reset_time": "2025-01-01T00:00:00Z"}],
"last_updated": 1700000000,
"is_forbidden": false
  },
  "disabled": false,
  "proxy_disabled": true,
  "proxy_disabled_reason": "by hand",
  "proxy_disabled_at": 1699000000,
  "created_at": 1690000000,
  "last_used": 1699999000,
  "nested_unknown": {"a": [1, 2, {"b": null}]}
}"#;

#[test]
fn antigravity_file_round_trips_with_unknown_fields_kept() {
    let (_tmp, store) = open();
    let id = "5f0c7a2e-1111-2222-3333-444455556666";
    fs::write(store.path_of(id), AG_FILE).unwrap();

    let a = store.load(id).unwrap().expect("parses");
    assert_eq!(a.email, "Ag.User@Example.com");
    assert_eq!(a.token.project_id.as_deref(), Some("proj-ag"));
    assert_eq!(a.token.oauth_client, None);
    assert!(a.proxy_disabled);
    assert!(a.quota.is_empty());
    assert_eq!(a.quota_foreign.len(), 3);
    assert_eq!(a.last_used, Some(1_699_999_000));

    let updated = store
        .update(id, |a| {
            a.labels.insert("tier".into(), "pro".into());
            a.quota.insert(
                "gemini-2.5-flash".into(),
                ModelQuota {
                    remaining_fraction: 0.5,
                    reset_at: Some(42),
                },
            );
            a.cooldowns.push(PersistedCooldown {
                scope: "account".into(),
                until_ms: 1_700_000_000_123,
                reason: "429".into(),
            });
        })
        .unwrap();
    assert_eq!(updated.labels["tier"], "pro");

    let v = raw_json(&store, id);
    let original: Value = serde_json::from_str(AG_FILE).unwrap();
    // Every original field is still there with the same value.
    for (k, val) in original.as_object().unwrap() {
        if k == "quota" {
            continue;
        }
        assert_eq!(&v[k], val, "top-level field {k}");
    }
    for (k, val) in original["token"].as_object().unwrap() {
        assert_eq!(&v["token"][k], val, "token field {k}");
    }
    for (k, val) in original["quota"].as_object().unwrap() {
        assert_eq!(&v["quota"][k], val, "quota field {k}");
    }
    assert_eq!(v["quota"]["gemini-2.5-flash"]["remaining_fraction"], 0.5);
    assert_eq!(v["labels"]["tier"], "pro");
    assert_eq!(v["cooldowns"][0]["until"], 1_700_000_000_123i64);
    assert_eq!(v["cooldowns"][0]["scope"], "account");

    // And it reads back to the same value.
    let again = store.load(id).unwrap().unwrap();
    assert_eq!(again, updated);
    let reencoded: AccountFile = serde_json::from_slice(&encode(&again)).unwrap();
    assert_eq!(reencoded, again);
}

#[test]
fn minimal_file_gets_defaults_and_spec_example_parses() {
    let (_tmp, store) = open();
    fs::write(
        store.path_of("min"),
        r#"{"email": "m@example.com", "token": {"refresh_token": "r"}, "quota": null, "labels": null}"#,
    )
    .unwrap();
    let a = store.load("min").unwrap().unwrap();
    assert_eq!(a.id, "min");
    assert_eq!(a.token.token_type, "Bearer");
    assert_eq!(a.token.access_token, "");
    assert!(!a.disabled && !a.proxy_disabled);
    fs::write(
        store.path_of("spec"),
        r#"{
  "id": "spec", "email": "a@example.com",
  "token": {"access_token": "x", "refresh_token": "y",
        "expiry_timestamp": 1700003600, "token_type": "Bearer",
        "project_id": "optional-project"},
  "disabled": true, "disabled_at": 1700000000,
  "disabled_reason": "invalid_grant: x",
  "proxy_disabled": false, "proxy_disabled_reason": null, "proxy_disabled_at": null,
  "created_at": 1690000000, "last_used": 1699999000
}"#,
    )
    .unwrap();
    let s = store.load("spec").unwrap().unwrap();
    assert!(s.disabled);
    assert_eq!(s.disabled_reason.as_deref(), Some("invalid_grant: x"));
    let report = store.load_all();
    assert_eq!(report.accounts.len(), 2);
    assert!(report.skipped.is_empty());
    // Oldest first.
    assert_eq!(report.accounts[0].id, "min");
}

#[cfg(unix)]
#[test]
fn files_are_0600_and_folder_0700() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = TestStore::open(&data).unwrap();
    let out = store
        .upsert(new_account("p@example.com", "a", "r"))
        .unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store.path_of(&out.account.id)), 0o600);
    assert_eq!(mode(store.accounts_dir()), 0o700);
    assert_eq!(mode(&data), 0o700);
    store
        .update(&out.account.id, |a| a.last_used = Some(1))
        .unwrap();
    assert_eq!(mode(&store.path_of(&out.account.id)), 0o600);

    // A pre-existing, too-open accounts folder is tightened.
    set_mode(store.accounts_dir(), 0o755).unwrap();
    let _ = TestStore::open(&data).unwrap();
    assert_eq!(mode(store.accounts_dir()), 0o700);
}

#[test]
fn corrupt_file_is_skipped_reported_untouched_and_refused() {
    let (_tmp, store) = open();
    let good1 = store
        .upsert(new_account("g1@example.com", "a1", "r1"))
        .unwrap()
        .account;
    let good2 = store
        .upsert(new_account("g2@example.com", "a2", "r2"))
        .unwrap()
        .account;
    let truncated =
        br#"{"id": "trunc", "email": "t@example.com", "token": {"refresh_tok"#.to_vec();
    // Valid JSON, wrong type; the bad value looks like a token and must not leak.
    let wrong_type =
        br#"{"email": "w@example.com", "token": {"refresh_token": "r", "expiry_timestamp": "ya29.SECRET-VALUE"}}"#
            .to_vec();
    fs::write(store.path_of("trunc"), &truncated).unwrap();
    fs::write(store.path_of("wrong"), &wrong_type).unwrap();
    // Ignored entirely: dot-files, temporary files, other extensions, folders.
    fs::write(store.accounts_dir().join(".hidden.json"), b"garbage").unwrap();
    fs::write(store.accounts_dir().join(".x.123.tmp"), b"garbage").unwrap();
    fs::write(store.accounts_dir().join("notes.txt"), b"garbage").unwrap();
    fs::create_dir(store.accounts_dir().join("dir.json")).unwrap();

    let (report, logs) = capture_logs(|| store.load_all());
    let ids: Vec<_> = report.accounts.iter().map(|a| a.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&good1.id) && ids.contains(&good2.id));
    assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
    let wrong = report
        .skipped
        .iter()
        .find(|s| s.path == store.path_of("wrong"))
        .unwrap();
    assert_eq!(wrong.email.as_deref(), Some("w@example.com"));
    assert!(wrong.cause.contains("line"), "{}", wrong.cause);
    assert!(report
        .skipped
        .iter()
        .any(|s| s.path == store.path_of("trunc")));
    // The warning names the file in a `file` field and gives the cause.
    assert!(logs.contains("WARN"), "{logs}");
    assert!(
        logs.contains(&format!("file={}", store.path_of("trunc").display())),
        "{logs}"
    );
    assert!(
        logs.contains(&format!("file={}", store.path_of("wrong").display())),
        "{logs}"
    );
    assert!(logs.contains("EOF while parsing"), "{logs}");
    assert!(!logs.contains("SECRET"), "{logs}");
    assert!(!format!("{:?}", report.skipped).contains("SECRET"));

    // update refused, naming the file; bytes unchanged.
    let err = store.update("trunc", |a| a.disabled = true).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&store.path_of("trunc").display().to_string()),
        "{err}"
    );
    let err = store.update("wrong", |a| a.disabled = true).unwrap_err();
    assert!(!err.to_string().contains("SECRET"), "{err}");
    // An upsert of the email of a file that does not parse is refused too.
    let err = store
        .upsert(new_account("W@example.com", "a", "r"))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { ref path, .. } if *path == store.path_of("wrong")),
        "{err}"
    );
    // find / load report it.
    assert!(matches!(
        store.load("trunc"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.find("w@example.com"),
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(fs::read(store.path_of("trunc")).unwrap(), truncated);
    assert_eq!(fs::read(store.path_of("wrong")).unwrap(), wrong_type);
    // Other accounts still work.
    store.update(&good1.id, |a| a.last_used = Some(5)).unwrap();
    // remove deletes even a corrupt file.
    assert!(store.remove("trunc").unwrap());
}

#[test]
fn reasons_are_trimmed_on_a_char_boundary() {
    assert_eq!(trim_reason("short"), "short");
    let exact = "a".repeat(REASON_MAX_BYTES);
    assert_eq!(trim_reason(&exact), exact);
    let long = "a".repeat(REASON_MAX_BYTES + 1);
    let t = trim_reason(&long);
    assert_eq!(t.len(), REASON_MAX_BYTES);
    assert!(t.ends_with('…'));
    // Every alignment of 2-, 3- and 4-byte characters around the cut.
    for ch in ["é", "€", "😀"] {
        for pad in 0..4 {
            let s = format!("{}{}", "a".repeat(pad), ch.repeat(400));
            let t = trim_reason(&s);
            assert!(t.len() <= REASON_MAX_BYTES, "{ch} {pad}: {}", t.len());
            assert!(t.len() > REASON_MAX_BYTES - TRIM_MARKER.len() - 4);
            assert!(t.ends_with('…'));
            assert!(s.starts_with(t.trim_end_matches('…')));
        }
    }
    // Writes trim whatever a caller put in.
    let (_tmp, store) = open();
    let id = store
        .upsert(new_account("t@example.com", "a", "r"))
        .unwrap()
        .account
        .id;
    let a = store
        .update(&id, |a| {
            a.disabled = true;
            a.disabled_reason = Some("invalid_grant: ".to_string() + &"é".repeat(600));
            a.proxy_disable(&"x".repeat(1000), 7);
        })
        .unwrap();
    assert!(a.disabled_reason.as_ref().unwrap().len() <= REASON_MAX_BYTES);
    let on_disk = store.load(&id).unwrap().unwrap();
    assert!(on_disk.disabled_reason.unwrap().len() <= REASON_MAX_BYTES);
    assert!(on_disk.proxy_disabled_reason.unwrap().len() <= REASON_MAX_BYTES);
}

#[test]
fn upsert_through_the_store() {
    let (_tmp, store) = open();
    let first = store
        .upsert(new_account("Case@Example.com", "a1", "r1"))
        .unwrap();
    assert!(first.created);
    let id = first.account.id.clone();
    assert_eq!(
        store.path_of(&id),
        store.accounts_dir().join(format!("{id}.json"))
    );
    store
        .update(&id, |a| {
            a.disable("invalid_grant: Token has been expired or revoked.", 100);
            a.proxy_disable("quota protection", 100);
            a.labels.insert("n".into(), "1".into());
        })
        .unwrap();
    let before = fs::read(store.path_of(&id)).unwrap();

    // Same tokens, other case: same account, still disabled, file untouched.
    let same = store
        .upsert(new_account("case@EXAMPLE.com", "a1", "r1"))
        .unwrap();
    assert!(!same.created && !same.recovered && !same.changed);
    assert_eq!(same.account.id, id);
    assert!(same.account.disabled);
    assert_eq!(fs::read(store.path_of(&id)).unwrap(), before);

    // New refresh token: recovered, proxy_disabled untouched.
    let rec = store
        .upsert(new_account("CASE@example.com", "a1", "r2"))
        .unwrap();
    assert!(rec.recovered && rec.changed && !rec.created);
    let a = store.load(&id).unwrap().unwrap();
    assert!(!a.disabled && a.disabled_reason.is_none() && a.disabled_at.is_none());
    assert!(a.proxy_disabled);
    assert_eq!(a.labels["n"], "1");
    assert_eq!(a.email, "Case@Example.com");
    assert_eq!(a.token.refresh_token, "r2");

    // New access token on a disabled account: recovered too.
    store
        .update(&id, |a| a.disable("invalid_grant", 200))
        .unwrap();
    let rec = store
        .upsert(new_account("case@example.com", "a2", "r2"))
        .unwrap();
    assert!(rec.recovered);
    assert!(!store.load(&id).unwrap().unwrap().disabled);

    // Still one file; another email makes another account.
    let other = store
        .upsert(new_account("other@example.com", "b", "rb"))
        .unwrap();
    assert!(other.created && other.account.id != id);
    assert_eq!(store.load_all().accounts.len(), 2);
    assert_eq!(store.find("CASE@example.com").unwrap().unwrap().id, id);
    assert_eq!(
        store.find(&other.account.id).unwrap().unwrap().email,
        "other@example.com"
    );
    assert!(store.find("nobody@example.com").unwrap().is_none());

    // Incomplete accounts are refused.
    assert!(matches!(
        store.upsert(new_account("  ", "a", "r")),
        Err(StoreError::InvalidAccount { .. })
    ));
    assert!(matches!(
        store.upsert(new_account("x@example.com", "a", "")),
        Err(StoreError::InvalidAccount { .. })
    ));
}

#[test]
fn update_remove_and_ids() {
    let (_tmp, store) = open();
    assert!(matches!(
        store.update("missing", |_| {}),
        Err(StoreError::NotFound { .. })
    ));
    for bad in ["", "../x", "a/b", ".hidden", "a\\b", "a\nb"] {
        assert!(
            matches!(store.update(bad, |_| {}), Err(StoreError::InvalidId { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.load(bad), Err(StoreError::InvalidId { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.remove(bad), Err(StoreError::InvalidId { .. })),
            "{bad:?}"
        );
    }
    let id = store
        .upsert(new_account("r@example.com", "a", "r"))
        .unwrap()
        .account
        .id;
    // The closure cannot move the account to another id.
    let a = store.update(&id, |a| a.id = "elsewhere".into()).unwrap();
    assert_eq!(a.id, id);
    assert!(!store.path_of("elsewhere").exists());
    assert!(store.remove(&id).unwrap());
    assert!(!store.remove(&id).unwrap());
    assert!(store.load(&id).unwrap().is_none());
    // No lock or temporary file is left behind.
    let left: Vec<_> = fs::read_dir(store.accounts_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    assert_eq!(
        FileStore::id_from_path(Path::new("/d/abc.json")).as_deref(),
        Some("abc")
    );
    assert_eq!(
        FileStore::id_from_path(Path::new("abc-1.2.json")).as_deref(),
        Some("abc-1.2")
    );
    assert_eq!(FileStore::id_from_path(Path::new("/d/.abc.json")), None);
    assert_eq!(FileStore::id_from_path(Path::new("/d/.abc.x1.tmp")), None);
    assert_eq!(FileStore::id_from_path(Path::new("/d/.abc.lock")), None);
    assert_eq!(FileStore::id_from_path(Path::new("/d/abc.txt")), None);
    assert_eq!(FileStore::id_from_path(Path::new("/d/.json")), None);
}

#[test]
fn orphaned_temporary_files_are_cleaned_a_live_writers_kept() {
    let (tmp, store) = open();
    // A writer that died mid-write (SIGKILL) left `a`'s, however new; `b`'s
    // writer is alive (it holds b's lock) and its file stays.
    let orphan = store.accounts_dir().join(".a.XXXXXX.tmp");
    let live = store.accounts_dir().join(".b.YYYYYY.tmp");
    fs::write(&orphan, b"partial").unwrap();
    fs::write(&live, b"partial").unwrap();
    let writer = super::durable::try_lock_file(&store.accounts_dir().join(".b.lock")).expect("b's lock is free");
    let _ = TestStore::open(tmp.path()).unwrap();
    assert!(!orphan.exists());
    assert!(live.exists());
    drop(writer);
    let _ = TestStore::open(tmp.path()).unwrap();
    assert!(!live.exists(), "once its writer is gone it is an orphan too");
    assert!(store.load_all().skipped.is_empty());
}

#[test]
fn tokens_never_in_debug_or_errors() {
    let mut t = tokens("ya29.ACCESS-SECRET", "1//REFRESH-SECRET");
    t.extra
        .insert("id_token".into(), Value::String("ID-SECRET".into()));
    let mut a = AccountFile::new("x", "d@example.com", t.clone(), 1);
    a.extra
        .insert("api_key".into(), Value::String("TOP-SECRET".into()));
    let dbg = format!(
        "{a:?} {t:?} {:?}",
        NewAccount {
            email: "e".into(),
            token: t.clone()
        }
    );
    for secret in ["ACCESS-SECRET", "REFRESH-SECRET", "ID-SECRET", "TOP-SECRET"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    assert!(dbg.contains("<redacted>") && dbg.contains("id_token"));
    assert_eq!(
        redact_quoted(r#"invalid type: string "a\"b", expected i64 at line 1"#),
        r#"invalid type: string "…", expected i64 at line 1"#
    );
}

#[test]
fn concurrent_updates_from_threads_and_two_stores_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Two independent stores on one folder stand in for two processes:
    // they share no in-process lock, only the lock files.
    let stores = [
        TestStore::open(tmp.path()).unwrap(),
        TestStore::open(tmp.path()).unwrap(),
    ];
    let id = stores[0]
        .upsert(new_account("c@example.com", "a", "r"))
        .unwrap()
        .account
        .id;
    const THREADS: usize = 8;
    const ROUNDS: usize = 50;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let store = stores[i % 2].clone();
            let id = id.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..ROUNDS {
                    store
                        .update(&id, |a| {
                            let n: usize =
                                a.labels.get("counter").map_or(0, |v| v.parse().unwrap());
                            a.labels.insert("counter".into(), (n + 1).to_string());
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let a = stores[1].load(&id).unwrap().unwrap();
    assert_eq!(a.labels["counter"], (THREADS * ROUNDS).to_string());
    assert!(stores[0].files.id_lock_entries() == 0);
}

#[test]
fn racing_upserts_and_disables_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = TestStore::open(tmp.path()).unwrap();
    let b = TestStore::open(tmp.path()).unwrap();
    // Eight racing first upserts of one email make one account.
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                store
                    .upsert(new_account("Race@example.com", "a0", "r0"))
                    .unwrap()
                    .created
            })
        })
        .collect();
    let created = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|c| *c)
        .count();
    assert_eq!(created, 1);
    let report = a.load_all();
    assert_eq!(report.accounts.len(), 1);
    let id = report.accounts[0].id.clone();

    // One thread counts in a label; another upserts new tokens; a third
    // takes the account on and off the proxy. Every effect survives.
    let counter = {
        let store = a.clone();
        let id = id.clone();
        thread::spawn(move || {
            for _ in 0..50 {
                store
                    .update(&id, |acc| {
                        let n: usize = acc.labels.get("n").map_or(0, |v| v.parse().unwrap());
                        acc.labels.insert("n".into(), (n + 1).to_string());
                    })
                    .unwrap();
            }
        })
    };
    let upserter = {
        let store = b.clone();
        thread::spawn(move || {
            for i in 1..=50 {
                store
                    .upsert(new_account(
                        "race@example.com",
                        &format!("a{i}"),
                        &format!("r{i}"),
                    ))
                    .unwrap();
            }
        })
    };
    let proxy = {
        let store = b.clone();
        let id = id.clone();
        thread::spawn(move || {
            for i in 0..50 {
                store
                    .update(&id, |acc| {
                        let n: usize = acc.labels.get("p").map_or(0, |v| v.parse().unwrap());
                        acc.labels.insert("p".into(), (n + 1).to_string());
                        if i % 2 == 0 {
                            acc.proxy_disable("flap", 1)
                        } else {
                            acc.clear_proxy_disabled()
                        }
                    })
                    .unwrap();
            }
        })
    };
    for h in [counter, upserter, proxy] {
        h.join().unwrap();
    }
    let acc = a.load(&id).unwrap().unwrap();
    assert_eq!(acc.labels["n"], "50");
    assert_eq!(acc.labels["p"], "50");
    assert_eq!(acc.token.refresh_token, "r50");
    assert!(!acc.proxy_disabled);
}

fn write_ag_fixtures(root: &Path) -> PathBuf {
    let dir = root.join("accounts");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("5f0c7a2e-1111-2222-3333-444455556666.json"),
        AG_FILE,
    )
    .unwrap();
    fs::write(
        dir.join("dead.json"),
        r#"{"id": "dead-1", "email": "dead@example.com", "name": null,
            "token": {"access_token": "ya29.D", "refresh_token": "1//D", "expires_in": 3599,
                      "expiry_timestamp": 1700003600, "token_type": "Bearer", "email": null},
            "quota": null, "disabled": true, "disabled_reason": "invalid_grant: revoked",
            "disabled_at": 1700000500, "created_at": 1690000001, "last_used": 1690000002}"#,
    )
    .unwrap();
    fs::write(
        dir.join("broken.json"),
        b"{\"email\": \"b@example.com\", \"token\": {",
    )
    .unwrap();
    fs::write(dir.join("no-token.json"), br#"{"email": "n@example.com"}"#).unwrap();
    fs::write(
        dir.join("bad-type.json"),
        br#"{"email": "bt@example.com", "token": {"refresh_token": 12345}}"#,
    )
    .unwrap();
    fs::write(dir.join("readme.txt"), b"not an account").unwrap();
    fs::write(
        root.join("accounts.json"),
        br#"{"version": "2.0", "accounts": [], "current_account_id": null}"#,
    )
    .unwrap();
    dir
}

#[test]
fn import_antigravity_dir_twice() {
    let src = tempfile::tempdir().unwrap();
    let dir = write_ag_fixtures(src.path());
    let (_tmp, store) = open();

    let (report, logs) = capture_logs(|| store.import_antigravity(src.path()));
    assert_eq!(report.source_dir, dir);
    assert_eq!(report.created(), 2, "{report:?}");
    assert_eq!(report.failed.len(), 3, "{report:?}");
    for name in ["broken.json", "no-token.json", "bad-type.json"] {
        assert!(
            report.failed.iter().any(|f| f.path == dir.join(name)),
            "{name}"
        );
        assert!(
            logs.contains(&format!("file={}", dir.join(name).display())),
            "{logs}"
        );
    }
    assert!(!logs.contains("12345"), "{logs}");

    let ag = store
        .load("5f0c7a2e-1111-2222-3333-444455556666")
        .unwrap()
        .expect("source id kept");
    assert_eq!(ag.email, "Ag.User@Example.com");
    assert_eq!(ag.token.refresh_token, "1//AG-REFRESH");
    assert_eq!(ag.token.access_token, "ya29.AG-ACCESS");
    assert_eq!(ag.token.expiry_timestamp, 1_700_003_600);
    assert_eq!(ag.token.project_id.as_deref(), Some("proj-ag"));
    assert!(ag.proxy_disabled);
    assert_eq!(ag.proxy_disabled_reason.as_deref(), Some("by hand"));
    assert_eq!(ag.created_at, 1_690_000_000);
    let dead = store.load("dead-1").unwrap().unwrap();
    assert!(dead.disabled);
    assert_eq!(
        dead.disabled_reason.as_deref(),
        Some("invalid_grant: revoked")
    );
    assert_eq!(dead.disabled_at, Some(1_700_000_500));

    let snapshot: Vec<(PathBuf, Vec<u8>)> = store
        .load_all()
        .accounts
        .iter()
        .map(|a| {
            (
                store.path_of(&a.id),
                fs::read(store.path_of(&a.id)).unwrap(),
            )
        })
        .collect();
    let again = store.import_antigravity(src.path());
    assert_eq!(again.created(), 0);
    assert_eq!(again.updated(), 0);
    assert_eq!(again.unchanged(), 2);
    assert_eq!(again.failed.len(), 3);
    assert_eq!(store.load_all().accounts.len(), 2);
    for (path, bytes) in snapshot {
        assert_eq!(fs::read(&path).unwrap(), bytes, "{}", path.display());
    }

    // The folder holding the files directly works too; the index is ignored.
    let flat = tempfile::tempdir().unwrap();
    fs::copy(dir.join("dead.json"), flat.path().join("dead.json")).unwrap();
    fs::copy(
        src.path().join("accounts.json"),
        flat.path().join("accounts.json"),
    )
    .unwrap();
    let (_tmp2, store2) = open();
    let r = store2.import_antigravity(flat.path());
    assert_eq!((r.created(), r.failed.len()), (1, 0), "{r:?}");

    // A folder that does not exist is reported, not a panic.
    let r = store2.import_antigravity(&flat.path().join("nope"));
    assert_eq!(r.failed.len(), 1);
}

#[test]
fn import_rules_against_existing_accounts() {
    let (_tmp, store) = open();
    let src = tempfile::tempdir().unwrap();
    let dir = write_ag_fixtures(src.path());
    // Stored: the AG account, disabled by grantpool, same tokens, labelled;
    // the dead account, enabled here with other tokens.
    let ag = store
        .upsert(new_account(
            "ag.user@example.com",
            "ya29.AG-ACCESS",
            "1//AG-REFRESH",
        ))
        .unwrap()
        .account;
    store
        .update(&ag.id, |a| {
            a.disable("invalid_grant: seen by grantpool", 5);
            a.labels.insert("keep".into(), "me".into());
        })
        .unwrap();
    let dead = store
        .upsert(new_account("DEAD@example.com", "other", "other-r"))
        .unwrap()
        .account;

    let r = store.import_antigravity(src.path());
    assert_eq!(r.created(), 0);
    let ag_now = store.load(&ag.id).unwrap().unwrap();
    // Same tokens, source enabled: grantpool's newer verdict stands.
    assert!(ag_now.disabled);
    assert_eq!(
        ag_now.disabled_reason.as_deref(),
        Some("invalid_grant: seen by grantpool")
    );
    assert_eq!(ag_now.labels["keep"], "me");
    assert!(ag_now.proxy_disabled); // the source had it
    assert_eq!(ag_now.token.project_id.as_deref(), Some("proj-ag"));
    assert_eq!(ag_now.email, "ag.user@example.com");
    // An imported disabled account stays disabled, with the source's reason.
    let dead_now = store.load(&dead.id).unwrap().unwrap();
    assert!(dead_now.disabled);
    assert_eq!(
        dead_now.disabled_reason.as_deref(),
        Some("invalid_grant: revoked")
    );
    assert_eq!(dead_now.token.refresh_token, "1//D");
    assert!(!store.path_of("dead-1").exists());

    // New tokens in the source on an account grantpool disabled: recovered.
    let text = fs::read_to_string(dir.join("5f0c7a2e-1111-2222-3333-444455556666.json"))
        .unwrap()
        .replace("1//AG-REFRESH", "1//AG-NEW");
    fs::write(dir.join("5f0c7a2e-1111-2222-3333-444455556666.json"), text).unwrap();
    let r = store.import_antigravity(src.path());
    assert_eq!(r.updated(), 1);
    assert!(r.imported.iter().any(|e| e.recovered && e.id == ag.id));
    assert!(!store.load(&ag.id).unwrap().unwrap().disabled);
}

/// Found by fuzzing (host/fuzz, target `account_file`): a number of an
/// unknown field too long for exact parsing changed on every rewrite.
/// Parsed correctly rounded, what is written reads back the same.
#[test]
fn unknown_numbers_survive_a_rewrite() {
    let bytes = include_bytes!("../../fuzz/corpus/account_file/regression-long-number");
    let a = parse_account(bytes).unwrap();
    let back = parse_account(&encode(&a)).unwrap();
    assert_eq!(back, a);
    assert_eq!(encode(&back), encode(&a));
}

/// Found by fuzzing (target `import`): an imported file that was disabled
/// without a time got one only on its second import, so importing the same
/// file twice changed it.
#[test]
fn importing_the_same_file_twice_changes_nothing() {
    let bytes = include_bytes!("../../fuzz/corpus/import/regression-disabled-without-time");
    let v: Value = serde_json::from_slice(bytes).unwrap();
    let src = crate::store::import::imported_from_value(&v).unwrap();
    let created = crate::store::upsert::import_decision(None, &src, 1_700_000_000);
    assert_eq!(created.account.proxy_disabled_at, Some(1_700_000_000));
    let again = crate::store::upsert::import_decision(Some(&created.account), &src, 1_700_000_001);
    assert!(!again.created && !again.changed);
}
