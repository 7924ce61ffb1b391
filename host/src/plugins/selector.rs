//! The selector world: a typed wrapper with a warm instance and fallbacks.

use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::Store;

use super::bindings::selector_types::{Interests, PoolEvent, Request};
use super::bindings::selector_world::{Selector, SelectorPre};
use super::bindings::HostState;
use super::engine::{describe_trap, PluginEngine, PluginError, PluginSource};
use super::PluginKind;

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

struct Warm {
    store: Store<HostState>,
    bindings: Selector,
    calls: u64,
    seen: Option<u64>,
}

/// A loaded, configured selector plugin.
pub struct SelectorPlugin {
    name: Arc<str>,
    source: PluginSource,
    engine: Arc<PluginEngine>,
    pre: SelectorPre<HostState>,
    config: String,
    interests: Interests,
    warm: Mutex<Option<Warm>>,
}

impl SelectorPlugin {
    /// Load `source` as a selector and run its `configure` with `config`
    /// (a JSON object). Fails with a message naming the plugin when it is
    /// missing, of another world, or rejects the config.
    pub fn load(engine: &Arc<PluginEngine>, source: &PluginSource, config: &str) -> Result<Self, PluginError> {
        let pre = engine.prepare(source, PluginKind::Selector)?;
        let pre = SelectorPre::new(pre).map_err(|e| PluginError::WrongWorld {
            source_desc: source.describe(),
            expected: PluginKind::Selector.world(),
            kind: PluginKind::Selector,
            cause: format!("{e:#}"),
        })?;
        let mut plugin = SelectorPlugin {
            name: source.name().into(),
            source: source.clone(),
            engine: engine.clone(),
            pre,
            config: config.to_string(),
            interests: Interests::empty(), // the plugin's answer to `configure`, just below
            warm: Mutex::new(None),
        };
        let (warm, interests) = plugin.instantiate()?;
        plugin.interests = interests;
        *plugin.warm.lock() = Some(warm);
        Ok(plugin)
    }

    /// The plugin's short name (bundled name or file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    /// True when the selector reads request outcomes (`finished` events):
    /// without it the pool does not log them.
    pub fn wants_outcomes(&self) -> bool {
        self.interests.contains(Interests::OUTCOMES)
    }

    /// True when the selector reads per-model quota: the host then polls
    /// every account's quota.
    pub fn wants_quota(&self) -> bool {
        self.interests.contains(Interests::QUOTA)
    }

    /// True when the selector reads session ids: without it the routes do
    /// not derive them.
    pub fn wants_sessions(&self) -> bool {
        self.interests.contains(Interests::SESSIONS)
    }

    /// A configured instance and what it asked for (the first answer is
    /// kept: a rebuilt instance runs the same code on the same config).
    fn instantiate(&self) -> Result<(Warm, Interests), PluginError> {
        let start = |cause: String| PluginError::Start { source_desc: self.source.describe(), cause };
        let mut store = self.engine.store(self.name.clone());
        let bindings = self.pre.instantiate(&mut store).map_err(|e| start(describe_trap(&e)))?;
        store.set_epoch_deadline(self.engine.deadline_ticks);
        match bindings.grantpool_plugin_selection().call_configure(&mut store, &self.config) {
            Ok(Ok(interests)) => Ok((Warm { store, bindings, calls: 0, seen: None }, interests)),
            Ok(Err(message)) => {
                Err(PluginError::ConfigRejected { source_desc: self.source.describe(), message })
            }
            Err(e) => Err(start(describe_trap(&e))),
        }
    }

    /// Bring the plugin up to date from `feed` and ask it for an account.
    /// `is_candidate` checks the answer; anything else is a failure.
    pub fn select(
        &self,
        feed: &dyn EventFeed,
        req: &Request,
        is_candidate: impl Fn(u32) -> bool,
    ) -> SelectOutcome {
        let mut guard = self.warm.lock();
        let recycle = guard
            .as_ref()
            .is_some_and(|w| w.calls >= self.engine.options.recycle_after_calls);
        if guard.is_none() || recycle {
            match self.instantiate() {
                Ok((w, _)) => *guard = Some(w),
                Err(e) => {
                    tracing::error!(plugin = %self.name, "selector plugin cannot restart: {e}; using the built-in choice");
                    return SelectOutcome::Failed(e.to_string());
                }
            }
        }
        let warm = guard.as_mut().expect("instance present");
        warm.calls += 1;

        let batch = feed.events_since(warm.seen);
        if !batch.events.is_empty() {
            warm.store.set_epoch_deadline(self.engine.deadline_ticks);
            if let Err(e) = warm.bindings.grantpool_plugin_selection().call_observe(&mut warm.store, &batch.events) {
                let cause = describe_trap(&e);
                tracing::error!(plugin = %self.name, "selector plugin failed in observe: {cause}; restarting it, using the built-in choice");
                *guard = None;
                return SelectOutcome::Failed(cause);
            }
        }
        warm.seen = Some(batch.seq);

        warm.store.set_epoch_deadline(self.engine.deadline_ticks);
        match warm.bindings.grantpool_plugin_selection().call_select(&mut warm.store, req) {
            Ok(Some(slot)) if is_candidate(slot) => SelectOutcome::Picked(slot),
            Ok(Some(slot)) => {
                let cause = format!("answered slot {slot}, which is not an eligible account for this request");
                tracing::warn!(plugin = %self.name, "selector plugin {cause}; using the built-in choice");
                SelectOutcome::Failed(cause)
            }
            Ok(None) => SelectOutcome::NoneFits,
            Err(e) => {
                let cause = describe_trap(&e);
                tracing::error!(plugin = %self.name, "selector plugin failed in select: {cause}; restarting it, using the built-in choice");
                *guard = None;
                SelectOutcome::Failed(cause)
            }
        }
    }
}
