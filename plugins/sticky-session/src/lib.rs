//! `sticky-session`: a conversation stays on one account.
//!
//! Requests of one session go to the account the session is bound to, so
//! the upstream's prompt cache and any per-account conversation state stay
//! useful. The session id is the request's `session_id`, which the host
//! fills from the `x-session-id` header, the Anthropic `metadata.user_id`,
//! or a hash of the first message.
//!
//! - A binding lives `ttl_secs` after its last use (each use refreshes it).
//! - When the bound account cannot serve the request (it left the pool,
//!   was tried already, or is unavailable for the model), or the session has
//!   no binding yet, the `fallback` strategy picks an account and the session
//!   is bound to it from then on.
//! - A request without a session id is routed by the `fallback` strategy
//!   and binds nothing.
//! - At most `max_sessions` bindings are kept: expired ones are dropped
//!   first, then the least recently used. Each takes a few dozen bytes
//!   (session ids are kept as 64-bit hashes).
//!
//! Config (all optional):
//!
//! - `ttl_secs` (number ≥ 1, default 3600)
//! - `fallback` (`"least-busy"` (default), `"round-robin"` or `"fill-first"`),
//!   the same picks as the bundled selectors of those names
//! - `max_sessions` (number ≥ 1, default 100000)
//!
//! ```toml
//! [selector]
//! plugin = "sticky-session"
//! config = { ttl_secs = 3600, fallback = "least-busy" }
//! ```

mod sessions;

use grantpool_plugin_sdk::pick::{busy_key, FillFirst, LeastBusy, Rng, RoundRobin};
use grantpool_plugin_sdk::selector::{Interests, Pool, PoolEvent, Request, Strategy};
use sessions::{hash, Binding, Sessions};

#[derive(serde::Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum FallbackName {
    RoundRobin,
    LeastBusy,
    FillFirst,
}

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    ttl_secs: u64,
    fallback: FallbackName,
    max_sessions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { ttl_secs: 3600, fallback: FallbackName::LeastBusy, max_sessions: 100_000 }
    }
}

/// The pick for requests whose session has no usable binding.
enum Fallback {
    RoundRobin(RoundRobin),
    LeastBusy(LeastBusy),
    FillFirst(FillFirst),
}

impl Fallback {
    fn pick(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        match self {
            Fallback::RoundRobin(p) => p.pick(pool, req),
            Fallback::LeastBusy(p) => p.pick(pool, req),
            Fallback::FillFirst(p) => p.pick(pool, req),
        }
    }

    fn observe(&mut self, event: &PoolEvent, pool: &Pool) {
        if let Fallback::FillFirst(p) = self {
            p.observe(event, pool);
        }
    }
}

struct Sticky {
    sessions: Sessions,
    fallback: Fallback,
    /// Breaks full ties between new conversations' homes.
    rng: Rng,
}

impl Sticky {
    fn new(config: &str, rng: Rng) -> Result<Self, String> {
        let c: Config = grantpool_plugin_sdk::config::parse(config)?;
        if c.ttl_secs == 0 {
            return Err("invalid plugin config: `ttl_secs` must be at least 1".into());
        }
        if c.max_sessions == 0 {
            return Err("invalid plugin config: `max_sessions` must be at least 1".into());
        }
        let fallback = match c.fallback {
            FallbackName::RoundRobin => Fallback::RoundRobin(RoundRobin::new()),
            FallbackName::LeastBusy => Fallback::LeastBusy(LeastBusy::new(2, rng.clone())),
            FallbackName::FillFirst => Fallback::FillFirst(FillFirst::new()),
        };
        Ok(Sticky { sessions: Sessions::new(c.ttl_secs.saturating_mul(1000), c.max_sessions), fallback, rng })
    }

    fn pick(&mut self, pool: &Pool, req: &Request, now_ms: u64) -> Option<u32> {
        self.sessions.expire(now_ms);
        let Some(session) = req.session_id.as_deref().filter(|s| !s.is_empty()) else {
            return self.fallback.pick(pool, req);
        };
        let key = hash(session);
        if let Some(b) = self.sessions.get(key, now_ms) {
            let same_account = pool.get(b.slot).is_some_and(|a| hash(&a.id) == b.account);
            if same_account && pool.is_candidate(b.slot, req) {
                self.sessions.touch(key, now_ms);
                return Some(b.slot);
            }
        }
        let slot = self.new_home(pool, req)?;
        let account = hash(&pool.get(slot)?.id);
        self.sessions.bind(key, Binding { slot, account }, now_ms);
        Some(slot)
    }
}

impl Sticky {
    /// The account a conversation without a usable binding goes to: with
    /// the least-busy fallback, the candidate holding the fewest live
    /// conversations (then the least busy; full ties at random), so two
    /// conversations started at the same moment land on different accounts
    /// and conversations spread evenly; else the fallback's pick.
    fn new_home(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        if !matches!(self.fallback, Fallback::LeastBusy(_)) {
            return self.fallback.pick(pool, req);
        }
        // One pass; full ties go to a uniformly random one (a reservoir of one).
        let mut best: Option<((u32, (u32, u64, u32)), u32)> = None;
        let mut ties = 0usize;
        for a in pool.candidates(req) {
            let key = (self.sessions.bound_to(hash(&a.id)), busy_key(a));
            match best.map_or(std::cmp::Ordering::Less, |(b, _)| key.cmp(&b)) {
                std::cmp::Ordering::Less => {
                    best = Some((key, a.slot));
                    ties = 1;
                }
                std::cmp::Ordering::Equal => {
                    ties += 1;
                    if self.rng.below(ties) == 0 {
                        best = Some((key, a.slot));
                    }
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        best.map(|(_, slot)| slot)
    }
}

impl Strategy for Sticky {
    fn configure(config: &str) -> Result<Self, String> {
        Sticky::new(config, Rng::from_clock())
    }

    /// Sessions always; outcomes only for a least-busy fallback.
    fn interests(&self) -> Interests {
        match self.fallback {
            Fallback::LeastBusy(_) => Interests::SESSIONS | Interests::OUTCOMES,
            Fallback::RoundRobin(_) | Fallback::FillFirst(_) => Interests::SESSIONS,
        }
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        self.pick(pool, req, grantpool_plugin_sdk::now_ms())
    }

    fn observe(&mut self, event: &PoolEvent, pool: &Pool) {
        self.fallback.observe(event, pool);
    }
}

grantpool_plugin_sdk::export_selector!(Sticky);

#[cfg(test)]
mod tests {
    use super::*;
    use grantpool_plugin_sdk::pick::testing::{account, pool, request};

    fn req(session: Option<&str>) -> Request {
        let mut r = request("m");
        r.session_id = session.map(str::to_string);
        r
    }

    fn sticky(config: &str, pool: &Pool) -> Sticky {
        let mut s = Sticky::new(config, Rng::new(9)).unwrap();
        // Replay the pool into the fallback (fill-first keeps an order).
        s.observe(&PoolEvent::Reset, pool);
        for a in pool.iter() {
            s.observe(&PoolEvent::Joined(account(a.slot, &a.id, &[])), pool);
        }
        s
    }

    #[test]
    fn a_session_stays_and_moves_when_its_account_cannot_serve() {
        let mut p = pool(5);
        let mut s = sticky("{}", &p);
        let first = s.pick(&p, &req(Some("conv-1")), 0).unwrap();
        for t in 1..50 {
            let slot = s.pick(&p, &req(Some("conv-1")), t).unwrap();
            assert_eq!(slot, first);
            p.mark_picked(slot, t); // busier than the others: still sticky
        }
        // Tried already on a retry: another account, and the session follows it.
        let mut retry = req(Some("conv-1"));
        retry.tried = vec![first];
        let second = s.pick(&p, &retry, 60).unwrap();
        assert_ne!(second, first);
        assert_eq!(s.pick(&p, &req(Some("conv-1")), 61), Some(second));
        // The account leaves the pool: the session moves again.
        p.apply(&PoolEvent::Left(second));
        let third = s.pick(&p, &req(Some("conv-1")), 62).unwrap();
        assert_ne!(third, second);
        assert!(p.is_candidate(third, &req(None)));
        // Unavailable for the model.
        let mut other_model = req(Some("conv-1"));
        other_model.unavailable = vec![third];
        assert_ne!(s.pick(&p, &other_model, 63), Some(third));
    }

    #[test]
    fn new_conversations_go_to_the_account_holding_the_fewest() {
        let p = pool(3);
        let mut s = sticky("{}", &p);
        let mut homes: Vec<u32> = (0..3).map(|i| s.pick(&p, &req(Some(&format!("conv-{i}"))), i).unwrap()).collect();
        homes.sort();
        assert_eq!(homes, vec![0, 1, 2], "three conversations, three accounts");
        let fourth = s.pick(&p, &req(Some("conv-3")), 10).unwrap();
        let fifth = s.pick(&p, &req(Some("conv-4")), 11).unwrap();
        assert_ne!(fourth, fifth, "then the next round, again spread");
        // Bindings that expire no longer count.
        assert_eq!(s.sessions.bound_to(hash(&p.get(fourth).unwrap().id)), 2);
    }

    #[test]
    fn bindings_expire_and_slots_reused_by_another_account_do_not_inherit() {
        let mut p = pool(3);
        let mut s = sticky(r#"{"ttl_secs": 10, "fallback": "fill-first"}"#, &p);
        assert_eq!(s.pick(&p, &req(Some("x")), 0), Some(0));
        // Move the session to 1 by trying 0.
        let mut retry = req(Some("x"));
        retry.tried = vec![0];
        assert_eq!(s.pick(&p, &retry, 1), Some(1));
        assert_eq!(s.pick(&p, &req(Some("x")), 10_000), Some(1));
        // Unused past the TTL: back to the fallback's choice.
        assert_eq!(s.pick(&p, &req(Some("x")), 20_001), Some(0));
        // Bind to 1 again, then let slot 1 come back holding another
        // account: the binding is not inherited.
        retry.tried = vec![0];
        assert_eq!(s.pick(&p, &retry, 20_002), Some(1));
        p.apply(&PoolEvent::Left(1));
        s.observe(&PoolEvent::Left(1), &p);
        let j = PoolEvent::Joined(account(1, "someone-else", &[]));
        p.apply(&j);
        s.observe(&j, &p);
        assert_eq!(s.pick(&p, &req(Some("x")), 20_003), Some(0));
    }

    #[test]
    fn no_session_uses_the_fallback_and_binds_nothing() {
        let p = pool(3);
        let mut s = sticky(r#"{"fallback": "round-robin"}"#, &p);
        let picks: Vec<u32> = (0..6).map(|t| s.pick(&p, &req(None), t).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(s.pick(&p, &req(Some("")), 7), Some(0));
        assert_eq!(s.sessions.len(), 0);
    }

    #[test]
    fn sessions_spread_and_memory_is_bounded() {
        let p = pool(4);
        let mut s = sticky(r#"{"max_sessions": 100, "fallback": "round-robin"}"#, &p);
        let mut counts = [0u32; 4];
        for i in 0..1_000u64 {
            let slot = s.pick(&p, &req(Some(&format!("conv-{i}"))), i).unwrap();
            counts[slot as usize] += 1;
        }
        assert_eq!(counts, [250; 4]);
        assert_eq!(s.sessions.len(), 100);
    }

    #[test]
    fn config_is_checked() {
        assert!(Sticky::new("{}", Rng::new(1)).is_ok());
        for (bad, word) in [
            (r#"{"ttl_secs": 0}"#, "ttl_secs"),
            (r#"{"max_sessions": 0}"#, "max_sessions"),
            (r#"{"fallback": "random"}"#, "unknown variant `random`"),
            (r#"{"ttl": 5}"#, "unknown field `ttl`"),
        ] {
            let err = Sticky::new(bad, Rng::new(1)).err().unwrap();
            assert!(err.contains(word), "{bad}: {err}");
        }
    }
}
