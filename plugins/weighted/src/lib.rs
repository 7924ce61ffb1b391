//! `weighted`: weighted random choice, aware of labels and quota.
//!
//! Each candidate's weight is its `weight` label (a number ≥ 0; absent or
//! not a number counts as 1), multiplied, when `use_quota` is on and the
//! host knows it, by the fraction of the account's quota left for the
//! request's model (a quota whose reset time has passed counts as full).
//! An account is picked with probability proportional to its weight, so
//! `weight = "3"` gets three times the traffic of an unlabelled account,
//! and an account with 10% of its quota left gets a tenth of its share.
//!
//! With `tiers`, accounts are grouped by their `tier` label: only the first
//! tier in the list that has any candidate is used (e.g. spend the `paid`
//! accounts, fall back to `free` only when no paid account can serve).
//! Accounts whose tier is not listed (or that have none) come after every
//! listed tier.
//!
//! Accounts whose weight is 0 (label `0`, or no quota left) are used only
//! when no candidate with a positive weight exists in any tier, and then
//! uniformly, best tier first.
//!
//! Config (all optional):
//!
//! - `weight_label` (string, default `"weight"`): the label holding the weight
//! - `use_quota` (bool, default true): scale by the remaining quota fraction
//! - `tiers` (list of strings, default `[]`): tier label values, best first
//! - `tier_label` (string, default `"tier"`): the label holding the tier
//!
//! ```toml
//! [selector]
//! plugin = "weighted"
//! config = { tiers = ["paid", "free"], use_quota = true }
//! ```
//!
//! Cost: a cumulative-weight table per model, rebuilt when accounts join or
//! leave or a quota reset passes; a pick is a binary search in it.

use grantpool_plugin_sdk::pick::Rng;
use grantpool_plugin_sdk::selector::{Interests, Account, Pool, PoolEvent, Request, Strategy};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    weight_label: String,
    use_quota: bool,
    tiers: Vec<String>,
    tier_label: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { weight_label: "weight".into(), use_quota: true, tiers: Vec::new(), tier_label: "tier".into() }
    }
}

/// One tier's accounts with their cumulative weights, for O(log n) draws.
struct Rank {
    cum: Vec<f64>,
    slots: Vec<u32>,
}

/// The draw table of one model, valid while the pool and quotas stand.
struct Table {
    generation: u64,
    /// Rebuild when a quota reset time passes (the weight changes then).
    valid_until_ms: u64,
    ranks: Vec<Rank>,
}

/// Random draws tried from the table before an exact pass over the rank
/// (only needed when many of its accounts are excluded for the request).
const DRAWS: usize = 8;

struct Weighted {
    config: Config,
    rng: Rng,
    /// Bumped when accounts join or leave: tables are rebuilt lazily.
    generation: u64,
    tables: std::collections::HashMap<String, Table>,
}

impl Weighted {
    fn new(config: &str, rng: Rng) -> Result<Self, String> {
        let config: Config = grantpool_plugin_sdk::config::parse(config)?;
        if config.weight_label.is_empty() || config.tier_label.is_empty() {
            return Err("invalid plugin config: `weight_label` and `tier_label` must not be empty".into());
        }
        for (i, t) in config.tiers.iter().enumerate() {
            if config.tiers[..i].contains(t) {
                return Err(format!("invalid plugin config: tier `{t}` is listed twice in `tiers`"));
            }
        }
        Ok(Weighted { config, rng, generation: 0, tables: Default::default() })
    }

    /// The account's weight for `model` at `now_ms`.
    fn weight(&self, a: &Account, model: &str, now_ms: u64) -> f64 {
        let base = a
            .label(&self.config.weight_label)
            .and_then(|w| w.trim().parse::<f64>().ok())
            .filter(|w| w.is_finite() && *w >= 0.0)
            .unwrap_or(1.0);
        if !self.config.use_quota {
            return base;
        }
        let fresh = |reset_at_ms: u64| reset_at_ms != 0 && reset_at_ms <= now_ms;
        match a.quota.iter().find(|q| q.model == model) {
            Some(q) if !fresh(q.reset_at_ms) && q.remaining_fraction.is_finite() => {
                base * f64::from(q.remaining_fraction.clamp(0.0, 1.0))
            }
            _ => base,
        }
    }

    /// 0 for the best listed tier, `tiers.len()` for unlisted ones.
    fn tier(&self, a: &Account) -> usize {
        let tiers = &self.config.tiers;
        a.label(&self.config.tier_label).and_then(|t| tiers.iter().position(|x| x == t)).unwrap_or(tiers.len())
    }

    /// Rank and weight of an account for `model`: zero-weight accounts go
    /// after every positive one, as a last resort.
    fn rank_weight(&self, a: &Account, model: &str, now_ms: u64) -> (usize, f64) {
        let zero_ranks = self.config.tiers.len() + 1;
        let w = self.weight(a, model, now_ms);
        if w > 0.0 {
            (self.tier(a), w)
        } else {
            (zero_ranks + self.tier(a), 1.0)
        }
    }

    fn build(&self, pool: &Pool, model: &str, now_ms: u64) -> Table {
        let mut by_rank: std::collections::BTreeMap<usize, Rank> = Default::default();
        let mut valid_until_ms = u64::MAX;
        for a in pool.iter() {
            let (rank, w) = self.rank_weight(a, model, now_ms);
            let r = by_rank.entry(rank).or_insert_with(|| Rank { cum: Vec::new(), slots: Vec::new() });
            let total = r.cum.last().copied().unwrap_or(0.0) + w;
            r.cum.push(total);
            r.slots.push(a.slot);
            if let Some(q) = a.quota.iter().find(|q| q.model == model) {
                if q.reset_at_ms > now_ms {
                    valid_until_ms = valid_until_ms.min(q.reset_at_ms);
                }
            }
        }
        Table { generation: self.generation, valid_until_ms, ranks: by_rank.into_values().collect() }
    }

    fn pick(&mut self, pool: &Pool, req: &Request, now_ms: u64) -> Option<u32> {
        let stale = self
            .tables
            .get(&req.model)
            .is_none_or(|t| t.generation != self.generation || now_ms >= t.valid_until_ms);
        if stale {
            if self.tables.len() >= 64 {
                self.tables.clear();
            }
            let table = self.build(pool, &req.model, now_ms);
            self.tables.insert(req.model.clone(), table);
        }
        let table = self.tables.get(&req.model).expect("table just built");
        for rank in &table.ranks {
            let total = *rank.cum.last().expect("a rank has accounts");
            // Draw from the table; excluded accounts are rare, so a few
            // draws almost always land on a candidate.
            for _ in 0..DRAWS {
                let x = self.rng.unit() * total;
                let i = rank.cum.partition_point(|c| *c <= x).min(rank.slots.len() - 1);
                if pool.is_candidate(rank.slots[i], req) {
                    return Some(rank.slots[i]);
                }
            }
            // Many excluded: an exact weighted pass over this rank.
            let mut chosen = None;
            let mut sum = 0.0;
            for (i, slot) in rank.slots.iter().enumerate() {
                if !pool.is_candidate(*slot, req) {
                    continue;
                }
                let w = rank.cum[i] - if i == 0 { 0.0 } else { rank.cum[i - 1] };
                sum += w;
                if self.rng.unit() * sum < w {
                    chosen = Some(*slot);
                }
            }
            if chosen.is_some() {
                return chosen;
            }
        }
        None
    }
}

impl Strategy for Weighted {
    fn configure(config: &str) -> Result<Self, String> {
        Weighted::new(config, Rng::from_clock())
    }

    /// Weights come from labels and (with `use_quota`) quota, not from
    /// outcomes or sessions.
    fn interests(&self) -> Interests {
        if self.config.use_quota {
            Interests::QUOTA
        } else {
            Interests::empty()
        }
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        self.pick(pool, req, grantpool_plugin_sdk::now_ms())
    }

    fn observe(&mut self, event: &PoolEvent, _pool: &Pool) {
        if !matches!(event, PoolEvent::Finished(_)) {
            self.generation += 1;
        }
    }
}

grantpool_plugin_sdk::export_selector!(Weighted);

#[cfg(test)]
mod tests {
    use super::*;
    use grantpool_plugin_sdk::pick::testing::{account, request};
    use grantpool_plugin_sdk::selector::{ModelQuota, PoolEvent};

    fn pool_of(accounts: Vec<grantpool_plugin_sdk::selector::WitAccount>) -> Pool {
        let mut p = Pool::default();
        p.apply(&PoolEvent::Reset);
        for a in accounts {
            p.apply(&PoolEvent::Joined(a));
        }
        p
    }

    fn counts(s: &mut Weighted, p: &Pool, req: &Request, n: usize, slots: usize) -> Vec<u32> {
        let mut c = vec![0u32; slots];
        for _ in 0..n {
            c[s.pick(p, req, 1_000).unwrap() as usize] += 1;
        }
        c
    }

    #[test]
    fn traffic_follows_weights() {
        let p = pool_of(vec![
            account(0, "a", &[]),
            account(1, "b", &[("weight", "3")]),
            account(2, "c", &[("weight", "0")]),
            account(3, "d", &[("weight", "junk")]),
        ]);
        let mut s = Weighted::new("{}", Rng::new(5)).unwrap();
        let c = counts(&mut s, &p, &request("m"), 50_000, 4);
        // Expected 10k / 30k / 0 / 10k.
        assert!((9_000..11_000).contains(&c[0]), "{c:?}");
        assert!((28_500..31_500).contains(&c[1]), "{c:?}");
        assert_eq!(c[2], 0, "{c:?}");
        assert!((9_000..11_000).contains(&c[3]), "{c:?}");
        // Only the zero-weight account can serve: it still serves.
        let mut req = request("m");
        req.tried = vec![0, 1, 3];
        assert_eq!(s.pick(&p, &req, 1_000), Some(2));
        req.tried.push(2);
        assert_eq!(s.pick(&p, &req, 1_000), None);
    }

    #[test]
    fn quota_scales_the_weight_for_the_model_only() {
        let mut low = account(0, "low", &[]);
        low.quota = vec![ModelQuota { model: "m".into(), remaining_fraction: 0.25, reset_at_ms: 0 }];
        let mut reset = account(2, "reset", &[]);
        reset.quota = vec![ModelQuota { model: "m".into(), remaining_fraction: 0.0, reset_at_ms: 500 }];
        let p = pool_of(vec![low, account(1, "full", &[]), reset]);
        let mut s = Weighted::new("{}", Rng::new(11)).unwrap();
        // 0.25 : 1 : 1 (the third's quota has reset by t=1000).
        let c = counts(&mut s, &p, &request("m"), 45_000, 3);
        assert!((4_200..5_800).contains(&c[0]), "{c:?}");
        assert!((18_500..21_500).contains(&c[1]), "{c:?}");
        // Another model: no quota known, equal shares.
        let c = counts(&mut s, &p, &request("other"), 30_000, 3);
        assert!(c.iter().all(|n| (9_000..11_000).contains(n)), "{c:?}");
        // Quota ignored when asked.
        let mut s = Weighted::new(r#"{"use_quota": false}"#, Rng::new(11)).unwrap();
        let c = counts(&mut s, &p, &request("m"), 30_000, 3);
        assert!(c.iter().all(|n| (9_000..11_000).contains(n)), "{c:?}");
    }

    #[test]
    fn the_best_tier_with_a_candidate_wins() {
        let p = pool_of(vec![
            account(0, "f1", &[("tier", "free")]),
            account(1, "p1", &[("tier", "paid")]),
            account(2, "p2", &[("tier", "paid"), ("w", "2")]),
            account(3, "x", &[]),
        ]);
        let mut s = Weighted::new(r#"{"tiers": ["paid", "free"], "weight_label": "w"}"#, Rng::new(2)).unwrap();
        let c = counts(&mut s, &p, &request("m"), 30_000, 4);
        assert_eq!((c[0], c[3]), (0, 0), "{c:?}");
        assert!((9_000..11_000).contains(&c[1]), "{c:?}");
        let mut req = request("m");
        req.unavailable = vec![1, 2];
        assert_eq!(s.pick(&p, &req, 0), Some(0));
        req.tried = vec![0];
        assert_eq!(s.pick(&p, &req, 0), Some(3));
    }

    #[test]
    fn config_is_checked() {
        assert!(Weighted::new("", Rng::new(1)).is_ok());
        for (bad, word) in [
            (r#"{"tiers": ["a", "a"]}"#, "listed twice"),
            (r#"{"weight_label": ""}"#, "must not be empty"),
            (r#"{"weights": 1}"#, "unknown field `weights`"),
            (r#"{"use_quota": "yes"}"#, "invalid type"),
        ] {
            let err = Weighted::new(bad, Rng::new(1)).err().unwrap();
            assert!(err.contains(word), "{bad}: {err}");
        }
    }

    #[test]
    fn the_draw_table_follows_the_pool() {
        let mut p = pool_of(vec![account(0, "a", &[]), account(1, "b", &[("weight", "9")])]);
        let mut s = Weighted::new("{}", Rng::new(3)).unwrap();
        let c = counts(&mut s, &p, &request("m"), 1_000, 2);
        assert!(c[1] > c[0], "{c:?}");
        let left = PoolEvent::Left(1);
        p.apply(&left);
        s.observe(&left, &p);
        let c = counts(&mut s, &p, &request("m"), 100, 2);
        assert_eq!(c, vec![100, 0], "a table built before the change is not reused");
        let joined = PoolEvent::Joined(account(2, "c", &[("weight", "0")]));
        p.apply(&joined);
        s.observe(&joined, &p);
        let mut req = request("m");
        req.tried = vec![0];
        assert_eq!(s.pick(&p, &req, 1_000), Some(2), "zero weight is the last resort");
    }
}
