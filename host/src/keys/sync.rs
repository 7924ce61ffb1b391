//! Cluster mode: the keys' counters shared through Redis in batches (see
//! the module doc of [`super`]). One pipelined round trip a second for
//! every key; nothing on the request path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::cluster::conn::{Fail, Redis};

use super::counters::{Batch, Kind, KeyUse, Totals};
use super::record::yyyymmdd;

/// How often the counters are pushed and read back.
pub(crate) const EVERY: Duration = Duration::from_secs(1);
/// A minute's counter outlives its minute by two.
const MINUTE_TTL: u64 = 180;
/// A day's counter is kept three days (for `list` around midnight).
const DAY_TTL: u64 = 3 * 86_400;

fn minute_key(prefix: &str, name: &str, minute: u64) -> String {
    format!("{prefix}:keyuse:{name}:m:{minute}")
}

fn day_key(prefix: &str, name: &str, day: u64) -> String {
    format!("{prefix}:keyuse:{name}:d:{}", yyyymmdd(day))
}

/// Adds the reads of the current windows of `name` at `minute`/`day` to
/// `pipe`: two answers, `GET` of the minute and `HMGET` of the day.
fn read_into(pipe: &mut redis::Pipeline, prefix: &str, name: &str, minute: u64, day: u64) {
    pipe.cmd("GET").arg(minute_key(prefix, name, minute));
    pipe.cmd("HMGET").arg(day_key(prefix, name, day)).arg("requests").arg("tokens");
}

/// Parses the two answers of [`read_into`] per key.
fn parse(values: Vec<redis::Value>, keys: usize) -> redis::RedisResult<Vec<Totals>> {
    if values.len() != 2 * keys {
        return Err(redis::RedisError::from((redis::ErrorKind::Parse, "unexpected number of answers")));
    }
    let mut out = Vec::with_capacity(keys);
    let mut it = values.into_iter();
    while let (Some(m), Some(d)) = (it.next(), it.next()) {
        let minute: Option<u64> = redis::from_redis_value(m)?;
        let (requests, tokens): (Option<u64>, Option<u64>) = redis::from_redis_value(d)?;
        out.push(Totals { minute_requests: minute.unwrap_or(0), day_requests: requests.unwrap_or(0), day_tokens: tokens.unwrap_or(0) });
    }
    Ok(out)
}

/// The shared totals of `names` at `now` (for `list`), one round trip.
pub(crate) fn read_totals(redis: &Redis, prefix: &str, names: &[String], now: u64) -> Result<Vec<Totals>, Fail> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for name in names {
        read_into(&mut pipe, prefix, name, now / 60, now / 86_400);
    }
    redis.run(|c| pipe.query::<Vec<redis::Value>>(c).and_then(|v| parse(v, names.len())))
}

/// Adds the writes of `batch` (its carried windows too) to `pipe`; no answers.
fn push_into(pipe: &mut redis::Pipeline, prefix: &str, name: &str, batch: &Batch) {
    let current = [
        (Kind::MinuteRequests, batch.minute, batch.minute_requests),
        (Kind::DayRequests, batch.day, batch.day_requests),
        (Kind::DayTokens, batch.day, batch.day_tokens),
    ];
    for (kind, window, amount) in batch.carry.iter().map(|c| (c.kind, c.window, c.amount)).chain(current) {
        if amount == 0 {
            continue;
        }
        match kind {
            Kind::MinuteRequests => {
                let key = minute_key(prefix, name, window);
                pipe.cmd("INCRBY").arg(&key).arg(amount).ignore();
                pipe.cmd("EXPIRE").arg(&key).arg(MINUTE_TTL).ignore();
            }
            Kind::DayRequests | Kind::DayTokens => {
                let key = day_key(prefix, name, window);
                let field = if kind == Kind::DayRequests { "requests" } else { "tokens" };
                pipe.cmd("HINCRBY").arg(&key).arg(field).arg(amount).ignore();
                pipe.cmd("EXPIRE").arg(&key).arg(DAY_TTL).ignore();
            }
        }
    }
}

/// Pushes what this node counted since the last sync (`uses`, each key's
/// counters by name) and reads the shared totals back, in one pipelined
/// round trip. On failure the counts are kept for the next try;
/// `sync_down` remembers that Redis was away, so that its loss and its
/// return are logged once each.
pub(super) fn sync_counters(redis: &Redis, prefix: &str, uses: &[(String, Arc<KeyUse>)], now: u64, sync_down: &AtomicBool) {
    if uses.is_empty() {
        return;
    }
    let batches: Vec<Batch> = uses.iter().map(|(_, u)| u.take(now)).collect();
    let mut pipe = redis::pipe();
    for ((name, _), batch) in uses.iter().zip(&batches) {
        push_into(&mut pipe, prefix, name, batch);
        read_into(&mut pipe, prefix, name, batch.minute, batch.day);
    }
    let answer = redis.run(|c| pipe.query::<Vec<redis::Value>>(c).and_then(|v| parse(v, uses.len())));
    match answer {
        Ok(totals) => {
            if sync_down.swap(false, Ordering::Relaxed) {
                tracing::info!(place = %redis.place(), "the keys' counters are shared through Redis again");
            }
            for ((_, usage), (batch, t)) in uses.iter().zip(batches.into_iter().zip(totals)) {
                usage.settle(batch, Some(t));
            }
        }
        Err(f) => {
            if !sync_down.swap(true, Ordering::Relaxed) {
                tracing::warn!(place = %redis.place(), cause = %f.cause, "cannot share the keys' counters through Redis; each node counts alone until it returns");
            }
            for ((_, usage), batch) in uses.iter().zip(batches) {
                usage.settle(batch, None);
            }
        }
    }
}
