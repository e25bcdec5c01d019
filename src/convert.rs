//! Python-side argument handling shared by every class: hashing, entry sizes, TTL values and
//! the iterables `update` and the constructors accept. Everything here runs *before* a cache
//! lock is taken, because all of it can run Python code.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDateTime, PyDelta, PyFloat, PyInt, PyTuple, PyType};

use crate::entry::fold_hash;

#[inline]
pub fn hash_key(key: &Bound<'_, PyAny>) -> PyResult<u32> {
    key.hash().map(fold_hash)
}

/// The `__sizeof__` formulas of the exact builtin types the fast paths cover, measured once
/// from the running interpreter (they differ between versions): `int` is
/// `int_base + digit * max(ndigits, min_digits)`, `tuple` is `tuple_base + item * len`, and a
/// `float` has one size.
struct Layout {
    int_base: usize,
    digit: usize,
    min_digits: u32,
    tuple_base: usize,
    item: usize,
    float: usize,
}

fn layout(py: Python<'_>) -> Option<&Layout> {
    // A `PyOnceLock`, not a std `OnceLock`: its initializer runs Python, and a thread that
    // waits for it must not hold the GIL meanwhile (that deadlocks with the initializing one).
    static LAYOUT: PyOnceLock<Option<Layout>> = PyOnceLock::new();
    LAYOUT
        .get_or_init(py, || {
            let size = |obj: Bound<'_, PyAny>| -> Option<usize> {
                obj.call_method0(intern!(py, "__sizeof__")).ok()?.extract().ok()
            };
            let int = |v: i64| v.into_pyobject(py).ok().and_then(|o| size(o.into_any()));
            let (zero, one, two) = (int(0)?, int(1)?, int(1 << 30)?);
            let digit = two.checked_sub(one)?;
            let empty = size(PyTuple::empty(py).into_any())?;
            let pair = size(PyTuple::new(py, [py.None(), py.None()]).ok()?.into_any())?;
            Some(Layout {
                int_base: one.checked_sub(digit)?,
                digit,
                min_digits: u32::from(zero == one),
                tuple_base: empty,
                item: pair.checked_sub(empty)? / 2,
                float: size(PyFloat::new(py, 0.0).into_any())?,
            })
        })
        .as_ref()
}

/// The charge of one object: `obj.__sizeof__()`, or `cls.__sizeof__(cls)` for a class. Exact
/// `int`, `tuple` and `float` objects (keys and values of most caches) are measured without a
/// Python call; subclasses may override `__sizeof__`, so only exact types qualify.
pub fn sizeof(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = obj.py();
    if let Some(layout) = layout(py) {
        if obj.is_exact_instance_of::<PyInt>() {
            if let Ok(v) = obj.extract::<i64>() {
                // CPython stores 30-bit digits; this is what `int.__sizeof__` computes.
                let bits = 64 - v.unsigned_abs().leading_zeros();
                let digits = bits.div_ceil(30).max(layout.min_digits);
                return Ok(layout.int_base + layout.digit * digits as usize);
            }
        } else if let Ok(tuple) = obj.cast_exact::<PyTuple>() {
            return Ok(layout.tuple_base + layout.item * tuple.len());
        } else if obj.is_exact_instance_of::<PyFloat>() {
            return Ok(layout.float);
        }
    }
    let size = if obj.is_instance_of::<PyType>() {
        obj.getattr(intern!(py, "__sizeof__"))?.call1((obj,))?
    } else {
        obj.call_method0(intern!(py, "__sizeof__"))?
    };
    size.extract::<usize>()
}

/// Seconds from a number or `timedelta`; `datetime` too when `allow_datetime` (VTTL).
fn seconds(value: &Bound<'_, PyAny>, allow_datetime: bool) -> PyResult<f64> {
    let py = value.py();
    // The common case first: a float or an int.
    if value.is_exact_instance_of::<PyFloat>() || value.is_exact_instance_of::<PyInt>() {
        return value.extract::<f64>();
    }
    if value.is_instance_of::<PyDelta>() {
        return value.call_method0(intern!(py, "total_seconds"))?.extract();
    }
    if allow_datetime && value.is_instance_of::<PyDateTime>() {
        let now =
            py.import(intern!(py, "datetime"))?.getattr(intern!(py, "datetime"))?.call_method0(intern!(py, "now"))?;
        return value.sub(now)?.call_method0(intern!(py, "total_seconds"))?.extract();
    }
    value.extract::<f64>()
}

fn check_ttl(secs: f64, message: &'static str) -> PyResult<f64> {
    if secs.is_nan() || secs.is_infinite() {
        return Err(PyValueError::new_err("ttl must be a finite number"));
    }
    if secs <= 0.0 {
        return Err(PyValueError::new_err(message));
    }
    if std::time::Duration::try_from_secs_f64(secs).is_err() {
        return Err(PyValueError::new_err("ttl is too large"));
    }
    Ok(secs)
}

/// `TTLCache`'s global TTL.
pub fn ttl_seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    check_ttl(seconds(value, false)?, "ttl must be a positive number and non-zero")
}

/// `VTTLCache`'s per-key TTL: `None` means the key never expires.
pub fn vttl_seconds(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => check_ttl(seconds(v, true)?, "ttl must be positive and non-zero").map(Some),
    }
}

/// Calls `f(key, value)` for every pair of a constructor/`update` argument: a mapping (anything
/// with `.items`), or an iterable of 2-tuples.
pub fn for_each_pair(
    iterable: &Bound<'_, PyAny>,
    mut f: impl FnMut(&Bound<'_, PyAny>, &Bound<'_, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    let py = iterable.py();
    let source = if iterable.hasattr(intern!(py, "items"))? {
        iterable.call_method0(intern!(py, "items"))?
    } else {
        iterable.clone()
    };
    for item in source.try_iter()? {
        let item = item?;
        let Ok(pair) = item.cast::<PyTuple>() else {
            let name = item.get_type().name()?;
            return Err(PyTypeError::new_err(format!("expected tuple, but got {name}")));
        };
        if pair.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "expected tuple of length 2, but got tuple of length {}",
                pair.len()
            )));
        }
        f(&pair.get_item(0)?, &pair.get_item(1)?)?;
    }
    Ok(())
}
