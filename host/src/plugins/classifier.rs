//! The classifier world: a typed wrapper over a warm instance.

use std::sync::Arc;

use super::bindings::classifier_types::{Failure, Verdict};
use super::bindings::classifier_world::{Classifier, ClassifierPre};
use super::engine::{PluginEngine, PluginError, PluginSource};
use super::warm::{world, CallFailed, Warm};
use super::kind::PluginKind;

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

/// The classifier world for [`Warm`].
struct ClassifierWorld;
world!(ClassifierWorld, PluginKind::Classifier, ClassifierPre, Classifier, (), (), grantpool_plugin_classification);

/// A loaded, configured classifier plugin.
pub struct ClassifierPlugin {
    warm: Warm<ClassifierWorld>,
}

impl ClassifierPlugin {
    /// Load `source` as a classifier and run its `configure`.
    pub fn load(engine: &Arc<PluginEngine>, source: &PluginSource, config: &str) -> Result<Self, PluginError> {
        Ok(ClassifierPlugin { warm: Warm::load(engine, source, config)? })
    }

    /// The plugin's short name.
    pub fn name(&self) -> &str {
        self.warm.name()
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &PluginSource {
        self.warm.source()
    }

    /// Judge one failure.
    pub fn classify(&self, failure: &Failure) -> ClassifyOutcome {
        let answer = self.warm.call(|inst| {
            let (store, b) = inst.arm();
            b.grantpool_plugin_classification().call_classify(store, failure).map_err(|e| ("classify", e))
        });
        match answer {
            Ok(Some(v)) => ClassifyOutcome::Verdict(v),
            Ok(None) => ClassifyOutcome::Abstain,
            Err(e @ CallFailed::Restart(_)) => {
                tracing::error!(plugin = %self.name(), "classifier plugin {e}");
                ClassifyOutcome::Failed(e.to_string())
            }
            Err(CallFailed::Trapped { cause, .. }) => {
                tracing::error!(plugin = %self.name(), account = %failure.account_id, "classifier plugin failed: {cause}; restarting it, treating it as no verdict");
                ClassifyOutcome::Failed(cause)
            }
        }
    }
}
