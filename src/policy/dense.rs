//! Dense storage: entries packed in a `Vec`, a removal fills the hole with the last entry
//! (which changes that entry's id). Used by `Cache` and `RRCache` (`unordered.rs`).

use pyo3::Python;

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
pub(crate) use dense_storage;
