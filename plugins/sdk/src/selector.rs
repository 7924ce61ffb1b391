//! Writing a selector: implement [`Strategy`], export it with
//! [`export_selector!`](crate::export_selector).
//!
//! The SDK keeps a [`Pool`] — the accounts that may serve now — from the
//! host's `observe` events, and counts in-flight requests itself the moment
//! `select` answers, so concurrent decisions see each other. A strategy reads
//! that view; it never receives the whole pool per request.

use std::cell::RefCell;

pub use crate::bindings::selector::exports::grantpool::plugin::selection::{
    Account as WitAccount, Interests, ModelQuota, Outcome, PoolEvent, Request as WitRequest,
};
pub use crate::bindings::selector::grantpool::plugin::types::Protocol;

/// One account that may serve, as the strategy sees it.
#[derive(Debug, Clone)]
pub struct Account {
    /// Handle to answer `select` with.
    pub slot: u32,
    /// The account's id.
    pub id: String,
    /// The account's email.
    pub email: String,
    /// Labels from the account file.
    pub labels: Vec<(String, String)>,
    /// Requests in flight (counted by the SDK between `select` and
    /// `finished`; only kept when the strategy asks for
    /// [`Interests::OUTCOMES`]).
    pub in_flight: u32,
    /// Last time `select` picked it (or the host used it), Unix ms.
    pub last_used_ms: u64,
    /// Successes seen.
    pub successes: u32,
    /// Failures seen.
    pub failures: u32,
    /// Remaining quota per model, where the host knows it.
    pub quota: Vec<ModelQuota>,
}

impl Account {
    /// The value of a label, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Remaining quota fraction for `model`, if known.
    pub fn remaining(&self, model: &str) -> Option<f32> {
        self.quota.iter().find(|q| q.model == model).map(|q| q.remaining_fraction)
    }

    fn from_wit(a: WitAccount) -> Self {
        Account {
            slot: a.slot,
            id: a.id,
            email: a.email,
            labels: a.labels,
            in_flight: a.in_flight,
            last_used_ms: a.last_used_ms,
            successes: a.successes,
            failures: a.failures,
            quota: a.quota,
        }
    }
}

/// The request being routed, with a fast "may I pick this slot" check.
#[derive(Debug, Clone)]
pub struct Request {
    /// Upstream model.
    pub model: String,
    /// The client's protocol.
    pub protocol: Protocol,
    /// Conversation id, when known.
    pub session_id: Option<String>,
    /// 1 for the first try.
    pub attempt: u32,
    /// Slots tried already for this request.
    pub tried: Vec<u32>,
    /// Slots not available for this model now.
    pub unavailable: Vec<u32>,
}

impl Request {
    /// True when `slot` must not be picked for this request.
    pub fn excludes(&self, slot: u32) -> bool {
        // Both lists are short in practice (a few retries, a few cooled
        // models); a linear scan beats building a set per request.
        self.tried.contains(&slot) || self.unavailable.contains(&slot)
    }

    fn from_wit(r: WitRequest) -> Self {
        let mut req = Request {
            model: r.model,
            protocol: r.protocol,
            session_id: r.session_id,
            attempt: r.attempt,
            tried: r.tried,
            unavailable: r.unavailable,
        };
        // Long exclusion lists (many accounts cooled for one model): sort
        // once so `excludes` stays cheap.
        if req.unavailable.len() > 64 {
            req.unavailable.sort_unstable();
        }
        req
    }
}

/// The accounts that may serve now, kept up to date from host events.
///
/// Slots are dense small integers chosen by the host, so the view is a
/// vector indexed by slot plus a compact list of the live slots.
#[derive(Debug, Default)]
pub struct Pool {
    by_slot: Vec<Option<Account>>,
    live: Vec<u32>,
    pos: Vec<u32>,
}

const NOT_LIVE: u32 = u32::MAX;

impl Pool {
    /// Number of selectable accounts.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no account is selectable.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The account in `slot`, if selectable.
    pub fn get(&self, slot: u32) -> Option<&Account> {
        self.by_slot.get(slot as usize).and_then(|a| a.as_ref())
    }

    /// Selectable slots, in no particular order (changes as accounts come
    /// and go). Index with [`Pool::nth`] for O(1) random or rotating picks.
    pub fn slots(&self) -> &[u32] {
        &self.live
    }

    /// The `i`-th selectable account (`i < len()`).
    pub fn nth(&self, i: usize) -> &Account {
        self.get(self.live[i]).expect("live slot has an account")
    }

    /// Every selectable account.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.live.iter().map(|s| self.get(*s).expect("live slot has an account"))
    }

    /// The accounts that may serve `req`: selectable, not tried, not
    /// unavailable for its model.
    pub fn candidates<'a>(&'a self, req: &'a Request) -> impl Iterator<Item = &'a Account> + 'a {
        self.iter().filter(move |a| !req.excludes(a.slot))
    }

    /// True when `slot` may serve `req`.
    pub fn is_candidate(&self, slot: u32, req: &Request) -> bool {
        self.get(slot).is_some() && !req.excludes(slot)
    }

    /// The first candidate at or after live index `start`, wrapping around,
    /// with its live index. O(1) unless many accounts are excluded.
    pub fn next_candidate_from(&self, start: usize, req: &Request) -> Option<(usize, &Account)> {
        let n = self.live.len();
        (0..n).map(|k| (start + k) % n).find_map(|i| {
            let acc = self.nth(i);
            (!req.excludes(acc.slot)).then_some((i, acc))
        })
    }

    /// Apply one host event.
    pub fn apply(&mut self, event: &PoolEvent) {
        match event {
            PoolEvent::Reset => {
                self.by_slot.clear();
                self.live.clear();
                self.pos.clear();
            }
            PoolEvent::Joined(a) => self.insert(Account::from_wit(a.clone())),
            PoolEvent::Left(slot) => self.remove(*slot),
            PoolEvent::Finished(o) => {
                if let Some(Some(acc)) = self.by_slot.get_mut(o.slot as usize) {
                    acc.in_flight = acc.in_flight.saturating_sub(1);
                    if o.success {
                        acc.successes = acc.successes.saturating_add(1);
                    } else {
                        acc.failures = acc.failures.saturating_add(1);
                    }
                }
            }
        }
    }

    /// Record that `select` picked `slot` (the SDK calls this for you).
    pub fn mark_picked(&mut self, slot: u32, now_ms: u64) {
        if let Some(Some(acc)) = self.by_slot.get_mut(slot as usize) {
            acc.in_flight = acc.in_flight.saturating_add(1);
            acc.last_used_ms = now_ms;
        }
    }

    fn insert(&mut self, acc: Account) {
        let slot = acc.slot as usize;
        if self.by_slot.len() <= slot {
            self.by_slot.resize_with(slot + 1, || None);
            self.pos.resize(slot + 1, NOT_LIVE);
        }
        if self.pos[slot] == NOT_LIVE {
            self.pos[slot] = self.live.len() as u32;
            self.live.push(acc.slot);
        }
        self.by_slot[slot] = Some(acc);
    }

    fn remove(&mut self, slot: u32) {
        let s = slot as usize;
        if s >= self.by_slot.len() || self.pos[s] == NOT_LIVE {
            return;
        }
        let i = self.pos[s] as usize;
        self.live.swap_remove(i);
        if i < self.live.len() {
            let moved = self.live[i] as usize;
            self.pos[moved] = i as u32;
        }
        self.pos[s] = NOT_LIVE;
        self.by_slot[s] = None;
    }
}

/// A selection strategy.
pub trait Strategy: Sized + 'static {
    /// Build the strategy from its policy table (JSON); `Err` refuses the
    /// policy with that message. See [`crate::config::parse`].
    fn configure(config: &str) -> Result<Self, String>;

    /// Pick the slot that serves `req`, or `None`. Only candidates
    /// ([`Pool::candidates`]) are accepted by the host.
    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32>;

    /// What the host should send (asked once, after `configure`). Each
    /// costs work on every request: leave out what the strategy does not
    /// read. [`Interests::OUTCOMES`] brings `finished` events (and with them
    /// live `in_flight`, `successes` and `failures`);
    /// [`Interests::SESSIONS`] brings `Request::session_id`;
    /// [`Interests::QUOTA`] makes the host poll every account's quota
    /// (`Account::quota`). Default: outcomes and sessions.
    fn interests(&self) -> Interests {
        Interests::OUTCOMES | Interests::SESSIONS
    }

    /// Optional: learn from an event, after the pool view applied it.
    fn observe(&mut self, _event: &PoolEvent, _pool: &Pool) {}
}

#[doc(hidden)]
pub struct State<S> {
    pub pool: Pool,
    pub strategy: Option<S>,
}

#[doc(hidden)]
pub fn run_configure<S: Strategy>(cell: &RefCell<State<S>>, config: String) -> Result<Interests, String> {
    let strategy = S::configure(&config)?;
    let interests = strategy.interests();
    cell.borrow_mut().strategy = Some(strategy);
    Ok(interests)
}

#[doc(hidden)]
pub fn run_observe<S: Strategy>(cell: &RefCell<State<S>>, events: Vec<PoolEvent>) {
    let mut state = cell.borrow_mut();
    let State { pool, strategy } = &mut *state;
    for event in &events {
        pool.apply(event);
        if let Some(s) = strategy.as_mut() {
            s.observe(event, pool);
        }
    }
}

#[doc(hidden)]
pub fn run_select<S: Strategy>(cell: &RefCell<State<S>>, req: WitRequest) -> Option<u32> {
    let mut state = cell.borrow_mut();
    let State { pool, strategy } = &mut *state;
    let strategy = strategy.as_mut()?;
    let req = Request::from_wit(req);
    let slot = strategy.select(pool, &req)?;
    pool.mark_picked(slot, crate::now_ms());
    Some(slot)
}

/// Export a [`Strategy`] as the plugin's `selection` interface.
#[macro_export]
macro_rules! export_selector {
    ($strategy:ty) => {
        thread_local! {
            static __GRANTPOOL_STATE: ::std::cell::RefCell<$crate::selector::State<$strategy>> =
                ::std::cell::RefCell::new($crate::selector::State {
                    pool: ::std::default::Default::default(),
                    strategy: None,
                });
        }
        struct __GrantpoolSelector;
        impl $crate::bindings::selector::exports::grantpool::plugin::selection::Guest
            for __GrantpoolSelector
        {
            fn configure(config: String) -> Result<$crate::selector::Interests, String> {
                __GRANTPOOL_STATE.with(|s| $crate::selector::run_configure(s, config))
            }
            fn observe(events: Vec<$crate::selector::PoolEvent>) {
                __GRANTPOOL_STATE.with(|s| $crate::selector::run_observe(s, events))
            }
            fn select(req: $crate::selector::WitRequest) -> Option<u32> {
                __GRANTPOOL_STATE.with(|s| $crate::selector::run_select(s, req))
            }
        }
        $crate::bindings::selector::export_selector_world!(__GrantpoolSelector);
    };
}
