//! `Memo`: everything a decorated function does per call, for `cached` and `cachedmethod`,
//! sync and async (BEHAVIOUR.md §13): the sync pipeline is here, the async state machine in
//! `async_call.rs`. The pyclasses in `wrappers.rs` only hold one behind an `Arc`.
//!
//! The user function never runs under a lock: a call locks the cache for the lookup, unlocks,
//! and only then (on a miss) runs the function, as CPython's `lru_cache` does. Concurrent
//! misses of one key meet in `PendingMap` (stampede protection).

use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyException, PyKeyError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PySet, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

use super::keys::{make_key, make_typed_key, FastTypes};
use super::pending::{Leader, Outcome, Pending, PendingMap, Role};
use super::tiered::Tier;
use crate::convert::{hash_key, items_hash, tuple_hash_matches};
use crate::core::{native_classes, CacheCore, MemoCache, NativeClass, NativeHandle, Put};
use crate::entry::fold_hash;
use crate::store::ItemsLookup;
use crate::sync::{thread_id, Counter};

pub const EVENT_MISS: u8 = 1;
pub const EVENT_HIT: u8 = 2;

/// The name of the keyword that bypasses the cache for one call.
const IGNORE_KWARG: &str = "cachebox__ignore";

pub enum KeyMaker {
    /// `make_key`, done natively.
    Default,
    /// `make_typed_key`, done natively.
    Typed,
    /// `make_hash_key`, done natively.
    Hashed,
    /// Any other callable, called as `key_maker(args, kwds)`.
    Custom(Py<PyAny>),
}

/// Where the cache comes from.
pub enum Source {
    /// One cache for every call; `native` when it is an exact cachebox class.
    Fixed { cache: Py<PyAny>, native: Option<NativeHandle> },
    /// `cache(args[0])` on every call (`cached(lambda self: self._cache)`).
    Factory(Py<PyAny>),
}

/// `cached(..., ttl=...)`: the lifetime each stored result gets.
pub enum Lifetime {
    /// No `ttl=`: the cache's own rule.
    Default,
    /// A fixed number of seconds.
    Seconds(f64),
    /// `ttl(key, value)`, returning seconds or `None` (never expires).
    Computed(Py<PyAny>),
}

#[derive(Clone, Copy)]
pub enum CopyLevel {
    Never,
    Containers,
    Always,
}

pub struct Memo {
    /// The common case (a fixed native cache, the default key maker, `self` in the key):
    /// calls without keywords key on their positional arguments (`TupleKey`, `ItemsKey`).
    pub fast: bool,
    pub func: Py<PyAny>,
    pub source: Source,
    pub key_maker: KeyMaker,
    /// `cachedmethod`: `self` (args[0]) is not part of the key. Also set in factory mode.
    pub skip_self: bool,
    pub copy_level: CopyLevel,
    pub callback: Option<Py<PyAny>>,
    pub clear_reuse: bool,
    pub lifetime: Lifetime,
    pub hits: Counter,
    pub misses: Counter,
    pub pending: PendingMap,
    /// `l2=`: the shared second tier, asked on a first-tier miss.
    pub l2: Option<Tier>,
}

/// The cache one call works with. `C` is `dyn MemoCache` except on the paths monomorphized
/// for one native class (`Memo::call_items_on`), which then dispatch statically.
pub(super) enum Target<'a, 'py, C: ?Sized + 'a = dyn MemoCache + 'a> {
    Native(&'a C),
    Python(&'a Bound<'py, PyAny>),
}

impl<C: ?Sized> Clone for Target<'_, '_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C: ?Sized> Copy for Target<'_, '_, C> {}

impl<C: MemoCache + ?Sized> Target<'_, '_, C> {
    #[inline(always)]
    pub(super) fn lookup(&self, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>> {
        let py = key.py();
        match self {
            Target::Native(cache) => cache.lookup(py, key, hash),
            // Only `KeyError` counts as a miss; other lookup errors propagate.
            Target::Python(cache) => match cache.get_item(key) {
                Ok(v) => Ok(Some(v.unbind())),
                Err(e) if e.is_instance_of::<PyKeyError>(py) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    pub(super) fn store(
        &self,
        key: &Bound<'_, PyAny>,
        hash: u32,
        value: &Bound<'_, PyAny>,
        put: Put<'_>,
    ) -> PyResult<()> {
        let py = key.py();
        match self {
            Target::Native(cache) => cache.store(py, key, hash, value, put),
            Target::Python(_) if put.stale.is_some_and(|stale| stale.load(std::sync::atomic::Ordering::SeqCst)) => {
                Ok(())
            }
            Target::Python(cache) => match put.ttl {
                None => cache.set_item(key, value),
                Some(ttl) => {
                    let ttl =
                        if ttl.is_finite() { ttl.into_pyobject(py)?.into_any() } else { py.None().into_bound(py) };
                    cache.call_method1(intern!(py, "insert"), (key, value, ttl)).map(drop)
                }
            },
        }
    }

    /// Removes `key` (`cache_invalidate`); whether it was there.
    pub(super) fn invalidate(&self, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<bool> {
        let py = key.py();
        match self {
            Target::Native(cache) => cache.invalidate(py, key, hash),
            Target::Python(cache) => {
                let missing = py.get_type::<pyo3::PyAny>().call0()?;
                Ok(!cache.call_method1(intern!(py, "pop"), (key, &missing))?.is(&missing))
            }
        }
    }
}

/// A call's arguments, as the caller gave them.
#[derive(Clone, Copy)]
pub struct CallArgs<'a, 'py> {
    pub args: &'a Bound<'py, PyTuple>,
    pub kwargs: Option<&'a Bound<'py, PyDict>>,
}

/// What a sync call or an async step ends with.
pub struct Done {
    pub(super) event: u8,
    pub(super) value: Py<PyAny>,
}

impl Done {
    pub(super) fn hit(value: Py<PyAny>) -> Self {
        Self { event: EVENT_HIT, value }
    }

    pub(super) fn miss(value: Py<PyAny>) -> Self {
        Self { event: EVENT_MISS, value }
    }
}

/// What the first-tier lookup of a call found.
enum Looked<'py> {
    /// `key` is `None` where the path never built it (such a path is taken only when there is
    /// no callback, the one step after this that needs the key).
    Hit { value: Py<PyAny>, key: Option<Bound<'py, PyAny>> },
    /// Not there: the key to lead or follow with, and the positional arguments to compute with.
    Miss { key: Bound<'py, PyAny>, hash: u32, args: Bound<'py, PyTuple> },
}

/// A call that missed: what leading or following it needs.
struct Miss<'a, 'py, C: ?Sized> {
    target: Target<'a, 'py, C>,
    call: CallArgs<'a, 'py>,
    key: &'a Bound<'py, PyAny>,
    hash: u32,
}

/// Where a call's key comes from: the one step in which the calling conventions differ. The
/// rest of the pipeline (`Memo::run`) is the same for all of them.
trait KeySource<'py> {
    fn look_up<C: MemoCache + ?Sized>(&self, py: Python<'py>, target: Target<'_, 'py, C>) -> PyResult<Looked<'py>>;

    /// The positional arguments, for a hit that turned out stale (`Memo::run`).
    fn args(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>>;
}

/// A key made already (by the key maker), looked up as it is.
struct MadeKey<'a, 'py> {
    key: Bound<'py, PyAny>,
    hash: u32,
    args: &'a Bound<'py, PyTuple>,
}

impl<'py> KeySource<'py> for MadeKey<'_, 'py> {
    #[inline(always)]
    fn look_up<C: MemoCache + ?Sized>(&self, _py: Python<'py>, target: Target<'_, 'py, C>) -> PyResult<Looked<'py>> {
        Ok(match target.lookup(&self.key, self.hash)? {
            Some(value) => Looked::Hit { value, key: Some(self.key.clone()) },
            None => Looked::Miss { key: self.key.clone(), hash: self.hash, args: self.args.clone() },
        })
    }

    fn args(&self, _py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Ok(self.args.clone())
    }
}

/// The default key of positional arguments, like CPython's `lru_cache`: the argument tuple
/// itself, or its only item when that is an exact `int` or `str`.
struct TupleKey<'a, 'py>(&'a Bound<'py, PyTuple>);

impl<'py> KeySource<'py> for TupleKey<'_, 'py> {
    #[inline(always)]
    fn look_up<C: MemoCache + ?Sized>(&self, py: Python<'py>, target: Target<'_, 'py, C>) -> PyResult<Looked<'py>> {
        let key = make_key(self.0, None, FastTypes::IntStr)?;
        let hash = hash_key(&key)?;
        MadeKey { key, hash, args: self.0 }.look_up(py, target)
    }

    fn args(&self, _py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Ok(self.0.clone())
    }
}

/// `TupleKey` of positional arguments as vectorcall passes them: the tuple is not built for a
/// hit. Its hash is computed from the items, and stored tuples are compared item by item; the
/// tuple is built only to call the function on a miss.
struct ItemsKey<'a, 'py>(&'a [Bound<'py, PyAny>]);

impl<'py> KeySource<'py> for ItemsKey<'_, 'py> {
    #[inline(always)]
    fn args(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.0)
    }

    fn look_up<C: MemoCache + ?Sized>(&self, py: Python<'py>, target: Target<'_, 'py, C>) -> PyResult<Looked<'py>> {
        let Target::Native(cache) = target else {
            return TupleKey(&PyTuple::new(py, self.0)?).look_up(py, target);
        };
        match self.0 {
            [only] if only.is_exact_instance_of::<PyInt>() || only.is_exact_instance_of::<PyString>() => {
                let hash = hash_key(only)?;
                Ok(match cache.lookup(py, only, hash)? {
                    Some(value) => Looked::Hit { value, key: None },
                    None => Looked::Miss { key: only.clone(), hash, args: PyTuple::new(py, self.0)? },
                })
            }
            _ if tuple_hash_matches(py) => {
                let hash = fold_hash(items_hash(self.0)?);
                match cache.lookup_items(py, self.0, hash)? {
                    ItemsLookup::Found(value) => Ok(Looked::Hit { value, key: None }),
                    ItemsLookup::Absent => {
                        let args = PyTuple::new(py, self.0)?;
                        Ok(Looked::Miss { key: make_key(&args, None, FastTypes::IntStr)?, hash, args })
                    }
                    ItemsLookup::Undecided => TupleKey(&PyTuple::new(py, self.0)?).look_up(py, target),
                }
            }
            _ => TupleKey(&PyTuple::new(py, self.0)?).look_up(py, target),
        }
    }
}

/// The `copy` module's `copy`, looked up once (at module init: a direct slot never sets it).
pub fn copy_function(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static COPY: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    COPY.get_or_try_init(py, || Ok::<_, PyErr>(py.import("copy")?.getattr("copy")?.unbind())).map(|f| f.bind(py))
}

impl Memo {
    /// The positional arguments that make the key (without `self` for methods and factories).
    pub(super) fn key_args<'py>(&self, args: &Bound<'py, PyTuple>) -> Bound<'py, PyTuple> {
        if self.skip_self && !args.is_empty() {
            args.get_slice(1, args.len())
        } else {
            args.clone()
        }
    }

    pub(super) fn make_key<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = args.py();
        match &self.key_maker {
            KeyMaker::Default => make_key(args, kwargs, FastTypes::IntStr),
            KeyMaker::Typed => make_typed_key(args, kwargs),
            KeyMaker::Hashed => make_key(args, kwargs, FastTypes::IntStr)?.hash()?.into_bound_py_any(py),
            KeyMaker::Custom(f) => {
                let kwds = match kwargs {
                    Some(k) => k.clone(),
                    None => PyDict::new(py),
                };
                f.bind(py).call1((args, kwds))
            }
        }
    }

    /// Factory mode: the cache `cache(args[0])` gives this call; `None` for a fixed cache.
    pub(super) fn call_cache<'py>(&self, args: &Bound<'py, PyTuple>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.source {
            Source::Fixed { .. } => Ok(None),
            Source::Factory(factory) => {
                // IndexError without a positional argument, as `args[0]` would raise.
                let first = args.as_any().get_item(0)?;
                factory.bind(args.py()).call1((first,)).map(Some)
            }
        }
    }

    /// The cache a call works with: the fixed one, or `made`, the one `call_cache` gave it.
    pub(super) fn target<'a, 'py>(
        &'a self,
        py: Python<'py>,
        made: Option<&'a Bound<'py, PyAny>>,
    ) -> PyResult<Target<'a, 'py>> {
        Ok(match (&self.source, made) {
            (Source::Fixed { native: Some(native), .. }, _) => Target::Native(native.as_ref()),
            (Source::Fixed { cache, native: None }, _) => Target::Python(cache.bind(py)),
            (Source::Factory(_), Some(made)) => match (native_classes()?.borrow)(made) {
                Some(native) => Target::Native(native),
                None => Target::Python(made),
            },
            (Source::Factory(_), None) => return Err(PyRuntimeError::new_err("cached call lost its cache")),
        })
    }

    /// The fixed native cache, when calls take the fast key sources.
    #[inline(always)]
    fn fast_cache(&self) -> Option<&dyn MemoCache> {
        match &self.source {
            Source::Fixed { native: Some(native), .. } if self.fast => Some(native.as_ref()),
            _ => None,
        }
    }

    /// Removes `cachebox__ignore` from the keywords; `Some(kwargs)` when it was truthy.
    pub fn split_ignore<'py>(kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<(bool, Option<Bound<'py, PyDict>>)> {
        let Some(kwargs) = kwargs.filter(|k| !k.is_empty()) else { return Ok((false, None)) };
        let py = kwargs.py();
        match kwargs.get_item(intern!(py, IGNORE_KWARG))? {
            None => Ok((false, Some(kwargs.clone()))),
            Some(flag) => {
                let rest = kwargs.copy()?;
                rest.del_item(intern!(py, IGNORE_KWARG))?;
                let rest = (!rest.is_empty()).then_some(rest);
                Ok((flag.is_truthy()?, rest))
            }
        }
    }

    /// The result handed to the caller, copied as `copy_level` says. The cache (and the
    /// callback) keep the original object.
    /// The original is released through `Bound` when a copy replaces it (see `Trash`).
    #[inline(always)]
    pub fn copy_out(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let needs_copy = match self.copy_level {
            CopyLevel::Never => false,
            CopyLevel::Always => true,
            CopyLevel::Containers => {
                let v = value.bind(py);
                v.is_exact_instance_of::<PyDict>()
                    || v.is_exact_instance_of::<PyList>()
                    || v.is_exact_instance_of::<PySet>()
            }
        };
        if needs_copy {
            self.copied(py, value)
        } else {
            Ok(value)
        }
    }

    /// A copy of `value` (which `copy_out` found needs one), as `copy_level` says.
    #[inline(never)]
    fn copied(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let v = value.into_bound(py);
        match self.copy_level {
            CopyLevel::Never => Ok(v.unbind()),
            CopyLevel::Always => Ok(copy_function(py)?.call1((&v,))?.unbind()),
            CopyLevel::Containers => {
                if let Ok(l) = v.cast_exact::<PyList>() {
                    return Ok(l.get_slice(0, l.len()).into_any().unbind());
                }
                // `dict.copy()` and `set.copy()`: shallow copies of the exact types.
                Ok(v.call_method0(intern!(py, "copy"))?.unbind())
            }
        }
    }

    /// What every call ends with, sync or async, hit or miss: counts the event and runs the
    /// callback; returns what the callback returned (an async call awaits an awaitable). The
    /// callback needs the key, so a path without one (`None`) is taken only when there is no
    /// callback.
    #[inline(always)]
    pub(super) fn report<'py>(
        &self,
        event: u8,
        value: &Bound<'py, PyAny>,
        key: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let counter = if event == EVENT_HIT { &self.hits } else { &self.misses };
        counter.bump();
        match &self.callback {
            None => Ok(None),
            Some(cb) => {
                let key = key.ok_or_else(|| PyRuntimeError::new_err("cached call lost its key"))?;
                cb.bind(value.py()).call1((event, key, value)).map(Some)
            }
        }
    }

    /// The last step of every sync call: `report`, then the value copied out. The value is
    /// held as a `Bound` meanwhile, so that an error releases it at once (the direct slots run
    /// without pyo3's attach count, where dropping a `Py` would defer its release).
    #[inline(always)]
    fn deliver(&self, py: Python<'_>, done: Done, key: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let value = done.value.into_bound(py);
        self.report(done.event, &value, key)?;
        self.copy_out(py, value.unbind())
    }

    // ---- sync ----

    /// One call of a decorated sync function, from pyo3's `__call__` or from the direct
    /// `tp_call` (`call_slots`), which runs without pyo3's attach count: everything that may
    /// give up a reference (a miss, the general path) runs inside `Python::attach`, so that it
    /// is released at once rather than deferred.
    #[inline]
    pub fn call(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        match (self.fast_cache(), call.kwargs) {
            (Some(cache), None) => self.run(py, Target::Native(cache), TupleKey(call.args), None),
            _ => Python::attach(|py| self.call_general(py, call)),
        }
    }

    /// A call with positional arguments only, through vectorcall (`call_slots`), which runs
    /// without pyo3's attach count as the direct `tp_call` does.
    pub fn call_vector(&self, py: Python<'_>, args: &[Bound<'_, PyAny>]) -> PyResult<Py<PyAny>> {
        match (self.fast_cache(), &self.callback) {
            (Some(cache), None) => self.run(py, Target::Native(cache), ItemsKey(args), None),
            _ => {
                let args = PyTuple::new(py, args)?;
                self.call(py, CallArgs { args: &args, kwargs: None })
            }
        }
    }

    /// `call_vector` on the fixed native cache `cache`, dispatched statically: the vectorcall
    /// entry monomorphized for the cache's class (`call_slots::vectorcall_on`) comes here. Only
    /// for a `fast` memo without a callback (`ItemsKey` never builds the key on a hit).
    #[inline(always)]
    pub fn call_items_on<C: MemoCache>(
        &self,
        py: Python<'_>,
        cache: &C,
        args: &[Bound<'_, PyAny>],
    ) -> PyResult<Py<PyAny>> {
        self.run(py, Target::Native(cache), ItemsKey(args), None)
    }

    /// The fixed cache as its native class `C`, for `call_items_on`.
    #[inline(always)]
    pub fn fixed_as<'a, C: NativeClass>(&'a self, py: Python<'a>) -> PyResult<&'a CacheCore<C::P>> {
        match &self.source {
            Source::Fixed { cache, .. } => match cache.bind(py).cast_exact::<C>() {
                Ok(cache) => Ok(cache.get().core_of()),
                Err(_) => Err(PyRuntimeError::new_err("cached function's cache changed class")),
            },
            Source::Factory(_) => Err(PyRuntimeError::new_err("cached function has no fixed cache")),
        }
    }

    /// Any call: keywords, `cachebox__ignore`, a key maker, a cache factory or a cache that is
    /// not native.
    fn call_general(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        let (ignore, kwargs) = Self::split_ignore(call.kwargs)?;
        if ignore {
            return Ok(self.func.bind(py).call(call.args, kwargs.as_ref())?.unbind());
        }
        let made = self.call_cache(call.args)?;
        self.check_lifetime(made.as_ref())?;
        let target = self.target(py, made.as_ref())?;
        let key = self.make_key(&self.key_args(call.args), kwargs.as_ref())?;
        let hash = hash_key(&key)?;
        self.run(py, target, MadeKey { key, hash, args: call.args }, kwargs.as_ref())
    }

    /// The pipeline of every sync call: the key source's lookup in the cache; on a miss, lead
    /// the computation or follow the call in flight (`fill`); then deliver.
    #[inline(always)]
    fn run<'py, C: MemoCache + ?Sized>(
        &self,
        py: Python<'py>,
        target: Target<'_, 'py, C>,
        source: impl KeySource<'py>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let (key, hash, args) = match source.look_up(py, target)? {
            Looked::Hit { value, key } => match &self.l2 {
                None => return self.deliver(py, Done::hit(value), key.as_ref()),
                Some(tier) => match tier.fresh(py, value) {
                    Some(value) => return self.deliver(py, Done::hit(value), key.as_ref()),
                    // A first-tier entry that outlived its second-tier copy, or its epoch: a miss.
                    None => self.rekey(py, key, &source)?,
                },
            },
            Looked::Miss { key, hash, args } => (key, hash, args),
        };
        Python::attach(|py| {
            let miss = Miss { target, call: CallArgs { args: &args, kwargs }, key: &key, hash };
            let done = self.fill(py, &miss)?;
            self.deliver(py, done, Some(&key))
        })
    }

    /// The key, hash and arguments of a hit found stale, for the miss it becomes.
    #[cold]
    fn rekey<'py>(
        &self,
        py: Python<'py>,
        key: Option<Bound<'py, PyAny>>,
        source: &impl KeySource<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, u32, Bound<'py, PyTuple>)> {
        let args = source.args(py)?;
        // Only the fast sources leave the key unbuilt, and theirs is `make_key` of the arguments.
        let key = match key {
            Some(key) => key,
            None => make_key(&args, None, FastTypes::IntStr)?,
        };
        let hash = hash_key(&key)?;
        Ok((key, hash, args))
    }

    /// A first-tier lookup that counts only entries that may still be served.
    pub(super) fn look_again<C: MemoCache + ?Sized>(
        &self,
        py: Python<'_>,
        target: Target<'_, '_, C>,
        key: &Bound<'_, PyAny>,
        hash: u32,
    ) -> PyResult<Option<Py<PyAny>>> {
        let found = target.lookup(key, hash)?;
        Ok(match (&self.l2, found) {
            (Some(tier), Some(stored)) => tier.fresh(py, stored),
            (_, found) => found,
        })
    }

    /// A miss: lead the computation of the key, or wait for the leader's outcome.
    fn fill<C: MemoCache + ?Sized>(&self, py: Python<'_>, miss: &Miss<'_, '_, C>) -> PyResult<Done> {
        loop {
            match self.pending.join(py, miss.key, miss.hash, Leader::Thread(thread_id()))? {
                Role::Lead(pending) => {
                    let mut lead = Lead::new(&self.pending, pending);
                    let result = self.produce(py, miss, lead.pending.as_deref());
                    return lead.settle(py, result);
                }
                Role::Follow(pending) => {
                    pending.wait(py)?;
                    match pending.outcome(py) {
                        Some(Ok(value)) => return Ok(Done::hit(value)),
                        Some(Err(Some(error))) => return Err(error),
                        // Abandoned (or never finished): look again, maybe lead this time.
                        _ => {
                            if let Some(value) = self.look_again(py, miss.target, miss.key, miss.hash)? {
                                return Ok(Done::hit(value));
                            }
                        }
                    }
                }
            }
        }
    }

    /// What a sync leader does. It looks again first: another leader may have stored the
    /// value just before this one joined. A second tier would be asked here, before the
    /// function runs, and given the value after it.
    fn produce<C: MemoCache + ?Sized>(
        &self,
        py: Python<'_>,
        miss: &Miss<'_, '_, C>,
        pending: Option<&Pending>,
    ) -> PyResult<Done> {
        let Miss { target, call, key, hash } = miss;
        let (target, key, hash) = (*target, *key, *hash);
        if let Some(value) = self.look_again(py, target, key, hash)? {
            return Ok(Done::hit(value));
        }
        let func = self.func.bind(py);
        let Some(tier) = &self.l2 else {
            let value = func.call(call.args, call.kwargs)?;
            self.keep(target, key, hash, &value, &value, pending)?;
            return Ok(Done::miss(value.unbind()));
        };
        // No lock is held: the tier does its network I/O (and runs the function) here.
        let loaded = tier.load(py, func, key, call.args, call.kwargs)?;
        if let Some(record) = &loaded.record {
            self.keep(target, key, hash, record.as_any(), &loaded.value, pending)?;
        }
        let value = loaded.value.unbind();
        Ok(if loaded.computed { Done::miss(value) } else { Done::hit(value) })
    }

    /// Factory mode with `ttl=`: the cache the factory gave must have per-entry TTLs (a fixed
    /// cache was checked when the function was decorated).
    pub(super) fn check_lifetime(&self, made: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        match (made, &self.lifetime) {
            (_, Lifetime::Default) | (None, _) => Ok(()),
            (Some(made), _) if (native_classes()?.per_entry_ttl)(made) => Ok(()),
            (Some(made), _) => Err(super::wrappers::lifetime_error(made)?),
        }
    }

    /// Stores a leader's result with its lifetime, unless its call was invalidated meanwhile.
    /// `stored` is what the cache keeps: `value` itself, or its `TieredValue`.
    pub(super) fn keep<C: MemoCache + ?Sized>(
        &self,
        target: Target<'_, '_, C>,
        key: &Bound<'_, PyAny>,
        hash: u32,
        stored: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        pending: Option<&Pending>,
    ) -> PyResult<()> {
        let ttl = match &self.lifetime {
            Lifetime::Default => None,
            Lifetime::Seconds(ttl) => Some(*ttl),
            Lifetime::Computed(ttl) => {
                let seconds = ttl.bind(key.py()).call1((key, value))?;
                // `None` from the callable: never expires, which a per-entry TTL cache spells as
                // an infinite lifetime.
                Some(crate::convert::vttl_seconds(Some(&seconds))?.unwrap_or(f64::INFINITY))
            }
        };
        target.store(key, hash, stored, Put { ttl, stale: pending.map(|p| &p.stale) })
    }

    /// `cache_invalidate(*args, **kwargs)`: removes the entry the call with these arguments
    /// would use; whether there was one. A call in flight for it is marked stale first.
    pub fn invalidate<'py>(&self, py: Python<'py>, call: CallArgs<'_, 'py>) -> PyResult<Bound<'py, PyAny>> {
        let (_, kwargs) = Self::split_ignore(call.kwargs)?;
        let made = self.call_cache(call.args)?;
        let target = self.target(py, made.as_ref())?;
        let key = self.make_key(&self.key_args(call.args), kwargs.as_ref())?;
        let hash = hash_key(&key)?;
        self.pending.invalidate(py, &key, hash)?;
        let here = target.invalidate(&key, hash)?;
        match &self.l2 {
            None => Ok(pyo3::types::PyBool::new(py, here).to_owned().into_any()),
            // A bool, or with an async client an awaitable of it.
            Some(tier) => tier.invalidate(&key, here),
        }
    }
}

/// A leader's obligation to finish its pending call, even on an early return, a panic, or
/// (async) an awaitable dropped half-way.
pub(super) struct Lead<'a> {
    pub(super) map: &'a PendingMap,
    pub(super) pending: Option<Arc<Pending>>,
}

impl<'a> Lead<'a> {
    pub(super) fn new(map: &'a PendingMap, pending: Arc<Pending>) -> Self {
        Self { map, pending: Some(pending) }
    }

    /// Publishes the outcome: the value, an `Exception` to share, or "abandoned" for a
    /// `BaseException` (followers then retry).
    pub(super) fn settle(&mut self, py: Python<'_>, result: PyResult<Done>) -> PyResult<Done> {
        let Some(pending) = self.pending.take() else { return result };
        let outcome = || match &result {
            Ok(done) => Outcome::Value(done.value.clone_ref(py)),
            Err(e) if e.is_instance_of::<PyException>(py) => Outcome::Error(e.value(py).clone().unbind()),
            Err(_) => Outcome::Abandoned,
        };
        self.map.finish(py, &pending, outcome)?;
        result
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            Python::attach(|py| {
                let _ = self.map.finish(py, &pending, || Outcome::Abandoned);
            });
        }
    }
}

/// `AttributeError` for the cache attributes of factory-mode wrappers.
pub fn no_cache_attribute(name: &str) -> PyErr {
    PyAttributeError::new_err(format!("'{name}' is not available: this function's cache comes from a factory"))
}
