//! Traffic as the page draws it, sampled once a second off the request path:
//! the proxy's answered and failed requests (two counters in
//! [`Metrics`]) into an hour of per-second points, and each account's
//! request outcomes into a short per-minute sparkline. Each sample is also
//! a tick for the live pages (what changed in the last second).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::pool::Pool;

/// Seconds of pool traffic kept (the overview's chart: one hour).
const SECONDS_KEPT: usize = 3600;
/// The chart's step, seconds.
pub const CHART_STEP_SECS: u64 = 10;
/// An account's sparkline: this many buckets…
pub const SPARK_BUCKETS: usize = 30;
/// …of this many seconds each (the last half hour).
pub const SPARK_BUCKET_SECS: u64 = 60;

/// One second of the pool's traffic.
#[derive(Clone, Copy)]
struct Second {
    at: u64,
    requests: u32,
    errors: u32,
}

#[derive(Clone, Copy)]
struct Bucket {
    index: u64,
    requests: u32,
    failures: u32,
}

struct SlotActivity {
    last: (u32, u32),
    buckets: VecDeque<Bucket>,
}

#[derive(Default)]
struct Inner {
    seconds: VecDeque<Second>,
    last_totals: Option<(u64, u64)>,
    /// By the account's pool slot.
    slots: Vec<Option<SlotActivity>>,
}

/// An account's recent requests, per bucket, oldest first; the last bucket
/// is the one with index `end` (Unix s / `bucket_secs`).
#[derive(Debug, Clone, Serialize)]
pub struct Spark {
    /// Seconds per bucket.
    pub bucket_secs: u64,
    /// The index of the last bucket.
    pub end: u64,
    /// Requests that ended on the account.
    pub requests: Vec<u32>,
    /// Of those, the ones that failed.
    pub failures: Vec<u32>,
}

/// The pool's requests/s and errors/s over the last hour, one value per
/// step, oldest first; the last step has index `end` (Unix s / `step_secs`).
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// Seconds per step.
    pub step_secs: u64,
    /// The index of the last step.
    pub end: u64,
    /// Requests answered per second.
    pub requests: Vec<f64>,
    /// Requests answered with an error per second.
    pub errors: Vec<f64>,
}

/// The page's view of traffic.
pub struct Activity {
    inner: Mutex<Inner>,
    ticks: tokio::sync::broadcast::Sender<Arc<str>>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity { inner: Mutex::new(Inner::default()), ticks: tokio::sync::broadcast::channel(16).0 }
    }
}

impl Activity {
    /// Hear every tick (JSON: `{"t", "requests", "errors", "policy",
    /// "accounts": {id: [requests, failures, last_used_ms]}}`, the counts
    /// being those of the last second).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.ticks.subscribe()
    }

    /// Take one sample (once a second); `policy` is the policy's generation,
    /// passed on so that pages re-read the overview when it changes.
    pub fn sample(&self, now_ms: u64, pool: &Pool, metrics: &Metrics, policy: u64) {
        let now_s = now_ms / 1000;
        let (answered, errors) = metrics.totals();
        // The tick's per-account part is built only for a page that hears
        // it: with no page open, a busy pool of 10,000 accounts would build
        // and drop 10,000 JSON entries a second.
        let listened = self.ticks.receiver_count() > 0;
        let mut changed = serde_json::Map::new();
        let (requests, failed) = {
            let mut inner = self.inner.lock();
            let (dr, de) = match inner.last_totals {
                Some((a, e)) => (answered.saturating_sub(a), errors.saturating_sub(e)),
                None => (0, 0),
            };
            inner.last_totals = Some((answered, errors));
            if inner.seconds.len() >= SECONDS_KEPT {
                inner.seconds.pop_front();
            }
            inner.seconds.push_back(Second { at: now_s, requests: dr as u32, errors: de as u32 });
            let bucket = now_s / SPARK_BUCKET_SECS;
            let slots = &mut inner.slots;
            pool.for_each_account(|acc| {
                let (ok, bad) = acc.outcomes();
                let now = (ok.wrapping_add(bad), bad);
                let slot = acc.slot as usize;
                if slots.len() <= slot {
                    slots.resize_with(slot + 1, || None);
                }
                let st = slots[slot].get_or_insert_with(|| SlotActivity { last: now, buckets: VecDeque::new() });
                let delta = (now.0.wrapping_sub(st.last.0), now.1.wrapping_sub(st.last.1));
                st.last = now;
                if delta == (0, 0) {
                    return;
                }
                match st.buckets.back_mut() {
                    Some(b) if b.index == bucket => {
                        b.requests += delta.0;
                        b.failures += delta.1;
                    }
                    _ => st.buckets.push_back(Bucket { index: bucket, requests: delta.0, failures: delta.1 }),
                }
                while st.buckets.front().is_some_and(|b| b.index + SPARK_BUCKETS as u64 <= bucket) {
                    st.buckets.pop_front();
                }
                if listened {
                    changed.insert(acc.id.clone(), serde_json::json!([delta.0, delta.1, acc.last_used_ms()]));
                }
            });
            (dr, de)
        };
        if listened {
            let tick = serde_json::json!({"t": now_ms, "requests": requests, "errors": failed, "policy": policy, "accounts": changed});
            let _ = self.ticks.send(Arc::from(tick.to_string()));
        }
    }

    /// The sparkline of the account in pool slot `slot`.
    pub fn spark(&self, slot: u32, now_ms: u64) -> Spark {
        let end = now_ms / 1000 / SPARK_BUCKET_SECS;
        let (mut requests, mut failures) = (vec![0; SPARK_BUCKETS], vec![0; SPARK_BUCKETS]);
        let inner = self.inner.lock();
        if let Some(Some(st)) = inner.slots.get(slot as usize) {
            for b in &st.buckets {
                if b.index <= end && end - b.index < SPARK_BUCKETS as u64 {
                    let i = SPARK_BUCKETS - 1 - (end - b.index) as usize;
                    requests[i] = b.requests;
                    failures[i] = b.failures;
                }
            }
        }
        Spark { bucket_secs: SPARK_BUCKET_SECS, end, requests, failures }
    }

    /// The pool's traffic over the last hour.
    pub fn chart(&self, now_ms: u64) -> Chart {
        let steps = SECONDS_KEPT / CHART_STEP_SECS as usize;
        let end = now_ms / 1000 / CHART_STEP_SECS;
        let (mut requests, mut errors) = (vec![0.0; steps], vec![0.0; steps]);
        for s in &self.inner.lock().seconds {
            let step = s.at / CHART_STEP_SECS;
            if step <= end && end - step < steps as u64 {
                let i = steps - 1 - (end - step) as usize;
                requests[i] += s.requests as f64 / CHART_STEP_SECS as f64;
                errors[i] += s.errors as f64 / CHART_STEP_SECS as f64;
            }
        }
        Chart { step_secs: CHART_STEP_SECS, end, requests, errors }
    }
}
