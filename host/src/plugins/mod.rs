//! The WebAssembly plugin runtime.
//!
//! One [`PluginEngine`] (a wasmtime engine, an epoch ticker, a compile
//! cache) loads components for the two worlds of `grantpool:plugin@0.1.0`:
//! [`SelectorPlugin`] and [`ClassifierPlugin`]. Each keeps one warm instance
//! behind a short lock; every call is bounded (epoch deadline, memory
//! limit), and any trap, timeout or bad answer is logged with the plugin's
//! name and reported as a failure so the caller falls back to a safe
//! built-in decision. The runtime knows nothing of accounts or HTTP.

pub mod authoring;
mod bindings;
pub mod cli_test;
mod classifier;
mod diagnose;
mod engine;
mod kind;
mod selector;
mod warm;

pub use bindings::classifier_types::{Cooldown, CooldownScope, Failure, Phase, Verdict};
pub use bindings::selector_types::{
    Account as PluginAccount, ModelQuota, Outcome, PoolEvent, Request as SelectRequest,
};
pub use bindings::Protocol;
pub use classifier::{ClassifierPlugin, ClassifyOutcome};
pub use engine::{EngineOptions, PluginEngine, PluginError, PluginSource};
pub use kind::{bundled, bundled_plugin, PluginKind};
pub use selector::{EventBatch, EventFeed, SelectOutcome, SelectorPlugin};
