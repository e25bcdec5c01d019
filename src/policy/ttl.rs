//! TTL: FIFO order where every entry expires `ttl` seconds after its last write. Because the
//! TTL is global and the clock monotonic, expiry times never decrease from front to back, so
//! the expired entries are always a prefix of the ring.

use std::collections::TryReserveError;

use pyo3::Python;

use super::ring::{ring_order, ring_storage, Ring};
use super::{Fix, NewMeta, Policy, Storage};
use crate::entry::{Entry, Slot};

pub struct Ttl {
    pub ring: Ring<f64>,
    pub ttl: f64,
}

impl Default for Ttl {
    fn default() -> Self {
        Self { ring: Ring::default(), ttl: f64::INFINITY }
    }
}

impl Ttl {
    /// A new entry's expiry: `meta.expire_at` when given (restoring a pickle), else `ttl` on.
    #[inline]
    fn expiry(&self, meta: NewMeta, now: f64) -> f64 {
        if meta.expire_at.is_finite() {
            meta.expire_at
        } else {
            now + self.ttl
        }
    }
}

impl Storage for Ttl {
    /// Expiry instant on the store clock.
    type Meta = f64;

    ring_storage!();
}

impl Policy for Ttl {
    type Cursor = u32;

    ring_order!();
    const EXPIRES: bool = true;
    const INSERTION_ORDERED: bool = true;

    fn with_ttl(ttl: Option<f64>) -> Option<Self> {
        ttl.map(|ttl| Self { ring: Ring::default(), ttl })
    }

    /// `meta.expire_at` overrides the TTL (used when restoring a pickle).
    fn push(&mut self, entry: Entry, meta: NewMeta, now: f64) -> u32 {
        self.ring.push(entry, self.expiry(meta, now))
    }
    const RECYCLES: bool = true;

    fn recycle(&mut self, victim: u32, entry: Entry, meta: NewMeta, now: f64) -> (u32, Entry) {
        debug_assert_eq!(Some(victim), self.ring.front());
        let (id, slot) = self.ring.replace_front(entry, self.expiry(meta, now));
        (id, slot.entry)
    }

    fn take(&mut self, id: u32) -> (Slot<f64>, Fix) {
        self.ring.take(id)
    }
    fn on_hit(&mut self, _id: u32) {}
    /// A write refreshes the entry: it moves to the back with a new expiry.
    fn on_replace(&mut self, id: u32, _meta: NewMeta, now: f64) -> Fix {
        let (slot, fix) = self.ring.take(id);
        let to = self.ring.push(slot.entry, now + self.ttl);
        match fix {
            Fix::None => Fix::Moved { from: id, to },
            other => other,
        }
    }
    fn victim(&mut self) -> Option<u32> {
        self.ring.front()
    }
    fn global_ttl(&self) -> Option<f64> {
        Some(self.ttl)
    }
    fn expire_at(&self, id: u32) -> f64 {
        self.ring.get(id).meta
    }
    #[inline(always)]
    fn meta_expire_at(meta: &f64) -> f64 {
        *meta
    }
    fn next_expired(&mut self, now: f64) -> Option<u32> {
        self.ring.front().filter(|&id| self.ring.get(id).meta < now)
    }
    fn count_expired(&self, now: f64) -> usize {
        self.ring.iter_ids().take_while(|&id| self.ring.get(id).meta < now).count()
    }
    fn duplicate(&self, py: Python<'_>) -> Self {
        Self { ring: self.ring.duplicate(py), ttl: self.ttl }
    }
}
