//! A fake Google upstream on loopback: the OAuth token and userinfo
//! endpoints and the Code Assist `v1internal` API, scriptable with faults,
//! refusing what Google refuses with Google's literal bodies (the contract
//! in the project notes, `contract.md`; facts and sources in
//! `issue12-facts.md`). Beside them, for the peers `bench/peers` measures,
//! the public Gemini API's two generate routes (module `gemini_api`).
//!
//! It is a real HTTP server (HTTP/1.1 and h2c) on real sockets, so the
//! proxy under test talks to it exactly as to Google; the `drop` and
//! `network` faults end the TCP connection for real. It can listen on
//! several ports at once, each labelled with a host name (`daily`, `prod`,
//! `sandbox`), all sharing one state; the stats and the request log name
//! the host of every call, and a fault can target one host.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use grantpool_tests::fake::{AccountSpec, Endpoint, FakeGoogle, FaultSpec};
//!
//! let fake = FakeGoogle::start_with_hosts(&["daily", "prod"]).await?;
//! fake.add_account(AccountSpec::new("a@example.com", "1//rt-a")).await;
//! fake.push_fault(FaultSpec::rate_limit_exceeded(Endpoint::Generate, "479.417207ms").on_host("daily")).await.unwrap();
//! // point the proxy at fake.token_url(), fake.base_url_of("daily") and fake.base_url_of("prod") …
//! let stats = fake.stats().await;
//! assert_eq!(stats.token_calls_for("1//rt-a"), 0);
//! # Ok(()) }
//! ```
//!
//! What it checks, in order, on generate / stream (module `validate`):
//! refused system-instruction text ([`FakeSettings::refused_phrases`]:
//! Google's bare 429, before anything but a valid token), scripted faults,
//! the access token (401), the prod host of a fake that also has a daily
//! host (a consumer account: the bare 429; Gemini 3.8: 404), an
//! `UNSUPPORTED_CLIENT` account (403), JSON → proto parsing (unknown fields, value
//! shapes, tool-schema keys and types), the profile's envelope and
//! User-Agent (switchable: [`FakeSettings::strict_envelope`]), the project,
//! model access (Antigravity-only models: Antigravity ≥ 2.9.0, Gemini 3.8 ≥
//! 2.11.0, any `agy` 1.x), tool-schema rules, Claude's limits (switchable), thought
//! signatures and Claude tool ids; then quota.
//!
//! Everything here is also reachable over HTTP under `/_fake/*` (see
//! [`control`]), which is how the `fake-google` binary is driven.

// Handlers answer `Err(Response)` for a refusal; a Response is large, and
// boxing it would buy nothing in a test server.
#![allow(clippy::result_large_err)]

mod agent;
mod catalogue;
mod clients;
pub mod control;
mod envelope;
pub mod errors;
mod fast;
mod faults;
mod gemini;
mod gemini_api;
mod images;
mod oauth;
mod onboarding;
mod prompt_cache;
mod proto;
mod quota_summary;
mod record;
mod schema_check;
mod search;
mod server;
mod signatures;
mod state;
mod time;
pub mod types;
mod updater;
mod v1internal;
mod validate;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use clients::{
    ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET, GEMINI_CLI_CLIENT_ID,
    GEMINI_CLI_CLIENT_SECRET,
};
pub use errors::{bare_429_body, rate_limit_body, weekly_quota_body};
pub use state::DEFAULT_MODELS;
pub use time::{go_duration, rfc3339, seconds_form};
pub use types::{
    redact, AccountInfo, AccountSpec, ClientSpec, CodeSpec, Endpoint, FakeSettings, FaultKind,
    FaultSpec, HostInfo, IneligibleSpec, InvalidSpec, Outcome, PendingFault, QuotaSpec,
    RecordedRequest, RevokeSpec, Served, SettingsPatch, Stats, DEFAULT_REFUSED_PHRASES,
};

pub use quota_summary::QuotaWindowSpec;

use state::Shared;

/// The User-Agent of the Antigravity profile: the host's default
/// `antigravity/hub/2.13.0 darwin/arm64` (CPA's `antigravity/hub/<ver>
/// darwin/arm64` form, GOOGLE-2026 §2; ≥ 2.11.0 for Gemini 3.8,
/// decolua/9router PR #3732).
pub const ANTIGRAVITY_USER_AGENT: &str = "antigravity/hub/2.13.0 darwin/arm64";

/// How to start a [`FakeGoogle`].
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Where the first (default) listener listens; default `127.0.0.1:0`
    /// (a free port). The others listen on free ports of the same address.
    pub listen: SocketAddr,
    /// Start in fast mode: fixed answers, any token accepted.
    pub fast: bool,
    /// The host labels to listen as, default listener first; empty = one
    /// listener labelled `prod`.
    pub hosts: Vec<String>,
    /// Initial [`FakeSettings::strict_envelope`] (default true).
    pub strict_envelope: bool,
    /// Initial [`FakeSettings::accept_any_client`] (default false).
    pub accept_any_client: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fast: false,
            hosts: Vec::new(),
            strict_envelope: true,
            accept_any_client: false,
        }
    }
}

/// The label of the only listener of [`FakeGoogle::start`].
pub const DEFAULT_HOST: &str = "prod";

/// A running fake Google. Dropping it stops every listener and ends every
/// open connection.
pub struct FakeGoogle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: String,
}

impl FakeGoogle {
    /// Starts a fake on a free loopback port, labelled `prod`.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(FakeOptions::default()).await
    }

    /// Starts a fake with one listener per host label (on free loopback
    /// ports), e.g. `&["daily", "prod"]`; the first is the default
    /// ([`base_url`](Self::base_url)).
    pub async fn start_with_hosts(hosts: &[&str]) -> io::Result<Self> {
        Self::start_with(FakeOptions {
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            ..FakeOptions::default()
        })
        .await
    }

    /// Starts a fake with `options`.
    pub async fn start_with(options: FakeOptions) -> io::Result<Self> {
        let shared = Arc::new(Shared::new(options.fast));
        shared.patch_settings(SettingsPatch {
            strict_envelope: Some(options.strict_envelope),
            accept_any_client: Some(options.accept_any_client),
            ..SettingsPatch::default()
        });
        let hosts = if options.hosts.is_empty() {
            vec![DEFAULT_HOST.to_owned()]
        } else {
            options.hosts.clone()
        };
        let mut first = None;
        for (i, label) in hosts.iter().enumerate() {
            let addr = if i == 0 {
                options.listen
            } else {
                SocketAddr::new(options.listen.ip(), 0)
            };
            match server::add_listener(&shared, label, addr).await {
                Ok(info) => {
                    if first.is_none() {
                        first = Some(info);
                    }
                }
                Err(e) => {
                    shared.stop_listeners();
                    return Err(e);
                }
            }
        }
        let addr = shared.listeners.lock()[0].addr;
        Ok(Self {
            shared,
            addr,
            base_url: first.map_or_else(|| format!("http://{addr}"), |h| h.url),
        })
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` of the default (first) listener: the
    /// `[upstream] base_url` for the proxy.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The base URL of the listener labelled `host`, if any.
    pub fn base_url_of(&self, host: &str) -> Option<String> {
        self.shared
            .hosts()
            .into_iter()
            .find(|h| h.label == host)
            .map(|h| h.url)
    }

    /// The listeners, default first (`GET /_fake/hosts`).
    pub fn hosts(&self) -> Vec<HostInfo> {
        self.shared.hosts()
    }

    /// Starts one more listener labelled `label` on a free port
    /// (`POST /_fake/hosts`).
    pub async fn add_host(&self, label: &str) -> io::Result<HostInfo> {
        server::add_listener(&self.shared, label, SocketAddr::new(self.addr.ip(), 0)).await
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
    /// (the account is created with defaults when unknown), to the
    /// account's client (default the Antigravity client).
    pub async fn access_token_for(&self, email: &str) -> String {
        let client = self.shared.with(|inner| inner.default_client_of(email));
        self.access_token_for_client(email, &client).await
    }

    /// Issues a valid access token for `email` issued to `client_id`.
    pub async fn access_token_for_client(&self, email: &str, client_id: &str) -> String {
        self.shared.with(|inner| {
            inner.account_or_default(email);
            let grant = inner.new_grant();
            inner.issue_access_token(email, grant, client_id).0
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

    /// Accepts one more OAuth client (`POST /_fake/client`) besides the
    /// built-in ones; other clients get 401 `invalid_client` (this also
    /// turns [`FakeSettings::accept_any_client`] off).
    pub async fn add_client(&self, spec: ClientSpec) {
        self.shared.add_client(spec);
    }

    /// Forgets the added clients and accepts any client id and secret
    /// (`DELETE /_fake/client`; [`FakeSettings::accept_any_client`] on).
    /// Refresh tokens of accounts that name a `client_id` stay bound to it.
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

    /// Sets one of an account's 5-hour or weekly quota windows
    /// (`POST /_fake/quota_windows`); refused for an empty bucket id or a
    /// `reset_time` that is not RFC 3339.
    pub async fn set_quota_window(&self, spec: QuotaWindowSpec) -> Result<(), InvalidSpec> {
        self.shared.set_quota_window(spec)
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

    /// The recorded requests, oldest first (`GET /_fake/requests`; also
    /// [`Stats::requests`]).
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.stats().requests
    }

    /// Zeroes the counts and forgets the recorded requests
    /// (`POST /_fake/reset_stats`).
    pub async fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// The settings (`GET /_fake/settings`).
    pub fn settings(&self) -> FakeSettings {
        self.shared.settings()
    }

    /// Changes some settings (`POST /_fake/settings`); answers the new ones.
    pub async fn set_settings(&self, patch: SettingsPatch) -> FakeSettings {
        self.shared.patch_settings(patch)
    }

    /// Turns envelope / profile strictness on or off.
    pub async fn set_strict_envelope(&self, on: bool) {
        self.shared.patch_settings(SettingsPatch {
            strict_envelope: Some(on),
            ..SettingsPatch::default()
        });
    }

    /// Forgets accounts, tokens, codes, added clients, quotas, faults,
    /// signatures, operations, counts and requests; keeps fast mode, the
    /// settings and the listeners (`POST /_fake/reset`).
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

    /// Stops every listener and ends their connections.
    pub async fn shutdown(self) {
        let listeners: Vec<_> = std::mem::take(&mut *self.shared.listeners.lock());
        for l in &listeners {
            l.task.abort();
        }
        for l in listeners {
            let _ = l.task.await;
        }
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.shared.stop_listeners();
    }
}

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod tests;
