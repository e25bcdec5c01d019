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

/// The hash CPython gives the tuple `items` (the xxHash-based mix of `Objects/tupleobject.c`,
/// 3.8 onwards), computed without building the tuple: a decorated call through vectorcall
/// looks its key up this way. `tuple_hash_matches` checks it against real tuples at import.
pub fn items_hash(items: &[Bound<'_, PyAny>]) -> PyResult<isize> {
    #[cfg(target_pointer_width = "64")]
    const PRIMES: (usize, usize, usize, u32) = (11400714785074694791, 14029467366897019727, 2870177450012600261, 31);
    #[cfg(not(target_pointer_width = "64"))]
    const PRIMES: (usize, usize, usize, u32) = (2654435761, 2246822519, 374761393, 13);
    let (p1, p2, p5, rotate) = PRIMES;
    let mut acc = p5;
    for item in items {
        let lane = item.hash()? as usize;
        acc = acc.wrapping_add(lane.wrapping_mul(p2)).rotate_left(rotate).wrapping_mul(p1);
    }
    acc = acc.wrapping_add(items.len() ^ (p5 ^ 3527539));
    // -1 is the error value of `tp_hash`; CPython substitutes this constant.
    Ok(if acc == usize::MAX { 1546275796 } else { acc as isize })
}

/// Whether `items_hash` agrees with `hash(tuple)` on this interpreter (checked once). Never
/// on PyPy, whose tuples hash their own way (and whose calls do not come through vectorcall).
pub fn tuple_hash_matches(py: Python<'_>) -> bool {
    if cfg!(PyPy) {
        return false;
    }
    static MATCHES: PyOnceLock<bool> = PyOnceLock::new();
    *MATCHES.get_or_init(py, || {
        let samples = ["()", "(1,)", "(-1,)", "(1, 2)", "('a', 2.5, None, (3, -4), 2**70, -(2**65))"];
        samples.iter().all(|src| {
            let Ok(code) = std::ffi::CString::new(*src) else { return false };
            let Ok(obj) = py.eval(&code, None, None) else { return false };
            let Ok(tuple) = obj.cast::<PyTuple>() else { return false };
            let items: Vec<_> = tuple.iter().collect();
            matches!((items_hash(&items), tuple.hash()), (Ok(a), Ok(b)) if a == b)
        })
    })
}

/// The `__sizeof__` formulas of the exact builtin types the fast paths cover, measured once
/// from the running interpreter (they differ between versions): `int` is
/// `int_base + digit * max(ndigits, min_digits)`, `tuple` is `tuple_base + item * len`, and a
/// `float` has one size.
#[cfg(not(PyPy))]
struct Layout {
    int_base: usize,
    digit: usize,
    min_digits: u32,
    /// Whether `int_digits` reads this interpreter's ints right (checked against
    /// `int.__sizeof__` when the layout is measured).
    int_header: bool,
    tuple_base: usize,
    item: usize,
    float: usize,
}

#[cfg(not(PyPy))]
#[inline]
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
            let mut layout = Layout {
                int_base: one.checked_sub(digit)?,
                digit,
                min_digits: u32::from(zero == one),
                int_header: false,
                tuple_base: empty,
                item: pair.checked_sub(empty)? / 2,
                float: size(PyFloat::new(py, 0.0).into_any())?,
            };
            layout.int_header = int_header_matches(py, &layout);
            Some(layout)
        })
        .as_ref()
}

#[cfg(not(PyPy))]
impl Layout {
    fn int_size(&self, digits: usize) -> usize {
        self.int_base + self.digit * digits.max(self.min_digits as usize)
    }
}

/// The number of 30-bit digits of an exact `int`, read from its header: the word after the
/// object header is the signed digit count up to CPython 3.11 and a tag holding it above three
/// flag bits from 3.12. One load instead of a conversion (`__sizeof__` of every key and value
/// is on the insert path); `int_header_matches` checks the reading against `int.__sizeof__`
/// before it is ever used.
#[cfg(not(PyPy))]
#[allow(unsafe_code)]
#[inline]
fn int_digits(obj: &Bound<'_, PyAny>) -> usize {
    debug_assert!(obj.is_exact_instance_of::<PyInt>());
    // SAFETY: `obj` is a live exact `int` (checked by every caller), i.e. a `PyLongObject`:
    // a `PyObject` header followed by at least one pointer-sized, pointer-aligned word
    // (`ob_size` of its `PyVarObject` head up to 3.11, `long_value.lv_tag` from 3.12). The
    // read stays inside the object, and an int never changes that word after creation, so
    // no other thread can be writing it.
    let word =
        unsafe { obj.as_ptr().cast::<u8>().add(std::mem::size_of::<pyo3::ffi::PyObject>()).cast::<isize>().read() };
    if cfg!(Py_3_12) {
        (word as usize) >> 3
    } else {
        word.unsigned_abs()
    }
}

/// Whether `int_digits` gives `int.__sizeof__` for ints of every digit count and sign.
#[cfg(not(PyPy))]
fn int_header_matches(py: Python<'_>, layout: &Layout) -> bool {
    let samples = ["0", "1", "-1", "1073741823", "1073741824", "-1152921504606846976", "-(2**300)", "3**500"];
    samples.iter().all(|src| {
        let Ok(code) = std::ffi::CString::new(*src) else { return false };
        let Ok(obj) = py.eval(&code, None, None) else { return false };
        let Ok(size) = obj.call_method0(intern!(py, "__sizeof__")).and_then(|s| s.extract::<usize>()) else {
            return false;
        };
        obj.is_exact_instance_of::<PyInt>() && layout.int_size(int_digits(&obj)) == size
    })
}

/// The charge of one object: `obj.__sizeof__()`, or `cls.__sizeof__(cls)` for a class. Exact
/// `int`, `tuple` and `float` objects (keys and values of most caches) are measured without a
/// Python call; subclasses may override `__sizeof__`, so only exact types qualify.
#[cfg(not(PyPy))]
#[inline(always)]
pub fn sizeof(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    if obj.is_exact_instance_of::<PyInt>() {
        if let Some(layout) = layout(obj.py()).filter(|layout| layout.int_header) {
            return Ok(layout.int_size(int_digits(obj)));
        }
    }
    sizeof_measured(obj)
}

#[cfg(not(PyPy))]
#[inline(never)]
fn sizeof_measured(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
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

/// What an object is charged on PyPy, where no builtin type has `__sizeof__` (and
/// `sys.getsizeof` always raises): a fixed, rough figure for a small object, PyPy's own plus
/// the C-level copy it keeps while the cache holds a reference. Not a measurement.
#[cfg(PyPy)]
pub const PYPY_OBJECT_SIZE: usize = 64;

/// The charge of one object on PyPy: its `__sizeof__()` (a class's `cls.__sizeof__(cls)`)
/// where its type defines one, `PYPY_OBJECT_SIZE` where it has none.
#[cfg(PyPy)]
pub fn sizeof(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    use pyo3::exceptions::PyAttributeError;
    use pyo3::types::{PyBool, PyBytes, PyString};
    // The builtin types most keys and values are, known to have none: a failed lookup raises,
    // which costs more than the insert.
    if obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<PyFloat>()
        || obj.is_exact_instance_of::<PyTuple>()
        || obj.is_exact_instance_of::<PyBytes>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_none()
    {
        return Ok(PYPY_OBJECT_SIZE);
    }
    let py = obj.py();
    let method = match obj.getattr(intern!(py, "__sizeof__")) {
        Ok(method) => method,
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => return Ok(PYPY_OBJECT_SIZE),
        Err(e) => return Err(e),
    };
    let size = if obj.is_instance_of::<PyType>() { method.call1((obj,))? } else { method.call0()? };
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

/// A per-entry TTL given as a duration only (`cached(..., ttl=...)`): what `vttl_seconds`
/// accepts but a `datetime` deadline, with its errors.
pub fn ttl_duration(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    check_ttl(seconds(value, false)?, "ttl must be positive and non-zero")
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
