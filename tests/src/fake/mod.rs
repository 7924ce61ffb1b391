//! A fake Google upstream on loopback: the OAuth token and userinfo
//! endpoints and the Code Assist `v1internal` API, scriptable with faults.
//!
//! It is a real HTTP server (HTTP/1.1 and h2c) on a real socket, so the
//! proxy under test talks to it exactly as to Google; the `drop` and
//! `network` faults end the TCP connection for real.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use grantpool_tests::fake::{AccountSpec, Endpoint, FakeGoogle, FaultSpec};
//!
//! let fake = FakeGoogle::start().await?;
//! fake.add_account(AccountSpec::new("a@example.com", "1//rt-a")).await;
//! fake.push_fault(FaultSpec::rate_limit(Endpoint::Generate, "1.5s")).await.unwrap();
//! // point the proxy at fake.token_url() and fake.base_url() …
//! let stats = fake.stats().await;
//! assert_eq!(stats.token_calls_for("1//rt-a"), 0);
//! # Ok(()) }
//! ```
//!
//! Everything here is also reachable over HTTP under `/_fake/*` (see
//! [`control`]), which is how the `fake-google` binary is driven.

pub mod control;
mod fast;
mod faults;
mod gemini;
mod oauth;
mod server;
mod state;
mod time;
pub mod types;
mod v1internal;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::rate_limit_body;
pub use state::DEFAULT_MODELS;
pub use types::{
    redact, AccountInfo, AccountSpec, ClientSpec, CodeSpec, Endpoint, FaultKind, FaultSpec,
    InvalidSpec, PendingFault, QuotaSpec, RevokeSpec, Served, Stats,
};

use state::Shared;

/// How to start a [`FakeGoogle`].
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Where to listen; default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Start in fast mode: fixed answers, any token accepted.
    pub fast: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fast: false,
        }
    }
}

/// A running fake Google. Dropping it stops the server and ends every open
/// connection.
pub struct FakeGoogle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
    task: JoinHandle<()>,
}

impl FakeGoogle {
    /// Starts a fake on a free loopback port.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(FakeOptions::default()).await
    }

    /// Starts a fake with `options`.
    pub async fn start_with(options: FakeOptions) -> io::Result<Self> {
        let listener = TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(options.fast));
        let task = server::spawn(listener, shared.clone());
        Ok(Self {
            shared,
            addr,
            base_url: format!("http://{addr}"),
            task,
        })
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the `[upstream] base_url` for the proxy.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `<base>/<path>` (`path` with or without its leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    /// `<base>/token`: the `[oauth] token_url` for the proxy.
    pub fn token_url(&self) -> String {
        self.url("token")
    }

    /// `<base>/userinfo`: the `[oauth] userinfo_url` for the proxy.
    pub fn userinfo_url(&self) -> String {
        self.url("userinfo")
    }

    /// Adds or updates an account (`POST /_fake/accounts`).
    pub async fn add_account(&self, spec: AccountSpec) {
        self.shared.add_account(spec);
    }

    /// The accounts, with their working refresh tokens (`GET /_fake/accounts`).
    pub async fn accounts(&self) -> Vec<AccountInfo> {
        self.shared.accounts()
    }

    /// The refresh tokens that currently work for `email` (after rotation,
    /// the newest).
    pub async fn refresh_tokens_of(&self, email: &str) -> Vec<String> {
        self.shared
            .accounts()
            .into_iter()
            .find(|a| a.email == email)
            .map(|a| a.refresh_tokens)
            .unwrap_or_default()
    }

    /// Issues a valid access token for `email` without a `/token` call
    /// (the account is created with defaults when unknown).
    pub async fn access_token_for(&self, email: &str) -> String {
        self.shared.with(|inner| {
            inner.account_or_default(email);
            let grant = inner.new_grant();
            inner.issue_access_token(email, grant).0
        })
    }

    /// Revokes a refresh token (`POST /_fake/revoke`); refused when the
    /// status is not an HTTP status.
    pub async fn revoke(&self, spec: RevokeSpec) -> Result<(), InvalidSpec> {
        self.shared.revoke(spec)
    }

    /// Revokes a refresh token: later refreshes get Google's `invalid_grant`.
    pub async fn revoke_refresh_token(&self, refresh_token: &str) {
        // A spec without a status cannot be refused.
        let _ = self.shared.revoke(RevokeSpec::new(refresh_token));
    }

    /// Accepts one more OAuth client (`POST /_fake/client`); from the first
    /// on, other clients get 401 `invalid_client`.
    pub async fn add_client(&self, spec: ClientSpec) {
        self.shared.add_client(spec);
    }

    /// Accepts any client again (`DELETE /_fake/client`).
    pub async fn clear_clients(&self) {
        self.shared.clear_clients();
    }

    /// Registers an authorization code (`POST /_fake/codes`); refused for
    /// an unknown `code_challenge_method`.
    pub async fn add_code(&self, spec: CodeSpec) -> Result<(), InvalidSpec> {
        self.shared.add_code(spec)
    }

    /// Sets one model's quota for one account (`POST /_fake/quota`); refused
    /// for a `reset_time` that is not RFC 3339.
    pub async fn set_quota(&self, spec: QuotaSpec) -> Result<(), InvalidSpec> {
        self.shared.set_quota(spec)
    }

    /// Sets the lifetime of access tokens issued from now on
    /// (`POST /_fake/expires_in`).
    pub async fn set_expires_in(&self, secs: u64) {
        self.shared.set_expires_in(secs);
    }

    /// Makes the access tokens of `email` (of everyone when `None`) stop
    /// working while refresh tokens still work
    /// (`POST /_fake/invalidate_access_tokens`).
    pub async fn invalidate_access_tokens(&self, email: Option<&str>) {
        self.shared.invalidate_access_tokens(email);
    }

    /// Queues a fault (`POST /_fake/faults`); refused for a bad status or
    /// header.
    pub async fn push_fault(&self, fault: FaultSpec) -> Result<(), InvalidSpec> {
        self.shared.push_fault(fault)
    }

    /// Empties the fault queue (`DELETE /_fake/faults`).
    pub async fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// The faults still queued (`GET /_fake/faults`).
    pub async fn pending_faults(&self) -> Vec<PendingFault> {
        self.shared.pending_faults()
    }

    /// Call counts (`GET /_fake/stats`).
    pub async fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Zeroes the counts (`POST /_fake/reset_stats`).
    pub async fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Forgets accounts, tokens, codes, clients, quotas, faults and counts;
    /// keeps fast mode (`POST /_fake/reset`).
    pub async fn reset(&self) {
        self.shared.reset();
    }

    /// Turns fast mode on or off (`POST /_fake/fast`).
    pub async fn set_fast(&self, on: bool) {
        self.shared
            .fast
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether fast mode is on.
    pub fn is_fast(&self) -> bool {
        self.shared.is_fast()
    }

    /// Stops the server and ends its connections.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;
