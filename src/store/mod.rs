//! `Store<P>`: every mapping operation, written once for all policies.
//!
//! The store runs no Python code except a key's `__eq__` during probes (hashes and sizes are
//! computed by the caller before locking). Entries it removes are pushed to a `trash` vector
//! that the caller drops after unlocking, because dropping a value can run arbitrary Python
//! (`__del__`, weakref callbacks) that might call back into this cache.
//!
//! One file per concern: `probe` (the table, probing and prefetching), `sizes` (what entries
//! are charged), `write` (inserts, replacements, evictions and removals), `expiry` (the clock
//! and sweeping), `walk` (iteration and copies), `invariants` (the consistency checker the
//! fuzz target runs) and `trash` (what a removal leaves for after the unlock).

mod expiry;
mod invariants;
mod probe;
mod sizes;
mod trash;
mod walk;
mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use hashbrown::HashTable;
use pyo3::exceptions::{PyMemoryError, PyOverflowError};
use pyo3::prelude::*;

use crate::entry::{table_hash, Entry};
use crate::policy::Policy;
use crate::sync::Owner;

pub use probe::ItemsLookup;
pub use sizes::Charge;
pub use trash::{Cause, Trash};
pub use walk::Walk;
pub use write::{Inserted, Replaced, SetDefault};

/// `maxsize`/`maxmemory` of 0 mean "no limit", reported as `sys.maxsize`.
pub const UNLIMITED: usize = isize::MAX as usize;

pub fn overflow_error() -> PyErr {
    PyOverflowError::new_err("The cache has reached the bound")
}

/// Limits a cache was configured with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub maxsize: usize,
    pub maxmemory: usize,
}

impl Limits {
    pub fn new(maxsize: usize, maxmemory: usize) -> Self {
        let unlimited = |n: usize| if n == 0 || n > UNLIMITED { UNLIMITED } else { n };
        Self { maxsize: unlimited(maxsize), maxmemory: unlimited(maxmemory) }
    }
}

/// A key as probed: the object, its folded hash, and the owner marker of the lock held while
/// probing (the probe marks it before running the key's `__eq__`).
pub struct Probe<'a, 'py> {
    pub key: &'a Bound<'py, PyAny>,
    pub hash: u32,
    pub owner: &'a Owner,
}

/// The user's callables a cache was configured with.
#[derive(Default)]
pub struct Hooks {
    /// `on_evict(key, value, cause)`, called for every entry that leaves (see `Trash`).
    pub on_evict: Option<Py<PyAny>>,
    /// `weigher(key, value)`, an entry's charge in place of its `__sizeof__` (called by the
    /// core before it locks the store; the store only keeps it).
    pub weigher: Option<Py<PyAny>>,
}

impl Hooks {
    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        Self {
            on_evict: self.on_evict.as_ref().map(|f| f.clone_ref(py)),
            weigher: self.weigher.as_ref().map(|f| f.clone_ref(py)),
        }
    }
}

pub struct Store<P: Policy> {
    /// False until `__init__` (or `__setstate__`) configured the cache.
    pub ready: bool,
    pub hooks: Hooks,
    table: HashTable<u32>,
    pub policy: P,
    pub limits: Limits,
    memory: usize,
    /// Bumped by every change that can invalidate an iterator's position.
    generation: u64,
    /// Entry sizes that do not fit the entry's 32-bit field, by key address.
    big_sizes: HashMap<usize, usize>,
    /// One past the table's bucket array, for prefetching: hashbrown stores bucket `i` at
    /// `end - (i + 1)` and the control bytes from `end` on. Kept up to date after every
    /// reallocation, and only ever used as a hint (a stale value costs a useless prefetch).
    bucket_end: usize,
}

impl<P: Policy + Default> Store<P> {
    pub fn new(limits: Limits) -> Self {
        Self::with_policy(P::default(), limits)
    }
}

/// Entries a table with `buckets` buckets holds (hashbrown's load factor: 7/8, or one less
/// than the bucket count for tiny tables).
pub(super) fn bucket_capacity(buckets: usize) -> usize {
    if buckets < 8 {
        buckets.saturating_sub(1)
    } else {
        buckets / 8 * 7
    }
}

pub(super) fn reserve_error(e: hashbrown::TryReserveError) -> PyErr {
    match e {
        hashbrown::TryReserveError::CapacityOverflow => {
            PyMemoryError::new_err("cannot allocate the requested capacity")
        }
        hashbrown::TryReserveError::AllocError { .. } => {
            PyMemoryError::new_err("cannot allocate the requested capacity")
        }
    }
}

impl<P: Policy> Store<P> {
    pub fn with_policy(policy: P, limits: Limits) -> Self {
        Self {
            ready: true,
            hooks: Hooks::default(),
            table: HashTable::new(),
            policy,
            limits,
            memory: 0,
            generation: 0,
            big_sizes: HashMap::new(),
            bucket_end: 0,
        }
    }

    /// Pre-allocates room for `capacity` entries (capped by `maxsize`).
    pub fn reserve(&mut self, capacity: usize) -> PyResult<()> {
        let n = capacity.min(self.limits.maxsize);
        if n == 0 {
            return Ok(());
        }
        let policy = &self.policy;
        self.table.try_reserve(n, |&id| table_hash(policy.slot(id).entry.hash)).map_err(reserve_error)?;
        self.table_moved();
        self.policy.try_reserve(n).map_err(|_| PyMemoryError::new_err("cannot allocate the requested capacity"))
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.policy.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn memory(&self) -> usize {
        self.memory
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes allocated by the table and the policy (not counting keys and values).
    pub fn allocated_bytes(&self) -> usize {
        self.table.allocation_size() + self.policy.allocated_bytes()
    }

    #[inline]
    pub fn entry(&self, id: u32) -> &Entry {
        &self.policy.slot(id).entry
    }

    pub fn is_full(&self) -> bool {
        self.live_count() >= self.limits.maxsize || self.memory >= self.limits.maxmemory
    }
}
