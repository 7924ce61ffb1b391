//! The cluster backend against a real `redis-server` (Debian's; `./dev
//! test` installs it), one per test on a free loopback port: the store's
//! rules hold between nodes — no lost update, one account per email, the
//! disable's precondition, changes seen live.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::cluster::{ClusterOptions, ClusterStore, Role};
use crate::store::{Change, NewAccount, Store, TokenData};

pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (./dev test installs Debian's redis-server)");
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port, _dir: dir }
    }

    fn store(&self, data_dir: &Path) -> Store {
        let options = ClusterOptions { url: format!("redis://127.0.0.1:{}/0", self.port), key_prefix: "unit".into(), data_dir: data_dir.to_path_buf(), role: Role::Node };
        Store::with_backend(Arc::new(ClusterStore::open(options).expect("open the cluster store")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn new_account(email: &str, rt: &str) -> NewAccount {
    NewAccount { email: email.into(), token: TokenData::new("at", rt, 4_102_444_800) }
}

#[test]
fn concurrent_updates_from_two_nodes_lose_nothing() {
    let server = Server::start();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (server.store(d1.path()), server.store(d2.path()));
    let id = a.upsert(new_account("race@example.com", "rt-1")).unwrap().account.id;
    let bump = |s: Store, id: String| {
        std::thread::spawn(move || {
            for _ in 0..40 {
                s.update(&id, |f| {
                    let n: u32 = f.labels.get("n").and_then(|v| v.parse().ok()).unwrap_or(0);
                    f.labels.insert("n".into(), (n + 1).to_string());
                })
                .unwrap();
            }
        })
    };
    let (t1, t2) = (bump(a.clone(), id.clone()), bump(b.clone(), id.clone()));
    t1.join().unwrap();
    t2.join().unwrap();
    assert_eq!(a.load(&id).unwrap().unwrap().labels["n"], "80");
}

#[test]
fn one_account_per_email_and_the_disable_lands_only_on_the_token_it_judged() {
    let server = Server::start();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (server.store(d1.path()), server.store(d2.path()));
    let handles: Vec<_> = [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .map(|s| std::thread::spawn(move || s.upsert(new_account("Same@Example.com", "rt-1")).unwrap().account.id))
        .collect();
    let ids: std::collections::HashSet<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one account for one email: {ids:?}");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(a.load_all().accounts.len(), 1);
    assert_eq!(b.find("same@example.com").unwrap().unwrap().id, id);

    // Node B re-adds the account with a new token; node A's disable, judged
    // on the old one, does not land.
    b.upsert(new_account("same@example.com", "rt-2")).unwrap();
    let u = a.update_if(&id, |f| f.token.refresh_token == "rt-1", |f| f.disable("invalid_grant: old", 1)).unwrap();
    assert!(!u.applied);
    assert!(!a.load(&id).unwrap().unwrap().disabled);
    // On the current token it does, and a re-add with another clears it.
    assert!(a.update_if(&id, |f| f.token.refresh_token == "rt-2", |f| f.disable("invalid_grant: revoked", 2)).unwrap().applied);
    let rec = b.load(&id).unwrap().unwrap();
    assert!(rec.disabled && rec.disabled_reason.as_deref() == Some("invalid_grant: revoked"));
    let out = b.upsert(new_account("same@example.com", "rt-3")).unwrap();
    assert!(out.recovered && !out.account.disabled);

    assert!(a.remove(&id).unwrap());
    assert!(b.find("same@example.com").unwrap().is_none());
    assert!(b.load_all().accounts.is_empty());
}

#[test]
fn a_change_on_one_node_reaches_the_other_within_100_ms() {
    let server = Server::start();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (server.store(d1.path()), server.store(d2.path()));
    let seen: Arc<Mutex<Vec<(Instant, Change)>>> = Arc::default();
    let sink = seen.clone();
    let _watch = b.watch(move |c| sink.lock().unwrap().push((Instant::now(), c))).unwrap();
    // The first thing the subscriber does is a full read.
    let until = Instant::now() + Duration::from_secs(5);
    while !seen.lock().unwrap().iter().any(|(_, c)| matches!(c, Change::Reloaded(_))) {
        assert!(Instant::now() < until, "no resync");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Instant::now();
    let id = a.upsert(new_account("live@example.com", "rt-1")).unwrap().account.id;
    a.update(&id, |f| f.disable("invalid_grant: x", 3)).unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let got = seen.lock().unwrap().iter().find(|(_, c)| matches!(c, Change::Upserted(f) if f.id == id && f.disabled)).map(|(t, _)| *t);
        if let Some(t) = got {
            let lag = t.duration_since(sent);
            assert!(lag < Duration::from_millis(100), "applied after {lag:?}");
            break;
        }
        assert!(Instant::now() < until, "the disable never arrived");
        std::thread::sleep(Duration::from_millis(2));
    }
    // The same record the file backend would write.
    assert_eq!(b.load(&id).unwrap().unwrap(), a.load(&id).unwrap().unwrap());
}

#[test]
fn a_session_claim_holds_once_made_and_moves_only_from_the_binding_that_holds() {
    let server = Server::start();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (server.store(d1.path()), server.store(d2.path()));
    let (ca, cb) = (a.cluster().unwrap(), b.cluster().unwrap());
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let sink = seen.clone();
    let _watch = b.watch(move |c| sink.lock().unwrap().push(c)).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while !seen.lock().unwrap().iter().any(|c| matches!(c, Change::Reloaded(_))) {
        assert!(Instant::now() < until, "no resync");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ttl = 60_000;
    // Two nodes racing on a new conversation agree on the first claim.
    let first = ca.claim_session("s1", None, "acc-a", ttl).unwrap();
    assert_eq!(first.account, "acc-a");
    assert!(first.until_ms > crate::util::now_ms() + ttl - 5_000, "{first:?}");
    assert_eq!(cb.claim_session("s1", None, "acc-b", ttl).unwrap().account, "acc-a", "the loser adopts the winner's");
    // A move from the binding that holds lands; a stale move does not.
    assert_eq!(cb.claim_session("s1", Some("acc-a"), "acc-b", ttl).unwrap().account, "acc-b");
    assert_eq!(ca.claim_session("s1", Some("acc-a"), "acc-c", ttl).unwrap().account, "acc-b", "moved once, not twice");
    // An extension of a binding that moved meanwhile changes nothing, and
    // tells every node which one holds.
    ca.claim_session_later("s1", Some("acc-a"), "acc-a", ttl);
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let told = seen.lock().unwrap().iter().filter(|c| matches!(c, Change::SessionBound { session, account, .. } if session == "s1" && account == "acc-b")).count();
        // The move, then the answer to the stale extension.
        if told >= 2 {
            break;
        }
        assert!(Instant::now() < until, "the bindings were not told: {:?}", seen.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(cb.claim_session("s1", None, "acc-c", ttl).unwrap().account, "acc-b");
    // An expired binding is no binding.
    assert_eq!(ca.claim_session("s2", None, "acc-a", 30).unwrap().account, "acc-a");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(cb.claim_session("s2", None, "acc-b", ttl).unwrap().account, "acc-b");
}
