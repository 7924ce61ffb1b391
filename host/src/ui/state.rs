//! What the page's handlers share: the proxy's state (read on demand), the
//! sessions, the sign-ins in progress, the traffic samples, and the signal
//! that ends the event streams at shutdown.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::activity::Activity;
use super::flows::Flows;
use super::session::{SignInLimiter, Sessions};
use super::served::Served;
use crate::proxy::state::ProxyState;

/// Who may use the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Sign in with the admin key.
    Key,
    /// No admin key is set and the listener is loopback only: the page is
    /// open to this machine (it says so).
    Open,
    /// No admin key is set and other machines can reach the listener: the
    /// page refuses to work until one is set.
    Closed,
}

/// The accounts page.
pub struct Ui {
    /// The proxy it shows.
    pub proxy: Arc<ProxyState>,
    /// Signed-in browsers.
    pub sessions: Sessions,
    /// The brake on guessing the admin key.
    pub limiter: SignInLimiter,
    /// Google sign-ins in progress.
    pub flows: Flows,
    /// Traffic samples.
    pub activity: Activity,
    /// Tokens each account served in its current quota windows (cached).
    pub served: Served,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Ui {
    /// The page over `proxy`.
    pub fn new(proxy: Arc<ProxyState>) -> Arc<Ui> {
        Arc::new(Ui {
            proxy,
            sessions: Sessions::default(),
            limiter: SignInLimiter::default(),
            flows: Flows::default(),
            activity: Activity::default(),
            served: Served::default(),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    /// The admin key, when one is set.
    pub fn admin_key(&self) -> Option<&str> {
        self.proxy.config.server.admin_key.as_deref().filter(|k| !k.is_empty())
    }

    /// Who may use the page.
    pub fn access(&self) -> Access {
        match (self.admin_key(), self.proxy.loopback) {
            (Some(_), _) => Access::Key,
            (None, true) => Access::Open,
            (None, false) => Access::Closed,
        }
    }

    /// Becomes true when the proxy shuts down (event streams end then, so
    /// that the drain does not wait on them).
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// End every event stream (shutdown).
    pub fn close_streams(&self) {
        let _ = self.closing.send(true);
    }

    /// The page's once-a-second task, for the life of the process: lapsed
    /// cooldowns leave the pool (so pages hear of it) and traffic is sampled.
    /// Requests never wait on it.
    pub fn start(self: &Arc<Self>) {
        let ui = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let now = crate::util::now_ms();
                let d = &ui.proxy.dispatcher;
                d.pool.sweep(now);
                ui.activity.sample(now, &d.pool, &d.metrics, ui.proxy.policy.generation());
            }
        });
    }
}
