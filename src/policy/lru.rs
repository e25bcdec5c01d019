//! LRU: a doubly linked list over the slab's ids, head = least recently used.
//!
//! The links live in a side table (`links[id]`) rather than in the slab's slots: moving an
//! entry then writes its neighbours' links without first reading their slots (a slot is an
//! `Option`, checked on every access). Measured: a hit at 10,000 entries 3% faster.
//!
//! Each entry's links also remember its table bucket, so evicting the least recently used
//! entry (every insert into a full cache) erases it from the table without a probe.

use std::collections::TryReserveError;

use pyo3::Python;

use super::dense::resolve_index;
use super::slab::{slab_storage, Slab};
use super::{Fix, NewMeta, Policy, Storage};
use crate::entry::{Entry, Slot};

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
pub struct Links {
    prev: u32,
    next: u32,
    /// The table bucket holding this id, as last noted: evicting the entry then needs no
    /// probe (the store checks the hint before trusting it).
    bucket: u32,
}

pub struct Lru {
    pub slab: Slab<()>,
    /// `links[id]` for every live id (entries past the slab's extent or at holes are stale).
    links: Vec<Links>,
    head: u32,
    tail: u32,
}

impl Default for Lru {
    fn default() -> Self {
        Self { slab: Slab::default(), links: Vec::new(), head: NIL, tail: NIL }
    }
}

impl Lru {
    #[inline]
    fn links(&mut self, id: u32) -> &mut Links {
        &mut self.links[id as usize]
    }

    #[inline]
    fn unlink(&mut self, id: u32) {
        let Links { prev, next, .. } = self.links[id as usize];
        self.bridge(prev, next);
    }

    /// Joins `prev` and `next` (either may be the list's end).
    #[inline]
    fn bridge(&mut self, prev: u32, next: u32) {
        if prev == NIL {
            self.head = next;
        } else {
            self.links(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.links(next).prev = prev;
        }
    }

    #[inline]
    fn link_tail(&mut self, id: u32) {
        let tail = self.tail;
        let fresh = Links { prev: tail, next: NIL, bucket: u32::MAX };
        match self.links.get_mut(id as usize) {
            Some(links) => *links = fresh,
            None => {
                // A new id is always the next one past the table.
                debug_assert_eq!(id as usize, self.links.len());
                self.links.push(fresh);
            }
        }
        if tail == NIL {
            self.head = id;
        } else {
            self.links(tail).next = id;
        }
        self.tail = id;
    }

    /// A use: `id` becomes the most recently used. Reads `id`'s links once and writes each
    /// touched node once.
    #[inline]
    fn move_to_tail(&mut self, id: u32) {
        let tail = self.tail;
        if tail == id {
            return;
        }
        let links = self.links(id);
        let Links { prev, next, .. } = *links;
        links.prev = tail;
        links.next = NIL;
        // `id` is not the tail, so it has a successor.
        if prev == NIL {
            self.head = next;
        } else {
            self.links(prev).next = next;
        }
        self.links(next).prev = prev;
        self.links(tail).next = id;
        self.tail = id;
    }
}

impl Storage for Lru {
    type Meta = ();

    slab_storage!(side: links);
}

impl Policy for Lru {
    /// The next id to yield.
    type Cursor = u32;

    const BUCKET_HINTS: bool = true;

    fn push(&mut self, entry: Entry, _meta: NewMeta, _now: f64) -> u32 {
        let id = self.slab.push(entry, ());
        self.link_tail(id);
        id
    }

    const RECYCLES: bool = true;

    /// The victim's slot takes the new entry and becomes the most recently used: no slab
    /// hole is made and filled.
    fn recycle(&mut self, victim: u32, entry: Entry, _meta: NewMeta, _now: f64) -> (u32, Entry) {
        let old = std::mem::replace(&mut self.slab.get_mut(victim).entry, entry);
        self.move_to_tail(victim);
        (victim, old)
    }

    fn take(&mut self, id: u32) -> (Slot<()>, Fix) {
        self.unlink(id);
        (self.slab.take(id), Fix::None)
    }

    #[inline]
    fn on_hit(&mut self, id: u32) {
        self.move_to_tail(id);
    }
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    fn note_bucket(&mut self, id: u32, bucket: usize) {
        self.links(id).bucket = bucket as u32;
    }
    #[inline]
    fn bucket_hint(&self, id: u32) -> Option<usize> {
        Some(self.links[id as usize].bucket as usize)
    }
    fn on_replace(&mut self, id: u32, _meta: NewMeta, _now: f64) -> Fix {
        self.move_to_tail(id);
        Fix::None
    }
    fn on_setdefault_hit(&mut self, id: u32) {
        self.move_to_tail(id);
    }
    fn victim(&mut self) -> Option<u32> {
        self.next_victim()
    }
    #[inline]
    fn next_victim(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }
    fn clear(&mut self, out: &mut Vec<Entry>) {
        self.slab.drain_into(out);
        self.links.clear();
        self.head = NIL;
        self.tail = NIL;
    }
    fn shrink_to_fit(&mut self) -> Fix {
        self.slab.shrink_to_fit();
        self.links.truncate(self.slab.extent());
        self.links.shrink_to_fit();
        Fix::None
    }
    fn allocated_bytes(&self) -> usize {
        self.slab.allocated_bytes() + self.links.capacity() * std::mem::size_of::<Links>()
    }
    fn duplicate(&self, py: Python<'_>) -> Self {
        Self { slab: self.slab.duplicate(py), links: self.links.clone(), head: self.head, tail: self.tail }
    }
    fn cursor(&self) -> u32 {
        self.head
    }
    fn advance(&self, cursor: &mut u32) -> Option<u32> {
        let id = *cursor;
        (id != NIL).then(|| {
            *cursor = self.links[id as usize].next;
            id
        })
    }
    fn nth(&self, n: isize) -> Option<u32> {
        let len = self.slab.len();
        let i = resolve_index(n, len)?;
        let mut id;
        if i < len / 2 {
            id = self.head;
            for _ in 0..i {
                id = self.links[id as usize].next;
            }
        } else {
            id = self.tail;
            for _ in 0..(len - 1 - i) {
                id = self.links[id as usize].prev;
            }
        }
        Some(id)
    }
}
