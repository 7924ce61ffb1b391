//! The fake's whole state: accounts, tokens, codes, clients, faults and
//! counters, behind one lock (plus a few atomics the `--fast` path reads
//! without taking it).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::time::{parse_rfc3339, rfc3339, unix_now};
use super::types::{
    AccountInfo, AccountSpec, ClientSpec, CodeSpec, Endpoint, FaultSpec, InvalidSpec, PendingFault,
    QuotaSpec, RevokeSpec, Served, Stats,
};

/// Access-token lifetime when none is configured, as Google's.
pub(crate) const DEFAULT_EXPIRES_IN: u64 = 3599;

/// The models `fetchAvailableModels` lists for every account, at 1.0.
pub const DEFAULT_MODELS: &[&str] = &[
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
];

/// The scopes a token answer names.
pub(crate) const SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform \
https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid";

/// State shared by every connection.
pub(crate) struct Shared {
    /// `--fast` mode: fixed answers, any access token.
    pub(crate) fast: AtomicBool,
    /// Whether the fault queue is non-empty (read without the lock).
    has_faults: AtomicBool,
    /// Totals, kept in fast mode too.
    pub(crate) counters: Counters,
    inner: Mutex<Inner>,
}

/// Call totals.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) token: AtomicU64,
    pub(crate) userinfo: AtomicU64,
    pub(crate) generate: AtomicU64,
    pub(crate) stream: AtomicU64,
    pub(crate) load_code_assist: AtomicU64,
    pub(crate) fetch_models: AtomicU64,
}

impl Counters {
    /// Adds one to a counter.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for c in [
            &self.token,
            &self.userinfo,
            &self.generate,
            &self.stream,
            &self.load_code_assist,
            &self.fetch_models,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// An account.
pub(crate) struct Account {
    pub(crate) email: String,
    pub(crate) id: String,
    pub(crate) project_id: String,
    pub(crate) rotate: bool,
    pub(crate) client_id: Option<String>,
    pub(crate) quotas: BTreeMap<String, Quota>,
}

/// One model's quota.
#[derive(Clone)]
pub(crate) struct Quota {
    pub(crate) fraction: f64,
    pub(crate) reset_time: String,
}

/// What a refresh token is.
pub(crate) struct RefreshEntry {
    /// The account, unless the token was revoked without being known.
    pub(crate) email: Option<String>,
    /// The grant it belongs to; access tokens issued from it share it.
    pub(crate) grant: u64,
    /// Set once revoked: the status and body refreshes then get.
    pub(crate) revoked: Option<(u16, Option<String>)>,
}

/// What an access token is.
pub(crate) struct AccessEntry {
    pub(crate) email: String,
    pub(crate) grant: u64,
    pub(crate) expires_at: Instant,
}

/// Who an access token belongs to.
pub(crate) enum AccessLookup {
    /// Valid, for this account.
    Valid(String),
    /// Known but expired or invalidated.
    Expired(String),
    /// Never issued.
    Unknown,
}

impl AccessLookup {
    /// The account, valid or not.
    pub(crate) fn email(&self) -> Option<&str> {
        match self {
            AccessLookup::Valid(e) | AccessLookup::Expired(e) => Some(e),
            AccessLookup::Unknown => None,
        }
    }
}

struct ActiveFault {
    spec: FaultSpec,
    /// `None` = forever.
    remaining: Option<u32>,
}

/// Everything behind the lock.
pub(crate) struct Inner {
    pub(crate) accounts: HashMap<String, Account>,
    pub(crate) refresh: HashMap<String, RefreshEntry>,
    pub(crate) access: HashMap<String, AccessEntry>,
    pub(crate) codes: HashMap<String, CodeSpec>,
    pub(crate) clients: HashMap<String, String>,
    pub(crate) expires_in: u64,
    faults: Vec<ActiveFault>,
    /// Per-account counts and `served`; totals live in [`Counters`].
    pub(crate) stats: Stats,
    next_grant: u64,
    next_response: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            accounts: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            codes: HashMap::new(),
            clients: HashMap::new(),
            expires_in: DEFAULT_EXPIRES_IN,
            faults: Vec::new(),
            stats: Stats::default(),
            next_grant: 1,
            next_response: 1,
        }
    }
}

/// A random string of `n` hex digits (n ≤ 32).
pub(crate) fn random_hex(n: usize) -> String {
    let mut s = format!("{:032x}", rand::random::<u128>());
    s.truncate(n);
    s
}

/// Google's numeric user id, stable per email.
fn user_id(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    format!("1{:020}", u64::from_be_bytes(b))
}

/// `fake-project-<local part>`, lowercase letters, digits and dashes.
fn default_project(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let clean: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("fake-project-{clean}")
}

/// Adds one to `map[key]`.
pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl Inner {
    /// A new grant id.
    pub(crate) fn new_grant(&mut self) -> u64 {
        self.next_grant += 1;
        self.next_grant
    }

    /// A new `responseId`.
    pub(crate) fn new_response_id(&mut self) -> String {
        self.next_response += 1;
        format!("fake-response-{}", self.next_response)
    }

    /// The account for `email`, created with defaults when unknown.
    pub(crate) fn account_or_default(&mut self, email: &str) -> &mut Account {
        self.accounts
            .entry(email.to_owned())
            .or_insert_with(|| Account {
                email: email.to_owned(),
                id: user_id(email),
                project_id: default_project(email),
                rotate: false,
                client_id: None,
                quotas: BTreeMap::new(),
            })
    }

    /// Adds a working refresh token for `email` (un-revoking it if needed).
    pub(crate) fn add_refresh_token(&mut self, token: &str, email: &str) {
        let grant = self.new_grant();
        let entry = self
            .refresh
            .entry(token.to_owned())
            .or_insert(RefreshEntry {
                email: None,
                grant,
                revoked: None,
            });
        if entry.revoked.is_some() || entry.email.as_deref() != Some(email) {
            entry.grant = grant;
        }
        entry.email = Some(email.to_owned());
        entry.revoked = None;
    }

    /// Issues an access token for `email` in `grant`; returns it and its
    /// lifetime in seconds.
    pub(crate) fn issue_access_token(&mut self, email: &str, grant: u64) -> (String, u64) {
        let token = format!("ya29.fake-{}", random_hex(32));
        let secs = self.expires_in;
        self.access.insert(
            token.clone(),
            AccessEntry {
                email: email.to_owned(),
                grant,
                expires_at: Instant::now() + Duration::from_secs(secs),
            },
        );
        (token, secs)
    }

    /// Who `token` belongs to and whether it still works.
    pub(crate) fn lookup_access(&self, token: &str) -> AccessLookup {
        match self.access.get(token) {
            None => AccessLookup::Unknown,
            Some(e) if Instant::now() >= e.expires_at => AccessLookup::Expired(e.email.clone()),
            Some(e) => AccessLookup::Valid(e.email.clone()),
        }
    }

    /// The quota set for `email` and `model`, if any.
    pub(crate) fn quota(&self, email: &str, model: &str) -> Option<Quota> {
        self.accounts.get(email)?.quotas.get(model).cloned()
    }

    /// `models` of `fetchAvailableModels` for `email`.
    pub(crate) fn models_of(&self, email: &str) -> BTreeMap<String, Quota> {
        let default_reset = rfc3339(unix_now() + 86_400);
        let mut out: BTreeMap<String, Quota> = DEFAULT_MODELS
            .iter()
            .map(|m| {
                (
                    (*m).to_owned(),
                    Quota {
                        fraction: 1.0,
                        reset_time: default_reset.clone(),
                    },
                )
            })
            .collect();
        if let Some(acc) = self.accounts.get(email) {
            for (m, q) in &acc.quotas {
                out.insert(m.clone(), q.clone());
            }
        }
        out
    }
}

/// Checks an HTTP status given in a spec.
fn check_status(status: Option<u16>) -> Result<(), InvalidSpec> {
    match status {
        Some(s) if !(200..=599).contains(&s) => Err(InvalidSpec(format!(
            "status {s} is not an HTTP status in 200..=599"
        ))),
        _ => Ok(()),
    }
}

impl Shared {
    /// Fresh state.
    pub(crate) fn new(fast: bool) -> Self {
        Self {
            fast: AtomicBool::new(fast),
            has_faults: AtomicBool::new(false),
            counters: Counters::default(),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Runs `f` under the lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock())
    }

    /// Whether fast mode is on.
    pub(crate) fn is_fast(&self) -> bool {
        self.fast.load(Ordering::Relaxed)
    }

    /// Whether any fault is queued.
    pub(crate) fn has_faults(&self) -> bool {
        self.has_faults.load(Ordering::Acquire)
    }

    /// Forgets everything but fast mode.
    pub(crate) fn reset(&self) {
        let mut inner = self.inner.lock();
        *inner = Inner::default();
        self.has_faults.store(false, Ordering::Release);
        self.counters.reset();
    }

    /// `POST /_fake/accounts`.
    pub(crate) fn add_account(&self, spec: AccountSpec) {
        self.with(|inner| {
            let acc = inner.account_or_default(&spec.email);
            if let Some(p) = spec.project_id {
                acc.project_id = p;
            }
            acc.rotate = spec.rotate_refresh_token;
            acc.client_id = spec.client_id;
            inner.add_refresh_token(&spec.refresh_token, &spec.email);
        });
    }

    /// `POST /_fake/revoke`: also invalidates the grant's access tokens.
    pub(crate) fn revoke(&self, spec: RevokeSpec) -> Result<(), InvalidSpec> {
        check_status(spec.status)?;
        self.with(|inner| {
            let grant = inner.new_grant();
            let entry = inner
                .refresh
                .entry(spec.refresh_token)
                .or_insert(RefreshEntry {
                    email: None,
                    grant,
                    revoked: None,
                });
            entry.revoked = Some((spec.status.unwrap_or(400), spec.body));
            let grant = entry.grant;
            inner.access.retain(|_, a| a.grant != grant);
        });
        Ok(())
    }

    /// `POST /_fake/client`.
    pub(crate) fn add_client(&self, spec: ClientSpec) {
        self.with(|inner| inner.clients.insert(spec.client_id, spec.client_secret));
    }

    /// `DELETE /_fake/client`.
    pub(crate) fn clear_clients(&self) {
        self.with(|inner| inner.clients.clear());
    }

    /// `POST /_fake/codes`.
    pub(crate) fn add_code(&self, spec: CodeSpec) -> Result<(), InvalidSpec> {
        match spec.code_challenge_method.as_deref() {
            None | Some("S256") | Some("plain") => {}
            Some(other) => {
                return Err(InvalidSpec(format!(
                    "code_challenge_method {other:?}: use S256 or plain"
                )))
            }
        }
        self.with(|inner| inner.codes.insert(spec.code.clone(), spec));
        Ok(())
    }

    /// `POST /_fake/quota`.
    pub(crate) fn set_quota(&self, spec: QuotaSpec) -> Result<(), InvalidSpec> {
        if !spec.remaining_fraction.is_finite() {
            return Err(InvalidSpec("remaining_fraction must be a number".into()));
        }
        let reset_time = match spec.reset_time {
            Some(t) if parse_rfc3339(&t).is_none() => {
                return Err(InvalidSpec(format!("reset_time {t:?} is not RFC 3339")))
            }
            Some(t) => t,
            None => rfc3339(unix_now() + 3600),
        };
        self.with(|inner| {
            inner.account_or_default(&spec.email).quotas.insert(
                spec.model,
                Quota {
                    fraction: spec.remaining_fraction,
                    reset_time,
                },
            )
        });
        Ok(())
    }

    /// `POST /_fake/expires_in`.
    pub(crate) fn set_expires_in(&self, secs: u64) {
        self.with(|inner| inner.expires_in = secs);
    }

    /// `POST /_fake/invalidate_access_tokens`: every access token of
    /// `email` (or of everyone) stops working; refresh tokens still work.
    pub(crate) fn invalidate_access_tokens(&self, email: Option<&str>) {
        self.with(|inner| match email {
            Some(e) => inner.access.retain(|_, a| a.email != e),
            None => inner.access.clear(),
        });
    }

    /// `POST /_fake/faults`.
    pub(crate) fn push_fault(&self, spec: FaultSpec) -> Result<(), InvalidSpec> {
        check_status(spec.status)?;
        for (name, value) in &spec.headers {
            if axum::http::HeaderName::try_from(name.as_str()).is_err()
                || axum::http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(InvalidSpec(format!(
                    "header {name:?} is not a valid HTTP header"
                )));
            }
        }
        let remaining = match spec.times.unwrap_or(1) {
            0 => None,
            n => Some(n),
        };
        let mut inner = self.inner.lock();
        inner.faults.push(ActiveFault { spec, remaining });
        self.has_faults.store(true, Ordering::Release);
        Ok(())
    }

    /// `DELETE /_fake/faults`.
    pub(crate) fn clear_faults(&self) {
        let mut inner = self.inner.lock();
        inner.faults.clear();
        self.has_faults.store(false, Ordering::Release);
    }

    /// `GET /_fake/faults`.
    pub(crate) fn pending_faults(&self) -> Vec<PendingFault> {
        self.with(|inner| {
            inner
                .faults
                .iter()
                .map(|f| PendingFault {
                    fault: f.spec.clone(),
                    remaining: f.remaining,
                })
                .collect()
        })
    }

    /// Takes one use of the first fault that applies to a call of
    /// `endpoint` for `email`.
    pub(crate) fn take_fault(&self, endpoint: Endpoint, email: Option<&str>) -> Option<FaultSpec> {
        if !self.has_faults() {
            return None;
        }
        let mut inner = self.inner.lock();
        let i = inner.faults.iter().position(|f| {
            f.spec.endpoint.covers(endpoint)
                && match (&f.spec.email, email) {
                    (None, _) => true,
                    (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
                    (Some(_), None) => false,
                }
        })?;
        let fault = &mut inner.faults[i];
        let spec = fault.spec.clone();
        if let Some(n) = &mut fault.remaining {
            *n -= 1;
            if *n == 0 {
                inner.faults.remove(i);
            }
        }
        self.has_faults
            .store(!inner.faults.is_empty(), Ordering::Release);
        Some(spec)
    }

    /// Records an answer served in full.
    pub(crate) fn record_served(&self, served: Served) {
        self.with(|inner| inner.stats.served.push(served));
    }

    /// `GET /_fake/stats`.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.with(|inner| inner.stats.clone());
        let c = &self.counters;
        stats.token_calls = c.token.load(Ordering::Relaxed);
        stats.userinfo_calls = c.userinfo.load(Ordering::Relaxed);
        stats.generate_calls_total = c.generate.load(Ordering::Relaxed);
        stats.stream_calls_total = c.stream.load(Ordering::Relaxed);
        stats.load_code_assist_calls = c.load_code_assist.load(Ordering::Relaxed);
        stats.fetch_models_calls = c.fetch_models.load(Ordering::Relaxed);
        stats
    }

    /// `POST /_fake/reset_stats`.
    pub(crate) fn reset_stats(&self) {
        self.with(|inner| inner.stats = Stats::default());
        self.counters.reset();
    }

    /// `GET /_fake/accounts`.
    pub(crate) fn accounts(&self) -> Vec<AccountInfo> {
        self.with(|inner| {
            let mut out: Vec<AccountInfo> = inner
                .accounts
                .values()
                .map(|a| {
                    let mut refresh_tokens: Vec<String> = inner
                        .refresh
                        .iter()
                        .filter(|(_, r)| {
                            r.revoked.is_none() && r.email.as_deref() == Some(&a.email)
                        })
                        .map(|(t, _)| t.clone())
                        .collect();
                    refresh_tokens.sort();
                    AccountInfo {
                        email: a.email.clone(),
                        id: a.id.clone(),
                        project_id: a.project_id.clone(),
                        rotate_refresh_token: a.rotate,
                        client_id: a.client_id.clone(),
                        refresh_tokens,
                        quotas: a
                            .quotas
                            .iter()
                            .map(|(m, q)| (m.clone(), q.fraction))
                            .collect(),
                    }
                })
                .collect();
            out.sort_by(|a, b| a.email.cmp(&b.email));
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_stable_and_numeric() {
        let a = user_id("a@example.com");
        assert_eq!(a, user_id("a@example.com"));
        assert_ne!(a, user_id("b@example.com"));
        assert_eq!(a.len(), 21);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            default_project("Jo.Ann+x@example.com"),
            "fake-project-jo-ann-x"
        );
    }

    #[test]
    fn faults_are_taken_in_order_and_used_up() {
        let s = Shared::new(false);
        s.push_fault(
            FaultSpec::status(Endpoint::Generate, 500)
                .for_email("a@x")
                .times(2),
        )
        .unwrap();
        s.push_fault(FaultSpec::status(Endpoint::Any, 503)).unwrap();
        assert_eq!(
            s.take_fault(Endpoint::Token, None).unwrap().status,
            Some(503)
        );
        assert!(s.take_fault(Endpoint::Generate, Some("b@x")).is_none());
        assert_eq!(
            s.take_fault(Endpoint::Generate, Some("A@x"))
                .unwrap()
                .status,
            Some(500)
        );
        assert_eq!(
            s.take_fault(Endpoint::Generate, Some("a@x"))
                .unwrap()
                .status,
            Some(500)
        );
        assert!(s.take_fault(Endpoint::Generate, Some("a@x")).is_none());
        assert!(!s.has_faults());
        s.push_fault(FaultSpec::status(Endpoint::Stream, 502).forever())
            .unwrap();
        for _ in 0..5 {
            assert!(s.take_fault(Endpoint::Stream, None).is_some());
        }
        assert!(s
            .push_fault(FaultSpec::status(Endpoint::Stream, 42))
            .is_err());
        assert!(s
            .push_fault(FaultSpec::status(Endpoint::Stream, 500).header("bad name", "x"))
            .is_err());
    }
}
