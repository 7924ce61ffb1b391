//! Who is signed in to the accounts page: sessions behind an HttpOnly,
//! SameSite=Strict cookie (the admin key itself is never kept by the page),
//! each with its CSRF token, and the brake on guessing the admin key.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "grantpool_session";
/// The header a page's changing request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept; the oldest goes first.
const MAX_SESSIONS: usize = 64;
/// Wrong admin keys allowed per window before sign-in pauses.
pub const SIGN_IN_FAILURES: usize = 5;
/// The window of [`SIGN_IN_FAILURES`].
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);

/// A signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// The key the session is stored under (a hash of the cookie's value).
    pub key: [u8; 32],
    /// The token its changing requests must carry in [`CSRF_HEADER`].
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// True when `sent` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The sessions of the page, in memory (a restart signs everyone out).
#[derive(Default)]
pub struct Sessions {
    // Keyed by the SHA-256 of the cookie value: a lookup reveals nothing
    // about the values themselves.
    map: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_hex() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_of(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl Sessions {
    /// A new session: the cookie value to set, and the session.
    pub fn create(&self) -> (String, Session) {
        let value = random_hex();
        let session = Session { key: key_of(&value), csrf: random_hex(), expires: Instant::now() + SESSION_TTL };
        let mut map = self.map.lock();
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.values().min_by_key(|s| s.expires).map(|s| s.key) {
                map.remove(&oldest);
            }
        }
        map.insert(session.key, session.clone());
        (value, session)
    }

    /// The live session of a request's `Cookie` header, if any.
    pub fn from_cookies(&self, cookie_header: Option<&str>) -> Option<Session> {
        let value = cookie_value(cookie_header?, COOKIE)?;
        let key = key_of(value);
        let map = self.map.lock();
        map.get(&key).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// True while the session stored under `key` lives.
    pub fn alive(&self, key: &[u8; 32]) -> bool {
        self.map.lock().get(key).is_some_and(|s| s.expires > Instant::now())
    }

    /// Sign a session out.
    pub fn end(&self, key: &[u8; 32]) {
        self.map.lock().remove(key);
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value for a session (`None`: sign out). HttpOnly: no
/// script reads it; SameSite=Strict: no other site's page sends it; Path
/// /ui: the API routes never see it.
pub fn set_cookie(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{COOKIE}={v}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_TTL.as_secs()),
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

/// The brake on guessing the admin key: after [`SIGN_IN_FAILURES`] wrong
/// keys within [`SIGN_IN_WINDOW`], every sign-in is refused until the
/// oldest of them leaves the window.
#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<VecDeque<Instant>>,
}

impl SignInLimiter {
    /// `Err(wait)` while sign-in is paused.
    pub fn check(&self) -> Result<(), Duration> {
        let mut f = self.failures.lock();
        let now = Instant::now();
        while f.front().is_some_and(|t| now.duration_since(*t) >= SIGN_IN_WINDOW) {
            f.pop_front();
        }
        match f.front() {
            Some(oldest) if f.len() >= SIGN_IN_FAILURES => Err(SIGN_IN_WINDOW.saturating_sub(now.duration_since(*oldest))),
            _ => Ok(()),
        }
    }

    /// Count a wrong key.
    pub fn failed(&self) {
        self.failures.lock().push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_live_by_their_cookie() {
        let s = Sessions::default();
        let (value, session) = s.create();
        let header = format!("other=1; {COOKIE}={value}; x=y");
        let found = s.from_cookies(Some(&header)).expect("session");
        assert!(found.csrf_matches(&session.csrf) && !found.csrf_matches("nope"));
        assert!(s.from_cookies(Some(&format!("{COOKIE}=forged"))).is_none());
        s.end(&session.key);
        assert!(s.from_cookies(Some(&header)).is_none());
    }

    #[test]
    fn cookie_flags() {
        let c = set_cookie(Some("abc"));
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(set_cookie(None).contains("Max-Age=0"));
    }

    #[test]
    fn sign_in_pauses_after_five_wrong_keys() {
        let l = SignInLimiter::default();
        for _ in 0..SIGN_IN_FAILURES {
            assert!(l.check().is_ok());
            l.failed();
        }
        let wait = l.check().expect_err("paused");
        assert!(wait <= SIGN_IN_WINDOW && wait > Duration::from_secs(50), "{wait:?}");
    }
}
