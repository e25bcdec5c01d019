//! The seven cache classes: one row each. Every row names the policy and the capabilities
//! (groups of Python methods) the class has; `cache_pyclass!` stamps the class, its iterator
//! class and all the methods from the shared template, and the logic lives in `CacheCore<P>`.

use cachebox_macros::{cache_pyclass, native_cache_enum};

use crate::base::BaseCacheImpl;
use crate::core::{CacheCore, CoreIter, MemoCache};
use crate::mapping_slots::{self, FastMapping};
use crate::policy::{Fifo, Lfu, Lru, Ttl, Unordered, Vttl};
use crate::store::ItemsLookup;

type NoEvict = Unordered<false>;
type Random = Unordered<true>;

cache_pyclass! {
    /// A plain hash map with a size limit: never evicts; inserting a new key when full raises
    /// `OverflowError`.
    Cache { core: CacheCore<NoEvict>, iter: CoreIter<NoEvict>, base: BaseCacheImpl, caps: [init, write] }
}

cache_pyclass! {
    /// First In, First Out: evicts the oldest entry.
    FIFOCache { core: CacheCore<Fifo>, iter: CoreIter<Fifo>, base: BaseCacheImpl, caps: [init, write, first_last] }
}

cache_pyclass! {
    /// Random Replacement: evicts a uniformly random entry.
    RRCache { core: CacheCore<Random>, iter: CoreIter<Random>, base: BaseCacheImpl, caps: [init, write, random_key] }
}

cache_pyclass! {
    /// Least Recently Used: evicts the entry unused for the longest time.
    LRUCache { core: CacheCore<Lru>, iter: CoreIter<Lru>, base: BaseCacheImpl, caps: [init, write, peek, lru_order] }
}

cache_pyclass! {
    /// Least Frequently Used: evicts the entry read the fewest times.
    LFUCache { core: CacheCore<Lfu>, iter: CoreIter<Lfu>, base: BaseCacheImpl, caps: [init, write, peek, lfu_order] }
}

cache_pyclass! {
    /// FIFO with a time-to-live: every entry expires `ttl` seconds after it was written.
    TTLCache { core: CacheCore<Ttl>, iter: CoreIter<Ttl>, base: BaseCacheImpl, caps: [init_ttl, write, first_last, expiring] }
}

cache_pyclass! {
    /// Per-key time-to-live: each entry expires when its own `ttl` runs out; evicts the entry
    /// closest to expiry.
    VTTLCache { core: CacheCore<Vttl>, iter: CoreIter<Vttl>, base: BaseCacheImpl, caps: [init_vttl, write_vttl, expiring] }
}

native_cache_enum! {
    /// A cache the decorators can drive without Python-level method calls.
    NativeCache as MemoCache, items: ItemsLookup: [Cache, FIFOCache, RRCache, LRUCache, LFUCache, TTLCache, VTTLCache]
}

/// Serves the mapping slots of every class directly (`mapping_slots`).
macro_rules! fast_mapping {
    ($($name:ident: $policy:ty),* $(,)?) => {
        $(impl FastMapping for $name {
            type P = $policy;
            #[inline(always)]
            fn core_of(&self) -> &CacheCore<$policy> {
                self.core()
            }
            fn pyo3_get() -> &'static std::sync::OnceLock<pyo3::ffi::PyCFunctionFastWithKeywords> {
                static CELL: std::sync::OnceLock<pyo3::ffi::PyCFunctionFastWithKeywords> = std::sync::OnceLock::new();
                &CELL
            }
        })*

        /// Installs the direct mapping slots on every class (module init).
        pub fn install_fast_slots(py: pyo3::Python<'_>) -> pyo3::PyResult<()> {
            $(mapping_slots::install::<$name>(py)?;)*
            Ok(())
        }
    };
}

fast_mapping! {
    Cache: NoEvict,
    FIFOCache: Fifo,
    RRCache: Random,
    LRUCache: Lru,
    LFUCache: Lfu,
    TTLCache: Ttl,
    VTTLCache: Vttl,
}
