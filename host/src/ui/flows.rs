//! Google sign-ins started from the page (PKCE), until Google's redirect
//! comes back to the proxy or the user pastes the address it went to. The
//! flow's `state` is what ties the redirect to the page that started it:
//! the callback cannot carry the session cookie (SameSite=Strict is not sent
//! on a navigation that comes from Google), and does not need it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::config::ResolvedClient;

/// How long a started sign-in waits for its redirect.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// Most sign-ins pending at once; the oldest goes first.
const MAX_FLOWS: usize = 16;

/// What the sign-in needs to finish. The verifier never leaves the server.
#[derive(Clone)]
pub struct Pending {
    /// The OAuth client signed in with.
    pub client: ResolvedClient,
    /// The PKCE verifier.
    pub verifier: String,
    /// The redirect address Google was given.
    pub redirect_uri: String,
    /// The account it must be (a re-add), when given.
    pub expected: Option<String>,
    /// The outbound proxy the account's calls go through, when picked.
    pub egress: Option<String>,
}

/// How a sign-in ended.
#[derive(Clone, Debug, Serialize)]
pub struct Finished {
    /// The account was written.
    pub ok: bool,
    /// What happened, in words ("enabled again: …", "refused: …").
    pub message: String,
    /// The account, when written.
    pub account_id: Option<String>,
}

enum Stage {
    Waiting(Pending),
    /// The code is being exchanged (a second redirect must not exchange again).
    Exchanging,
    Done(Finished),
}

struct Flow {
    stage: Stage,
    started: Instant,
}

/// The sign-ins in progress.
#[derive(Default)]
pub struct Flows {
    map: Mutex<HashMap<String, Flow>>,
}

/// Where a sign-in stands, for the page.
#[derive(Debug, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Status {
    /// Waiting for Google's redirect (or the pasted address).
    Waiting,
    /// The code is being exchanged.
    Exchanging,
    /// Over.
    Done(Finished),
    /// No such sign-in (expired, or never started).
    Unknown,
}

impl Flows {
    /// Keep a started sign-in under its `state`.
    pub fn start(&self, state: String, pending: Pending) {
        let mut map = self.map.lock();
        map.retain(|_, f| f.started.elapsed() < FLOW_TTL);
        if map.len() >= MAX_FLOWS {
            if let Some(oldest) = map.iter().min_by_key(|(_, f)| f.started).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(state, Flow { stage: Stage::Waiting(pending), started: Instant::now() });
    }

    /// Take a waiting sign-in to finish it (`None`: unknown, expired, or
    /// already being finished).
    pub fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.map.lock();
        let flow = map.get_mut(state).filter(|f| f.started.elapsed() < FLOW_TTL)?;
        match std::mem::replace(&mut flow.stage, Stage::Exchanging) {
            Stage::Waiting(p) => Some(p),
            other => {
                flow.stage = other;
                None
            }
        }
    }

    /// Give a waiting sign-in back (the pasted address was not right).
    pub fn put_back(&self, state: &str, pending: Pending) {
        if let Some(flow) = self.map.lock().get_mut(state) {
            flow.stage = Stage::Waiting(pending);
        }
    }

    /// Record how a sign-in ended.
    pub fn finish(&self, state: &str, result: Finished) {
        if let Some(flow) = self.map.lock().get_mut(state) {
            flow.stage = Stage::Done(result);
        }
    }

    /// Where the sign-in `state` stands.
    pub fn status(&self, state: &str) -> Status {
        match self.map.lock().get(state).filter(|f| f.started.elapsed() < FLOW_TTL).map(|f| &f.stage) {
            Some(Stage::Waiting(_)) => Status::Waiting,
            Some(Stage::Exchanging) => Status::Exchanging,
            Some(Stage::Done(r)) => Status::Done(r.clone()),
            None => Status::Unknown,
        }
    }
}
