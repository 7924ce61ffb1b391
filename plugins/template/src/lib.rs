//! A selector to copy: prefer accounts labelled `tier = "paid"`, and among
//! the preferred (or, when none can serve, among all) the least recently
//! used one.
//!
//! Policy (both keys optional):
//!
//! ```toml
//! [selector]
//! plugin = "/path/to/template.wasm"
//! config = { label = "tier", prefer = "paid" }
//! ```

use grantpool_plugin_sdk::selector::{Interests, Pool, Request, Strategy};

/// The plugin's table from `policy.toml`. `deny_unknown_fields` makes a
/// typo refuse the policy instead of being ignored.
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// The label to look at.
    label: String,
    /// The value that marks a preferred account.
    prefer: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { label: "tier".into(), prefer: "paid".into() }
    }
}

struct PreferPaid {
    config: Config,
}

impl Strategy for PreferPaid {
    /// Called once when the policy loads; an `Err` refuses the policy.
    fn configure(config: &str) -> Result<Self, String> {
        Ok(PreferPaid { config: grantpool_plugin_sdk::config::parse(config)? })
    }

    /// What the host should send. This strategy reads labels and
    /// `last_used_ms` only, so it asks for neither request outcomes (needed
    /// for live `in_flight`/`failures`) nor session ids: the host then skips
    /// that work on every request. The default asks for both.
    fn interests(&self) -> Interests {
        Interests::empty()
    }

    /// Called per request. `candidates` are the accounts that may serve it
    /// (selectable, not tried yet, not cooling down for its model); the SDK
    /// keeps `in_flight` and `last_used_ms` current between calls.
    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        let preferred = |a: &&grantpool_plugin_sdk::selector::Account| {
            a.label(&self.config.label) == Some(self.config.prefer.as_str())
        };
        // `false` sorts first: preferred accounts, then least recently used.
        pool.candidates(req).min_by_key(|a| (!preferred(a), a.last_used_ms)).map(|a| a.slot)
    }
}

grantpool_plugin_sdk::export_selector!(PreferPaid);

#[cfg(test)]
mod tests {
    use super::*;
    use grantpool_plugin_sdk::pick::testing::{account, request};
    use grantpool_plugin_sdk::selector::PoolEvent;

    #[test]
    fn prefers_paid_then_least_recently_used() {
        let mut pool = Pool::default();
        pool.apply(&PoolEvent::Joined(account(0, "free", &[("tier", "free")])));
        pool.apply(&PoolEvent::Joined(account(1, "paid-a", &[("tier", "paid")])));
        pool.apply(&PoolEvent::Joined(account(2, "paid-b", &[("tier", "paid")])));
        let mut s = PreferPaid::configure("{}").unwrap();
        let req = request("m");
        let first = s.select(&pool, &req).unwrap();
        pool.mark_picked(first, 1); // what the SDK does after `select`
        let second = s.select(&pool, &req).unwrap();
        assert_eq!([first.min(second), first.max(second)], [1, 2]);
        let mut retry = request("m");
        retry.tried = vec![1, 2];
        assert_eq!(s.select(&pool, &retry), Some(0));
    }
}
