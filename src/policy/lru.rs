//! LRU: a doubly linked list threaded through the slab by id, head = least recently used.

use std::collections::TryReserveError;

use pyo3::Python;

use super::dense::resolve_index;
use super::slab::{slab_storage, Slab};
use super::{Fix, NewMeta, Policy};
use crate::entry::{Entry, Slot};

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
pub struct Links {
    prev: u32,
    next: u32,
}

pub struct Lru {
    pub slab: Slab<Links>,
    head: u32,
    tail: u32,
}

impl Default for Lru {
    fn default() -> Self {
        Self { slab: Slab::default(), head: NIL, tail: NIL }
    }
}

impl Lru {
    #[inline]
    fn links(&mut self, id: u32) -> &mut Links {
        &mut self.slab.get_mut(id).meta
    }

    #[inline]
    fn unlink(&mut self, id: u32) {
        let Links { prev, next } = self.slab.get(id).meta;
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
        *self.links(id) = Links { prev: tail, next: NIL };
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
        let Links { prev, next } = *links;
        *links = Links { prev: tail, next: NIL };
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

impl Policy for Lru {
    type Meta = Links;
    /// The next id to yield.
    type Cursor = u32;

    slab_storage!();

    fn push(&mut self, entry: Entry, _meta: NewMeta, _now: f64) -> u32 {
        let id = self.slab.push(entry, Links { prev: NIL, next: NIL });
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

    fn take(&mut self, id: u32) -> (Slot<Links>, Fix) {
        self.unlink(id);
        (self.slab.take(id), Fix::None)
    }

    #[inline]
    fn on_hit(&mut self, id: u32) {
        self.move_to_tail(id);
    }
    fn on_replace(&mut self, id: u32, _meta: NewMeta, _now: f64) -> Fix {
        self.move_to_tail(id);
        Fix::None
    }
    fn on_setdefault_hit(&mut self, id: u32) {
        self.move_to_tail(id);
    }
    fn victim(&mut self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }
    fn clear(&mut self, out: &mut Vec<Entry>) {
        self.slab.drain_into(out);
        self.head = NIL;
        self.tail = NIL;
    }
    fn shrink_to_fit(&mut self) -> Fix {
        self.slab.shrink_to_fit();
        Fix::None
    }
    fn allocated_bytes(&self) -> usize {
        self.slab.allocated_bytes()
    }
    fn duplicate(&self, py: Python<'_>) -> Self {
        Self { slab: self.slab.duplicate(py), head: self.head, tail: self.tail }
    }
    fn cursor(&self) -> u32 {
        self.head
    }
    fn advance(&self, cursor: &mut u32) -> Option<u32> {
        let id = *cursor;
        (id != NIL).then(|| {
            *cursor = self.slab.get(id).meta.next;
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
                id = self.slab.get(id).meta.next;
            }
        } else {
            id = self.tail;
            for _ in 0..(len - 1 - i) {
                id = self.slab.get(id).meta.prev;
            }
        }
        Some(id)
    }
}
