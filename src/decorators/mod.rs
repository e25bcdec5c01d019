//! Memoizing decorators (BEHAVIOUR.md §12-13), all native: `cached`, `cachedmethod`, `is_cached`,
//! the key makers, `EVENT_MISS`/`EVENT_HIT` and `CacheInfo`.

mod async_call;
// CPython only, like the mapping slots (see `lib.rs`).
#[cfg(not(PyPy))]
mod call_slots;
mod keys;
mod memo;
mod pending;
mod tiered;
mod wrappers;

use cachebox_macros::decorator_factory;
use pyo3::exceptions::PyAttributeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

#[cfg(not(PyPy))]
pub use call_slots::{install as install_call_slots, NativeVectorcalls};
pub use memo::{EVENT_HIT, EVENT_MISS};
pub use tiered::TieredValue;
pub use wrappers::{BoundCachedFunction, CachedCall, CachedFunction, Decorator};

use crate::base::BaseCacheImpl;
use keys::{as_dict, as_tuple, FastTypes};

/// `make_key`'s `fasttype` argument: omitted means `(int, str)`; anything given (even
/// `None`) is used as is, and a falsy value disables the fast path.
pub enum FastTypeArg {
    Omitted,
    Given(Py<PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for FastTypeArg {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Self::Given(obj.to_owned().unbind()))
    }
}

/// `make_key(args, kwds, fasttype=(int, str))`: the default cache key of a call.
#[pyfunction]
#[pyo3(signature = (args, kwds, fasttype = FastTypeArg::Omitted), text_signature = "(args, kwds, fasttype=...)")]
pub fn make_key<'py>(
    args: &Bound<'py, PyAny>,
    kwds: Option<&Bound<'py, PyAny>>,
    fasttype: FastTypeArg,
) -> PyResult<Bound<'py, PyAny>> {
    let py = args.py();
    let given = match &fasttype {
        FastTypeArg::Omitted => None,
        FastTypeArg::Given(types) => Some(types.bind(py)),
    };
    let fast = given.map_or(FastTypes::IntStr, FastTypes::Custom);
    keys::make_key(&as_tuple(args)?, as_dict(kwds)?.as_ref(), fast)
}

/// `make_hash_key(args, kwds)`: `hash(make_key(args, kwds))`.
#[pyfunction]
pub fn make_hash_key(args: &Bound<'_, PyAny>, kwds: Option<&Bound<'_, PyAny>>) -> PyResult<isize> {
    keys::make_key(&as_tuple(args)?, as_dict(kwds)?.as_ref(), FastTypes::IntStr)?.hash()
}

/// `make_typed_key(args, kwds)`: `make_key` that also tells argument types apart.
#[pyfunction]
pub fn make_typed_key<'py>(args: &Bound<'py, PyAny>, kwds: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    keys::make_typed_key(&as_tuple(args)?, as_dict(kwds)?.as_ref())
}

fn default_key_maker(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    match wrappers::KEY_MAKERS.get(py) {
        Some([make_key, ..]) => Ok(make_key.bind(py).clone()),
        None => Ok(wrap_pyfunction!(make_key, py)?.into_any()),
    }
}

decorator_factory! {
    /// Decorator to wrap a function with a memoizing callable that saves results in a cache.
    cached -> Decorator = decorator, method = false
}

decorator_factory! {
    /// Like `cached`, for methods: `self` is left out of the key.
    cachedmethod -> Decorator = decorator, method = true
}

#[allow(clippy::too_many_arguments)]
fn decorator(
    py: Python<'_>,
    cache: Option<&Bound<'_, PyAny>>,
    key_maker: Option<&Bound<'_, PyAny>>,
    clear_reuse: bool,
    callback: Option<&Bound<'_, PyAny>>,
    copy_level: Option<&Bound<'_, PyAny>>,
    ttl: Option<&Bound<'_, PyAny>>,
    l2: Option<&Bound<'_, PyAny>>,
    method: bool,
) -> PyResult<Decorator> {
    let key_maker = match key_maker {
        Some(k) if !k.is_none() => k.clone(),
        _ => default_key_maker(py)?,
    };
    let one = 1i64.into_pyobject(py)?.into_any();
    let level = copy_level.unwrap_or(&one);
    Decorator::new(cache, &key_maker, clear_reuse, callback, level, ttl, l2, method)
}

/// Whether `func` is memoized by cachebox: it has a `cache` attribute holding a cachebox cache.
#[pyfunction]
pub fn is_cached(func: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = func.py();
    match func.getattr(intern!(py, "cache")) {
        Ok(cache) => Ok(cache.is_instance_of::<BaseCacheImpl>()),
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => Ok(false),
        Err(e) => Err(e),
    }
}

/// PyPy: calls go through pyo3's `__call__`.
#[cfg(PyPy)]
pub fn install_call_slots(_py: Python<'_>) -> PyResult<()> {
    Ok(())
}

/// Adds the decorators' names to the module (called from module init).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("EVENT_MISS", EVENT_MISS)?;
    m.add("EVENT_HIT", EVENT_HIT)?;
    memo::copy_function(py)?;
    let makers =
        [m.getattr("make_key")?.unbind(), m.getattr("make_hash_key")?.unbind(), m.getattr("make_typed_key")?.unbind()];
    let _ = wrappers::KEY_MAKERS.set(py, makers);
    let fields = PyTuple::new(py, ["hits", "misses", "maxsize", "length", "memory"])?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("module", "cachebox")?;
    let info = py.import("collections")?.getattr("namedtuple")?.call(("CacheInfo", fields), Some(&kwargs))?;
    m.add("CacheInfo", &info)?;
    let _ = wrappers::CACHE_INFO.set(py, info.unbind());
    Ok(())
}
