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

/// Whether an entry that expires at `at` (a reading of `now`'s clock) has expired, as
/// `at < now()` would say, usually without a full clock reading.
///
/// A hit on a TTL cache checks this, and reading the monotonic clock costs about 20 ns here
/// (a third of a hit). Linux keeps a coarse copy of the same clock, updated every tick, that
/// is read in a few nanoseconds: it never runs ahead of the precise one, and lags it by at
/// most a tick (a few milliseconds). So an `at` before the coarse reading has surely passed,
/// and one well after it (more than `COARSE_MARGIN`, many ticks) surely has not; only
/// entries that close to their expiry pay for the precise reading.
#[inline]
pub fn expired(at: f64) -> bool {
    if let Some(coarse) = coarse::now() {
        let coarse = coarse + f64::from_bits(OFFSET.load(Ordering::Relaxed));
        if at < coarse {
            return true;
        }
        if at > coarse + coarse::MARGIN {
            return false;
        }
    }
    at < now()
}

/// `CLOCK_MONOTONIC_COARSE` on the timeline of `now()` (Linux, 64-bit).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod coarse {
    use std::sync::OnceLock;
    use std::time::Instant;

    /// How far ahead of a coarse reading an instant must be to count as not reached: many
    /// ticks (a tick is 1 to 10 ms), and bounded above by what `expired` promises.
    pub const MARGIN: f64 = 0.05;

    const CLOCK_MONOTONIC: i32 = 1;
    const CLOCK_MONOTONIC_COARSE: i32 = 6;

    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }

    /// Seconds on `clock`.
    #[allow(unsafe_code)]
    #[inline]
    fn read(clock: i32) -> Option<f64> {
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `clock_gettime` (POSIX, in the C library std links) writes one `timespec`
        // (two 64-bit fields on 64-bit Linux, matching `Timespec`) to the pointer it is given,
        // a live local here; it has no other effect.
        let ok = unsafe { clock_gettime(clock, &mut ts) } == 0;
        ok.then_some(ts.sec as f64 + ts.nsec as f64 * 1e-9)
    }

    /// What to add to a raw coarse reading to put it on `now()`'s clock (`None`: no coarse
    /// clock), measured once: `now()` counts from `BASE`, an `Instant` (`CLOCK_MONOTONIC`).
    fn shift() -> Option<f64> {
        static SHIFT: OnceLock<Option<f64>> = OnceLock::new();
        *SHIFT.get_or_init(|| {
            // `CLOCK_MONOTONIC` (the timeline of `Instant`, and of the coarse clock) at `BASE`.
            // Reading `elapsed` first can only overestimate it, which maps coarse readings a
            // little early: the safe side. The microsecond keeps rounding on that side too.
            let base = super::BASE.get_or_init(Instant::now);
            let elapsed = base.elapsed().as_secs_f64();
            let monotonic_at_base = read(CLOCK_MONOTONIC)? - elapsed;
            Some(1.0 - monotonic_at_base - 1e-6)
        })
    }

    #[inline]
    pub fn now() -> Option<f64> {
        Some(read(CLOCK_MONOTONIC_COARSE)? + shift()?)
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod coarse {
    pub const MARGIN: f64 = 0.0;

    #[inline]
    pub fn now() -> Option<f64> {
        None
    }
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
    fn coarse_readings_decide_only_what_is_certain() {
        for _ in 0..1000 {
            let before = super::now();
            // Long past, far ahead: decided (by the coarse clock where there is one).
            assert!(super::expired(before - 1.0));
            assert!(!super::expired(before + 1.0));
            // Around the present: the precise clock decides.
            assert!(super::expired(before - 1e-9) || super::now() <= before);
            assert!(!super::expired(super::now() + 0.01));
        }
        if let Some(coarse) = super::coarse::now() {
            let precise = super::now();
            assert!(coarse <= precise + 1e-6, "coarse {coarse} ahead of {precise}");
            assert!(precise - coarse < super::coarse::MARGIN, "coarse {coarse} lags {precise}");
        }
    }

    #[test]
    fn unix_offset_is_stable() {
        let (a, b) = (super::unix_offset(), super::unix_offset());
        assert!((a - b).abs() < 1e-3);
        assert!(super::now() + a > 1.7e9);
    }
}
