//! The account store: the only writer of account records, behind one
//! interface ([`Backend`]) so that where records live is a module of its own.
//!
//! - [`file`]: the record format (SPEC "Accounts on disk"), the same for
//!   every backend; unknown fields kept, reasons trimmed, no token in `Debug`.
//! - [`upsert`]: the upsert and import rules, pure functions.
//! - [`import`]: reading an Antigravity-Manager data directory.
//! - [`backend`]: the interface a backend implements, and the store's errors.
//! - [`durable`]: atomic, durable writes and cross-process locks.
//! - [`files`]: the embedded backend, one JSON file per account in
//!   `<data_dir>/accounts/` (mode 0600, folder 0700).
//! - [`cluster`]: the cluster backend, the same records in Redis, shared by
//!   several nodes (changes published, a local journal while Redis is away).
//!
//! [`Store`] is what the rest of the host uses: it applies the rules
//! (validation, upsert decisions, the precondition of an update) and leaves
//! finding, locking and writing to the backend. A change applied under the
//! backend's lock is a read-modify-write: a `disable` racing an upsert never
//! loses either. Everything here is synchronous; async callers run it on
//! tokio's blocking pool.

pub mod backend;
pub mod cluster;
pub(crate) mod durable;
mod error;
pub mod file;
pub mod files;
pub mod import;
pub mod upsert;

use std::path::Path;
use std::sync::Arc;

pub use file::{
    is_valid_id, new_account_id, trim_reason, unix_now, AccountFile, ModelFamily, ModelQuota, PersistedCooldown, QuotaWindow, TokenData,
    REASON_MAX_BYTES,
};
pub use backend::{
    Backend, Change, ChangeSink, Cluster, ClusterStatus, GuardLimits, LoadReport, SessionBinding, SkippedFile, StoreError, Updated, Watch,
};
pub use files::FileStore;
pub use import::{ImportEntry, ImportReport};
pub use upsert::{import_decision, upsert_decision, ImportedAccount, NewAccount, UpsertOutcome};

/// The account store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("location", &self.backend.location()).finish()
    }
}

impl Store {
    /// The file store of `data_dir` (see [`FileStore::open`]).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Ok(Store::with_backend(Arc::new(FileStore::open(data_dir)?)))
    }

    /// A store over `backend`.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Store {
        Store { backend }
    }

    /// Where the accounts are, for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Every account, oldest `created_at` first (then by id); unreadable
    /// records are skipped with a warning naming them.
    pub fn load_all(&self) -> LoadReport {
        self.backend.load_all()
    }

    /// The account `id`: `None` when there is none; `Corrupt` when its record
    /// does not parse.
    pub fn load(&self, id: &str) -> Result<Option<AccountFile>, StoreError> {
        self.check_id(id)?;
        self.backend.get(id)
    }

    /// The account whose id is `id_or_email`, else the one whose email equals
    /// it ignoring case (the oldest when several do). `Corrupt` when the
    /// matching record does not parse (for an email: a record that is JSON
    /// with that `email` but not a valid account).
    pub fn find(&self, id_or_email: &str) -> Result<Option<AccountFile>, StoreError> {
        let key = id_or_email.trim();
        if is_valid_id(key) {
            if let Some(account) = self.backend.get(key)? {
                return Ok(Some(account));
            }
        }
        self.backend.find_by_email(key)
    }

    /// Read-modify-write of account `id`: applies `change`, stores the result
    /// (not at all when nothing changed) and returns it. The id cannot be
    /// changed; reasons are trimmed to [`REASON_MAX_BYTES`].
    pub fn update(&self, id: &str, mut change: impl FnMut(&mut AccountFile)) -> Result<AccountFile, StoreError> {
        self.update_if(id, |_| true, |a| change(a)).map(|u| u.account)
    }

    /// Like [`Store::update`], but only when `precondition` holds on the
    /// stored record, checked under the same lock as the write (e.g. "the
    /// refresh token that failed is still the stored one").
    pub fn update_if(
        &self,
        id: &str,
        precondition: impl Fn(&AccountFile) -> bool,
        mut change: impl FnMut(&mut AccountFile),
    ) -> Result<Updated, StoreError> {
        self.check_id(id)?;
        self.backend.update(id, &mut |a| {
            if !precondition(a) {
                return false;
            }
            change(a);
            true
        })
    }

    /// Adds or updates an account by email (see [`upsert_decision`] for the
    /// rules). Refused (`Corrupt`) when the account with this email has a
    /// record that does not parse; `InvalidAccount` when the email or the
    /// refresh token is empty.
    pub fn upsert(&self, new: NewAccount) -> Result<UpsertOutcome, StoreError> {
        upsert::validate_new(&new)?;
        self.backend.upsert_with(&new.email, &|existing| upsert_decision(existing, &new, unix_now()))
    }

    /// Deletes account `id` (even one that does not parse). Returns whether
    /// there was one.
    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.check_id(id)?;
        self.backend.remove(id)
    }

    /// Calls `sink` with every change to the accounts until the returned
    /// [`Watch`] is dropped.
    pub fn watch(&self, sink: impl Fn(Change) + Send + Sync + 'static) -> Result<Watch, StoreError> {
        self.backend.watch(Arc::new(sink))
    }

    /// Imports the accounts of an Antigravity-Manager data directory: the
    /// `*.json` files of `dir/accounts/`, or of `dir` itself when it has no
    /// `accounts` folder. Each is upserted by email with the rules of
    /// [`import_decision`] (an imported disabled account stays disabled).
    /// A file that cannot be read or is not an account is listed in
    /// [`ImportReport::failed`] (and logged) and skipped. Running it twice
    /// changes nothing the second time.
    pub fn import_antigravity(&self, dir: &Path) -> ImportReport {
        let mut source = import::read_source(dir);
        let mut report = ImportReport { source_dir: source.dir.clone(), ..Default::default() };
        for (path, src) in std::mem::take(&mut source.accounts) {
            let now = unix_now();
            match self.backend.upsert_with(&src.account.email, &|existing| import_decision(existing, &src, now)) {
                Ok(outcome) => report.imported.push(ImportEntry {
                    source: path,
                    id: outcome.account.id.clone(),
                    email: outcome.account.email.clone(),
                    created: outcome.created,
                    recovered: outcome.recovered,
                    changed: outcome.changed,
                }),
                Err(e) => source.fail(path, e.to_string()),
            }
        }
        report.failed = source.failed;
        report
    }

    /// What the nodes of a cluster share besides records (leases, the storm
    /// guard's window, session bindings); `None` for the file store.
    pub fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        self.backend.cluster()
    }

    /// Writes every account to `dir/<id>.json` in the account-file format
    /// (atomic, mode 0600; `dir` created with mode 0700), whatever the
    /// backend: `accounts export`. Returns the accounts written and the
    /// records that could not be read (not written).
    pub fn export(&self, dir: &Path) -> Result<LoadReport, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(backend::io_err("create directory", dir))?;
        let report = self.backend.load_all();
        for account in &report.accounts {
            durable::write_atomic(&dir.join(format!("{}.json", account.id)), &account.id, &file::encode(account))?;
        }
        Ok(report)
    }

    fn check_id(&self, id: &str) -> Result<(), StoreError> {
        if is_valid_id(id) {
            Ok(())
        } else {
            Err(StoreError::InvalidId { id: id.to_string(), place: self.backend.location() })
        }
    }
}

#[cfg(test)]
mod tests;
