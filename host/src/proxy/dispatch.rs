//! One request's way through the pool: select (plugin) → token (refresh,
//! single flight) → upstream → on failure classify (plugins) → act → retry
//! on another account, up to the attempt limit, and only before any byte
//! has gone to the client (the caller streams the body of a success).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::actions::{Actions, FailureReport, Next};
use crate::metrics::Metrics;
use crate::plugins::{Failure, Phase, Protocol, SelectOutcome, SelectRequest};
use crate::policy::Policy;
use crate::pool::{AccountState, Lease, LiveAccount, Pool};
use crate::quota::Quota;
use crate::tokens::TokenManager;
use crate::config::ProfileMap;
use crate::upstream::envelope::{self, Outgoing};
use crate::upstream::signatures;
use crate::upstream::onboarding::ProjectError;
use crate::upstream::{Upstream, UpstreamCallError, UpstreamResponse};
use crate::util::now_ms;

/// Largest error body read from the upstream (for classification and the
/// client's error message).
const MAX_ERROR_BODY: usize = 64 << 10;

/// Accounts a failed request's log line lists (those it tried besides).
const POOL_SHOWN: usize = 32;

/// Headers of an upstream error the classifiers may look at.
const HEADERS_KEPT: &[&str] = &["retry-after", "content-type", "x-goog-quota-user"];

/// What the proxy route asks for.
pub struct Call {
    /// Upstream model (after the `[models]` mapping).
    pub model: String,
    /// The client's protocol.
    pub protocol: Protocol,
    /// Conversation id, if known.
    pub session_id: Option<String>,
    /// Streaming or not.
    pub stream: bool,
    /// The Gemini request, serialised once.
    pub request: Bytes,
}

/// A successful upstream answer (2xx), body not yet read.
pub struct Served {
    /// The upstream response; stream its body to the client.
    pub response: UpstreamResponse,
    /// The account's hold: finish it when the body is done.
    pub lease: Lease,
    /// The account that served (its id goes into `x-grantpool-account`).
    pub account: Arc<LiveAccount>,
    /// Accounts tried for this request, the one that served included.
    pub attempts: u32,
}

/// Why no answer could be had.
#[derive(Debug)]
pub enum DispatchError {
    /// No account can serve (503), with the cause in words.
    NoAccount(String),
    /// The upstream's own error answer, passed to the client.
    Upstream {
        /// Status.
        status: u16,
        /// Body (Google's error JSON, normally).
        body: Bytes,
        /// The account that got it.
        account_id: String,
        /// `retry-after`, if the upstream sent one.
        retry_after: Option<String>,
    },
    /// The upstream could not be reached on the last attempt (502).
    Network(String),
    /// Google refused this request on two accounts with the same weak
    /// answer (a bare 429, or the same reasonless 4xx): the request's
    /// fault, said in words; nobody was rested.
    Refused {
        /// The status the client gets (429 for bare 429s).
        status: u16,
        /// What happened and the likely cause.
        message: String,
    },
}

/// What the request path needs, and nothing more: the pool to select
/// from, tokens, the upstream, the executor of verdicts, quota (learned
/// again after a `QUOTA_EXHAUSTED`) and metrics.
pub struct Dispatcher {
    /// Live accounts.
    pub pool: Arc<Pool>,
    /// Access tokens.
    pub tokens: Arc<TokenManager>,
    /// Verdicts.
    pub actions: Arc<Actions>,
    /// The upstream client.
    pub upstream: Upstream,
    /// Quota.
    pub quota: Arc<Quota>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Upstream calls one request may make (`server.max_attempts`).
    pub max_attempts: u32,
    /// Longest a request waits in all for a resting account to be back
    /// (`server.max_wait_secs`).
    pub max_wait: Duration,
    /// Each account's profile, from its OAuth client.
    pub profiles: ProfileMap,
}

impl Dispatcher {
    /// The next account for `req`, held: the selector's pick (the built-in
    /// choice when the selector fails), skipping accounts that can no
    /// longer be held. `None` when no account fits.
    async fn next_lease(&self, policy: &Policy, req: &mut SelectRequest) -> Option<Lease> {
        // In a cluster a conversation's binding is shared by every node.
        // Known here (by subscription, or from an earlier claim) it costs no
        // round trip and is followed while its account can serve; else the
        // selector picks and the pick is claimed in Redis before the request
        // goes upstream (see `settle_session`).
        let shared_session = req
            .session_id
            .as_deref()
            .filter(|_| self.pool.sessions_shared() && policy.selector.wants_sessions())
            .map(Pool::session_key);
        loop {
            let now = now_ms();
            self.pool.expire(now);
            req.unavailable = self.pool.unavailable_for(&req.model, now);
            let known = shared_session.as_deref().and_then(|k| self.pool.session_account(k));
            let bound = known.as_deref().and_then(|id| self.pool.get(id)).map(|a| a.slot).filter(|s| self.pool.is_candidate(*s, req));
            let slot = match (bound, &shared_session) {
                (Some(s), Some(k)) => {
                    self.pool.keep_session(k, s);
                    s
                }
                _ => {
                    let picked = match policy.selector.select(&*self.pool, req, |s| self.pool.is_candidate(s, req)) {
                        SelectOutcome::Picked(s) => s,
                        SelectOutcome::NoneFits => return None,
                        SelectOutcome::Failed(_) => self.pool.least_recently_used(req)?,
                    };
                    match &shared_session {
                        Some(k) => self.settle_session(k, known, picked, req).await,
                        None => picked,
                    }
                }
            };
            req.tried.push(slot);
            if let Some(lease) = self.pool.begin(slot, &req.model, req.session_id.as_deref(), policy.selector.wants_outcomes()) {
                return Some(lease);
            }
        }
    }

    /// A conversation with no binding this node can follow (none known, or
    /// its account `known` cannot serve): `picked` is claimed in Redis — a
    /// first binding, or a move for good — unless another node's binding
    /// holds there; that one is followed when its account can serve here,
    /// else the conversation moves away from it. One round trip, rarely two;
    /// when Redis does not answer, `picked` (bound on this node alone).
    async fn settle_session(&self, key: &str, mut expected: Option<String>, picked: u32, req: &SelectRequest) -> u32 {
        for _ in 0..3 {
            let (pool, k, from) = (self.pool.clone(), key.to_string(), expected.clone());
            let held = tokio::task::spawn_blocking(move || pool.claim_session(&k, from.as_deref(), picked)).await.ok().flatten();
            let Some(held) = held else { return picked };
            match self.pool.get(&held).map(|a| a.slot) {
                Some(s) if s == picked || self.pool.is_candidate(s, req) => return s,
                _ => expected = Some(held),
            }
        }
        picked
    }

    /// Count the tokens of a Gemini request (`contents`, `systemInstruction`,
    /// `tools`) with `countTokens` on an account of the pool: the next
    /// account when one fails (counting is cheap; no verdicts are taken).
    pub async fn count_tokens(&self, policy: &Policy, protocol: Protocol, model: &str, request: &serde_json::Value) -> Result<u64, DispatchError> {
        let mut req = SelectRequest { model: model.to_string(), protocol, session_id: None, attempt: 0, tried: Vec::new(), unavailable: Vec::new() };
        let mut last = None;
        while req.attempt < self.max_attempts {
            req.attempt += 1;
            let Some(lease) = self.next_lease(policy, &mut req).await else { break };
            let acc = lease.account().clone();
            let token = match self.tokens.access_token(&acc).await {
                Ok(t) => t,
                Err(f) => {
                    self.actions.refresh_failed(policy, &acc, f, Some(model), req.attempt).await;
                    lease.finish(false, None);
                    continue;
                }
            };
            let (profile, egress) = acc.read(|f| (self.profiles.of(f.token.oauth_client.as_deref()), f.egress.clone()));
            match self.upstream.count_tokens(profile, &token, model, request, egress.as_deref()).await {
                Ok(n) => {
                    lease.finish(true, Some(200));
                    return Ok(n);
                }
                Err(UpstreamCallError::Status { status, body }) => {
                    lease.finish(false, Some(status));
                    if matches!(status, 400 | 404 | 413) {
                        return Err(DispatchError::Upstream { status, body: Bytes::from(body), account_id: acc.id.clone(), retry_after: None });
                    }
                    last = Some(DispatchError::Upstream { status, body: Bytes::from(body), account_id: acc.id.clone(), retry_after: None });
                }
                Err(UpstreamCallError::Network(m)) => {
                    lease.finish(false, None);
                    last = Some(DispatchError::Network(format!("upstream unreachable: {m}")));
                }
            }
        }
        Err(last.unwrap_or_else(|| DispatchError::NoAccount(self.pool.why_none(model))))
    }

    /// Carry one call through the pool, under `policy` (the one the route
    /// read: a reload mid-request does not change the rules of this request).
    pub async fn dispatch(&self, policy: &Policy, call: &Call) -> Result<Served, DispatchError> {
        let mut weak = WeakAnswers::default();
        let mut trail = Trail::default();
        let result = self.attempts(policy, call, &mut weak, &mut trail).await;
        match &result {
            // The request's own fault: said already, the pool is not why.
            Err(DispatchError::Refused { .. }) => {}
            Err(_) if trail.passed => {}
            Err(e) => self.log_failure(call, e, &trail),
            Ok(_) => {}
        }
        // A bare 429 is held against its account only when the request was
        // not refused on a second account (then it was the request's fault):
        // a short back-off, growing while the account keeps getting them.
        if !matches!(result, Err(DispatchError::Refused { .. })) {
            for acc in &weak.bare_429 {
                self.actions.weak_backoff(acc);
            }
        }
        result
    }

    async fn attempts(&self, policy: &Policy, call: &Call, weak: &mut WeakAnswers, trail: &mut Trail) -> Result<Served, DispatchError> {
        let max_attempts = self.max_attempts;
        // One request record for every attempt (no copies per attempt).
        let mut req = SelectRequest {
            model: call.model.clone(),
            protocol: call.protocol,
            session_id: call.session_id.clone(),
            attempt: 0,
            tried: Vec::new(),
            unavailable: Vec::new(),
        };
        let mut last_error: Option<DispatchError> = None;
        let mut client_misconfigured = None::<String>;
        let mut refresh_errors: Vec<String> = Vec::new();

        // Attempts count upstream calls: an account whose token cannot be
        // refreshed is skipped without using one (the selector runs out of
        // candidates when every account was tried).
        let mut upstream_calls = 0;
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        // Accounts tried that failed in a way that may pass (a 5xx, a
        // dropped connection, a 429 whose rest ends or is lifted by a
        // success): tried again while calls remain, before waiting or giving
        // up. Another 4xx would only be answered again.
        let mut again: Vec<u32> = Vec::new();
        while upstream_calls < max_attempts {
            attempt += 1;
            req.attempt = attempt;
            let Some(lease) = self.next_lease(policy, &mut req).await else {
                if !again.is_empty() {
                    // Those still resting stay out (the selector skips them).
                    req.tried.retain(|s| !again.contains(s));
                    again.clear();
                    continue;
                }
                if self.wait_for_one_back(&call.model, &mut waited).await {
                    // Those tried before may serve again once rested.
                    trail.waited(waited);
                    req.tried.clear();
                    continue;
                }
                break;
            };
            let acc = lease.account().clone();
            match self.try_account(policy, call, &acc, attempt).await {
                Ok(response) => {
                    return Ok(Served { response, lease, account: acc, attempts: attempt });
                }
                Err((err, status, misconfig)) => {
                    lease.finish(false, status);
                    trail.tried(&acc, &err);
                    if status.is_some() || matches!(err, Attempt::Next(Some(_)) | Attempt::Pass(_) | Attempt::Weak(_)) {
                        upstream_calls += 1;
                        trail.calls = upstream_calls;
                        let may_pass = match &err {
                            Attempt::Next(Some(DispatchError::Network(_))) => true,
                            Attempt::Next(Some(DispatchError::Upstream { status, .. })) => *status == 429 || *status >= 500,
                            _ => false,
                        };
                        if may_pass && !again.contains(&acc.slot) {
                            again.push(acc.slot);
                        }
                    }
                    if let Some(m) = misconfig {
                        client_misconfigured = Some(m);
                    }
                    // Google's 401 is about the account's token (its refresh
                    // failed, or the new one was refused too), never the
                    // client's key: not an answer for the client, whose SDK
                    // would take it for its own key refused.
                    let token_401 = matches!(&err, Attempt::Next(Some(DispatchError::Upstream { status: 401, .. })));
                    if matches!(err, Attempt::Next(None)) {
                        refresh_errors.push(format!("{} ({})", acc.email(), refresh_note(&acc)));
                    } else if token_401 {
                        refresh_errors.push(format!("{} (Google answered HTTP 401 to its token)", acc.email()));
                    }
                    if let Some(refused) = self.request_at_fault(call, &acc, &err, weak) {
                        return Err(refused);
                    }
                    match err {
                        Attempt::Pass(e) => {
                            trail.passed = true;
                            return Err(e);
                        }
                        Attempt::Weak(e) => {
                            if !weak.bare_429.iter().any(|a| a.id == acc.id) {
                                weak.bare_429.push(acc.clone());
                            }
                            last_error = Some(e);
                        }
                        Attempt::Next(e) => {
                            if upstream_calls < max_attempts {
                                self.metrics.retry();
                            }
                            if !token_401 {
                                last_error = e.or(last_error);
                            }
                        }
                    }
                }
            }
        }
        if let Some(m) = client_misconfigured {
            return Err(DispatchError::NoAccount(format!(
                "token refresh failed because the OAuth client is wrong, not the accounts: {m}. Check that client's id and secret ([oauth.clients.NAME]), or set the account's token.oauth_client to the client that issued its refresh token"
            )));
        }
        match last_error {
            Some(e) => Err(e),
            None => {
                let mut why = self.pool.why_none(&call.model);
                if let Some(first) = refresh_errors.first() {
                    why.push_str(&format!(
                        "; no token Google accepts on {} account(s) for this request: its refresh failed, or Google refused it (first: {first})",
                        refresh_errors.len()
                    ));
                }
                Err(DispatchError::NoAccount(why))
            }
        }
    }

    /// One line for a request that got no answer: the accounts it tried
    /// and what each said, its waits, and the pool as it was when it gave
    /// up (who was resting, for how much longer): why no account served it.
    fn log_failure(&self, call: &Call, e: &DispatchError, trail: &Trail) {
        // The pool's part costs a pass over every account: with 10,000 of
        // them and an upstream down, building it for a line nobody keeps
        // cut the proxy to tens of requests a second.
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        let now = now_ms();
        let tried = |id: &str| trail.steps.iter().any(|s| s["account"] == id);
        // Those tried, and the first of the others (a big pool is not
        // written out whole), nearest to serving first.
        let (views, total) = self.pool.nearest_views(&call.model, POOL_SHOWN, &tried);
        let pool: Vec<serde_json::Value> = views
            .iter()
            .map(|v| {
                let (state, until, reason) = match &v.state {
                    AccountState::Disabled { reason, .. } => ("disabled", None, reason.as_deref()),
                    AccountState::ProxyDisabled { reason, .. } => ("off the proxy", None, reason.as_deref()),
                    AccountState::CoolingDown { until_ms, reason } => ("resting", Some(*until_ms), Some(reason.as_str())),
                    AccountState::Active => match v.longest_block(&call.model, now) {
                        Some(b) => ("resting", Some(b.until_ms), Some(b.reason.as_str())),
                        None => ("ready", None, None),
                    },
                };
                let back_in = until.map(|u| u.saturating_sub(now));
                serde_json::json!({"account": v.id, "state": state, "back_in_ms": back_in, "reason": reason})
            })
            .collect();
        let what = match e {
            DispatchError::NoAccount(_) => "no account".to_string(),
            DispatchError::Upstream { status, .. } => format!("HTTP {status} passed on"),
            DispatchError::Network(_) => "network error passed on".to_string(),
            DispatchError::Refused { status, .. } => format!("refused as the request's fault ({status})"),
        };
        let timeline = serde_json::json!({
            "session": call.session_id,
            "model": call.model,
            "outcome": what,
            "upstream_calls": trail.calls,
            "max_attempts": self.max_attempts,
            "waited_ms": trail.waited_ms,
            "max_wait_ms": self.max_wait.as_millis() as u64,
            "tried": trail.steps,
            "accounts": total,
            "pool": pool,
        });
        tracing::info!("request failed: {timeline}");
    }

    /// The request-fault rule ([`crate::request_fault`]): a weak answer (a
    /// bare 429, a reasonless 4xx) that another account already gave this
    /// request ends it, resting nobody, with an answer that says why.
    fn request_at_fault(&self, call: &Call, acc: &LiveAccount, err: &Attempt, weak: &mut WeakAnswers) -> Option<DispatchError> {
        let (status, body) = match err {
            Attempt::Weak(DispatchError::Upstream { status, body, .. }) => (*status, body),
            Attempt::Next(Some(DispatchError::Upstream { status, body, .. })) if crate::request_fault::is_reasonless_4xx(*status, body) => (*status, body),
            _ => return None,
        };
        // A verdict on the account's standing (a ban, a licence) is about
        // the account, not the request: the next account may still serve.
        if acc.read(|f| f.disabled || f.proxy_disabled) {
            return None;
        }
        if !weak.seen.second(&acc.id, status, body) {
            return None;
        }
        let cause = crate::request_fault::known_cause(&call.request);
        let message = crate::request_fault::message(status, weak.seen.accounts(), cause);
        tracing::warn!(model = %call.model, status, "{message}");
        self.metrics.refused_request();
        Some(DispatchError::Refused { status, message })
    }

    /// No account can take the request now. When the first one only
    /// resting (a short cooldown) is back before this request has waited
    /// `max_wait` in all, wait for it and say so (`true`): a client should
    /// not see a 429 or 503 for a pause of a second or two.
    async fn wait_for_one_back(&self, model: &str, waited: &mut Duration) -> bool {
        let Some(back) = self.pool.soonest_back(model) else { return false };
        // A little past the moment, so the cooldown is over when we look.
        let pause = Duration::from_millis(back.saturating_sub(now_ms()) + 20);
        if *waited + pause > self.max_wait {
            return false;
        }
        tracing::debug!(model, wait_ms = pause.as_millis() as u64, "every account that could serve is resting: waiting for the first one back");
        self.metrics.waited(pause);
        tokio::time::sleep(pause).await;
        *waited += pause;
        true
    }

    /// Everything done on one account for one attempt (token, project,
    /// upstream, the same-account retries a verdict may ask for).
    async fn try_account(
        &self,
        policy: &Policy,
        call: &Call,
        acc: &Arc<LiveAccount>,
        attempt: u32,
    ) -> Result<UpstreamResponse, (Attempt, Option<u16>, Option<String>)> {
        let mut token = match self.tokens.access_token(acc).await {
            Ok(t) => t,
            Err(f) => {
                self.metrics.refresh_failed();
                let misconfig = f.is_misconfiguration().then(|| format!("OAuth client `{}`: {}", f.client, f.error));
                // Whatever the verdict, a request cannot go on without a token.
                self.actions.refresh_failed(policy, acc, f, Some(&call.model), attempt).await;
                return Err((Attempt::Next(None), None, misconfig));
            }
        };
        let mut refreshed_once = false;
        let mut same_retries = 0;
        // The request as sent; replaced once when Google refuses its thought
        // signatures (see `upstream::signatures`).
        let mut request = call.request.clone();
        let mut sig_retried = false;
        loop {
            // The project comes first (found once, then on file); its failures
            // are judged like any upstream failure (a 401 here is the same sign
            // of a revoked grant as on generate).
            let profile = acc.read(|f| self.profiles.of(f.token.oauth_client.as_deref()));
            // A failure finding the project is the account's, never the
            // client request's: it is not passed back to the client.
            let mut finding_project = false;
            let sent = match self.project_of(profile, acc, &token).await {
                Ok(project) => {
                    let body = envelope::build(&Outgoing {
                        profile,
                        model: &call.model,
                        project: &project,
                        session: call.session_id.as_deref(),
                        request: &request,
                        max_output_tokens: self.upstream.catalogue.max_output_tokens(&call.model),
                    });
                    let started = std::time::Instant::now();
                    let (gcp_managed, egress) = acc.read(|f| (f.token.gcp_managed, f.egress.clone()));
                    let all_hosts = self.upstream.all_hosts_for(profile, gcp_managed);
                    let sent = self.upstream.generate(profile, &call.model, &token, body, call.stream, all_hosts, egress.as_deref(), super::lane::current()).await;
                    self.metrics.upstream_latency(started.elapsed());
                    match sent {
                        Ok(resp) if resp.status().is_success() => return Ok(resp),
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let headers = crate::util::kept_headers(resp.headers(), HEADERS_KEPT);
                            Err((Some(status), resp.bytes_bounded(MAX_ERROR_BODY).await, headers))
                        }
                        Err(e) => Err((None, Bytes::from(e.0), Vec::new())),
                    }
                }
                Err(ProjectError::Call(UpstreamCallError::Status { status, body })) => {
                    tracing::warn!(account = %acc.id, email = %acc.email(), "cannot find the account's Code Assist project: HTTP {status}");
                    finding_project = true;
                    Err((Some(status), Bytes::from(body), Vec::new()))
                }
                Err(ProjectError::Call(UpstreamCallError::Network(m))) => {
                    finding_project = true;
                    Err((None, Bytes::from(m), Vec::new()))
                }
                Err(ProjectError::Ineligible { code, message }) => {
                    // Google's word on the account, not an error of this
                    // request: off the proxy, and the request goes on.
                    self.actions.take_off_proxy(acc, &format!("{code}: {message}")).await;
                    return Err((Attempt::Next(None), None, None));
                }
                Err(e @ ProjectError::Timeout(_)) => {
                    tracing::warn!(account = %acc.id, email = %acc.email(), "{e}");
                    return Err((Attempt::Next(None), None, None));
                }
            };
            let (status, resp_body, headers) = match sent {
                Ok(resp) => return Ok(resp),
                Err(f) => f,
            };
            // A refused thought signature is the conversation's, not the
            // account's: once, the same account again without signatures,
            // before any classifier sees it (nothing counted, nobody rested).
            if !sig_retried && !finding_project && status.is_some_and(|s| signatures::is_signature_refusal(s, &resp_body)) {
                sig_retried = true;
                if let Some(stripped) = signatures::without_signatures(&call.model, &request) {
                    let note = format!("Google refused the request's thought signatures (HTTP {}): retried once without them", status.unwrap_or(400));
                    tracing::info!(account = %acc.id, email = %acc.email(), model = %call.model, "{note}");
                    self.pool.note(&acc.id, crate::pool::EventKind::Note, note, None, Some(crate::actions::body_summary(&String::from_utf8_lossy(&resp_body))));
                    request = stripped;
                    continue;
                }
            }
            let email = acc.email();
            let failure_err = status.is_none().then(|| String::from_utf8_lossy(&resp_body).into_owned());
            self.metrics.upstream_error(status);
            let text = match &failure_err {
                Some(e) => e.clone(),
                None => String::from_utf8_lossy(&resp_body).into_owned(),
            };
            let failure = Failure {
                phase: Phase::Upstream,
                status,
                body: text.clone(),
                headers: headers.clone(),
                network_error: failure_err.is_some(),
                account_id: acc.id.clone(),
                email: email.clone(),
                model: Some(call.model.clone()),
                attempt,
            };
            let retry_after = headers.iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v.clone());
            let as_error = || match status {
                Some(s) => DispatchError::Upstream { status: s, body: resp_body.clone(), account_id: acc.id.clone(), retry_after: retry_after.clone() },
                None => DispatchError::Network(format!("upstream unreachable: {text}")),
            };
            tracing::info!(account = %acc.id, email = %email, status = ?status, attempt, "upstream failure: {}", crate::util::truncate_utf8(&text, 300));
            if status.is_some_and(|s| crate::request_fault::is_bare_429(s, &resp_body)) && !finding_project {
                // No reason: maybe this account, maybe the request. No
                // classifier judges it; the request decides (see `dispatch`).
                let note = format!("Google answered HTTP 429 with no reason on {}: another account tries the request (a short back-off only if that one serves it)", call.model);
                self.actions.note(acc, &note, &text);
                return Err((Attempt::Weak(as_error()), status, None));
            }
            if status == Some(429) && text.contains("QUOTA_EXHAUSTED") {
                // Learn the real quota (and reset time) now, not at the next poll.
                self.quota.fetch_soon(acc);
            }
            let next = self
                .actions
                .handle(policy, FailureReport { failure, account: acc, refresh_token: acc.token().refresh_token })
                .await;
            match next {
                Next::PassToClient if finding_project => return Err((Attempt::Next(Some(as_error())), status, None)),
                Next::PassToClient => return Err((Attempt::Pass(as_error()), status, None)),
                Next::RetryNext => return Err((Attempt::Next(Some(as_error())), status, None)),
                Next::RetrySame(after) if same_retries < 2 => {
                    same_retries += 1;
                    tokio::time::sleep(after.min(Duration::from_secs(30))).await;
                }
                Next::RefreshAndRetry if !refreshed_once => {
                    refreshed_once = true;
                    match self.tokens.force_refresh(acc, &token).await {
                        Ok(t) => token = t,
                        Err(f) => {
                            // Refused by the token endpoint: the account turned
                            // out dead (or its client is wrong), which says
                            // nothing of this request — it does not use up
                            // one of the request's attempts.
                            let refused = matches!(f.error, crate::oauth::RefreshError::Rejected { .. } | crate::oauth::RefreshError::Misconfigured(_));
                            self.actions.refresh_failed(policy, acc, f, Some(&call.model), attempt).await;
                            if refused {
                                return Err((Attempt::Next(None), None, None));
                            }
                            return Err((Attempt::Next(Some(as_error())), status, None));
                        }
                    }
                }
                // Same-account retries used up: move on.
                _ => return Err((Attempt::Next(Some(as_error())), status, None)),
            }
        }
    }

    /// The account's Code Assist project: from its record, else found
    /// (and onboarded when it never was), then kept. One discovery per
    /// account at a time: requests that queue behind it use its answer.
    ///
    /// Where the account's tier decides its hosts (consumer: the daily host
    /// only), an account whose tier is not on file is asked once too.
    async fn project_of(&self, profile: &'static crate::profiles::Profile, acc: &Arc<LiveAccount>, token: &str) -> Result<String, ProjectError> {
        let known = |acc: &LiveAccount| {
            acc.read(|f| match (&f.token.project_id, f.token.gcp_managed) {
                (Some(p), Some(_)) => Some(p.clone()),
                (Some(p), None) if !self.upstream.has_fallback_hosts(profile) => Some(p.clone()),
                _ => None,
            })
        };
        if let Some(p) = known(acc) {
            return Ok(p);
        }
        let _one = acc.project_lock.lock().await;
        if let Some(p) = known(acc) {
            return Ok(p);
        }
        let egress = acc.read(|f| f.egress.clone());
        let egress = egress.as_deref();
        let found = match acc.project_id() {
            // The project is on file: a failure to learn the tier keeps the
            // account on the first host this time, and asks again next time.
            Some(p) => match self.upstream.account_tier(profile, token, egress).await {
                Ok(found) => found,
                Err(ProjectError::Call(e)) => {
                    tracing::debug!(account = %acc.id, "could not learn the account's tier: {e}");
                    return Ok(p);
                }
                Err(e) => return Err(e),
            },
            None => self.upstream.discover_project(profile, token, egress).await?,
        };
        self.actions.remember_code_assist(acc, &found).await;
        acc.project_id().or(found.project).ok_or_else(|| ProjectError::Ineligible {
            code: "PROJECT_REQUIRED".into(),
            message: "Google named no Code Assist project for the account: put its id in the account's token.project_id".into(),
        })
    }
}

/// What one request met on its way, for the line a failed request logs.
#[derive(Default)]
struct Trail {
    /// Each account tried and its answer, in order.
    steps: Vec<serde_json::Value>,
    /// Upstream calls made.
    calls: u32,
    /// Waited in all for a resting account, ms.
    waited_ms: u64,
    /// Google's answer went to the client as it came (a 400, say).
    passed: bool,
}

impl Trail {
    fn tried(&mut self, acc: &LiveAccount, err: &Attempt) {
        let e = match err {
            Attempt::Pass(e) | Attempt::Weak(e) | Attempt::Next(Some(e)) => e,
            Attempt::Next(None) => {
                self.steps.push(serde_json::json!({"account": acc.id, "answer": "no token (its refresh, or the project lookup, failed)"}));
                return;
            }
        };
        let answer = match e {
            DispatchError::Upstream { status, body, .. } => format!("HTTP {status} {}", google_reason(body)),
            DispatchError::Network(m) => crate::util::truncate_utf8(m, 120).to_string(),
            DispatchError::NoAccount(m) | DispatchError::Refused { message: m, .. } => crate::util::truncate_utf8(m, 120).to_string(),
        };
        self.steps.push(serde_json::json!({"account": acc.id, "answer": answer}));
    }

    fn waited(&mut self, total: Duration) {
        let ms = total.as_millis() as u64;
        self.steps.push(serde_json::json!({"waited_ms": ms - self.waited_ms}));
        self.waited_ms = ms;
    }
}

/// A Google error body in a few words: its ErrorInfo reason, else its message.
fn google_reason(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = v.get("error");
    let reason = e
        .and_then(|e| e.get("details"))
        .and_then(|d| d.as_array())
        .and_then(|d| d.iter().find_map(|x| x.get("reason").and_then(|r| r.as_str())));
    match (reason, e.and_then(|e| e.get("message")).and_then(|m| m.as_str())) {
        (Some(r), _) => r.to_string(),
        (None, Some(m)) => crate::util::truncate_utf8(m, 120).to_string(),
        (None, None) => crate::util::truncate_utf8(&String::from_utf8_lossy(body), 120).to_string(),
    }
}

/// The weak answers one request met.
#[derive(Default)]
struct WeakAnswers {
    seen: crate::request_fault::Seen,
    /// Accounts that answered a bare 429 (no classifier ran on it).
    bare_429: Vec<Arc<LiveAccount>>,
}

enum Attempt {
    /// Give this answer to the client now.
    Pass(DispatchError),
    /// A bare 429: try another account; whether it costs this one a
    /// back-off is decided when the request ends.
    Weak(DispatchError),
    /// Try another account (remember this error if it is the last).
    Next(Option<DispatchError>),
}

fn refresh_note(acc: &LiveAccount) -> String {
    let f = acc.file();
    if f.disabled {
        format!("disabled: {}", f.disabled_reason.unwrap_or_default())
    } else {
        "refresh error, see the log".into()
    }
}
