//! The checks of a key against its limits: the model it asks for, its
//! requests this UTC minute and tokens this UTC day (counted in
//! [`super::counters`]), its expiry and revocation.

use super::admission::KeyRefusal;
use super::record::{fmt_clock, fmt_utc, model_allowed, NamedKey};

/// Checks the model and the limits of `key` at `now`, and counts the
/// request when it passes.
pub(crate) fn check(key: &NamedKey, model: &str, now: u64) -> Result<(), KeyRefusal> {
    let r = &key.record;
    if !model_allowed(&r.models, model) {
        return Err(KeyRefusal {
            status: 403,
            limit: "model",
            message: format!(
                "key {:?} may not use model {model:?}; it may use: {}. Ask the pool's admin to allow it: grantpool keys edit {} --models GLOB…",
                r.name,
                r.models.join(", "),
                r.name
            ),
            retry_after_secs: None,
        });
    }
    let mut c = key.usage.counters.lock();
    c.roll(now);
    if let Some(limit) = r.requests_per_minute {
        if c.minute.total() >= u64::from(limit) {
            let reset = (now / 60 + 1) * 60;
            return Err(KeyRefusal {
                status: 429,
                limit: "requests_per_minute",
                message: format!(
                    "key {:?} is over its limit of {limit} requests per minute; it resets in {} s (at {}). Ask the pool's admin to raise it: grantpool keys edit {} --requests-per-minute N",
                    r.name,
                    reset - now,
                    fmt_clock(reset),
                    r.name
                ),
                retry_after_secs: Some(reset - now),
            });
        }
    }
    if let Some(limit) = r.tokens_per_day {
        let used = c.day_tokens.total();
        if used >= limit {
            let reset = (now / 86_400 + 1) * 86_400;
            return Err(KeyRefusal {
                status: 429,
                limit: "tokens_per_day",
                message: format!(
                    "key {:?} has used {used} tokens today, over its limit of {limit} tokens per day; it resets in {} (at {}). Ask the pool's admin to raise it: grantpool keys edit {} --tokens-per-day N",
                    r.name,
                    crate::util::span((reset - now) as i64),
                    fmt_utc(reset),
                    r.name
                ),
                retry_after_secs: Some(reset - now),
            });
        }
    }
    c.minute.pending += 1;
    c.day_requests.pending += 1;
    Ok(())
}

/// Refusal of an expired or revoked key at `now` (`None`: in force).
pub(crate) fn refusal_at(key: &NamedKey, now: u64) -> Option<KeyRefusal> {
    let r = &key.record;
    if let Some(at) = r.revoked_at {
        return Some(KeyRefusal {
            status: 401,
            limit: "revoked",
            message: format!(
                "key {:?} was revoked at {}; it can no longer be used. Ask the pool's admin for a new key (grantpool keys add NAME)",
                r.name,
                fmt_utc(at)
            ),
            retry_after_secs: None,
        });
    }
    match r.expires_at {
        Some(at) if at <= now => Some(KeyRefusal {
            status: 401,
            limit: "expired",
            message: format!(
                "key {:?} expired at {}. Ask the pool's admin to extend it (grantpool keys edit {} --expires 30d) or for a new key",
                r.name,
                fmt_utc(at),
                r.name
            ),
            retry_after_secs: None,
        }),
        _ => None,
    }
}
