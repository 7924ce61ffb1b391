//! Durable writes and locks for the file backend: temp file, fsync, rename,
//! fsync of the folder (a crash leaves the old file or the new one, never a
//! part); exclusive lock files that serialise writers across processes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::backend::{io_err, StoreError};

/// An exclusive lock on a lock file, held until dropped. With `unlink` set the
/// lock file is removed (still locked) before the lock is released.
pub(crate) struct HeldLock {
    path: PathBuf,
    file: Option<File>,
    /// Remove the lock file (still locked) before releasing it.
    pub unlink: bool,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.unlink {
            let _ = fs::remove_file(&self.path);
        }
        // Closing the file releases the lock.
        self.file.take();
    }
}

/// Whether the lock file we hold is still the one at `path` (it may have been
/// unlinked by a `remove` while we waited for it).
#[cfg(unix)]
fn still_linked(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_linked(path: &Path, _file: &File) -> bool {
    path.exists()
}

fn open_private(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Takes the cross-process exclusive lock on `path` (created if missing).
pub(crate) fn lock_file(path: &Path) -> Result<HeldLock, StoreError> {
    loop {
        let file = open_private(path).map_err(|error| StoreError::Lock {
            path: path.to_path_buf(),
            error,
        })?;
        match file.lock() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                tracing::warn!(
                    file = %path.display(),
                    "file locks are not supported here; writes from other processes are not serialised"
                );
                return Ok(HeldLock {
                    path: path.to_path_buf(),
                    file: Some(file),
                    unlink: false,
                });
            }
            Err(error) => {
                return Err(StoreError::Lock {
                    path: path.to_path_buf(),
                    error,
                })
            }
        }
        if still_linked(path, &file) {
            return Ok(HeldLock {
                path: path.to_path_buf(),
                file: Some(file),
                unlink: false,
            });
        }
        // The file we locked was unlinked meanwhile: lock the current one.
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}


/// Writes `bytes` to `path` atomically and durably, through a temporary
/// file `.<prefix>.XXXXXX.tmp` in the same folder (mode 0600).
pub(crate) fn write_atomic(path: &Path, prefix: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{prefix}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err("create a temporary file in", dir))?;
    #[cfg(unix)]
    set_mode(tmp.path(), 0o600).map_err(io_err("set mode 0600 on", tmp.path()))?;
    tmp.write_all(bytes).map_err(io_err("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("sync", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| io_err("replace", path)(e.error))?;
    sync_dir(dir)
}

/// Takes the lock on `path` only if nobody holds it (`None`: a writer
/// holds it now).
pub(crate) fn try_lock_file(path: &Path) -> Option<HeldLock> {
    let file = open_private(path).ok()?;
    file.try_lock().ok()?;
    still_linked(path, &file).then(|| HeldLock { path: path.to_path_buf(), file: Some(file), unlink: false })
}

/// Removes the temporary files `.<id>.XXXXXX.tmp` in `dir` whose writer is
/// gone: a writer holds the account's lock file (`lock_of(id)`) from
/// creating its temporary file to renaming it, so a temporary file whose
/// lock nobody holds was left by a process that died mid-write (SIGKILL,
/// power loss). Those of live writers (another grantpool process) are left.
pub(crate) fn remove_orphan_tmp(dir: &Path, lock_of: impl Fn(&str) -> PathBuf) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(id) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")).and_then(|n| n.rsplit_once('.')).map(|(id, _)| id) else {
            continue;
        };
        let Some(_held) = try_lock_file(&lock_of(id)) else { continue };
        if fs::remove_file(&path).is_ok() {
            tracing::info!(file = %path.display(), "removed a temporary file left by an interrupted write");
        }
    }
}
