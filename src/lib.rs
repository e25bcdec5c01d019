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
mod tier;

/// Internals re-exported for the cargo-fuzz target in `tests/fuzz/rust` (not a public API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::clock::{advance as advance_clock, now};
    pub use crate::convert::hash_key;
    pub use crate::entry::{fold_hash, Entry, BIG_SIZE};
    pub use crate::policy::{Fifo, Lfu, Lru, NewMeta, Policy, Storage, Ttl, Unordered, Vttl};
    pub use crate::store::{Cause, Charge, Hooks, Inserted, Limits, Probe, Replaced, Store, Trash, Walk, UNLIMITED};
    pub use crate::sync::Owner;
}

use pyo3::prelude::*;

#[pymodule(gil_used = true)]
mod _core {
    #[pymodule_export]
    use crate::base::{BaseCacheImpl, Frozen};
    #[pymodule_export]
    use crate::decorators::{
        cached, cachedmethod, is_cached, make_hash_key, make_key, make_typed_key, BoundCachedFunction, CachedCall,
        CachedFunction, Decorator, TieredValue,
    };

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        let py = m.py();
        crate::classes::set_plain_name(&py.get_type::<crate::base::BaseCacheImpl>(), "BaseCacheImpl")?;
        crate::classes::set_plain_name(&py.get_type::<crate::base::Frozen>(), "Frozen")?;
        crate::classes::add_classes(m)?;
        #[cfg(PyPy)]
        {
            let mut names = vec!["BaseCacheImpl", "Frozen"];
            names.extend_from_slice(crate::classes::CLASS_NAMES);
            crate::pypy_new::install(m, &names)?;
        }
        crate::core::install_native_classes(crate::classes::native_classes());
        crate::classes::install_fast_slots(py)?;
        crate::decorators::install_call_slots(py)?;
        #[cfg(not(PyPy))]
        {
            let mut vectorcalls = crate::decorators::NativeVectorcalls::new(py);
            crate::classes::visit_classes(&mut vectorcalls);
            vectorcalls.install();
        }
        crate::decorators::register(m)?;
        // `__all__` is the public API, which `from cachebox._core import *` gives the package;
        // its class names come from the class table. (pyo3 lists every name added, the test
        // hooks and the decorators' object types included.)
        let mut public = vec![
            "BaseCacheImpl",
            "CacheInfo",
            "EVENT_HIT",
            "EVENT_MISS",
            "Frozen",
            "TieredValue",
            "__version__",
            "cached",
            "cachedmethod",
            "is_cached",
            "make_hash_key",
            "make_key",
            "make_typed_key",
        ];
        public.extend_from_slice(crate::classes::CLASS_NAMES);
        public.sort_unstable();
        m.setattr("__all__", public)
    }

    /// Moves the TTL clock forward by `seconds` for every cache (for tests).
    #[pyfunction]
    fn _advance_clock(seconds: f64) {
        crate::clock::advance(seconds);
    }

    /// The canonical bytes of `key` for the shared tier: the same in every process, whatever
    /// its hash seed or interpreter.
    #[pyfunction]
    fn _encode_key<'py>(key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        Ok(pyo3::types::PyBytes::new(key.py(), &crate::tier::encode_key(key)?))
    }

    /// The key that `_encode_key` wrote as `data`; `ValueError` if `data` is not such bytes.
    #[pyfunction]
    fn _decode_key<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        crate::tier::decode_key(py, data)
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
