//! `Guarded<T>`: the one mutex each cache owns.
//!
//! Why not a plain `parking_lot::Mutex`:
//! - A key's `__eq__` runs while the lock is held. If it (or a `__del__`, or a GC pass it
//!   triggers) calls back into the *same* cache on the *same* thread, a plain mutex deadlocks.
//!   We record the owning thread and turn that re-entry into `RuntimeError`.
//! - A thread that blocks on the lock must not keep the interpreter attached (with the GIL, the
//!   owner may be waiting for it inside `__eq__`), so the slow path uses `lock_py_attached`,
//!   which detaches while it waits.
//!
//! Free-threading: all cache state lives behind this mutex; the owner word is only ever
//! compared against the *current* thread's own id, so a stale value written by another thread
//! can never produce a false positive, and `Relaxed` ordering is enough for it.

use std::sync::atomic::{AtomicUsize, Ordering};

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

pub struct Guarded<T> {
    mutex: Mutex<T>,
    owner: AtomicUsize,
}

pub struct Locked<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a AtomicUsize,
}

impl<T> Guarded<T> {
    pub fn new(value: T) -> Self {
        Self { mutex: Mutex::new(value), owner: AtomicUsize::new(0) }
    }

    /// Locks for a cache operation. Same-thread re-entry raises `RuntimeError`.
    #[inline]
    pub fn lock(&self, py: Python<'_>) -> PyResult<Locked<'_, T>> {
        let me = thread_id();
        let guard = match self.mutex.try_lock() {
            Some(guard) => guard,
            None => {
                if self.owner.load(Ordering::Relaxed) == me {
                    return Err(PyRuntimeError::new_err(
                        "cache re-entered while it is busy (from __eq__, __del__ or a GC pass \
                         on the same thread); this operation is not allowed",
                    ));
                }
                self.mutex.lock_py_attached(py)
            }
        };
        self.owner.store(me, Ordering::Relaxed);
        Ok(Locked { guard, owner: &self.owner })
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
        self.owner.store(0, Ordering::Relaxed);
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
