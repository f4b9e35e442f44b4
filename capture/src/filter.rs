//! The hook through which a socket filter joins capture, without the capture library knowing
//! how the filter is built (eBPF, classic BPF) or loaded.
//!
//! The engine attaches the filter to every socket after the ring exists and before `bind`, so
//! no unfiltered frame reaches a ring, and asks it for its reject counts every tick.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::snapshot::{FilterKind, Rejects};

/// A socket filter that capture attaches to each fanout member's socket.
pub trait PacketFilter: Send + Sync {
    /// Which kind of filter this is.
    fn kind(&self) -> FilterKind;

    /// Attaches the filter to one socket (not yet bound). A frame it passes keeps only its
    /// first `snap_len` bytes in the ring (all of it when shorter, and when `snap_len` is 0);
    /// its length on the wire is still reported.
    fn attach(&self, socket: BorrowedFd<'_>, snap_len: u32) -> Result<(), String>;

    /// Frames rejected so far per reason, or `None` where they cannot be known.
    fn rejects(&self) -> Option<Rejects>;
}

/// A filter that judges frames in userspace, where there is no socket to attach one to (a
/// replay): the socket filter's verdicts, with each reject counted per reason.
pub trait FrameFilter: PacketFilter {
    /// Whether `frame` (from its Ethernet header) passes; a reject is counted.
    fn pass(&self, frame: &[u8]) -> bool;
}

/// Attaches a classic BPF program to `socket` (`SO_ATTACH_FILTER`), replacing any filter it
/// has; the kernel copies the program.
pub fn attach_classic(
    socket: BorrowedFd<'_>,
    program: &[libc::sock_filter],
) -> std::io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const prog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The one-instruction classic program `ret #k`: every frame is dropped (`k` = 0) or keeps
/// its first `k` bytes.
pub fn classic_ret(k: u32) -> [libc::sock_filter; 1] {
    [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    }]
}
