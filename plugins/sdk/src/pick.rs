//! Reusable picks: the building blocks of the bundled selectors, for your
//! own strategies too (a sticky strategy falls back on one of them, a
//! custom one may combine them).
//!
//! - [`RoundRobin`]: every candidate in turn.
//! - [`LeastBusy`]: fewest requests in flight, by "power of two choices"
//!   (or a full scan), ties to the least recently used, then the fewest
//!   failures.
//! - [`FillFirst`]: always the first candidate in a stable order (the
//!   `priority` label, then the account id), so one account is used until
//!   it cannot serve.
//! - [`Rng`]: a small xorshift generator for random picks (no WASI random
//!   needed; seed it from [`crate::now_ms`]).
//!
//! Every pick returns only candidates of the request
//! ([`Pool::is_candidate`]) and costs O(1) or O(candidates examined).

use std::cmp::Ordering;

use crate::selector::{Account, Pool, PoolEvent, Request};

/// A small, fast pseudo-random generator (xorshift64*). Not for secrets;
/// good enough to spread load.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from `seed` (any value, 0 included: the seed is mixed
    /// first so close seeds give unrelated streams).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 finaliser: xorshift must never start from 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng { state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z } }
    }

    /// A generator seeded from the host's clock (only inside a plugin).
    pub fn from_clock() -> Rng {
        Rng::new(crate::now_ms())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`). The modulo bias is below 2^-40 for
    /// any pool size, far under what load spreading notices.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Every candidate in turn: a cursor over the pool's live list.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// A cursor at the start.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }

    /// The next candidate after the previous pick, wrapping around.
    pub fn pick(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        if pool.is_empty() {
            return None;
        }
        let (index, account) = pool.next_candidate_from(self.next % pool.len(), req)?;
        self.next = index + 1;
        Some(account.slot)
    }
}

/// How busy an account looks, smaller is better: in flight, then last use
/// (least recently used first), then failures. Full ties go to a random
/// one of the tied accounts.
pub fn busy_key(account: &Account) -> (u32, u64, u32) {
    (account.in_flight, account.last_used_ms, account.failures)
}

/// Fewest requests in flight.
///
/// With `choices = k ≥ 1` it samples k accounts at random and takes the
/// least busy of them ("power of k choices": near-optimal balance at O(k)
/// per pick, and concurrent pickers do not all pile onto the one idlest
/// account). With `choices = 0`, or a pool no larger than k, it scans every
/// candidate.
#[derive(Debug, Clone)]
pub struct LeastBusy {
    choices: usize,
    rng: Rng,
}

impl LeastBusy {
    /// Sample `choices` accounts per pick (0 = scan all), drawing with `rng`.
    pub fn new(choices: usize, rng: Rng) -> LeastBusy {
        LeastBusy { choices, rng }
    }

    /// The least busy of the sampled (or all) candidates.
    pub fn pick(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        let n = pool.len();
        if n == 0 {
            return None;
        }
        if self.choices == 0 || self.choices >= n {
            // Full ties (picks in the same millisecond tie on last use) go
            // to a uniformly random one of the tied: a reservoir of one.
            let mut best: Option<&Account> = None;
            let mut ties = 0usize;
            for acc in pool.candidates(req) {
                match best.map_or(Ordering::Less, |b| busy_key(acc).cmp(&busy_key(b))) {
                    Ordering::Less => {
                        best = Some(acc);
                        ties = 1;
                    }
                    Ordering::Equal => {
                        ties += 1;
                        if self.rng.below(ties) == 0 {
                            best = Some(acc);
                        }
                    }
                    Ordering::Greater => {}
                }
            }
            return best.map(|a| a.slot);
        }
        // Sample uniformly among candidates by redrawing excluded or
        // already sampled accounts (exclusions are few in practice); only
        // when redraws keep failing walk on to the next candidate, which
        // always exists if any candidate does.
        let mut best: Option<&Account> = None;
        let mut seen = [u32::MAX; 8];
        for k in 0..self.choices {
            let mut found = None;
            for _ in 0..8 {
                let acc = pool.nth(self.rng.below(n));
                if !req.excludes(acc.slot) && !seen.contains(&acc.slot) {
                    found = Some(acc);
                    break;
                }
            }
            let acc = match found {
                Some(acc) => acc,
                None => pool.next_candidate_from(self.rng.below(n), req)?.1,
            };
            if let Some(s) = seen.get_mut(k) {
                *s = acc.slot;
            }
            if best.is_none_or(|b| busy_key(acc) < busy_key(b)) {
                best = Some(acc);
            }
        }
        best.map(|a| a.slot)
    }
}

/// Position of an account in fill-first order: `priority` label ascending
/// (accounts without one, or with one that is not a number, after those
/// with one), then account id.
#[derive(Debug, Clone)]
struct OrderKey {
    priority: Option<f64>,
    id: String,
    slot: u32,
}

impl OrderKey {
    fn of(account: &Account) -> OrderKey {
        OrderKey {
            priority: account.label("priority").and_then(|p| p.trim().parse::<f64>().ok()).filter(|p| !p.is_nan()),
            id: account.id.clone(),
            slot: account.slot,
        }
    }

    fn cmp(&self, other: &OrderKey) -> Ordering {
        let by_priority = match (self.priority, other.priority) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_priority.then_with(|| self.id.cmp(&other.id)).then(self.slot.cmp(&other.slot))
    }
}

/// Use one account until it cannot serve, then the next, in a stable order:
/// label `priority` ascending (numbers; accounts without one come last),
/// then account id. The first account comes back as soon as it can serve.
///
/// Keeps the order sorted as accounts join and leave (feed it every event
/// with [`FillFirst::observe`]), so a pick only walks past the accounts that
/// cannot serve this request.
#[derive(Debug, Clone, Default)]
pub struct FillFirst {
    order: Vec<OrderKey>,
}

impl FillFirst {
    /// An empty order.
    pub fn new() -> FillFirst {
        FillFirst::default()
    }

    /// Follow a pool event (call it for every event, in order).
    pub fn observe(&mut self, event: &PoolEvent, pool: &Pool) {
        match event {
            PoolEvent::Reset => self.order.clear(),
            PoolEvent::Joined(a) => {
                self.remove(a.slot);
                if let Some(acc) = pool.get(a.slot) {
                    let key = OrderKey::of(acc);
                    let at = self.order.partition_point(|k| k.cmp(&key) == Ordering::Less);
                    self.order.insert(at, key);
                }
            }
            PoolEvent::Left(slot) => self.remove(*slot),
            PoolEvent::Finished(_) => {}
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(i) = self.order.iter().position(|k| k.slot == slot) {
            self.order.remove(i);
        }
    }

    /// The first account in order that may serve `req`.
    pub fn pick(&self, pool: &Pool, req: &Request) -> Option<u32> {
        self.order.iter().map(|k| k.slot).find(|s| pool.is_candidate(*s, req))
    }

    /// Slots in fill order (for tests and diagnostics).
    pub fn order(&self) -> impl Iterator<Item = u32> + '_ {
        self.order.iter().map(|k| k.slot)
    }
}

/// Test helpers: build pools and requests without a host.
#[doc(hidden)]
pub mod testing {
    use crate::selector::{Pool, PoolEvent, Protocol, Request, WitAccount};

    /// An account record as the host would send it.
    pub fn account(slot: u32, id: &str, labels: &[(&str, &str)]) -> WitAccount {
        WitAccount {
            slot,
            id: id.to_string(),
            email: format!("{id}@example.com"),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            in_flight: 0,
            last_used_ms: 0,
            successes: 0,
            failures: 0,
            quota: vec![],
        }
    }

    /// A pool of `n` plain accounts `acc0..`, slots `0..n`.
    pub fn pool(n: u32) -> Pool {
        let mut pool = Pool::default();
        pool.apply(&PoolEvent::Reset);
        for i in 0..n {
            pool.apply(&PoolEvent::Joined(account(i, &format!("acc{i}"), &[])));
        }
        pool
    }

    /// A first-try request for `model`.
    pub fn request(model: &str) -> Request {
        Request {
            model: model.to_string(),
            protocol: Protocol::Gemini,
            session_id: None,
            attempt: 1,
            tried: vec![],
            unavailable: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{account, pool, request};
    use super::*;
    use crate::selector::PoolEvent;

    #[test]
    fn rng_is_spread_and_seeded() {
        let mut a = Rng::new(0);
        let mut b = Rng::new(1);
        assert_ne!(a.next_u64(), b.next_u64());
        let mut counts = [0u32; 10];
        let mut r = Rng::new(42);
        for _ in 0..100_000 {
            counts[r.below(10)] += 1;
        }
        assert!(counts.iter().all(|c| (9_000..11_000).contains(c)), "{counts:?}");
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn round_robin_cycles_and_skips_excluded() {
        let p = pool(4);
        let mut rr = RoundRobin::new();
        let mut req = request("m");
        let picks: Vec<u32> = (0..8).map(|_| rr.pick(&p, &req).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        req.tried = vec![1, 2];
        req.unavailable = vec![3];
        for _ in 0..5 {
            assert_eq!(rr.pick(&p, &req), Some(0));
        }
        req.tried = vec![0, 1, 2, 3];
        assert_eq!(rr.pick(&p, &req), None);
        assert_eq!(rr.pick(&Pool::default(), &request("m")), None);
    }

    #[test]
    fn least_busy_scan_takes_the_idlest_then_lru_then_fewest_failures() {
        let mut p = pool(4);
        p.mark_picked(0, 10);
        p.mark_picked(1, 20);
        p.mark_picked(2, 30);
        p.mark_picked(3, 40);
        let mut lb = LeastBusy::new(0, Rng::new(1));
        let req = request("m");
        // All one in flight: least recently used wins.
        assert_eq!(lb.pick(&p, &req), Some(0));
        p.mark_picked(0, 50);
        assert_eq!(lb.pick(&p, &req), Some(1));
        // Equal in flight and last use: fewer failures wins.
        let mut q = pool(2);
        q.apply(&PoolEvent::Finished(crate::selector::Outcome {
            slot: 0,
            success: false,
            status: Some(500),
            latency_ms: 1,
            model: "m".into(),
            session_id: None,
        }));
        assert_eq!(lb.pick(&q, &req), Some(1));
    }

    #[test]
    fn least_busy_spreads_picks_made_in_the_same_millisecond() {
        let mut p = pool(4);
        let mut lb = LeastBusy::new(0, Rng::new(5));
        let req = request("m");
        let mut counts = [0u32; 4];
        for _ in 0..4_000 {
            let s = lb.pick(&p, &req).unwrap();
            counts[s as usize] += 1;
            p.mark_picked(s, 1_000);
            p.apply(&PoolEvent::Finished(crate::selector::Outcome {
                slot: s,
                success: true,
                status: Some(200),
                latency_ms: 0,
                model: "m".into(),
                session_id: None,
            }));
        }
        assert!(counts.iter().all(|c| *c > 500), "{counts:?}");
    }

    #[test]
    fn least_busy_p2c_never_returns_a_non_candidate_and_balances() {
        let mut p = pool(50);
        let mut lb = LeastBusy::new(2, Rng::new(7));
        let mut req = request("m");
        req.tried = (0..50).filter(|s| s % 3 == 0).collect();
        req.unavailable = vec![1, 2];
        let mut t = 0;
        for _ in 0..2_000 {
            let s = lb.pick(&p, &req).unwrap();
            assert!(p.is_candidate(s, &req), "{s}");
            t += 1;
            p.mark_picked(s, t);
        }
        // Held load (nothing finishes): power of two choices keeps the gap small.
        let loads: Vec<u32> = p.candidates(&req).map(|a| a.in_flight).collect();
        let (lo, hi) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
        assert!(hi - lo <= 6, "{lo}..{hi}");
        // Only one candidate left: always it.
        req.tried = (0..50).filter(|s| *s != 17).collect();
        for _ in 0..20 {
            assert_eq!(lb.pick(&p, &req), Some(17));
        }
        req.tried.push(17);
        assert_eq!(lb.pick(&p, &req), None);
    }

    #[test]
    fn fill_first_follows_priority_then_id_and_the_pool() {
        let mut p = Pool::default();
        let mut ff = FillFirst::new();
        let events = vec![
            PoolEvent::Reset,
            PoolEvent::Joined(account(0, "zed", &[])),
            PoolEvent::Joined(account(1, "bob", &[])),
            PoolEvent::Joined(account(2, "amy", &[("priority", "5")])),
            PoolEvent::Joined(account(3, "cat", &[("priority", "-1")])),
            PoolEvent::Joined(account(4, "abe", &[("priority", "soon")])),
        ];
        for e in &events {
            p.apply(e);
            ff.observe(e, &p);
        }
        assert_eq!(ff.order().collect::<Vec<_>>(), vec![3, 2, 4, 1, 0]);
        let mut req = request("m");
        assert_eq!(ff.pick(&p, &req), Some(3));
        req.unavailable = vec![3];
        assert_eq!(ff.pick(&p, &req), Some(2));
        req.tried = vec![2];
        assert_eq!(ff.pick(&p, &req), Some(4));
        // Leaves, comes back with a new priority.
        let left = PoolEvent::Left(3);
        p.apply(&left);
        ff.observe(&left, &p);
        assert_eq!(ff.pick(&p, &request("m")), Some(2));
        let back = PoolEvent::Joined(account(3, "cat", &[("priority", "9")]));
        p.apply(&back);
        ff.observe(&back, &p);
        assert_eq!(ff.order().collect::<Vec<_>>(), vec![2, 3, 4, 1, 0]);
        let reset = PoolEvent::Reset;
        p.apply(&reset);
        ff.observe(&reset, &p);
        assert_eq!(ff.pick(&p, &request("m")), None);
    }
}
