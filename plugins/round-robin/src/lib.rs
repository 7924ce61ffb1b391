//! `round-robin`: every selectable account in turn, skipping the ones the
//! request cannot use. No configuration.

use grantpool_plugin_sdk::selector::{Pool, Request, Strategy};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {}

struct RoundRobin {
    next: usize,
}

impl Strategy for RoundRobin {
    fn configure(config: &str) -> Result<Self, String> {
        let Config {} = grantpool_plugin_sdk::config::parse(config)?;
        Ok(RoundRobin { next: 0 })
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        if pool.is_empty() {
            return None;
        }
        let (index, account) = pool.next_candidate_from(self.next % pool.len(), req)?;
        self.next = index + 1;
        Some(account.slot)
    }
}

grantpool_plugin_sdk::export_selector!(RoundRobin);
