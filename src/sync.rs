//! `Guarded<T>`: the one lock each cache owns.
//!
//! Why not a plain mutex:
//! - A key's `__eq__` runs while the lock is held. If it (or a `__del__`, or a GC pass it
//!   triggers) calls back into the *same* cache on the *same* thread, a plain mutex deadlocks.
//!   Whoever is about to run Python under the lock first records its thread as the owner
//!   (`Owner::mark`), and a failed acquisition by that same thread becomes `RuntimeError`.
//!   An operation that runs no Python under the lock cannot be re-entered, so it needs no
//!   owner; the owner is the attached thread's state, read without a thread-local lookup.
//! - A thread that waits for the lock must not keep the interpreter attached (with the GIL, the
//!   owner may be waiting for it inside `__eq__`), so the slow path waits detached.
//! - With the GIL, the lock word needs no atomic read-modify-write at all (see `RawLock`).
//!
//! Free-threading: the lock word is parking_lot's raw mutex; the owner word is only ever
//! compared against the *current* thread's own id, and is reset before the lock is released,
//! so a stale value can never produce a false positive; `Relaxed` ordering is enough for it.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

thread_local! {
    static THREAD_MARK: u8 = const { 0 };
}

/// A non-zero id unique to the current thread while it lives (the address of a thread-local).
#[inline]
pub fn thread_id() -> usize {
    THREAD_MARK.with(|mark| std::ptr::from_ref(mark) as usize)
}

/// The attached thread's interpreter state: no two threads attached at the same time share
/// one, and it is read without a thread-local lookup of this library's own (which, in a shared
/// library, is a call: the owner is marked on every key comparison of a probe).
#[allow(unsafe_code)]
#[inline]
fn attached_thread(_py: Python<'_>) -> usize {
    // SAFETY: a `Python` token means this thread is attached, hence has a current thread state,
    // which is all `PyThreadState_Get` reads (it aborts only when there is none).
    unsafe { pyo3::ffi::PyThreadState_Get() as usize }
}

/// The lock word of a `Guarded`, taken and released only by threads attached to the
/// interpreter (every `lock` takes a `Python` token; `try_lock` is for the collector, which
/// runs attached).
///
/// With the GIL, attached threads run one at a time, and the GIL's hand-over orders their
/// memory accesses. The word then needs no atomic read-modify-write: a plain load and store
/// (relaxed atomics, ordinary moves on x86) cannot race with another thread, because another
/// thread only runs while the holder has released the GIL, which it does only inside Python
/// code it runs under the lock (a key's `__eq__`), after marking the owner. A locked
/// instruction pair per operation is a measurable part of a cache hit.
#[cfg(not(Py_GIL_DISABLED))]
struct RawLock(std::sync::atomic::AtomicBool);

#[cfg(not(Py_GIL_DISABLED))]
impl RawLock {
    const fn new() -> Self {
        Self(std::sync::atomic::AtomicBool::new(false))
    }

    #[inline(always)]
    fn try_lock(&self) -> bool {
        if self.0.load(Ordering::Relaxed) {
            return false;
        }
        self.0.store(true, Ordering::Relaxed);
        true
    }

    /// Waits, detached, until the holder (another thread, inside Python code under the lock)
    /// is done. The holder needs the GIL to finish, so the waiter must not keep it; there is
    /// nothing to block on without an atomic word, so the waiter polls, backing off from
    /// yielding to short sleeps.
    #[cold]
    fn lock_waiting(&self, py: Python<'_>) {
        let mut round = 0u32;
        while !self.try_lock() {
            py.detach(|| {
                if round < 16 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(20 << (round - 16).min(6)));
                }
            });
            round = round.saturating_add(1);
        }
    }

    #[inline(always)]
    fn unlock(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Free-threaded builds: attached threads run at once, so the word is a real mutex.
#[cfg(Py_GIL_DISABLED)]
struct RawLock(parking_lot::RawMutex);

#[cfg(Py_GIL_DISABLED)]
impl RawLock {
    const fn new() -> Self {
        Self(<parking_lot::RawMutex as parking_lot::lock_api::RawMutex>::INIT)
    }

    #[inline(always)]
    fn try_lock(&self) -> bool {
        parking_lot::lock_api::RawMutex::try_lock(&self.0)
    }

    /// Blocks detached (the holder may need this thread to detach, e.g. for a collection).
    #[cold]
    fn lock_waiting(&self, py: Python<'_>) {
        py.detach(|| parking_lot::lock_api::RawMutex::lock(&self.0));
    }

    #[allow(unsafe_code)]
    #[inline(always)]
    fn unlock(&self) {
        // SAFETY: called only by `Locked::drop`, i.e. by the holder of the lock.
        unsafe { parking_lot::lock_api::RawMutex::unlock(&self.0) }
    }
}

pub struct Guarded<T> {
    lock: RawLock,
    value: UnsafeCell<T>,
    owner: Owner,
}

// SAFETY: `value` is only reached through a `Locked`, which exists only while `lock` is held
// (so one thread at a time); `T: Send` lets that thread be any thread.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Guarded<T> {}

/// The thread that holds a `Guarded` lock *and* may run Python under it (0: none).
#[derive(Default)]
pub struct Owner(AtomicUsize);

impl Owner {
    pub const fn new() -> Self {
        Self(AtomicUsize::new(0))
    }

    /// Records the current thread as the lock's owner: call before running Python code while
    /// holding the lock.
    #[inline]
    pub fn mark(&self, py: Python<'_>) {
        self.0.store(attached_thread(py), Ordering::Relaxed);
    }

    #[inline]
    fn is_current(&self, py: Python<'_>) -> bool {
        self.0.load(Ordering::Relaxed) == attached_thread(py)
    }

    #[inline]
    fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// Access to a `Guarded` value while its lock is held; unlocks when dropped.
pub struct Locked<'a, T> {
    guarded: &'a Guarded<T>,
}

impl<T> Guarded<T> {
    pub fn new(value: T) -> Self {
        Self { lock: RawLock::new(), value: UnsafeCell::new(value), owner: Owner::default() }
    }

    /// The owner marker, for code that runs Python under this lock (`Owner::mark`).
    #[inline]
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// Locks for an operation. Same-thread re-entry from Python code run under the lock (whose
    /// caller marked the owner) raises `RuntimeError`.
    #[inline(always)]
    pub fn lock(&self, py: Python<'_>) -> PyResult<Locked<'_, T>> {
        if self.lock.try_lock() {
            Ok(Locked { guarded: self })
        } else {
            self.lock_contended(py)
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self, py: Python<'_>) -> PyResult<Locked<'_, T>> {
        if self.owner.is_current(py) {
            return Err(PyRuntimeError::new_err(
                "cache re-entered while it is busy (from __eq__, __del__ or a GC pass on the same \
                 thread); this operation is not allowed",
            ));
        }
        self.lock.lock_waiting(py);
        Ok(Locked { guarded: self })
    }

    /// `lock`, for a holder that runs Python code throughout (marks the owner at once).
    pub fn lock_marked(&self, py: Python<'_>) -> PyResult<Locked<'_, T>> {
        let locked = self.lock(py)?;
        self.owner.mark(py);
        Ok(locked)
    }

    /// Never blocks: used by `__traverse__` and `__clear__`, which must not wait (the
    /// collector runs attached, as every locker must).
    #[inline]
    pub fn try_lock(&self) -> Option<Locked<'_, T>> {
        // `then`, not `then_some`: a `Locked` built for nothing would unlock when dropped.
        self.lock.try_lock().then(|| Locked { guarded: self })
    }
}

impl<T: Default> Default for Guarded<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> Drop for Locked<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.guarded.owner.clear();
        self.guarded.lock.unlock();
    }
}

#[allow(unsafe_code)]
impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this `Locked` holds the lock, so no other reference to the value is live
        // except through this guard (which hands out borrows tied to itself).
        unsafe { &*self.guarded.value.get() }
    }
}

#[allow(unsafe_code)]
impl<T> std::ops::DerefMut for Locked<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow exclusive among the guard's.
        unsafe { &mut *self.guarded.value.get() }
    }
}

/// A statistics counter (decorator hits and misses), bumped only by threads attached to the
/// interpreter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn bump(&self) {
        #[cfg(Py_GIL_DISABLED)]
        self.0.fetch_add(1, Ordering::Relaxed);
        // With the GIL, bumps are serialized by it: a plain load and store cannot lose one, and
        // avoid a locked read-modify-write on every call.
        #[cfg(not(Py_GIL_DISABLED))]
        self.0.store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_excludes_and_reports_reentry() {
        Python::attach(|py| {
            let guarded = Guarded::new(vec![1]);
            {
                let mut locked = guarded.lock(py).unwrap();
                locked.push(2);
                assert!(guarded.try_lock().is_none(), "held: try_lock must fail");
                guarded.owner().mark(py);
                let err = guarded.lock(py).err().expect("same-thread re-entry must raise");
                assert!(err.is_instance_of::<PyRuntimeError>(py));
            }
            let again = guarded.try_lock().expect("released on drop");
            assert_eq!(*again, vec![1, 2]);
            drop(again);
            assert!(!guarded.owner.is_current(py), "the owner is cleared on release");
        });
    }

    #[test]
    fn a_waiter_gets_the_lock_after_the_holder_releases_it() {
        // The holder keeps the lock while detached (as inside a key's `__eq__`); the waiter
        // must wait detached, not spin attached, or the holder could never re-attach.
        let guarded = std::sync::Arc::new(Guarded::new(0u32));
        Python::attach(|py| {
            let locked = guarded.lock(py).unwrap();
            let waiter = {
                let guarded = guarded.clone();
                std::thread::spawn(move || Python::attach(|py| *guarded.lock(py).unwrap() += 1))
            };
            py.detach(|| std::thread::sleep(std::time::Duration::from_millis(50)));
            drop(locked);
            py.detach(|| waiter.join().unwrap());
            assert_eq!(*guarded.try_lock().unwrap(), 1);
        });
    }
}

/// The free-threaded lock path, checked without an interpreter (`make test-free-threaded` runs
/// these on a free-threaded configuration, where no interpreter can be linked in): threads that
/// really run at once must not both hold a `Guarded`, and must not lose a `Counter` bump.
#[cfg(all(test, Py_GIL_DISABLED))]
mod free_threaded_tests {
    use super::*;

    const THREADS: usize = 4;
    const ROUNDS: u64 = 20_000;

    #[test]
    fn guarded_excludes_threads_running_at_once() {
        let guarded = Guarded::new((0u64, 0u64));
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for _ in 0..ROUNDS {
                        let mut locked = loop {
                            match guarded.try_lock() {
                                Some(locked) => break locked,
                                None => std::hint::spin_loop(),
                            }
                        };
                        // A read, a pause and a write: another holder in between would show.
                        let (count, _) = *locked;
                        std::hint::spin_loop();
                        *locked = (count + 1, count);
                    }
                });
            }
        });
        let total = THREADS as u64 * ROUNDS;
        assert_eq!(*guarded.try_lock().expect("released"), (total, total - 1));
    }

    #[test]
    fn counter_bumps_from_threads_running_at_once_are_all_counted() {
        let counter = Counter::default();
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| (0..ROUNDS).for_each(|_| counter.bump()));
            }
        });
        assert_eq!(counter.get(), THREADS as u64 * ROUNDS);
    }
}
