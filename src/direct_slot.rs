//! The trampoline of cachebox's direct C entry points: the cache types' mapping slots
//! (`mapping_slots`) and the calls of decorated functions (`decorators::call_slots`).
//!
//! pyo3 stamps those slots too, and they are installed first; cachebox then points them at
//! leaner functions that call the very same methods, leaving out pyo3's trampoline, its slot
//! wrapper and its argument handling (two thread-local lookups among them).
//!
//! What pyo3's trampoline does and how `run` stands in for it:
//! - It asserts the thread is attached: CPython calls a type slot only from an attached
//!   thread, so `Python::assume_attached` is sound here.
//! - It counts the attachment in a thread-local, which a `Py<T>` drop reads to decide whether
//!   to decref now or to defer it to pyo3's pool. `run` does not count, so nothing it runs may
//!   drop a `Py<T>`: every reference given up goes through `Bound` (a direct decref; see
//!   `Trash`, `Entry::release`, `CacheCore::insert`). The test builds enforce it: `make test`
//!   compiles pyo3 without its pool (`--cfg pyo3_disable_reference_pool`), where such a drop
//!   aborts the process instead of being deferred, and `tests/test_impls.py` checks that
//!   removed and replaced values are freed at once.
//! - It turns a panic into `PanicException`: `catch_unwind` below does the same.
//! - It type-checks `self`: each slot casts it (a subclass instance passes; anything else
//!   gets a `TypeError`, which CPython never lets happen for a slot of its type).

#![allow(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::panic::PanicException;
use pyo3::prelude::*;

/// Runs `body` with the interpreter token; a panic becomes `PanicException`, an error is
/// raised, and either way `failed` is returned.
///
/// # Safety
/// The calling thread must be attached to the interpreter (true inside a type slot).
#[inline(always)]
pub unsafe fn run<R>(failed: R, body: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    // SAFETY: the caller guarantees the thread is attached; the token does not outlive this
    // call.
    let py = unsafe { Python::assume_attached() };
    match catch_unwind(AssertUnwindSafe(|| body(py))) {
        Ok(Ok(out)) => out,
        Ok(Err(err)) => raise(err, failed),
        Err(_) => raise(PanicException::new_err("cachebox panicked (a bug: please report it)"), failed),
    }
}

/// Raises `err`. Raising a lazily built error drops its type and value as `Py` references, so
/// it happens inside `Python::attach` (which counts the attachment: the drops decref at once).
#[cold]
#[inline(never)]
fn raise<R>(err: PyErr, failed: R) -> R {
    Python::attach(|py| err.restore(py));
    failed
}
