//! A key's counters (requests this UTC minute, requests and tokens this UTC
//! day). One small mutex per key, held for a few additions: no I/O here.
//!
//! Each window counts `base` (file mode: everything; cluster mode: the
//! shared total at the last sync), `inflight` (pushed to Redis, answer not
//! back yet) and `pending` (counted here since). A window that rolls over
//! with `pending` left moves it to `carry`, pushed by the next sync.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Which counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Requests in a UTC minute (window = unix minute).
    MinuteRequests,
    /// Requests in a UTC day (window = days since 1970-01-01).
    DayRequests,
    /// Tokens in a UTC day.
    DayTokens,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Window {
    pub id: u64,
    pub base: u64,
    pub inflight: u64,
    pub pending: u64,
}

impl Window {
    /// Everything counted in the window: `base + inflight + pending`.
    pub(super) fn total(&self) -> u64 {
        self.base + self.inflight + self.pending
    }

    /// Moves to window `id` (counts of the old one: `pending` to `carry`).
    fn roll(&mut self, id: u64, kind: Kind, carry: &mut Vec<Carry>) {
        if id != self.id {
            if self.pending > 0 {
                carry.push(Carry { kind, window: self.id, amount: self.pending });
            }
            *self = Window { id, ..Window::default() };
        }
    }
}

/// Counts of a past window not pushed to Redis yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Carry {
    pub kind: Kind,
    pub window: u64,
    pub amount: u64,
}

/// The counters of one key.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub minute: Window,
    pub day_requests: Window,
    pub day_tokens: Window,
    pub carry: Vec<Carry>,
}

impl Counters {
    /// Moves every window to the one of `now`.
    pub(super) fn roll(&mut self, now: u64) {
        let (minute, day) = (now / 60, now / 86_400);
        self.minute.roll(minute, Kind::MinuteRequests, &mut self.carry);
        self.day_requests.roll(day, Kind::DayRequests, &mut self.carry);
        self.day_tokens.roll(day, Kind::DayTokens, &mut self.carry);
    }
}

/// A key's counters and when it was last used; shared by the snapshots
/// of the key (they survive a reload).
#[derive(Debug, Default)]
pub(crate) struct KeyUse {
    pub counters: Mutex<Counters>,
    /// Unix seconds of the last admitted request (0: not since start).
    pub last_used: AtomicU64,
    /// `last_used` as last written to the backend.
    pub last_written: AtomicU64,
}

/// What one key used: this minute's requests, today's requests and tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub minute_requests: u64,
    pub day_requests: u64,
    pub day_tokens: u64,
}

impl KeyUse {
    /// The totals at `now`.
    pub fn totals(&self, now: u64) -> Totals {
        let mut c = self.counters.lock();
        c.roll(now);
        Totals { minute_requests: c.minute.total(), day_requests: c.day_requests.total(), day_tokens: c.day_tokens.total() }
    }

    /// Marks the key used at `now`.
    pub fn touch(&self, now: u64) {
        self.last_used.fetch_max(now, Ordering::Relaxed);
    }

    /// Adds tokens used today.
    pub fn spend(&self, tokens: u64, now: u64) {
        let mut c = self.counters.lock();
        c.roll(now);
        c.day_tokens.pending += tokens;
    }

    /// Raises today's tokens to `tokens` (from the usage log at start);
    /// never lowers them, so a second seed does not count twice.
    pub fn seed_tokens(&self, tokens: u64, now: u64) {
        let mut c = self.counters.lock();
        c.roll(now);
        let w = &mut c.day_tokens;
        if tokens > w.total() {
            w.base = tokens - w.inflight - w.pending;
        }
    }
}

/// What a sync pushes for one key: the current windows' counts (moved to
/// `inflight`) and the carried ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batch {
    pub minute: u64,
    pub day: u64,
    pub minute_requests: u64,
    pub day_requests: u64,
    pub day_tokens: u64,
    pub carry: Vec<Carry>,
}

impl KeyUse {
    /// Takes what is to be pushed at `now`.
    pub fn take(&self, now: u64) -> Batch {
        let mut guard = self.counters.lock();
        let c = &mut *guard;
        c.roll(now);
        let mut out = Batch { minute: c.minute.id, day: c.day_requests.id, carry: std::mem::take(&mut c.carry), ..Batch::default() };
        for (w, into) in [(&mut c.minute, &mut out.minute_requests), (&mut c.day_requests, &mut out.day_requests), (&mut c.day_tokens, &mut out.day_tokens)] {
            w.inflight += w.pending;
            *into = w.pending;
            w.pending = 0;
        }
        out
    }

    /// After a push: `totals` as Redis answered (`None`: it failed, and
    /// what was taken is counted again as not pushed).
    pub fn settle(&self, batch: Batch, totals: Option<Totals>) {
        let mut guard = self.counters.lock();
        let c = &mut *guard;
        let windows = [
            (&mut c.minute, batch.minute, batch.minute_requests, totals.map(|t| t.minute_requests), Kind::MinuteRequests),
            (&mut c.day_requests, batch.day, batch.day_requests, totals.map(|t| t.day_requests), Kind::DayRequests),
            (&mut c.day_tokens, batch.day, batch.day_tokens, totals.map(|t| t.day_tokens), Kind::DayTokens),
        ];
        for (w, id, sent, total, kind) in windows {
            let current = w.id == id;
            match total {
                Some(total) if current => {
                    w.inflight -= sent;
                    w.base = total;
                }
                Some(_) => {}
                None if current => {
                    w.inflight -= sent;
                    w.pending += sent;
                }
                None if sent > 0 => c.carry.push(Carry { kind, window: id, amount: sent }),
                None => {}
            }
        }
        if totals.is_none() {
            c.carry.extend(batch.carry);
        }
    }
}
