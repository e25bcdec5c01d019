//! cachebox's native module `cachebox._core`.
//!
//! Free-threading: every cache keeps all of its state behind one mutex (`sync::Guarded`), taken
//! for each operation; iterators hold their own mutex; decorated functions' counters are
//! atomics. Nothing is meant to rely on the GIL for exclusion, but no free-threaded interpreter
//! has run the thread, GC and re-entrancy suites yet, so the module declares `gil_used = true`:
//! a free-threaded interpreter then keeps its GIL on while cachebox is loaded (and says so).

// The direct C entry points (`direct_slot`, `mapping_slots`, `decorators::call_slots`) and the
// reading of int headers rely on how CPython lays out and dispatches its objects, which PyPy's
// emulation of the C API does not promise: on PyPy they are compiled out and pyo3's own slots
// serve. What only the entry points call (the decorators' vectorcall lookup) stays compiled
// there, unused: hence the `allow`s.
mod base;
mod classes;
mod clock;
#[cfg_attr(PyPy, allow(dead_code))]
mod convert;
#[cfg_attr(PyPy, allow(dead_code))]
mod core;
#[cfg_attr(PyPy, allow(dead_code))]
mod decorators;
#[cfg(not(PyPy))]
mod direct_slot;
mod entry;
mod mapping_slots;
mod policy;
mod prefetch;
#[cfg(PyPy)]
mod pypy_new;
mod store;
mod sync;

/// Internals re-exported for the cargo-fuzz target in `tests/fuzz/rust` (not a public API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::clock::{advance as advance_clock, now};
    pub use crate::convert::hash_key;
    pub use crate::entry::{fold_hash, Entry, BIG_SIZE};
    pub use crate::policy::{Fifo, Lfu, Lru, NewMeta, Policy, Ttl, Unordered, Vttl};
    pub use crate::store::{
        Cause, Charge, Inserted, Limits, Probe, Replaced, SetDefault, Store, Trash, Walk, UNLIMITED,
    };
    pub use crate::sync::Owner;
}

use pyo3::prelude::*;

#[pymodule(gil_used = true)]
mod _core {
    #[pymodule_export]
    use crate::base::{BaseCacheImpl, Frozen};
    #[pymodule_export]
    use crate::classes::{Cache, FIFOCache, LFUCache, LRUCache, RRCache, TTLCache, VTTLCache};
    #[pymodule_export]
    use crate::decorators::{
        cached, cachedmethod, is_cached, make_hash_key, make_key, make_typed_key, CachedCall, CachedFunction, Decorator,
    };

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        // pyo3 names a type "cachebox.LRUCache" at the C level, which Python's own messages
        // print ("unhashable type: 'cachebox.LRUCache'"). Re-setting `__name__` on the heap
        // type makes that "LRUCache", as for a class defined in Python; `__module__` stays.
        let classes = [
            "BaseCacheImpl",
            "Frozen",
            "Cache",
            "FIFOCache",
            "RRCache",
            "LRUCache",
            "LFUCache",
            "TTLCache",
            "VTTLCache",
        ];
        for name in classes {
            let class = m.getattr(name)?;
            class.setattr("__name__", name)?;
        }
        #[cfg(PyPy)]
        crate::pypy_new::install(m, &classes)?;
        crate::classes::install_fast_slots(m.py())?;
        crate::decorators::install_call_slots(m.py())?;
        crate::decorators::register(m)
    }

    /// Moves the TTL clock forward by `seconds` for every cache (for tests).
    #[pyfunction]
    fn _advance_clock(seconds: f64) {
        crate::clock::advance(seconds);
    }

    /// Stops (`True`) or restarts (`False`) the real TTL clock under every cache (for tests):
    /// while stopped, only `_advance_clock` moves time. Restarting resumes where it stopped.
    #[pyfunction]
    #[pyo3(signature = (frozen = true))]
    fn _freeze_clock(frozen: bool) {
        crate::clock::freeze(frozen);
    }

    /// How many callers of `func` wait for another caller's computation of the same key (for
    /// tests, which wait for this number instead of sleeping).
    #[pyfunction]
    fn _followers(py: Python<'_>, func: &Bound<'_, crate::decorators::CachedFunction>) -> PyResult<usize> {
        func.get().followers(py)
    }
}
