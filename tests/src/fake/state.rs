//! The fake's whole state: accounts, tokens, codes, clients, faults,
//! signatures, onboarding operations, the request log and counters, behind
//! one lock (plus a few atomics the `--fast` path reads without taking
//! it). Every listener (host label) shares it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::clients::{ANTIGRAVITY_CLIENT_ID, BUILT_IN, GEMINI_CLI_CLIENT_ID};
use super::record::RequestLog;
use super::signatures::SignatureStore;
use super::time::{parse_rfc3339, rfc3339, unix_now};
use super::types::{
    AccountInfo, AccountSpec, ClientSpec, CodeSpec, Endpoint, FakeSettings, FaultSpec, HostInfo,
    IneligibleSpec, InvalidSpec, PendingFault, QuotaSpec, RevokeSpec, Served, SettingsPatch, Stats,
};

/// Access-token lifetime when none is configured, as Google's.
pub(crate) const DEFAULT_EXPIRES_IN: u64 = 3599;

/// Polls an onboarding operation takes by default (contract "onboardUser").
pub(crate) const DEFAULT_ONBOARD_POLLS: u32 = 2;

/// The models `fetchAvailableModels` lists for every account, at 1.0.
pub const DEFAULT_MODELS: &[&str] = &[
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
];

/// The reason code of a retired client (google-gemini/gemini-cli#28846).
pub(crate) const UNSUPPORTED_CLIENT: &str = "UNSUPPORTED_CLIENT";

/// The scopes a token answer names.
pub(crate) const SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform \
https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid";

/// One listener: its label, address and accept task.
pub(crate) struct Listener {
    pub(crate) label: String,
    pub(crate) addr: SocketAddr,
    pub(crate) task: JoinHandle<()>,
}

/// State shared by every connection of every listener.
pub(crate) struct Shared {
    /// `--fast` mode: fixed answers, any access token.
    pub(crate) fast: AtomicBool,
    /// Whether the fault queue is non-empty (read without the lock).
    has_faults: AtomicBool,
    /// Totals, kept in fast mode too.
    pub(crate) counters: Counters,
    inner: Mutex<Inner>,
    /// The listeners, first = the default one.
    pub(crate) listeners: Mutex<Vec<Listener>>,
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
    pub(crate) count_tokens: AtomicU64,
    pub(crate) onboard_user: AtomicU64,
    pub(crate) operation: AtomicU64,
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
            &self.count_tokens,
            &self.onboard_user,
            &self.operation,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Where an account stands with Code Assist (contract "loadCodeAssist /
/// onboardUser / operations").
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Setup {
    /// Has a tier and its project.
    Onboarded,
    /// No tier, no project.
    NeverOnboarded,
    /// `onboardUser` started this operation (`operations/<id>`).
    Onboarding { operation: String },
    /// Ineligible for the free tier.
    Ineligible(IneligibleSpec),
}

impl Setup {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Setup::Onboarded => "onboarded",
            Setup::NeverOnboarded => "never_onboarded",
            Setup::Onboarding { .. } => "onboarding",
            Setup::Ineligible(_) => "ineligible",
        }
    }
}

/// An account.
pub(crate) struct Account {
    pub(crate) email: String,
    pub(crate) id: String,
    /// The project it has once onboarded (or has now).
    pub(crate) project_id: String,
    pub(crate) rotate: bool,
    pub(crate) client_id: Option<String>,
    pub(crate) quotas: BTreeMap<String, Quota>,
    pub(crate) setup: Setup,
    pub(crate) onboard_polls: u32,
    /// An enterprise account (GCP-managed), not a consumer one.
    pub(crate) enterprise: bool,
}

impl Account {
    /// The project calls must name, once onboarded.
    pub(crate) fn current_project(&self) -> Option<&str> {
        (self.setup == Setup::Onboarded).then_some(self.project_id.as_str())
    }
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
    /// The client it belongs to; `None` = the default (the Antigravity
    /// client, or any while any client is accepted).
    pub(crate) client_id: Option<String>,
}

/// What an access token is.
pub(crate) struct AccessEntry {
    pub(crate) email: String,
    pub(crate) grant: u64,
    pub(crate) expires_at: Instant,
    /// The OAuth client it was issued to.
    pub(crate) client_id: String,
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

/// An onboarding long-running operation.
pub(crate) struct Operation {
    pub(crate) email: String,
    /// Polls so far.
    pub(crate) polls: u32,
    /// Polls it takes to be done.
    pub(crate) needed: u32,
}

struct ActiveFault {
    spec: FaultSpec,
    /// `None` = forever.
    remaining: Option<u32>,
}

/// What a fault is matched against.
#[derive(Clone, Copy, Default)]
pub(crate) struct FaultTarget<'a> {
    pub(crate) email: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) model: Option<&'a str>,
}

/// Everything behind the lock.
pub(crate) struct Inner {
    pub(crate) accounts: HashMap<String, Account>,
    pub(crate) refresh: HashMap<String, RefreshEntry>,
    pub(crate) access: HashMap<String, AccessEntry>,
    pub(crate) codes: HashMap<String, CodeSpec>,
    /// Known OAuth clients: id → secret (the built-in ones always).
    pub(crate) clients: HashMap<String, String>,
    pub(crate) expires_in: u64,
    faults: Vec<ActiveFault>,
    /// Per-account counts and `served`; totals live in [`Counters`].
    pub(crate) stats: Stats,
    pub(crate) settings: FakeSettings,
    pub(crate) signatures: SignatureStore,
    /// Ids of the function calls the scripted agent turn issued.
    pub(crate) run_calls: HashSet<String>,
    pub(crate) operations: HashMap<String, Operation>,
    pub(crate) log: RequestLog,
    /// 5-hour and weekly windows set by tests (`retrieveUserQuotaSummary`).
    pub(crate) quota_windows: super::quota_summary::Windows,
    /// Each account's prompt cache (`cachedContentTokenCount`).
    pub(crate) prompt_cache: super::prompt_cache::PromptCache,
    next_grant: u64,
    next_response: u64,
    next_call: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            accounts: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            codes: HashMap::new(),
            clients: BUILT_IN
                .iter()
                .map(|(id, secret)| ((*id).to_owned(), (*secret).to_owned()))
                .collect(),
            expires_in: DEFAULT_EXPIRES_IN,
            faults: Vec::new(),
            stats: Stats::default(),
            settings: FakeSettings::default(),
            signatures: SignatureStore::default(),
            run_calls: HashSet::new(),
            operations: HashMap::new(),
            log: RequestLog::default(),
            quota_windows: Default::default(),
            prompt_cache: Default::default(),
            next_grant: 1,
            next_response: 1,
            next_call: 0,
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

    /// A new function-call number (for `call_<n>` / `toolu_<n>`).
    pub(crate) fn new_call_number(&mut self) -> u64 {
        self.next_call += 1;
        self.next_call
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
                setup: Setup::Onboarded,
                onboard_polls: DEFAULT_ONBOARD_POLLS,
                enterprise: false,
            })
    }

    /// Adds a working refresh token for `email` belonging to `client_id`
    /// (un-revoking it if needed).
    pub(crate) fn add_refresh_token(
        &mut self,
        token: &str,
        email: &str,
        client_id: Option<String>,
    ) {
        let grant = self.new_grant();
        let entry = self
            .refresh
            .entry(token.to_owned())
            .or_insert(RefreshEntry {
                email: None,
                grant,
                revoked: None,
                client_id: None,
            });
        if entry.revoked.is_some() || entry.email.as_deref() != Some(email) {
            entry.grant = grant;
        }
        entry.email = Some(email.to_owned());
        entry.revoked = None;
        entry.client_id = client_id;
    }

    /// Issues an access token for `email` in `grant` to `client_id`;
    /// returns it and its lifetime in seconds.
    pub(crate) fn issue_access_token(
        &mut self,
        email: &str,
        grant: u64,
        client_id: &str,
    ) -> (String, u64) {
        let token = format!("ya29.fake-{}", random_hex(32));
        let secs = self.expires_in;
        self.access.insert(
            token.clone(),
            AccessEntry {
                email: email.to_owned(),
                grant,
                expires_at: Instant::now() + Duration::from_secs(secs),
                client_id: client_id.to_owned(),
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

    /// The OAuth client `token` was issued to.
    pub(crate) fn client_of(&self, token: &str) -> Option<String> {
        self.access.get(token).map(|e| e.client_id.clone())
    }

    /// The client an account's tokens belong to by default.
    pub(crate) fn default_client_of(&self, email: &str) -> String {
        self.accounts
            .get(email)
            .and_then(|a| a.client_id.clone())
            .unwrap_or_else(|| ANTIGRAVITY_CLIENT_ID.to_owned())
    }

    /// Whether `email` is an enterprise account.
    pub(crate) fn is_enterprise(&self, email: &str) -> bool {
        self.accounts.get(email).is_some_and(|a| a.enterprise)
    }

    /// Whether `email`, calling with a token of `token_client`, is refused
    /// as `UNSUPPORTED_CLIENT`: ineligible for that reason, or a Gemini CLI
    /// account (or token) while [`FakeSettings::retire_gemini_cli_client`]
    /// is on (google-gemini/gemini-cli#28846).
    pub(crate) fn unsupported_client(&self, email: &str, token_client: Option<&str>) -> bool {
        let acc = self.accounts.get(email);
        if let Some(Setup::Ineligible(why)) = acc.map(|a| &a.setup) {
            if why.reason_code == UNSUPPORTED_CLIENT {
                return true;
            }
        }
        self.settings.retire_gemini_cli_client
            && (acc.and_then(|a| a.client_id.as_deref()) == Some(GEMINI_CLI_CLIENT_ID)
                || token_client == Some(GEMINI_CLI_CLIENT_ID))
    }

    /// The refused phrase `request.systemInstruction` holds, if any.
    pub(crate) fn refused_phrase(&self, request: &serde_json::Value) -> Option<String> {
        let system = request
            .get("systemInstruction")
            .or_else(|| request.get("system_instruction"))?;
        let texts = super::gemini::texts(system);
        self.settings
            .refused_phrases
            .iter()
            .filter(|p| !p.is_empty())
            .find(|p| texts.iter().any(|t| t.contains(p.as_str())))
            .cloned()
    }

    /// The quota set for `email` and `model`, if any.
    pub(crate) fn quota(&self, email: &str, model: &str) -> Option<Quota> {
        self.accounts.get(email)?.quotas.get(model).cloned()
    }

    /// Quotas of `fetchAvailableModels` for `email`: the default models at
    /// 1.0 plus those set through `/_fake/quota`.
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

    /// The default quota (1.0, reset in a day).
    pub(crate) fn full_quota() -> Quota {
        Quota {
            fraction: 1.0,
            reset_time: rfc3339(unix_now() + 86_400),
        }
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
            listeners: Mutex::new(Vec::new()),
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

    /// The settings.
    pub(crate) fn settings(&self) -> FakeSettings {
        self.with(|inner| inner.settings.clone())
    }

    /// Applies a settings change; answers the new settings.
    pub(crate) fn patch_settings(&self, patch: SettingsPatch) -> FakeSettings {
        self.with(|inner| {
            let s = &mut inner.settings;
            if let Some(v) = patch.strict_envelope {
                s.strict_envelope = v;
            }
            if let Some(v) = patch.stream_hold_ms {
                s.stream_hold_ms = v;
            }
            if let Some(v) = patch.quota_window_spelling {
                s.quota_window_spelling = v;
            }
            if let Some(v) = patch.refused_phrases {
                s.refused_phrases = v;
            }
            if let Some(v) = patch.retire_gemini_cli_client {
                s.retire_gemini_cli_client = v;
            }
            if let Some(v) = patch.updater_version {
                s.updater_version = Some(v).filter(|v| !v.is_empty());
            }
            if let Some(v) = patch.accept_any_client {
                s.accept_any_client = v;
            }
            if let Some(v) = patch.prompt_cache {
                s.prompt_cache = v;
            }
            if let Some(v) = patch.max_recorded_requests {
                s.max_recorded_requests = v;
                inner.log.trim(v);
            }
            inner.settings.clone()
        })
    }

    /// The listeners, default first.
    pub(crate) fn hosts(&self) -> Vec<HostInfo> {
        self.listeners
            .lock()
            .iter()
            .map(|l| HostInfo {
                label: l.label.clone(),
                url: format!("http://{}", l.addr),
            })
            .collect()
    }

    /// Whether a listener is labelled `label`.
    pub(crate) fn has_host(&self, label: &str) -> bool {
        self.listeners.lock().iter().any(|l| l.label == label)
    }

    /// Whether a call on `host` is on the prod host of a fake that also
    /// has a daily host (which then acts as Google's prod host does for
    /// consumer accounts and Gemini 3.8, GOOGLE-2026 §1, §3).
    pub(crate) fn is_prod_beside_daily(&self, host: Option<&str>) -> bool {
        host == Some("prod") && self.has_host("daily")
    }

    /// Stops every listener.
    pub(crate) fn stop_listeners(&self) {
        for l in self.listeners.lock().iter() {
            l.task.abort();
        }
    }

    /// Forgets everything but fast mode, the settings and the listeners.
    pub(crate) fn reset(&self) {
        let mut inner = self.inner.lock();
        let settings = inner.settings.clone();
        *inner = Inner::default();
        inner.settings = settings;
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
            acc.client_id = spec.client_id.clone();
            acc.onboard_polls = spec.onboard_polls.unwrap_or(DEFAULT_ONBOARD_POLLS);
            acc.enterprise = spec.enterprise;
            acc.setup = match (spec.ineligible, spec.onboarded) {
                (Some(why), _) => Setup::Ineligible(why),
                (None, false) => Setup::NeverOnboarded,
                (None, true) => Setup::Onboarded,
            };
            inner.add_refresh_token(&spec.refresh_token, &spec.email, spec.client_id);
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
                    client_id: None,
                });
            entry.revoked = Some((spec.status.unwrap_or(400), spec.body));
            let grant = entry.grant;
            inner.access.retain(|_, a| a.grant != grant);
        });
        Ok(())
    }

    /// `POST /_fake/client`: one more known client; any other is refused
    /// again.
    pub(crate) fn add_client(&self, spec: ClientSpec) {
        self.with(|inner| {
            inner.clients.insert(spec.client_id, spec.client_secret);
            inner.settings.accept_any_client = false;
        });
    }

    /// `DELETE /_fake/client`: forgets the added clients and accepts any.
    pub(crate) fn clear_clients(&self) {
        self.with(|inner| {
            inner.clients = Inner::default().clients;
            inner.settings.accept_any_client = true;
        });
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
        if let Some(d) = &spec.retry_delay {
            if matches!(
                spec.kind,
                super::FaultKind::RateLimitExceeded | super::FaultKind::QuotaExhausted
            ) && super::time::parse_go_duration(d).is_none()
            {
                return Err(InvalidSpec(format!(
                    "retry_delay {d:?} is not a duration like 479.417207ms, 161h39m41.3s or 33740.9s"
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
    /// `endpoint` for `email` (any host, any model).
    #[cfg(test)]
    pub(crate) fn take_fault(&self, endpoint: Endpoint, email: Option<&str>) -> Option<FaultSpec> {
        self.take_fault_for(
            endpoint,
            FaultTarget {
                email,
                ..FaultTarget::default()
            },
        )
    }

    /// Takes one use of the first fault that applies to a call of
    /// `endpoint` for `target`.
    pub(crate) fn take_fault_for(
        &self,
        endpoint: Endpoint,
        target: FaultTarget<'_>,
    ) -> Option<FaultSpec> {
        if !self.has_faults() {
            return None;
        }
        fn matches(want: &Option<String>, got: Option<&str>) -> bool {
            match (want, got) {
                (None, _) => true,
                (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
                (Some(_), None) => false,
            }
        }
        let mut inner = self.inner.lock();
        let i = inner.faults.iter().position(|f| {
            f.spec.endpoint.covers(endpoint)
                && matches(&f.spec.email, target.email)
                && matches(&f.spec.host, target.host)
                && matches(&f.spec.model, target.model)
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
        let mut stats = self.with(|inner| {
            let mut s = inner.stats.clone();
            s.requests = inner.log.list();
            s
        });
        let c = &self.counters;
        stats.token_calls = c.token.load(Ordering::Relaxed);
        stats.userinfo_calls = c.userinfo.load(Ordering::Relaxed);
        stats.generate_calls_total = c.generate.load(Ordering::Relaxed);
        stats.stream_calls_total = c.stream.load(Ordering::Relaxed);
        stats.load_code_assist_calls = c.load_code_assist.load(Ordering::Relaxed);
        stats.fetch_models_calls = c.fetch_models.load(Ordering::Relaxed);
        stats.count_tokens_calls = c.count_tokens.load(Ordering::Relaxed);
        stats.onboard_user_calls = c.onboard_user.load(Ordering::Relaxed);
        stats.operation_calls = c.operation.load(Ordering::Relaxed);
        stats
    }

    /// `POST /_fake/reset_stats`: counts and the request log.
    pub(crate) fn reset_stats(&self) {
        self.with(|inner| {
            inner.stats = Stats::default();
            inner.log.clear();
        });
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
                        setup: a.setup.name().to_owned(),
                        enterprise: a.enterprise,
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

    #[test]
    fn faults_target_hosts_and_models() {
        let s = Shared::new(false);
        s.push_fault(FaultSpec::status(Endpoint::Generate, 503).on_host("daily"))
            .unwrap();
        s.push_fault(
            FaultSpec::quota_exhausted(Endpoint::Any, "33740.9s").for_model("claude-sonnet-4-6"),
        )
        .unwrap();
        let on = |host, model| FaultTarget {
            email: Some("a@x"),
            host: Some(host),
            model: Some(model),
        };
        assert!(s
            .take_fault_for(Endpoint::Generate, on("prod", "gemini-2.5-pro"))
            .is_none());
        assert_eq!(
            s.take_fault_for(Endpoint::Generate, on("daily", "gemini-2.5-pro"))
                .unwrap()
                .status,
            Some(503)
        );
        assert!(s
            .take_fault_for(Endpoint::Stream, on("daily", "gemini-2.5-pro"))
            .is_none());
        assert!(s
            .take_fault_for(Endpoint::Token, FaultTarget::default())
            .is_none());
        assert_eq!(
            s.take_fault_for(Endpoint::Stream, on("prod", "claude-sonnet-4-6"))
                .unwrap()
                .kind,
            super::super::FaultKind::QuotaExhausted
        );
        assert!(s
            .push_fault(FaultSpec::quota_exhausted(Endpoint::Any, "a week"))
            .is_err());
    }
}
