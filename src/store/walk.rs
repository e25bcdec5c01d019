//! Iteration: walks that notice when the store changed under them, positions in policy
//! order, and copies.

use pyo3::prelude::*;

use super::{Store, Trash};
use crate::entry::Entry;
use crate::policy::Policy;

/// A walk's store changed under it (an insert or a removal), so its position is meaningless.
#[derive(Debug)]
pub struct Changed;

/// What `iter_*` needs to walk a store: where it is, the generation it started from and the
/// instant before which entries count as expired.
pub struct Walk<C> {
    pub cursor: C,
    pub generation: u64,
    pub now: f64,
    /// Live entries when the walk started: a walk never yields more, even if reads reorder
    /// entries under it (an LRU read moves the entry to the end).
    pub remaining: usize,
}

impl<P: Policy> Store<P> {
    /// Starts a walk in policy order. TTL sweeps first, so expiry never invalidates it.
    pub fn walk(&mut self, trash: &mut Trash) -> Walk<P::Cursor> {
        let now = Self::now();
        if P::EXPIRES && !P::SWEEP_ON_LEN {
            self.sweep(now, trash);
        }
        self.policy.settle();
        let remaining = self.len() - if P::EXPIRES { self.policy.count_expired(now) } else { 0 };
        Walk { cursor: self.policy.cursor(), generation: self.generation, now, remaining }
    }

    /// The next live id of a walk, or `Err(Changed)` when the store changed since it started.
    pub fn step(&self, walk: &mut Walk<P::Cursor>) -> Result<Option<u32>, Changed> {
        if walk.generation != self.generation {
            return Err(Changed);
        }
        if walk.remaining == 0 {
            return Ok(None);
        }
        while let Some(id) = self.policy.advance(&mut walk.cursor) {
            if !self.is_expired(id, walk.now) {
                walk.remaining -= 1;
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The id at position `n` of the live policy order (negative counts from the end).
    pub fn nth(&mut self, n: isize, trash: &mut Trash) -> Option<u32> {
        self.sweep(Self::now(), trash);
        self.policy.settle();
        self.policy.nth(n)
    }

    /// Every stored entry, expired ones included (GC traversal).
    pub fn visit(&self, f: &mut dyn FnMut(&Entry)) {
        self.policy.visit(f);
    }

    /// An independent copy holding the same key and value objects.
    pub fn duplicate(&self, py: Python<'_>) -> Self {
        let mut copy = Self {
            ready: self.ready,
            hooks: self.hooks.clone_ref(py),
            table: self.table.clone(),
            policy: self.policy.duplicate(py),
            limits: self.limits,
            memory: self.memory,
            generation: 0,
            big_sizes: self.big_sizes.clone(),
            bucket_end: 0,
        };
        copy.table_moved();
        copy
    }

    /// Live entries in policy order (pickling, copies, equality, repr).
    pub fn ordered_ids(&mut self, trash: &mut Trash) -> Vec<u32> {
        let mut walk = self.walk(trash);
        let mut out = Vec::with_capacity(self.len());
        while let Ok(Some(id)) = self.step(&mut walk) {
            out.push(id);
        }
        out
    }
}
