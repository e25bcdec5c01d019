//! The cargo-fuzz target over cachebox's store (`Store<P>` and the policies), shared by the
//! libFuzzer binary (`fuzz_targets/store.rs`) and the plain smoke binary (`src/bin/smoke.rs`).
//!
//! An input picks a policy, limits and a sequence of operations (`arbitrary`). Keys are Python
//! ints chosen so that their hashes collide on purpose (exactly, or only in the 32 bits the
//! store keeps), plus a key whose `__eq__` raises. A model (a map from key to value, size,
//! expiry and frequency, plus the order for FIFO/LRU/TTL) follows every operation, fed by what
//! the store reports (replaced values, evicted and swept entries), and is compared with the
//! store after each step: same live entries, same values and sizes, `memory` the sum of sizes,
//! limits held, evictions only when needed and in policy order, errors only when due and
//! without side effects. `Store::check_invariants` checks the table against the policy.
//!
//! This model is Rust and stays separate from the Python reference models (`tests/models.py`,
//! the only policy models on the Python side): it follows `Store<P>` itself, below the Python
//! API that those describe, including what only the store reports (replaced values, the trash).
//!
//! Expiry: TTLs are whole "units" (10^6 s) plus half a unit, and the clock only moves by whole
//! units (`advance_clock`), so real time passing during a run (far less than half a unit) never
//! changes which entries are expired.

use std::collections::HashMap;

use arbitrary::{Arbitrary, Unstructured};
use cachebox::fuzzing::{
    advance_clock, hash_key, Cause, Charge, Fifo, Inserted, Lfu, Limits, Lru, NewMeta, Owner, Policy, Probe,
    Store, Trash, Ttl, Unordered, Vttl, BIG_SIZE,
};
use pyo3::prelude::*;
use pyo3::types::PyInt;

const UNIT: f64 = 1e6;
const NKEYS: usize = 40;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Kind {
    Cache,
    Fifo,
    Rr,
    Lru,
    Lfu,
    Ttl,
    Vttl,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SizeSel {
    Small(u8),
    Medium(u16),
    Around32(i8),
    Big(u64),
}

impl SizeSel {
    fn get(self) -> usize {
        match self {
            SizeSel::Small(s) => s as usize,
            SizeSel::Medium(s) => s as usize,
            SizeSel::Around32(d) => (u64::from(BIG_SIZE) as i64 + i64::from(d)) as usize,
            SizeSel::Big(s) => s as usize,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Op {
    Insert { key: u8, value: u8, size: SizeSel, ttl: Option<u8>, freq: Option<u8> },
    Get { key: u8 },
    Peek { key: u8 },
    SetDefault { key: u8, value: u8, size: SizeSel, ttl: Option<u8> },
    Pop { key: u8 },
    PopItem,
    Clear { reuse: bool },
    Shrink,
    Nth { n: i8 },
    Walk { touch: u8 },
    Advance { units: u8 },
    LiveLen,
    IsFull,
    Duplicate,
    Reserve { n: u16 },
    Check,
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub kind: Kind,
    pub maxsize: u8,
    pub maxmemory: SizeSel,
    pub memory_limited: bool,
    pub capacity: u8,
    pub ttl: u8,
    pub ops: Vec<Op>,
}

#[derive(Clone, Debug)]
struct Model {
    value: u8,
    size: usize,
    /// Advance count after which the entry is expired (`None`: never).
    expires_after: Option<u64>,
    freq: u64,
}

struct Harness<'py, P: Policy> {
    py: Python<'py>,
    kind: Kind,
    store: Store<P>,
    keys: Vec<Bound<'py, PyAny>>,
    values: Vec<Bound<'py, PyAny>>,
    model: HashMap<usize, Model>,
    /// FIFO/LRU/TTL order of the model's keys (all stored keys, expired ones included).
    order: Vec<usize>,
    /// Clock advances so far, in units.
    now: u64,
    ttl_units: u64,
    limits: Limits,
}

fn fail(msg: String) -> ! {
    panic!("store fuzz: {msg}");
}

/// The keys: small ints, ints with the same Python hash as a small int (`k + 2**61 - 1`), ints
/// whose 64-bit hashes differ but fold to the same 32 bits, and a key whose `__eq__` raises.
fn make_keys(py: Python<'_>) -> Vec<Bound<'_, PyAny>> {
    let m61: i128 = (1i128 << 61) - 1;
    let mut keys = Vec::with_capacity(NKEYS);
    for i in 0..16i128 {
        keys.push(i);
    }
    for i in 0..8i128 {
        keys.push(i + m61);
    }
    for i in 1..15i128 {
        keys.push((i << 32) | i); // folds to 0, like the key 0
    }
    let mut out: Vec<Bound<'_, PyAny>> =
        keys.into_iter().map(|k| k.into_pyobject(py).expect("int").into_any()).collect();
    let code = c"class Raising:\n    def __hash__(self): return 0\n    def __eq__(self, other): raise ValueError('eq')\nraising = (Raising(), Raising())\n";
    let globals = pyo3::types::PyDict::new(py);
    py.run(code, Some(&globals), None).expect("define Raising");
    let pair = globals.get_item("raising").expect("get").expect("raising");
    out.push(pair.get_item(0).expect("0"));
    out.push(pair.get_item(1).expect("1"));
    assert_eq!(out.len(), NKEYS);
    out
}

/// The previous value and whether it was live, from an insert's outcome. The harness's keys
/// are fixed objects, so the store never needs another key's size.
fn replaced(inserted: Inserted) -> Option<(Py<PyAny>, bool)> {
    match inserted {
        Inserted::New => None,
        Inserted::Replaced(r) => Some((r.value, r.live)),
        Inserted::NeedsKeySize(_) => fail("store asked for the size of a key object it should hold".into()),
    }
}

impl<'py, P: Policy> Harness<'py, P> {
    fn key_index(&self, k: u8) -> usize {
        k as usize % NKEYS
    }

    fn raising(&self, idx: usize) -> bool {
        idx >= NKEYS - 2
    }

    fn probe_of<'a>(key: &'a Bound<'py, PyAny>) -> Probe<'a, 'py> {
        static OWNER: Owner = Owner::new();
        Probe { key, hash: hash_key(key).expect("keys hash"), owner: &OWNER }
    }

    fn expired(&self, m: &Model) -> bool {
        m.expires_after.is_some_and(|t| self.now > t)
    }

    fn live_keys(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.model.iter().filter(|(_, m)| !self.expired(m)).map(|(&k, _)| k).collect();
        v.sort_unstable();
        v
    }

    /// Whether a probe of `idx` hits a stored key whose `__eq__` raises: only the two raising
    /// keys (hash 0) meet keys 0 and the folded ones, and an `__eq__` runs only between
    /// different objects with equal 32-bit hashes; the error then depends on probe order, so
    /// the harness accepts an error (checked to change nothing) whenever one is possible.
    fn eq_may_raise(&self, idx: usize) -> bool {
        // Python hash 0 (so folded 0): the int 0, 2**61 - 1 (#16), the folded ints, Raising.
        let collides = |a: usize| a == 0 || a == 16 || (24..38).contains(&a) || self.raising(a);
        collides(idx) && self.model.keys().any(|&k| k != idx && collides(k) && (self.raising(k) || self.raising(idx)))
    }

    fn key_of_id(&self, id: u32) -> usize {
        let key = &self.store.entry(id).key;
        self.keys
            .iter()
            .position(|k| k.as_ptr() == key.as_ptr())
            .unwrap_or_else(|| fail(format!("unknown key in store (id {id})")))
    }

    fn meta(&self, ttl: Option<u8>, freq: Option<u8>) -> (NewMeta, Option<u64>) {
        let now = cachebox::fuzzing::now();
        match self.kind {
            Kind::Vttl => match ttl {
                Some(t) => {
                    let units = u64::from(t % 5);
                    (
                        NewMeta { expire_at: now + (units as f64 + 0.5) * UNIT, frequency: 0, now: None },
                        Some(self.now + units),
                    )
                }
                None => (NewMeta::default(), None),
            },
            Kind::Ttl => (NewMeta::default(), Some(self.now + self.ttl_units)),
            Kind::Lfu => (NewMeta { expire_at: f64::INFINITY, frequency: freq.map_or(0, u64::from), now: None }, None),
            _ => (NewMeta::default(), None),
        }
    }

    fn evicts(&self) -> bool {
        !matches!(self.kind, Kind::Cache)
    }

    fn ordered(&self) -> bool {
        matches!(self.kind, Kind::Fifo | Kind::Lru | Kind::Ttl)
    }

    fn remove_model(&mut self, idx: usize) -> Model {
        self.order.retain(|&k| k != idx);
        self.model
            .remove(&idx)
            .unwrap_or_else(|| fail(format!("store removed key #{idx}, which the model does not hold")))
    }

    fn memory(&self) -> u128 {
        self.model.values().map(|m| m.size as u128).sum()
    }

    /// Removed entries the store reported in `trash`: each must be in the model.
    fn take_trash(&mut self, trash: &mut Trash) -> Vec<(usize, Model)> {
        let entries = trash.take_entries();
        let mut out = Vec::new();
        for (e, cause) in entries {
            let idx = self
                .keys
                .iter()
                .position(|k| k.as_ptr() == e.key.as_ptr())
                .unwrap_or_else(|| fail("trash holds an unknown key".into()));
            let m = self.remove_model(idx);
            if cause == Cause::Expired && !self.expired(&m) {
                fail(format!("key #{idx} left as expired, but the model has it live"));
            }
            let v: u8 = e.value.bind(self.py).extract().unwrap_or_else(|_| fail("trash value".into()));
            if v != m.value {
                fail(format!("removed key #{idx} had value {v}, model {}", m.value));
            }
            out.push((idx, m));
        }
        out
    }

    /// Entries removed by a sweep must all be expired.
    fn swept(&mut self, trash: &mut Trash, what: &str) {
        for (idx, m) in self.take_trash(trash) {
            if !self.expired(&m) {
                fail(format!("{what} swept live key #{idx}"));
            }
        }
    }

    fn sweep_model(&mut self) {
        let dead: Vec<usize> = self.model.iter().filter(|(_, m)| self.expired(m)).map(|(&k, _)| k).collect();
        for k in dead {
            self.remove_model(k);
        }
    }

    fn insert(&mut self, idx: usize, value: u8, size: usize, ttl: Option<u8>, freq: Option<u8>, setdefault: bool) {
        let py = self.py;
        let (meta, expires_after) = self.meta(ttl, freq);
        let may_raise = self.eq_may_raise(idx);
        let before = (self.store.len(), self.store.memory());
        let mut trash = Trash::new(py);
        let value_obj = self.values[value as usize].clone();
        let live_hit = self.model.get(&idx).filter(|m| !self.expired(m)).cloned();
        let result = {
            let key = self.keys[idx].clone();
            let probe = Self::probe_of(&key);
            if setdefault {
                // As CacheCore::setdefault does: the live value, else an insert.
                match self.store.setdefault_hit(py, &probe) {
                    Ok(Some(v)) => Ok(Some((v, true))),
                    Ok(None) => self
                        .store
                        .insert(py, &probe, &value_obj, Charge::total(size), meta, &mut trash)
                        .map(|inserted| replaced(inserted).filter(|(_, live)| *live)),
                    Err(e) => Err(e),
                }
            } else {
                self.store.insert(py, &probe, &value_obj, Charge::total(size), meta, &mut trash).map(replaced)
            }
        };
        let result = match result {
            Err(e) => {
                if !trash.is_empty() || (self.store.len(), self.store.memory()) != before {
                    fail(format!("a failed write of key #{idx} changed the store ({e})"));
                }
                let overflow = e.is_instance_of::<pyo3::exceptions::PyOverflowError>(py);
                let due =
                    if overflow { self.overflow_due(idx, size, setdefault && live_hit.is_some()) } else { may_raise };
                if !due {
                    fail(format!("write of key #{idx} (size {size}) failed: {e}"));
                }
                return;
            }
            Ok(r) => r,
        };
        if setdefault {
            if let Some(hit) = &live_hit {
                let (v, _) = result.unwrap_or_else(|| fail(format!("setdefault missed live key #{idx}")));
                let v: u8 = v.bind(py).extract().expect("value");
                if v != hit.value {
                    fail(format!("setdefault of #{idx} returned {v}, model {}", hit.value));
                }
                if matches!(self.kind, Kind::Lru) {
                    self.touch_order(idx);
                }
                return;
            }
        }
        let existing = self.model.contains_key(&idx);
        if size > self.limits.maxmemory {
            fail(format!("write of size {size} over maxmemory {} was accepted", self.limits.maxmemory));
        }
        match (&result, existing) {
            (Some((old, live)), true) => {
                let m = self.model.get(&idx).cloned().expect("existing");
                let old: u8 = old.bind(py).extract().expect("value");
                if old != m.value || *live != !self.expired(&m) {
                    fail(format!(
                        "replace of #{idx} returned ({old}, live={live}), model ({}, live={})",
                        m.value,
                        !self.expired(&m)
                    ));
                }
                let freq = if matches!(self.kind, Kind::Lfu) { m.freq.saturating_add(1) } else { m.freq };
                let expires_after = match self.kind {
                    Kind::Ttl | Kind::Vttl => expires_after,
                    _ => m.expires_after,
                };
                self.model.insert(idx, Model { value, size, expires_after, freq });
                if matches!(self.kind, Kind::Lru | Kind::Ttl) {
                    self.touch_order(idx);
                }
                // Evictions while memory > maxmemory, in policy order (the key itself included).
                let evicted = self.take_trash(&mut trash);
                self.check_evictions(&evicted, None);
            }
            (None, false) => {
                // New key: expired entries are swept first (TTL/VTTL), then evictions.
                let removed = self.take_trash(&mut trash);
                let (swept, evicted): (Vec<_>, Vec<_>) = removed.into_iter().partition(|(_, m)| self.expired(m));
                let _ = swept;
                if self.evicts() {
                    self.sweep_model_check(&evicted);
                }
                self.check_evictions(&evicted, Some(size));
                self.model.insert(idx, Model { value, size, expires_after, freq: meta.frequency });
                self.order.push(idx);
            }
            (None, true) if setdefault => {
                // setdefault over an expired entry: it reuses the slot like an insert would.
                let m = self.model.get(&idx).cloned().expect("existing");
                if !self.expired(&m) {
                    fail(format!("setdefault of live #{idx} inserted"));
                }
                let freq = if matches!(self.kind, Kind::Lfu) { m.freq.saturating_add(1) } else { m.freq };
                self.model.insert(idx, Model { value, size, expires_after, freq });
                if matches!(self.kind, Kind::Lru | Kind::Ttl) {
                    self.touch_order(idx);
                }
                let evicted = self.take_trash(&mut trash);
                self.check_evictions(&evicted, None);
            }
            (r, e) => fail(format!("write of #{idx}: store says {:?}, model holds it: {e}", r.as_ref().map(|x| x.1))),
        }
    }

    /// After a new-key insert swept: the model must not still hold expired entries.
    fn sweep_model_check(&mut self, _evicted: &[(usize, Model)]) {
        if matches!(self.kind, Kind::Ttl | Kind::Vttl) {
            let left: Vec<usize> = self.model.iter().filter(|(_, m)| self.expired(m)).map(|(&k, _)| k).collect();
            if !left.is_empty() {
                fail(format!("an insert of a new key left expired keys {left:?}"));
            }
        }
    }

    /// Evictions happen only while the limits require them (`new_size`: the size of the new
    /// key being inserted; `None`: a replace, evicting while memory > maxmemory), and never
    /// for `Cache`.
    fn check_evictions(&self, evicted: &[(usize, Model)], new_size: Option<usize>) {
        if evicted.is_empty() {
            return;
        }
        if !self.evicts() {
            fail(format!("Cache evicted {:?}", evicted.iter().map(|e| e.0).collect::<Vec<_>>()));
        }
        // Replay backwards: before the last eviction the limits must still have been exceeded.
        let mut len = self.model.len();
        let mut memory = self.memory();
        for (_, m) in evicted.iter().rev() {
            len += 1;
            memory += m.size as u128;
            let needed = match new_size {
                Some(s) => len >= self.limits.maxsize || memory + s as u128 > self.limits.maxmemory as u128,
                None => memory > self.limits.maxmemory as u128,
            };
            if !needed {
                fail(format!(
                    "evicted {:?} without need (len {len}, memory {memory})",
                    evicted.iter().map(|e| e.0).collect::<Vec<_>>()
                ));
            }
        }
    }

    fn overflow_due(&self, idx: usize, size: usize, _hit: bool) -> bool {
        if size > self.limits.maxmemory {
            return true;
        }
        if self.evicts() {
            return false;
        }
        let memory = self.memory();
        match self.model.get(&idx) {
            Some(m) => memory - m.size as u128 + size as u128 > self.limits.maxmemory as u128,
            None => self.model.len() >= self.limits.maxsize || memory + size as u128 > self.limits.maxmemory as u128,
        }
    }

    fn touch_order(&mut self, idx: usize) {
        self.order.retain(|&k| k != idx);
        self.order.push(idx);
    }

    fn read(&mut self, idx: usize, touch: bool) {
        let py = self.py;
        let may_raise = self.eq_may_raise(idx);
        let got = {
            let key = self.keys[idx].clone();
            let probe = Self::probe_of(&key);
            if touch {
                self.store.get(py, &probe, |entry| entry.value.clone_ref(py))
            } else {
                self.store.peek(py, &probe).map(|v| v.map(|(v, _)| v.clone_ref(py)))
            }
        };
        let expect = self.model.get(&idx).filter(|m| !self.expired(m)).cloned();
        match got {
            Err(e) => {
                if !may_raise {
                    fail(format!("read of #{idx} failed: {e}"));
                }
            }
            Ok(v) => {
                let v: Option<u8> = v.map(|v| v.bind(py).extract().expect("value"));
                if v != expect.as_ref().map(|m| m.value) {
                    fail(format!("read of #{idx} gave {v:?}, model {:?}", expect.map(|m| m.value)));
                }
                if touch && v.is_some() {
                    match self.kind {
                        Kind::Lru => self.touch_order(idx),
                        Kind::Lfu => {
                            let m = self.model.get_mut(&idx).expect("hit");
                            m.freq = m.freq.saturating_add(1);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn pop(&mut self, idx: usize) {
        let py = self.py;
        let may_raise = self.eq_may_raise(idx);
        let got = {
            let key = self.keys[idx].clone();
            let probe = Self::probe_of(&key);
            self.store.pop(py, &probe)
        };
        let live = self.model.get(&idx).is_some_and(|m| !self.expired(m));
        match got {
            Err(e) => {
                if !may_raise {
                    fail(format!("pop of #{idx} failed: {e}"));
                }
            }
            Ok(Some((entry, _))) => {
                if !live {
                    fail(format!("pop of #{idx} removed an entry the model says is absent or expired"));
                }
                let m = self.remove_model(idx);
                let v: u8 = entry.value.bind(py).extract().expect("value");
                if v != m.value {
                    fail(format!("pop of #{idx} gave {v}, model {}", m.value));
                }
            }
            Ok(None) => {
                if live {
                    fail(format!("pop of #{idx} missed a live key"));
                }
            }
        }
    }

    /// The head of the live policy order (what `popitem` removes next), per the model; `None`
    /// where the model does not know it (RR, LFU/VTTL ties).
    fn expected_victims(&self) -> Option<Vec<usize>> {
        let live = self.live_keys();
        if live.is_empty() {
            return Some(vec![]);
        }
        match self.kind {
            Kind::Fifo | Kind::Lru | Kind::Ttl => {
                self.order.iter().copied().find(|k| live.contains(k)).map(|k| vec![k])
            }
            Kind::Lfu => {
                let min = live.iter().map(|k| self.model[k].freq).min()?;
                Some(live.into_iter().filter(|k| self.model[k].freq == min).collect())
            }
            Kind::Vttl => {
                let min = live.iter().map(|k| self.model[k].expires_after.unwrap_or(u64::MAX)).min()?;
                Some(live.into_iter().filter(|k| self.model[k].expires_after.unwrap_or(u64::MAX) == min).collect())
            }
            Kind::Rr => Some(live),
            Kind::Cache => None,
        }
    }

    fn popitem(&mut self) {
        if !self.evicts() {
            return;
        }
        let expected = self.expected_victims();
        let mut trash = Trash::new(self.py);
        let got = self.store.popitem(&mut trash);
        self.swept(&mut trash, "popitem");
        self.sweep_model();
        match got {
            None => {
                if !self.live_keys().is_empty() {
                    fail(format!("popitem found nothing, model has live keys {:?}", self.live_keys()));
                }
            }
            Some((entry, _)) => {
                let idx = self.keys.iter().position(|k| k.as_ptr() == entry.key.as_ptr()).expect("known key");
                if let Some(exp) = expected {
                    if !exp.contains(&idx) {
                        fail(format!("popitem removed #{idx}, expected one of {exp:?}"));
                    }
                }
                self.remove_model(idx);
            }
        }
    }

    /// Full comparison: a walk yields exactly the live model entries, in the model's order
    /// where it has one, each once; sizes, values, frequencies and memory agree.
    fn compare(&mut self) {
        let py = self.py;
        let mut trash = Trash::new(py);
        // VTTL sweeps here (TTL in the walk), so that `nth` below sweeps nothing more.
        self.store.live_len(&mut trash);
        self.swept(&mut trash, "live_len");
        let mut walk = self.store.walk(&mut trash);
        self.swept(&mut trash, "walk");
        let mut seen = Vec::new();
        loop {
            match self.store.step(&mut walk) {
                Err(_) => fail("a fresh walk was invalidated".into()),
                Ok(None) => break,
                Ok(Some(id)) => {
                    let idx = self.key_of_id(id);
                    let m = self
                        .model
                        .get(&idx)
                        .cloned()
                        .unwrap_or_else(|| fail(format!("walk yields #{idx}, not in the model")));
                    if self.expired(&m) {
                        fail(format!("walk yields expired #{idx}"));
                    }
                    let e = self.store.entry(id);
                    let v: u8 = e.value.bind(py).extract().expect("value");
                    if v != m.value || self.store.entry_size(e) != m.size {
                        fail(format!(
                            "#{idx}: store ({v}, size {}), model ({}, size {})",
                            self.store.entry_size(e),
                            m.value,
                            m.size
                        ));
                    }
                    if matches!(self.kind, Kind::Lfu) && self.store.policy.frequency(id) != m.freq {
                        fail(format!("#{idx}: frequency {} vs model {}", self.store.policy.frequency(id), m.freq));
                    }
                    seen.push((idx, id));
                }
            }
        }
        let live = self.live_keys();
        let mut walked: Vec<usize> = seen.iter().map(|s| s.0).collect();
        if self.ordered() {
            let expected: Vec<usize> = self.order.iter().copied().filter(|k| live.contains(k)).collect();
            if walked != expected {
                fail(format!("walk order {walked:?}, model {expected:?}"));
            }
        }
        if matches!(self.kind, Kind::Lfu) {
            let f: Vec<u64> = seen.iter().map(|s| self.model[&s.0].freq).collect();
            if f.windows(2).any(|w| w[0] > w[1]) {
                fail(format!("LFU walk not sorted by frequency: {f:?}"));
            }
        }
        if matches!(self.kind, Kind::Vttl) {
            let f: Vec<f64> = seen.iter().map(|s| self.store.policy.expire_at(s.1)).collect();
            if f.windows(2).any(|w| w[0] > w[1]) {
                fail(format!("VTTL walk not sorted by expiry: {f:?}"));
            }
        }
        walked.sort_unstable();
        if walked != live {
            fail(format!("walk yields {walked:?}, model live keys {live:?}"));
        }
        // nth agrees with the walk.
        let mut trash = Trash::new(py);
        for (i, &(_, id)) in seen.iter().enumerate() {
            if self.store.nth(i as isize, &mut trash) != Some(id) {
                fail(format!("nth({i}) disagrees with the walk"));
            }
            let neg = i as isize - seen.len() as isize;
            if self.store.nth(neg, &mut trash) != Some(id) {
                fail(format!("nth({neg}) disagrees with the walk"));
            }
        }
        if self.store.nth(seen.len() as isize, &mut trash).is_some()
            || self.store.nth(-(seen.len() as isize) - 1, &mut trash).is_some()
        {
            fail("nth out of range found an entry".into());
        }
        self.swept(&mut trash, "nth");
    }

    /// Cheap checks after every step (no sweep, no sort).
    fn invariants(&mut self) {
        if let Err(e) = self.store.check_invariants(self.py) {
            fail(format!("invariants: {e}"));
        }
        if self.store.len() != self.model.len() {
            fail(format!("store holds {} entries, model {}", self.store.len(), self.model.len()));
        }
        if self.store.memory() as u128 != self.memory() {
            fail(format!("memory {} vs model {}", self.store.memory(), self.memory()));
        }
        let live = self.live_keys().len();
        if self.store.live_count() != live {
            fail(format!("live_count {} vs model {live}", self.store.live_count()));
        }
    }

    fn step(&mut self, op: Op) {
        let py = self.py;
        match op {
            Op::Insert { key, value, size, ttl, freq } => {
                self.insert(self.key_index(key), value, size.get(), ttl, freq, false);
            }
            Op::SetDefault { key, value, size, ttl } => {
                self.insert(self.key_index(key), value, size.get(), ttl, None, true);
            }
            Op::Get { key } => self.read(self.key_index(key), true),
            Op::Peek { key } => self.read(self.key_index(key), false),
            Op::Pop { key } => self.pop(self.key_index(key)),
            Op::PopItem => self.popitem(),
            Op::Clear { reuse } => {
                let mut trash = Trash::new(py);
                self.store.clear(reuse, &mut trash);
                let n = trash.len();
                if n != self.model.len() {
                    fail(format!("clear removed {n}, model held {}", self.model.len()));
                }
                self.model.clear();
                self.order.clear();
                if !reuse && self.store.capacity() != 0 {
                    fail(format!("clear(reuse=False) left capacity {}", self.store.capacity()));
                }
            }
            Op::Shrink => {
                let mut trash = Trash::new(py);
                self.store.shrink_to_fit(&mut trash);
                self.swept(&mut trash, "shrink_to_fit");
                if matches!(self.kind, Kind::Ttl | Kind::Vttl) {
                    self.sweep_model();
                }
            }
            Op::Nth { n } => {
                let mut trash = Trash::new(py);
                let got = self.store.nth(n as isize, &mut trash);
                self.swept(&mut trash, "nth");
                let live = self.live_keys().len() as isize;
                let i = if n < 0 { n as isize + live } else { n as isize };
                if got.is_some() != (0..live).contains(&i) {
                    fail(format!("nth({n}) with {live} live entries gave {got:?}"));
                }
            }
            Op::Walk { touch } => {
                // A walk with reads (LRU moves, LFU +1) interleaved: never invalidated, never
                // yields more than the live entries it started with, or an entry twice.
                let mut trash = Trash::new(py);
                let mut walk = self.store.walk(&mut trash);
                self.swept(&mut trash, "walk");
                let live = self.live_keys().len();
                let mut seen = Vec::new();
                let mut i = 0u32;
                loop {
                    match self.store.step(&mut walk) {
                        Err(_) => fail("reads invalidated a walk".into()),
                        Ok(None) => break,
                        Ok(Some(id)) => {
                            let idx = self.key_of_id(id);
                            if seen.contains(&idx) {
                                fail(format!("walk yields #{idx} twice"));
                            }
                            seen.push(idx);
                            if touch != 0 && i % u32::from(touch) == 0 {
                                self.read(idx, true);
                            }
                            i += 1;
                        }
                    }
                }
                if seen.len() > live {
                    fail(format!("walk yields {} entries, {live} live", seen.len()));
                }
            }
            Op::Advance { units } => {
                let units = u64::from(units % 4);
                advance_clock(units as f64 * UNIT);
                self.now += units;
            }
            Op::LiveLen => {
                let mut trash = Trash::new(py);
                let n = self.store.live_len(&mut trash);
                self.swept(&mut trash, "live_len");
                if n != self.live_keys().len() {
                    fail(format!("live_len {n} vs model {}", self.live_keys().len()));
                }
            }
            Op::IsFull => {
                let live = self.live_keys().len();
                let full = live >= self.limits.maxsize || self.store.memory() >= self.limits.maxmemory;
                if self.store.is_full() != full {
                    fail(format!("is_full {} with {live} live, memory {}", self.store.is_full(), self.store.memory()));
                }
            }
            Op::Duplicate => {
                let copy = self.store.duplicate(py);
                if let Err(e) = copy.check_invariants(py) {
                    fail(format!("duplicate: {e}"));
                }
                self.store = copy;
            }
            Op::Reserve { n } => {
                if let Err(e) = self.store.reserve(n as usize) {
                    fail(format!("reserve({n}) failed: {e}"));
                }
            }
            Op::Check => self.compare(),
        }
        self.invariants();
    }
}

fn run_policy<P: Policy>(py: Python<'_>, input: &Input, policy: P, keys: Vec<Bound<'_, PyAny>>) {
    let maxmemory = if input.memory_limited { input.maxmemory.get() } else { 0 };
    let limits = Limits::new(input.maxsize as usize % 12, maxmemory);
    let mut store = Store::with_policy(policy, limits);
    if let Err(e) = store.reserve(input.capacity as usize) {
        fail(format!("reserve({}) failed: {e}", input.capacity));
    }
    let values = (0..=255u8).map(|v| PyInt::new(py, v).into_any()).collect();
    let mut h = Harness {
        py,
        kind: input.kind,
        store,
        keys,
        values,
        model: HashMap::new(),
        order: Vec::new(),
        now: 0,
        ttl_units: u64::from(input.ttl % 4),
        limits,
    };
    for &op in input.ops.iter().take(200) {
        h.step(op);
    }
    h.compare();
    h.invariants();
}

/// Runs one input (the libFuzzer entry point and the smoke binary both call this).
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else { return };
    Python::attach(|py| {
        let keys = make_keys(py);
        let ttl = (f64::from(input.ttl % 4) + 0.5) * UNIT;
        match input.kind {
            Kind::Cache => run_policy(py, &input, Unordered::<false>::default(), keys),
            Kind::Fifo => run_policy(py, &input, Fifo::default(), keys),
            Kind::Rr => run_policy(py, &input, Unordered::<true>::default(), keys),
            Kind::Lru => run_policy(py, &input, Lru::default(), keys),
            Kind::Lfu => run_policy(py, &input, Lfu::default(), keys),
            Kind::Ttl => run_policy(py, &input, Ttl::with_ttl(Some(ttl)).expect("ttl policy"), keys),
            Kind::Vttl => run_policy(py, &input, Vttl::default(), keys),
        }
    });
}
