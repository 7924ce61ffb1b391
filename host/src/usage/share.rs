//! Cluster mode: each node keeps its own database and adds each committed
//! batch's hourly sums to Redis — one hash per hour,
//! `<prefix>:usage:h:<hour-unix-secs>`, a field per
//! `key␟account␟client_model␟upstream_model␟protocol␟metric` — so any node
//! answers for the whole cluster, at hour granularity. While Redis is away
//! the sums wait here, merged (their size grows with the distinct hours ×
//! keys × accounts × models, not with requests), and go with a later batch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::row::{HourKey, Sums, HOUR_MS};
use super::UsageError;
use crate::store::cluster::conn::Redis;

/// The field separator (ASCII unit separator; replaced in names).
const SEP: char = '\x1f';
/// Most distinct aggregates kept while Redis is away; beyond, new ones are
/// dropped (counted in the log line).
const PENDING_MAX: usize = 100_000;
/// After a failed push, later batches wait this long before trying again
/// (a down Redis must not slow every batch by a connect timeout).
const BACKOFF: Duration = Duration::from_secs(5);
/// Aggregates sent in one pipeline (7 fields each at most).
const PUSH_CHUNK: usize = 2000;
/// Longest wait for Redis when answering a query.
const READ_WITHIN: Duration = Duration::from_secs(5);

/// The share of one node.
pub(crate) struct Share {
    redis: Redis,
    prefix: String,
    ttl_secs: u64,
    state: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    sums: HashMap<HourKey, Sums>,
    retry_at: Option<Instant>,
    /// Whether the last push failed (one log line per transition).
    down: bool,
    lost: u64,
}

impl Share {
    /// A share on `url` (not connected until the first push or query).
    pub fn open(url: &str, prefix: &str, aggregate_days: u32) -> Result<Share, UsageError> {
        let place = crate::util::redact_url(url);
        let redis = Redis::open(url, &place).map_err(|e| UsageError::Cluster { place: place.clone(), cause: e.to_string() })?;
        Ok(Share { redis, prefix: prefix.to_string(), ttl_secs: u64::from(aggregate_days.max(1)) * 86_400, state: Mutex::new(Pending::default()) })
    }

    /// Where Redis is, password hidden.
    pub fn place(&self) -> &str {
        self.redis.place()
    }

    fn hour_key(&self, hour_ms: u64) -> String {
        format!("{}:usage:h:{}", self.prefix, hour_ms / 1000)
    }

    /// Adds `deltas` to what waits and sends it all in one round trip (a
    /// few after a long outage),
    /// unless a recent failure says to wait (`force` tries anyway).
    pub fn push(&self, deltas: HashMap<HourKey, Sums>, force: bool) {
        let mut state = self.state.lock();
        for (k, s) in deltas {
            let room = state.sums.len() < PENDING_MAX;
            match state.sums.get_mut(&k) {
                Some(sum) => sum.merge(&s),
                None if room => {
                    state.sums.insert(k, s);
                }
                None => state.lost += s.requests,
            }
        }
        if state.sums.is_empty() || (!force && state.retry_at.is_some_and(|t| Instant::now() < t)) {
            return;
        }
        // In chunks, each removed once Redis took it: after a long outage
        // no one pipeline is huge, and a failure re-sends only its chunk.
        let waiting: Vec<HourKey> = state.sums.keys().cloned().collect();
        for chunk in waiting.chunks(PUSH_CHUNK) {
            let mut pipe = redis::pipe();
            let mut hours: Vec<u64> = Vec::new();
            for k in chunk {
                let s = &state.sums[k];
                let key = self.hour_key(k.hour_ms);
                let base = [&k.key, &k.account, &k.client_model, &k.upstream_model, &k.protocol].map(|p| p.replace(SEP, "?")).join("\x1f");
                for (metric, n) in s.metrics() {
                    if n > 0 {
                        pipe.hincr(&key, format!("{base}{SEP}{metric}"), n as i64).ignore();
                    }
                }
                if !hours.contains(&k.hour_ms) {
                    hours.push(k.hour_ms);
                }
            }
            for h in hours {
                pipe.expire(self.hour_key(h), self.ttl_secs as i64).ignore();
            }
            // Not atomic (MULTI would be): a connection lost halfway may
            // count part of the chunk twice on retry; rare, and bounded.
            if let Err(fail) = self.redis.run(|con| pipe.query::<()>(con)) {
                state.retry_at = Some(Instant::now() + BACKOFF);
                if !state.down {
                    state.down = true;
                    tracing::warn!(redis = %self.place(), cause = %fail.cause, waiting = state.sums.len(), "usage sums wait for Redis");
                }
                return;
            }
            for k in chunk {
                state.sums.remove(k);
            }
        }
        state.retry_at = None;
        if state.down {
            state.down = false;
            tracing::info!(redis = %self.place(), "usage sums reach the cluster again");
        }
        if state.lost > 0 {
            tracing::warn!(redis = %self.place(), requests = state.lost, "usage sums lost while Redis was away (too many waiting)");
            state.lost = 0;
        }
    }

    /// Every hourly aggregate of the cluster from the hour of `since_ms` to now.
    pub fn read(&self, since_ms: u64, now_ms: u64) -> Result<Vec<(HourKey, Sums)>, UsageError> {
        let first = since_ms / HOUR_MS * HOUR_MS;
        let hours: Vec<u64> = (first..=now_ms).step_by(HOUR_MS as usize).collect();
        let mut out: HashMap<HourKey, Sums> = HashMap::new();
        // Chunks: a year of hours in one pipeline is a large answer.
        for chunk in hours.chunks(512) {
            let mut pipe = redis::pipe();
            for h in chunk {
                pipe.hgetall(self.hour_key(*h));
            }
            let answers: Vec<HashMap<String, i64>> = self
                .redis
                .run_within(READ_WITHIN, |con| pipe.query(con))
                .map_err(|f| UsageError::Cluster { place: self.place().to_string(), cause: f.cause })?;
            for (h, fields) in chunk.iter().zip(answers) {
                for (field, n) in fields {
                    let parts: Vec<&str> = field.split(SEP).collect();
                    let [key, account, client_model, upstream_model, protocol, metric] = parts[..] else { continue };
                    let k = HourKey {
                        hour_ms: *h,
                        key: key.into(),
                        account: account.into(),
                        client_model: client_model.into(),
                        upstream_model: upstream_model.into(),
                        protocol: protocol.into(),
                    };
                    out.entry(k).or_default().add_metric(metric, n.max(0) as u64);
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}
