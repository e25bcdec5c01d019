//! The TTL clock: monotonic seconds as `f64`, so wall-clock jumps never expire or revive
//! entries. Pickles carry UNIX timestamps; `to_unix`/`from_unix` convert at the moment of the
//! call. Tests can shift the clock forward (`advance`), which makes expiry checkable without
//! sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static BASE: OnceLock<Instant> = OnceLock::new();
/// Seconds added to every reading (`f64` bits); only tests change it.
static OFFSET: AtomicU64 = AtomicU64::new(0);

/// Seconds since an arbitrary process-wide origin (plus the test offset).
#[inline]
pub fn now() -> f64 {
    let base = BASE.get_or_init(Instant::now);
    // Start at 1.0 so that no live instant is ever 0 or negative.
    1.0 + base.elapsed().as_secs_f64() + f64::from_bits(OFFSET.load(Ordering::Relaxed))
}

/// Moves the clock forward by `seconds` for every cache in the process (tests only).
pub fn advance(seconds: f64) {
    let cur = f64::from_bits(OFFSET.load(Ordering::Relaxed));
    OFFSET.store((cur + seconds).to_bits(), Ordering::Relaxed);
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What to add to an instant on this clock to get a UNIX timestamp (and subtract to go back),
/// read now.
pub fn unix_offset() -> f64 {
    unix_now() - now()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_offset_is_stable() {
        let (a, b) = (super::unix_offset(), super::unix_offset());
        assert!((a - b).abs() < 1e-3);
        assert!(super::now() + a > 1.7e9);
    }
}
