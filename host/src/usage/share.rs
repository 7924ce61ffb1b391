//! Cluster mode: each node keeps its own database and adds each committed
//! batch's hourly sums to Redis — one hash per hour,
//! `<prefix>:usage:h:<hour-unix-secs>`, a field per
//! `key␟account␟client_model␟upstream_model␟protocol␟metric` — so any node
//! answers for the whole cluster, at hour granularity. While Redis is away
//! the sums wait here, merged (their size grows with the distinct hours ×
//! keys × accounts × models, not with requests), and go with a later batch.
//!
//! Each batch counts once: it carries the node's next number and a script
//! in Redis applies it only when that number is above the last one applied
//! for this node, so a batch whose answer was lost (applied or not) is sent
//! again as it was, under its number, and never counted twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::row::{HourKey, Sums, HOUR_MS};
use super::error::UsageError;
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
/// How long Redis remembers a node's last applied batch (longer than any
/// outage a batch would be sent again after).
const APPLIED_TTL_SECS: u64 = 30 * 86_400;
/// Applies one batch unless its number was applied already: KEYS[1] the
/// node's last number; ARGV: the number, its TTL, the hourly hashes' TTL,
/// then (hash, field, increment) triples.
const APPLY: &str = r"
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local i = 4
while i + 2 <= #ARGV do
  redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  redis.call('EXPIRE', ARGV[i], ARGV[3])
  i = i + 3
end
return 1
";

/// Sums on their way to Redis under one number.
pub(crate) struct Batch {
    seq: u64,
    /// (hourly hash, field, increment).
    adds: Vec<(String, String, i64)>,
}

/// The share of one node.
pub(crate) struct Share {
    redis: Redis,
    prefix: String,
    ttl_secs: u64,
    /// `<prefix>:usage:applied:<random id of this process>`.
    applied_key: String,
    apply: redis::Script,
    state: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    sums: HashMap<HourKey, Sums>,
    /// A batch sent without an answer (applied or not): sent again as it
    /// is before anything new (at most one: a failure stops the push).
    unsure: Option<Batch>,
    /// The number of the last batch made.
    seq: u64,
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
        Ok(Share {
            redis,
            prefix: prefix.to_string(),
            ttl_secs: u64::from(aggregate_days.max(1)) * 86_400,
            applied_key: format!("{prefix}:usage:applied:{:016x}", rand::random::<u64>()),
            apply: redis::Script::new(APPLY),
            state: Mutex::new(Pending::default()),
        })
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
        if (state.sums.is_empty() && state.unsure.is_none()) || (!force && state.retry_at.is_some_and(|t| Instant::now() < t)) {
            return;
        }
        // The batch left unanswered last time goes first, as it was.
        if let Some(batch) = state.unsure.take() {
            if let Err(cause) = self.send(&batch) {
                state.unsure = Some(batch);
                self.failed(&mut state, &cause);
                return;
            }
        }
        // In chunks, each its own batch: after a long outage no one script
        // call is huge.
        let waiting: Vec<HourKey> = state.sums.keys().cloned().collect();
        for chunk in waiting.chunks(PUSH_CHUNK) {
            state.seq += 1;
            let mut batch = Batch { seq: state.seq, adds: Vec::new() };
            for k in chunk {
                let Some(s) = state.sums.remove(k) else { continue };
                let key = self.hour_key(k.hour_ms);
                let base = [&k.key, &k.account, &k.client_model, &k.upstream_model, &k.protocol].map(|p| p.replace(SEP, "?")).join("\x1f");
                for (metric, n) in s.metrics() {
                    if n > 0 {
                        batch.adds.push((key.clone(), format!("{base}{SEP}{metric}"), n as i64));
                    }
                }
            }
            if let Err(cause) = self.send(&batch) {
                state.unsure = Some(batch);
                self.failed(&mut state, &cause);
                return;
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

    /// Applies `batch` in Redis (once, whatever was sent before); `Err`:
    /// Redis did not answer, and whether it applied the batch is unknown.
    pub(crate) fn send(&self, batch: &Batch) -> Result<(), String> {
        let mut call = self.apply.prepare_invoke();
        call.key(&self.applied_key).arg(batch.seq).arg(APPLIED_TTL_SECS).arg(self.ttl_secs);
        for (hash, field, n) in &batch.adds {
            call.arg(hash).arg(field).arg(*n);
        }
        self.redis.run(|con| call.invoke::<i64>(con)).map(drop).map_err(|f| f.cause)
    }

    /// A push failed: later ones wait [`BACKOFF`]; logged once per outage.
    fn failed(&self, state: &mut Pending, cause: &str) {
        state.retry_at = Some(Instant::now() + BACKOFF);
        if !state.down {
            state.down = true;
            tracing::warn!(redis = %self.place(), cause, waiting = state.sums.len(), "usage sums wait for Redis");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_sent_twice_counts_once_and_a_later_one_counts() {
        if !std::path::Path::new("/usr/bin/redis-server").exists() {
            eprintln!("skipped: no /usr/bin/redis-server");
            return;
        }
        let server = crate::store::cluster::tests::Server::start();
        let share = Share::open(&format!("redis://127.0.0.1:{}/0", server.port), "unit", 1).unwrap();
        let hour = 1_700_002_800_000u64;
        let field = ["k", "acc", "m", "m-up", "openai", "requests"].join("\x1f");
        let batch = |seq: u64, n: i64| Batch { seq, adds: vec![(share.hour_key(hour), field.clone(), n)] };
        let total = |share: &Share| share.read(hour, hour).unwrap().into_iter().map(|(_, s)| s.requests).sum::<u64>();
        // The answer to the first send was lost; the same batch goes again.
        share.send(&batch(1, 5)).unwrap();
        share.send(&batch(1, 5)).unwrap();
        assert_eq!(total(&share), 5);
        share.send(&batch(2, 3)).unwrap();
        assert_eq!(total(&share), 8);
        // Another process (another node, or this one restarted) has numbers of its own.
        let other = Share::open(&format!("redis://127.0.0.1:{}/0", server.port), "unit", 1).unwrap();
        other.send(&batch(1, 1)).unwrap();
        assert_eq!(total(&share), 9);
    }
}
