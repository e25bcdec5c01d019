//! `Cache` and `RRCache`: no order, over dense storage (`dense.rs`), which RR needs to draw a
//! victim uniformly in O(1). Iteration follows the dense array.

use std::collections::TryReserveError;

use pyo3::Python;

use super::dense::{dense_storage, resolve_index, Dense};
use super::{Fix, NewMeta, Policy, Storage};
use crate::entry::{Entry, Slot};

/// `Cache` (`RANDOM = false`: never evicts) and `RRCache` (`RANDOM = true`: evicts a uniformly
/// random entry). No order; iteration follows the dense array.
pub struct Unordered<const RANDOM: bool> {
    pub dense: Dense<()>,
    /// Owned by the cache (behind its lock), not the thread-local generator, so a cache's
    /// choices do not depend on what other code draws.
    rng: fastrand::Rng,
}

impl<const RANDOM: bool> Default for Unordered<RANDOM> {
    fn default() -> Self {
        Self { dense: Dense::default(), rng: fastrand::Rng::new() }
    }
}

impl<const RANDOM: bool> Unordered<RANDOM> {
    /// A uniformly random live id (`RRCache.random_key`).
    pub fn random(&mut self) -> Option<u32> {
        let len = self.dense.slots.len();
        #[allow(clippy::cast_possible_truncation)]
        (len > 0).then(|| self.rng.usize(..len) as u32)
    }
}

impl<const RANDOM: bool> Storage for Unordered<RANDOM> {
    type Meta = ();

    dense_storage!();
}

#[allow(clippy::cast_possible_truncation)]
impl<const RANDOM: bool> Policy for Unordered<RANDOM> {
    type Cursor = u32;
    const EVICTS: bool = RANDOM;

    fn push(&mut self, entry: Entry, _meta: NewMeta, _now: f64) -> u32 {
        self.dense.push(entry, ())
    }
    /// RR's order is arbitrary: the new entry simply takes the victim's place, and no other
    /// entry moves.
    const RECYCLES: bool = RANDOM;

    fn recycle(&mut self, victim: u32, entry: Entry, _meta: NewMeta, _now: f64) -> (u32, Entry) {
        (victim, std::mem::replace(&mut self.dense.slots[victim as usize].entry, entry))
    }

    fn take(&mut self, id: u32) -> (Slot<()>, Fix) {
        let (slot, moved) = self.dense.swap_remove(id);
        (slot, moved.map_or(Fix::None, |from| Fix::Moved { from, to: id }))
    }
    fn on_hit(&mut self, _id: u32) {}
    fn on_replace(&mut self, _id: u32, _meta: NewMeta, _now: f64) -> Fix {
        Fix::None
    }
    fn victim(&mut self) -> Option<u32> {
        if RANDOM {
            self.random()
        } else {
            None
        }
    }
    fn clear(&mut self, out: &mut Vec<Entry>) {
        self.dense.drain_into(out);
    }
    fn shrink_to_fit(&mut self) -> Fix {
        self.dense.slots.shrink_to_fit();
        Fix::None
    }
    fn allocated_bytes(&self) -> usize {
        self.dense.allocated_bytes()
    }
    fn duplicate(&self, py: Python<'_>) -> Self {
        Self { dense: self.dense.duplicate(py), rng: fastrand::Rng::new() }
    }
    fn cursor(&self) -> u32 {
        0
    }
    fn advance(&self, cursor: &mut u32) -> Option<u32> {
        let id = *cursor;
        ((id as usize) < self.dense.slots.len()).then(|| {
            *cursor += 1;
            id
        })
    }
    fn nth(&self, n: isize) -> Option<u32> {
        resolve_index(n, self.dense.slots.len()).map(|i| i as u32)
    }
}
