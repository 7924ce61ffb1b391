//! The interface of a storage backend ([`Backend`]) and what it reports
//! ([`LoadReport`], [`Change`], [`Updated`]).

use std::path::PathBuf;
use std::sync::Arc;

pub(crate) use super::error::io_err;
pub use super::error::StoreError;
use super::file::AccountFile;
use super::upsert::UpsertOutcome;

/// A file that was skipped (it could not be read or does not parse).
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// The account it holds, when its name says (an account file).
    pub id: Option<String>,
    /// Why it was skipped (no values from the file).
    pub cause: String,
    /// Its `email`, when the file is JSON with a string `email`.
    pub email: Option<String>,
}

/// The result of [`super::Store::load_all`].
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The accounts that parsed, oldest `created_at` first (then by id).
    pub accounts: Vec<AccountFile>,
    /// The files that were skipped (already logged with `warn`).
    pub skipped: Vec<SkippedFile>,
}

/// A change to the stored accounts, seen by [`super::Store::watch`] (whoever made
/// it: this process, the CLI while the proxy runs, a file copied in by hand).
#[derive(Debug, Clone)]
pub enum Change {
    /// The account was added or changed; this is its record now.
    Upserted(AccountFile),
    /// The account is gone.
    Removed(String),
    /// The account's record changed but cannot be read (e.g. a file that
    /// does not parse): keep what was known of it.
    Unreadable {
        /// The account id.
        id: String,
        /// Why it cannot be read (no values from the record).
        cause: String,
    },
    /// Everything was read again (a cluster node after a reconnect): this is
    /// the whole store now; accounts not in it (nor unreadable) are gone.
    Reloaded(LoadReport),
    /// A cluster node bound a conversation to an account.
    SessionBound {
        /// The session's key (a hash of its id, see `Pool::session_key`).
        session: String,
        /// The account id.
        account: String,
        /// Until when, Unix ms.
        until_ms: u64,
    },
}

/// What an update came to.
#[derive(Debug, Clone)]
pub struct Updated {
    /// The account as stored now (unchanged when `applied` is false).
    pub account: AccountFile,
    /// The precondition held and the change was applied.
    pub applied: bool,
}

/// Keeps a [`super::Store::watch`] going; watching stops when it is dropped.
pub struct Watch(#[allow(dead_code)] Box<dyn Send>);

impl Watch {
    /// A watch held alive by `guard`.
    pub fn new(guard: impl Send + 'static) -> Watch {
        Watch(Box::new(guard))
    }
}

/// How the link to the cluster store stands, for `/health` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    /// Redis answers.
    pub connected: bool,
    /// Why not, when it does not (no secrets).
    pub cause: Option<String>,
    /// Decisions waiting in the local journal for Redis to come back.
    pub journal_len: usize,
    /// The last change from another node: publish → applied here, ms.
    pub sync_lag_ms: u64,
    /// Changes from other nodes applied here.
    pub changes_applied: u64,
    /// Times the link was lost.
    pub disconnects: u64,
}

/// The disable-storm limits, for a window shared by the nodes of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct GuardLimits {
    /// The window, ms.
    pub window_ms: u64,
    /// Most disables per window.
    pub max_disables: u32,
    /// Largest share of the pool per window (once 3 went).
    pub max_fraction: f64,
    /// Accounts in the pool.
    pub pool_size: usize,
}

/// What the nodes of a cluster share besides account records: leases
/// (one token refresh for the whole cluster), short-lived notes (a refresh's
/// failure, for the nodes that waited on it), the storm guard's window, and
/// session bindings. Only a cluster backend has one ([`Backend::cluster`]).
/// Every call is a Redis round trip: none is on the steady-state request path
/// (a conversation's first binding, or its move, costs the request one).
pub trait Cluster: Send + Sync {
    /// Takes the lease `name` for `ttl_ms` unless another holder has it:
    /// `Some(token)` (for [`Cluster::release`]) when taken.
    fn try_lease(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, StoreError>;
    /// Whether someone holds the lease `name` now.
    fn lease_held(&self, name: &str) -> Result<bool, StoreError>;
    /// Gives the lease back, if `token` still holds it.
    fn release(&self, name: &str, token: &str);
    /// Leaves `value` under `name` for `ttl_ms`.
    fn put_note(&self, name: &str, value: &str, ttl_ms: u64) -> Result<(), StoreError>;
    /// The note `name`, if one is there.
    fn note(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// The storm guard, counted cluster-wide: `None` when one more disable of
    /// `account` fits (and it is counted now), else `Some(disables in the
    /// window)`. The same account twice counts once.
    fn admit_disable(&self, account: &str, limits: GuardLimits) -> Result<Option<u32>, StoreError>;
    /// Binds conversation `session` to `account` for `ttl_ms` and tells
    /// every node, unless another binding holds: the stored binding is
    /// replaced only when it is `expected` (`None`: there is none — a first
    /// binding, `SET NX`), is already `account`, or has expired. Returns the
    /// binding as it stands now — `account`'s, or the one that held (two
    /// nodes racing on one conversation agree). One round trip, bounded by
    /// a short timeout: a caller on the request path goes on alone when it
    /// fails.
    fn claim_session(&self, session: &str, expected: Option<&str>, account: &str, ttl_ms: u64) -> Result<SessionBinding, StoreError>;
    /// [`Cluster::claim_session`], queued (never waits on Redis): to extend
    /// a binding, or to share one made while Redis did not answer. When
    /// another binding holds, it is told to every node instead.
    fn claim_session_later(&self, session: &str, expected: Option<&str>, account: &str, ttl_ms: u64);
    /// How the link stands.
    fn status(&self) -> ClusterStatus;
}

/// A conversation's binding as the cluster holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBinding {
    /// The account id.
    pub account: String,
    /// Until when, Unix ms (Redis' clock).
    pub until_ms: u64,
}

/// Receives the changes a watch sees.
pub type ChangeSink = Arc<dyn Fn(Change) + Send + Sync>;

/// Where account records live. Implementations find, lock and write; the
/// rules are [`super::Store`]'s and [`super::upsert`]'s, the same for every backend.
pub trait Backend: Send + Sync {
    /// Where the accounts are, for messages (`accounts folder /x/accounts`).
    fn location(&self) -> String;
    /// Every account; records that cannot be read are reported and skipped
    /// (never modified).
    fn load_all(&self) -> LoadReport;
    /// The account `id` (already validated): `None` when there is none.
    fn get(&self, id: &str) -> Result<Option<AccountFile>, StoreError>;
    /// The oldest account whose email equals `email` ignoring case;
    /// `Corrupt` when only an unreadable record carries it.
    fn find_by_email(&self, email: &str) -> Result<Option<AccountFile>, StoreError>;
    /// Atomically: find the account by email, apply `decide` to it (or to
    /// `None`), store the outcome's account. Two upserts of one email, from
    /// any process, never create two accounts.
    fn upsert_with(
        &self,
        email: &str,
        decide: &dyn Fn(Option<&AccountFile>) -> UpsertOutcome,
    ) -> Result<UpsertOutcome, StoreError>;
    /// Atomically: read account `id`, run `change` on it, store it when
    /// `change` returns true (its precondition held). `change` may run more
    /// than once (a backend that retries on a conflict). `NotFound` when
    /// there is no such account, `Corrupt` (untouched) when it cannot be read.
    fn update(&self, id: &str, change: &mut dyn FnMut(&mut AccountFile) -> bool) -> Result<Updated, StoreError>;
    /// Deletes account `id` (even an unreadable one); whether there was one.
    fn remove(&self, id: &str) -> Result<bool, StoreError>;
    /// Calls `sink` with every change from now on, until the [`Watch`] is dropped.
    fn watch(&self, sink: ChangeSink) -> Result<Watch, StoreError>;
    /// What the nodes of a cluster share besides records; `None` for a
    /// store of one machine.
    fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        None
    }
}
