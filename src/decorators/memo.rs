//! `Memo`: everything a decorated function does per call, for `cached` and `cachedmethod`,
//! sync and async (BEHAVIOUR.md §13). The pyclasses in `wrappers.rs` only hold one behind an `Arc`.
//!
//! The user function never runs under a lock: a call locks the cache for the lookup, unlocks,
//! and only then (on a miss) runs the function, as CPython's `lru_cache` does. Concurrent
//! misses of one key meet in `PendingMap` (stampede protection).

use std::sync::Arc;

use pyo3::exceptions::{PyAttributeError, PyException, PyKeyError, PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PySet, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

use super::keys::{make_key, make_typed_key, FastTypes};
use super::pending::{Leader, Outcome, Pending, PendingMap, Role};
use crate::classes::NativeCache;
use crate::convert::{hash_key, items_hash, tuple_hash_matches};
use crate::entry::fold_hash;
use crate::store::ItemsLookup;
use crate::sync::{thread_id, Counter};

pub const EVENT_MISS: u8 = 1;
pub const EVENT_HIT: u8 = 2;

/// The name of the keyword that bypasses the cache for one call.
const IGNORE_KWARG: &str = "cachebox__ignore";

pub enum KeyMaker {
    /// `make_key`, done natively.
    Default,
    /// `make_typed_key`, done natively.
    Typed,
    /// `make_hash_key`, done natively.
    Hashed,
    /// Any other callable, called as `key_maker(args, kwds)`.
    Custom(Py<PyAny>),
}

/// Where the cache comes from.
pub enum Source {
    /// One cache for every call; `native` when it is an exact cachebox class.
    Fixed { cache: Py<PyAny>, native: Option<NativeCache> },
    /// `cache(args[0])` on every call (`cached(lambda self: self._cache)`).
    Factory(Py<PyAny>),
}

#[derive(Clone, Copy)]
pub enum CopyLevel {
    Never,
    Containers,
    Always,
}

pub struct Memo {
    /// Set at construction when the common case applies (a native cache, the default key
    /// maker, `self` in the key): calls without keywords then take `call_fast`.
    pub fast: Option<NativeCache>,
    pub func: Py<PyAny>,
    pub source: Source,
    pub key_maker: KeyMaker,
    /// `cachedmethod`: `self` (args[0]) is not part of the key. Also set in factory mode.
    pub skip_self: bool,
    pub copy_level: CopyLevel,
    pub callback: Option<Py<PyAny>>,
    pub clear_reuse: bool,
    pub hits: Counter,
    pub misses: Counter,
    pub pending: PendingMap,
}

/// The cache one call works with.
enum Target<'a, 'py> {
    Native(&'a NativeCache),
    Python(Bound<'py, PyAny>),
}

/// A cache resolved for one call; owns the handle in factory mode.
pub struct Resolved<'py> {
    obj: Bound<'py, PyAny>,
    native: Option<NativeCache>,
}

impl Target<'_, '_> {
    fn lookup(&self, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>> {
        let py = key.py();
        match self {
            Target::Native(cache) => cache.lookup(py, key, hash),
            // Only `KeyError` counts as a miss; other lookup errors propagate.
            Target::Python(cache) => match cache.get_item(key) {
                Ok(v) => Ok(Some(v.unbind())),
                Err(e) if e.is_instance_of::<PyKeyError>(py) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    fn store(&self, key: &Bound<'_, PyAny>, hash: u32, value: &Bound<'_, PyAny>) -> PyResult<()> {
        match self {
            Target::Native(cache) => cache.store(key.py(), key, hash, value),
            Target::Python(cache) => cache.set_item(key, value),
        }
    }
}

/// A call's arguments, as the caller gave them.
#[derive(Clone, Copy)]
pub struct CallArgs<'a, 'py> {
    pub args: &'a Bound<'py, PyTuple>,
    pub kwargs: Option<&'a Bound<'py, PyDict>>,
}

/// What a sync call or an async step ends with.
pub struct Done {
    event: u8,
    value: Py<PyAny>,
}

/// The `copy` module's `copy`, looked up once.
fn copy_function(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static COPY: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    COPY.get_or_try_init(py, || Ok::<_, PyErr>(py.import("copy")?.getattr("copy")?.unbind())).map(|f| f.bind(py))
}

impl Memo {
    /// The positional arguments that make the key (without `self` for methods and factories).
    fn key_args<'py>(&self, args: &Bound<'py, PyTuple>) -> Bound<'py, PyTuple> {
        if self.skip_self && !args.is_empty() {
            args.get_slice(1, args.len())
        } else {
            args.clone()
        }
    }

    fn make_key<'py>(
        &self,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = args.py();
        match &self.key_maker {
            KeyMaker::Default => make_key(args, kwargs, FastTypes::IntStr),
            KeyMaker::Typed => make_typed_key(args, kwargs),
            KeyMaker::Hashed => make_key(args, kwargs, FastTypes::IntStr)?.hash()?.into_bound_py_any(py),
            KeyMaker::Custom(f) => {
                let kwds = match kwargs {
                    Some(k) => k.clone(),
                    None => PyDict::new(py),
                };
                f.bind(py).call1((args, kwds))
            }
        }
    }

    /// Resolves the cache for a call (factory mode calls `cache(args[0])`).
    pub fn resolve<'py>(&self, args: &Bound<'py, PyTuple>) -> PyResult<Resolved<'py>> {
        let py = args.py();
        match &self.source {
            Source::Fixed { cache, .. } => Ok(Resolved { obj: cache.bind(py).clone(), native: None }),
            Source::Factory(factory) => {
                // IndexError without a positional argument, as `args[0]` would raise.
                let first = args.as_any().get_item(0)?;
                let obj = factory.bind(py).call1((first,))?;
                let native = NativeCache::of(&obj);
                Ok(Resolved { obj, native })
            }
        }
    }

    /// The cache a call works with: the fixed native cache, else the one resolved for the
    /// call (`native` when it is an exact cachebox class, else the object `obj`).
    fn target<'a, 'py>(&'a self, native: &'a Option<NativeCache>, obj: Bound<'py, PyAny>) -> Target<'a, 'py> {
        if let Source::Fixed { native: Some(native), .. } = &self.source {
            return Target::Native(native);
        }
        match native {
            Some(native) => Target::Native(native),
            None => Target::Python(obj),
        }
    }

    /// Removes `cachebox__ignore` from the keywords; `Some(kwargs)` when it was truthy.
    pub fn split_ignore<'py>(kwargs: Option<&Bound<'py, PyDict>>) -> PyResult<(bool, Option<Bound<'py, PyDict>>)> {
        let Some(kwargs) = kwargs.filter(|k| !k.is_empty()) else { return Ok((false, None)) };
        let py = kwargs.py();
        match kwargs.get_item(intern!(py, IGNORE_KWARG))? {
            None => Ok((false, Some(kwargs.clone()))),
            Some(flag) => {
                let rest = kwargs.copy()?;
                rest.del_item(intern!(py, IGNORE_KWARG))?;
                let rest = (!rest.is_empty()).then_some(rest);
                Ok((flag.is_truthy()?, rest))
            }
        }
    }

    /// The result handed to the caller, copied as `copy_level` says. The cache (and the
    /// callback) keep the original object.
    /// The original is released through `Bound` when a copy replaces it (see `Trash`).
    #[inline(always)]
    pub fn copy_out(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let needs_copy = match self.copy_level {
            CopyLevel::Never => false,
            CopyLevel::Always => true,
            CopyLevel::Containers => {
                let v = value.bind(py);
                v.is_exact_instance_of::<PyDict>()
                    || v.is_exact_instance_of::<PyList>()
                    || v.is_exact_instance_of::<PySet>()
            }
        };
        if needs_copy {
            self.copied(py, value)
        } else {
            Ok(value)
        }
    }

    /// A copy of `value` (which `copy_out` found needs one), as `copy_level` says.
    #[inline(never)]
    fn copied(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let v = value.into_bound(py);
        match self.copy_level {
            CopyLevel::Never => Ok(v.unbind()),
            CopyLevel::Always => Ok(copy_function(py)?.call1((&v,))?.unbind()),
            CopyLevel::Containers => {
                if let Ok(l) = v.cast_exact::<PyList>() {
                    return Ok(l.get_slice(0, l.len()).into_any().unbind());
                }
                // `dict.copy()` and `set.copy()`: shallow copies of the exact types.
                Ok(v.call_method0(intern!(py, "copy"))?.unbind())
            }
        }
    }

    #[inline]
    fn count(&self, event: u8) {
        let counter = if event == EVENT_HIT { &self.hits } else { &self.misses };
        counter.bump();
    }

    /// Calls the callback, if any; returns what it returned.
    #[inline]
    fn notify<'py>(
        &self,
        py: Python<'py>,
        done: &Done,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.callback {
            None => Ok(None),
            Some(cb) => cb.bind(py).call1((done.event, key, done.value.bind(py))).map(Some),
        }
    }

    /// The last step of every sync call: counts the event, runs the callback, copies the
    /// value out. The callback needs the key, so a path without one (`None`) is taken only
    /// when there is no callback.
    #[inline(always)]
    fn deliver(&self, py: Python<'_>, done: Done, key: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        self.count(done.event);
        if self.callback.is_some() {
            let key = key.ok_or_else(|| PyRuntimeError::new_err("cached call lost its key"))?;
            self.notify(py, &done, key)?;
        }
        self.copy_out(py, done.value)
    }

    // ---- sync ----

    /// One call of a decorated sync function.
    #[inline]
    pub fn call(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        match (&self.fast, call.kwargs) {
            (Some(cache), None) => self.call_fast(py, cache, call.args),
            _ => self.call_general(py, call),
        }
    }

    /// `call` for the direct `tp_call` (`call_slots`), which runs without pyo3's attach count:
    /// a plain hit (no callback) is served here, where nothing drops a `Py`; everything else
    /// runs inside `Python::attach`, so that the references a miss gives up are released at
    /// once rather than deferred.
    pub fn call_direct(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        if let (Some(cache), None, None) = (&self.fast, call.kwargs, &self.callback) {
            let key = make_key(call.args, None, FastTypes::IntStr)?;
            let hash = hash_key(&key)?;
            if let Some(value) = cache.lookup(py, &key, hash)? {
                return self.deliver(py, Done { event: EVENT_HIT, value }, None);
            }
            return Python::attach(|py| {
                let done = self.miss(py, &Target::Native(cache), call, &key, hash)?;
                self.deliver(py, done, Some(&key))
            });
        }
        Python::attach(|py| self.call(py, call))
    }

    /// A call with positional arguments only, through vectorcall (`call_slots`), which runs
    /// without pyo3's attach count as `call_direct` does. The key, the argument tuple or its
    /// only item when that is an exact `int` or `str`, is looked up without building the
    /// tuple: its hash is computed from the items, and stored tuples are compared item by
    /// item. The tuple is built only to call the function on a miss.
    pub fn call_vector(&self, py: Python<'_>, args: &[Bound<'_, PyAny>]) -> PyResult<Py<PyAny>> {
        let (Some(cache), None) = (&self.fast, &self.callback) else {
            let tuple = PyTuple::new(py, args)?;
            return Python::attach(|py| self.call(py, CallArgs { args: &tuple, kwargs: None }));
        };
        let (found, hash) = match args {
            [only] if only.is_exact_instance_of::<PyInt>() || only.is_exact_instance_of::<PyString>() => {
                let hash = hash_key(only)?;
                (cache.lookup(py, only, hash)?.into(), hash)
            }
            _ if tuple_hash_matches(py) => {
                let hash = fold_hash(items_hash(args)?);
                (cache.lookup_items(py, args, hash)?, hash)
            }
            _ => (ItemsLookup::Undecided, 0),
        };
        match found {
            ItemsLookup::Found(value) => self.deliver(py, Done { event: EVENT_HIT, value }, None),
            ItemsLookup::Absent => {
                let tuple = PyTuple::new(py, args)?;
                let key = make_key(&tuple, None, FastTypes::IntStr)?;
                Python::attach(|py| {
                    let call = CallArgs { args: &tuple, kwargs: None };
                    let done = self.miss(py, &Target::Native(cache), call, &key, hash)?;
                    self.deliver(py, done, Some(&key))
                })
            }
            ItemsLookup::Undecided => {
                let tuple = PyTuple::new(py, args)?;
                Python::attach(|py| self.call_fast(py, cache, &tuple))
            }
        }
    }

    /// The common case, like CPython's `lru_cache`: the key is the argument tuple itself, or
    /// its only item when that is an exact `int` or `str`.
    #[inline]
    fn call_fast(&self, py: Python<'_>, cache: &NativeCache, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let key = make_key(args, None, FastTypes::IntStr)?;
        let hash = hash_key(&key)?;
        let done = match cache.lookup(py, &key, hash)? {
            Some(value) => Done { event: EVENT_HIT, value },
            None => self.miss(py, &Target::Native(cache), CallArgs { args, kwargs: None }, &key, hash)?,
        };
        self.deliver(py, done, Some(&key))
    }

    fn call_general(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        let (ignore, kwargs) = Self::split_ignore(call.kwargs)?;
        let call = CallArgs { args: call.args, kwargs: kwargs.as_ref() };
        if ignore {
            return Ok(self.func.bind(py).call(call.args, call.kwargs)?.unbind());
        }
        let resolved = self.resolve(call.args)?;
        let target = self.target(&resolved.native, resolved.obj.clone());
        let key = self.make_key(&self.key_args(call.args), call.kwargs)?;
        let hash = hash_key(&key)?;
        let done = match target.lookup(&key, hash)? {
            Some(value) => Done { event: EVENT_HIT, value },
            None => self.miss(py, &target, call, &key, hash)?,
        };
        self.deliver(py, done, Some(&key))
    }

    /// The miss path: lead the computation for `key`, or wait for the leader's outcome.
    fn miss(
        &self,
        py: Python<'_>,
        target: &Target<'_, '_>,
        call: CallArgs<'_, '_>,
        key: &Bound<'_, PyAny>,
        hash: u32,
    ) -> PyResult<Done> {
        loop {
            match self.pending.join(py, key, hash, Leader::Thread(thread_id()))? {
                Role::Lead(pending) => {
                    let mut lead = Lead::new(&self.pending, pending);
                    let result = (|| {
                        // Another leader may have stored the value just before we joined.
                        if let Some(value) = target.lookup(key, hash)? {
                            return Ok(Done { event: EVENT_HIT, value });
                        }
                        let value = self.func.bind(py).call(call.args, call.kwargs)?;
                        target.store(key, hash, &value)?;
                        Ok(Done { event: EVENT_MISS, value: value.unbind() })
                    })();
                    return lead.settle(py, result);
                }
                Role::Follow(pending) => {
                    pending.wait(py)?;
                    match pending.outcome(py) {
                        Some(Ok(value)) => return Ok(Done { event: EVENT_HIT, value }),
                        Some(Err(Some(error))) => return Err(error),
                        // Abandoned (or never finished): look again, maybe lead this time.
                        _ => {
                            if let Some(value) = target.lookup(key, hash)? {
                                return Ok(Done { event: EVENT_HIT, value });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A leader's obligation to finish its pending call, even on an early return, a panic, or
/// (async) an awaitable dropped half-way.
struct Lead<'a> {
    map: &'a PendingMap,
    pending: Option<Arc<Pending>>,
}

impl<'a> Lead<'a> {
    fn new(map: &'a PendingMap, pending: Arc<Pending>) -> Self {
        Self { map, pending: Some(pending) }
    }

    /// Publishes the outcome: the value, an `Exception` to share, or "abandoned" for a
    /// `BaseException` (followers then retry).
    fn settle(&mut self, py: Python<'_>, result: PyResult<Done>) -> PyResult<Done> {
        let Some(pending) = self.pending.take() else { return result };
        let outcome = || match &result {
            Ok(done) => Outcome::Value(done.value.clone_ref(py)),
            Err(e) if e.is_instance_of::<PyException>(py) => Outcome::Error(e.value(py).clone().unbind()),
            Err(_) => Outcome::Abandoned,
        };
        self.map.finish(py, &pending, outcome)?;
        result
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            Python::attach(|py| {
                let _ = self.map.finish(py, &pending, || Outcome::Abandoned);
            });
        }
    }
}

// ---- async ----

/// Where an async call is.
enum Stage {
    /// Not started: nothing looked up yet (a call that is never awaited does nothing).
    Start,
    /// `cachebox__ignore`: just forwarding to the user's coroutine.
    Bypass(Py<PyAny>),
    /// This call computes the value: forwarding to the user's coroutine.
    Leading {
        lead: Option<Arc<Pending>>,
        coro: Py<PyAny>,
    },
    /// Another call computes it: awaiting a future resolved when it finishes.
    Following {
        pending: Arc<Pending>,
        waiter: Py<PyAny>,
    },
    /// Awaiting an async callback; then returns `result`.
    Callback {
        inner: Py<PyAny>,
        result: Py<PyAny>,
    },
    Finished,
}

/// One call of a decorated coroutine function: a native awaitable (BEHAVIOUR.md §13.10).
pub struct AsyncCall {
    memo: Arc<Memo>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    stage: Stage,
    /// Resolved at the first step: the cache handle (factory mode), key and hash.
    key: Option<(Py<PyAny>, u32, Option<Py<PyAny>>)>,
}

/// What the awaitable's driver sent in.
pub enum Input {
    Send(Py<PyAny>),
    Throw(PyErr),
}

pub enum Step {
    Yield(Py<PyAny>),
    Return(Py<PyAny>),
}

/// Sends `input` into a coroutine or iterator-like awaitable and classifies the result.
fn forward(py: Python<'_>, inner: &Bound<'_, PyAny>, input: Input) -> PyResult<Step> {
    let result = match input {
        Input::Send(v) => inner.call_method1(intern!(py, "send"), (v,)),
        Input::Throw(e) => inner.call_method1(intern!(py, "throw"), (e.value(py),)),
    };
    match result {
        Ok(y) => Ok(Step::Yield(y.unbind())),
        Err(e) if e.is_instance_of::<PyStopIteration>(py) => {
            Ok(Step::Return(e.value(py).getattr(intern!(py, "value"))?.unbind()))
        }
        Err(e) => Err(e),
    }
}

fn current_task_id(py: Python<'_>) -> PyResult<Leader> {
    let task = py.import(intern!(py, "asyncio"))?.call_method0(intern!(py, "current_task"))?;
    Ok(if task.is_none() { Leader::Thread(thread_id()) } else { Leader::Task(task.as_ptr() as usize) })
}

impl AsyncCall {
    pub fn new(memo: Arc<Memo>, args: Py<PyTuple>, kwargs: Option<Py<PyDict>>) -> Self {
        Self { memo, args, kwargs, stage: Stage::Start, key: None }
    }

    /// Advances the state machine by one driver action.
    pub fn step(&mut self, py: Python<'_>, mut input: Input) -> PyResult<Step> {
        loop {
            match std::mem::replace(&mut self.stage, Stage::Finished) {
                Stage::Finished => {
                    return match input {
                        Input::Throw(e) => Err(e),
                        Input::Send(_) => Err(PyRuntimeError::new_err("cannot reuse already awaited cached call")),
                    };
                }
                Stage::Start => {
                    if let Input::Throw(e) = input {
                        return Err(e);
                    }
                    if let Some(done) = self.start(py)? {
                        return self.deliver(py, done);
                    }
                    input = Input::Send(py.None());
                }
                Stage::Bypass(coro) => {
                    let step = forward(py, coro.bind(py), input)?;
                    if let Step::Yield(_) = step {
                        self.stage = Stage::Bypass(coro);
                    }
                    return Ok(step);
                }
                Stage::Leading { lead, coro } => {
                    let mut guard = Lead { map: &self.memo.pending, pending: lead };
                    let result = match forward(py, coro.bind(py), input) {
                        Ok(Step::Yield(y)) => {
                            self.stage = Stage::Leading { lead: guard.pending.take(), coro };
                            return Ok(Step::Yield(y));
                        }
                        Ok(Step::Return(value)) => self.store(py, value),
                        Err(e) => Err(e),
                    };
                    let done = guard.settle(py, result);
                    drop(guard);
                    return self.deliver(py, done?);
                }
                Stage::Following { pending, waiter } => match forward(py, waiter.bind(py), input)? {
                    Step::Yield(y) => {
                        self.stage = Stage::Following { pending, waiter };
                        return Ok(Step::Yield(y));
                    }
                    Step::Return(_) => match pending.outcome(py) {
                        Some(Ok(value)) => return self.deliver(py, Done { event: EVENT_HIT, value }),
                        Some(Err(Some(error))) => return Err(error),
                        // The leader gave up (cancelled): start over, maybe leading now.
                        _ => {
                            self.stage = Stage::Start;
                            input = Input::Send(py.None());
                        }
                    },
                },
                Stage::Callback { inner, result } => {
                    return match forward(py, inner.bind(py), input)? {
                        Step::Yield(y) => {
                            self.stage = Stage::Callback { inner, result };
                            Ok(Step::Yield(y))
                        }
                        Step::Return(_) => Ok(Step::Return(self.memo.copy_out(py, result)?)),
                    };
                }
            }
        }
    }

    fn target<'a, 'py>(&'a self, py: Python<'py>, native: &'a Option<NativeCache>) -> Target<'a, 'py> {
        let obj = match (&self.memo.source, &self.key) {
            (Source::Fixed { cache, .. }, _) => cache.bind(py).clone(),
            (Source::Factory(_), Some((_, _, Some(obj)))) => obj.bind(py).clone(),
            _ => py.None().into_bound(py),
        };
        self.memo.target(native, obj)
    }

    /// The first step: look up, then lead or follow. `Some` when the answer is already known.
    fn start(&mut self, py: Python<'_>) -> PyResult<Option<Done>> {
        let args = self.args.bind(py).clone();
        let (ignore, kwargs) = Memo::split_ignore(self.kwargs.as_ref().map(|k| k.bind(py)))?;
        if ignore {
            let coro = self.memo.func.bind(py).call(&args, kwargs.as_ref())?;
            self.stage = Stage::Bypass(coro.unbind());
            return Ok(None);
        }
        self.kwargs = kwargs.map(Bound::unbind);
        let (key, hash, native, cache_obj) = match &self.key {
            Some((key, hash, obj)) => {
                let native = obj.as_ref().and_then(|o| NativeCache::of(o.bind(py)));
                (key.bind(py).clone(), *hash, native, obj.as_ref().map(|o| o.clone_ref(py)))
            }
            None => {
                let resolved = self.memo.resolve(&args)?;
                let key = self.memo.make_key(&self.memo.key_args(&args), self.kwargs.as_ref().map(|k| k.bind(py)))?;
                let hash = hash_key(&key)?;
                let obj = matches!(self.memo.source, Source::Factory(_)).then(|| resolved.obj.clone().unbind());
                (key, hash, resolved.native, obj)
            }
        };
        self.key = Some((key.clone().unbind(), hash, cache_obj));
        let target = self.target(py, &native);
        if let Some(value) = target.lookup(&key, hash)? {
            return Ok(Some(Done { event: EVENT_HIT, value }));
        }
        match self.memo.pending.join(py, &key, hash, current_task_id(py)?)? {
            Role::Lead(pending) => {
                let mut guard = Lead::new(&self.memo.pending, pending);
                if let Some(value) = target.lookup(&key, hash)? {
                    return guard.settle(py, Ok(Done { event: EVENT_HIT, value })).map(Some);
                }
                let kwargs = self.kwargs.as_ref().map(|k| k.bind(py).clone());
                match self.memo.func.bind(py).call(&args, kwargs.as_ref()) {
                    Ok(coro) => {
                        self.stage = Stage::Leading { lead: guard.pending.take(), coro: coro.unbind() };
                        Ok(None)
                    }
                    Err(e) => guard.settle(py, Err(e)).map(Some),
                }
            }
            Role::Follow(pending) => {
                let asyncio = py.import(intern!(py, "asyncio"))?;
                let future = asyncio
                    .call_method0(intern!(py, "get_running_loop"))?
                    .call_method0(intern!(py, "create_future"))?;
                if pending.add_waker(future.clone().unbind()) {
                    let waiter = future.call_method0(intern!(py, "__await__"))?;
                    self.stage = Stage::Following { pending, waiter: waiter.unbind() };
                    return Ok(None);
                }
                // Finished in the meantime.
                match pending.outcome(py) {
                    Some(Ok(value)) => Ok(Some(Done { event: EVENT_HIT, value })),
                    Some(Err(Some(error))) => Err(error),
                    _ => {
                        self.stage = Stage::Start;
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Stores the leader's value.
    fn store(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Done> {
        let Some((key, hash, obj)) = &self.key else {
            return Err(PyRuntimeError::new_err("cached call lost its key"));
        };
        let native = obj.as_ref().and_then(|o| NativeCache::of(o.bind(py)));
        self.target(py, &native).store(key.bind(py), *hash, value.bind(py))?;
        Ok(Done { event: EVENT_MISS, value })
    }

    /// Counts, runs the callback (awaiting it if it returns an awaitable), returns the value.
    fn deliver(&mut self, py: Python<'_>, done: Done) -> PyResult<Step> {
        self.memo.count(done.event);
        let key = match &self.key {
            Some((key, _, _)) => key.bind(py).clone(),
            None => py.None().into_bound(py),
        };
        if let Some(ret) = self.memo.notify(py, &done, &key)? {
            if ret.hasattr(intern!(py, "__await__"))? {
                let inner = ret.call_method0(intern!(py, "__await__"))?;
                self.stage = Stage::Callback { inner: inner.unbind(), result: done.value };
                return self.step(py, Input::Send(py.None()));
            }
        }
        Ok(Step::Return(self.memo.copy_out(py, done.value)?))
    }

    /// `close()`: stops the user's coroutine (if leading) and abandons the call.
    pub fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        match std::mem::replace(&mut self.stage, Stage::Finished) {
            Stage::Leading { lead, coro } => {
                let _guard = Lead { map: &self.memo.pending, pending: lead };
                coro.bind(py).call_method0(intern!(py, "close"))?;
            }
            Stage::Bypass(coro) => {
                coro.bind(py).call_method0(intern!(py, "close"))?;
            }
            _ => {}
        }
        Ok(())
    }

    pub fn visit(&self, visit: &pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.args)?;
        visit.call(&self.kwargs)?;
        match &self.stage {
            Stage::Bypass(c) | Stage::Leading { coro: c, .. } => visit.call(c)?,
            Stage::Following { waiter, .. } => visit.call(waiter)?,
            Stage::Callback { inner, result } => {
                visit.call(inner)?;
                visit.call(result)?;
            }
            Stage::Start | Stage::Finished => {}
        }
        Ok(())
    }
}

impl Drop for AsyncCall {
    fn drop(&mut self) {
        if let Stage::Leading { lead, .. } = std::mem::replace(&mut self.stage, Stage::Finished) {
            drop(Lead { map: &self.memo.pending, pending: lead });
        }
    }
}

/// `AttributeError` for the cache attributes of factory-mode wrappers.
pub fn no_cache_attribute(name: &str) -> PyErr {
    PyAttributeError::new_err(format!("'{name}' is not available: this function's cache comes from a factory"))
}
