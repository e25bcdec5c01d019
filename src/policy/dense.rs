//! Dense storage: entries packed in a `Vec`, a removal fills the hole with the last entry
//! (which changes that entry's id). Used by `Cache` and `RRCache` (`Unordered`): RR needs the
//! density to draw a victim uniformly in O(1).

use std::collections::TryReserveError;

use pyo3::Python;

use super::{Fix, NewMeta, Policy};
use crate::entry::{Entry, Slot};

pub struct Dense<M> {
    pub slots: Vec<Slot<M>>,
}

impl<M> Default for Dense<M> {
    fn default() -> Self {
        Self { slots: Vec::new() }
    }
}

#[allow(clippy::cast_possible_truncation)]
impl<M> Dense<M> {
    #[inline]
    pub fn push(&mut self, entry: Entry, meta: M) -> u32 {
        self.slots.push(Slot { entry, meta });
        (self.slots.len() - 1) as u32
    }

    /// Removes `id`; if the last slot moved into the hole, returns its old id.
    #[inline]
    pub fn swap_remove(&mut self, id: u32) -> (Slot<M>, Option<u32>) {
        let last = (self.slots.len() - 1) as u32;
        let slot = self.slots.swap_remove(id as usize);
        (slot, (last != id).then_some(last))
    }

    pub fn ids(&self) -> Vec<u32> {
        (0..self.slots.len() as u32).collect()
    }

    pub fn drain_into(&mut self, out: &mut Vec<Entry>) {
        out.extend(self.slots.drain(..).map(|s| s.entry));
    }

    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<M>>()
    }

    pub fn duplicate(&self, py: Python<'_>) -> Self
    where
        M: Clone,
    {
        let mut slots = Vec::with_capacity(self.slots.capacity());
        slots.extend(self.slots.iter().map(|s| Slot { entry: s.entry.clone_ref(py), meta: s.meta.clone() }));
        Self { slots }
    }
}

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

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]
pub fn resolve_index(n: isize, len: usize) -> Option<usize> {
    let i = if n < 0 { n + len as isize } else { n };
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// Implements the storage half of `Policy` for a type whose `dense` field holds its slots.
macro_rules! dense_storage {
    () => {
        #[inline]
        fn len(&self) -> usize {
            self.dense.slots.len()
        }
        #[inline]
        fn slot(&self, id: u32) -> &Slot<Self::Meta> {
            &self.dense.slots[id as usize]
        }
        #[inline]
        fn slot_mut(&mut self, id: u32) -> &mut Slot<Self::Meta> {
            &mut self.dense.slots[id as usize]
        }
        fn ids(&self) -> Vec<u32> {
            self.dense.ids()
        }
        fn visit(&self, f: &mut dyn FnMut(&Entry)) {
            self.dense.slots.iter().for_each(|s| f(&s.entry));
        }
        fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
            self.dense.slots.try_reserve(additional)
        }
    };
}

#[allow(clippy::cast_possible_truncation)]
impl<const RANDOM: bool> Policy for Unordered<RANDOM> {
    type Meta = ();
    type Cursor = u32;
    const EVICTS: bool = RANDOM;

    dense_storage!();

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
