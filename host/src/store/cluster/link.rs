//! How the link to Redis stands: up or down (with the cause), sync lag,
//! journal length. Transitions are logged here, once each — never per
//! request.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::super::backend::ClusterStatus;

/// The link's state, shared by the store, its subscriber and the coordinator.
#[derive(Debug)]
pub(crate) struct Link {
    place: String,
    up: AtomicBool,
    cause: Mutex<Option<String>>,
    lag_ms: AtomicU64,
    applied: AtomicU64,
    disconnects: AtomicU64,
    journal_len: AtomicUsize,
}

impl Link {
    /// A link to `place` (the URL, password hidden), up until told otherwise.
    pub(crate) fn new(place: &str) -> Link {
        Link {
            place: place.to_string(),
            up: AtomicBool::new(true),
            cause: Mutex::new(None),
            lag_ms: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            journal_len: AtomicUsize::new(0),
        }
    }

    /// Whether Redis answered last time.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Redis did not answer: logs it if it was up. Returns whether it was.
    pub(crate) fn down(&self, cause: &str) -> bool {
        *self.cause.lock() = Some(cause.to_string());
        let was = self.up.swap(false, Ordering::AcqRel);
        if was {
            self.disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                redis = %self.place,
                "cluster store unreachable ({}): {cause}; serving from the last known pool, and disables, cooldowns and refreshed tokens decided meanwhile are kept in the local journal until Redis is back",
                self.place
            );
        }
        was
    }

    /// Redis answers again. Returns whether it was down (the caller logs
    /// what catching up did).
    pub(crate) fn restored(&self) -> bool {
        let was_down = !self.up.swap(true, Ordering::AcqRel);
        *self.cause.lock() = None;
        was_down
    }

    /// A change from another node was applied `lag_ms` after it was sent.
    pub(crate) fn applied(&self, lag_ms: u64) {
        self.lag_ms.store(lag_ms, Ordering::Relaxed);
        self.applied.fetch_add(1, Ordering::Relaxed);
    }

    /// The journal holds `n` entries.
    pub(crate) fn set_journal_len(&self, n: usize) {
        self.journal_len.store(n, Ordering::Relaxed);
    }

    /// The state, for `/health` and `/metrics`.
    pub(crate) fn status(&self) -> ClusterStatus {
        let connected = self.is_up();
        ClusterStatus {
            connected,
            cause: if connected { None } else { self.cause.lock().clone().map(|c| format!("cluster store {} unreachable: {c}", self.place)) },
            journal_len: self.journal_len.load(Ordering::Relaxed),
            sync_lag_ms: self.lag_ms.load(Ordering::Relaxed),
            changes_applied: self.applied.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
        }
    }
}
