//! `BaseCacheImpl`, the abstract base of every cache, and `Frozen`, a read-only view of one.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyAssertionError, PyAttributeError, PyNotImplementedError, PyTypeError};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{intern, PyTraverseError};

/// Base implementation for every cache class (and `Frozen`): use it for `isinstance` checks,
/// type hints, or to write your own cache.
#[pyclass(module = "cachebox", subclass, frozen, weakref)]
pub struct BaseCacheImpl;

#[pymethods]
impl BaseCacheImpl {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn new(cls: &Bound<'_, PyType>, _args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        if cls.is(cls.py().get_type::<Self>()) {
            return Err(PyNotImplementedError::new_err(
                "do not call this constructor, you can subclass this implementation or use other classes.",
            ));
        }
        Ok(Self)
    }

    /// `LRUCache[int, str] is LRUCache`: subscripting is for type checkers only.
    #[classmethod]
    fn __class_getitem__<'py>(cls: &Bound<'py, PyType>, _item: &Bound<'py, PyAny>) -> Bound<'py, PyType> {
        cls.clone()
    }
}

/// A read-only view of a cache: reads go through (and still touch LRU order, LFU counts and
/// TTL expiry), writes raise `TypeError`, or do nothing when `ignore` is true.
#[pyclass(module = "cachebox", extends = BaseCacheImpl, frozen, subclass)]
pub struct Frozen {
    cache: Py<PyAny>,
    ignore: AtomicBool,
}

fn frozen_error() -> PyErr {
    PyTypeError::new_err("This cache is frozen.")
}

/// The methods of a cache that write to it.
const WRITERS: [&str; 8] = ["insert", "pop", "setdefault", "popitem", "drain", "clear", "shrink_to_fit", "update"];

/// A writing method of a `Frozen` cache: calling it raises `TypeError("This cache is
/// frozen.")`, or returns `None` when the `Frozen` was made with `ignore=True`.
#[pyclass(module = "cachebox", frozen)]
pub struct Refusal {
    frozen: Py<Frozen>,
}

#[pymethods]
impl Refusal {
    #[pyo3(signature = (*_args, **_kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        self.frozen.get().refuse(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.frozen)
    }
}

impl Frozen {
    fn forward<'py>(&self, py: Python<'py>, name: &Bound<'py, pyo3::types::PyString>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).getattr(name)
    }

    /// What every mutating method does: refuse, or ignore the call.
    fn refuse(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if self.ignore.load(Ordering::Relaxed) {
            Ok(py.None())
        } else {
            Err(frozen_error())
        }
    }
}

#[pymethods]
impl Frozen {
    #[new]
    #[pyo3(signature = (cls, ignore = false))]
    fn new(cls: &Bound<'_, PyAny>, ignore: bool) -> PyResult<PyClassInitializer<Self>> {
        // An explicit check rather than `assert`, so it also holds under `python -O`.
        if !cls.is_instance_of::<BaseCacheImpl>() {
            return Err(PyAssertionError::new_err("cls must be an instance of BaseCacheImpl"));
        }
        if cls.is_instance_of::<Self>() {
            return Err(PyAssertionError::new_err("cls must not be a Frozen"));
        }
        Ok(PyClassInitializer::from(BaseCacheImpl)
            .add_subclass(Self { cache: cls.clone().unbind(), ignore: AtomicBool::new(ignore) }))
    }

    /// The wrapped cache.
    #[getter]
    fn cache(&self, py: Python<'_>) -> Py<PyAny> {
        self.cache.clone_ref(py)
    }

    #[getter]
    fn get_ignore(&self) -> bool {
        self.ignore.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_ignore(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.ignore.store(value.is_truthy()?, Ordering::Relaxed);
        Ok(())
    }

    #[getter]
    fn maxsize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.forward(py, intern!(py, "maxsize"))
    }

    #[getter]
    fn maxmemory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.forward(py, intern!(py, "maxmemory"))
    }

    #[getter]
    fn on_evict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.forward(py, intern!(py, "on_evict"))
    }

    #[getter]
    fn weigher<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.forward(py, intern!(py, "weigher"))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.cache.bind(py).len()
    }

    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        self.cache.bind(py).is_truthy()
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.cache.bind(py).contains(key)
    }

    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).get_item(key)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.cache.bind(py).try_iter()?.into_any())
    }

    fn __sizeof__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "__sizeof__"))
    }

    fn capacity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "capacity"))
    }

    fn memory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "memory"))
    }

    fn is_full<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "is_full"))
    }

    fn is_empty<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "is_empty"))
    }

    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let default = default.map_or_else(|| py.None().into_bound(py), Bound::clone);
        self.cache.bind(py).call_method1(intern!(py, "get"), (key, default))
    }

    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "keys"))
    }

    fn values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "values"))
    }

    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.cache.bind(py).call_method0(intern!(py, "items"))
    }

    fn __setitem__(&self, py: Python<'_>, _key: &Bound<'_, PyAny>, _value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.refuse(py).map(drop)
    }

    fn __delitem__(&self, py: Python<'_>, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        self.refuse(py).map(drop)
    }

    /// The cache's writing methods (`insert`, `pop`, `setdefault`, `popitem`, `drain`,
    /// `clear`, `shrink_to_fit`, `update`): each refuses, or does nothing when `ignore` is
    /// set. Any other name is not available on a frozen cache.
    fn __getattr__(slf: &Bound<'_, Self>, name: &str) -> PyResult<Refusal> {
        if WRITERS.contains(&name) {
            return Ok(Refusal { frozen: slf.clone().unbind() });
        }
        let type_name = slf.get_type().name()?;
        Err(PyAttributeError::new_err(format!("'{type_name}' object has no attribute '{name}'")))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<Frozen: {}>", self.cache.bind(py).repr()?))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.cache)
    }
}
