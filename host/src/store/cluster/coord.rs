//! What the nodes share besides records ([`Cluster`]): leases, notes, the
//! storm guard's window, session bindings. While the link is down every
//! call fails at once (the subscriber brings the link back): callers fall
//! back to what this node can decide alone.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::super::backend::{Cluster, ClusterStatus, GuardLimits, SessionBinding, StoreError};
use super::conn::{Fail, Redis};
use super::keys::Keys;
use super::link::Link;
use super::scripts;

/// Session claims waiting to be written; beyond this many, new ones are
/// dropped (the binding stays local to this node until the next one).
const CLAIM_QUEUE: usize = 4096;
/// Longest a request waits for a session claim: past it, the node goes on
/// alone (the claim is queued).
const CLAIM_TIMEOUT: Duration = Duration::from_millis(250);

/// One session claim (see [`Cluster::claim_session`]).
struct Claim {
    session: String,
    expected: Option<String>,
    account: String,
    ttl_ms: u64,
}

impl Claim {
    /// `scripts::CLAIM` on `c`; `tell`: publish the binding that holds when
    /// it is not this one.
    fn run(&self, c: &mut redis::Connection, keys: &Keys, node: &str, tell: bool) -> redis::RedisResult<SessionBinding> {
        let (account, until): (String, String) = scripts::CLAIM
            .key(keys.session(&self.session))
            .arg(self.expected.as_deref().unwrap_or(""))
            .arg(&self.account)
            .arg(self.ttl_ms.max(1))
            .arg(keys.channel())
            .arg(&self.session)
            .arg(node)
            .arg(crate::util::now_ms().to_string())
            .arg(if tell { "1" } else { "0" })
            .invoke(c)?;
        Ok(SessionBinding { account, until_ms: until.parse().unwrap_or(0) })
    }
}

/// The shared services of one node.
pub(crate) struct Coordinator {
    redis: Arc<Redis>,
    keys: Keys,
    link: Arc<Link>,
    node: String,
    claims: Mutex<Option<SyncSender<Claim>>>,
}

impl Coordinator {
    /// Services over `redis`, as node `node`.
    pub(crate) fn new(redis: Arc<Redis>, keys: Keys, link: Arc<Link>, node: String) -> Coordinator {
        Coordinator { redis, keys, link, node, claims: Mutex::new(None) }
    }

    fn run<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, StoreError> {
        if !self.link.is_up() {
            return Err(Fail { down: true, cause: "the link is down".into() }.into_store(self.redis.place()));
        }
        self.redis.run(f).map_err(|f| {
            if f.down {
                self.link.down(&f.cause);
            }
            f.into_store(self.redis.place())
        })
    }

    /// The writer of queued session claims: one thread, started with the first.
    fn claimer(&self) -> SyncSender<Claim> {
        let mut slot = self.claims.lock();
        if let Some(tx) = slot.as_ref() {
            return tx.clone();
        }
        let (tx, rx) = sync_channel::<Claim>(CLAIM_QUEUE);
        let (redis, keys, link, node) = (self.redis.clone(), self.keys.clone(), self.link.clone(), self.node.clone());
        let spawned = std::thread::Builder::new().name("cluster-sessions".into()).spawn(move || {
            while let Ok(claim) = rx.recv() {
                if !link.is_up() {
                    continue;
                }
                if let Err(f) = redis.run(|c| claim.run(c, &keys, &node, true)) {
                    if f.down {
                        link.down(&f.cause);
                    } else {
                        tracing::warn!("could not share a session binding: {}", f.cause);
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!("could not start the session-binding writer: {e}");
        }
        *slot = Some(tx.clone());
        tx
    }
}

impl Cluster for Coordinator {
    fn try_lease(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, StoreError> {
        let token = format!("{}:{}", self.node, uuid::Uuid::new_v4().simple());
        let key = self.keys.lease(name);
        let set: Option<String> = self.run(|c| redis::cmd("SET").arg(&key).arg(&token).arg("NX").arg("PX").arg(ttl_ms.max(1)).query(c))?;
        Ok(set.map(|_| token))
    }

    fn lease_held(&self, name: &str) -> Result<bool, StoreError> {
        let key = self.keys.lease(name);
        self.run(|c| redis::cmd("EXISTS").arg(&key).query::<i64>(c)).map(|n| n > 0)
    }

    fn release(&self, name: &str, token: &str) {
        let key = self.keys.lease(name);
        // A lease not given back expires by itself.
        let _ = self.run(|c| scripts::RELEASE.key(&key).arg(token).invoke::<i64>(c));
    }

    fn put_note(&self, name: &str, value: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let key = self.keys.note(name);
        self.run(|c| redis::cmd("SET").arg(&key).arg(value).arg("PX").arg(ttl_ms.max(1)).query::<()>(c))
    }

    fn note(&self, name: &str) -> Result<Option<String>, StoreError> {
        let key = self.keys.note(name);
        self.run(|c| redis::cmd("GET").arg(&key).query::<Option<String>>(c))
    }

    fn admit_disable(&self, account: &str, limits: GuardLimits) -> Result<Option<u32>, StoreError> {
        let key = self.keys.guard();
        let n: i64 = self.run(|c| {
            scripts::GUARD
                .key(&key)
                .arg(limits.window_ms.max(1))
                .arg(account)
                .arg(limits.max_disables)
                .arg(limits.max_fraction.to_string())
                .arg(limits.pool_size.max(1))
                .invoke(c)
        })?;
        Ok((n >= 0).then_some(n as u32))
    }

    fn claim_session(&self, session: &str, expected: Option<&str>, account: &str, ttl_ms: u64) -> Result<SessionBinding, StoreError> {
        if !self.link.is_up() {
            return Err(Fail { down: true, cause: "the link is down".into() }.into_store(self.redis.place()));
        }
        let claim = Claim { session: session.to_string(), expected: expected.map(str::to_string), account: account.to_string(), ttl_ms };
        self.redis.run_within(CLAIM_TIMEOUT, |c| claim.run(c, &self.keys, &self.node, false)).map_err(|f| {
            if f.down {
                self.link.down(&f.cause);
            }
            f.into_store(self.redis.place())
        })
    }

    fn claim_session_later(&self, session: &str, expected: Option<&str>, account: &str, ttl_ms: u64) {
        let claim = Claim { session: session.to_string(), expected: expected.map(str::to_string), account: account.to_string(), ttl_ms };
        match self.claimer().try_send(claim) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => *self.claims.lock() = None,
        }
    }

    fn status(&self) -> ClusterStatus {
        self.link.status()
    }
}
