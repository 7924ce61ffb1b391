//! The classifier world: a typed wrapper with a warm instance.

use std::sync::Arc;

use parking_lot::Mutex;
use wasmtime::Store;

use super::bindings::classifier_types::{Failure, Verdict};
use super::bindings::classifier_world::{Classifier, ClassifierPre};
use super::bindings::HostState;
use super::engine::{describe_trap, PluginEngine, PluginError, PluginSource};
use super::PluginKind;

/// What a classifier call came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifyOutcome {
    /// The plugin's verdict.
    Verdict(Verdict),
    /// The plugin has no opinion: ask the next one in the chain.
    Abstain,
    /// The plugin failed (trap, timeout); already logged. Treated as no
    /// verdict by the chain, and never as a reason to disable.
    Failed(String),
}

struct Warm {
    store: Store<HostState>,
    bindings: Classifier,
    calls: u64,
}

/// A loaded, configured classifier plugin.
pub struct ClassifierPlugin {
    name: Arc<str>,
    source: PluginSource,
    engine: Arc<PluginEngine>,
    pre: ClassifierPre<HostState>,
    config: String,
    warm: Mutex<Option<Warm>>,
}

impl ClassifierPlugin {
    /// Load `source` as a classifier and run its `configure`.
    pub fn load(engine: &Arc<PluginEngine>, source: &PluginSource, config: &str) -> Result<Self, PluginError> {
        let pre = engine.prepare(source, PluginKind::Classifier)?;
        let pre = ClassifierPre::new(pre).map_err(|e| PluginError::WrongWorld {
            source_desc: source.describe(),
            expected: PluginKind::Classifier.world(),
            kind: PluginKind::Classifier,
            cause: format!("{e:#}"),
        })?;
        let plugin = ClassifierPlugin {
            name: source.name().into(),
            source: source.clone(),
            engine: engine.clone(),
            pre,
            config: config.to_string(),
            warm: Mutex::new(None),
        };
        let warm = plugin.instantiate()?;
        *plugin.warm.lock() = Some(warm);
        Ok(plugin)
    }

    /// The plugin's short name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    fn instantiate(&self) -> Result<Warm, PluginError> {
        let start = |cause: String| PluginError::Start { source_desc: self.source.describe(), cause };
        let mut store = self.engine.store(self.name.clone());
        let bindings = self.pre.instantiate(&mut store).map_err(|e| start(describe_trap(&e)))?;
        store.set_epoch_deadline(self.engine.deadline_ticks);
        match bindings.grantpool_plugin_classification().call_configure(&mut store, &self.config) {
            Ok(Ok(())) => Ok(Warm { store, bindings, calls: 0 }),
            Ok(Err(message)) => {
                Err(PluginError::ConfigRejected { source_desc: self.source.describe(), message })
            }
            Err(e) => Err(start(describe_trap(&e))),
        }
    }

    /// Judge one failure.
    pub fn classify(&self, failure: &Failure) -> ClassifyOutcome {
        let mut guard = self.warm.lock();
        let recycle = guard
            .as_ref()
            .is_some_and(|w| w.calls >= self.engine.options.recycle_after_calls);
        if guard.is_none() || recycle {
            match self.instantiate() {
                Ok(w) => *guard = Some(w),
                Err(e) => {
                    tracing::error!(plugin = %self.name, "classifier plugin cannot restart: {e}");
                    return ClassifyOutcome::Failed(e.to_string());
                }
            }
        }
        let warm = guard.as_mut().expect("instance present");
        warm.calls += 1;
        warm.store.set_epoch_deadline(self.engine.deadline_ticks);
        match warm.bindings.grantpool_plugin_classification().call_classify(&mut warm.store, failure) {
            Ok(Some(v)) => ClassifyOutcome::Verdict(v),
            Ok(None) => ClassifyOutcome::Abstain,
            Err(e) => {
                let cause = describe_trap(&e);
                tracing::error!(plugin = %self.name, account = %failure.account_id, "classifier plugin failed: {cause}; restarting it, treating it as no verdict");
                *guard = None;
                ClassifyOutcome::Failed(cause)
            }
        }
    }
}
