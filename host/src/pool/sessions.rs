//! Conversations bound to accounts across the nodes of a cluster
//! ([`Sessions`]). A binding is learned from the store's change feed into
//! this node's map, so that following a known binding costs no round trip;
//! a node that knows none for a conversation (its first turn, or one
//! another node bound a moment ago) claims one in Redis before the request
//! goes upstream, and the binding that holds there wins. The pool decides
//! which account; this only keeps what is known and asks the cluster.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::store::Cluster;

/// Most bindings kept.
const CAP: usize = 200_000;
/// Least time between two requests to extend one binding (its extension
/// comes back by subscription).
const EXTEND_EVERY_MS: u64 = 10_000;
/// Least time between two claims of a binding made while Redis did not
/// answer.
const RECLAIM_EVERY_MS: u64 = 1_000;

/// One conversation's binding as this node knows it.
struct Binding {
    account: String,
    /// Until when, Unix ms (Redis' clock, or this node's when made alone).
    until_ms: u64,
    /// Made by this node while Redis did not answer: any binding the
    /// cluster tells of replaces it, and it is claimed again when used.
    alone: bool,
    /// When this node last asked the cluster about it.
    asked_ms: u64,
}

/// The bindings this node knows, and the cluster they are shared through.
pub(super) struct Sessions {
    ttl_ms: u64,
    /// Session key → its binding.
    map: Mutex<HashMap<String, Binding>>,
    cluster: Arc<dyn Cluster>,
}

impl Sessions {
    /// Bindings lasting `ttl_ms` from their last extension, shared through `cluster`.
    pub(super) fn new(ttl_ms: u64, cluster: Arc<dyn Cluster>) -> Sessions {
        Sessions { ttl_ms, map: Mutex::new(HashMap::new()), cluster }
    }

    /// Keeps `binding` for `key`. Unless `sure` (the cluster's answer to
    /// this node's own claim), a binding replaces a known one only when it
    /// is as late or later — a message may arrive after a newer answer —
    /// or the known one was made alone.
    fn keep(&self, key: &str, binding: Binding, now: u64, sure: bool) {
        let mut map = self.map.lock();
        if let Some(known) = map.get(key) {
            if !sure && !known.alone && known.until_ms > now && known.until_ms > binding.until_ms {
                return;
            }
        }
        if map.len() >= CAP && !map.contains_key(key) {
            map.retain(|_, b| b.until_ms > now);
            if map.len() >= CAP {
                map.clear();
            }
        }
        map.insert(key.to_string(), binding);
    }

    /// A binding the change feed tells of.
    pub(super) fn learn(&self, key: &str, account: String, until_ms: u64, now: u64) {
        if until_ms > now {
            self.keep(key, Binding { account, until_ms, alone: false, asked_ms: 0 }, now, false);
        }
    }

    /// The account `key` is bound to, as this node knows it, while the
    /// binding lasts.
    pub(super) fn account(&self, key: &str, now: u64) -> Option<String> {
        self.map.lock().get(key).filter(|b| b.until_ms > now).map(|b| b.account.clone())
    }

    /// `key` was served by `account`, the account it is bound to: past half
    /// its time the binding is extended (queued; every node hears of it),
    /// unless the cluster moved it meanwhile; one made alone is claimed
    /// again (queued too: the feed tells which binding holds).
    pub(super) fn served(&self, key: &str, account: &str, now: u64) {
        let alone = {
            let mut map = self.map.lock();
            let Some(b) = map.get_mut(key).filter(|b| b.account == account) else { return };
            let since = now.saturating_sub(b.asked_ms);
            let due = if b.alone { since >= RECLAIM_EVERY_MS } else { b.until_ms.saturating_sub(now) <= self.ttl_ms / 2 && since >= EXTEND_EVERY_MS };
            if !due {
                return;
            }
            b.asked_ms = now;
            b.alone
        };
        let expected = if alone { None } else { Some(account) };
        self.cluster.claim_session_later(key, expected, account, self.ttl_ms);
    }

    /// Binds `key` to `account` in the cluster (one Redis round trip,
    /// bounded): a first binding when `expected` is `None`, else a move away
    /// from account `expected`. The account it is bound to now — another
    /// node's when that binding held — or `None` when Redis did not answer:
    /// then it is bound on this node alone, and shared once Redis takes it.
    pub(super) fn claim(&self, key: &str, expected: Option<&str>, account: &str, now: u64) -> Option<String> {
        match self.cluster.claim_session(key, expected, account, self.ttl_ms) {
            Ok(held) => {
                if held.account != account {
                    tracing::debug!(session = %key, account = %held.account, "conversation bound by another node: following it");
                } else if let Some(from) = expected.filter(|e| *e != account) {
                    tracing::debug!(session = %key, from = %from, account = %account, "conversation moved to another account");
                }
                self.keep(key, Binding { account: held.account.clone(), until_ms: held.until_ms, alone: false, asked_ms: 0 }, now, true);
                Some(held.account)
            }
            Err(e) => {
                tracing::debug!(session = %key, "conversation bound on this node alone (the cluster did not take the binding): {e}");
                self.keep(key, Binding { account: account.to_string(), until_ms: now + self.ttl_ms, alone: true, asked_ms: now }, now, true);
                self.cluster.claim_session_later(key, expected, account, self.ttl_ms);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClusterStatus, GuardLimits, SessionBinding, StoreError};

    /// A cluster of one binding table, answering like `scripts::CLAIM`
    /// (or not at all when `down`); queued claims are only recorded.
    #[derive(Default)]
    struct Fake {
        table: Mutex<HashMap<String, String>>,
        queued: Mutex<Vec<(String, Option<String>, String)>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl Cluster for Fake {
        fn try_lease(&self, _: &str, _: u64) -> Result<Option<String>, StoreError> {
            unimplemented!()
        }
        fn lease_held(&self, _: &str) -> Result<bool, StoreError> {
            unimplemented!()
        }
        fn release(&self, _: &str, _: &str) {}
        fn put_note(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
            unimplemented!()
        }
        fn note(&self, _: &str) -> Result<Option<String>, StoreError> {
            unimplemented!()
        }
        fn admit_disable(&self, _: &str, _: GuardLimits) -> Result<Option<u32>, StoreError> {
            unimplemented!()
        }
        fn claim_session(&self, session: &str, expected: Option<&str>, account: &str, ttl_ms: u64) -> Result<SessionBinding, StoreError> {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Cluster { place: "redis://fake".into(), cause: "connection refused".into() });
            }
            let mut t = self.table.lock();
            let until_ms = 10_000 + ttl_ms;
            match t.get(session) {
                Some(cur) if Some(cur.as_str()) != expected && cur != account => Ok(SessionBinding { account: cur.clone(), until_ms }),
                _ => {
                    t.insert(session.to_string(), account.to_string());
                    Ok(SessionBinding { account: account.to_string(), until_ms })
                }
            }
        }
        fn claim_session_later(&self, session: &str, expected: Option<&str>, account: &str, _: u64) {
            self.queued.lock().push((session.to_string(), expected.map(str::to_string), account.to_string()));
        }
        fn status(&self) -> ClusterStatus {
            ClusterStatus::default()
        }
    }

    fn sessions() -> (Sessions, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        (Sessions::new(60_000, fake.clone()), fake)
    }

    #[test]
    fn a_claim_follows_the_binding_that_holds_and_a_move_happens_once() {
        let (s, fake) = sessions();
        assert_eq!(s.claim("k", None, "a", 10_000).as_deref(), Some("a"));
        let other = Sessions::new(60_000, fake.clone());
        assert_eq!(other.claim("k", None, "b", 10_000).as_deref(), Some("a"), "the second node adopts the first one's");
        assert_eq!(other.account("k", 10_001).as_deref(), Some("a"));
        assert_eq!(other.claim("k", Some("a"), "b", 10_000).as_deref(), Some("b"), "a move away from the binding that holds");
        assert_eq!(s.claim("k", Some("a"), "c", 10_000).as_deref(), Some("b"), "a stale move follows the first");
        assert_eq!(s.account("k", 10_001).as_deref(), Some("b"));
        assert!(fake.queued.lock().is_empty(), "nothing queued while Redis answers");
    }

    #[test]
    fn an_older_message_does_not_undo_a_newer_binding_but_replaces_one_made_alone() {
        let (s, fake) = sessions();
        s.learn("k", "b".into(), 70_000, 10_000);
        s.learn("k", "a".into(), 65_000, 10_000);
        assert_eq!(s.account("k", 10_000).as_deref(), Some("b"), "a message sent before the move arrives after it");
        s.learn("k", "c".into(), 71_000, 10_000);
        assert_eq!(s.account("k", 10_000).as_deref(), Some("c"));
        assert_eq!(s.account("k", 71_000), None, "expired");

        fake.down.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(s.claim("j", None, "a", 10_000), None);
        assert_eq!(s.account("j", 10_000).as_deref(), Some("a"), "bound on this node alone");
        assert_eq!(fake.queued.lock().as_slice(), &[("j".to_string(), None, "a".to_string())]);
        // Claimed again when used, at most once a second.
        s.served("j", "a", 10_500);
        assert_eq!(fake.queued.lock().len(), 1);
        s.served("j", "a", 11_000);
        assert_eq!(fake.queued.lock().len(), 2);
        // The cluster tells of another node's binding: it wins over one made alone.
        s.learn("j", "b".into(), 20_000, 11_000);
        assert_eq!(s.account("j", 11_000).as_deref(), Some("b"));
    }

    #[test]
    fn a_known_binding_is_extended_past_half_its_time_only() {
        let (s, fake) = sessions();
        s.learn("k", "a".into(), 70_000, 10_000);
        s.served("k", "a", 20_000);
        assert!(fake.queued.lock().is_empty(), "fresh: no round trip");
        s.served("k", "b", 50_000);
        assert!(fake.queued.lock().is_empty(), "not its account");
        s.served("k", "a", 50_000);
        s.served("k", "a", 50_001);
        assert_eq!(fake.queued.lock().as_slice(), &[("k".to_string(), Some("a".to_string()), "a".to_string())], "once, conditional on it still holding");
    }
}
