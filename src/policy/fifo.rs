//! FIFO: the oldest entry is evicted first, over ring storage (`ring.rs`), whose order is the
//! insertion order.

use std::collections::TryReserveError;

use pyo3::Python;

use super::ring::{ring_order, ring_storage, Ring};
use super::{Fix, NewMeta, Policy, Storage};
use crate::entry::{Entry, Slot};

/// FIFO: insertion order; updates keep their place.
#[derive(Default)]
pub struct Fifo {
    pub ring: Ring<()>,
}

impl Storage for Fifo {
    type Meta = ();

    ring_storage!();
}

impl Policy for Fifo {
    type Cursor = u32;

    ring_order!();
    const INSERTION_ORDERED: bool = true;

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
