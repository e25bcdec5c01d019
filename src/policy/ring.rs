//! Ring storage for insertion-ordered policies (FIFO, TTL): entries sit in a `VecDeque` in
//! order, so the oldest is at the front and no per-entry links are needed (that keeps a FIFO
//! entry at 24 bytes). An id is a *logical* position: `head + index`, wrapping in `u32`, so
//! popping the front does not renumber anything. Removing from the middle leaves a tombstone;
//! once tombstones outnumber live entries the deque is compacted and the table reindexed.

use std::collections::{TryReserveError, VecDeque};

use pyo3::Python;

use super::dense::resolve_index;
use super::{Fix, NewMeta, Policy};
use crate::entry::{Entry, Slot};

/// Compaction starts only past this many tombstones, so small caches never pay for it.
const MIN_TOMBSTONES: usize = 32;

pub struct Ring<M> {
    q: VecDeque<Option<Slot<M>>>,
    /// Logical id of `q[0]`.
    head: u32,
    live: usize,
}

impl<M> Default for Ring<M> {
    fn default() -> Self {
        Self { q: VecDeque::new(), head: 0, live: 0 }
    }
}

#[allow(clippy::cast_possible_truncation)]
impl<M> Ring<M> {
    #[inline]
    fn pos(&self, id: u32) -> usize {
        id.wrapping_sub(self.head) as usize
    }

    #[inline]
    fn id_at(&self, pos: usize) -> u32 {
        self.head.wrapping_add(pos as u32)
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn get(&self, id: u32) -> &Slot<M> {
        self.q[self.pos(id)].as_ref().expect("live ring id")
    }

    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut Slot<M> {
        let pos = self.pos(id);
        self.q[pos].as_mut().expect("live ring id")
    }

    #[inline]
    pub fn push(&mut self, entry: Entry, meta: M) -> u32 {
        self.q.push_back(Some(Slot { entry, meta }));
        self.live += 1;
        self.id_at(self.q.len() - 1)
    }

    pub fn take(&mut self, id: u32) -> (Slot<M>, Fix) {
        let pos = self.pos(id);
        let slot = self.q[pos].take().expect("live ring id");
        self.live -= 1;
        self.drop_front_tombstones();
        while matches!(self.q.back(), Some(None)) {
            self.q.pop_back();
        }
        let dead = self.q.len() - self.live;
        if dead > MIN_TOMBSTONES && dead > self.live {
            self.q.retain(Option::is_some);
            return (slot, Fix::Reindex);
        }
        (slot, Fix::None)
    }

    /// Removes the front (the oldest live entry) and appends `entry`: a full FIFO's insert.
    /// Returns the new entry's id and the removed slot; no id changes.
    pub fn replace_front(&mut self, entry: Entry, meta: M) -> (u32, Slot<M>) {
        let slot = self.q.pop_front().flatten().expect("a live front");
        self.head = self.head.wrapping_add(1);
        self.drop_front_tombstones();
        self.q.push_back(Some(Slot { entry, meta }));
        (self.id_at(self.q.len() - 1), slot)
    }

    /// Keeps the front live: pops tombstones there, advancing `head` past them.
    #[inline]
    fn drop_front_tombstones(&mut self) {
        while matches!(self.q.front(), Some(None)) {
            self.q.pop_front();
            self.head = self.head.wrapping_add(1);
        }
    }

    /// The oldest live id (the front is never a tombstone).
    #[inline]
    pub fn front(&self) -> Option<u32> {
        (self.live > 0).then_some(self.head)
    }

    pub fn ids(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.live);
        out.extend(self.q.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(p, _)| self.id_at(p)));
        out
    }

    pub fn clear(&mut self, out: &mut Vec<Entry>) {
        out.extend(self.q.drain(..).flatten().map(|s| s.entry));
        self.live = 0;
    }

    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        self.q.try_reserve(additional)
    }

    pub fn shrink_to_fit(&mut self) -> Fix {
        let fix = if self.q.len() > self.live {
            self.q.retain(Option::is_some);
            Fix::Reindex
        } else {
            Fix::None
        };
        self.q.shrink_to_fit();
        fix
    }

    pub fn allocated_bytes(&self) -> usize {
        self.q.capacity() * std::mem::size_of::<Option<Slot<M>>>()
    }

    pub fn duplicate(&self, py: Python<'_>) -> Self
    where
        M: Clone,
    {
        let mut q = VecDeque::with_capacity(self.q.capacity());
        q.extend(
            self.q.iter().map(|s| s.as_ref().map(|s| Slot { entry: s.entry.clone_ref(py), meta: s.meta.clone() })),
        );
        Self { q, head: self.head, live: self.live }
    }

    pub fn advance(&self, cursor: &mut u32) -> Option<u32> {
        let mut pos = self.pos(*cursor);
        while pos < self.q.len() {
            if self.q[pos].is_some() {
                let id = self.id_at(pos);
                *cursor = id.wrapping_add(1);
                return Some(id);
            }
            pos += 1;
        }
        None
    }

    pub fn visit(&self, f: &mut dyn FnMut(&Entry)) {
        self.q.iter().flatten().for_each(|s| f(&s.entry));
    }

    /// Live ids from the front, oldest first.
    pub fn iter_ids(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        self.q.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(p, _)| self.id_at(p))
    }

    pub fn nth(&self, n: isize) -> Option<u32> {
        let i = resolve_index(n, self.live)?;
        if self.q.len() == self.live {
            return Some(self.id_at(i));
        }
        if i < self.live / 2 {
            self.iter_ids().nth(i)
        } else {
            self.iter_ids().rev().nth(self.live - 1 - i)
        }
    }
}

/// The parts of `Policy` that only forward to the `ring` field.
macro_rules! ring_storage {
    () => {
        #[inline]
        fn len(&self) -> usize {
            self.ring.len()
        }
        #[inline]
        fn slot(&self, id: u32) -> &Slot<Self::Meta> {
            self.ring.get(id)
        }
        #[inline]
        fn slot_mut(&mut self, id: u32) -> &mut Slot<Self::Meta> {
            self.ring.get_mut(id)
        }
        fn ids(&self) -> Vec<u32> {
            self.ring.ids()
        }
        fn visit(&self, f: &mut dyn FnMut(&Entry)) {
            self.ring.visit(f);
        }
        fn clear(&mut self, out: &mut Vec<Entry>) {
            self.ring.clear(out);
        }
        fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
            self.ring.try_reserve(additional)
        }
        fn shrink_to_fit(&mut self) -> Fix {
            self.ring.shrink_to_fit()
        }
        fn allocated_bytes(&self) -> usize {
            self.ring.allocated_bytes()
        }
        fn cursor(&self) -> u32 {
            self.ring.front().unwrap_or(0)
        }
        fn advance(&self, cursor: &mut u32) -> Option<u32> {
            self.ring.advance(cursor)
        }
        fn nth(&self, n: isize) -> Option<u32> {
            self.ring.nth(n)
        }
    };
}
pub(crate) use ring_storage;

/// FIFO: insertion order; updates keep their place.
#[derive(Default)]
pub struct Fifo {
    pub ring: Ring<()>,
}

impl Policy for Fifo {
    type Meta = ();
    type Cursor = u32;
    const INSERTION_ORDERED: bool = true;

    ring_storage!();

    fn push(&mut self, entry: Entry, _meta: NewMeta, _now: f64) -> u32 {
        self.ring.push(entry, ())
    }
    const RECYCLES: bool = true;

    fn recycle(&mut self, victim: u32, entry: Entry, _meta: NewMeta, _now: f64) -> (u32, Entry) {
        debug_assert_eq!(Some(victim), self.ring.front());
        let (id, slot) = self.ring.replace_front(entry, ());
        (id, slot.entry)
    }

    fn take(&mut self, id: u32) -> (Slot<()>, Fix) {
        self.ring.take(id)
    }
    fn on_hit(&mut self, _id: u32) {}
    fn on_replace(&mut self, _id: u32, _meta: NewMeta, _now: f64) -> Fix {
        Fix::None
    }
    fn victim(&mut self) -> Option<u32> {
        self.ring.front()
    }
    #[inline]
    fn next_victim(&self) -> Option<u32> {
        self.ring.front()
    }
    fn duplicate(&self, py: Python<'_>) -> Self {
        Self { ring: self.ring.duplicate(py) }
    }
}
