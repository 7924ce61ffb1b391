//! Which serving thread a request runs on. The listener sets it when a
//! thread starts; the dispatcher reads it and hands it to the upstream
//! client with each call, whose per-thread connection pools are indexed by
//! it (a request never waits on another thread). A room of its own, with
//! no imports: both read it, neither imports the other for it.

use std::cell::Cell;

thread_local! {
    static LANE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The serving thread this code runs on (0-based), or `None` off them.
pub fn current() -> Option<usize> {
    LANE.with(Cell::get)
}

/// Marks this thread as serving thread `lane`.
pub(crate) fn enter(lane: usize) {
    LANE.with(|l| l.set(Some(lane)));
}
