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

/// The UNIX timestamp of instant `t` on this clock.
pub fn to_unix(t: f64) -> f64 {
    unix_now() + (t - now())
}

/// The instant on this clock of UNIX timestamp `u`.
pub fn from_unix(u: f64) -> f64 {
    now() + (u - unix_now())
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_round_trip() {
        let t = super::now() + 100.0;
        let back = super::from_unix(super::to_unix(t));
        assert!((back - t).abs() < 1e-3);
    }
}
