//! `CacheCore<P>`: the Python-facing half of every cache class, generic over the policy. The
//! pyclasses stamped by `cache_pyclass!` hold one of these and forward to it.
//!
//! The shape of every operation is the same, and it is the locking discipline:
//! 1. everything that can run Python (hash, `__sizeof__`, iterating arguments) happens first;
//! 2. the store is locked and changed (only a key's `__eq__` can run here);
//! 3. the lock is released, and only then are removed objects dropped (`Trash`) and results
//!    converted to Python objects (which may allocate and so trigger a GC pass).

mod memo_cache;
mod state;

pub use memo_cache::{
    borrow_as, install_native_classes, native_classes, own_as, ClassVisitor, MemoCache, NativeClass, NativeClasses,
    NativeHandle, Put,
};

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use pyo3::exceptions::{
    PyKeyError, PyMemoryError, PyNotImplementedError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::{intern, PyTraverseError};

use crate::clock;
use crate::convert::{for_each_pair, hash_key, sizeof};
use crate::entry::Entry;
use crate::policy::{NewMeta, Policy, Unordered};
use crate::store::{Cause, Charge, Hooks, Inserted, ItemsLookup, Limits, Probe, SetDefault, Store, Trash, Walk};
use crate::sync::{Guarded, Locked, Owner};

/// What an iterator yields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keys,
    Values,
    Items,
    ItemsWithExpire,
    ItemsWithFrequency,
}

/// An iterator's position. Its own mutex serializes `__next__` on one iterator object.
pub struct CoreIter<P: Policy> {
    walk: Mutex<Option<Walk<P::Cursor>>>,
    kind: Kind,
}

/// Whether `with_expire` leaves the entry in place or removes it.
#[derive(Clone, Copy)]
pub enum Take {
    Peek,
    Pop,
}

/// With more than 50 entries, `repr` shows the first 51 and then `... N more ...`.
const REPR_ITEMS: usize = 51;

#[cold]
#[inline(never)]
fn key_error(key: &Bound<'_, PyAny>) -> PyErr {
    // A tuple argument would be unpacked into several args; wrap it so `e.args == (key,)`.
    PyKeyError::new_err((key.clone().unbind(),))
}

fn empty_key_error() -> PyErr {
    PyKeyError::new_err(())
}

/// Seconds left before `expire_at`, clamped at 0; 0 for entries that never expire.
fn remaining(expire_at: f64, now: f64) -> f64 {
    if expire_at.is_finite() {
        (expire_at - now).max(0.0)
    } else {
        0.0
    }
}

/// A snapshot of one entry taken under the lock, converted after unlocking.
struct Item {
    key: Py<PyAny>,
    value: Py<PyAny>,
    expire_at: f64,
    frequency: u64,
}

pub struct CacheCore<P: Policy> {
    store: Guarded<Store<P>>,
    /// Whether the store has a weigher, read before locking: without one (the common case) an
    /// insert measures `__sizeof__` and never looks for it under the lock.
    weighs: AtomicBool,
}

/// What a weigher returned, as an entry's charge: a non-negative `int`.
fn weight(result: &Bound<'_, PyAny>) -> PyResult<usize> {
    let Ok(int) = result.cast::<pyo3::types::PyInt>() else {
        let name = result.get_type().name()?;
        return Err(PyTypeError::new_err(format!("weigher must return an int, not {name}")));
    };
    if int.lt(0)? {
        return Err(PyValueError::new_err(format!("weigher returned a negative weight: {int}")));
    }
    int.extract::<usize>().map_err(|_| PyValueError::new_err(format!("weigher returned a weight too large: {int}")))
}

/// The charge of an entry: `weigher(key, value)` if there is one, else the two `__sizeof__`.
pub(crate) fn charge_with(
    weigher: Option<&Bound<'_, PyAny>>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<Charge> {
    match weigher {
        None => Ok(Charge { key: sizeof(key)?, value: sizeof(value)?, stored_key: None, weighed: false }),
        Some(weigher) => Ok(Charge::weighed(weight(&weigher.call1((key, value))?)?)),
    }
}

/// `on_evict` or `weigher` as given to a constructor: `None` or a callable.
fn hook_arg(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Py<PyAny>>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) if v.is_callable() => Ok(Some(v.clone().unbind())),
        Some(v) => {
            let type_name = v.get_type().name()?;
            Err(PyTypeError::new_err(format!("{name} must be callable or None, not {type_name}")))
        }
    }
}

impl<P: Policy> CacheCore<P> {
    /// The state `__new__` creates; `__init__` or `__setstate__` configures it.
    pub fn unconfigured() -> Self {
        let mut store = Store::new(Limits::new(0, 0));
        store.ready = false;
        Self { store: Guarded::new(store), weighs: AtomicBool::new(false) }
    }
}

impl<P: Policy> CacheCore<P> {
    #[inline(always)]
    fn lock(&self, py: Python<'_>) -> PyResult<Locked<'_, Store<P>>> {
        let store = self.store.lock(py)?;
        if store.ready {
            Ok(store)
        } else {
            Err(PyRuntimeError::new_err("the cache is not initialized: its __init__ was not called"))
        }
    }

    /// Replaces the whole state (`__init__`, `__setstate__`, `copy`).
    pub fn install(&self, py: Python<'_>, store: Store<P>) -> PyResult<()> {
        let weighs = store.hooks.weigher.is_some();
        let old = {
            let mut current = self.store.lock(py)?;
            self.weighs.store(weighs, Ordering::Relaxed);
            std::mem::replace(&mut *current, store)
        };
        drop(old);
        Ok(())
    }

    /// The constructors' `on_evict` and `weigher`, validated.
    pub fn hooks_arg(on_evict: Option<&Bound<'_, PyAny>>, weigher: Option<&Bound<'_, PyAny>>) -> PyResult<Hooks> {
        Ok(Hooks { on_evict: hook_arg(on_evict, "on_evict")?, weigher: hook_arg(weigher, "weigher")? })
    }

    /// `c.on_evict` (`which` false) or `c.weigher` (true).
    pub fn hook(&self, py: Python<'_>, weigher: bool) -> PyResult<Option<Py<PyAny>>> {
        self.read(py, |s| {
            let hook = if weigher { &s.hooks.weigher } else { &s.hooks.on_evict };
            hook.as_ref().map(|f| f.clone_ref(py))
        })
    }

    fn policy(ttl: Option<f64>) -> PyResult<P> {
        P::with_ttl(ttl).ok_or_else(|| PyValueError::new_err("cache state does not match the class"))
    }

    /// `__init__`: a fresh store with these limits, then `self.update(iterable)` (through
    /// Python, so a subclass's `update` is honoured). `update_ttl` is VTTL's extra argument.
    #[allow(clippy::too_many_arguments)]
    pub fn init(
        &self,
        this: &Bound<'_, PyAny>,
        ttl: Option<f64>,
        maxsize: usize,
        capacity: usize,
        maxmemory: usize,
        iterable: Option<&Bound<'_, PyAny>>,
        update_ttl: Option<Option<&Bound<'_, PyAny>>>,
        hooks: Hooks,
    ) -> PyResult<()> {
        let py = this.py();
        let mut store = Store::with_policy(Self::policy(ttl)?, Limits::new(maxsize, maxmemory));
        store.reserve(capacity)?;
        store.hooks = hooks;
        self.install(py, store)?;
        match iterable {
            Some(it) if !it.is_none() => {
                let update = intern!(py, "update");
                match update_ttl {
                    Some(ttl) => this.call_method1(update, (it, ttl))?,
                    None => this.call_method1(update, (it,))?,
                };
                Ok(())
            }
            _ => Ok(()),
        }
    }

    #[inline(always)]
    fn probe<'a, 'py>(&'a self, key: &'a Bound<'py, PyAny>) -> PyResult<Probe<'a, 'py>> {
        Ok(Probe { key, hash: hash_key(key)?, owner: self.store.owner() })
    }

    #[inline(always)]
    pub fn get(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let probe = self.probe(key)?;
        let mut store = self.lock(py)?;
        store.get(py, &probe, |entry| entry.value.clone_ref(py))
    }

    #[inline(always)]
    pub fn getitem(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.get(py, key)?.ok_or_else(|| key_error(key))
    }

    #[inline(always)]
    pub fn contains(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let probe = self.probe(key)?;
        let mut store = self.lock(py)?;
        Ok(store.get(py, &probe, |_| ())?.is_some())
    }

    pub fn peek(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<(Py<PyAny>, f64)>> {
        let probe = self.probe(key)?;
        let store = self.lock(py)?;
        Ok(store.peek(py, &probe)?.map(|(v, at)| (v.clone_ref(py), at)))
    }

    pub const PEEK: Take = Take::Peek;
    pub const POP: Take = Take::Pop;

    /// `get_with_expire` (`PEEK`) and `pop_with_expire` (`POP`): `(value, seconds left)` or
    /// `(default, 0.0)`.
    pub fn with_expire(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Py<PyAny>,
        take: Take,
    ) -> PyResult<(Py<PyAny>, f64)> {
        let now = clock::now();
        let found = match take {
            Take::Peek => self.peek(py, key)?,
            Take::Pop => self.pop(py, key)?.map(|(entry, at)| (entry.value, at)),
        };
        Ok(found.map_or((default, 0.0), |(v, at)| (v, remaining(at, now))))
    }

    /// Runs `write` (an insert) until it does not ask for the size of a stored key: an update
    /// through an equal but distinct key object keeps the stored key, so the entry's charge
    /// is that key's `__sizeof__`, measured here without the lock.
    #[inline(always)]
    fn charged<T>(
        &self,
        py: Python<'_>,
        mut charge: Charge,
        mut write: impl FnMut(&mut Store<P>, Charge, &mut Trash) -> PyResult<T>,
        needs_key: impl Fn(T) -> Result<T, Py<PyAny>>,
    ) -> PyResult<T> {
        loop {
            let mut trash = Trash::new(py);
            let outcome = {
                let mut store = self.lock(py)?;
                write(&mut store, charge, &mut trash)?
            };
            drop(trash);
            match needs_key(outcome) {
                Ok(outcome) => return Ok(outcome),
                Err(stored) => {
                    // Released through `Bound` (a direct decref), like everything these paths
                    // drop: `mapping_slots` runs them without pyo3's attach count.
                    let stored = stored.into_bound(py);
                    charge.stored_key = Some((stored.as_ptr() as usize, sizeof(&stored)?));
                }
            }
        }
    }

    /// What an entry of `key` and `value` is charged, measured before locking.
    #[inline(always)]
    fn charge(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<Charge> {
        if self.weighs.load(Ordering::Relaxed) {
            return self.weighed(key, value);
        }
        charge_with(None, key, value)
    }

    /// `charge` through the weigher, fetched under the lock and called without it.
    #[cold]
    #[inline(never)]
    fn weighed(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<Charge> {
        let py = key.py();
        let weigher = self.lock(py)?.hooks.weigher.as_ref().map(|w| w.bind(py).clone());
        charge_with(weigher.as_ref(), key, value)
    }

    /// `insert`/`[]=`: returns the previous live value (as a `Bound`, so that dropping it, as
    /// `[]=` does, decrefs directly; see `Trash`).
    pub fn insert<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        meta: NewMeta,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let probe = self.probe(key)?;
        let charge = self.charge(key, value)?;
        let inserted = self.charged(
            py,
            charge,
            |store, charge, trash| store.insert(py, &probe, value, charge, meta, trash),
            |inserted| match inserted {
                Inserted::NeedsKeySize(stored) => Err(stored),
                other => Ok(other),
            },
        )?;
        Ok(match inserted {
            Inserted::Replaced(r) => {
                let old = r.value.into_bound(py);
                r.live.then_some(old)
            }
            Inserted::New | Inserted::NeedsKeySize(_) => None,
        })
    }

    pub fn setdefault(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: &Bound<'_, PyAny>,
        meta: NewMeta,
    ) -> PyResult<Py<PyAny>> {
        let probe = self.probe(key)?;
        // Sizes are only needed when the key is missing; look first so that a hit never calls
        // `__sizeof__` on the default.
        if let Some(value) = self.lock(py)?.setdefault_hit(py, &probe)? {
            return Ok(value);
        }
        let charge = self.charge(key, default)?;
        // Looked up again under the lock the insert takes: another thread may have set it.
        let outcome = self.charged(
            py,
            charge,
            |store, charge, trash| match store.setdefault_hit(py, &probe)? {
                Some(value) => Ok(SetDefault::Found(value)),
                None => store.insert(py, &probe, default, charge, meta, trash).map(SetDefault::Inserted),
            },
            |outcome| match outcome {
                SetDefault::Inserted(Inserted::NeedsKeySize(stored)) => Err(stored),
                other => Ok(other),
            },
        )?;
        Ok(match outcome {
            SetDefault::Found(value) => value,
            // Inserted (an expired entry's old value, if any, is dropped here, unlocked).
            SetDefault::Inserted(_) => default.clone().unbind(),
        })
    }

    /// Removes a live key; returns the entry and its expiry instant.
    pub fn pop(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<(Entry, f64)>> {
        let probe = self.probe(key)?;
        self.pop_probe(py, &probe)
    }

    /// `pop` of a probed key; the listener hears of it as `explicit`.
    fn pop_probe(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<(Entry, f64)>> {
        let mut trash = Trash::new(py);
        let popped = {
            let mut store = self.lock(py)?;
            let popped = store.pop(py, probe)?;
            if let (Some((entry, _)), Some(listener)) = (&popped, &store.hooks.on_evict) {
                trash.arm(Some(listener));
                trash.notice(&entry.key, &entry.value, Cause::Explicit);
            }
            popped
        };
        drop(trash);
        Ok(popped)
    }

    pub fn delitem(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        match self.pop(py, key)? {
            Some((entry, _)) => {
                entry.release(py);
                Ok(())
            }
            None => Err(key_error(key)),
        }
    }

    fn require_order(&self) -> PyResult<()> {
        if P::EVICTS {
            Ok(())
        } else {
            Err(PyNotImplementedError::new_err(()))
        }
    }

    /// `popitem`, with the expiry of the removed entry.
    pub fn popitem(&self, py: Python<'_>) -> PyResult<(Entry, f64)> {
        self.require_order()?;
        let mut trash = Trash::new(py);
        let popped = {
            let mut store = self.lock(py)?;
            let popped = store.popitem(&mut trash);
            if let (Some((entry, _)), Some(listener)) = (&popped, &store.hooks.on_evict) {
                trash.arm(Some(listener));
                trash.notice(&entry.key, &entry.value, Cause::Explicit);
            }
            popped
        };
        drop(trash);
        popped.ok_or_else(empty_key_error)
    }

    /// `popitem_with_expire`: `(key, value, seconds left)`.
    pub fn popitem_with_expire(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, Py<PyAny>, f64)> {
        let (entry, at) = self.popitem(py)?;
        Ok((entry.key, entry.value, remaining(at, clock::now())))
    }

    /// `drain(n)`: pops up to `n` entries; returns how many.
    pub fn drain(&self, py: Python<'_>, n: isize) -> PyResult<usize> {
        self.require_order()?;
        let mut trash = Trash::new(py);
        let count = {
            let mut store = self.lock(py)?;
            trash.arm(store.hooks.on_evict.as_ref());
            let mut count = 0usize;
            while isize::try_from(count).is_ok_and(|c| c < n) {
                match store.popitem(&mut trash) {
                    Some((entry, _)) => trash.push(entry, Cause::Explicit),
                    None => break,
                }
                count += 1;
            }
            count
        };
        drop(trash);
        Ok(count)
    }

    /// `update(iterable)`: inserts pairs one by one, like repeated `insert`. The iterable is
    /// consumed without holding the lock, so it may read this cache freely.
    pub fn update(
        &self,
        py: Python<'_>,
        this: &Bound<'_, PyAny>,
        iterable: &Bound<'_, PyAny>,
        meta: impl Fn() -> NewMeta,
    ) -> PyResult<()> {
        if iterable.is(this) {
            return Ok(());
        }
        for_each_pair(iterable, |key, value| self.insert(py, key, value, meta()).map(drop))
    }

    pub fn clear(&self, py: Python<'_>, reuse: bool) -> PyResult<()> {
        let mut trash = Trash::new(py);
        self.lock(py)?.clear(reuse, &mut trash);
        drop(trash);
        Ok(())
    }

    pub fn shrink_to_fit(&self, py: Python<'_>) -> PyResult<()> {
        let mut trash = Trash::new(py);
        self.lock(py)?.shrink_to_fit(&mut trash);
        drop(trash);
        Ok(())
    }

    /// `expire()`: sweeps expired entries now, then shrinks.
    pub fn expire(&self, py: Python<'_>) -> PyResult<()> {
        self.shrink_to_fit(py)
    }

    pub fn len(&self, py: Python<'_>) -> PyResult<usize> {
        let mut trash = Trash::new(py);
        let len = self.lock(py)?.live_len(&mut trash);
        drop(trash);
        Ok(len)
    }

    pub fn is_full(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, Store::is_full)
    }

    /// `is_empty()`/`bool()`: counts live entries, never sweeps (BEHAVIOUR.md §7).
    pub fn is_empty(&self, py: Python<'_>) -> PyResult<bool> {
        self.read(py, |s| s.live_count() == 0)
    }

    pub fn read<T>(&self, py: Python<'_>, f: impl FnOnce(&Store<P>) -> T) -> PyResult<T> {
        Ok(f(&*self.lock(py)?))
    }

    /// `TTLCache.ttl`.
    pub fn ttl(&self, py: Python<'_>) -> PyResult<f64> {
        self.read(py, |s| s.policy.global_ttl().unwrap_or(f64::INFINITY))
    }

    /// The key at position `n` of the policy order (`first`, `last`, `least_recently_used`...).
    pub fn nth_key(&self, py: Python<'_>, n: isize) -> PyResult<Option<Py<PyAny>>> {
        let mut trash = Trash::new(py);
        let key = {
            let mut store = self.lock(py)?;
            store.nth(n, &mut trash).map(|id| store.entry(id).key.clone_ref(py))
        };
        drop(trash);
        Ok(key)
    }

    fn snapshot(store: &Store<P>, py: Python<'_>, id: u32) -> Item {
        let entry = store.entry(id);
        Item {
            key: entry.key.clone_ref(py),
            value: entry.value.clone_ref(py),
            expire_at: store.policy.expire_at(id),
            frequency: store.policy.frequency(id),
        }
    }

    /// Live entries in policy order, up to `limit`, plus the live length.
    fn items(&self, py: Python<'_>, limit: usize) -> PyResult<(Vec<Item>, usize)> {
        let mut trash = Trash::new(py);
        let out = {
            let mut store = self.lock(py)?;
            let ids = store.ordered_ids(&mut trash);
            let items = ids.iter().take(limit).map(|&id| Self::snapshot(&store, py, id)).collect();
            (items, ids.len())
        };
        drop(trash);
        Ok(out)
    }

    // ---- iteration ----

    pub fn iter(&self, py: Python<'_>, kind: Kind) -> PyResult<CoreIter<P>> {
        let mut trash = Trash::new(py);
        let walk = self.lock(py)?.walk(&mut trash);
        drop(trash);
        Ok(CoreIter { walk: Mutex::new(Some(walk)), kind })
    }

    pub fn next(&self, py: Python<'_>, it: &CoreIter<P>) -> PyResult<Option<Py<PyAny>>> {
        let item = {
            let mut walk = it.walk.lock_py_attached(py);
            let Some(w) = walk.as_mut() else { return Ok(None) };
            let store = self.lock(py)?;
            match store.step(w) {
                Err(_) => return Err(PyRuntimeError::new_err("cache changed during iteration")),
                Ok(None) => {
                    *walk = None;
                    return Ok(None);
                }
                Ok(Some(id)) => Self::snapshot(&store, py, id),
            }
        };
        let out = match it.kind {
            Kind::Keys => item.key,
            Kind::Values => item.value,
            Kind::Items => PyTuple::new(py, [item.key, item.value])?.into_any().unbind(),
            Kind::ItemsWithExpire => {
                let left = remaining(item.expire_at, clock::now()).into_pyobject(py)?.into_any().unbind();
                PyTuple::new(py, [item.key, item.value, left])?.into_any().unbind()
            }
            Kind::ItemsWithFrequency => {
                let freq = item.frequency.into_pyobject(py)?.into_any().unbind();
                PyTuple::new(py, [item.key, item.value, freq])?.into_any().unbind()
            }
        };
        Ok(Some(out))
    }

    // ---- comparison and display ----

    /// `self == other` for two caches of the same class (BEHAVIOUR.md §9.1). Locks one cache at a
    /// time, and compares values with no lock held.
    pub fn equals(&self, py: Python<'_>, other: &Self) -> PyResult<bool> {
        if std::ptr::eq(self, other) {
            return Ok(true);
        }
        let (mine, len) = self.items(py, usize::MAX)?;
        let limits = self.read(py, |s| s.limits)?;
        // Hashes run Python code: compute them before taking the other cache's lock.
        let hashes = mine.iter().map(|item| hash_key(item.key.bind(py))).collect::<PyResult<Vec<u32>>>()?;
        let mut trash = Trash::new(py);
        let theirs = {
            let mut store = other.lock(py)?;
            let same = store.limits.maxsize == limits.maxsize
                && store.limits.maxmemory == limits.maxmemory
                && store.live_len(&mut trash) == len;
            if !same {
                return Ok(false);
            }
            let mut theirs = Vec::with_capacity(len);
            for (item, &hash) in mine.iter().zip(&hashes) {
                let probe = Probe { key: item.key.bind(py), hash, owner: other.store.owner() };
                match store.find_live(py, &probe)? {
                    Some(id) => theirs.push(store.entry(id).value.clone_ref(py)),
                    None => return Ok(false),
                }
            }
            theirs
        };
        drop(trash);
        for (item, value) in mine.iter().zip(&theirs) {
            if !item.value.bind(py).eq(value)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `repr`: `module.Name[len/maxsize]({k: v, ...})`, TTL adds `, ttl=...`.
    pub fn repr(&self, this: &Bound<'_, PyAny>) -> PyResult<String> {
        let py = this.py();
        let cls = this.get_type();
        let module = cls.getattr(intern!(py, "__module__"))?;
        let name = cls.getattr(intern!(py, "__name__"))?;
        let (items, len) = self.items(py, REPR_ITEMS)?;
        let (maxsize, ttl) = self.read(py, |s| (s.limits.maxsize, s.policy.global_ttl()))?;
        let mut out = format!("{module}.{name}[{len}/{maxsize}");
        if let Some(ttl) = ttl {
            out.push_str(&format!(", ttl={ttl:.6}"));
        }
        out.push_str("]({");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&item.key.bind(py).repr()?.to_cow()?);
            out.push_str(": ");
            out.push_str(&item.value.bind(py).repr()?.to_cow()?);
        }
        if len > REPR_ITEMS - 1 {
            out.push_str(&format!(", ... {} more ...", len - items.len()));
        }
        out.push_str("})");
        Ok(out)
    }

    // ---- garbage collector ----

    /// Never blocks: if the cache is busy (even on this very thread, inside `__eq__`), its
    /// contents are not reported, which only delays collection.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        let Some(store) = self.store.try_lock() else { return Ok(()) };
        let mut result = Ok(());
        store.visit(&mut |entry| {
            if result.is_ok() {
                result = visit.call(&entry.key).and_then(|()| visit.call(&entry.value));
            }
        });
        result
    }

    pub fn clear_for_gc(&self) {
        // The collector calls `tp_clear` attached, so this only fetches the token.
        Python::attach(|py| {
            let mut trash = Trash::new(py);
            if let Some(mut store) = self.store.try_lock() {
                store.clear(false, &mut trash);
            }
            // A cache being collected reports nothing: its listener may be gone already.
            trash.disarm();
            drop(trash);
        });
    }
}

/// Argument conversions the stamped classes call (so the macros name no paths of this crate).
impl<P: Policy> CacheCore<P> {
    pub const KEYS: Kind = Kind::Keys;
    pub const VALUES: Kind = Kind::Values;
    pub const ITEMS: Kind = Kind::Items;
    pub const ITEMS_WITH_EXPIRE: Kind = Kind::ItemsWithExpire;
    pub const ITEMS_WITH_FREQUENCY: Kind = Kind::ItemsWithFrequency;

    pub fn no_meta() -> NewMeta {
        NewMeta::default()
    }

    /// `TTLCache`'s `ttl` argument, validated.
    pub fn ttl_arg(ttl: &Bound<'_, PyAny>) -> PyResult<f64> {
        crate::convert::ttl_seconds(ttl)
    }

    /// `VTTLCache`'s `ttl` argument, validated; `None` = never expires.
    pub fn vttl_arg(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
        crate::convert::vttl_seconds(ttl)
    }

    /// The metadata of an entry written now with `ttl` seconds to live.
    pub fn expiring(ttl: Option<f64>) -> NewMeta {
        let now = clock::now();
        NewMeta { expire_at: ttl.map_or(f64::INFINITY, |t| now + t), frequency: 0, now: Some(now) }
    }
}

impl CacheCore<Unordered<true>> {
    /// `RRCache.random_key()`.
    pub fn random_key(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut store = self.lock(py)?;
        let id = store.policy.random().ok_or_else(empty_key_error)?;
        Ok(store.entry(id).key.clone_ref(py))
    }
}

/// A Python subclass instance's `__dict__`, if it has one (pickle keeps it).
pub fn instance_dict<'py>(this: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    this.getattr(intern!(this.py(), "__dict__")).ok().and_then(|d| d.cast_into::<PyDict>().ok())
}
