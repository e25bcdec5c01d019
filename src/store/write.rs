//! Writes: inserts (new keys, replacements, evictions until the new entry fits), removals,
//! `clear` and `shrink_to_fit`. Everything removed goes to the caller's `Trash`.

use hashbrown::HashTable;
use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;

use super::{bucket_capacity, overflow_error, reserve_error, Cause, Charge, Probe, Store, Trash};
use crate::entry::{table_hash, Entry, BIG_SIZE};
use crate::policy::{Fix, NewMeta, Policy};

/// What an insert replaced: the old value, and whether it was live (an expired entry's value
/// is dropped by the caller and reported as absent).
pub struct Replaced {
    pub value: Py<PyAny>,
    pub live: bool,
}

/// How an insert went.
pub enum Inserted {
    New,
    Replaced(Replaced),
    /// Nothing changed: an equal but distinct key object is stored, whose size the caller must
    /// measure (outside the lock) and pass in `Charge::stored_key` before trying again.
    NeedsKeySize(Py<PyAny>),
}

/// How a `setdefault` went.
pub enum SetDefault {
    Found(Py<PyAny>),
    Inserted(Inserted),
}

impl<P: Policy> Store<P> {
    #[inline(always)]
    fn apply_fix(&mut self, fix: Fix) {
        if !matches!(fix, Fix::None) {
            self.apply_moved_fix(fix);
        }
    }

    #[inline(never)]
    fn apply_moved_fix(&mut self, fix: Fix) {
        match fix {
            Fix::None => {}
            Fix::Moved { from, to } => {
                if from != to {
                    self.generation += 1;
                    let hash = self.policy.slot(to).entry.hash;
                    if let Some(slot) = self.bucket_of(hash, from).and_then(|b| self.table.get_bucket_mut(b)) {
                        *slot = to;
                    }
                }
            }
            Fix::Reindex => {
                self.generation += 1;
                self.table.clear();
                let policy = &self.policy;
                for id in policy.ids() {
                    let hash = table_hash(policy.slot(id).entry.hash);
                    self.table.insert_unique(hash, id, |&x| table_hash(policy.slot(x).entry.hash));
                }
                self.table_moved();
            }
        }
    }

    /// Hands a removed entry to the caller's trash, armed with the listener if there is one.
    #[inline(always)]
    pub(super) fn discard(&self, trash: &mut Trash, entry: Entry, cause: Cause) {
        trash.arm(self.hooks.on_evict.as_ref());
        trash.push(entry, cause);
    }

    /// Removes entry `id` and returns it.
    pub fn remove_id(&mut self, id: u32) -> Entry {
        let hash = self.policy.slot(id).entry.hash;
        if let Some(entry) = self.bucket_of(hash, id).and_then(|b| self.table.get_bucket_entry(b).ok()) {
            entry.remove();
        }
        let (slot, fix) = self.policy.take(id);
        self.apply_fix(fix);
        self.after_removal(&slot.entry);
        slot.entry
    }

    fn after_removal(&mut self, entry: &Entry) {
        let size = self.forget_size(entry);
        self.memory = self.memory.saturating_sub(size);
        self.generation += 1;
    }

    /// Ensures room for one more entry in table and storage before anything changes, so an
    /// allocation failure leaves the cache untouched. (Like upstream, the table can therefore
    /// grow one step even when this insert then evicts.)
    pub(super) fn reserve_one(&mut self) -> PyResult<()> {
        let len = self.table.len();
        let full = bucket_capacity(self.table.num_buckets());
        if len == self.table.capacity() && len > full / 2 {
            // Full: grow to the size hashbrown would pick, but rebuild by walking the entries
            // in storage order. hashbrown's own resize walks its buckets and asks for each
            // entry's hash, a random read of the storage per entry: at a million entries that
            // made filling a cache several times slower per insert than at ten thousand.
            // hashbrown's rule: at least one more than the table holds when full (tombstones
            // from removals count against it too), so churn doubles the table rather than
            // rebuilding it at the same size again and again.
            let mut table = HashTable::new();
            table.try_reserve((len + 1).max(full + 1), |_: &u32| 0).map_err(reserve_error)?;
            let policy = &self.policy;
            for id in policy.ids() {
                let hash = table_hash(policy.slot(id).entry.hash);
                table.insert_unique(hash, id, |_| 0);
            }
            self.table = table;
            self.table_moved();
        } else {
            // Room left, or only tombstones to clear (an in-place rehash).
            let rehash = len == self.table.capacity();
            let policy = &self.policy;
            self.table.try_reserve(1, |&id| table_hash(policy.slot(id).entry.hash)).map_err(reserve_error)?;
            if rehash {
                self.table_moved();
            }
        }
        if P::EVICTS && self.len() >= self.limits.maxsize {
            // Full by count: at least one entry leaves storage before the new one comes in, so
            // the storage does not grow (a slab reuses the freed slot, a ring or a dense
            // vector is one shorter). Saves a call on every insert into a full cache.
            return Ok(());
        }
        self.policy.try_reserve(1).map_err(|_| PyMemoryError::new_err("cannot grow the cache"))
    }

    /// `insert`/`[]=`/`setdefault` of a value.
    pub fn insert(
        &mut self,
        py: Python<'_>,
        probe: &Probe<'_, '_>,
        value: &Bound<'_, PyAny>,
        charge: Charge,
        meta: NewMeta,
        trash: &mut Trash,
    ) -> PyResult<Inserted> {
        let now = match meta.now {
            Some(now) if P::EXPIRES => now,
            _ => Self::now(),
        };
        if let Some(id) = self.find(py, probe)? {
            let stored = &self.policy.slot(id).entry.key;
            let Some(size) = charge.for_key(probe.key.as_ptr() as usize, stored.as_ptr() as usize) else {
                return Ok(Inserted::NeedsKeySize(stored.clone_ref(py)));
            };
            if size > self.limits.maxmemory {
                return Err(overflow_error());
            }
            return self.replace(id, value, size, meta, now, trash).map(Inserted::Replaced);
        }
        let size = charge.key.saturating_add(charge.value);
        if size > self.limits.maxmemory {
            return Err(overflow_error());
        }
        self.insert_new(probe.key, probe.hash, value, size, meta, now, trash)?;
        Ok(Inserted::New)
    }

    /// Replaces the value of existing entry `id` (live or expired); the stored key is kept.
    fn replace(
        &mut self,
        id: u32,
        value: &Bound<'_, PyAny>,
        size: usize,
        meta: NewMeta,
        now: f64,
        trash: &mut Trash,
    ) -> PyResult<Replaced> {
        let live = !self.is_expired(id, now);
        let entry = &self.policy.slot(id).entry;
        let key_addr = entry.key.as_ptr() as usize;
        let memory = self.memory.saturating_sub(self.entry_size(entry)).saturating_add(size);
        if !P::EVICTS && memory > self.limits.maxmemory {
            return Err(overflow_error());
        }
        self.big_sizes.remove(&key_addr);
        let encoded = self.encode_size(key_addr, size);
        let slot = self.policy.slot_mut(id);
        slot.entry.size = encoded;
        let old = std::mem::replace(&mut slot.entry.value, value.clone().unbind());
        if self.hooks.on_evict.is_some() {
            trash.arm(self.hooks.on_evict.as_ref());
            let key = &self.policy.slot(id).entry.key;
            trash.notice(key, &old, if live { Cause::Replaced } else { Cause::Expired });
        }
        self.memory = memory;
        let fix = self.policy.on_replace(id, meta, now);
        self.apply_fix(fix);
        if P::EVICTS {
            // The updated entry itself may go (FIFO when it is the oldest, RR by chance).
            while self.memory > self.limits.maxmemory {
                let Some(victim) = self.policy.victim() else { break };
                let evicted = self.remove_id(victim);
                self.discard(trash, evicted, Cause::Memory);
            }
        }
        Ok(Replaced { value: old, live })
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_new(
        &mut self,
        key: &Bound<'_, PyAny>,
        hash: u32,
        value: &Bound<'_, PyAny>,
        size: usize,
        meta: NewMeta,
        now: f64,
        trash: &mut Trash,
    ) -> PyResult<()> {
        if !P::EVICTS && (self.len() >= self.limits.maxsize || self.memory.saturating_add(size) > self.limits.maxmemory)
        {
            return Err(overflow_error());
        }
        self.reserve_one()?;
        if P::EVICTS {
            self.sweep(now, trash);
            while self.len() >= self.limits.maxsize || self.memory.saturating_add(size) > self.limits.maxmemory {
                let Some(victim) = self.policy.victim() else { break };
                let cause = if self.len() >= self.limits.maxsize { Cause::Size } else { Cause::Memory };
                if P::RECYCLES && self.fits_without(victim, size) {
                    // The last eviction and the insert in one step (`Policy::recycle`): the
                    // new entry takes the victim's slot. The same outcome as `remove_id` then
                    // a push, without freeing and refilling a slot.
                    let victim_hash = self.policy.slot(victim).entry.hash;
                    if let Some(b) = self.bucket_of(victim_hash, victim) {
                        if let Ok(entry) = self.table.get_bucket_entry(b) {
                            entry.remove();
                        }
                    }
                    let entry = self.new_entry(key, hash, value, size);
                    let (id, old) = self.policy.recycle(victim, entry, meta, now);
                    self.after_removal(&old);
                    self.discard(trash, old, cause);
                    self.index_new(id, hash, size);
                    self.prefetch_next_victim();
                    return Ok(());
                }
                let evicted = self.remove_id(victim);
                self.discard(trash, evicted, cause);
            }
        }
        let entry = self.new_entry(key, hash, value, size);
        let id = self.policy.push(entry, meta, now);
        self.index_new(id, hash, size);
        self.generation += 1;
        self.prefetch_next_victim();
        Ok(())
    }

    /// Starts loading what evicting the next victim will read (its table group and bucket),
    /// so a run of inserts into a full cache finds them in cache.
    #[inline(always)]
    fn prefetch_next_victim(&self) {
        if P::EVICTS && self.len() >= self.limits.maxsize {
            if let Some(victim) = self.policy.next_victim() {
                let hash = table_hash(self.policy.slot(victim).entry.hash);
                self.prefetch_home_bucket(hash);
                // Its control group: the control bytes start where the buckets end.
                crate::prefetch::prefetch(self.bucket_end.wrapping_add(self.home(hash)));
            }
        }
    }

    /// Puts a new entry's id in the table and charges its size.
    #[inline(always)]
    fn index_new(&mut self, id: u32, hash: u32, size: usize) {
        let policy = &self.policy;
        let at = self.table.insert_unique(table_hash(hash), id, |&x| table_hash(policy.slot(x).entry.hash));
        let bucket = at.bucket_index();
        self.bucket_end = std::ptr::from_ref(at.get()) as usize + (bucket + 1) * std::mem::size_of::<u32>();
        self.policy.note_bucket(id, bucket);
        self.memory = self.memory.saturating_add(size);
    }

    /// Whether an entry of `size` fits once `victim` is gone.
    #[inline]
    fn fits_without(&self, victim: u32, size: usize) -> bool {
        let victim_size = match self.policy.slot(victim).entry.size {
            BIG_SIZE => return false,
            small => small as usize,
        };
        self.len() <= self.limits.maxsize
            && self.memory.saturating_sub(victim_size).saturating_add(size) <= self.limits.maxmemory
    }

    /// The entry an insert stores: new references to the key and the value.
    #[inline(always)]
    fn new_entry(&mut self, key: &Bound<'_, PyAny>, hash: u32, value: &Bound<'_, PyAny>, size: usize) -> Entry {
        let encoded = self.encode_size(key.as_ptr() as usize, size);
        Entry { key: key.clone().unbind(), value: value.clone().unbind(), hash, size: encoded }
    }

    /// The first half of `setdefault`: the live value of the key, with the policy's
    /// setdefault touch; `None` if it must be inserted.
    pub fn setdefault_hit(&mut self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(id) = self.find_live(py, probe)? else { return Ok(None) };
        self.policy.on_setdefault_hit(id);
        Ok(Some(self.policy.slot(id).entry.value.clone_ref(py)))
    }

    /// Removes a live key; returns the entry and its expiry instant. An expired entry is left
    /// for the next sweep.
    pub fn pop(&mut self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<(Entry, f64)>> {
        let Some(id) = self.find_live(py, probe)? else { return Ok(None) };
        // The LFU/VTTL model sorts before removing a specific key (BEHAVIOUR.md §6.7); ids are stable
        // across `settle`, which only reorders.
        self.policy.settle();
        Ok(Some(self.remove_with_expiry(id)))
    }

    /// Removes the entry at the head of the policy order (expired entries are swept first);
    /// returns it with its expiry instant.
    pub fn popitem(&mut self, trash: &mut Trash) -> Option<(Entry, f64)> {
        self.sweep(Self::now(), trash);
        let id = self.policy.victim()?;
        Some(self.remove_with_expiry(id))
    }

    fn remove_with_expiry(&mut self, id: u32) -> (Entry, f64) {
        let expire_at = self.policy.expire_at(id);
        (self.remove_id(id), expire_at)
    }

    pub fn clear(&mut self, reuse: bool, trash: &mut Trash) {
        trash.arm(self.hooks.on_evict.as_ref());
        trash.push_all(Cause::Explicit, |removed| self.policy.clear(removed));
        self.table.clear();
        self.big_sizes.clear();
        if !reuse {
            self.table.shrink_to_fit(|_| 0);
            // Empty now: nothing to renumber.
            let _ = self.policy.shrink_to_fit();
            self.big_sizes.shrink_to_fit();
        }
        self.bucket_end = 0;
        self.memory = 0;
        self.generation += 1;
    }

    /// Shrinks the table to the smallest size that holds the live entries.
    pub fn shrink_to_fit(&mut self, trash: &mut Trash) {
        self.sweep(Self::now(), trash);
        let fix = self.policy.shrink_to_fit();
        self.apply_fix(fix);
        let policy = &self.policy;
        self.table.shrink_to_fit(|&id| table_hash(policy.slot(id).entry.hash));
        self.table_moved();
        self.generation += 1;
    }
}
