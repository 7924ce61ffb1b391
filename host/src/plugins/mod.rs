//! The WebAssembly plugin runtime.
//!
//! One [`PluginEngine`] (a wasmtime engine, an epoch ticker, a compile
//! cache) loads components for the two worlds of `grantpool:plugin@0.1.0`:
//! [`SelectorPlugin`] and [`ClassifierPlugin`]. Each keeps one warm instance
//! behind a short lock; every call is bounded (epoch deadline, memory
//! limit), and any trap, timeout or bad answer is logged with the plugin's
//! name and reported as a failure so the caller falls back to a safe
//! built-in decision. The runtime knows nothing of accounts or HTTP.

mod bindings;
pub mod cli_test;
mod classifier;
mod engine;
mod selector;

pub use bindings::classifier_types::{Cooldown, CooldownScope, Failure, Phase, Verdict};
pub use bindings::selector_types::{
    Account as PluginAccount, ModelQuota, Outcome, PoolEvent, Request as SelectRequest,
};
pub use bindings::Protocol;
pub use classifier::{ClassifierPlugin, ClassifyOutcome};
pub use engine::{EngineOptions, PluginEngine, PluginError, PluginSource};
pub use selector::{EventBatch, EventFeed, SelectOutcome, SelectorPlugin};

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// `grantpool:plugin/selector@0.1.0`.
    Selector,
    /// `grantpool:plugin/classifier@0.1.0`.
    Classifier,
}

impl PluginKind {
    /// The fully qualified world name, as plugin authors build against it.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Selector => "grantpool:plugin/selector@0.1.0",
            PluginKind::Classifier => "grantpool:plugin/classifier@0.1.0",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginKind::Selector => "selector",
            PluginKind::Classifier => "classifier",
        })
    }
}

mod bundled {
    use super::PluginKind;
    include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));
}

/// The plugins carried inside the binary.
pub fn bundled() -> &'static [(&'static str, PluginKind, &'static [u8])] {
    bundled::BUNDLED
}

/// The bytes of a bundled plugin, by name.
pub fn bundled_plugin(name: &str) -> Option<(PluginKind, &'static [u8])> {
    bundled::BUNDLED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, b)| (*k, *b))
}
