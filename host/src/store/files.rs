//! The embedded backend: one pretty-printed JSON file per account,
//! `<data_dir>/accounts/<id>.json` (mode 0600, folder 0700).
//!
//! - **Atomic, durable writes** ([`super::durable`]): a crash at any moment
//!   leaves either the old or the new file, never a partial one.
//! - **A file that does not parse is never overwritten.** Loading skips it
//!   with a warning naming the file and the cause; an update or upsert that
//!   would touch it is refused with an error naming the file.
//! - **Writes to one account are serialised**, within the process (a per-id
//!   mutex) and across processes (an exclusive lock on the sidecar file
//!   `accounts/.<id>.lock`); every change is a read-modify-write inside that
//!   lock. Upserts (which look an account up by email) are also serialised
//!   store-wide through `accounts/.lock`, so two processes adding the same
//!   email cannot create two accounts.
//! - **Watched:** [`Backend::watch`] follows the folder (debounced; only
//!   changed files are re-read), whoever writes in it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::Watcher;

use super::durable::{self, lock_file, HeldLock};
#[cfg(unix)]
use super::durable::set_mode;
use super::file::{email_key, encode, is_valid_id, new_account_id, parse_account, peek_email, AccountFile};
use super::upsert::UpsertOutcome;
use super::backend::{io_err, Backend, Change, ChangeSink, LoadReport, SkippedFile, StoreError, Updated, Watch};

/// Name of the folder, inside the data directory, that holds the account files.
pub const ACCOUNTS_DIR_NAME: &str = "accounts";

/// How long the watcher gathers changes before re-reading the files.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// The file backend of one data directory. `Send + Sync`. Several
/// `FileStore`s (in one or several processes) on the same directory are
/// safe: writes are serialised through lock files.
pub struct FileStore {
    dir: PathBuf,
    /// In-process per-id locks; an entry lives while someone holds or waits for it.
    id_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// In-process half of the store-wide upsert lock.
    upsert_lock: Mutex<()>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("accounts_dir", &self.dir).finish()
    }
}

/// Result of one attempt to apply an upsert to the account an email matched.
enum Attempt {
    Done(Box<UpsertOutcome>),
    /// The matched file disappeared (removed meanwhile): look again.
    Vanished,
}

impl FileStore {
    /// Opens the store of `data_dir`, creating `data_dir` (mode 0700) and
    /// `data_dir/accounts` (mode 0700; an existing folder open to group or
    /// others is tightened to 0700) when missing. Removes the temporary
    /// files of writers that died mid-write.
    pub fn open(data_dir: &Path) -> Result<FileStore, StoreError> {
        let dir = data_dir.join(ACCOUNTS_DIR_NAME);
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(io_err("create directory", &dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(&dir).map_err(io_err("read metadata of", &dir))?;
            if meta.permissions().mode() & 0o077 != 0 {
                set_mode(&dir, 0o700).map_err(io_err("set mode 0700 on", &dir))?;
                tracing::info!(dir = %dir.display(), "accounts folder was open to other users; set to mode 0700");
            }
        }
        let store = FileStore { dir, id_locks: Mutex::new(HashMap::new()), upsert_lock: Mutex::new(()) };
        durable::remove_orphan_tmp(&store.dir, |id| store.lock_path(id));
        Ok(store)
    }

    /// The folder holding the account files (`<data_dir>/accounts`).
    pub fn accounts_dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file of account `id` is: `<accounts_dir>/<id>.json`.
    /// Meaningful only for ids that pass [`is_valid_id`].
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The account id of an account file path: `"<dir>/x.json"` → `"x"`.
    /// `None` for anything the store does not load (not `.json`, a dot-file,
    /// a temporary or lock file, an invalid id). For the directory watcher.
    pub fn id_from_path(path: &Path) -> Option<String> {
        let name = path.file_name()?.to_str()?;
        let id = name.strip_suffix(".json")?;
        is_valid_id(id).then(|| id.to_string())
    }

    fn lock_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!(".{id}.lock"))
    }

    fn check_id(&self, id: &str) -> Result<(), StoreError> {
        if is_valid_id(id) {
            Ok(())
        } else {
            Err(StoreError::InvalidId { id: id.to_string(), place: self.location() })
        }
    }

    /// Runs `f` holding the in-process and the cross-process lock of `id`.
    fn with_id_lock<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut HeldLock) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let slot = {
            let mut map = self
                .id_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.entry(id.to_string()).or_default().clone()
        };
        let result = {
            let _guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            lock_file(&self.lock_path(id)).and_then(|mut held| f(&mut held))
        };
        let mut map = self
            .id_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Only the map and `slot` refer to it: nobody else holds or waits.
        if Arc::strong_count(&slot) == 2 {
            map.remove(id);
        }
        result
    }

    /// Runs `f` holding the store-wide upsert lock (in-process and
    /// `accounts/.lock`). Lock order: upsert lock, then id lock.
    fn with_upsert_lock<R>(
        &self,
        f: impl FnOnce() -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _guard = self
            .upsert_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _held = lock_file(&self.dir.join(".lock"))?;
        f()
    }

    /// Reads the file of `id`: `None` when missing, `Corrupt` when it does not
    /// parse. Returns the bytes too, to skip rewriting identical content.
    fn read_account(&self, id: &str) -> Result<Option<(AccountFile, Vec<u8>)>, StoreError> {
        let path = self.path_of(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        match parse_account(&bytes) {
            Ok(mut account) => {
                if account.id != id {
                    if !account.id.is_empty() {
                        tracing::warn!(
                            file = %path.display(),
                            "account file says id {:?}; using its file name's id {:?}",
                            account.id,
                            id
                        );
                    }
                    account.id = id.to_string();
                }
                Ok(Some((account, bytes)))
            }
            Err(cause) => Err(StoreError::Corrupt {
                id: id.to_string(),
                path,
                cause,
            }),
        }
    }

    /// Writes `account` atomically and durably unless its encoding equals
    /// `previous`. Returns whether the file was written. Call with the id lock held.
    fn write_account(
        &self,
        account: &AccountFile,
        previous: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let bytes = encode(account);
        if previous == Some(bytes.as_slice()) {
            return Ok(false);
        }
        durable::write_atomic(&self.path_of(&account.id), &account.id, &bytes)?;
        Ok(true)
    }

    /// Reads every account file. Files that cannot be read or do not parse
    /// are skipped, each logged with `warn` (field `file`) and listed in
    /// [`LoadReport::skipped`]; they are never modified. Dot-files, `*.tmp`
    /// and anything not `*.json` are ignored.
    fn load_report(&self) -> LoadReport {
        let mut report = LoadReport::default();
        let (files, dir_error) = self.list_files();
        if let Some(skipped) = dir_error {
            report.skipped.push(skipped);
        }
        for (id, path) in files {
            match self.read_account(&id) {
                Ok(Some((account, _))) => report.accounts.push(account),
                Ok(None) => {} // removed since listed
                Err(e) => {
                    let (cause, email) = match &e {
                        StoreError::Corrupt { cause, .. } => (
                            cause.clone(),
                            fs::read(&path).ok().and_then(|b| peek_email(&b)),
                        ),
                        other => (other.to_string(), None),
                    };
                    tracing::warn!(
                        file = %path.display(),
                        cause = %cause,
                        "skipping account file {}: {cause}; it is left untouched: fix it by hand or delete it",
                        path.display()
                    );
                    report.skipped.push(SkippedFile { path, id: Some(id), cause, email });
                }
            }
        }
        report
            .accounts
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        report
    }

    /// The account files in the folder, sorted by id, and an entry for the
    /// folder itself when it cannot be listed.
    fn list_files(&self) -> (Vec<(String, PathBuf)>, Option<SkippedFile>) {
        let dir = &self.dir;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                let cause = format!("cannot list the accounts folder: {e}");
                tracing::warn!(file = %dir.display(), cause = %cause, "no accounts loaded from {}: {cause}", dir.display());
                return (
                    Vec::new(),
                    Some(SkippedFile {
                        path: dir.clone(),
                        id: None,
                        cause,
                        email: None,
                    }),
                );
            }
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let path = e.path();
                let id = Self::id_from_path(&path)?;
                // Follow symlinks; skip folders.
                fs::metadata(&path).ok().filter(|m| m.is_file())?;
                Some((id, path))
            })
            .collect();
        files.sort();
        (files, None)
    }

    /// The account `id`: `None` when it has no file; `Corrupt` when its file
    /// does not parse.
    fn load(&self, id: &str) -> Result<Option<AccountFile>, StoreError> {
        self.check_id(id)?;
        Ok(self.read_account(id)?.map(|(a, _)| a))
    }

    /// The oldest parsed account with this email; `Corrupt` if no parsed one
    /// matches but a file that does not parse carries this email.
    fn find_email(&self, email: &str) -> Result<Option<AccountFile>, StoreError> {
        let wanted = email_key(email);
        if wanted.is_empty() {
            return Ok(None);
        }
        let (files, _) = self.list_files();
        let mut found: Option<AccountFile> = None;
        let mut corrupt: Option<StoreError> = None;
        let mut matches = 0;
        for (id, path) in files {
            match self.read_account(&id) {
                Ok(Some((account, _))) => {
                    if email_key(&account.email) == wanted {
                        matches += 1;
                        let older = found.as_ref().is_none_or(|f| {
                            (account.created_at, &account.id) < (f.created_at, &f.id)
                        });
                        if older {
                            found = Some(account);
                        }
                    }
                }
                Ok(None) => {}
                Err(e @ StoreError::Corrupt { .. }) => {
                    let peeked = fs::read(&path).ok().and_then(|b| peek_email(&b));
                    if corrupt.is_none() && peeked.is_some_and(|p| email_key(&p) == wanted) {
                        corrupt = Some(e);
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), cause = %e, "could not read account file: {e}");
                }
            }
        }
        if matches > 1 {
            if let Some(f) = &found {
                tracing::warn!(
                    email = %email,
                    "{matches} account files have email {email}; using the oldest, {}",
                    f.id
                );
            }
        }
        match (found, corrupt) {
            (Some(a), _) => Ok(Some(a)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Locked read-modify-write of account `id` (see [`Backend::update`]).
    fn update_locked(&self, id: &str, change: &mut dyn FnMut(&mut AccountFile) -> bool) -> Result<Updated, StoreError> {
        self.check_id(id)?;
        self.with_id_lock(id, |held| {
            let Some((mut account, bytes)) = self.read_account(id)? else {
                held.unlink = true;
                return Err(StoreError::NotFound { id: id.to_string(), place: self.path_of(id).display().to_string() });
            };
            if !change(&mut account) {
                return Ok(Updated { account, applied: false });
            }
            account.id = id.to_string();
            account.normalize();
            self.write_account(&account, Some(&bytes))?;
            Ok(Updated { account, applied: true })
        })
    }

    /// Under the upsert lock, find the account by email and apply `decide`
    /// to it inside its id lock, or create the account `decide(None)` returns.
    fn upsert_locked(
        &self,
        email: &str,
        decide: &dyn Fn(Option<&AccountFile>) -> UpsertOutcome,
    ) -> Result<UpsertOutcome, StoreError> {
        self.with_upsert_lock(|| loop {
            let Some(found) = self.find_email(email)? else {
                return self.create(decide(None));
            };
            let attempt = self.with_id_lock(&found.id, |_| {
                let Some((current, bytes)) = self.read_account(&found.id)? else {
                    return Ok(Attempt::Vanished);
                };
                let mut outcome = decide(Some(&current));
                outcome.account.id = current.id.clone();
                outcome.changed = self.write_account(&outcome.account, Some(&bytes))?;
                Ok(Attempt::Done(Box::new(outcome)))
            })?;
            match attempt {
                Attempt::Done(outcome) => return Ok(*outcome),
                Attempt::Vanished => continue,
            }
        })
    }

    /// Writes a new account; its id is replaced by a fresh one when a file
    /// (even one that does not parse) already has it or it is invalid.
    fn create(&self, mut outcome: UpsertOutcome) -> Result<UpsertOutcome, StoreError> {
        if !is_valid_id(&outcome.account.id) {
            outcome.account.id = new_account_id();
        }
        loop {
            let id = outcome.account.id.clone();
            let written = self.with_id_lock(&id, |_| {
                if fs::symlink_metadata(self.path_of(&id)).is_ok() {
                    return Ok(false);
                }
                self.write_account(&outcome.account, None)?;
                Ok(true)
            })?;
            if written {
                outcome.created = true;
                outcome.changed = true;
                return Ok(outcome);
            }
            outcome.account.id = new_account_id();
        }
    }

    /// Deletes the file of account `id` (even one that does not parse).
    fn remove_file(&self, id: &str) -> Result<bool, StoreError> {
        self.check_id(id)?;
        self.with_id_lock(id, |held| {
            held.unlink = true;
            let path = self.path_of(id);
            match fs::remove_file(&path) {
                Ok(()) => {
                    durable::sync_dir(&self.dir)?;
                    Ok(true)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_err("delete", &path)(e)),
            }
        })
    }
}


#[cfg(test)]
impl FileStore {
    /// How many per-id lock entries are alive (none once nobody holds one).
    pub(super) fn id_lock_entries(&self) -> usize {
        self.id_locks.lock().unwrap().len()
    }
}

impl Backend for FileStore {
    fn location(&self) -> String {
        format!("accounts folder {}", self.dir.display())
    }

    fn load_all(&self) -> LoadReport {
        self.load_report()
    }

    fn get(&self, id: &str) -> Result<Option<AccountFile>, StoreError> {
        self.load(id)
    }

    fn find_by_email(&self, email: &str) -> Result<Option<AccountFile>, StoreError> {
        self.find_email(email)
    }

    fn upsert_with(
        &self,
        email: &str,
        decide: &dyn Fn(Option<&AccountFile>) -> UpsertOutcome,
    ) -> Result<UpsertOutcome, StoreError> {
        self.upsert_locked(email, decide)
    }

    fn update(&self, id: &str, change: &mut dyn FnMut(&mut AccountFile) -> bool) -> Result<Updated, StoreError> {
        self.update_locked(id, change)
    }

    fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.check_id(id)?;
        self.remove_file(id)
    }

    fn watch(&self, sink: ChangeSink) -> Result<Watch, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            for p in event.paths {
                if p.extension().is_some_and(|e| e == "json") {
                    let _ = tx.send(p);
                }
            }
        })
        .map_err(|e| watch_err(&self.dir, e))?;
        watcher
            .watch(&self.dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| watch_err(&self.dir, e))?;
        let reader = FileStore { dir: self.dir.clone(), id_locks: Mutex::new(HashMap::new()), upsert_lock: Mutex::new(()) };
        std::thread::Builder::new()
            .name("accounts-watch".into())
            .spawn(move || {
                // Ends when the watcher (the channel's sender) is dropped.
                while let Ok(first) = rx.recv() {
                    let mut changed = HashSet::from([first]);
                    std::thread::sleep(DEBOUNCE);
                    changed.extend(rx.try_iter());
                    for path in changed {
                        let Some(id) = FileStore::id_from_path(&path) else { continue };
                        sink(match reader.load(&id) {
                            Ok(Some(file)) => Change::Upserted(file),
                            Ok(None) => Change::Removed(id),
                            Err(e) => Change::Unreadable { id, cause: e.to_string() },
                        });
                    }
                }
            })
            .map_err(io_err("start a watcher thread for", &self.dir))?;
        Ok(Watch::new(watcher))
    }
}

fn watch_err(dir: &Path, e: notify::Error) -> StoreError {
    StoreError::Io { action: "watch", path: dir.to_path_buf(), error: io::Error::other(e.to_string()) }
}

