//! Copies and pickling of a cache: `copy`, `__getstate__`/`__setstate__` (expiries as UNIX
//! timestamps) and `__deepcopy__`.

use super::*;

impl<P: Policy> CacheCore<P> {
    pub fn copy_into(&self, py: Python<'_>, target: &Self) -> PyResult<()> {
        let mut trash = Trash::new(py);
        let copy = {
            let mut store = self.lock(py)?;
            if P::SWEEP_ON_LEN {
                store.sweep(Store::<P>::now(), &mut trash);
            }
            store.duplicate(py)
        };
        drop(trash);
        target.install(py, copy)
    }

    /// `(maxsize, maxmemory, capacity, [(key, value, extra), ...], ttl, attrs)`, plus
    /// `on_evict, weigher` when either is set, where `extra` is the frequency (LFU), the UNIX expiry time (TTL/VTTL; `None` =
    /// never) or `None`, and `attrs` a Python subclass instance's `__dict__`. The two callables
    /// are pickled as they are: a listener that cannot be pickled fails the pickling.
    pub fn getstate(&self, this: &Bound<'_, PyAny>) -> PyResult<Py<PyTuple>> {
        let py = this.py();
        let (items, _) = self.items(py, usize::MAX)?;
        let (limits, capacity, ttl, hooks) =
            self.read(py, |s| (s.limits, s.capacity(), s.policy.global_ttl(), s.hooks.clone_ref(py)))?;
        let list = PyList::empty(py);
        // One offset for all entries, so that equal or ascending instants stay so.
        let to_unix = clock::unix_offset();
        for item in items {
            let extra: Py<PyAny> = if P::EXPIRES {
                if item.expire_at.is_finite() {
                    (item.expire_at + to_unix).into_pyobject(py)?.into_any().unbind()
                } else {
                    py.None()
                }
            } else if P::FREQUENCY {
                item.frequency.into_pyobject(py)?.into_any().unbind()
            } else {
                py.None()
            };
            list.append(PyTuple::new(py, [item.key, item.value, extra])?)?;
        }
        let attrs = instance_dict(this).filter(|d| !d.is_empty());
        let state = (limits.maxsize, limits.maxmemory, capacity, list, ttl, attrs);
        if hooks.on_evict.is_none() && hooks.weigher.is_none() {
            return Ok(state.into_pyobject(py)?.unbind());
        }
        let (maxsize, maxmemory, capacity, list, ttl, attrs) = state;
        let state = (maxsize, maxmemory, capacity, list, ttl, attrs, hooks.on_evict, hooks.weigher);
        Ok(state.into_pyobject(py)?.unbind())
    }

    /// Rebuilds a store from `(key, value, meta)` triples (pickle, deepcopy). Runs Python
    /// (hash, `__sizeof__` or the weigher, `__eq__`) on a store nobody else can see yet, so no
    /// lock is needed. The hooks are installed last: rebuilding reports nothing.
    pub fn build(
        py: Python<'_>,
        policy: P,
        limits: Limits,
        capacity: usize,
        items: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>, NewMeta)>,
        hooks: Hooks,
    ) -> PyResult<Store<P>> {
        let weigher = hooks.weigher.as_ref().map(|w| w.bind(py).clone());
        if items.len() > limits.maxsize {
            return Err(PyValueError::new_err("state holds more items than maxsize"));
        }
        let mut store = Store::with_policy(policy, limits);
        store.reserve(capacity.max(items.len()))?;
        let now = clock::now();
        let mut trash = Trash::new(py);
        for (key, value, meta) in items {
            if meta.expire_at < now {
                continue;
            }
            let probe = Probe { key: &key, hash: hash_key(&key)?, owner: &Owner::default() };
            let charge = charge_with(weigher.as_ref(), &key, &value)?;
            let inserted = store.insert(py, &probe, &value, charge, meta, &mut trash).map_err(|e| {
                if e.is_instance_of::<PyOverflowError>(py) {
                    PyValueError::new_err("cache state does not fit the cache's limits")
                } else {
                    e
                }
            })?;
            if !matches!(inserted, Inserted::New) {
                return Err(PyValueError::new_err("state holds a duplicate key"));
            }
        }
        if !trash.is_empty() {
            return Err(PyValueError::new_err("state does not fit the cache's limits"));
        }
        store.hooks = hooks;
        Ok(store)
    }

    /// Parses `getstate`'s tuple back into a store. A malformed state raises `TypeError` or
    /// `ValueError` (numbers out of range included) and leaves the cache as it was.
    pub fn setstate(&self, this: &Bound<'_, PyAny>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = this.py();
        self.parse_state(this, state).map_err(|e| {
            if e.is_instance_of::<PyOverflowError>(py) || e.is_instance_of::<PyMemoryError>(py) {
                PyValueError::new_err(format!("malformed cache state: {}", e.value(py)))
            } else {
                e
            }
        })
    }

    fn parse_state(&self, this: &Bound<'_, PyAny>, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = this.py();
        let state = state.cast::<PyTuple>().map_err(|_| PyTypeError::new_err("cache state must be a tuple"))?;
        // 8 fields when the cache has a listener or a weigher.
        if state.len() != 6 && state.len() != 8 {
            return Err(PyValueError::new_err("cache state must have 6 or 8 fields"));
        }
        let hook = |i: usize| if state.len() > i { state.get_item(i).map(Some) } else { Ok(None) };
        let hooks = Self::hooks_arg(hook(6)?.as_ref(), hook(7)?.as_ref())?;
        let maxsize: usize = state.get_item(0)?.extract()?;
        let maxmemory: usize = state.get_item(1)?.extract()?;
        let capacity: usize = state.get_item(2)?.extract()?;
        let ttl_field = state.get_item(4)?;
        let ttl = if ttl_field.is_none() { None } else { Some(crate::convert::ttl_seconds(&ttl_field)?) };
        let policy = Self::policy(ttl)?;
        let attrs = state.get_item(5)?;
        let dict = instance_dict(this);
        if !attrs.is_none() {
            let attrs =
                attrs.cast::<PyDict>().map_err(|_| PyTypeError::new_err("cache state attributes must be a dict"))?;
            if dict.is_none() && !attrs.is_empty() {
                return Err(PyValueError::new_err("cache state has attributes for an object without __dict__"));
            }
        }
        let now = clock::now();
        let from_unix = clock::unix_offset();
        let mut items = Vec::new();
        for item in state.get_item(3)?.try_iter()? {
            let item = item?;
            let triple =
                item.cast::<PyTuple>().map_err(|_| PyTypeError::new_err("cache state items must be tuples"))?;
            if triple.len() != 3 {
                return Err(PyValueError::new_err("cache state items must be (key, value, extra) tuples"));
            }
            let extra = triple.get_item(2)?;
            let mut meta = NewMeta::default();
            if P::EXPIRES {
                if !extra.is_none() {
                    let at: f64 = extra.extract()?;
                    if at.is_nan() {
                        return Err(PyValueError::new_err("cache state holds a NaN expiry"));
                    }
                    // A TTL entry never lives longer than the TTL from now (a state written on
                    // a machine whose clock ran ahead must not break the expiry order).
                    meta.expire_at = (at - from_unix).min(ttl.map_or(f64::INFINITY, |t| now + t));
                }
            } else if P::FREQUENCY {
                meta.frequency = extra.extract()?;
            }
            items.push((triple.get_item(0)?, triple.get_item(1)?, meta));
        }
        if P::EXPIRES && P::INSERTION_ORDERED {
            // TTL keeps expiries ascending from oldest to newest. A state we wrote already
            // is; a hand-made one is evened out rather than reordered.
            let mut latest = f64::NEG_INFINITY;
            for item in &mut items {
                latest = latest.max(item.2.expire_at);
                item.2.expire_at = latest;
            }
        }
        let limits = Limits::new(maxsize, maxmemory);
        let store = Self::build(py, policy, limits, capacity.min(limits.maxsize), items, hooks)?;
        self.install(py, store)?;
        if let (Some(dict), false) = (dict, attrs.is_none()) {
            dict.call_method1(intern!(py, "update"), (attrs,))?;
        }
        Ok(())
    }

    /// `__deepcopy__`: the same entries, keys and values deep-copied with `memo`.
    pub fn deepcopy_into(&self, py: Python<'_>, target: &Self, memo: &Bound<'_, PyAny>) -> PyResult<()> {
        let (items, _) = self.items(py, usize::MAX)?;
        let (limits, capacity, ttl, hooks) =
            self.read(py, |s| (s.limits, s.capacity(), s.policy.global_ttl(), s.hooks.clone_ref(py)))?;
        let policy = Self::policy(ttl)?;
        let deepcopy = py.import(intern!(py, "copy"))?.getattr(intern!(py, "deepcopy"))?;
        let mut copied = Vec::with_capacity(items.len());
        for item in items {
            let meta = NewMeta { expire_at: item.expire_at, frequency: item.frequency, now: None };
            copied.push((deepcopy.call1((item.key, memo))?, deepcopy.call1((item.value, memo))?, meta));
        }
        // The same listener and weigher objects, as `copy` keeps them: they are the cache's
        // configuration, not its contents.
        let store = Self::build(py, policy, limits, capacity, copied, hooks)?;
        target.install(py, store)
    }
}
