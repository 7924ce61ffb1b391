//! The cluster backend: several grantpool nodes serve one pool through
//! Redis (`[cluster] redis_url`). The same records and rules as the file
//! backend, plus what the nodes share besides records.
//!
//! - `keys.rs`: every key and channel, under one prefix.
//! - `scripts.rs`: the Lua scripts (compare-and-set write + publish, load,
//!   remove, lease release, storm guard, session claim).
//! - `message.rs`: the change messages.
//! - `conn.rs`: connections and their errors.
//! - `link.rs`: up or down, lag, journal length (and the one log line per
//!   transition).
//! - `journal.rs`: decisions taken while Redis is away, and how they merge.
//! - `snapshot.rs`: the last known pool on disk, to start without Redis.
//! - `coord.rs`: leases, notes, the shared storm guard, session bindings.
//! - `store.rs`: [`ClusterStore`], the [`super::Backend`], and the
//!   subscriber that keeps the pool live.

pub(crate) mod conn;
mod coord;
mod journal;
mod keys;
mod link;
mod message;
mod scripts;
mod snapshot;
mod store;

pub use store::{ClusterOptions, ClusterStore, Role};

#[cfg(test)]
pub(crate) mod tests;
