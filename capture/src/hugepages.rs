//! A global allocator that backs large allocations with transparent huge pages.
//!
//! The per-packet work is a hash lookup in a table of a few MiB (a tally's index and slab), so
//! its cost is cache and TLB misses. With 4 KiB pages a lookup adds a page walk, which in a
//! virtual machine walks two page tables. Where THP is enabled only on request (`madvise`, the
//! common default), allocations of 2 MiB or more are aligned to 2 MiB and advised
//! `MADV_HUGEPAGE`, so one TLB entry covers 2 MiB of table. Smaller allocations go straight to
//! the system allocator. The binary and the benchmarks install it with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are huge-page backed.
const HUGE: usize = 2 << 20;

/// The system allocator, with large allocations aligned and advised for huge pages.
pub struct HugePages;

impl HugePages {
    fn huge(layout: Layout) -> Option<Layout> {
        (layout.size() >= HUGE)
            .then(|| Layout::from_size_align(layout.size(), layout.align().max(HUGE)).ok())
            .flatten()
    }

    fn advise(ptr: *mut u8, size: usize) {
        if !ptr.is_null() {
            // SAFETY: `ptr..ptr + size` is a live allocation we just made; madvise only
            // changes how the kernel backs it. Failure (THP off) leaves ordinary pages.
            unsafe {
                libc::madvise(ptr.cast(), size, libc::MADV_HUGEPAGE);
            }
        }
    }
}

// SAFETY: every block is allocated and freed by `System` with the same layout (the adjusted
// one for large blocks, which `huge` derives from the size alone), and `realloc` moves large
// blocks through `alloc`/`dealloc` so that pairing holds.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::huge(layout) {
            Some(huge) => {
                // SAFETY: `huge` has a non-zero size (at least HUGE).
                let ptr = unsafe { System.alloc(huge) };
                Self::advise(ptr, huge.size());
                ptr
            }
            // SAFETY: forwarded as given.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::huge(layout) {
            Some(huge) => {
                // SAFETY: `huge` has a non-zero size.
                let ptr = unsafe { System.alloc_zeroed(huge) };
                Self::advise(ptr, huge.size());
                ptr
            }
            // SAFETY: forwarded as given.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let layout = Self::huge(layout).unwrap_or(layout);
        // SAFETY: `ptr` came from `alloc` with this same (adjusted) layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < HUGE && new_size < HUGE {
            // SAFETY: a small block stays small; System made it with `layout`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (new_size >= HUGE or layout was large and
        // the caller guarantees new_size > 0).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and at least min(old, new) bytes long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
