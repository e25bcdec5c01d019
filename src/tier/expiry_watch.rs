//! The expiry watch: one thread per process that marks each first-tier copy of a second-tier
//! value expired when the second tier's copy expires.
//!
//! Why a thread: a first-tier hit of a function with a second tier must cost what a hit
//! without one costs, and reading a clock costs about as much as the rest of the hit. With the
//! watch, a hit reads one flag. The thread sleeps until the earliest deadline (no periodic
//! wake-ups), never touches a Python object and never takes the GIL. Deadlines come from
//! `clock::RealDeadline`, set early by more than a scheduler tick, which covers the thread's
//! wake-up latency.
//!
//! Fork: a child has no watch thread, and the parent's watch may have been locked by a thread
//! that does not exist in the child. Each process therefore uses a watch of its own, in the
//! next of a fixed row of slots: a child never touches its parent's (see `current`).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::clock::RealDeadline;

/// The deadline of one first-tier entry, shared by the entry and the watch.
#[derive(Debug)]
pub struct Expiry {
    at: RealDeadline,
    passed: AtomicBool,
}

impl Expiry {
    /// Whether the watch has seen the deadline pass: one load, for the hit path.
    #[inline(always)]
    pub fn passed(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }

    /// Seconds left (0 once passed).
    pub fn remaining(&self) -> f64 {
        if self.passed() {
            0.0
        } else {
            self.at.remaining()
        }
    }
}

impl Drop for Expiry {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Expiries alive in the process: the heap is pruned of dead ones when it holds many more.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// One pending deadline. The heap holds its expiry weakly: an entry evicted from the first
/// tier frees its expiry, and the watch then has nothing to mark.
struct Due {
    at: i64,
    expiry: Weak<Expiry>,
}

// A min-heap by deadline (`BinaryHeap` is a max-heap).
impl Ord for Due {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.at.cmp(&self.at)
    }
}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}

#[derive(Default)]
struct State {
    due: BinaryHeap<Due>,
    started: bool,
    /// The thread could not be started: nothing is watched, so nothing may be kept.
    failed: bool,
}

#[derive(Default)]
struct Watch {
    state: Mutex<State>,
    wake: Condvar,
}

/// How deep a chain of forks (a child's child's ...) gets a watch of its own; deeper children
/// keep no first-tier copies of second-tier values (they are still served, from Redis).
const SLOTS: usize = 32;
static WATCHES: [OnceLock<Watch>; SLOTS] = [const { OnceLock::new() }; SLOTS];
/// The process that owns the current slot (high 32 bits) and the slot (low 32 bits).
static CURRENT: AtomicU64 = AtomicU64::new(0);

/// This process's watch: a forked child moves to the next slot, once, and never touches the
/// parent's (whose lock the parent's watch thread may have held at the fork).
fn current() -> Option<&'static Watch> {
    let pid = u64::from(std::process::id());
    let mut packed = CURRENT.load(Ordering::Acquire);
    loop {
        if packed >> 32 == pid {
            break;
        }
        // First use in this process (slot 0 belongs to the first process, whose pid replaces
        // the 0 it starts with), or a fork: the next slot.
        let slot = if packed == 0 { 0 } else { (packed & 0xffff_ffff) + 1 };
        match CURRENT.compare_exchange(packed, pid << 32 | slot, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                packed = pid << 32 | slot;
                break;
            }
            Err(seen) => packed = seen,
        }
    }
    let slot = usize::try_from(packed & 0xffff_ffff).ok()?;
    Some(WATCHES.get(slot)?.get_or_init(Watch::default))
}

/// Why `try_watch` gave up: another thread holds the watch's lock for a moment.
#[derive(Debug)]
pub struct Busy;

/// An expiry `seconds` from now, watched: `None` when no watch can run (the entry must not be
/// kept). `Err(Busy)` instead of waiting for the watch's lock: the caller, attached to the
/// interpreter, detaches and calls `watch`.
pub fn try_watch(seconds: f64) -> Result<Option<Arc<Expiry>>, Busy> {
    let Some(watch) = current() else { return Ok(None) };
    match watch.state.try_lock() {
        Some(state) => Ok(add(watch, state, seconds)),
        None => Err(Busy),
    }
}

/// `try_watch`, waiting for the lock.
pub fn watch(seconds: f64) -> Option<Arc<Expiry>> {
    let watch = current()?;
    add(watch, watch.state.lock(), seconds)
}

fn add(watch: &'static Watch, mut state: MutexGuard<'_, State>, seconds: f64) -> Option<Arc<Expiry>> {
    if !state.started {
        state.started = true;
        let spawned = std::thread::Builder::new().name("cachebox-expiry".into()).spawn(move || run(watch));
        state.failed = spawned.is_err();
    }
    if state.failed {
        return None;
    }
    let at = RealDeadline::after(seconds);
    LIVE.fetch_add(1, Ordering::Relaxed);
    let expiry = Arc::new(Expiry { at, passed: AtomicBool::new(false) });
    // Dead expiries stay until their deadline pops; a heap much bigger than what lives is
    // pruned, which keeps it within a constant factor of the live entries.
    if state.due.len() > 2 * LIVE.load(Ordering::Relaxed) + 64 {
        state.due.retain(|due| due.expiry.strong_count() > 0);
    }
    let sooner = state.due.peek().is_none_or(|first| at.ns() < first.at);
    state.due.push(Due { at: at.ns(), expiry: Arc::downgrade(&expiry) });
    drop(state);
    if sooner {
        watch.wake.notify_one();
    }
    Some(expiry)
}

/// The watch thread: marks what is due, then sleeps until the next deadline or a sooner one
/// arrives.
fn run(watch: &'static Watch) {
    let mut state = watch.state.lock();
    loop {
        let now = RealDeadline::now_ns();
        while state.due.peek().is_some_and(|first| first.at <= now) {
            if let Some(expiry) = state.due.pop().and_then(|due| due.expiry.upgrade()) {
                expiry.passed.store(true, Ordering::Relaxed);
            }
        }
        match state.due.peek() {
            None => watch.wake.wait(&mut state),
            Some(first) => {
                let left = u64::try_from(first.at - now).unwrap_or(0);
                let _ = watch.wake.wait_for(&mut state, Duration::from_nanos(left));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_until(what: impl Fn() -> bool, seconds: f64) -> bool {
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < seconds {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        what()
    }

    #[test]
    fn marks_each_deadline_in_order() {
        // The deadlines are set early by `RealDeadline`'s margin: what is 0.3 s away passes
        // about 0.28 s from now; what is an hour away does not.
        let far = watch(3600.0).unwrap();
        let late = watch(0.3).unwrap();
        let soon = watch(0.05).unwrap();
        assert!(!far.passed() && !late.passed());
        assert!(wait_until(|| soon.passed(), 5.0));
        assert!(wait_until(|| late.passed(), 5.0));
        assert!(!far.passed());
        assert!(far.remaining() > 3500.0);
        assert_eq!(late.remaining(), 0.0);
    }

    #[test]
    fn a_sooner_deadline_wakes_the_watch() {
        // The thread sleeps until the first deadline (an hour away); one 10 ms away must still
        // be marked in time.
        let _far = watch(3600.0).unwrap();
        let start = Instant::now();
        let soon = watch(0.01).unwrap();
        assert!(wait_until(|| soon.passed(), 5.0));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn dropped_expiries_are_pruned() {
        for _ in 0..10_000 {
            drop(watch(3600.0).unwrap());
        }
        let watch = current().unwrap();
        let state = watch.state.lock();
        assert!(state.due.len() <= 2 * LIVE.load(Ordering::Relaxed) + 65, "{}", state.due.len());
    }

    #[test]
    fn try_watch_gives_up_while_the_lock_is_held() {
        let watch = current().unwrap();
        let held = watch.state.lock();
        let other = std::thread::spawn(|| matches!(try_watch(1.0), Err(Busy)));
        assert!(other.join().unwrap());
        drop(held);
        assert!(try_watch(1.0).unwrap().is_some());
    }
}
