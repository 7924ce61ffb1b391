//! What the HTTP side shares: settings, the policy in force, the request
//! path ([`Dispatcher`]) and the store (for the admin API). Built by the
//! wiring in `app.rs`; typed state, no globals.

use std::sync::Arc;

use super::dispatch::Dispatcher;
use crate::config::Config;
use crate::policy::PolicyHandle;
use crate::store::Store;

/// The state every handler gets.
pub struct ProxyState {
    /// Settings.
    pub config: Arc<Config>,
    /// The policy in force.
    pub policy: Arc<PolicyHandle>,
    /// The request path: pool, tokens, upstream, verdicts, metrics.
    pub dispatcher: Dispatcher,
    /// The account store.
    pub store: Store,
    /// Google's OAuth endpoints (verified upserts).
    pub oauth: crate::oauth::OAuth,
    /// The named client keys and their limits.
    pub keys: crate::keys::KeyRing,
    /// The usage log (`usage.db`): a row per request, written off the request path.
    pub usage: crate::usage::UsageLog,
    /// The listener is on a loopback address (decided once: the
    /// DNS-rebinding guard and auth mode `auto` ask on every request).
    pub loopback: bool,
}

impl ProxyState {
    /// The upstream model for a client's model name: the `[models]` mapping,
    /// then what Google serves a deprecated id as now.
    pub fn upstream_model(&self, client_model: &str) -> String {
        let mapped = self.config.map_model(client_model);
        self.dispatcher.upstream.catalogue.replacement(mapped).unwrap_or_else(|| mapped.to_string())
    }
}
