//! Direct C entry points for the hottest operations: `c[k]`, `k in c`, `c[k] = v` /
//! `del c[k]`, `c.get(k[, default])` and calls of decorated functions.
//!
//! pyo3 stamps these slots and methods too, and they are installed first; this module then
//! points the cache types' `mp_subscript`, `sq_contains` and `mp_ass_subscript` at leaner
//! functions that call the very same core methods, replaces the `get` descriptor with one
//! whose C function parses the positional forms itself (keywords, and any argument count
//! error, go to pyo3's original function), and gives `CachedFunction` a `tp_call` and a
//! vectorcall entry of its own. What they leave out, measured with callgrind on `c[k]` (a hit cost 392
//! instructions, 267 for a dict): pyo3's trampoline, its slot wrapper and argument handling,
//! about 80 instructions, two thread-local lookups among them.
//!
//! What pyo3's trampoline does and how these slots stand in for it:
//! - It asserts the thread is attached: CPython calls a type slot only from an attached
//!   thread, so `Python::assume_attached` is sound here.
//! - It counts the attachment in a thread-local, which a `Py<T>` drop reads to decide whether
//!   to decref now or to defer it to pyo3's pool. These slots do not count, so nothing they run
//!   may drop a `Py<T>`: every reference they give up goes through `Bound` (a direct decref;
//!   see `Trash`, `Entry::release`, `CacheCore::insert`), and `tests/test_impls.py` checks that
//!   removed and replaced values are freed at once.
//! - It turns a panic into `PanicException`: `catch_unwind` below does the same.
//! - It type-checks `self`: so does `cast` below (a subclass instance passes; anything else
//!   gets a `TypeError`, which CPython never lets happen for a slot of this type).

#![allow(unsafe_code)]

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyClass;

use crate::core::CacheCore;
use crate::decorators::CachedFunction;
use crate::policy::{NewMeta, Policy};

/// A cache class whose mapping slots this module serves.
pub trait FastMapping: PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync {
    type P: Policy;
    fn core_of(&self) -> &CacheCore<Self::P>;
    /// Where `install` keeps pyo3's own C function for `get` (one cell per class).
    fn pyo3_get() -> &'static OnceLock<ffi::PyCFunctionFastWithKeywords>;
}

/// Runs `body` with the interpreter token; a panic becomes `PanicException`, an error is
/// raised, and either way `failed` is returned.
///
/// # Safety
/// The calling thread must be attached to the interpreter (true inside a type slot).
#[inline(always)]
unsafe fn run<R>(failed: R, body: impl FnOnce(Python<'_>) -> PyResult<R>) -> R {
    // SAFETY: the caller guarantees the thread is attached; the token does not outlive this
    // call.
    let py = unsafe { Python::assume_attached() };
    match catch_unwind(AssertUnwindSafe(|| body(py))) {
        Ok(Ok(out)) => out,
        Ok(Err(err)) => raise(err, failed),
        Err(_) => raise(PanicException::new_err("cachebox panicked (a bug: please report it)"), failed),
    }
}

/// Raises `err`. Raising a lazily built error drops its type and value as `Py` references, so
/// it happens inside `Python::attach` (which counts the attachment: the drops decref at once).
#[cold]
#[inline(never)]
fn raise<R>(err: PyErr, failed: R) -> R {
    Python::attach(|py| err.restore(py));
    failed
}

/// `slf` as a `C`, borrowed for the slot call.
///
/// # Safety
/// `ptr` must be a live object (a slot's `self` is).
#[inline(always)]
unsafe fn this<'py, C: FastMapping>(py: Python<'py>, ptr: &'py *mut ffi::PyObject) -> PyResult<&'py C> {
    // SAFETY: the caller guarantees `ptr` is a live object, borrowed for at least `'py`.
    let slf = unsafe { Bound::ref_from_ptr(py, ptr) };
    match slf.cast::<C>() {
        Ok(slf) => Ok(slf.get()),
        Err(_) => Err(PyTypeError::new_err("descriptor requires a cachebox cache")),
    }
}

unsafe extern "C" fn subscript<C: FastMapping>(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls `mp_subscript` attached, with live `slf` and `key`.
    unsafe {
        run(std::ptr::null_mut(), |py| {
            let key = Bound::ref_from_ptr(py, &key);
            Ok(this::<C>(py, &slf)?.core_of().getitem(py, key)?.into_ptr())
        })
    }
}

unsafe extern "C" fn contains<C: FastMapping>(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython calls `sq_contains` attached, with live `slf` and `key`.
    unsafe {
        run(-1, |py| {
            let key = Bound::ref_from_ptr(py, &key);
            Ok(c_int::from(this::<C>(py, &slf)?.core_of().contains(py, key)?))
        })
    }
}

unsafe extern "C" fn ass_subscript<C: FastMapping>(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> c_int {
    // SAFETY: CPython calls `mp_ass_subscript` attached, with live `slf` and `key`, and a live
    // `value` or NULL for a deletion.
    unsafe {
        run(-1, |py| {
            let key = Bound::ref_from_ptr(py, &key);
            let core = this::<C>(py, &slf)?.core_of();
            if value.is_null() {
                core.delitem(py, key)?;
            } else {
                let value = Bound::ref_from_ptr(py, &value);
                drop(core.insert(py, key, value, NewMeta::default())?);
            }
            Ok(0)
        })
    }
}

unsafe extern "C" fn get<C: FastMapping>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if !kwnames.is_null() || !(1..=2).contains(&nargs) {
        // SAFETY: `install` stored pyo3's function for this very method before exposing this
        // one, and it takes the arguments CPython gave us unchanged.
        return unsafe { C::pyo3_get().get().expect("installed")(slf, args, nargs, kwnames) };
    }
    // SAFETY: CPython calls a METH_FASTCALL method attached, with live `slf` and `nargs` live
    // positional arguments at `args` (1 or 2, checked above).
    unsafe {
        run(std::ptr::null_mut(), |py| {
            let key = Bound::ref_from_ptr(py, &*args);
            Ok(match this::<C>(py, &slf)?.core_of().get(py, key)? {
                Some(value) => value.into_ptr(),
                None if nargs == 2 => Bound::ref_from_ptr(py, &*args.add(1)).clone().into_ptr(),
                None => py.None().into_ptr(),
            })
        })
    }
}

/// Points `C`'s mapping slots at the functions above. Called once, at module init, before any
/// subclass exists (subclasses copy the slots they inherit when they are created).
pub fn install<C: FastMapping>(py: Python<'_>) -> PyResult<()> {
    let tp = C::type_object_raw(py);
    // SAFETY: `tp` is `C`'s type object, alive for the whole interpreter. pyo3 created it from
    // a spec with `__getitem__`, `__setitem__`/`__delitem__` and `__contains__`, so
    // `tp_as_mapping` and `tp_as_sequence` point at the heap type's own method tables, which
    // nothing else reads while the module is being initialized (the GIL, or on a
    // free-threaded build the import lock, is held). `PyType_Modified` drops stale caches.
    unsafe {
        let mapping = (*tp).tp_as_mapping;
        let sequence = (*tp).tp_as_sequence;
        if mapping.is_null() || sequence.is_null() {
            return Err(PySystemError::new_err("cache type without mapping slots"));
        }
        (*mapping).mp_subscript = Some(subscript::<C>);
        (*mapping).mp_ass_subscript = Some(ass_subscript::<C>);
        (*sequence).sq_contains = Some(contains::<C>);
        ffi::PyType_Modified(tp);
    }
    install_get::<C>(py)
}

/// Replaces `C.get` with a descriptor for `get::<C>`, keeping pyo3's name, docstring and
/// signature (`__text_signature__`), and pyo3's function as the fallback.
fn install_get<C: FastMapping>(py: Python<'_>) -> PyResult<()> {
    let class = py.get_type::<C>();
    let original = class.getattr(pyo3::intern!(py, "get"))?;
    // SAFETY: `original` is the `method_descriptor` pyo3 created for `get` (checked with
    // `PyObject_TypeCheck` against `PyMethodDescr_Type` before the cast), whose `d_method`
    // points at a static `PyMethodDef` with METH_FASTCALL | METH_KEYWORDS (checked). The new
    // `PyMethodDef` is leaked: a descriptor borrows its definition for the interpreter's life.
    unsafe {
        if ffi::PyObject_TypeCheck(original.as_ptr(), std::ptr::addr_of_mut!(ffi::PyMethodDescr_Type)) == 0 {
            return Err(PySystemError::new_err("get is not a method descriptor"));
        }
        let def = *(*original.as_ptr().cast::<ffi::PyMethodDescrObject>()).d_method;
        if def.ml_flags != ffi::METH_FASTCALL | ffi::METH_KEYWORDS {
            return Err(PySystemError::new_err("get is not a fastcall method"));
        }
        let _ = C::pyo3_get().set(def.ml_meth.PyCFunctionFastWithKeywords);
        let fast = Box::leak(Box::new(ffi::PyMethodDef {
            ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: get::<C> },
            ..def
        }));
        let descriptor = Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(class.as_type_ptr(), fast))?;
        class.setattr(pyo3::intern!(py, "get"), descriptor)
    }
}

/// pyo3's own `tp_call` of `CachedFunction`, kept by `install_call` for async functions.
static PYO3_CALL: OnceLock<ffi::ternaryfunc> = OnceLock::new();

unsafe extern "C" fn call(
    slf: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls `tp_call` attached, with a live `slf`, an argument tuple and a
    // keyword dict or NULL.
    // `None`: not ours to serve (an async function); an error is raised by `run`, which then
    // returns NULL.
    let direct = unsafe {
        run(Some(std::ptr::null_mut()), |py| {
            let this = Bound::ref_from_ptr(py, &slf).cast::<CachedFunction>()?.get();
            let args = Bound::ref_from_ptr(py, &args).cast::<PyTuple>()?;
            let kwargs = if kwargs.is_null() { None } else { Some(Bound::ref_from_ptr(py, &kwargs).cast::<PyDict>()?) };
            Ok(this.call_direct(py, args, kwargs).transpose()?.map(Py::into_ptr))
        })
    };
    match direct {
        Some(out) => out,
        // SAFETY: `install_call` stored pyo3's `tp_call` before installing this one; it takes
        // the arguments CPython gave us unchanged.
        None => unsafe { PYO3_CALL.get().expect("installed")(slf, args, kwargs) },
    }
}

/// Points `CachedFunction`'s `tp_call` at `call`, keeping pyo3's for async functions.
pub fn install_call(py: Python<'_>) -> PyResult<()> {
    let tp = py.get_type::<CachedFunction>().as_type_ptr();
    // SAFETY: `tp` is `CachedFunction`'s heap type, alive for the whole interpreter, with a
    // `tp_call` from its `__call__`; the module is being initialized (the GIL, or on a
    // free-threaded build the import lock, is held), so nothing calls it meanwhile.
    unsafe {
        let Some(pyo3_call) = (*tp).tp_call else {
            return Err(PySystemError::new_err("CachedFunction has no tp_call"));
        };
        let _ = PYO3_CALL.set(pyo3_call);
        (*tp).tp_call = Some(call);
        ffi::PyType_Modified(tp);
    }
    Ok(())
}

/// `CachedFunction`'s vectorcall entry: a call with positional arguments only is served from
/// the argument array, without the tuple `tp_call` needs (`Memo::call_vector`); keywords go
/// the `tp_call` way above, with the tuple and dict built here.
///
/// # Safety
/// CPython's vectorcall convention: `callable` is live, and `args` holds
/// `PyVectorcall_NARGS(nargsf)` positional arguments followed by one value per name in
/// `kwnames` (a tuple of strings, or NULL), all borrowed for the call; `args` may be NULL
/// when there are none.
pub unsafe extern "C" fn vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the function's contract says; CPython calls vectorcall attached.
    unsafe {
        let nargs = ffi::PyVectorcall_NARGS(nargsf) as usize;
        let nkw = if kwnames.is_null() { 0 } else { ffi::PyTuple_GET_SIZE(kwnames) as usize };
        run(std::ptr::null_mut(), |py| {
            let this = Bound::ref_from_ptr(py, &callable).cast::<CachedFunction>()?;
            // `Bound<PyAny>` is a transparent wrapper of the object pointer (what
            // `Bound::ref_from_ptr` relies on too), so the argument array is a slice of them.
            let all: &[Bound<'_, PyAny>] =
                if nargs + nkw == 0 { &[] } else { std::slice::from_raw_parts(args.cast(), nargs + nkw) };
            let (positional, values) = all.split_at(nargs);
            if nkw == 0 {
                if let Some(out) = this.get().call_vector(py, positional) {
                    return Ok(out?.into_ptr());
                }
            }
            // Keywords, or an async function: the tuple and dict `tp_call` takes.
            let tuple = PyTuple::new(py, positional)?;
            let kwargs = if nkw == 0 {
                None
            } else {
                let names = Bound::ref_from_ptr(py, &kwnames).cast::<PyTuple>()?;
                let dict = PyDict::new(py);
                for (name, value) in names.iter().zip(values) {
                    dict.set_item(name, value)?;
                }
                Some(dict)
            };
            let kwargs_ptr = kwargs.as_ref().map_or(std::ptr::null_mut(), |d| d.as_ptr());
            Ok(Bound::from_owned_ptr_or_err(py, call(callable, tuple.as_ptr(), kwargs_ptr))?.into_ptr())
        })
    }
}

/// Gives `CachedFunction` the vectorcall protocol: its `tp_vectorcall_offset` points at each
/// object's `vectorcall` field.
pub fn install_vectorcall(py: Python<'_>) -> PyResult<()> {
    // Measured now, so that no call ever runs Python code to find out.
    let _ = crate::convert::tuple_hash_matches(py);
    let offset = CachedFunction::vectorcall_offset(py)?;
    let tp = py.get_type::<CachedFunction>().as_type_ptr();
    // SAFETY: `tp` is `CachedFunction`'s heap type, alive for the whole interpreter; the
    // module is being initialized, so nothing calls it meanwhile. `offset` is where every
    // instance (the class is final) keeps a nullable `vectorcallfunc`, inside the object.
    unsafe {
        let inside = offset + std::mem::size_of::<ffi::vectorcallfunc>() <= (*tp).tp_basicsize as usize;
        if !inside || offset % std::mem::align_of::<ffi::vectorcallfunc>() != 0 {
            return Err(PySystemError::new_err("CachedFunction's vectorcall field is misplaced"));
        }
        (*tp).tp_vectorcall_offset = offset as ffi::Py_ssize_t;
        #[cfg(not(Py_GIL_DISABLED))]
        {
            (*tp).tp_flags |= ffi::Py_TPFLAGS_HAVE_VECTORCALL;
        }
        // Free-threaded builds keep the flags in an atomic word.
        #[cfg(Py_GIL_DISABLED)]
        (*tp).tp_flags.fetch_or(ffi::Py_TPFLAGS_HAVE_VECTORCALL, std::sync::atomic::Ordering::Relaxed);
        ffi::PyType_Modified(tp);
    }
    Ok(())
}
