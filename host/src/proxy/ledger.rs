//! What one client request used, written down once when it ends: the
//! token metrics, the named key's daily tokens, and a row of the usage log
//! (`usage.db`). A [`Ledger`] goes with the request from the route to the
//! last byte of its answer; it closes when the answer is complete, or when
//! it is dropped (the client went away mid-stream, an error answered).
//!
//! Nothing here waits: the usage row goes to the log's queue (dropped and
//! counted when the queue is full), the key's count is an atomic add.

use std::sync::Arc;
use std::time::Instant;

use super::state::ProxyState;
use crate::keys::NamedKey;
use crate::metrics::TokenCounters;
use crate::plugins::Protocol;
use crate::pool::LiveAccount;
use crate::translate::gemini::{self, TokenUse};
use crate::translate::protocol_name;
use crate::usage::{name_str, Name, UsageRow};

/// The record of one request, closed once.
pub(super) struct Ledger {
    app: Arc<ProxyState>,
    key: Option<Arc<NamedKey>>,
    /// The served model's token metrics (set once an account served).
    counters: Option<TokenCounters>,
    started: Instant,
    started_ms: u64,
    protocol: Protocol,
    route: &'static str,
    client_model: Name,
    upstream_model: Name,
    stream: bool,
    status: u16,
    account: Name,
    attempts: u32,
    /// The last usage the answer carried (a stream's counts are
    /// cumulative: its last one stands).
    tokens: TokenUse,
    closed: bool,
}

impl Ledger {
    /// A request on `route` (`generate`, `chat`, `responses`, `messages`,
    /// `images`) for `client_model`, sent upstream as `upstream_model`.
    pub(super) fn open(
        app: &Arc<ProxyState>,
        key: Option<Arc<NamedKey>>,
        protocol: Protocol,
        route: &'static str,
        client_model: &str,
        upstream_model: &str,
        stream: bool,
    ) -> Ledger {
        Ledger {
            app: app.clone(),
            key,
            counters: None,
            started: Instant::now(),
            started_ms: crate::util::now_ms(),
            protocol,
            route,
            client_model: app.usage.name(client_model),
            upstream_model: app.usage.name(upstream_model),
            stream,
            status: 0,
            account: Name::new(),
            attempts: 0,
            tokens: TokenUse::default(),
            closed: false,
        }
    }

    /// The key's limits, before an account is chosen (see
    /// [`crate::keys::KeyRing::check`]): `Err` is the refusal to answer,
    /// already written down.
    pub(super) fn admit(&mut self) -> Result<(), axum::response::Response> {
        let Some(key) = &self.key else { return Ok(()) };
        match self.app.keys.check(key, name_str(&self.client_model)) {
            Ok(()) => Ok(()),
            Err(r) => {
                let resp = super::auth::key_refused(self.protocol, &r);
                self.failed(resp.status().as_u16());
                Err(resp)
            }
        }
    }

    /// An account serves: its answer's status is 200 from here on (and
    /// the served request is counted in the metrics).
    pub(super) fn served(&mut self, account: &LiveAccount, attempts: u32) {
        self.counters = Some(self.app.dispatcher.metrics.served(self.protocol, name_str(&self.upstream_model)));
        self.answered_by(account, attempts);
    }

    /// As [`Ledger::served`], for a route that counts its metrics itself
    /// (images: one upstream call per image).
    pub(super) fn answered_by(&mut self, account: &LiveAccount, attempts: u32) {
        self.account = account.id_bytes();
        self.attempts = attempts;
        self.status = 200;
    }

    /// The request ends with an error answer of `status` (no account, a
    /// refusal, Google's error passed on).
    pub(super) fn failed(&mut self, status: u16) {
        self.status = status;
        self.close();
    }

    /// An error after an account served (the answer could not be read):
    /// the status the client got.
    pub(super) fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// An answer's usage, from its parse.
    pub(super) fn saw(&mut self, usage: Option<&gemini::UsageMetadata>) {
        if let Some(u) = usage {
            self.tokens = u.tokens();
        }
    }

    /// An answer's usage, found in its bytes (the Gemini route, which does
    /// not parse).
    pub(super) fn scan(&mut self, data: &[u8]) {
        if let Some(t) = gemini::usage_scan(data) {
            self.tokens = t;
        }
    }

    /// Image answers report prompt tokens only.
    pub(super) fn add_input(&mut self, input: u64) {
        self.tokens.input += input;
    }

    /// Write it down (once): metrics, the key's tokens, the usage row.
    pub(super) fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let t = self.tokens;
        if let Some(c) = &self.counters {
            c.count(t.input, t.cached);
        }
        if let Some(key) = &self.key {
            self.app.keys.spent(key, t.billed());
        }
        if self.status == 0 {
            // Dropped before any answer was chosen: the client went away.
            self.status = 499;
        }
        self.app.usage.record(UsageRow {
            ts_ms: self.started_ms,
            key: self.key.as_ref().map(|k| k.label()).unwrap_or_default(),
            account: std::mem::take(&mut self.account),
            client_model: std::mem::take(&mut self.client_model),
            upstream_model: std::mem::take(&mut self.upstream_model),
            protocol: protocol_name(self.protocol),
            route: self.route,
            stream: self.stream,
            status: self.status,
            input_tokens: t.input,
            output_tokens: t.output,
            cached_tokens: t.cached,
            thinking_tokens: t.thinking,
            latency_ms: self.started.elapsed().as_millis().min(u32::MAX as u128) as u32,
            attempts: self.attempts,
        });
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}
