//! Keeps the pool in line with `accounts/`: whoever changes a file (the
//! admin API, the CLI while the proxy runs, a file copied in by hand), the
//! running pool sees it at once. Debounced; only changed files are re-read.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;

use crate::app::App;
use crate::store::Store;

/// Watch `accounts/` for the life of the app.
pub fn watch_accounts(app: Arc<App>) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
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
    })?;
    watcher.watch(app.store.accounts_dir(), notify::RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(first) = rx.recv().await {
            let mut changed = HashSet::from([first]);
            // Debounce: gather what else changes in the next moment.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while let Ok(p) = rx.try_recv() {
                changed.insert(p);
            }
            let app = app.clone();
            let _ = tokio::task::spawn_blocking(move || sync_files(&app, changed)).await;
        }
    });
    Ok(())
}

/// Bring the pool in line with these files (exist: reload; gone: forget).
pub fn sync_files(app: &App, paths: HashSet<PathBuf>) {
    for path in paths {
        let Some(id) = Store::id_from_path(&path) else { continue };
        match app.store.load(&id) {
            Ok(Some(file)) => {
                let before = app.pool.get(&id).map(|a| a.file());
                if before.as_ref() == Some(&file) {
                    continue;
                }
                let recovered = before.as_ref().is_some_and(|b| b.disabled && !file.disabled);
                app.pool.upsert_file(file.clone());
                if before.is_none() {
                    tracing::info!(account = %id, email = %file.email, "account added to the running pool");
                } else if recovered {
                    tracing::info!(account = %id, email = %file.email, "account re-enabled with a new token: back in the pool");
                } else {
                    tracing::debug!(account = %id, "account file changed: pool updated");
                }
            }
            Ok(None) => {
                if app.pool.remove(&id) {
                    tracing::info!(account = %id, "account file removed: account left the pool");
                }
            }
            Err(e) => tracing::warn!(file = %path.display(), "account file changed but cannot be read, keeping what the pool had: {e}"),
        }
    }
}

/// Re-read every file (for `POST /admin/reload`).
pub fn resync_all(app: &App) {
    let report = app.store.load_all();
    let on_disk: HashSet<String> = report.accounts.iter().map(|a| a.id.clone()).collect();
    let skipped: HashSet<String> = report
        .skipped
        .iter()
        .filter_map(|s| Store::id_from_path(&s.path))
        .collect();
    for id in app.pool.ids() {
        if !on_disk.contains(&id) && !skipped.contains(&id) {
            app.pool.remove(&id);
        }
    }
    for file in report.accounts {
        app.pool.upsert_file(file);
    }
}
