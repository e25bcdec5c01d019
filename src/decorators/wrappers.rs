//! The Python objects of the decorators: `cached(...)`/`cachedmethod(...)` return a
//! `Decorator`; applying it gives a `CachedFunction`, the wrapper that replaces the user's
//! function; calling the wrapper of a coroutine function gives a `CachedCall` awaitable.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFunction, PyTuple, PyType};
use pyo3::{intern, PyTraverseError};

use super::async_call::{AsyncCall, Input, Step};
use super::memo::{no_cache_attribute, CallArgs, CopyLevel, KeyMaker, Lifetime, Memo, Source};
use super::tiered::Tier;
use crate::base::BaseCacheImpl;
use crate::core::native_classes;
use crate::sync::Guarded;

/// The key makers of this module, to recognize them and run them natively.
pub static KEY_MAKERS: PyOnceLock<[Py<PyAny>; 3]> = PyOnceLock::new();
/// `CacheInfo`, a `collections.namedtuple` type created at import.
pub static CACHE_INFO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// What `cached(...)` and `cachedmethod(...)` were given, validated, waiting for the function.
#[pyclass(module = "cachebox", frozen)]
pub struct Decorator {
    cache: Option<Py<PyAny>>,
    key_maker: Py<PyAny>,
    clear_reuse: bool,
    callback: Option<Py<PyAny>>,
    copy_level: CopyLevel,
    lifetime: Lifetime,
    /// `l2=`: the shared second tier (bound to each function it decorates).
    l2: Option<Py<PyAny>>,
    method: bool,
}

/// `ttl=`: nothing, seconds (a number or a `timedelta`), or a callable.
fn lifetime(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Lifetime> {
    Ok(match ttl {
        None => Lifetime::Default,
        Some(t) if t.is_none() => Lifetime::Default,
        Some(t) if t.is_callable() => Lifetime::Computed(t.clone().unbind()),
        // A duration: a `datetime` deadline, which `VTTLCache.insert` takes, would be one
        // instant for every result.
        Some(t) => Lifetime::Seconds(crate::convert::ttl_duration(t)?),
    })
}

impl Lifetime {
    fn clone_ref(&self, py: Python<'_>) -> Self {
        match self {
            Lifetime::Default => Lifetime::Default,
            Lifetime::Seconds(s) => Lifetime::Seconds(*s),
            Lifetime::Computed(f) => Lifetime::Computed(f.clone_ref(py)),
        }
    }
}

/// `ttl=` needs a cache with per-entry TTLs.
pub(super) fn lifetime_error(cache: &Bound<'_, PyAny>) -> PyResult<PyErr> {
    Ok(PyTypeError::new_err(format!("ttl= needs a cache with per-entry TTLs (a VTTLCache), got {}", cache.repr()?)))
}

/// `copy_level`: 0 never copies, 2 always does, anything else copies `dict`/`list`/`set`.
fn copy_level(level: &Bound<'_, PyAny>) -> PyResult<CopyLevel> {
    Ok(if level.eq(0)? {
        CopyLevel::Never
    } else if level.eq(2)? {
        CopyLevel::Always
    } else {
        CopyLevel::Containers
    })
}

impl Decorator {
    /// Validates `cache` as BEHAVIOUR.md §13.2 (`cached`) and §13.8 (`cachedmethod`) say.
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cache: Option<&Bound<'_, PyAny>>,
        key_maker: &Bound<'_, PyAny>,
        clear_reuse: bool,
        callback: Option<&Bound<'_, PyAny>>,
        level: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        l2: Option<&Bound<'_, PyAny>>,
        method: bool,
    ) -> PyResult<Self> {
        let cache = cache.filter(|c| !c.is_none());
        let cache = match cache {
            None => None,
            Some(c) if c.is_exact_instance_of::<PyDict>() => Some(c.clone()),
            Some(c) if c.is_instance_of::<BaseCacheImpl>() => Some(c.clone()),
            Some(c) if !method && c.is_instance_of::<PyFunction>() => Some(c.clone()),
            Some(c) if method => {
                return Err(PyTypeError::new_err(format!("we expected cachebox caches, got {}", c.repr()?)));
            }
            Some(c) => {
                return Err(PyTypeError::new_err(format!(
                    "we expected cachebox caches or function, got {}",
                    c.repr()?
                )));
            }
        };
        if !key_maker.is_callable() {
            return Err(PyTypeError::new_err("key_maker must be callable"));
        }
        let lifetime = lifetime(ttl)?;
        if !matches!(lifetime, Lifetime::Default) {
            let per_entry_ttl = native_classes()?.per_entry_ttl;
            match cache.as_ref() {
                // A factory's caches are only known per call, which checks them.
                Some(c) if c.is_instance_of::<PyFunction>() => {}
                Some(c) if per_entry_ttl(c) => {}
                Some(c) => return Err(lifetime_error(c)?),
                None => return Err(PyTypeError::new_err("ttl= needs a cache with per-entry TTLs (a VTTLCache)")),
            }
        }
        Ok(Self {
            cache: cache.map(Bound::unbind),
            key_maker: key_maker.clone().unbind(),
            clear_reuse,
            callback: callback.filter(|c| !c.is_none()).map(|c| c.clone().unbind()),
            copy_level: copy_level(level)?,
            lifetime,
            l2: l2.filter(|t| !t.is_none()).map(|t| t.clone().unbind()),
            method,
        })
    }

    fn key_maker(&self, py: Python<'_>) -> KeyMaker {
        let maker = self.key_maker.bind(py);
        if let Some([make_key, make_hash_key, make_typed_key]) = KEY_MAKERS.get(py) {
            if maker.is(make_key) {
                return KeyMaker::Default;
            }
            if maker.is(make_hash_key) {
                return KeyMaker::Hashed;
            }
            if maker.is(make_typed_key) {
                return KeyMaker::Typed;
            }
        }
        KeyMaker::Custom(self.key_maker.clone_ref(py))
    }

    /// A cache the wrapper uses: `None` and a `dict` become a new unbounded `FIFOCache`.
    fn source(&self, py: Python<'_>) -> PyResult<Source> {
        let cache = match &self.cache {
            None => (native_classes()?.unbounded)(py).call1((0,))?,
            Some(c) => {
                let c = c.bind(py);
                if c.is_exact_instance_of::<PyDict>() {
                    // The dict's items are copied; the dict itself is never the storage.
                    (native_classes()?.unbounded)(py).call1((0, c))?
                } else if c.is_instance_of::<PyFunction>() {
                    return Ok(Source::Factory(c.clone().unbind()));
                } else {
                    c.clone()
                }
            }
        };
        let native = (native_classes()?.own)(&cache);
        Ok(Source::Fixed { cache: cache.unbind(), native })
    }
}

#[pymethods]
impl Decorator {
    /// Wraps `func`.
    fn __call__(&self, py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<Py<CachedFunction>> {
        if !func.is_callable() {
            return Err(PyTypeError::new_err("cached() must decorate a callable"));
        }
        let source = self.source(py)?;
        let factory = matches!(source, Source::Factory(_));
        let key_maker = self.key_maker(py);
        let fast =
            matches!((&source, &key_maker), (Source::Fixed { native: Some(_), .. }, KeyMaker::Default)) && !self.method;
        let inspect = py.import(intern!(py, "inspect"))?;
        let is_async = inspect.call_method1(intern!(py, "iscoroutinefunction"), (func,))?.is_truthy()?;
        let (l2, link) = match &self.l2 {
            None => (None, None),
            Some(tier) => {
                if matches!(key_maker, KeyMaker::Hashed) {
                    return Err(PyTypeError::new_err(
                        "l2= needs keys that are the same in every process: make_hash_key's are salted \
                         per process (use make_key or make_typed_key)",
                    ));
                }
                let (tier, link) = Tier::bind(tier.bind(py), func, is_async)?;
                (Some(tier), Some(link))
            }
        };
        let memo = Memo {
            fast,
            func: func.clone().unbind(),
            source,
            key_maker,
            skip_self: self.method || factory,
            copy_level: self.copy_level,
            callback: self.callback.as_ref().map(|c| c.clone_ref(py)),
            clear_reuse: self.clear_reuse,
            lifetime: self.lifetime.clone_ref(py),
            hits: Default::default(),
            misses: Default::default(),
            pending: Default::default(),
            l2,
        };
        // Async calls build an awaitable through `__call__`: no vectorcall for them (a null
        // pointer makes CPython use `tp_call`).
        #[cfg(not(PyPy))]
        let vectorcall = (!is_async).then(|| super::call_slots::entry_for(py, &memo));
        let memo = Arc::new(memo);
        if let Some(link) = &link {
            link.get().connect(&memo);
        }
        let wrapper = Py::new(
            py,
            CachedFunction {
                memo: Some(memo),
                is_async,
                factory,
                #[cfg(not(PyPy))]
                vectorcall,
            },
        )?;
        let bound = wrapper.bind(py);
        py.import(intern!(py, "functools"))?.call_method1(intern!(py, "update_wrapper"), (bound, func))?;
        if is_async {
            mark_coroutine_function(bound.as_any(), func)?;
        }
        Ok(wrapper)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.cache)?;
        visit.call(&self.key_maker)?;
        if let Lifetime::Computed(ttl) = &self.lifetime {
            visit.call(ttl)?;
        }
        visit.call(&self.l2)?;
        visit.call(&self.callback)
    }
}

/// Makes `inspect.iscoroutinefunction(wrapper)` (and asyncio's) true for a native object:
/// 3.12+ reads a marker; 3.10 and 3.11 accept "function-like" objects (a `__code__` with the
/// coroutine flag plus `__defaults__`/`__kwdefaults__`); 3.9 also needs `isinstance(wrapper,
/// FunctionType)`, which the wrapper's `__class__` answers (see `CachedFunction::class`).
fn mark_coroutine_function(wrapper: &Bound<'_, PyAny>, func: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = wrapper.py();
    let inspect = py.import(intern!(py, "inspect"))?;
    if inspect.hasattr(intern!(py, "markcoroutinefunction"))? {
        inspect.call_method1(intern!(py, "markcoroutinefunction"), (wrapper,))?;
    }
    // The code object lives on the function under any `functools.partial` and method layers.
    let mut inner = func.clone();
    let partial = py.import(intern!(py, "functools"))?.getattr(intern!(py, "partial"))?;
    loop {
        if inner.is_instance(&partial)? {
            inner = inner.getattr(intern!(py, "func"))?;
        } else if let Ok(f) = inner.getattr(intern!(py, "__func__")) {
            inner = f;
        } else {
            break;
        }
    }
    let dict = wrapper.getattr(intern!(py, "__dict__"))?;
    for name in ["__code__", "__defaults__", "__kwdefaults__", "__name__", "__qualname__"] {
        if !dict.contains(name)? {
            if let Ok(value) = inner.getattr(name) {
                dict.set_item(name, value)?;
            }
        }
    }
    let asyncio_coroutines = py.import(intern!(py, "asyncio.coroutines"))?;
    if let Ok(marker) = asyncio_coroutines.getattr(intern!(py, "_is_coroutine")) {
        dict.set_item(intern!(py, "_is_coroutine"), marker)?;
    }
    Ok(())
}

/// A memoized function: call it like the original (BEHAVIOUR.md §13).
#[pyclass(module = "cachebox", frozen, dict, weakref)]
pub struct CachedFunction {
    /// Always `Some` once built. The collector can traverse the object in the instant between
    /// its allocation and pyo3 writing these fields (allocating the instance `__dict__` may
    /// trigger a collection), when they are all zero bytes: a valid `None` here, and `false`
    /// for the flags, where a bare `Arc` would be a null pointer.
    memo: Option<Arc<Memo>>,
    is_async: bool,
    factory: bool,
    /// The object's vectorcall entry (`call_slots::vectorcall`; the type's
    /// `tp_vectorcall_offset` points here), or null for an async function. CPython only.
    #[cfg(not(PyPy))]
    vectorcall: Option<pyo3::ffi::vectorcallfunc>,
}

/// The helpers `cache_info`/`cache_clear` bind to a wrapper (see the getters below).
static BOUND_HELPERS: PyOnceLock<[Py<PyAny>; 2]> = PyOnceLock::new();

fn bound_helper<'py>(slf: &Bound<'py, CachedFunction>, which: usize, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    if slf.get().factory {
        return Err(no_cache_attribute(name));
    }
    let helpers = BOUND_HELPERS.get_or_try_init(py, || {
        Ok::<_, PyErr>([
            pyo3::wrap_pyfunction!(cache_info, py)?.into_any().unbind(),
            pyo3::wrap_pyfunction!(cache_clear, py)?.into_any().unbind(),
        ])
    })?;
    let method_type = py.import(intern!(py, "types"))?.getattr(intern!(py, "MethodType"))?;
    method_type.call1((helpers[which].bind(py), slf))
}

/// `CacheInfo(hits, misses, maxsize, length, memory)` of a cached function.
#[pyfunction]
fn cache_info<'py>(wrapper: &Bound<'py, CachedFunction>) -> PyResult<Bound<'py, PyAny>> {
    let py = wrapper.py();
    let memo = wrapper.get().memo();
    let Source::Fixed { cache, .. } = &memo.source else { return Err(no_cache_attribute("cache_info")) };
    let cache = cache.bind(py);
    let info = CACHE_INFO.get(py).ok_or_else(|| PyValueError::new_err("cachebox is not initialized"))?;
    info.bind(py).call1((
        memo.hits.get(),
        memo.misses.get(),
        cache.getattr(intern!(py, "maxsize"))?,
        cache.len()?,
        cache.call_method0(intern!(py, "memory"))?,
    ))
}

/// Clears the cache, the hit/miss counters and the calls in flight of a cached function.
#[pyfunction]
fn cache_clear<'py>(wrapper: &Bound<'py, CachedFunction>) -> PyResult<Bound<'py, PyAny>> {
    let py = wrapper.py();
    let memo = wrapper.get().memo();
    let Source::Fixed { cache, .. } = &memo.source else { return Err(no_cache_attribute("cache_clear")) };
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "reuse"), memo.clear_reuse)?;
    cache.bind(py).call_method(intern!(py, "clear"), (), Some(&kwargs))?;
    memo.hits.reset();
    memo.misses.reset();
    memo.pending.clear(py)?;
    match &memo.l2 {
        None => Ok(py.None().into_bound(py)),
        // The second tier's answer: `None`, or an awaitable with an async client.
        Some(tier) => tier.clear(py),
    }
}

impl CachedFunction {
    #[inline]
    pub(super) fn memo(&self) -> &Arc<Memo> {
        self.memo.as_ref().expect("a CachedFunction is built with its Memo")
    }

    /// How many callers wait for this function's calls in flight.
    pub fn followers(&self, py: Python<'_>) -> PyResult<usize> {
        self.memo().pending.followers(py)
    }

    /// `__call__` for the direct `tp_call` (`call_slots`); `None` for an async function, whose
    /// call builds an awaitable and goes through pyo3's `__call__`.
    #[cfg(not(PyPy))]
    #[inline]
    pub fn call_direct(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> Option<PyResult<Py<PyAny>>> {
        (!self.is_async).then(|| self.memo().call(py, call))
    }

    /// A call through vectorcall with positional arguments only; `None` for an async
    /// function (whose `vectorcall` is null, so CPython does not come here for it).
    #[cfg(not(PyPy))]
    #[inline]
    pub fn call_vector(&self, py: Python<'_>, args: &[Bound<'_, PyAny>]) -> Option<PyResult<Py<PyAny>>> {
        (!self.is_async).then(|| self.memo().call_vector(py, args))
    }

    /// Where the `vectorcall` field sits in the object, measured on a blank instance.
    #[cfg(not(PyPy))]
    pub fn vectorcall_offset(py: Python<'_>) -> PyResult<usize> {
        let blank = Py::new(py, CachedFunction { memo: None, is_async: false, factory: false, vectorcall: None })?;
        let field = std::ptr::addr_of!(blank.get().vectorcall) as usize;
        Ok(field - blank.as_ptr() as usize)
    }
}

#[pymethods]
impl CachedFunction {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if this.is_async {
            let call = AsyncCall::new(this.memo().clone(), args.clone().unbind(), kwargs.map(|k| k.clone().unbind()));
            let awaitable = CachedCall { owner: slf.clone().into_any().unbind(), call: Guarded::new(call) };
            return Ok(Py::new(py, awaitable)?.into_any());
        }
        this.memo().call(py, CallArgs { args, kwargs })
    }

    /// Binds like a function, so methods receive `self` as `args[0]`.
    fn __get__(
        slf: &Bound<'_, Self>,
        obj: Option<&Bound<'_, PyAny>>,
        _cls: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        match obj {
            Some(obj) if !obj.is_none() => {
                let bound = BoundCachedFunction { func: slf.clone().unbind(), obj: obj.clone().unbind() };
                Ok(Py::new(py, bound)?.into_any())
            }
            _ => Ok(slf.clone().into_any().unbind()),
        }
    }

    /// Removes the cached result of the call with these arguments; whether there was one. A
    /// call of them in flight is not cancelled, but its result is not stored.
    #[pyo3(signature = (*args, **kwargs))]
    fn cache_invalidate<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.memo().invalidate(py, CallArgs { args, kwargs })
    }

    /// The cache (absent when it comes from a factory).
    #[getter]
    fn cache(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.memo().source {
            Source::Fixed { cache, .. } => Ok(cache.clone_ref(py)),
            Source::Factory(_) => Err(no_cache_attribute("cache")),
        }
    }

    /// `cache_info()`: `CacheInfo(hits, misses, maxsize, length, memory)`.
    #[getter(cache_info)]
    fn get_cache_info<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        bound_helper(slf, 0, "cache_info")
    }

    /// `cache_clear()`: clears the cache and resets the counters.
    #[getter(cache_clear)]
    fn get_cache_clear<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        bound_helper(slf, 1, "cache_clear")
    }

    /// The `callback` given to the decorator, or `None`.
    #[getter]
    fn callback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.memo().callback.as_ref().map(|c| c.clone_ref(py))
    }

    /// On CPython 3.9, `inspect.iscoroutinefunction` only accepts `FunctionType` instances;
    /// the wrapper of a coroutine function answers as one there (it has `__code__` and the
    /// other function attributes). Everywhere else this is the true class.
    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyType>> {
        let py = slf.py();
        if slf.get().is_async && py.version_info() < (3, 10) {
            return Ok(py.get_type::<PyFunction>());
        }
        Ok(slf.get_type())
    }

    /// Pickles by reference, like a function.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.getattr(intern!(slf.py(), "__qualname__"))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let name = match slf.getattr(intern!(py, "__qualname__")) {
            Ok(name) => name.str()?.to_string(),
            Err(_) => slf.get().memo().func.bind(py).repr()?.to_string(),
        };
        Ok(format!("<cached function {name} at {:#x}>", slf.as_ptr() as usize))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        let Some(memo) = &self.memo else { return Ok(()) };
        visit.call(&memo.func)?;
        match &memo.source {
            Source::Fixed { cache, native } => {
                visit.call(cache)?;
                // The handle holds a second reference to the same cache.
                if let Some(native) = native {
                    native.traverse(&visit)?;
                }
            }
            Source::Factory(factory) => visit.call(factory)?,
        }
        if let KeyMaker::Custom(k) = &memo.key_maker {
            visit.call(k)?;
        }
        if let Lifetime::Computed(ttl) = &memo.lifetime {
            visit.call(ttl)?;
        }
        if let Some(tier) = &memo.l2 {
            tier.traverse(&visit)?;
        }
        visit.call(&memo.callback)
    }
}

// A memoized function bound to an object (`obj.method`), like a bound method: calling it
// calls the function with `obj` first, and `cache_invalidate` takes the rest of a call's
// arguments. Every other attribute is the function's. (No doc comment: it would become the
// class's `__doc__`, which instances would show instead of the function's.)
#[pyclass(module = "cachebox", frozen, weakref)]
pub struct BoundCachedFunction {
    func: Py<CachedFunction>,
    obj: Py<PyAny>,
}

impl BoundCachedFunction {
    /// `(obj, *args)`.
    fn with_self<'py>(&self, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyTuple>> {
        let py = args.py();
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.obj.bind(py).clone());
        all.extend(args.iter());
        PyTuple::new(py, all)
    }
}

#[pymethods]
impl BoundCachedFunction {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Ok(self.func.bind(py).call(self.with_self(args)?, kwargs)?.unbind())
    }

    /// Removes the cached result of `obj.method(*args, **kwargs)`; whether there was one.
    #[pyo3(signature = (*args, **kwargs))]
    fn cache_invalidate<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.func.get().memo().invalidate(py, CallArgs { args: &self.with_self(args)?, kwargs })
    }

    /// The object the function is bound to.
    #[getter]
    fn __self__(&self, py: Python<'_>) -> Py<PyAny> {
        self.obj.clone_ref(py)
    }

    /// The memoized function.
    #[getter]
    fn __func__(&self, py: Python<'_>) -> Py<CachedFunction> {
        self.func.clone_ref(py)
    }

    #[getter]
    fn __doc__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.func.bind(py).getattr(intern!(py, "__doc__"))
    }

    #[getter]
    fn __module__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.func.bind(py).getattr(intern!(py, "__module__"))
    }

    /// The function's signature without its first parameter, as for a bound method.
    #[getter]
    fn __signature__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let signature = py.import(intern!(py, "inspect"))?.call_method1(intern!(py, "signature"), (&self.func,))?;
        let parameters = signature.getattr(intern!(py, "parameters"))?.call_method0(intern!(py, "values"))?;
        let rest: Vec<Bound<'py, PyAny>> = parameters.try_iter()?.skip(1).collect::<PyResult<_>>()?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "parameters"), rest)?;
        signature.call_method(intern!(py, "replace"), (), Some(&kwargs))
    }

    /// As `CachedFunction.__class__` (Python 3.9's `inspect.iscoroutinefunction`).
    #[getter(__class__)]
    fn class<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyType>> {
        let py = slf.py();
        if slf.get().func.get().is_async && py.version_info() < (3, 10) {
            return Ok(py.get_type::<PyFunction>());
        }
        Ok(slf.get_type())
    }

    fn __getattr__<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, pyo3::types::PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.func.bind(py).getattr(name)
    }

    /// Equal when bound to the same object and the same function, as bound methods are.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Self>().is_ok_and(|o| o.get().func.is(&self.func) && o.get().obj.is(&self.obj))
    }

    fn __hash__(&self) -> isize {
        (self.obj.as_ptr() as isize) ^ (self.func.as_ptr() as isize).rotate_left(16)
    }

    /// Pickles as the attribute of its object.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let getattr = py.import(intern!(py, "builtins"))?.getattr(intern!(py, "getattr"))?;
        let name = self.func.bind(py).getattr(intern!(py, "__name__"))?;
        let args = PyTuple::new(py, [self.obj.bind(py).clone(), name])?;
        PyTuple::new(py, [getattr, args.into_any()])
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let func = self.func.bind(py);
        let name = match func.getattr(intern!(py, "__qualname__")) {
            Ok(name) => name.str()?.to_string(),
            Err(_) => func.repr()?.to_string(),
        };
        Ok(format!("<bound cached function {name} of {}>", self.obj.bind(py).repr()?))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.func)?;
        visit.call(&self.obj)
    }
}

/// The awaitable a cached coroutine function returns.
#[pyclass(module = "cachebox", frozen)]
pub struct CachedCall {
    /// Keeps the wrapper (and so everything the call uses) alive.
    owner: Py<PyAny>,
    /// Re-entry (the coroutine driving its own awaitable) raises instead of deadlocking.
    call: Guarded<AsyncCall>,
}

impl CachedCall {
    fn drive(&self, py: Python<'_>, input: Input) -> PyResult<Py<PyAny>> {
        // The user's coroutine runs under this lock.
        let step = self.call.lock_marked(py)?.step(py, input)?;
        match step {
            Step::Yield(y) => Ok(y),
            Step::Return(v) => Err(pyo3::exceptions::PyStopIteration::new_err((v,))),
        }
    }
}

/// Builds the exception `throw(typ, val, tb)` asks for, like a generator does.
fn thrown(typ: &Bound<'_, PyAny>, val: Option<&Bound<'_, PyAny>>) -> PyResult<PyErr> {
    if typ.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        return Ok(PyErr::from_value(typ.clone()));
    }
    let instance = match val {
        Some(v) if !v.is_none() => {
            if v.is_instance(typ)? {
                v.clone()
            } else {
                typ.call1((v,))?
            }
        }
        _ => typ.call0()?,
    };
    Ok(PyErr::from_value(instance))
}

#[pymethods]
impl CachedCall {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.drive(py, Input::Send(py.None()))
    }

    fn send(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        self.drive(py, Input::Send(value))
    }

    #[pyo3(signature = (typ, val = None, tb = None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: &Bound<'_, PyAny>,
        val: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = tb;
        self.drive(py, Input::Throw(thrown(typ, val)?))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.call.lock_marked(py)?.close(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.owner)?;
        // Skip the call's own references while a step holds it (never block here).
        if let Some(call) = self.call.try_lock() {
            call.visit(&visit)?;
        }
        Ok(())
    }
}
