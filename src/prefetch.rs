//! A cache-line prefetch hint.

/// Asks the CPU to start loading the line at `addr` into the cache. Any address is fine: a
/// prefetch is only a hint, never faults and changes no program state.
#[inline(always)]
pub fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `_mm_prefetch` reads nothing into the program and cannot fault, whatever the
    // address; SSE, which it needs, is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::without_provenance(addr));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
