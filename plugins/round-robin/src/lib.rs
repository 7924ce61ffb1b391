//! `round-robin`: every selectable account in turn, skipping the ones the
//! request cannot use. No configuration.

use grantpool_plugin_sdk::pick::RoundRobin;
use grantpool_plugin_sdk::selector::{Interests, Pool, Request, Strategy};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {}

struct Plugin(RoundRobin);

impl Strategy for Plugin {
    fn configure(config: &str) -> Result<Self, String> {
        let Config {} = grantpool_plugin_sdk::config::parse(config)?;
        Ok(Plugin(RoundRobin::new()))
    }

    /// Rotation reads neither outcomes nor sessions.
    fn interests(&self) -> Interests {
        Interests::empty()
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        self.0.pick(pool, req)
    }
}

grantpool_plugin_sdk::export_selector!(Plugin);
