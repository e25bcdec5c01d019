//! The store's consistency checker, run by the fuzz target after every operation.

use pyo3::prelude::*;

use super::Store;
use crate::entry::{table_hash, BIG_SIZE};
use crate::policy::Policy;

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
