//! grantpool: a local API proxy that pools Google OAuth accounts.
//!
//! A request flows one way through the modules:
//! [`proxy`] (auth, routes) → [`translate`] (pure) → select ([`pool`],
//! selector plugin) → [`tokens`] (refresh, single flight) → [`upstream`]
//! → classify ([`plugins`], classifier chain) → [`actions`] (store + pool)
//! → retry or answer. [`store`] is the only writer of account records;
//! [`pool`] the only owner of live account state; [`plugins`] knows nothing
//! of accounts or HTTP; [`app`] only wires the parts together.

pub mod actions;
pub mod agy;
pub mod app;
pub mod cli;
pub mod config;
pub mod egress;
pub mod keys;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod oauth;
pub mod plugins;
pub mod policy;
pub mod pool;
pub mod profiles;
pub mod proxy;
pub mod quota;
pub mod request_fault;
pub mod store;
pub mod tokens;
pub mod translate;
pub mod ui;
pub mod upstream;
pub mod usage;
pub mod util;
