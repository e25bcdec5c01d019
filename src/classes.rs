//! The class table: one row per cache class, the only list of them in the crate. A row names
//! the class, its policy and its capabilities (groups of Python methods); `class_table!`
//! stamps each class with `cache_pyclass!` (the logic lives in `CacheCore<P>`) and derives
//! everything else that needs the list: the module's exports and `CACHE_CLASSES`, the native
//! classes the decorators recognize, and the direct mapping slots.

use cachebox_macros::cache_pyclass;

use crate::base::BaseCacheImpl;
use crate::core::{
    borrow_as, own_as, CacheCore, ClassVisitor, CoreIter, MemoCache, NativeClass, NativeClasses, NativeHandle,
};
use crate::mapping_slots::{self, FastMapping};
use crate::policy::{Fifo, Lfu, Lru, Ttl, Unordered, Vttl};

type NoEvict = Unordered<false>;
type Random = Unordered<true>;

/// pyo3 names a type "cachebox.LRUCache" at the C level, which Python's own messages print
/// ("unhashable type: 'cachebox.LRUCache'"). Re-setting `__name__` on the heap type makes
/// that "LRUCache", as for a class defined in Python; `__module__` stays.
pub fn set_plain_name(class: &pyo3::Bound<'_, pyo3::types::PyType>, name: &str) -> pyo3::PyResult<()> {
    use pyo3::types::PyAnyMethods;
    class.setattr("__name__", name)
}

macro_rules! class_table {
    ($($(#[doc = $doc:literal])* $name:ident: $policy:ty [$($cap:ident),* $(,)?]),+ $(,)?) => {
        $(
            cache_pyclass! {
                $(#[doc = $doc])*
                $name { core: CacheCore<$policy>, iter: CoreIter<$policy>, base: BaseCacheImpl, caps: [$($cap),*] }
            }

            impl NativeClass for $name {
                type P = $policy;
                #[inline(always)]
                fn core_of(&self) -> &CacheCore<$policy> {
                    self.core()
                }
            }

            impl FastMapping for $name {
                fn pyo3_get() -> &'static std::sync::OnceLock<pyo3::ffi::PyCFunctionFastWithKeywords> {
                    static CELL: std::sync::OnceLock<pyo3::ffi::PyCFunctionFastWithKeywords> =
                        std::sync::OnceLock::new();
                    &CELL
                }
            }
        )+

        /// Adds every class to the module, and `CACHE_CLASSES`, the tuple of them in table
        /// order (what the package's `__all__`, the tests and the benchmarks read).
        pub fn add_classes(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
            use pyo3::types::PyModuleMethods;
            let py = m.py();
            $(
                m.add_class::<$name>()?;
                set_plain_name(&py.get_type::<$name>(), stringify!($name))?;
            )+
            m.add("CACHE_CLASSES", ($(py.get_type::<$name>(),)+))
        }

        /// The class names, in table order.
        pub const CLASS_NAMES: &[&str] = &[$(stringify!($name)),+];

        /// The native classes as the decorators see them.
        pub fn native_classes() -> NativeClasses {
            fn borrow<'a>(obj: &'a pyo3::Bound<'_, pyo3::PyAny>) -> Option<&'a dyn MemoCache> {
                let none: Option<&'a dyn MemoCache> = None;
                none$(.or_else(|| borrow_as::<$name>(obj)))+
            }
            fn own(obj: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<NativeHandle> {
                let none: Option<NativeHandle> = None;
                none$(.or_else(|| own_as::<$name>(obj)))+
            }
            NativeClasses {
                borrow,
                own,
                unbounded: |py| py.get_type::<FIFOCache>(),
                per_entry_ttl: |obj| pyo3::types::PyAnyMethods::is_instance_of::<VTTLCache>(obj),
            }
        }

        /// Runs `visitor` over every class, with its concrete type (the vectorcall entries, which
        /// PyPy does without).
        #[cfg_attr(PyPy, allow(dead_code))]
        pub fn visit_classes(visitor: &mut impl ClassVisitor) {
            $(visitor.visit::<$name>();)+
        }

        /// Installs the direct mapping slots on every class (module init).
        pub fn install_fast_slots(py: pyo3::Python<'_>) -> pyo3::PyResult<()> {
            $(mapping_slots::install::<$name>(py)?;)+
            Ok(())
        }
    };
}

class_table! {
    /// A plain hash map with a size limit: never evicts; inserting a new key when full raises
    /// `OverflowError`.
    Cache: NoEvict [init, write],
    /// First In, First Out: evicts the oldest entry.
    FIFOCache: Fifo [init, write, first_last],
    /// Random Replacement: evicts a uniformly random entry.
    RRCache: Random [init, write, random_key],
    /// Least Recently Used: evicts the entry unused for the longest time.
    LRUCache: Lru [init, write, peek, lru_order],
    /// Least Frequently Used: evicts the entry read the fewest times.
    LFUCache: Lfu [init, write, peek, lfu_order],
    /// FIFO with a time-to-live: every entry expires `ttl` seconds after it was written.
    TTLCache: Ttl [init_ttl, write, first_last, expiring],
    /// Per-key time-to-live: each entry expires when its own `ttl` runs out; evicts the entry
    /// closest to expiry.
    VTTLCache: Vttl [init_vttl, write_vttl, expiring],
}
