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

/// Asks the CPU to start loading every cache line the value at `ptr` spans: a value that
/// straddles lines would otherwise still wait for the lines after its first.
#[inline]
pub(crate) fn prefetch_all<T>(ptr: *const T) {
    const LINE: usize = 64;
    let bytes = ptr.cast::<u8>();
    let skew = bytes as usize % LINE;
    let mut offset = 0;
    while offset < skew + size_of::<T>() {
        // A hint, so the pointer need not stay inside the value: wrapping arithmetic is enough.
        prefetch(bytes.wrapping_add(offset).wrapping_sub(skew));
        offset += LINE;
    }
}
