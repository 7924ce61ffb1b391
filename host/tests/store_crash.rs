//! Crash safety of account writes: a child process rewriting accounts in a
//! loop is killed with SIGKILL many times; every file left parses and holds
//! a complete write (the old or the new content), never a mix or a stub.
#![cfg(unix)]

use std::process::Command;
use std::time::Duration;

use grantpool::store::{AccountFile, NewAccount, Store, TokenData};

const ACCOUNTS: usize = 3;

/// The payload written with counter `n`: big enough that a write takes a
/// while, and checkable against `n`.
fn payload(n: u64) -> String {
    format!("{n:08}-").repeat(4096)
}

/// Child mode: rewrite every account forever (until killed).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("GRANTPOOL_CRASH_DIR") else { return };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let ids: Vec<String> = store.load_all().accounts.into_iter().map(|a| a.id).collect();
    loop {
        for id in &ids {
            store
                .update(id, |f| {
                    let n: u64 = f.labels.get("n").and_then(|s| s.parse().ok()).unwrap_or(0) + 1;
                    f.labels.insert("n".into(), n.to_string());
                    f.extra.insert("payload".into(), payload(n).into());
                })
                .unwrap();
        }
    }
}

fn check(file: &AccountFile) -> u64 {
    let n: u64 = file.labels.get("n").map(|s| s.parse().unwrap()).unwrap_or(0);
    let p = file.extra.get("payload").and_then(|p| p.as_str()).unwrap_or("");
    if n > 0 {
        assert_eq!(p, payload(n), "account {} holds a mix of two writes", file.id);
    }
    n
}

#[test]
fn sigkill_during_writes_leaves_old_or_new_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..ACCOUNTS {
        store
            .upsert(NewAccount { email: format!("k{i}@example.com"), token: TokenData::new("at", format!("rt{i}"), 0) })
            .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let mut last_total = 0;
    for round in 0..40u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("GRANTPOOL_CRASH_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment of death.
        std::thread::sleep(Duration::from_millis(20 + (round * 7) % 60));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let report = store.load_all();
        assert!(report.skipped.is_empty(), "round {round}: unreadable files: {:?}", report.skipped.iter().map(|s| &s.cause).collect::<Vec<_>>());
        assert_eq!(report.accounts.len(), ACCOUNTS, "round {round}: an account file went missing");
        last_total = report.accounts.iter().map(check).sum::<u64>();
    }
    assert!(last_total > 0, "the child never completed a write: the test proved nothing");
}
