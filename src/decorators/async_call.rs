//! `AsyncCall`: one call of a decorated coroutine function, a native awaitable driven by
//! `CachedCall` (BEHAVIOUR.md §13.10). It runs the steps of the sync pipeline (`memo.rs`) as a
//! state machine: the key and the lookup, then leading (awaiting the user's coroutine, then
//! storing) or following (awaiting a future the leader resolves), then `Memo::report`.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::memo::{Done, Lead, Memo};
use super::pending::{Leader, Pending, Role};
use crate::convert::hash_key;
use crate::sync::thread_id;

/// Where an async call is.
enum Stage {
    /// Not started: nothing looked up yet (a call that is never awaited does nothing).
    Start,
    /// `cachebox__ignore`: just forwarding to the user's coroutine.
    Bypass(Py<PyAny>),
    /// This call computes the value: forwarding to the user's coroutine, or with `l2=` to the
    /// tier's (`epoch`: the first tier's when it started, see `Tier::loaded`).
    Leading {
        lead: Option<Arc<Pending>>,
        coro: Py<PyAny>,
        epoch: Option<u64>,
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
    /// Made at the first step: the key and its hash.
    key: Option<(Py<PyAny>, u32)>,
    /// Factory mode: the cache the factory gave this call (at the first step).
    made: Option<Py<PyAny>>,
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
        Self { memo, args, kwargs, stage: Stage::Start, key: None, made: None }
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
                Stage::Leading { lead, coro, epoch } => {
                    let mut guard = Lead { map: &self.memo.pending, pending: lead };
                    let result = match forward(py, coro.bind(py), input) {
                        Ok(Step::Yield(y)) => {
                            self.stage = Stage::Leading { lead: guard.pending.take(), coro, epoch };
                            return Ok(Step::Yield(y));
                        }
                        Ok(Step::Return(value)) => self.store(py, value, epoch, guard.pending.as_deref()),
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
                        Some(Ok(value)) => return self.deliver(py, Done::hit(value)),
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

    /// The first step: look up, then lead or follow. `Some` when the answer is already known.
    fn start(&mut self, py: Python<'_>) -> PyResult<Option<Done>> {
        let args = self.args.bind(py).clone();
        if self.key.is_none() {
            let (ignore, kwargs) = Memo::split_ignore(self.kwargs.as_ref().map(|k| k.bind(py)))?;
            if ignore {
                let coro = self.memo.func.bind(py).call(&args, kwargs.as_ref())?;
                self.stage = Stage::Bypass(coro.unbind());
                return Ok(None);
            }
            let made = self.memo.call_cache(&args)?;
            self.memo.check_lifetime(made.as_ref())?;
            self.made = made.map(Bound::unbind);
            let key = self.memo.make_key(&self.memo.key_args(&args), kwargs.as_ref())?;
            let hash = hash_key(&key)?;
            self.kwargs = kwargs.map(Bound::unbind);
            self.key = Some((key.unbind(), hash));
        }
        let Some((key, hash)) = &self.key else { unreachable!("made above") };
        let (key, hash) = (key.bind(py), *hash);
        let memo = &*self.memo;
        let target = memo.target(py, self.made.as_ref().map(|m| m.bind(py)))?;
        if let Some(value) = memo.look_again(py, target, key, hash)? {
            return Ok(Some(Done::hit(value)));
        }
        match memo.pending.join(py, key, hash, current_task_id(py)?)? {
            Role::Lead(pending) => {
                let mut guard = Lead::new(&memo.pending, pending);
                // As in `Memo::produce`: another leader may have stored it just before.
                if let Some(value) = memo.look_again(py, target, key, hash)? {
                    return guard.settle(py, Ok(Done::hit(value))).map(Some);
                }
                let kwargs = self.kwargs.as_ref().map(|k| k.bind(py));
                let func = memo.func.bind(py);
                let started = match &memo.l2 {
                    None => func.call(&args, kwargs).map(|coro| (coro, None)),
                    // The tier's coroutine runs the function when it must (no lock is held).
                    Some(tier) => tier.start_load(func, key, &args, kwargs).map(|(coro, epoch)| (coro, Some(epoch))),
                };
                match started {
                    Ok((coro, epoch)) => {
                        self.stage = Stage::Leading { lead: guard.pending.take(), coro: coro.unbind(), epoch };
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
                    Some(Ok(value)) => Ok(Some(Done::hit(value))),
                    Some(Err(Some(error))) => Err(error),
                    _ => {
                        self.stage = Stage::Start;
                        Ok(None)
                    }
                }
            }
        }
    }

    /// Stores the leader's value (with `l2=`, `value` is the tier's answer).
    fn store(&self, py: Python<'_>, value: Py<PyAny>, epoch: Option<u64>, pending: Option<&Pending>) -> PyResult<Done> {
        let Some((key, hash)) = &self.key else {
            return Err(PyRuntimeError::new_err("cached call lost its key"));
        };
        let target = self.memo.target(py, self.made.as_ref().map(|m| m.bind(py)))?;
        let (key, value) = (key.bind(py), value.into_bound(py));
        match (&self.memo.l2, epoch) {
            (Some(tier), Some(epoch)) => {
                let loaded = tier.loaded(py, &value, epoch)?;
                if let Some(record) = &loaded.record {
                    self.memo.keep(target, key, *hash, record.as_any(), &loaded.value, pending)?;
                }
                let value = loaded.value.unbind();
                Ok(if loaded.computed { Done::miss(value) } else { Done::hit(value) })
            }
            _ => {
                self.memo.keep(target, key, *hash, &value, &value, pending)?;
                Ok(Done::miss(value.unbind()))
            }
        }
    }

    /// `Memo::report` (awaiting what the callback returns if that is awaitable), then the
    /// value copied out.
    fn deliver(&mut self, py: Python<'_>, done: Done) -> PyResult<Step> {
        let key = self.key.as_ref().map(|(key, _)| key.bind(py).clone());
        if let Some(ret) = self.memo.report(done.event, done.value.bind(py), key.as_ref())? {
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
            Stage::Leading { lead, coro, .. } => {
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
        visit.call(&self.made)?;
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
