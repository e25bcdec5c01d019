//! Key makers: `make_key`, `make_hash_key`, `make_typed_key` (BEHAVIOUR.md §12), with CPython
//! `lru_cache`'s fast paths: no keywords → the argument tuple itself is the key, and one
//! argument of exact type `int` or `str` → that argument is the key.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple, PyType};

/// Which argument types may stand alone as a key.
#[derive(Clone, Copy)]
pub enum FastTypes<'a, 'py> {
    /// `(int, str)`, the default.
    IntStr,
    /// Never: the key is always a tuple (`make_typed_key`).
    Never,
    /// A user-given container, tested with `in`.
    Custom(&'a Bound<'py, PyAny>),
}

/// The separator between positional and keyword arguments: the builtin `object` type, as in
/// upstream (so `f(1, object, "b", 2)` and `f(1, b=2)` collide, as documented there).
fn kwd_mark(py: Python<'_>) -> Bound<'_, PyType> {
    py.get_type::<PyAny>()
}

fn is_fast(arg: &Bound<'_, PyAny>, fast: FastTypes<'_, '_>) -> PyResult<bool> {
    match fast {
        FastTypes::IntStr => Ok(arg.is_exact_instance_of::<PyInt>() || arg.is_exact_instance_of::<PyString>()),
        FastTypes::Never => Ok(false),
        FastTypes::Custom(types) => {
            if types.is_truthy()? {
                types.contains(arg.get_type())
            } else {
                Ok(false)
            }
        }
    }
}

/// `make_key(args, kwds, fasttype)`.
pub fn make_key<'py>(
    args: &Bound<'py, PyTuple>,
    kwds: Option<&Bound<'py, PyDict>>,
    fast: FastTypes<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = args.py();
    match kwds {
        Some(kwds) if !kwds.is_empty() => {
            let mut parts: Vec<Bound<'py, PyAny>> = Vec::with_capacity(args.len() + 1 + 2 * kwds.len());
            parts.extend(args.iter());
            parts.push(kwd_mark(py).into_any());
            for (k, v) in kwds.iter() {
                parts.push(k);
                parts.push(v);
            }
            Ok(PyTuple::new(py, parts)?.into_any())
        }
        _ => {
            if args.len() == 1 {
                let only = args.get_item(0)?;
                if is_fast(&only, fast)? {
                    return Ok(only);
                }
            }
            Ok(args.clone().into_any())
        }
    }
}

/// `make_typed_key(args, kwds)`: `make_key(..., fasttype=())` plus the argument types.
pub fn make_typed_key<'py>(
    args: &Bound<'py, PyTuple>,
    kwds: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = args.py();
    let kwds = kwds.filter(|k| !k.is_empty());
    let base = make_key(args, kwds, FastTypes::Never)?;
    let base = base.cast::<PyTuple>()?;
    let mut parts: Vec<Bound<'py, PyAny>> = base.iter().collect();
    parts.extend(args.iter().map(|a| a.get_type().into_any()));
    if let Some(kwds) = kwds {
        parts.extend(kwds.values().iter().map(|v| v.get_type().into_any()));
    }
    Ok(PyTuple::new(py, parts)?.into_any())
}

/// The positional arguments as a tuple (anything iterable is accepted).
pub fn as_tuple<'py>(args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    match args.cast::<PyTuple>() {
        Ok(t) => Ok(t.clone()),
        Err(_) => Ok(PyTuple::new(args.py(), args.try_iter()?.collect::<PyResult<Vec<_>>>()?)?),
    }
}

/// The keyword arguments as a dict (any mapping is accepted; `None` = none).
pub fn as_dict<'py>(kwds: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyDict>>> {
    match kwds {
        None => Ok(None),
        Some(k) if k.is_none() => Ok(None),
        Some(k) => match k.cast::<PyDict>() {
            Ok(d) => Ok(Some(d.clone())),
            Err(_) => {
                let d = PyDict::new(k.py());
                d.update(k.cast::<pyo3::types::PyMapping>()?)?;
                Ok(Some(d))
            }
        },
    }
}
