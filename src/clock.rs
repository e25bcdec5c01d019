//! The TTL clock: monotonic seconds as `f64`, so wall-clock jumps never expire or revive
//! entries. Pickles carry UNIX timestamps; `to_unix`/`from_unix` convert at the moment of the
//! call.
//!
//! Tests control it with two hooks. `advance` shifts it forward, which makes expiry checkable
//! without sleeping. `freeze` stops the real clock underneath, so that only `advance` moves
//! time: a test that compares expiry with a model or an expected instant then gives the same
//! answer however slowly the machine runs it. A stopped clock still moves by `FROZEN_TICK_NS`
//! per reading (so by what a test does, never by how fast it runs): a running clock never reads
//! the same instant twice, and the policies' tie order (two writes in a row get distinct
//! expiries) shows it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static BASE: OnceLock<Instant> = OnceLock::new();
/// Seconds added to every reading (`f64` bits); only tests change it.
static OFFSET: AtomicU64 = AtomicU64::new(0);
/// `OFFSET` as `expired` adds it to a coarse reading: the same, except NaN while the clock is
/// frozen. Every comparison with NaN is false, so `expired` then falls through to the precise
/// (frozen) reading, and its fast path needs no check of its own.
static COARSE_OFFSET: AtomicU64 = AtomicU64::new(0);
/// How far a frozen clock moves per reading: a microsecond, above the resolution of the UNIX
/// timestamps pickles carry (`f64` seconds: a quarter of a microsecond in this century), so a
/// pickle round trip never gives an entry back time it had used.
const FROZEN_TICK_NS: u64 = 1_000;
/// While the clock is frozen: its next reading (before `OFFSET`) in nanoseconds. 0 while it
/// runs (a frozen reading is never 0: the clock starts at one second).
static FROZEN_NS: AtomicU64 = AtomicU64::new(0);
/// While the clock is frozen: the UNIX time at its reading 0 (`f64` bits), so that pickled
/// expiries keep their remaining time as they do with the real clocks running side by side.
static FROZEN_UNIX_BASE: AtomicU64 = AtomicU64::new(0);

/// Seconds since an arbitrary process-wide origin (plus the test offset).
#[inline]
pub fn now() -> f64 {
    raw_now() + offset()
}

#[inline]
fn offset() -> f64 {
    f64::from_bits(OFFSET.load(Ordering::Relaxed))
}

/// The reading without the test offset: the real clock, or the frozen one.
#[inline]
fn raw_now() -> f64 {
    if FROZEN_NS.load(Ordering::Relaxed) != 0 {
        if let Some(ns) = frozen_tick() {
            return ns as f64 * 1e-9;
        }
    }
    running_now()
}

#[inline]
fn running_now() -> f64 {
    let base = BASE.get_or_init(Instant::now);
    // Start at 1.0 so that no live instant is ever 0 or negative.
    1.0 + base.elapsed().as_secs_f64()
}

/// The frozen clock's reading, moving it on by a tick; `None` if it runs (again).
#[cold]
fn frozen_tick() -> Option<u64> {
    FROZEN_NS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |ns| (ns != 0).then_some(ns + FROZEN_TICK_NS)).ok()
}

/// Whether an entry that expires at `at` (a reading of `now`'s clock) has expired, as
/// `at < now()` would say, usually without a full clock reading.
///
/// A hit on a TTL cache checks this, and reading the monotonic clock precisely is a large part
/// of a hit. Linux keeps a coarse copy of the same clock, updated every tick, that
/// is read in a few nanoseconds: it never runs ahead of the precise one, and lags it by at
/// most a tick (a few milliseconds). So an `at` before the coarse reading has surely passed,
/// and one well after it (more than `COARSE_MARGIN`, many ticks) surely has not; only
/// entries that close to their expiry pay for the precise reading.
#[inline]
pub fn expired(at: f64) -> bool {
    if let Some(coarse) = coarse::now() {
        let coarse = coarse + f64::from_bits(COARSE_OFFSET.load(Ordering::Relaxed));
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
    #[inline]
    fn read(clock: i32) -> Option<f64> {
        read_ns(clock).map(|ns| ns as f64 * 1e-9)
    }

    /// Nanoseconds on `clock`.
    #[allow(unsafe_code)]
    #[inline(always)]
    fn read_ns(clock: i32) -> Option<i64> {
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `clock_gettime` (POSIX, in the C library std links) writes one `timespec`
        // (two 64-bit fields on 64-bit Linux, matching `Timespec`) to the pointer it is given,
        // a live local here; it has no other effect.
        let ok = unsafe { clock_gettime(clock, &mut ts) } == 0;
        // A monotonic clock counts from boot: its nanoseconds fit an i64 for 292 years.
        ok.then_some(ts.sec.wrapping_mul(1_000_000_000).wrapping_add(ts.nsec))
    }

    /// `CLOCK_MONOTONIC` in nanoseconds, for `RealDeadline`.
    pub fn precise_ns() -> Option<i64> {
        read_ns(CLOCK_MONOTONIC)
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

    pub fn precise_ns() -> Option<i64> {
        None
    }
}

/// A deadline in real monotonic time, for what mirrors a lifetime kept elsewhere (a Redis
/// entry's, which runs in real time): the test hooks never move it. The expiry watch (a thread,
/// see `tier::expiry_watch`) marks it passed, and may wake up to a scheduler tick late; the
/// deadline is set more than that early (`TICK_MARGIN_NS`), so it is never passed late.
#[derive(Clone, Copy, Debug)]
pub struct RealDeadline(i64);

/// More than a scheduler tick (1 to 10 ms).
const TICK_MARGIN_NS: i64 = 20_000_000;

impl RealDeadline {
    /// `seconds` from now.
    pub fn after(seconds: f64) -> Self {
        let ns = (seconds * 1e9).clamp(0.0, i64::MAX as f64 / 2.0) as i64;
        Self(Self::now_ns().saturating_add(ns).saturating_sub(TICK_MARGIN_NS))
    }

    /// The deadline in nanoseconds on `now_ns`'s clock.
    pub fn ns(self) -> i64 {
        self.0
    }

    /// The clock deadlines are on, in nanoseconds.
    pub fn now_ns() -> i64 {
        coarse::precise_ns().unwrap_or_else(instant_ns)
    }

    /// Seconds left (0 once passed).
    pub fn remaining(self) -> f64 {
        (self.0.saturating_sub(Self::now_ns())).max(0) as f64 * 1e-9
    }
}

/// Nanoseconds on `Instant`'s clock since `BASE`, where there is no coarse clock.
fn instant_ns() -> i64 {
    let base = BASE.get_or_init(Instant::now);
    i64::try_from(base.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// Moves the clock forward by `seconds` for every cache in the process (tests only).
pub fn advance(seconds: f64) {
    let moved = (offset() + seconds).to_bits();
    OFFSET.store(moved, Ordering::Relaxed);
    if FROZEN_NS.load(Ordering::Relaxed) == 0 {
        COARSE_OFFSET.store(moved, Ordering::Relaxed);
    }
}

/// Stops (`true`) or restarts (`false`) the real clock under every cache in the process
/// (tests only; not meant to race with readings in other threads). While it is stopped, only
/// `advance` moves time (and each reading, by a tick). Restarting resumes from the
/// instant it had reached, so no reading ever goes back, and no time passes while it is
/// stopped. Freezing a frozen clock, or restarting a running one, changes nothing.
pub fn freeze(frozen: bool) {
    let ns = FROZEN_NS.load(Ordering::Relaxed);
    if frozen && ns == 0 {
        let at = running_now();
        FROZEN_UNIX_BASE.store((unix_now() - at).to_bits(), Ordering::Relaxed);
        FROZEN_NS.store((at * 1e9) as u64, Ordering::Relaxed);
        COARSE_OFFSET.store(f64::NAN.to_bits(), Ordering::Relaxed);
    } else if !frozen && ns != 0 {
        let reached = ns as f64 * 1e-9;
        FROZEN_NS.store(0, Ordering::Relaxed);
        advance(reached - running_now());
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What to add to an instant on this clock to get a UNIX timestamp (and subtract to go back),
/// read now.
pub fn unix_offset() -> f64 {
    if FROZEN_NS.load(Ordering::Relaxed) != 0 {
        // The frozen UNIX clock moves with the frozen monotonic one, so the two differ by what
        // they did at the freeze, less the test offset (as with the real clocks).
        return f64::from_bits(FROZEN_UNIX_BASE.load(Ordering::Relaxed)) - offset();
    }
    unix_now() - now()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    /// The clock is process-wide and the tests run in parallel threads: the ones that read
    /// it closely, or freeze it, take turns.
    static CLOCK_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn coarse_readings_decide_only_what_is_certain() {
        let _turn = CLOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
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
            let coarse = coarse + super::offset();
            let precise = super::now();
            assert!(coarse <= precise + 1e-6, "coarse {coarse} ahead of {precise}");
            assert!(precise - coarse < super::coarse::MARGIN, "coarse {coarse} lags {precise}");
        }
    }

    #[test]
    fn real_deadlines_pass_early_never_late() {
        use super::RealDeadline;
        let deadline = RealDeadline::after(0.05);
        assert!(deadline.ns() > RealDeadline::now_ns());
        assert!(deadline.remaining() <= 0.05 && deadline.remaining() > 0.0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(deadline.ns() <= RealDeadline::now_ns());
        assert_eq!(deadline.remaining(), 0.0);
        assert_eq!(RealDeadline::after(0.0).remaining(), 0.0);
        assert!(RealDeadline::after(1e300).remaining() > 1e9);
    }

    #[test]
    fn unix_offset_is_stable() {
        let _turn = CLOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = (super::unix_offset(), super::unix_offset());
        assert!((a - b).abs() < 1e-3);
        assert!(super::now() + a > 1.7e9);
    }

    /// Restarts the clock and restores the test offset when a test that froze it ends, even
    /// by a failed assertion (the other clock tests would fail after it otherwise).
    struct Thaw(f64);

    impl Drop for Thaw {
        fn drop(&mut self) {
            super::freeze(false);
            super::OFFSET.store(self.0.to_bits(), Ordering::Relaxed);
            super::COARSE_OFFSET.store(self.0.to_bits(), Ordering::Relaxed);
        }
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced_and_resumes_where_it_stopped() {
        let _turn = CLOCK_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let _thaw = Thaw(super::offset());
        let tick = super::FROZEN_TICK_NS as f64 * 1e-9;
        super::freeze(true);
        super::freeze(true); // a second freeze changes nothing
        let start = super::now();
        let unix = super::unix_offset();
        std::thread::sleep(std::time::Duration::from_millis(30));
        // A tick a reading, and nothing for the 30 ms of real time.
        let (a, b) = (super::now(), super::now());
        assert!((a - start - tick).abs() < 1e-9 && (b - a - tick).abs() < 1e-9, "{start} {a} {b}");
        assert!(!super::expired(b + 1e-3) && super::expired(start));
        assert!(super::expired(super::now()) && !super::expired(super::now() + 1.5 * tick));
        assert_eq!(super::unix_offset(), unix);
        let before = super::now();
        super::advance(5.0);
        let moved = super::now();
        assert!((moved - before - 5.0 - tick).abs() < 1e-9, "{before} -> {moved}");
        // Advancing moves the monotonic clock alone, as when it runs: the UNIX time of an
        // instant comes 5 s earlier.
        assert!((super::unix_offset() - (unix - 5.0)).abs() < 1e-9);
        super::freeze(false);
        super::freeze(false);
        let resumed = super::now();
        assert!(resumed >= moved && resumed - moved < 0.01, "{moved} -> {resumed}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(super::now() - resumed >= 0.02);
        assert!((super::unix_offset() + super::now() - super::unix_now()).abs() < 0.01);
    }
}
