//! The Lua scripts: each change is one script, so that the write, the
//! revision and the change message are one atomic step on the server (no
//! lost update between nodes, and messages arrive in the order of writes).

use std::sync::LazyLock;

/// Compare-and-set of one record: writes `ARGV[2]` only if the stored
/// record is still exactly `ARGV[1]` (`''`: none), and — unless `ARGV[4]`
/// is `*` — the email index still names `ARGV[4]` (`''`: nobody); then
/// bumps the revision and publishes the change. Returns the revision, or 0
/// when something changed since it was read (the caller reads again).
///
/// KEYS: record, ids set, revision, email index. ARGV: expected record, new
/// record, id, expected index owner, channel, node, sent (Unix ms).
pub(crate) static PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return 0 end
if ARGV[4] ~= '*' then
  local owner = redis.call('GET', KEYS[4])
  if (owner or '') ~= ARGV[4] then return 0 end
  redis.call('SET', KEYS[4], ARGV[3])
end
local rev = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[5], cjson.encode({op = 'put', id = ARGV[3], rev = rev, node = ARGV[6], ts = ARGV[7], rec = ARGV[2]}))
return rev
"#,
    )
});

/// Deletes one record (and its email index entry when it names this id),
/// bumps the revision and publishes the removal. Returns `{existed (0|1),
/// revision}`.
///
/// KEYS: record, ids set, revision, email index. ARGV: id, channel, node, sent.
pub(crate) static REMOVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local existed = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
local rev = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({op = 'del', id = ARGV[1], rev = rev, node = ARGV[3], ts = ARGV[4]}))
return {existed, rev}
"#,
    )
});

/// Every record and the revision they stand at, read in one atomic step:
/// `[rev, id1, record1, id2, record2, …]`.
///
/// KEYS: ids set, revision. ARGV: record key prefix.
pub(crate) static LOAD_ALL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local out = {redis.call('GET', KEYS[2]) or '0'}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rec = redis.call('GET', ARGV[1] .. id)
  if rec then
    out[#out + 1] = id
    out[#out + 1] = rec
  end
end
return out
"#,
    )
});

/// Gives a lease back only if `ARGV[1]` still holds it (a holder whose
/// lease expired must not free a newer holder's). KEYS: the lease.
pub(crate) static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// The storm guard over a window shared by every node, on the server's
/// clock: drops disables older than the window; admits (-1) an account
/// already in it, or one more when under `max` and — once 3 went — under
/// `max_fraction` of the pool, counting it; else returns the count.
///
/// KEYS: the window. ARGV: window ms, account, max, max fraction, pool size.
pub(crate) static GUARD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return -1 end
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then return count end
if count >= 3 and (count + 1) / tonumber(ARGV[5]) > tonumber(ARGV[4]) then return count end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return -1
"#,
    )
});

/// Binds a session to an account unless another binding holds, on the
/// server's clock (so that every node orders bindings alike): the stored
/// binding is replaced when it is the expected one (`''`: none, `SET NX`),
/// is already this account, or has expired; the new binding is published.
/// Otherwise the binding that holds is kept — and published when `ARGV[8]`
/// is `1` (a queued claim: its node learns the truth by subscription).
/// Returns `{account, until}` as they stand now (`until`: Unix ms).
///
/// KEYS: the session. ARGV: expected account, account, ttl ms, channel,
/// session hash, node, sent, tell.
pub(crate) static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('GET', KEYS[1])
local held, upto
if cur and cur ~= ARGV[1] and cur ~= ARGV[2] then
  held = cur
  upto = string.format('%.0f', now + math.max(redis.call('PTTL', KEYS[1]), 0))
  if ARGV[8] ~= '1' then return {held, upto} end
else
  held = ARGV[2]
  upto = string.format('%.0f', now + tonumber(ARGV[3]))
  redis.call('SET', KEYS[1], held, 'PX', ARGV[3])
end
redis.call('PUBLISH', ARGV[4], cjson.encode({op = 'sess', s = ARGV[5], a = held, u = upto, node = ARGV[6], ts = ARGV[7]}))
return {held, upto}
"#,
    )
});
