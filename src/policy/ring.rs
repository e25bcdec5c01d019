//! Ring storage for insertion-ordered policies (FIFO, TTL): entries sit in a ring buffer in
//! order, so the oldest is at the front and no per-entry links are needed (that keeps a FIFO
//! entry at 24 bytes). An id is a *logical* position, wrapping in `u32`, so popping the front
//! renumbers nothing; the buffer's length is a power of two, so id `i` lives at `i & mask`
//! (one `and`, where a `VecDeque` index is a subtraction and a wrap check). Removing from the
//! middle leaves a tombstone; once tombstones outnumber live entries the ring is compacted and
//! the table reindexed.

use std::collections::TryReserveError;

use pyo3::Python;

use super::dense::resolve_index;
use super::Fix;
use crate::entry::{Entry, Slot};

/// Compaction starts only past this many tombstones, so small caches never pay for it.
const MIN_TOMBSTONES: usize = 32;
/// The first buffer's length.
const MIN_LEN: usize = 4;

pub struct Ring<M> {
    /// Empty, or a power of two long (a power of two up to 2^32 divides the id space, so
    /// `id & mask` stays right across the wrap). Positions outside `head..end` hold `None`.
    buf: Vec<Option<Slot<M>>>,
    /// Logical id of the front (always live unless the ring is empty).
    head: u32,
    /// One past the logical id of the back (always live unless the ring is empty).
    end: u32,
    live: usize,
}

impl<M> Default for Ring<M> {
    fn default() -> Self {
        Self { buf: Vec::new(), head: 0, end: 0, live: 0 }
    }
}

#[allow(clippy::cast_possible_truncation)]
impl<M> Ring<M> {
    #[inline]
    fn at(&self, id: u32) -> usize {
        id as usize & self.buf.len().wrapping_sub(1)
    }

    /// Positions in use, tombstones included.
    #[inline]
    fn span(&self) -> usize {
        self.end.wrapping_sub(self.head) as usize
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn get(&self, id: u32) -> &Slot<M> {
        self.buf[self.at(id)].as_ref().expect("live ring id")
    }

    #[inline]
    pub fn get_mut(&mut self, id: u32) -> &mut Slot<M> {
        let at = self.at(id);
        self.buf[at].as_mut().expect("live ring id")
    }

    #[inline]
    pub fn push(&mut self, entry: Entry, meta: M) -> u32 {
        if self.span() == self.buf.len() {
            self.grow();
        }
        self.put_back(entry, meta)
    }

    /// `push` when there is room.
    #[inline(always)]
    fn put_back(&mut self, entry: Entry, meta: M) -> u32 {
        let id = self.end;
        let at = self.at(id);
        // Past the back every position is empty: write without reading the old value (an
        // assignment would load it to drop it).
        let old = self.buf[at].replace(Slot { entry, meta });
        debug_assert!(old.is_none());
        std::mem::forget(old);
        self.end = id.wrapping_add(1);
        self.live += 1;
        id
    }

    #[cold]
    fn grow(&mut self) {
        let len = (self.buf.len() * 2).max(MIN_LEN);
        self.buf.reserve_exact(len - self.buf.len());
        self.extend_to(len);
    }

    /// Lengthens the buffer to `len` (a power of two, already reserved) in place and moves
    /// each entry to its position under the new mask. Growing in place lets the allocator
    /// extend the block (a large one is remapped, not copied) instead of holding both.
    fn extend_to(&mut self, len: usize) {
        let old = self.buf.len();
        self.buf.resize_with(len, || None);
        let mask = len - 1;
        for i in 0..self.span() {
            let id = self.head.wrapping_add(i as u32);
            // An entry stays put or moves into the new part (`to >= old`), which is empty,
            // and no two entries share a position under the larger mask.
            let (from, to) = (id as usize & old.wrapping_sub(1), id as usize & mask);
            if from != to {
                self.buf[to] = self.buf[from].take();
            }
        }
    }

    /// Moves every position into `buf` (a power of two long, at least `span()`).
    fn move_to(&mut self, mut buf: Vec<Option<Slot<M>>>) {
        let mask = buf.len().wrapping_sub(1);
        for i in 0..self.span() {
            let id = self.head.wrapping_add(i as u32);
            let at = self.at(id);
            buf[id as usize & mask] = self.buf[at].take();
        }
        self.buf = buf;
    }

    pub fn take(&mut self, id: u32) -> (Slot<M>, Fix) {
        let at = self.at(id);
        let slot = self.buf[at].take().expect("live ring id");
        self.live -= 1;
        self.drop_front_tombstones();
        while self.end != self.head && self.buf[self.at(self.end.wrapping_sub(1))].is_none() {
            self.end = self.end.wrapping_sub(1);
        }
        let dead = self.span() - self.live;
        if dead > MIN_TOMBSTONES && dead > self.live {
            self.compact();
            return (slot, Fix::Reindex);
        }
        (slot, Fix::None)
    }

    /// Closes the tombstones up, keeping the order; renumbers every entry behind the first one.
    fn compact(&mut self) {
        let mut write = self.head;
        for i in 0..self.span() {
            let read = self.head.wrapping_add(i as u32);
            let from = self.at(read);
            if self.buf[from].is_some() {
                if read != write {
                    let to = self.at(write);
                    self.buf[to] = self.buf[from].take();
                }
                write = write.wrapping_add(1);
            }
        }
        self.end = write;
    }

    /// Removes the front (the oldest live entry) and appends `entry`: a full FIFO's insert.
    /// Returns the new entry's id and the removed slot; no id changes.
    pub fn replace_front(&mut self, entry: Entry, meta: M) -> (u32, Slot<M>) {
        let at = self.at(self.head);
        let slot = self.buf[at].take().expect("a live front");
        self.head = self.head.wrapping_add(1);
        self.live -= 1;
        self.drop_front_tombstones();
        // The front just left, so there is room.
        (self.put_back(entry, meta), slot)
    }

    /// Keeps the front live: steps `head` past tombstones there.
    #[inline]
    fn drop_front_tombstones(&mut self) {
        while self.head != self.end && self.buf[self.at(self.head)].is_none() {
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
        out.extend(self.iter_ids());
        out
    }

    pub fn clear(&mut self, out: &mut Vec<Entry>) {
        out.extend(self.buf.iter_mut().filter_map(Option::take).map(|s| s.entry));
        self.head = 0;
        self.end = 0;
        self.live = 0;
    }

    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        let want = self.span().saturating_add(additional);
        if want <= self.buf.len() {
            return Ok(());
        }
        let len = want.checked_next_power_of_two().unwrap_or(usize::MAX).max(MIN_LEN);
        self.buf.try_reserve_exact(len - self.buf.len())?;
        self.extend_to(len);
        Ok(())
    }

    pub fn shrink_to_fit(&mut self) -> Fix {
        let fix = if self.span() > self.live {
            self.compact();
            Fix::Reindex
        } else {
            Fix::None
        };
        let len = if self.live == 0 { 0 } else { self.live.next_power_of_two() };
        if len < self.buf.len() {
            let mut buf = Vec::with_capacity(len);
            buf.resize_with(len, || None);
            self.move_to(buf);
        }
        fix
    }

    pub fn allocated_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<Option<Slot<M>>>()
    }

    pub fn duplicate(&self, py: Python<'_>) -> Self
    where
        M: Clone,
    {
        let mut buf = Vec::with_capacity(self.buf.len());
        buf.extend(
            self.buf.iter().map(|s| s.as_ref().map(|s| Slot { entry: s.entry.clone_ref(py), meta: s.meta.clone() })),
        );
        Self { buf, head: self.head, end: self.end, live: self.live }
    }

    pub fn advance(&self, cursor: &mut u32) -> Option<u32> {
        let mut pos = cursor.wrapping_sub(self.head) as usize;
        while pos < self.span() {
            let id = self.head.wrapping_add(pos as u32);
            if self.buf[self.at(id)].is_some() {
                *cursor = id.wrapping_add(1);
                return Some(id);
            }
            pos += 1;
        }
        None
    }

    pub fn visit(&self, f: &mut dyn FnMut(&Entry)) {
        self.buf.iter().flatten().for_each(|s| f(&s.entry));
    }

    /// Live ids from the front, oldest first.
    pub fn iter_ids(&self) -> impl DoubleEndedIterator<Item = u32> + '_ {
        (0..self.span() as u32).map(|i| self.head.wrapping_add(i)).filter(|&id| self.buf[self.at(id)].is_some())
    }

    pub fn nth(&self, n: isize) -> Option<u32> {
        let i = resolve_index(n, self.live)?;
        if self.span() == self.live {
            return Some(self.head.wrapping_add(i as u32));
        }
        if i < self.live / 2 {
            self.iter_ids().nth(i)
        } else {
            self.iter_ids().rev().nth(self.live - 1 - i)
        }
    }
}

/// The `Storage` of a type whose `ring` field holds its slots.
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
        fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
            self.ring.try_reserve(additional)
        }
    };
}

/// The parts of `Policy` that an order over a ring (its insertion order) only forwards to the
/// `ring` field.
macro_rules! ring_order {
    () => {
        fn clear(&mut self, out: &mut Vec<Entry>) {
            self.ring.clear(out);
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
pub(crate) use {ring_order, ring_storage};

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use pyo3::prelude::*;

    use super::*;

    fn entry(py: Python<'_>, k: i64) -> Entry {
        let key = k.into_pyobject(py).unwrap().into_any().unbind();
        Entry { key: key.clone_ref(py), value: key, hash: 0, size: 1 }
    }

    fn key(py: Python<'_>, slot: &Slot<()>) -> i64 {
        slot.entry.key.bind(py).extract().unwrap()
    }

    /// Random pushes, front replacements and removals (ids chosen at random, so tombstones
    /// and compactions happen), checked against a `VecDeque` of (id, key) after every step;
    /// ids start just below the `u32` wrap so the masking is exercised across it.
    #[test]
    fn ring_matches_a_deque() {
        Python::attach(|py| {
            let mut rng = fastrand::Rng::with_seed(7);
            let mut ring = Ring::<()>::default();
            ring.head = u32::MAX - 40;
            ring.end = ring.head;
            let mut model: VecDeque<(u32, i64)> = VecDeque::new();
            for step in 0..5_000i64 {
                match rng.u32(0..10) {
                    0..=4 => {
                        let id = ring.push(entry(py, step), ());
                        model.push_back((id, step));
                    }
                    5..=6 if !model.is_empty() => {
                        let (id, slot) = ring.replace_front(entry(py, step), ());
                        let (_, front) = model.pop_front().unwrap();
                        assert_eq!(key(py, &slot), front);
                        model.push_back((id, step));
                    }
                    7..=8 if !model.is_empty() => {
                        let i = rng.usize(0..model.len());
                        let (id, k) = model.remove(i).unwrap();
                        let (slot, fix) = ring.take(id);
                        assert_eq!(key(py, &slot), k);
                        if fix == Fix::Reindex {
                            model = ring.iter_ids().zip(model.iter().map(|&(_, k)| k)).collect();
                        }
                    }
                    9 => {
                        if ring.shrink_to_fit() == Fix::Reindex {
                            model = ring.iter_ids().zip(model.iter().map(|&(_, k)| k)).collect();
                        }
                        ring.try_reserve(rng.usize(0..50)).unwrap();
                    }
                    _ => {}
                }
                assert_eq!(ring.len(), model.len());
                assert_eq!(ring.front(), model.front().map(|&(id, _)| id));
                assert!(ring.buf.is_empty() || ring.buf.len().is_power_of_two());
                let ids: Vec<u32> = ring.iter_ids().collect();
                assert_eq!(ids, model.iter().map(|&(id, _)| id).collect::<Vec<_>>());
                for &(id, k) in &model {
                    assert_eq!(key(py, ring.get(id)), k);
                }
                if !model.is_empty() {
                    let n = rng.usize(0..model.len());
                    assert_eq!(ring.nth(n as isize), Some(model[n].0));
                    assert_eq!(ring.nth(-1), Some(model[model.len() - 1].0));
                }
            }
            assert!(ring.head < 1 << 20, "the ids wrapped");
            let mut out = Vec::new();
            ring.clear(&mut out);
            assert_eq!(out.len(), model.len());
            assert_eq!(ring.len(), 0);
            assert_eq!(ring.shrink_to_fit(), Fix::None);
            assert!(ring.buf.is_empty());
        });
    }
}
