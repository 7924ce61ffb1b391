//! `least-busy`: the account with the fewest requests in flight.
//!
//! "Power of two choices": each pick samples two random candidates and
//! takes the one with fewer requests in flight (ties: the least recently
//! used, then the one with fewer recent failures). That balances load
//! almost as well as scanning the whole pool, at a constant cost per pick,
//! and spreads bursts instead of sending them all to the single idlest
//! account. In-flight counts include the picks this plugin just made, so
//! concurrent requests see each other.
//!
//! Config (all optional):
//!
//! - `choices` (number, default 2): how many random candidates to compare.
//!   `0` compares every candidate (exact least-busy, O(pool) per pick);
//!   a pool no larger than `choices` is always scanned whole.
//!
//! ```toml
//! [selector]
//! plugin = "least-busy"
//! config = { choices = 2 }
//! ```

use grantpool_plugin_sdk::pick::{LeastBusy as Pick, Rng};
use grantpool_plugin_sdk::selector::{Interests, Pool, Request, Strategy};

#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Random candidates compared per pick; 0 = all.
    choices: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { choices: 2 }
    }
}

/// Most candidates worth sampling: beyond this a scan is as cheap.
const MAX_CHOICES: usize = 64;

struct LeastBusy {
    pick: Pick,
}

impl LeastBusy {
    fn new(config: &str, rng: Rng) -> Result<Self, String> {
        let c: Config = grantpool_plugin_sdk::config::parse(config)?;
        if c.choices > MAX_CHOICES {
            return Err(format!(
                "invalid plugin config: `choices` = {} is more than {MAX_CHOICES}; use 0 to compare every account",
                c.choices
            ));
        }
        Ok(LeastBusy { pick: Pick::new(c.choices, rng) })
    }
}

impl Strategy for LeastBusy {
    fn configure(config: &str) -> Result<Self, String> {
        LeastBusy::new(config, Rng::from_clock())
    }

    /// In-flight counts and failures come from outcomes.
    fn interests(&self) -> Interests {
        Interests::OUTCOMES
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        self.pick.pick(pool, req)
    }
}

grantpool_plugin_sdk::export_selector!(LeastBusy);

#[cfg(test)]
mod tests {
    use super::*;
    use grantpool_plugin_sdk::pick::testing::{pool, request};

    #[test]
    fn concurrent_picks_spread_and_avoid_busy_accounts() {
        let mut p = pool(8);
        let mut s = LeastBusy::new("{}", Rng::new(3)).unwrap();
        let req = request("m");
        // Four long requests on accounts 0..4.
        for slot in 0..4 {
            p.mark_picked(slot, 1);
        }
        let mut exact = LeastBusy::new(r#"{"choices":0}"#, Rng::new(3)).unwrap();
        for t in 0..4 {
            let slot = exact.select(&p, &req).unwrap();
            assert!(slot >= 4, "picked busy {slot}");
            p.mark_picked(slot, 10 + t);
        }
        // Every account now holds one: 800 more held picks stay level.
        for t in 0..800 {
            let slot = s.select(&p, &req).unwrap();
            p.mark_picked(slot, 100 + t);
        }
        let loads: Vec<u32> = p.iter().map(|a| a.in_flight).collect();
        let (lo, hi) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
        assert!(hi - lo <= 5, "{loads:?}");
    }

    #[test]
    fn config_is_checked() {
        assert!(LeastBusy::new("", Rng::new(1)).is_ok());
        assert!(LeastBusy::new(r#"{"choices":3}"#, Rng::new(1)).is_ok());
        let err = LeastBusy::new(r#"{"choices":1000}"#, Rng::new(1)).err().unwrap();
        assert!(err.contains("choices"), "{err}");
        let err = LeastBusy::new(r#"{"choice":2}"#, Rng::new(1)).err().unwrap();
        assert!(err.contains("unknown field `choice`"), "{err}");
    }
}
