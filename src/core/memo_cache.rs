//! The seam between the decorators and the caches: `MemoCache`, what a memoizing decorator
//! needs from a cache it drives natively, and `NativeClasses`, through which the decorators
//! recognize the native classes without naming the class table (the module installs it).

use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use pyo3::gc::PyVisit;
use pyo3::pyclass::boolean_struct::True;
use pyo3::types::PyType;
use pyo3::{PyClass, PyTraverseError};

use super::*;

/// What a memoizing decorator needs from a cache it drives natively: lookups and stores with a
/// hash computed once by the decorator.
pub trait MemoCache: Send + Sync {
    /// `c[key]`, with the policy's touch; `None` on a miss.
    fn lookup(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>>;
    /// `lookup` of the key `(*items,)`, without building the tuple (`hash` is its hash).
    fn lookup_items(&self, py: Python<'_>, items: &[Bound<'_, PyAny>], hash: u32) -> PyResult<ItemsLookup<Py<PyAny>>>;
    /// `c[key] = value`, living `ttl` seconds when given (a per-entry TTL cache), unless
    /// `stale` is set when the lock is taken (the call was invalidated while it computed).
    fn store(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        hash: u32,
        value: &Bound<'_, PyAny>,
        put: Put<'_>,
    ) -> PyResult<()>;
    /// Removes `key`; whether it was there (the listener hears of it as `explicit`).
    fn invalidate(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<bool>;
}

/// How a decorator stores a result.
#[derive(Clone, Copy, Default)]
pub struct Put<'a> {
    /// Seconds to live, for a cache with per-entry TTLs; `None`: the cache's default.
    pub ttl: Option<f64>,
    /// Checked under the cache's lock: when set, nothing is stored. An invalidation sets it
    /// before it takes the lock to remove the entry, so a result computed before the
    /// invalidation is either stored first (and removed by it) or not stored at all.
    pub stale: Option<&'a AtomicBool>,
}

impl<P: Policy> MemoCache for CacheCore<P> {
    #[inline(always)]
    fn lookup(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>> {
        let probe = Probe { key, hash, owner: self.store.owner() };
        let mut store = self.lock(py)?;
        store.get(py, &probe, |entry| entry.value.clone_ref(py))
    }

    #[inline(always)]
    fn lookup_items(&self, py: Python<'_>, items: &[Bound<'_, PyAny>], hash: u32) -> PyResult<ItemsLookup<Py<PyAny>>> {
        let mut store = self.lock(py)?;
        store.get_items(py, hash, self.store.owner(), items, |entry| entry.value.clone_ref(py))
    }

    fn store(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        hash: u32,
        value: &Bound<'_, PyAny>,
        put: Put<'_>,
    ) -> PyResult<()> {
        let probe = Probe { key, hash, owner: self.store.owner() };
        let charge = self.charge(key, value)?;
        let meta = match put.ttl {
            Some(ttl) => Self::expiring(Some(ttl)),
            None => NewMeta::default(),
        };
        let inserted = self.charged(
            py,
            charge,
            |store, charge, trash| {
                if put.stale.is_some_and(|stale| stale.load(Ordering::SeqCst)) {
                    return Ok(None);
                }
                store.insert(py, &probe, value, charge, meta, trash).map(Some)
            },
            |inserted| match inserted {
                Some(Inserted::NeedsKeySize(stored)) => Err(stored),
                other => Ok(other),
            },
        )?;
        drop(inserted);
        Ok(())
    }

    fn invalidate(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<bool> {
        let probe = Probe { key, hash, owner: self.store.owner() };
        Ok(match self.pop_probe(py, &probe)? {
            Some((entry, _)) => {
                entry.release(py);
                true
            }
            None => false,
        })
    }
}

/// A native cache class: a frozen pyclass around one `CacheCore`.
pub trait NativeClass: PyClass<Frozen = True> + Sync {
    type P: Policy;
    fn core_of(&self) -> &CacheCore<Self::P>;
}

/// Something done for each native class with its concrete type, so that what it builds
/// dispatches statically (the module drives it over the class table: `classes::visit_classes`).
pub trait ClassVisitor {
    fn visit<C: NativeClass>(&mut self);
}

/// A native cache the holder keeps alive: the decorators' fixed cache.
pub trait CacheHandle: MemoCache {
    /// The cache object, for the holder's `__traverse__` (the handle is a reference to it).
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError>;
}

pub type NativeHandle = Box<dyn CacheHandle>;

struct Owned<C: NativeClass>(Py<C>);

impl<C: NativeClass> MemoCache for Owned<C> {
    #[inline(always)]
    fn lookup(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>> {
        self.0.get().core_of().lookup(py, key, hash)
    }

    #[inline(always)]
    fn lookup_items(&self, py: Python<'_>, items: &[Bound<'_, PyAny>], hash: u32) -> PyResult<ItemsLookup<Py<PyAny>>> {
        self.0.get().core_of().lookup_items(py, items, hash)
    }

    fn store(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        hash: u32,
        value: &Bound<'_, PyAny>,
        put: Put<'_>,
    ) -> PyResult<()> {
        MemoCache::store(self.0.get().core_of(), py, key, hash, value, put)
    }

    fn invalidate(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<bool> {
        self.0.get().core_of().invalidate(py, key, hash)
    }
}

impl<C: NativeClass> CacheHandle for Owned<C> {
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.0)
    }
}

/// The cache inside `obj` when `obj` is exactly a `C` (a Python subclass may override methods).
pub fn borrow_as<'a, C: NativeClass>(obj: &'a Bound<'_, PyAny>) -> Option<&'a dyn MemoCache> {
    obj.cast_exact::<C>().ok().map(|c| c.get().core_of() as &dyn MemoCache)
}

/// A handle on `obj` when `obj` is exactly a `C`.
pub fn own_as<C: NativeClass>(obj: &Bound<'_, PyAny>) -> Option<NativeHandle> {
    obj.cast_exact::<C>().ok().map(|c| Box::new(Owned(c.clone().unbind())) as NativeHandle)
}

/// The native classes as the decorators see them.
pub struct NativeClasses {
    /// The cache inside `obj`, when its exact class is native.
    pub borrow: for<'a, 'py> fn(&'a Bound<'py, PyAny>) -> Option<&'a dyn MemoCache>,
    /// A handle on `obj`, when its exact class is native.
    pub own: fn(&Bound<'_, PyAny>) -> Option<NativeHandle>,
    /// The class `cached()` makes its cache from when it is given none (or a `dict`).
    pub unbounded: for<'py> fn(Python<'py>) -> Bound<'py, PyType>,
    /// Whether `obj` is a cache with per-entry TTLs (what `cached(..., ttl=...)` needs).
    pub per_entry_ttl: fn(&Bound<'_, PyAny>) -> bool,
}

static NATIVE_CLASSES: OnceLock<NativeClasses> = OnceLock::new();

/// Makes the native classes known to the decorators (module init, before any decorator runs).
pub fn install_native_classes(classes: NativeClasses) {
    let _ = NATIVE_CLASSES.set(classes);
}

/// The native classes installed at module init.
pub fn native_classes() -> PyResult<&'static NativeClasses> {
    NATIVE_CLASSES.get().ok_or_else(|| PyRuntimeError::new_err("cachebox's native classes are not installed"))
}
