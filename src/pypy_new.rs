//! PyPy only: `Cls.__new__(other)` refuses an `other` that is not a subclass of `Cls`.
//!
//! CPython checks that before a type's `tp_new` runs; PyPy's emulation of the C API does not,
//! and pyo3's `tp_new` would then build a `Cls` in an object laid out for `other`, which
//! corrupts memory. `install` wraps each class's `__new__` in a function that checks first.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

/// `owner.__new__(subtype, *args, **kwargs)` through `original` (pyo3's), once `subtype` is
/// known to be `owner` or a subclass of it; the errors are CPython's.
#[pyfunction]
#[pyo3(signature = (owner, original, subtype, *args, **kwargs))]
fn checked_new<'py>(
    owner: &Bound<'py, PyType>,
    original: &Bound<'py, PyAny>,
    subtype: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let name = owner.name()?;
    let Ok(class) = subtype.cast::<PyType>() else {
        let kind = subtype.get_type().name()?;
        return Err(PyTypeError::new_err(format!("{name}.__new__(X): X is not a type object ({kind})")));
    };
    if !class.is_subclass(owner)? {
        let sub = class.name()?;
        return Err(PyTypeError::new_err(format!("{name}.__new__({sub}): {sub} is not a subtype of {name}")));
    }
    let all: Vec<_> = std::iter::once(subtype.clone()).chain(args.iter()).collect();
    let all = PyTuple::new(owner.py(), all)?;
    original.call(all, kwargs)
}

/// Wraps the `__new__` of each class of `m` named in `names` (module init).
pub fn install(m: &Bound<'_, PyModule>, names: &[&str]) -> PyResult<()> {
    let py = m.py();
    let checked = wrap_pyfunction!(checked_new, m)?;
    let partial = py.import(intern!(py, "functools"))?.getattr(intern!(py, "partial"))?;
    let staticmethod = py.import(intern!(py, "builtins"))?.getattr(intern!(py, "staticmethod"))?;
    for name in names {
        let class = m.getattr(*name)?;
        let original = class.getattr(intern!(py, "__new__"))?;
        let guarded = partial.call1((&checked, &class, original))?;
        class.setattr(intern!(py, "__new__"), staticmethod.call1((guarded,))?)?;
    }
    Ok(())
}
