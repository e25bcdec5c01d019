//! The decorators' side of a shared second tier (`cached(..., l2=tier)`): what the first
//! tier holds for such a function, and the seam the tier's Python code is driven through.
//!
//! The tier (`cachebox.RedisTier`, Python: it talks to the user's client) is asked only on a
//! first-tier miss, by the one leader of the key in this process, with no lock held. What it
//! returns is kept in the first tier as a `TieredValue`: the value, the expiry of its copy in
//! the second tier (so the first tier never serves it longer; the expiry watch marks it, so a
//! hit reads a flag rather than a clock), and the function's first-tier epoch at the time. The epoch moves when the tier says this process may have
//! missed invalidations (it re-subscribed) or a `cache_clear` came from another process:
//! every entry of an older epoch is then a miss, whatever cache (fixed or per instance)
//! holds it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use super::memo::{Memo, Source};
use crate::convert::hash_key;
use crate::tier::expiry_watch::{self, Expiry};

/// One value as the first tier holds it for a function with a second tier.
#[pyclass(module = "cachebox", frozen, name = "TieredValue")]
pub struct TieredValue {
    value: Py<PyAny>,
    /// When the second tier's copy expires: real time, as Redis keeps it.
    expiry: Arc<Expiry>,
    epoch: u64,
}

#[pymethods]
impl TieredValue {
    /// The cached value.
    #[getter]
    fn value(&self, py: Python<'_>) -> Py<PyAny> {
        self.value.clone_ref(py)
    }

    /// Seconds until the entry stops being served (0 once it has).
    #[getter]
    fn expires_in(&self) -> f64 {
        self.expiry.remaining()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("TieredValue({}, expires_in={:.3})", self.value.bind(py).repr()?, self.expires_in()))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.value)
    }
}

/// A function's second tier: the tier's per-function binding (Python) and the epoch.
pub struct Tier {
    binding: Py<PyAny>,
    epoch: AtomicU64,
}

/// What the tier's `load` gave a leader.
pub struct Loaded<'py> {
    pub value: Bound<'py, PyAny>,
    /// Whether the function ran (a miss) rather than the second tier having it (a hit).
    pub computed: bool,
    /// The first-tier entry to keep, or `None` when nothing may be kept (the tier could not
    /// vouch for the value, or an invalidation overtook the call).
    pub record: Option<Bound<'py, TieredValue>>,
}

impl Tier {
    /// Binds `func` to `tier`: `tier._bind(func, link)` returns the object every miss,
    /// invalidation and clear goes through. The link lets the tier reach the first tier back
    /// (remote invalidations); it holds the memo weakly, so the tier never keeps a decorated
    /// function alive.
    pub fn bind(tier: &Bound<'_, PyAny>, func: &Bound<'_, PyAny>, is_async: bool) -> PyResult<(Self, Py<TierLink>)> {
        let py = tier.py();
        if !tier.hasattr(intern!(py, "_bind"))? {
            return Err(PyTypeError::new_err(format!(
                "l2= takes a cachebox.RedisTier, got {}",
                tier.get_type().qualname()?
            )));
        }
        let link = Py::new(py, TierLink { memo: OnceLock::new() })?;
        let binding = tier.call_method1(intern!(py, "_bind"), (func, link.bind(py), is_async))?;
        Ok((Self { binding: binding.unbind(), epoch: AtomicU64::new(0) }, link))
    }

    /// The value in a first-tier entry, if it may still be served.
    #[inline(always)]
    pub fn fresh(&self, py: Python<'_>, stored: Py<PyAny>) -> Option<Py<PyAny>> {
        let stored = stored.into_bound(py);
        let record = stored.cast_exact::<TieredValue>().ok()?.get();
        if record.epoch != self.epoch.load(Ordering::Acquire) || record.expiry.passed() {
            return None;
        }
        Some(record.value.clone_ref(py))
    }

    /// A leader's miss: the second tier's value, or the function's (run by the tier, which
    /// holds the cross-process lock meanwhile).
    pub fn load<'py>(
        &self,
        py: Python<'py>,
        func: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Loaded<'py>> {
        let (answer, epoch) = self.start_load(func, key, args, kwargs)?;
        self.loaded(py, &answer, epoch)
    }

    /// An async leader's miss: the awaitable of the tier's answer, and the epoch `loaded`
    /// needs.
    pub fn start_load<'py>(
        &self,
        func: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        let py = key.py();
        let epoch = self.epoch.load(Ordering::Acquire);
        let answer = self.binding.bind(py).call_method1(intern!(py, "load"), (key, func, args, kwargs))?;
        Ok((answer, epoch))
    }

    /// The tier's answer, `(value, seconds_left or None, computed)`, as what to keep: `None`
    /// for seconds when nothing may be kept.
    pub fn loaded<'py>(&self, py: Python<'py>, answer: &Bound<'py, PyAny>, epoch: u64) -> PyResult<Loaded<'py>> {
        let (value, left, computed): (Bound<'py, PyAny>, Option<f64>, bool) = answer.extract()?;
        let record = match left {
            // An invalidation of everything (a new epoch) overtook the call: keep nothing.
            Some(left) if left > 0.0 && self.epoch.load(Ordering::Acquire) == epoch => {
                // The watch's lock is held only for a moment, but never waited for attached.
                let expiry = match expiry_watch::try_watch(left) {
                    Ok(expiry) => expiry,
                    Err(expiry_watch::Busy) => py.detach(|| expiry_watch::watch(left)),
                };
                // No watch (it could not start): the entry could never expire, so none is kept.
                match expiry {
                    Some(expiry) => Some(Bound::new(py, TieredValue { value: value.clone().unbind(), expiry, epoch })?),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(Loaded { value, computed, record })
    }

    /// `cache_invalidate`: the key's entry in the second tier and in every process's first
    /// tier. Whether either tier had one (`here`: this first tier), or an awaitable of it.
    pub fn invalidate<'py>(&self, key: &Bound<'py, PyAny>, here: bool) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        self.binding.bind(py).call_method1(intern!(py, "invalidate"), (key, here))
    }

    /// `cache_clear`: every entry of the function, in every tier and process.
    pub fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.bump();
        self.binding.bind(py).call_method0(intern!(py, "clear"))
    }

    /// Makes every first-tier entry of the function a miss.
    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.binding)
    }
}

/// The tier's way back to a function's first tier, for what other processes change.
#[pyclass(module = "cachebox", frozen)]
pub struct TierLink {
    memo: OnceLock<Weak<Memo>>,
}

impl TierLink {
    /// Points the link at the memo it serves (once, right after the memo is built).
    pub fn connect(&self, memo: &Arc<Memo>) {
        let _ = self.memo.set(Arc::downgrade(memo));
    }

    fn with_memo(&self, f: impl FnOnce(&Memo, &Tier) -> PyResult<()>) -> PyResult<()> {
        match self.memo.get().and_then(Weak::upgrade) {
            Some(memo) => match &memo.l2 {
                Some(tier) => f(&memo, tier),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}

#[pymethods]
impl TierLink {
    /// Drops the first-tier entry of `key` (another process invalidated it). Per-instance
    /// caches cannot be reached by key, so a function with a cache factory drops them all.
    fn drop_key(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        self.with_memo(|memo, tier| match &memo.source {
            Source::Fixed { .. } => {
                let hash = hash_key(key)?;
                memo.pending.invalidate(py, key, hash)?;
                memo.target(py, None)?.invalidate(key, hash).map(drop)
            }
            Source::Factory(_) => {
                tier.bump();
                Ok(())
            }
        })
    }

    /// Makes every first-tier entry of the function a miss (another process cleared it, or
    /// this one may have missed invalidations).
    fn drop_all(&self, py: Python<'_>) -> PyResult<()> {
        self.with_memo(|memo, tier| {
            tier.bump();
            match &memo.source {
                // The entries are misses already; clearing gives their memory back.
                Source::Fixed { cache, .. } => cache.bind(py).call_method0(intern!(py, "clear")).map(drop),
                Source::Factory(_) => Ok(()),
            }
        })
    }

    /// Whether the function it serves still exists.
    #[getter]
    fn alive(&self) -> bool {
        self.memo.get().is_some_and(|m| m.strong_count() > 0)
    }
}
