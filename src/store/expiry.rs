//! Expiry: the clock a store reads, and sweeping entries whose instant has passed.

use super::{Cause, Store, Trash};
use crate::clock;
use crate::policy::Policy;

impl<P: Policy> Store<P> {
    #[inline]
    pub fn now() -> f64 {
        if P::EXPIRES {
            clock::now()
        } else {
            0.0
        }
    }

    #[inline]
    pub(super) fn is_expired(&self, id: u32, now: f64) -> bool {
        P::EXPIRES && self.policy.expire_at(id) < now
    }

    /// Physically removes every expired entry.
    pub fn sweep(&mut self, now: f64, trash: &mut Trash) {
        if P::EXPIRES {
            let generation = self.generation;
            while let Some(id) = self.policy.next_expired(now) {
                let expired = self.remove_id(id);
                self.discard(trash, expired, Cause::Expired);
            }
            if P::SWEEP_ON_LEN {
                // VTTL sweeps on `len()`, `repr`, `==`, ...: its iterators resume by sort key,
                // which survives removals, so these sweeps must not invalidate them (or
                // `list(c)`, which calls `len(c)`, would fail right after an expiry).
                self.generation = generation;
            }
        }
    }

    /// Live entries. TTL counts them without sweeping; VTTL sweeps (BEHAVIOUR.md §7.3).
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
}
