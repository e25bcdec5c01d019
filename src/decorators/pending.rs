//! Stampede protection: the calls in flight of one decorated function, by key.
//!
//! The first caller that misses a key becomes its *leader*: it runs the function (never under
//! any lock) while later callers for the same key *follow*: they wait (a sync follower blocks
//! with the interpreter detached; an async one awaits a future) and then share the leader's
//! outcome: the value, or the very same exception object. A leader that ends without an
//! outcome to share (a `BaseException` such as cancellation, or a dropped awaitable) marks the
//! call abandoned, and the followers retry: one of them becomes the next leader.
//! An entry leaves the map as soon as its call finishes, so idle keys cost nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;
use parking_lot::{Condvar, Mutex};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::entry::table_hash;
use crate::sync::Guarded;

/// How a leader's call ended.
pub enum Outcome {
    Running,
    Value(Py<PyAny>),
    Error(Py<pyo3::exceptions::PyBaseException>),
    Abandoned,
}

pub struct Pending {
    key: Py<PyAny>,
    hash: u32,
    /// Who leads: the thread (sync) or the asyncio task (async).
    leader: Leader,
    outcome: Mutex<Outcome>,
    finished: Condvar,
    /// Futures of async followers to wake when the call finishes.
    wakers: Mutex<Vec<Py<PyAny>>>,
    /// How many callers joined as followers (they share its outcome, whatever their timing).
    followers: AtomicUsize,
    /// Set by `cache_invalidate`: the outcome still goes to this call's callers, but is not
    /// stored (`Put::stale`).
    pub stale: AtomicBool,
}

#[derive(PartialEq, Eq)]
pub enum Leader {
    Thread(usize),
    Task(usize),
}

pub enum Role {
    Lead(Arc<Pending>),
    Follow(Arc<Pending>),
}

#[derive(Default)]
pub struct PendingMap {
    calls: Guarded<HashTable<Arc<Pending>>>,
    /// Calls that finished while their thread held `calls` itself: a key's `__eq__` under
    /// `join` dropped an async leader, whose `finish` cannot take the lock again. Whoever
    /// holds `calls` removes them before unlocking (`Orphans::remove_from`), so no finished
    /// call stays in the map, where later callers would follow it forever.
    orphans: Orphans,
}

/// Touched only by the thread that holds `calls` (a push comes from inside the holder), so
/// `any` is read and written in that lock's order; it spares every call the list's own lock.
#[derive(Default)]
struct Orphans {
    any: AtomicBool,
    list: Mutex<Vec<Arc<Pending>>>,
}

impl Orphans {
    fn push(&self, pending: Arc<Pending>) {
        self.list.lock().push(pending);
        self.any.store(true, Ordering::Relaxed);
    }

    #[inline]
    fn remove_from(&self, calls: &mut HashTable<Arc<Pending>>) {
        if self.any.load(Ordering::Relaxed) {
            self.remove_all_from(calls);
        }
    }

    #[cold]
    fn remove_all_from(&self, calls: &mut HashTable<Arc<Pending>>) {
        // Never held while running Python: only this function and `push` take it.
        let orphans = std::mem::take(&mut *self.list.lock());
        self.any.store(false, Ordering::Relaxed);
        for pending in &orphans {
            remove(calls, pending);
        }
    }
}

fn remove(calls: &mut HashTable<Arc<Pending>>, pending: &Arc<Pending>) {
    if let Ok(entry) = calls.find_entry(table_hash(pending.hash), |p| Arc::ptr_eq(p, pending)) {
        entry.remove();
    }
}

impl PendingMap {
    /// Joins the call in flight for `key`, or registers a new one led by `leader`.
    /// Re-entry by the leader itself (recursion with the same key) is a `RuntimeError`.
    pub fn join(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32, leader: Leader) -> PyResult<Role> {
        // Keys' `__eq__` runs under this lock.
        let mut calls = self.calls.lock_marked(py)?;
        let found = self.find(py, &mut calls, key, hash)?;
        if let Some(pending) = found.filter(|p| p.running()) {
            if pending.leader == leader {
                return Err(PyRuntimeError::new_err(
                    "recursive call of a cached function with the same arguments (it would wait for itself)",
                ));
            }
            pending.followers.fetch_add(1, Ordering::Relaxed);
            return Ok(Role::Follow(pending));
        }
        let pending = Arc::new(Pending {
            key: key.clone().unbind(),
            hash,
            leader,
            outcome: Mutex::new(Outcome::Running),
            finished: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
            followers: AtomicUsize::new(0),
            stale: AtomicBool::new(false),
        });
        calls.insert_unique(table_hash(hash), pending.clone(), |p| table_hash(p.hash));
        Ok(Role::Lead(pending))
    }

    /// The call in flight for `key`, found under the map's lock `calls` (marked: keys' `__eq__`
    /// runs here).
    fn find(
        &self,
        py: Python<'_>,
        calls: &mut HashTable<Arc<Pending>>,
        key: &Bound<'_, PyAny>,
        hash: u32,
    ) -> PyResult<Option<Arc<Pending>>> {
        let mut error = None;
        let found = calls
            .find(table_hash(hash), |p| {
                error.is_none()
                    && p.hash == hash
                    && (p.key.is(key)
                        || p.key.bind(py).eq(key).unwrap_or_else(|e| {
                            error = Some(e);
                            false
                        }))
            })
            .cloned();
        // The comparisons ran Python, which may have finished calls (see `orphans`).
        self.orphans.remove_from(calls);
        match error {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// `cache_invalidate`: the call in flight for `key`, if any, is marked stale (its result
    /// will not be stored) and leaves the map, so that a call from now on computes afresh
    /// instead of following it. Its leader and followers still share its outcome.
    pub fn invalidate(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<()> {
        let mut calls = self.calls.lock_marked(py)?;
        if let Some(pending) = self.find(py, &mut calls, key, hash)? {
            pending.stale.store(true, Ordering::SeqCst);
            remove(&mut calls, &pending);
        }
        Ok(())
    }

    /// Ends a call: removes it from the map, publishes its outcome, wakes the followers.
    /// `outcome` is built only if some caller follows the call: nobody else reads it.
    pub fn finish(&self, py: Python<'_>, pending: &Arc<Pending>, outcome: impl FnOnce() -> Outcome) -> PyResult<()> {
        // Leaving the map first means a caller arriving from now on starts afresh (and finds
        // the value in the cache, or computes it again after an error).
        match self.calls.lock(py) {
            Ok(mut calls) => {
                remove(&mut calls, pending);
                self.orphans.remove_from(&mut calls);
            }
            // Only this thread can hold it (another one would be waited for): the holder
            // removes the call before it unlocks.
            Err(_) => self.orphans.push(pending.clone()),
        }
        // Followers join under the map's lock, and the call has left the map (or, orphaned,
        // is skipped by the one thread that can reach it): the count is final here.
        if pending.followers.load(Ordering::Relaxed) == 0 {
            *pending.outcome.lock() = Outcome::Abandoned;
            return Ok(());
        }
        *pending.outcome.lock() = outcome();
        pending.finished.notify_all();
        let wakers = std::mem::take(&mut *pending.wakers.lock());
        for future in wakers {
            wake(py, future.bind(py))?;
        }
        Ok(())
    }

    /// How many callers follow the calls in flight: each of them gets its leader's outcome.
    /// (Tests wait on it, instead of on time, before a leader finishes.)
    pub fn followers(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.calls.lock(py)?.iter().filter(|p| p.running()).map(|p| p.followers.load(Ordering::Relaxed)).sum())
    }

    /// Forgets every call in flight (`cache_clear`); their leaders still finish normally.
    pub fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let old = std::mem::take(&mut *self.calls.lock(py)?);
        drop(old);
        Ok(())
    }
}

impl Pending {
    fn running(&self) -> bool {
        matches!(*self.outcome.lock(), Outcome::Running)
    }

    /// Blocks (detached from the interpreter) until the leader finishes; checks for signals
    /// (Ctrl-C) regularly.
    pub fn wait(&self, py: Python<'_>) -> PyResult<()> {
        loop {
            let done = py.detach(|| {
                let mut outcome = self.outcome.lock();
                if matches!(*outcome, Outcome::Running) {
                    self.finished.wait_for(&mut outcome, Duration::from_millis(50));
                }
                !matches!(*outcome, Outcome::Running)
            });
            if done {
                return Ok(());
            }
            py.check_signals()?;
        }
    }

    /// The outcome, once finished (`None` while running).
    pub fn outcome(&self, py: Python<'_>) -> Option<Result<Py<PyAny>, Option<PyErr>>> {
        match &*self.outcome.lock() {
            Outcome::Running => None,
            Outcome::Value(v) => Some(Ok(v.clone_ref(py))),
            Outcome::Error(e) => Some(Err(Some(PyErr::from_value(e.bind(py).clone().into_any())))),
            Outcome::Abandoned => Some(Err(None)),
        }
    }

    /// Registers an asyncio future to be resolved when the call finishes; returns false
    /// (and registers nothing) if it already has.
    pub fn add_waker(&self, future: Py<PyAny>) -> bool {
        let mut wakers = self.wakers.lock();
        if matches!(*self.outcome.lock(), Outcome::Running) {
            wakers.push(future);
            true
        } else {
            false
        }
    }
}

/// Resolves an asyncio future with `None` unless it is already done (cancelled), from any
/// thread: on a loop that is not running in this thread, through `call_soon_threadsafe`.
fn wake(py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0(pyo3::intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    let asyncio = py.import(pyo3::intern!(py, "asyncio"))?;
    let running = asyncio.call_method0(pyo3::intern!(py, "_get_running_loop"))?;
    let target = future.call_method0(pyo3::intern!(py, "get_loop"))?;
    if running.is(&target) {
        future.call_method1(pyo3::intern!(py, "set_result"), (py.None(),))?;
    } else {
        let resolve = pyo3::wrap_pyfunction!(resolve_future, py)?;
        target.call_method1(pyo3::intern!(py, "call_soon_threadsafe"), (resolve, future))?;
    }
    Ok(())
}

/// Sets a future's result to `None` unless it is done (scheduled on the future's own loop).
#[pyfunction]
fn resolve_future(future: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = future.py();
    if !future.call_method0(pyo3::intern!(py, "done"))?.is_truthy()? {
        future.call_method1(pyo3::intern!(py, "set_result"), (py.None(),))?;
    }
    Ok(())
}
