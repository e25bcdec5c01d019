//! Direct C entry points for calls of decorated functions: a `tp_call` and a vectorcall entry
//! for `CachedFunction`, each running its body in `direct_slot::run` (see there for what that
//! must obey).

#![allow(unsafe_code)]

use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::memo::{CallArgs, Memo, Source};
use super::CachedFunction;
use crate::core::{ClassVisitor, NativeClass};
use crate::direct_slot::run;

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
            Ok(this.call_direct(py, CallArgs { args, kwargs }).transpose()?.map(Py::into_ptr))
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
fn install_call(py: Python<'_>) -> PyResult<()> {
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

/// `vectorcall` for a wrapper whose fixed cache is a `C` (and which takes `ItemsKey`'s path: the
/// default key maker, no callback): a call with positional arguments only goes straight to
/// `C`'s store, without the virtual call through the cache trait.
///
/// # Safety
/// As `vectorcall`.
unsafe extern "C" fn vectorcall_on<C: NativeClass>(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as the function's contract says; CPython calls vectorcall attached.
    unsafe {
        if !kwnames.is_null() && ffi::PyTuple_GET_SIZE(kwnames) > 0 {
            return vectorcall(callable, args, nargsf, kwnames);
        }
        let nargs = ffi::PyVectorcall_NARGS(nargsf) as usize;
        run(std::ptr::null_mut(), |py| {
            let this = Bound::ref_from_ptr(py, &callable).cast::<CachedFunction>()?.get();
            // As in `vectorcall`: the argument array is a slice of `Bound`s.
            let positional: &[Bound<'_, PyAny>] =
                if nargs == 0 { &[] } else { std::slice::from_raw_parts(args.cast(), nargs) };
            let memo = this.memo();
            Ok(memo.call_items_on(py, memo.fixed_as::<C>(py)?, positional)?.into_ptr())
        })
    }
}

/// The `vectorcall_on` entry of each native class, by the class's type object.
static ON_CLASS: OnceLock<Vec<(usize, ffi::vectorcallfunc)>> = OnceLock::new();

/// Collects `vectorcall_on` for every native class (module init, over the class table).
pub struct NativeVectorcalls<'py> {
    py: Python<'py>,
    entries: Vec<(usize, ffi::vectorcallfunc)>,
}

impl<'py> NativeVectorcalls<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Self { py, entries: Vec::new() }
    }

    pub fn install(self) {
        let _ = ON_CLASS.set(self.entries);
    }
}

impl ClassVisitor for NativeVectorcalls<'_> {
    fn visit<C: NativeClass>(&mut self) {
        let ty = self.py.get_type::<C>().as_type_ptr() as usize;
        self.entries.push((ty, vectorcall_on::<C>));
    }
}

/// The vectorcall entry of a new sync wrapper: `vectorcall_on` its fixed cache's class where
/// its calls take `ItemsKey`'s path, else `vectorcall`.
pub fn entry_for(py: Python<'_>, memo: &Memo) -> ffi::vectorcallfunc {
    if let (true, None, Source::Fixed { cache, native: Some(_) }) = (memo.fast, &memo.callback, &memo.source) {
        let ty = cache.bind(py).get_type().as_type_ptr() as usize;
        if let Some((_, entry)) = ON_CLASS.get().and_then(|all| all.iter().find(|(t, _)| *t == ty)) {
            return *entry;
        }
    }
    vectorcall
}

/// Gives `CachedFunction` the vectorcall protocol: its `tp_vectorcall_offset` points at each
/// object's `vectorcall` field.
fn install_vectorcall(py: Python<'_>) -> PyResult<()> {
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
        // A method descriptor too: `obj.method(x)` then calls the wrapper with `obj` first,
        // as `__get__` then a call would, without building the bound object each time.
        let flags = ffi::Py_TPFLAGS_HAVE_VECTORCALL | ffi::Py_TPFLAGS_METHOD_DESCRIPTOR;
        #[cfg(not(Py_GIL_DISABLED))]
        {
            (*tp).tp_flags |= flags;
        }
        // Free-threaded builds keep the flags in an atomic word.
        #[cfg(Py_GIL_DISABLED)]
        (*tp).tp_flags.fetch_or(flags, std::sync::atomic::Ordering::Relaxed);
        ffi::PyType_Modified(tp);
    }
    Ok(())
}

/// Installs both entry points on `CachedFunction` (module init).
pub fn install(py: Python<'_>) -> PyResult<()> {
    install_call(py)?;
    install_vectorcall(py)
}
