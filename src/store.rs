//! `Store<P>`: every mapping operation, written once for all policies.
//!
//! The store runs no Python code except a key's `__eq__` during probes (hashes and sizes are
//! computed by the caller before locking). Entries it removes are pushed to a `trash` vector
//! that the caller drops after unlocking, because dropping a value can run arbitrary Python
//! (`__del__`, weakref callbacks) that might call back into this cache.

use std::collections::HashMap;

use hashbrown::HashTable;
use pyo3::exceptions::{PyMemoryError, PyOverflowError};
use pyo3::prelude::*;

use crate::clock;
use crate::entry::{table_hash, Entry, Slot, BIG_SIZE};
use crate::policy::{Fix, NewMeta, Policy};
use crate::sync::Owner;

/// Runs the stored key's `__eq__` against the probe's key (out of line: the hot probe loop
/// stays small, and the owner is marked only when Python really runs under the lock).
///
/// `PyObject_RichCompareBool`, what a dict does, rather than `Bound::eq` (a compare, then a
/// truth test of the result object): a decorator hit compares freshly built argument tuples
/// every time.
#[inline(never)]
fn keys_equal(py: Python<'_>, stored: &Py<PyAny>, probe: &Probe<'_, '_>) -> PyResult<bool> {
    rich_eq(py, probe.owner, stored.bind(py), probe.key)
}

/// `stored == probe` as a dict decides it, marking the lock's owner first (the comparison
/// runs Python code under the lock).
#[allow(unsafe_code)]
fn rich_eq(py: Python<'_>, owner: &Owner, stored: &Bound<'_, PyAny>, probe: &Bound<'_, PyAny>) -> PyResult<bool> {
    owner.mark(py);
    // SAFETY: both are live objects (the stored key is owned by the store, the probe's key is
    // borrowed by the caller) and the thread is attached (`py`).
    match unsafe { pyo3::ffi::PyObject_RichCompareBool(stored.as_ptr(), probe.as_ptr(), pyo3::ffi::Py_EQ) } {
        -1 => Err(PyErr::take(py)
            .unwrap_or_else(|| pyo3::exceptions::PySystemError::new_err("key comparison failed without an exception"))),
        result => Ok(result == 1),
    }
}

/// Whether the stored key equals the tuple `items` would make, compared item by item as
/// `tuple.__eq__` does; `None` when the stored key is not an exact tuple (its own `__eq__`
/// must then decide, against a real tuple).
#[inline(never)]
fn items_equal(
    py: Python<'_>,
    owner: &Owner,
    stored: &Py<PyAny>,
    items: &[Bound<'_, PyAny>],
) -> PyResult<Option<bool>> {
    let Ok(stored) = stored.bind(py).cast_exact::<pyo3::types::PyTuple>() else { return Ok(None) };
    let stored = stored.as_slice();
    if stored.len() != items.len() {
        return Ok(Some(false));
    }
    for (a, b) in stored.iter().zip(items) {
        if a.as_ptr() != b.as_ptr() && !rich_eq(py, owner, a, b)? {
            return Ok(Some(false));
        }
    }
    Ok(Some(true))
}

/// A live id and its slot, as a probe found them.
type Found<'s, M> = (u32, &'s Slot<M>);

/// What looking up a key given as the items of a tuple found.
pub enum ItemsLookup<T> {
    Found(T),
    Absent,
    /// An entry with the same hash whose key is not an exact tuple: only a real tuple can be
    /// compared with it.
    Undecided,
}

impl<T> ItemsLookup<T> {
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ItemsLookup<U> {
        match self {
            Self::Found(found) => ItemsLookup::Found(f(found)),
            Self::Absent => ItemsLookup::Absent,
            Self::Undecided => ItemsLookup::Undecided,
        }
    }
}

impl<T> From<Option<T>> for ItemsLookup<T> {
    #[inline]
    fn from(found: Option<T>) -> Self {
        found.map_or(Self::Absent, Self::Found)
    }
}

/// `maxsize`/`maxmemory` of 0 mean "no limit", reported as `sys.maxsize`.
pub const UNLIMITED: usize = isize::MAX as usize;

/// Objects removed under the lock, dropped by the caller after unlocking. Most operations
/// remove at most one entry, which is kept inline: no heap allocation on the hot path.
/// Dropping releases the references through `Bound`, which decrefs at once; a `Py` drop would
/// first look up (in a thread-local) whether this thread is attached, on every eviction.
pub struct Trash<'py> {
    py: Python<'py>,
    first: Option<Entry>,
    /// Entries beyond the first. Rare, so boxed: a `Trash` is then three words, cheap to set
    /// up and tear down on every insert (a bare `Vec` costs measurably more there).
    #[allow(clippy::box_collection)]
    spill: Option<Box<Vec<Entry>>>,
}

impl Drop for Trash<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(entry) = self.first.take() {
            entry.release(self.py);
        }
        if let Some(spill) = self.spill.take() {
            release_all(*spill, self.py);
        }
    }
}

#[inline(never)]
fn release_all(entries: Vec<Entry>, py: Python<'_>) {
    for entry in entries {
        entry.release(py);
    }
}

impl<'py> Trash<'py> {
    #[inline]
    pub fn new(py: Python<'py>) -> Self {
        Self { py, first: None, spill: None }
    }

    fn spill(&mut self) -> &mut Vec<Entry> {
        self.spill.get_or_insert_with(Box::default)
    }

    #[inline(always)]
    pub fn push(&mut self, entry: Entry) {
        if self.first.is_none() {
            self.first = Some(entry);
        } else {
            self.push_spilled(entry);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_spilled(&mut self, entry: Entry) {
        self.spill().push(entry);
    }

    /// Room for a bulk removal (`clear`).
    pub fn bulk(&mut self) -> &mut Vec<Entry> {
        self.spill()
    }

    /// How many entries were removed.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.spill.as_ref().map_or(0, |spill| spill.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the removed entries out (the fuzz target checks them against its model).
    #[doc(hidden)]
    pub fn take_entries(&mut self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self.first.take().into_iter().collect();
        if let Some(spill) = self.spill.take() {
            out.extend(*spill);
        }
        out
    }
}

pub fn overflow_error() -> PyErr {
    PyOverflowError::new_err("The cache has reached the bound")
}

/// Limits a cache was configured with.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub maxsize: usize,
    pub maxmemory: usize,
}

impl Limits {
    pub fn new(maxsize: usize, maxmemory: usize) -> Self {
        let unlimited = |n: usize| if n == 0 || n > UNLIMITED { UNLIMITED } else { n };
        Self { maxsize: unlimited(maxsize), maxmemory: unlimited(maxmemory) }
    }
}

/// A key as probed: the object, its folded hash, and the owner marker of the lock held while
/// probing (the probe marks it before running the key's `__eq__`).
pub struct Probe<'a, 'py> {
    pub key: &'a Bound<'py, PyAny>,
    pub hash: u32,
    pub owner: &'a Owner,
}

pub struct Store<P: Policy> {
    /// False until `__init__` (or `__setstate__`) configured the cache.
    pub ready: bool,
    table: HashTable<u32>,
    pub policy: P,
    pub limits: Limits,
    memory: usize,
    /// Bumped by every change that can invalidate an iterator's position.
    generation: u64,
    /// Entry sizes that do not fit the entry's 32-bit field, by key address.
    big_sizes: HashMap<usize, usize>,
    /// One past the table's bucket array, for prefetching: hashbrown stores bucket `i` at
    /// `end - (i + 1)` and the control bytes from `end` on. Kept up to date after every
    /// reallocation, and only ever used as a hint (a stale value costs a useless prefetch).
    bucket_end: usize,
}

impl<P: Policy + Default> Store<P> {
    pub fn new(limits: Limits) -> Self {
        Self::with_policy(P::default(), limits)
    }
}

impl<P: Policy> Store<P> {
    pub fn with_policy(policy: P, limits: Limits) -> Self {
        Self {
            ready: true,
            table: HashTable::new(),
            policy,
            limits,
            memory: 0,
            generation: 0,
            big_sizes: HashMap::new(),
            bucket_end: 0,
        }
    }

    /// Pre-allocates room for `capacity` entries (capped by `maxsize`).
    pub fn reserve(&mut self, capacity: usize) -> PyResult<()> {
        let n = capacity.min(self.limits.maxsize);
        if n == 0 {
            return Ok(());
        }
        let policy = &self.policy;
        self.table.try_reserve(n, |&id| table_hash(policy.slot(id).entry.hash)).map_err(reserve_error)?;
        self.table_moved();
        self.policy.try_reserve(n).map_err(|_| PyMemoryError::new_err("cannot allocate the requested capacity"))
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.policy.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn memory(&self) -> usize {
        self.memory
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes allocated by the table and the policy (not counting keys and values).
    pub fn allocated_bytes(&self) -> usize {
        self.table.allocation_size() + self.policy.allocated_bytes()
    }

    #[inline]
    pub fn now() -> f64 {
        if P::EXPIRES {
            clock::now()
        } else {
            0.0
        }
    }

    #[inline]
    fn is_expired(&self, id: u32, now: f64) -> bool {
        P::EXPIRES && self.policy.expire_at(id) < now
    }

    #[inline]
    pub fn entry(&self, id: u32) -> &Entry {
        &self.policy.slot(id).entry
    }

    pub fn entry_size(&self, entry: &Entry) -> usize {
        if entry.size == BIG_SIZE {
            self.big_sizes.get(&(entry.key.as_ptr() as usize)).copied().unwrap_or(BIG_SIZE as usize)
        } else {
            entry.size as usize
        }
    }

    fn encode_size(&mut self, key_addr: usize, size: usize) -> u32 {
        match u32::try_from(size) {
            Ok(s) if s != BIG_SIZE => s,
            _ => {
                self.big_sizes.insert(key_addr, size);
                BIG_SIZE
            }
        }
    }

    fn forget_size(&mut self, entry: &Entry) -> usize {
        if entry.size == BIG_SIZE {
            self.big_sizes.remove(&(entry.key.as_ptr() as usize)).unwrap_or(BIG_SIZE as usize)
        } else {
            entry.size as usize
        }
    }

    /// Finds the id of `probe`'s key. Only a key's `__eq__` can run here; its errors propagate.
    #[inline(always)]
    pub fn find(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<u32>> {
        Ok(self.find_slot(py, probe)?.map(|(id, _)| id))
    }

    /// `find`, also returning the slot it compared, so that an expiry check or a `peek` reads
    /// it without indexing the storage a second time (a ring or slab lookup is a bounds and
    /// liveness check each).
    ///
    /// Walks the candidate buckets itself rather than using `HashTable::find`, whose
    /// comparison goes through a `dyn FnMut` call per candidate. `iter_hash_buckets` rather
    /// than `iter_hash`: measured, `iter_hash` saved 3 instructions on a hit but cost 12 and
    /// 4 ns on an LRU insert.
    #[inline(always)]
    fn find_slot(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<Found<'_, P::Meta>>> {
        let hash = table_hash(probe.hash);
        for bucket in self.table.iter_hash_buckets(hash) {
            self.prefetch_home_bucket(hash);
            let Some(&id) = self.table.get_bucket(bucket) else { continue };
            let slot = self.policy.slot(id);
            if slot.entry.hash != probe.hash {
                continue;
            }
            if slot.entry.key.as_ptr() == probe.key.as_ptr() || keys_equal(py, &slot.entry.key, probe)? {
                return Ok(Some((id, slot)));
            }
        }
        Ok(None)
    }

    /// `find` for the key `(*items,)` without building it; `hash` is that tuple's (folded).
    pub fn find_items(
        &self,
        py: Python<'_>,
        hash: u32,
        owner: &Owner,
        items: &[Bound<'_, PyAny>],
    ) -> PyResult<ItemsLookup<Found<'_, P::Meta>>> {
        let hash64 = table_hash(hash);
        for &id in self.table.iter_hash(hash64) {
            self.prefetch_home_bucket(hash64);
            let slot = self.policy.slot(id);
            if slot.entry.hash != hash {
                continue;
            }
            match items_equal(py, owner, &slot.entry.key, items)? {
                Some(true) => return Ok(ItemsLookup::Found((id, slot))),
                Some(false) => {}
                None => return Ok(ItemsLookup::Undecided),
            }
        }
        Ok(ItemsLookup::Absent)
    }

    /// `get` for the key `(*items,)` without building it (see `find_items`).
    #[inline(always)]
    pub fn get_items<T>(
        &mut self,
        py: Python<'_>,
        hash: u32,
        owner: &Owner,
        items: &[Bound<'_, PyAny>],
        read: impl FnOnce(&Entry) -> T,
    ) -> PyResult<ItemsLookup<T>> {
        Ok(match self.find_items(py, hash, owner, items)? {
            ItemsLookup::Found((_, slot)) if P::EXPIRES && clock::expired(P::meta_expire_at(&slot.meta)) => {
                ItemsLookup::Absent
            }
            ItemsLookup::Found((id, slot)) => {
                // The read from the slot found, then the touch: the reverse of `get`, and
                // measured too, on a decorator hit over an LRU cache (683 instructions against
                // 698, 1.3 ns).
                let out = read(&slot.entry);
                self.policy.on_hit(id);
                ItemsLookup::Found(out)
            }
            ItemsLookup::Absent => ItemsLookup::Absent,
            ItemsLookup::Undecided => ItemsLookup::Undecided,
        })
    }

    /// Starts loading the bucket where a probe for `hash` begins, alongside the control bytes
    /// that say whether it matches: the two loads then overlap instead of one waiting for the
    /// other (the table's layout puts them in different cache lines).
    #[inline(always)]
    fn prefetch_home_bucket(&self, hash: u64) {
        crate::prefetch::prefetch(self.bucket_end.wrapping_sub((self.home(hash) + 1) * std::mem::size_of::<u32>()));
    }

    /// The bucket where a probe for `hash` starts (hashbrown's first group begins there).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let hash = hash as usize;
        hash & self.table.num_buckets().wrapping_sub(1)
    }

    /// After the table may have moved or rehashed: notes where its bucket array ends and, for
    /// a policy that keeps bucket hints, where each id now sits.
    fn table_moved(&mut self) {
        self.bucket_end = self.current_bucket_end();
        if P::BUCKET_HINTS {
            for bucket in 0..self.table.num_buckets() {
                if let Some(&id) = self.table.get_bucket(bucket) {
                    self.policy.note_bucket(id, bucket);
                }
            }
        }
    }

    /// Where the bucket array ends, found from any occupied bucket's address (0 when empty).
    fn current_bucket_end(&self) -> usize {
        let first = self.table.iter().next().copied();
        first
            .and_then(|id| {
                let bucket = self.bucket_of(self.policy.slot(id).entry.hash, id)?;
                let at = self.table.get_bucket(bucket)?;
                Some(std::ptr::from_ref(at) as usize + (bucket + 1) * std::mem::size_of::<u32>())
            })
            .unwrap_or(0)
    }

    /// The table bucket that holds `id` (whose entry has folded hash `hash`).
    #[inline]
    fn bucket_of(&self, hash: u32, id: u32) -> Option<usize> {
        if let Some(bucket) = self.policy.bucket_hint(id) {
            if self.table.get_bucket(bucket) == Some(&id) {
                return Some(bucket);
            }
        }
        let hash = table_hash(hash);
        self.table.iter_hash_buckets(hash).find(|&b| {
            self.prefetch_home_bucket(hash);
            self.table.get_bucket(b) == Some(&id)
        })
    }

    /// The id of a live entry for `probe`, if any. The clock is read only when an entry is
    /// found (a miss costs no clock read).
    #[inline(always)]
    pub fn find_live(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<u32>> {
        Ok(self.find_live_slot(py, probe)?.map(|(id, _)| id))
    }

    #[inline(always)]
    fn find_live_slot(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<Found<'_, P::Meta>>> {
        Ok(self.find_slot(py, probe)?.filter(|(_, slot)| !P::EXPIRES || !clock::expired(P::meta_expire_at(&slot.meta))))
    }

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

    /// Physically removes every expired entry.
    pub fn sweep(&mut self, now: f64, trash: &mut Trash) {
        if P::EXPIRES {
            let generation = self.generation;
            while let Some(id) = self.policy.next_expired(now) {
                trash.push(self.remove_id(id));
            }
            if P::SWEEP_ON_LEN {
                // VTTL sweeps on `len()`, `repr`, `==`, ...: its iterators resume by sort key,
                // which survives removals, so these sweeps must not invalidate them (or
                // `list(c)`, which calls `len(c)`, would fail right after an expiry).
                self.generation = generation;
            }
        }
    }
}

/// Entries a table with `buckets` buckets holds (hashbrown's load factor: 7/8, or one less
/// than the bucket count for tiny tables).
fn bucket_capacity(buckets: usize) -> usize {
    if buckets < 8 {
        buckets.saturating_sub(1)
    } else {
        buckets / 8 * 7
    }
}

fn reserve_error(e: hashbrown::TryReserveError) -> PyErr {
    match e {
        hashbrown::TryReserveError::CapacityOverflow => {
            PyMemoryError::new_err("cannot allocate the requested capacity")
        }
        hashbrown::TryReserveError::AllocError { .. } => {
            PyMemoryError::new_err("cannot allocate the requested capacity")
        }
    }
}

/// What an insert replaced: the old value, and whether it was live (an expired entry's value
/// is dropped by the caller and reported as absent).
pub struct Replaced {
    pub value: Py<PyAny>,
    pub live: bool,
}

/// The `__sizeof__` figures an insert is charged with, measured before locking.
#[derive(Clone, Copy, Debug, Default)]
pub struct Charge {
    pub key: usize,
    pub value: usize,
    /// The size of the key object already stored (by address), when it is not the probe's.
    pub stored_key: Option<(usize, usize)>,
}

impl Charge {
    /// An entry of `size` bytes in all (tests).
    pub fn total(size: usize) -> Self {
        Self { key: size, value: 0, stored_key: None }
    }

    /// The charge of the entry once written, if known: an update keeps the stored key, so it
    /// is charged with that key's size, which the caller may have to measure first.
    fn for_key(&self, probe_key: usize, stored_key: usize) -> Option<usize> {
        if probe_key == stored_key {
            return Some(self.key.saturating_add(self.value));
        }
        match self.stored_key {
            Some((addr, size)) if addr == stored_key => Some(size.saturating_add(self.value)),
            _ => None,
        }
    }
}

/// How an insert went.
pub enum Inserted {
    New,
    Replaced(Replaced),
    /// Nothing changed: an equal but distinct key object is stored, whose size the caller must
    /// measure (outside the lock) and pass in `Charge::stored_key` before trying again.
    NeedsKeySize(Py<PyAny>),
}

/// A walk's store changed under it (an insert or a removal), so its position is meaningless.
#[derive(Debug)]
pub struct Changed;

/// How a `setdefault` went.
pub enum SetDefault {
    Found(Py<PyAny>),
    Inserted(Inserted),
}

/// What `iter_*` needs to walk a store: where it is, the generation it started from and the
/// instant before which entries count as expired.
pub struct Walk<C> {
    pub cursor: C,
    pub generation: u64,
    pub now: f64,
    /// Live entries when the walk started: a walk never yields more, even if reads reorder
    /// entries under it (an LRU read moves the entry to the end).
    pub remaining: usize,
}

impl<P: Policy> Store<P> {
    /// `[]`/`get`/`in`: a read that touches the policy (LRU move, LFU +1).
    #[inline(always)]
    pub fn get<T>(
        &mut self,
        py: Python<'_>,
        probe: &Probe<'_, '_>,
        read: impl FnOnce(&Entry) -> T,
    ) -> PyResult<Option<T>> {
        let Some((id, _)) = self.find_live_slot(py, probe)? else { return Ok(None) };
        // The policy's touch first, then the read through a fresh lookup: reading the slot
        // found before the touch measured 2 ns slower on an LFU hit.
        self.policy.on_hit(id);
        Ok(Some(read(&self.policy.slot(id).entry)))
    }

    /// A read with no policy touch; also returns the expiry instant.
    pub fn peek(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<(&Py<PyAny>, f64)>> {
        Ok(self.find_live_slot(py, probe)?.map(|(_, slot)| (&slot.entry.value, P::meta_expire_at(&slot.meta))))
    }

    /// Ensures room for one more entry in table and storage before anything changes, so an
    /// allocation failure leaves the cache untouched. (Like upstream, the table can therefore
    /// grow one step even when this insert then evicts.)
    fn reserve_one(&mut self) -> PyResult<()> {
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
        self.memory = memory;
        let fix = self.policy.on_replace(id, meta, now);
        self.apply_fix(fix);
        if P::EVICTS {
            // The updated entry itself may go (FIFO when it is the oldest, RR by chance).
            while self.memory > self.limits.maxmemory {
                let Some(victim) = self.policy.victim() else { break };
                trash.push(self.remove_id(victim));
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
                if P::RECYCLES && self.fits_without(victim, size) {
                    // The last eviction: the new entry takes the victim's slot.
                    self.insert_recycling(victim, key, hash, value, size, meta, now, trash);
                    return Ok(());
                }
                trash.push(self.remove_id(victim));
            }
        }
        let key_addr = key.as_ptr() as usize;
        let encoded = self.encode_size(key_addr, size);
        let entry = Entry { key: key.clone().unbind(), value: value.clone().unbind(), hash, size: encoded };
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

    /// `insert_new`'s last eviction and the insert in one step (`Policy::recycle`): the same
    /// outcome as `remove_id(victim)` then a push, without freeing and refilling a slot.
    #[allow(clippy::too_many_arguments)]
    fn insert_recycling(
        &mut self,
        victim: u32,
        key: &Bound<'_, PyAny>,
        hash: u32,
        value: &Bound<'_, PyAny>,
        size: usize,
        meta: NewMeta,
        now: f64,
        trash: &mut Trash,
    ) {
        let victim_hash = self.policy.slot(victim).entry.hash;
        if let Some(entry) = self.bucket_of(victim_hash, victim).and_then(|b| self.table.get_bucket_entry(b).ok()) {
            entry.remove();
        }
        let encoded = self.encode_size(key.as_ptr() as usize, size);
        let entry = Entry { key: key.clone().unbind(), value: value.clone().unbind(), hash, size: encoded };
        let (id, old) = self.policy.recycle(victim, entry, meta, now);
        self.after_removal(&old);
        trash.push(old);
        self.index_new(id, hash, size);
        self.prefetch_next_victim();
    }

    /// `setdefault`: the live value if present (with the policy's setdefault touch), else
    /// inserts `default`.
    pub fn setdefault(
        &mut self,
        py: Python<'_>,
        probe: &Probe<'_, '_>,
        default: &Bound<'_, PyAny>,
        charge: Charge,
        meta: NewMeta,
        trash: &mut Trash,
    ) -> PyResult<SetDefault> {
        if let Some(id) = self.find_live(py, probe)? {
            self.policy.on_setdefault_hit(id);
            return Ok(SetDefault::Found(self.policy.slot(id).entry.value.clone_ref(py)));
        }
        self.insert(py, probe, default, charge, meta, trash).map(SetDefault::Inserted)
    }

    /// Removes a live key; returns the entry and its expiry instant. An expired entry is left
    /// for the next sweep.
    pub fn pop(&mut self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<(Entry, f64)>> {
        let Some(id) = self.find_live(py, probe)? else { return Ok(None) };
        // The LFU/VTTL model sorts before removing a specific key (SPEC §4.5); ids are stable
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
        self.policy.clear(trash.bulk());
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
}

impl<P: Policy> Store<P> {
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

    /// Live entries. TTL counts them without sweeping; VTTL sweeps (SPEC §5).
    pub fn live_len(&mut self, trash: &mut Trash) -> usize {
        if !P::EXPIRES {
            return self.len();
        }
        let now = Self::now();
        if P::SWEEP_ON_LEN {
            self.sweep(now, trash);
            self.len()
        } else {
            self.len() - self.policy.count_expired(now)
        }
    }

    /// Live entries, counted without sweeping (`is_empty`, `bool`, `is_full`).
    pub fn live_count(&self) -> usize {
        if P::EXPIRES {
            self.len() - self.policy.count_expired(Self::now())
        } else {
            self.len()
        }
    }

    pub fn is_full(&self) -> bool {
        self.live_count() >= self.limits.maxsize || self.memory >= self.limits.maxmemory
    }

    /// Starts a walk in policy order. TTL sweeps first, so expiry never invalidates it.
    pub fn walk(&mut self, trash: &mut Trash) -> Walk<P::Cursor> {
        let now = Self::now();
        if P::EXPIRES && !P::SWEEP_ON_LEN {
            self.sweep(now, trash);
        }
        self.policy.settle();
        let remaining = self.len() - if P::EXPIRES { self.policy.count_expired(now) } else { 0 };
        Walk { cursor: self.policy.cursor(), generation: self.generation, now, remaining }
    }

    /// The next live id of a walk, or `Err(Changed)` when the store changed since it started.
    pub fn step(&self, walk: &mut Walk<P::Cursor>) -> Result<Option<u32>, Changed> {
        if walk.generation != self.generation {
            return Err(Changed);
        }
        if walk.remaining == 0 {
            return Ok(None);
        }
        while let Some(id) = self.policy.advance(&mut walk.cursor) {
            if !self.is_expired(id, walk.now) {
                walk.remaining -= 1;
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// The id at position `n` of the live policy order (negative counts from the end).
    pub fn nth(&mut self, n: isize, trash: &mut Trash) -> Option<u32> {
        self.sweep(Self::now(), trash);
        self.policy.settle();
        self.policy.nth(n)
    }

    /// Every stored entry, expired ones included (GC traversal).
    pub fn visit(&self, f: &mut dyn FnMut(&Entry)) {
        self.policy.visit(f);
    }

    /// An independent copy holding the same key and value objects.
    pub fn duplicate(&self, py: Python<'_>) -> Self {
        let mut copy = Self {
            ready: self.ready,
            table: self.table.clone(),
            policy: self.policy.duplicate(py),
            limits: self.limits,
            memory: self.memory,
            generation: 0,
            big_sizes: self.big_sizes.clone(),
            bucket_end: 0,
        };
        copy.table_moved();
        copy
    }

    /// Live entries in policy order (pickling, copies, equality, repr).
    pub fn ordered_ids(&mut self, trash: &mut Trash) -> Vec<u32> {
        let mut walk = self.walk(trash);
        let mut out = Vec::with_capacity(self.len());
        while let Ok(Some(id)) = self.step(&mut walk) {
            out.push(id);
        }
        out
    }
}

impl<P: Policy> Store<P> {
    /// Checks the store's internal consistency (for the fuzz target; O(n), calls Python `hash`):
    /// table and policy hold the same ids, every entry is findable under its own hash, the
    /// stored hash is the key's, sizes add up to `memory`, the side map holds exactly the big
    /// sizes, and the limits hold.
    #[doc(hidden)]
    pub fn check_invariants(&self, py: Python<'_>) -> Result<(), String> {
        let ids = self.policy.ids();
        if ids.len() != self.policy.len() {
            return Err(format!("policy lists {} ids but has len {}", ids.len(), self.policy.len()));
        }
        if self.table.len() != ids.len() {
            return Err(format!("table holds {} ids, policy {}", self.table.len(), ids.len()));
        }
        if !ids.is_empty() && self.bucket_end != self.current_bucket_end() {
            return Err("the prefetch hint points at a table that moved".to_owned());
        }
        let mut memory: u128 = 0;
        let mut big = 0usize;
        for &id in &ids {
            let entry = self.entry(id);
            let hits = self.table.iter_hash(table_hash(entry.hash)).filter(|&&x| x == id).count();
            if hits != 1 {
                return Err(format!("id {id} is in the table {hits} times under its hash"));
            }
            if P::BUCKET_HINTS {
                let hint = self.policy.bucket_hint(id);
                if hint.and_then(|b| self.table.get_bucket(b)) != Some(&id) {
                    return Err(format!("id {id}: bucket hint {hint:?} is stale"));
                }
            }
            let hash = crate::convert::hash_key(entry.key.bind(py)).map_err(|e| e.to_string())?;
            if hash != entry.hash {
                return Err(format!("id {id}: stored hash {} but the key hashes to {hash}", entry.hash));
            }
            if entry.size == BIG_SIZE {
                big += 1;
                if !self.big_sizes.contains_key(&(entry.key.as_ptr() as usize)) {
                    return Err(format!("id {id}: big size missing from the side map"));
                }
            }
            memory += self.entry_size(entry) as u128;
        }
        if big != self.big_sizes.len() {
            return Err(format!("{big} big entries but {} side-map sizes", self.big_sizes.len()));
        }
        if memory != self.memory as u128 {
            return Err(format!("memory is {} but the entries add up to {memory}", self.memory));
        }
        if ids.len() > self.limits.maxsize {
            return Err(format!("{} entries over maxsize {}", ids.len(), self.limits.maxsize));
        }
        if self.memory > self.limits.maxmemory {
            return Err(format!("memory {} over maxmemory {}", self.memory, self.limits.maxmemory));
        }
        if self.table.capacity() < ids.len() {
            return Err(format!("capacity {} below len {}", self.table.capacity(), ids.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use pyo3::types::PyInt;

    use super::*;
    use crate::convert::hash_key;
    use crate::policy::{Fifo, Lfu, Lru, Ttl, Unordered, Vttl};

    /// Inserts int keys with unit sizes; returns the trash count.
    fn put<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64, meta: NewMeta) -> usize {
        let key = PyInt::new(py, k).into_any();
        let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
        let mut trash = Trash::new(py);
        s.insert(py, &probe, &key, Charge::total(1), meta, &mut trash).unwrap();
        trash.len()
    }

    fn hit<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64) -> bool {
        let key = PyInt::new(py, k).into_any();
        let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
        s.get(py, &probe, |_| ()).unwrap().is_some()
    }

    fn del<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64) -> bool {
        let key = PyInt::new(py, k).into_any();
        let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
        s.pop(py, &probe).unwrap().is_some()
    }

    fn keys<P: Policy>(py: Python<'_>, s: &mut Store<P>) -> Vec<i64> {
        let mut trash = Trash::new(py);
        let ids = s.ordered_ids(&mut trash);
        ids.iter().map(|&id| s.entry(id).key.bind(py).extract().unwrap()).collect()
    }

    fn store<P: Policy>(maxsize: usize) -> Store<P> {
        Store::new(Limits::new(maxsize, 0))
    }

    /// A store of `maxsize` holding the int keys `0..n`, inserted in order.
    fn filled<P: Policy>(py: Python<'_>, maxsize: usize, n: i64) -> Store<P> {
        let mut s = store::<P>(maxsize);
        for k in 0..n {
            put(py, &mut s, k, NewMeta::default());
        }
        s
    }

    #[test]
    fn lru_evicts_least_recently_used_and_survives_relocation() {
        Python::attach(|py| {
            let mut s = filled::<Lru>(py, 4, 4);
            assert!(hit(py, &mut s, 0));
            assert!(del(py, &mut s, 1)); // moves the last slot into the hole
            put(py, &mut s, 4, NewMeta::default());
            put(py, &mut s, 5, NewMeta::default());
            assert_eq!(keys(py, &mut s), vec![3, 0, 4, 5]);
            for k in [3, 0, 4, 5] {
                assert!(hit(py, &mut s, k), "{k} must be findable after relocations");
            }
        });
    }

    #[test]
    fn fifo_ring_compacts_tombstones_and_keeps_order() {
        Python::attach(|py| {
            let mut s = filled::<Fifo>(py, 0, 200);
            for k in (1..200).step_by(2) {
                assert!(del(py, &mut s, k));
            }
            let expected: Vec<i64> = (0..200).step_by(2).collect();
            assert_eq!(keys(py, &mut s), expected);
            for k in expected {
                assert!(hit(py, &mut s, k));
            }
            assert_eq!(s.policy.nth(-1).map(|id| s.entry(id).key.bind(py).extract::<i64>().unwrap()), Some(198));
        });
    }

    #[test]
    fn unordered_relocates_on_removal() {
        Python::attach(|py| {
            let mut s = store::<Unordered<true>>(3);
            for k in 0..50 {
                assert!(put(py, &mut s, k, NewMeta::default()) <= 1);
                assert!(s.len() <= 3);
            }
            let live = keys(py, &mut s);
            assert_eq!(live.len(), 3);
            for k in live {
                assert!(hit(py, &mut s, k));
            }
        });
    }

    #[test]
    fn lfu_follows_the_lazy_stable_sort_model() {
        // SPEC §3.5: after these writes and reads, `c[5] = 4` evicts 2 and the order is
        // [5, 3, 4, 1, 0].
        Python::attach(|py| {
            let mut s = filled::<Lfu>(py, 5, 5);
            for (k, n) in [(0, 10), (1, 7), (2, 3), (3, 4), (4, 6)] {
                for _ in 0..n {
                    assert!(hit(py, &mut s, k));
                    put(py, &mut s, k, NewMeta::default());
                }
            }
            put(py, &mut s, 5, NewMeta::default());
            assert_eq!(keys(py, &mut s), vec![5, 3, 4, 1, 0]);
        });
    }

    #[test]
    fn lfu_ties_keep_the_order_of_the_last_sort() {
        // S = [a(1), b(2)] after a sort; a and b then both reach 3: a stays first, although b
        // was touched first (an eager reorder would put b first).
        Python::attach(|py| {
            let mut s = store::<Lfu>(0);
            put(py, &mut s, 1, NewMeta::default());
            put(py, &mut s, 2, NewMeta::default());
            hit(py, &mut s, 1);
            hit(py, &mut s, 2);
            hit(py, &mut s, 2);
            assert_eq!(keys(py, &mut s), vec![1, 2]);
            hit(py, &mut s, 2);
            hit(py, &mut s, 1);
            hit(py, &mut s, 1);
            assert_eq!(keys(py, &mut s), vec![1, 2]);
        });
    }

    #[test]
    fn ttl_sweeps_expired_prefix() {
        Python::attach(|py| {
            let mut s = Store::with_policy(Ttl::with_ttl(Some(10.0)).unwrap(), Limits::new(0, 0));
            let now = clock::now();
            for k in 0..5 {
                put(py, &mut s, k, NewMeta { expire_at: now - 1.0, ..NewMeta::default() });
            }
            put(py, &mut s, 9, NewMeta::default());
            // Entries restored with past expiries are swept by the next new insert.
            assert_eq!(keys(py, &mut s), vec![9]);
            assert_eq!(s.len(), 1);
        });
    }

    #[test]
    fn vttl_evicts_soonest_expiry_and_never_expiring_last() {
        Python::attach(|py| {
            let mut s = store::<Vttl>(3);
            let now = clock::now();
            put(py, &mut s, 1, NewMeta { expire_at: now + 70.0, ..NewMeta::default() });
            put(py, &mut s, 2, NewMeta::default());
            put(py, &mut s, 3, NewMeta { expire_at: now + 60.0, ..NewMeta::default() });
            assert_eq!(keys(py, &mut s), vec![3, 1, 2]);
            put(py, &mut s, 4, NewMeta { expire_at: now + 90.0, ..NewMeta::default() });
            assert_eq!(keys(py, &mut s), vec![1, 4, 2]);
        });
    }

    #[test]
    fn big_sizes_are_accounted_exactly() {
        Python::attach(|py| {
            let mut s = store::<Lru>(0);
            let key = PyInt::new(py, 7).into_any();
            let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
            let big = (u32::MAX as usize) * 3;
            let mut trash = Trash::new(py);
            s.insert(py, &probe, &key, Charge::total(big), NewMeta::default(), &mut trash).unwrap();
            assert_eq!(s.memory(), big);
            s.insert(py, &probe, &key, Charge::total(5), NewMeta::default(), &mut trash).unwrap();
            assert_eq!(s.memory(), 5);
            s.insert(py, &probe, &key, Charge::total(big), NewMeta::default(), &mut trash).unwrap();
            assert!(s.pop(py, &probe).unwrap().is_some());
            assert_eq!(s.memory(), 0);
            assert!(s.big_sizes.is_empty());
        });
    }

    #[test]
    fn items_find_the_tuple_they_make() {
        use crate::convert::{items_hash, tuple_hash_matches};
        use crate::entry::fold_hash;
        use pyo3::types::PyTuple;
        Python::attach(|py| {
            assert!(tuple_hash_matches(py), "items_hash must agree with hash(tuple) here");
            let mut s = store::<Lru>(0);
            let items = [PyInt::new(py, 1).into_any(), "a".into_pyobject(py).unwrap().into_any()];
            let tuple = PyTuple::new(py, &items).unwrap().into_any();
            let hash = fold_hash(items_hash(&items).unwrap());
            assert_eq!(hash, hash_key(&tuple).unwrap());
            let owner = Owner::default();
            assert!(matches!(s.get_items(py, hash, &owner, &items, |_| ()).unwrap(), ItemsLookup::Absent));
            let probe = Probe { key: &tuple, hash, owner: &owner };
            let mut trash = Trash::new(py);
            s.insert(py, &probe, &tuple, Charge::total(1), NewMeta::default(), &mut trash).unwrap();
            assert!(matches!(s.get_items(py, hash, &owner, &items, |_| ()).unwrap(), ItemsLookup::Found(_)));
            // Same hash, fewer items: not that tuple.
            assert!(matches!(s.find_items(py, hash, &owner, &items[..1]).unwrap(), ItemsLookup::Absent));
            // A stored key that is not an exact tuple leaves the decision to a real tuple.
            let mut s = store::<Lru>(0);
            let list = pyo3::types::PyList::new(py, &items).unwrap().into_any();
            let probe = Probe { key: &list, hash, owner: &owner };
            s.insert(py, &probe, &list, Charge::total(1), NewMeta::default(), &mut trash).unwrap();
            assert!(matches!(s.find_items(py, hash, &owner, &items).unwrap(), ItemsLookup::Undecided));
        });
    }

    #[test]
    fn full_inserts_reuse_the_victims_place() {
        // `insert_recycling`: the new entry takes the victim's slot (LRU, LFU, VTTL, RR) or
        // the ring's front (FIFO, TTL, skipping tombstones there); every key stays findable.
        Python::attach(|py| {
            let mut s = filled::<Fifo>(py, 4, 4);
            assert!(del(py, &mut s, 1)); // a tombstone right behind the front
            put(py, &mut s, 4, NewMeta::default());
            assert_eq!(put(py, &mut s, 5, NewMeta::default()), 1);
            assert_eq!(keys(py, &mut s), vec![2, 3, 4, 5]);
            assert_eq!(put(py, &mut s, 6, NewMeta::default()), 1);
            assert_eq!(keys(py, &mut s), vec![3, 4, 5, 6]);
            for k in [3, 4, 5, 6] {
                assert!(hit(py, &mut s, k));
            }
            assert_eq!(s.memory, 4);

            let mut s = store::<Lfu>(3);
            for k in 0..3 {
                put(py, &mut s, k, NewMeta::default());
                hit(py, &mut s, k);
            }
            hit(py, &mut s, 0);
            assert_eq!(put(py, &mut s, 7, NewMeta::default()), 1); // evicts 1 (least used, first)
            assert_eq!(keys(py, &mut s), vec![7, 2, 0]);
            assert!(!hit(py, &mut s, 1));
            assert_eq!(s.memory, 3);
        });
    }

    /// Inserts into a store that is full by count never grow the policy's storage (so
    /// `reserve_one` need not reserve it), also with tombstones in a ring and with a byte
    /// limit that makes one insert evict two entries.
    fn churn_keeps_storage<P: Policy>(py: Python<'_>, maxsize: usize) {
        let mut s = Store::<P>::new(Limits::new(maxsize, 0));
        let n = i64::try_from(maxsize).unwrap();
        for k in 0..n {
            put(py, &mut s, k, NewMeta::default());
        }
        for k in n..6 * n {
            let bytes = s.policy.allocated_bytes();
            assert_eq!(put(py, &mut s, k, NewMeta::default()), 1);
            assert_eq!(s.policy.allocated_bytes(), bytes, "storage grew at key {k}");
            if k % 7 == 0 {
                // One short of full: the next insert reserves (a ring with a tombstone may grow).
                // The previous key leaves a tombstone in a ring; RR may have evicted it, but not
                // the key just inserted.
                assert!(del(py, &mut s, k - 1) || del(py, &mut s, k));
                put(py, &mut s, -k, NewMeta::default());
            }
            assert_eq!(s.len(), maxsize);
        }
        s.limits.maxmemory = maxsize;
        let bytes = s.policy.allocated_bytes();
        let key = PyInt::new(py, -1).into_any();
        let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
        let mut trash = Trash::new(py);
        s.insert(py, &probe, &key, Charge::total(2), NewMeta::default(), &mut trash).unwrap();
        assert_eq!(trash.len(), 2);
        assert_eq!(s.policy.allocated_bytes(), bytes);
    }

    /// Filling grows storage geometrically: reserving exactly one more slot per insert made
    /// every insert past the capacity a reallocation (a quarter of the fill time at a million).
    fn growth_is_amortized<P: Policy>(py: Python<'_>) {
        let mut s = store::<P>(0);
        let mut grew = 0;
        for k in 0..4096 {
            let bytes = s.policy.allocated_bytes();
            put(py, &mut s, k, NewMeta::default());
            grew += usize::from(s.policy.allocated_bytes() != bytes);
        }
        assert!(grew <= 16, "storage grew {grew} times in 4096 inserts");
    }

    #[test]
    fn full_stores_do_not_grow_their_storage() {
        Python::attach(|py| {
            growth_is_amortized::<Fifo>(py);
            growth_is_amortized::<Ttl>(py);
            growth_is_amortized::<Lru>(py);
            growth_is_amortized::<Vttl>(py);
            growth_is_amortized::<Unordered<false>>(py);
            churn_keeps_storage::<Fifo>(py, 64);
            churn_keeps_storage::<Lru>(py, 64);
            churn_keeps_storage::<Lfu>(py, 64);
            churn_keeps_storage::<Vttl>(py, 64);
            churn_keeps_storage::<Unordered<true>>(py, 64);
        });
    }

    /// The prefetch hint follows the table through every operation that can move it.
    fn prefetch_hint_follows<P: Policy>(py: Python<'_>) {
        let current = |s: &Store<P>| s.bucket_end == s.current_bucket_end();
        let mut s = store::<P>(0);
        for k in 0..3000 {
            put(py, &mut s, k, NewMeta::default());
            if k.count_ones() == 1 {
                assert!(current(&s), "after growing to {k}");
            }
        }
        for k in 0..2900 {
            assert!(del(py, &mut s, k));
        }
        let mut trash = Trash::new(py);
        s.shrink_to_fit(&mut trash);
        assert!(current(&s) && s.bucket_end != 0, "after shrinking");
        s.reserve(50_000).unwrap();
        assert!(current(&s), "after reserving");
        let copy = s.duplicate(py);
        assert!(current(&copy) && copy.bucket_end != s.bucket_end, "in a copy");
        s.clear(false, &mut trash);
        put(py, &mut s, 1, NewMeta::default());
        assert!(current(&s), "after clearing");
        assert!(s.check_invariants(py).is_ok());
    }

    /// LRU's bucket hints stay exact through growth, tombstone rehashes, removals, shrinking
    /// and copies (`check_invariants` checks every hint).
    #[test]
    fn lru_bucket_hints_stay_exact() {
        Python::attach(|py| {
            let mut s = store::<Lru>(700);
            let mut rng = fastrand::Rng::with_seed(11);
            for step in 0..6000i64 {
                let k = rng.i64(0..2000);
                if rng.u8(0..4) == 0 {
                    del(py, &mut s, k);
                } else {
                    put(py, &mut s, k, NewMeta::default());
                }
                if step % 500 == 0 {
                    s.check_invariants(py).unwrap();
                }
            }
            s.check_invariants(py).unwrap();
            // Tombstones: fill an unbounded store to its table's capacity, remove most entries
            // (at that load erasing leaves tombstones), then insert until the table rehashes
            // in place.
            let mut s = store::<Lru>(0);
            for k in 0..896 {
                put(py, &mut s, k, NewMeta::default());
            }
            let buckets = s.table.num_buckets();
            for k in 0..460 {
                assert!(del(py, &mut s, k * 896 / 460));
            }
            // Churn at a constant length below half the table: tombstones pile up until the
            // table rehashes in place.
            let mut live: std::collections::VecDeque<i64> =
                (0..896).filter(|k| !(0..460).any(|d| d * 896 / 460 == *k)).collect();
            let mut rehashed = false;
            for k in 10_000..30_000 {
                let before = s.table.capacity();
                put(py, &mut s, k, NewMeta::default());
                live.push_back(k);
                assert!(del(py, &mut s, live.pop_front().unwrap()));
                if s.table.capacity() > before + 1 && s.table.num_buckets() == buckets {
                    rehashed = true;
                    s.check_invariants(py).unwrap();
                    break;
                }
            }
            assert!(rehashed, "no in-place rehash happened");
            let mut trash = Trash::new(py);
            s.shrink_to_fit(&mut trash);
            s.check_invariants(py).unwrap();
            s.duplicate(py).check_invariants(py).unwrap();
            // A stale hint is only a miss: the probe still finds the entry.
            let any = s.policy.ids()[0];
            let stale = (s.policy.bucket_hint(any).unwrap() + 1) % s.table.num_buckets();
            s.policy.note_bucket(any, stale);
            let key = s.entry(any).key.bind(py).extract::<i64>().unwrap();
            assert!(s.check_invariants(py).is_err());
            assert!(del(py, &mut s, key));
        });
    }

    #[test]
    fn prefetch_hint_is_current() {
        Python::attach(|py| {
            prefetch_hint_follows::<Fifo>(py);
            prefetch_hint_follows::<Lru>(py);
            prefetch_hint_follows::<Lfu>(py);
            prefetch_hint_follows::<Unordered<false>>(py);
        });
        // Any address is a valid prefetch hint.
        for addr in [0, 1, usize::MAX, std::ptr::from_ref(&0u8) as usize] {
            crate::prefetch::prefetch(addr);
        }
    }

    #[test]
    fn lru_links_follow_ids_through_emptying_and_shrinking() {
        // The LRU's links sit in a side table indexed by id: emptying the slab restarts ids,
        // and shrinking trims both.
        Python::attach(|py| {
            let mut s = filled::<Lru>(py, 0, 4);
            for k in 0..4 {
                assert!(del(py, &mut s, k));
            }
            for k in 10..14 {
                put(py, &mut s, k, NewMeta::default());
            }
            assert!(hit(py, &mut s, 10));
            assert_eq!(keys(py, &mut s), vec![11, 12, 13, 10]);
            assert!(del(py, &mut s, 13) && del(py, &mut s, 12));
            let mut trash = Trash::new(py);
            s.shrink_to_fit(&mut trash);
            for k in 20..23 {
                put(py, &mut s, k, NewMeta::default());
            }
            assert!(hit(py, &mut s, 11));
            assert_eq!(keys(py, &mut s), vec![10, 20, 21, 22, 11]);
        });
    }
}
