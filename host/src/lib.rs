//! grantpool: a local API proxy that pools Google OAuth accounts.
//!
//! A request flows one way through the modules:
//! [`proxy`] (auth, routes, translation) → [`select`](pool) (selector plugin)
//! → [`tokens`] (refresh, single flight) → upstream → [`classify`](plugins)
//! (classifier chain) → [`actions`] (store + pool) → retry or answer.
//! [`store`] is the only writer of account files; [`pool`] the only owner of
//! live account state; [`plugins`] knows nothing of accounts or HTTP.

pub mod actions;
pub mod app;
pub mod cli;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod plugins;
pub mod policy;
pub mod pool;
pub mod proxy;
pub mod store;
pub mod tokens;
pub mod util;
pub mod watch;
