//! Direct C entry points for the hottest cache operations: `c[k]`, `k in c`, `c[k] = v` /
//! `del c[k]` and `c.get(k[, default])`.
//!
//! `install` points the cache types' `mp_subscript`, `sq_contains` and `mp_ass_subscript` at
//! the functions below, and replaces the `get` descriptor with one whose C function parses
//! the positional forms itself (keywords, and any argument count error, go to pyo3's original
//! function). Each runs its body in `direct_slot::run` (see there for what that must obey).
//!
//! On PyPy the entry points are not compiled and `install` leaves pyo3's slots in place (see
//! `lib.rs`).

#![allow(unsafe_code)]

#[cfg(not(PyPy))]
use std::ffi::c_int;
use std::sync::OnceLock;

#[cfg(not(PyPy))]
use pyo3::exceptions::{PySystemError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::core::NativeClass;
#[cfg(not(PyPy))]
use crate::direct_slot::run;
#[cfg(not(PyPy))]
use crate::policy::NewMeta;

/// A cache class whose mapping slots this module serves (every class implements it; on PyPy
/// nothing calls it).
#[cfg_attr(PyPy, allow(dead_code))]
pub trait FastMapping: NativeClass {
    /// Where `install` keeps pyo3's own C function for `get` (one cell per class).
    fn pyo3_get() -> &'static OnceLock<ffi::PyCFunctionFastWithKeywords>;
}

/// `slf` as a `C`, borrowed for the slot call.
///
/// # Safety
/// `ptr` must be a live object (a slot's `self` is).
#[cfg(not(PyPy))]
#[inline(always)]
unsafe fn this<'py, C: FastMapping>(py: Python<'py>, ptr: &'py *mut ffi::PyObject) -> PyResult<&'py C> {
    // SAFETY: the caller guarantees `ptr` is a live object, borrowed for at least `'py`.
    let slf = unsafe { Bound::ref_from_ptr(py, ptr) };
    match slf.cast::<C>() {
        Ok(slf) => Ok(slf.get()),
        Err(_) => Err(PyTypeError::new_err("descriptor requires a cachebox cache")),
    }
}

#[cfg(not(PyPy))]
unsafe extern "C" fn subscript<C: FastMapping>(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls `mp_subscript` attached, with live `slf` and `key`.
    unsafe {
        run(std::ptr::null_mut(), |py| {
            let key = Bound::ref_from_ptr(py, &key);
            Ok(this::<C>(py, &slf)?.core_of().getitem(py, key)?.into_ptr())
        })
    }
}

#[cfg(not(PyPy))]
unsafe extern "C" fn contains<C: FastMapping>(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> c_int {
    // SAFETY: CPython calls `sq_contains` attached, with live `slf` and `key`.
    unsafe {
        run(-1, |py| {
            let key = Bound::ref_from_ptr(py, &key);
            Ok(c_int::from(this::<C>(py, &slf)?.core_of().contains(py, key)?))
        })
    }
}

#[cfg(not(PyPy))]
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

#[cfg(not(PyPy))]
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
#[cfg(not(PyPy))]
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

/// PyPy: pyo3's slots stay.
#[cfg(PyPy)]
pub fn install<C: FastMapping>(_py: Python<'_>) -> PyResult<()> {
    Ok(())
}

/// Replaces `C.get` with a descriptor for `get::<C>`, keeping pyo3's name, docstring and
/// signature (`__text_signature__`), and pyo3's function as the fallback.
#[cfg(not(PyPy))]
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
