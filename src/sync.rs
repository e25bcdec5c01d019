//! `Guarded<T>`: the one mutex each cache owns.
//!
//! Why not a plain `parking_lot::Mutex`:
//! - A key's `__eq__` runs while the lock is held. If it (or a `__del__`, or a GC pass it
//!   triggers) calls back into the *same* cache on the *same* thread, a plain mutex deadlocks.
//!   Whoever is about to run Python under the lock first records its thread as the owner
//!   (`Owner::mark`), and a failed acquisition by that same thread becomes `RuntimeError`.
//!   An operation that runs no Python under the lock cannot be re-entered, so it needs no
//!   owner; the owner is the attached thread's state, read without a thread-local lookup.
//! - A thread that blocks on the lock must not keep the interpreter attached (with the GIL, the
//!   owner may be waiting for it inside `__eq__`), so the slow path uses `lock_py_attached`,
//!   which detaches while it waits.
//!
//! Free-threading: all cache state lives behind this mutex; the owner word is only ever
//! compared against the *current* thread's own id, and is reset before the mutex is released,
//! so a stale value can never produce a false positive; `Relaxed` ordering is enough for it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;

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

pub struct Guarded<T> {
    mutex: Mutex<T>,
    owner: Owner,
}

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

pub struct Locked<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a Owner,
}

impl<T> Guarded<T> {
    pub fn new(value: T) -> Self {
        Self { mutex: Mutex::new(value), owner: Owner::default() }
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
        match self.mutex.try_lock() {
            Some(guard) => Ok(Locked { guard, owner: &self.owner }),
            None => self.lock_contended(py),
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
        Ok(Locked { guard: self.mutex.lock_py_attached(py), owner: &self.owner })
    }

    /// `lock`, for a holder that runs Python code throughout (marks the owner at once).
    pub fn lock_marked(&self, py: Python<'_>) -> PyResult<Locked<'_, T>> {
        let locked = self.lock(py)?;
        self.owner.mark(py);
        Ok(locked)
    }

    /// Never blocks: used by `__traverse__` and `__clear__`, which must not wait.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.mutex.try_lock()
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
        self.owner.clear();
    }
}

impl<T> std::ops::Deref for Locked<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for Locked<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
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
