//! The selector world: a typed wrapper over a warm instance, feeding it
//! pool events before each pick and checking its answer.

use std::sync::Arc;

use super::bindings::selector_types::{Interests, PoolEvent, Request};
use super::bindings::selector_world::{Selector, SelectorPre};
use super::engine::{PluginEngine, PluginError, PluginSource};
use super::warm::{world, CallFailed, Warm};
use super::kind::PluginKind;

/// A batch of pool events for a selector, and the sequence number it
/// brings the selector up to.
#[derive(Debug, Default)]
pub struct EventBatch {
    /// Events in order; starts with `reset` when the selector must rebuild
    /// its view from scratch.
    pub events: Vec<PoolEvent>,
    /// The cursor to ask with next time (one past the last event included).
    pub seq: u64,
}

/// Where a selector learns what changed in the pool.
pub trait EventFeed {
    /// Every event from `cursor` on; or, when `cursor` is `None` or too old
    /// to replay, a `reset` followed by every selectable account.
    fn events_since(&self, cursor: Option<u64>) -> EventBatch;
}

/// What a selector call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectOutcome {
    /// The plugin picked this slot (already checked with the caller's test).
    Picked(u32),
    /// The plugin answered that no account fits.
    NoneFits,
    /// The plugin failed (trap, timeout, bad answer); already logged. The
    /// caller falls back to its built-in choice.
    Failed(String),
}

/// The selector world for [`Warm`]; its per-instance state is how far the
/// instance has seen the pool's events (`None`: nothing yet).
struct SelectorWorld;
world!(SelectorWorld, PluginKind::Selector, SelectorPre, Selector, Interests, Option<u64>, grantpool_plugin_selection);

/// A loaded, configured selector plugin.
pub struct SelectorPlugin {
    warm: Warm<SelectorWorld>,
}

/// What the guest answered to one `select`.
enum Answer {
    Slot(u32),
    None,
}

impl SelectorPlugin {
    /// Load `source` as a selector and run its `configure` with `config`
    /// (a JSON object). Fails with a message naming the plugin when it is
    /// missing, of another world, or rejects the config.
    pub fn load(engine: &Arc<PluginEngine>, source: &PluginSource, config: &str) -> Result<Self, PluginError> {
        Ok(SelectorPlugin { warm: Warm::load(engine, source, config)? })
    }

    /// The plugin's short name (bundled name or file stem).
    pub fn name(&self) -> &str {
        self.warm.name()
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &PluginSource {
        self.warm.source()
    }

    fn interests(&self) -> Interests {
        *self.warm.configured()
    }

    /// True when the selector reads request outcomes (`finished` events):
    /// without it the pool does not log them.
    pub fn wants_outcomes(&self) -> bool {
        self.interests().contains(Interests::OUTCOMES)
    }

    /// True when the selector reads per-model quota: the host then polls
    /// every account's quota.
    pub fn wants_quota(&self) -> bool {
        self.interests().contains(Interests::QUOTA)
    }

    /// True when the selector reads session ids: without it a cluster does
    /// not share session bindings. (The routes work the id out for every
    /// request all the same: it names the upstream session.)
    pub fn wants_sessions(&self) -> bool {
        self.interests().contains(Interests::SESSIONS)
    }

    /// Bring the plugin up to date from `feed` and ask it for an account.
    /// `is_candidate` checks the answer; anything else is a failure.
    pub fn select(
        &self,
        feed: &dyn EventFeed,
        req: &Request,
        is_candidate: impl Fn(u32) -> bool,
    ) -> SelectOutcome {
        let answer = self.warm.call(|inst| {
            let batch = feed.events_since(inst.state);
            if !batch.events.is_empty() {
                let (store, b) = inst.arm();
                b.grantpool_plugin_selection().call_observe(store, &batch.events).map_err(|e| ("observe", e))?;
            }
            inst.state = Some(batch.seq);
            let (store, b) = inst.arm();
            match b.grantpool_plugin_selection().call_select(store, req).map_err(|e| ("select", e))? {
                Some(slot) => Ok(Answer::Slot(slot)),
                None => Ok(Answer::None),
            }
        });
        match answer {
            Ok(Answer::Slot(slot)) if is_candidate(slot) => SelectOutcome::Picked(slot),
            Ok(Answer::Slot(slot)) => {
                let cause = format!("answered slot {slot}, which is not an eligible account for this request");
                tracing::warn!(plugin = %self.name(), "selector plugin {cause}; using the built-in choice");
                SelectOutcome::Failed(cause)
            }
            Ok(Answer::None) => SelectOutcome::NoneFits,
            Err(e @ CallFailed::Restart(_)) => {
                tracing::error!(plugin = %self.name(), "selector plugin {e}; using the built-in choice");
                SelectOutcome::Failed(e.to_string())
            }
            Err(CallFailed::Trapped { during, cause }) => {
                tracing::error!(plugin = %self.name(), "selector plugin failed in {during}: {cause}; restarting it, using the built-in choice");
                SelectOutcome::Failed(cause)
            }
        }
    }
}
