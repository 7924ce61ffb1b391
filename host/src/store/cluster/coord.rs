//! What the nodes share besides records ([`Cluster`]): leases, notes, the
//! storm guard's window, session bindings. While the link is down every
//! call fails at once (the subscriber brings the link back): callers fall
//! back to what this node can decide alone.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use parking_lot::Mutex;

use super::super::backend::{Cluster, ClusterStatus, GuardLimits, StoreError};
use super::conn::{Fail, Redis};
use super::keys::Keys;
use super::link::Link;
use super::scripts;

/// Session bindings waiting to be written; beyond this many, new ones are
/// dropped (the binding stays local to this node until the next one).
const BIND_QUEUE: usize = 4096;

/// The shared services of one node.
pub(crate) struct Coordinator {
    redis: Arc<Redis>,
    keys: Keys,
    link: Arc<Link>,
    node: String,
    binds: Mutex<Option<SyncSender<(String, String, u64)>>>,
}

impl Coordinator {
    /// Services over `redis`, as node `node`.
    pub(crate) fn new(redis: Arc<Redis>, keys: Keys, link: Arc<Link>, node: String) -> Coordinator {
        Coordinator { redis, keys, link, node, binds: Mutex::new(None) }
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

    /// The writer of session bindings: one thread, started with the first.
    fn binder(&self) -> SyncSender<(String, String, u64)> {
        let mut slot = self.binds.lock();
        if let Some(tx) = slot.as_ref() {
            return tx.clone();
        }
        let (tx, rx) = sync_channel::<(String, String, u64)>(BIND_QUEUE);
        let (redis, keys, link, node) = (self.redis.clone(), self.keys.clone(), self.link.clone(), self.node.clone());
        let spawned = std::thread::Builder::new().name("cluster-sessions".into()).spawn(move || {
            let channel = keys.channel();
            while let Ok((session, account, until_ms)) = rx.recv() {
                let now = crate::util::now_ms();
                if until_ms <= now || !link.is_up() {
                    continue;
                }
                let r = redis.run(|c| {
                    scripts::BIND
                        .key(keys.session(&session))
                        .arg(&account)
                        .arg(until_ms - now)
                        .arg(&channel)
                        .arg(&session)
                        .arg(until_ms.to_string())
                        .arg(&node)
                        .arg(now.to_string())
                        .invoke::<i64>(c)
                });
                if let Err(f) = r {
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

    fn bind_session(&self, session: &str, account: &str, until_ms: u64) {
        match self.binder().try_send((session.to_string(), account.to_string(), until_ms)) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => *self.binds.lock() = None,
        }
    }

    fn status(&self) -> ClusterStatus {
        self.link.status()
    }
}
