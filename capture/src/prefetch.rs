//! The one CPU hint the hot path uses: start loading a cache line before it is needed.
//!
//! Counting is bound by memory latency, not by arithmetic: the next frame's header in the ring
//! and a table's bucket and slot are each a likely cache miss. Asking for them a little ahead
//! lets those loads overlap.

/// Asks the CPU to start loading the cache line at `ptr`; a no-op where there is no such hint.
#[inline]
pub(crate) fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}
