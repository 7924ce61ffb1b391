//! Connections to Redis: the client for one URL (TLS and password through
//! it), a few idle connections kept for reuse, short timeouts so that a
//! Redis that went away is noticed in about a second, and errors split
//! into "unreachable" (the caller may journal) and "refused".

use std::time::Duration;

use parking_lot::Mutex;

use super::super::backend::StoreError;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest wait for an answer.
const IO_TIMEOUT: Duration = Duration::from_millis(2000);
/// Idle connections kept.
const IDLE_MAX: usize = 8;

/// Why a command did not succeed.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    /// Redis could not be reached (connection refused, dropped, timed
    /// out), as opposed to an answer that refused the command.
    pub down: bool,
    /// What happened (no secrets).
    pub cause: String,
}

impl Fail {
    /// The store's error for it.
    pub(crate) fn into_store(self, place: &str) -> StoreError {
        StoreError::Cluster { place: place.to_string(), cause: self.cause }
    }
}

impl From<redis::RedisError> for Fail {
    fn from(e: redis::RedisError) -> Fail {
        let cause = e.to_string();
        // A server still loading its data (after a restart) is as good as away.
        let down = e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() || e.is_unrecoverable_error() || cause.contains("LOADING");
        Fail { down, cause }
    }
}

/// One Redis server: a client and its idle connections.
pub(crate) struct Redis {
    client: redis::Client,
    place: String,
    idle: Mutex<Vec<redis::Connection>>,
}

impl Redis {
    /// A client for `url` (not connected yet); `place` is the URL with its
    /// password hidden.
    pub(crate) fn open(url: &str, place: &str) -> Result<Redis, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Cluster {
            place: place.to_string(),
            cause: format!("not a valid Redis URL ({})", e.kind_str()),
        })?;
        Ok(Redis { client, place: place.to_string(), idle: Mutex::new(Vec::new()) })
    }

    /// Where it is, password hidden.
    pub(crate) fn place(&self) -> &str {
        &self.place
    }

    /// A new connection of its own (the subscriber's).
    pub(crate) fn connect(&self) -> Result<redis::Connection, Fail> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(con)
    }

    /// Runs `f` on a pooled connection. A connection whose command failed
    /// for want of Redis is dropped, not reused.
    pub(crate) fn run<T>(&self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, Fail> {
        let pooled = self.idle.lock().pop();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match f(&mut con) {
            Ok(v) => {
                let mut idle = self.idle.lock();
                if idle.len() < IDLE_MAX {
                    idle.push(con);
                }
                Ok(v)
            }
            Err(e) => {
                let fail = Fail::from(e);
                if !fail.down {
                    let mut idle = self.idle.lock();
                    if idle.len() < IDLE_MAX {
                        idle.push(con);
                    }
                } else {
                    // Every idle connection went the same way.
                    self.idle.lock().clear();
                }
                Err(fail)
            }
        }
    }
}

impl Redis {
    /// Runs `f` on a pooled connection, waiting at most `within` for a
    /// connection and for the answer: for a question on the request path.
    /// A timeout is not `down` (a slow Redis is not an absent one: the
    /// subscriber's checks decide that), and its connection is dropped, not
    /// reused (the late answer would come out of turn).
    pub(crate) fn run_within<T>(&self, within: Duration, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T, Fail> {
        let pooled = self.idle.lock().pop();
        let mut con = match pooled {
            Some(c) => c,
            None => self.client.get_connection_with_timeout(within).map_err(slow_is_not_down)?,
        };
        con.set_read_timeout(Some(within)).map_err(Fail::from)?;
        con.set_write_timeout(Some(within)).map_err(Fail::from)?;
        match f(&mut con) {
            Ok(v) => {
                if con.set_read_timeout(Some(IO_TIMEOUT)).is_ok() && con.set_write_timeout(Some(IO_TIMEOUT)).is_ok() {
                    let mut idle = self.idle.lock();
                    if idle.len() < IDLE_MAX {
                        idle.push(con);
                    }
                }
                Ok(v)
            }
            Err(e) if e.is_timeout() => Err(slow_is_not_down(e)),
            Err(e) => {
                let fail = Fail::from(e);
                if fail.down {
                    self.idle.lock().clear();
                } else if con.set_read_timeout(Some(IO_TIMEOUT)).is_ok() && con.set_write_timeout(Some(IO_TIMEOUT)).is_ok() {
                    let mut idle = self.idle.lock();
                    if idle.len() < IDLE_MAX {
                        idle.push(con);
                    }
                }
                Err(fail)
            }
        }
    }
}

fn slow_is_not_down(e: redis::RedisError) -> Fail {
    let slow = e.is_timeout();
    let mut fail = Fail::from(e);
    fail.down &= !slow;
    fail
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    fn kind_str(&self) -> String {
        // The URL may hold a password: say what is wrong, not what was given.
        format!("{:?}", self.kind())
    }
}
