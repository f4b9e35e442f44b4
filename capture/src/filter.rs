//! The hook through which a socket filter joins capture, without the capture library knowing
//! how the filter is built (eBPF, classic BPF) or loaded.
//!
//! The engine attaches the filter to every socket after the ring exists and before `bind`, so
//! no unfiltered frame reaches a ring, and asks it for its reject counts every tick.

use std::os::fd::BorrowedFd;

use crate::snapshot::{FilterKind, Rejects};

/// A socket filter that capture attaches to each fanout member's socket.
pub trait PacketFilter: Send + Sync {
    /// Which kind of filter this is.
    fn kind(&self) -> FilterKind;

    /// Attaches the filter to one socket (not yet bound).
    fn attach(&self, socket: BorrowedFd<'_>) -> Result<(), String>;

    /// Frames rejected so far per reason, or `None` where they cannot be known.
    fn rejects(&self) -> Option<Rejects>;
}

/// A filter that judges frames in userspace, where there is no socket to attach one to (a
/// replay): the socket filter's verdicts, with each reject counted per reason.
pub trait FrameFilter: PacketFilter {
    /// Whether `frame` (from its Ethernet header) passes; a reject is counted.
    fn pass(&self, frame: &[u8]) -> bool;
}
