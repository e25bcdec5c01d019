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

/// `int.__sizeof__` laid out as `base + digit * max(ndigits, min_digits)`, measured once.
struct IntLayout {
    base: usize,
    digit: usize,
    min_digits: u32,
}

fn int_layout(py: Python<'_>) -> Option<&IntLayout> {
    // A `PyOnceLock`, not a std `OnceLock`: its initializer runs Python, and a thread that
    // waits for it must not hold the GIL meanwhile (that deadlocks with the initializing one).
    static LAYOUT: PyOnceLock<Option<IntLayout>> = PyOnceLock::new();
    LAYOUT
        .get_or_init(py, || {
            let size = |v: i64| -> Option<usize> {
                v.into_pyobject(py).ok()?.call_method0(intern!(py, "__sizeof__")).ok()?.extract().ok()
            };
            let (zero, one, two) = (size(0)?, size(1)?, size(1 << 30)?);
            let digit = two.checked_sub(one)?;
            let base = one.checked_sub(digit)?;
            let min_digits = u32::from(zero == one);
            Some(IntLayout { base, digit, min_digits })
        })
        .as_ref()
}

/// The charge of one object: `obj.__sizeof__()`, or `cls.__sizeof__(cls)` for a class.
pub fn sizeof(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = obj.py();
    if obj.is_exact_instance_of::<PyInt>() {
        if let (Some(layout), Ok(v)) = (int_layout(py), obj.extract::<i64>()) {
            // CPython stores 30-bit digits; this is what `int.__sizeof__` computes.
            let bits = 64 - v.unsigned_abs().leading_zeros();
            let digits = bits.div_ceil(30).max(layout.min_digits);
            return Ok(layout.base + layout.digit * digits as usize);
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
