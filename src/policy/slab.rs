//! Slab storage: entries in a `Vec` whose ids never change; a removal leaves a hole that the
//! next insert fills. Used under LRU/LFU/VTTL, whose order structures refer to entries by id:
//! with stable ids an eviction needs no second table probe to repoint a moved entry.

use std::collections::TryReserveError;

use pyo3::Python;

use crate::entry::{Entry, Slot};

pub struct Slab<M> {
    slots: Vec<Option<Slot<M>>>,
    /// Ids of the holes, reused last-in first-out.
    free: Vec<u32>,
    live: usize,
}

impl<M> Default for Slab<M> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new(), live: 0 }
    }
}

#[allow(clippy::cast_possible_truncation)]
impl<M> Slab<M> {
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn get(&self, id: u32) -> &Slot<M> {
        match &self.slots[id as usize] {
            Some(slot) => slot,
            None => unreachable!("slab id {id} is a hole"),
        }
    }

    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut Slot<M> {
        match &mut self.slots[id as usize] {
            Some(slot) => slot,
            None => unreachable!("slab id {id} is a hole"),
        }
    }

    #[inline]
    pub fn push(&mut self, entry: Entry, meta: M) -> u32 {
        self.live += 1;
        let slot = Some(Slot { entry, meta });
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        }
    }

    #[inline]
    pub fn take(&mut self, id: u32) -> Slot<M> {
        let Some(slot) = self.slots[id as usize].take() else { unreachable!("slab id {id} is a hole") };
        self.live -= 1;
        if self.live == 0 {
            // Empty: forget the holes instead of keeping a free list as long as the slab.
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(id);
        }
        slot
    }

    pub fn ids(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.live);
        out.extend(self.slots.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| i as u32));
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = &Slot<M>> {
        self.slots.iter().flatten()
    }

    pub fn drain_into(&mut self, out: &mut Vec<Entry>) {
        out.extend(self.slots.drain(..).flatten().map(|s| s.entry));
        self.free.clear();
        self.live = 0;
    }

    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        self.slots.try_reserve(additional.saturating_sub(self.free.len()))
    }

    pub fn shrink_to_fit(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let end = self.slots.len() as u32;
        self.free.retain(|&id| id < end);
        self.slots.shrink_to_fit();
        self.free.shrink_to_fit();
    }

    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// One past the highest id ever handed out and not trimmed (holes included).
    #[inline]
    pub fn extent(&self) -> usize {
        self.slots.len()
    }

    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<Slot<M>>>() + self.free.capacity() * 4
    }

    pub fn duplicate(&self, py: Python<'_>) -> Self
    where
        M: Clone,
    {
        let mut slots = Vec::with_capacity(self.slots.capacity());
        slots.extend(
            self.slots.iter().map(|s| s.as_ref().map(|s| Slot { entry: s.entry.clone_ref(py), meta: s.meta.clone() })),
        );
        Self { slots, free: self.free.clone(), live: self.live }
    }
}

/// The parts of `Policy` that only forward to the `slab` field.
macro_rules! slab_storage {
    () => {
        $crate::policy::slab::slab_storage!(@common);
        fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
            self.slab.try_reserve(additional)
        }
    };
    // A policy with a side table indexed by id (`$side`, a `Vec`), reserved along.
    (side: $side:ident) => {
        $crate::policy::slab::slab_storage!(@common);
        fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
            self.slab.try_reserve(additional)?;
            let want = self.slab.extent() + additional;
            self.$side.try_reserve(want.saturating_sub(self.$side.len()))
        }
    };
    (@common) => {
        #[inline]
        fn len(&self) -> usize {
            self.slab.len()
        }
        #[inline]
        fn slot(&self, id: u32) -> &Slot<Self::Meta> {
            self.slab.get(id)
        }
        #[inline]
        fn slot_mut(&mut self, id: u32) -> &mut Slot<Self::Meta> {
            self.slab.get_mut(id)
        }
        fn ids(&self) -> Vec<u32> {
            self.slab.ids()
        }
        fn visit(&self, f: &mut dyn FnMut(&Entry)) {
            self.slab.iter().for_each(|s| f(&s.entry));
        }
    };
}
pub(crate) use slab_storage;

#[cfg(test)]
mod tests {
    #[test]
    fn option_slot_has_no_tag() {
        use crate::entry::Slot;
        assert_eq!(std::mem::size_of::<Option<Slot<()>>>(), 24);
        assert_eq!(std::mem::size_of::<Option<Slot<[u32; 2]>>>(), 32);
    }
}
