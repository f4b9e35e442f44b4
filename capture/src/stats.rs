//! Capture health counters: per-worker packets, ring drops and freezes, and parse errors.
//!
//! `PACKET_STATISTICS` resets the kernel's counters on every read, so [`RingCounters`]
//! accumulates each read into running totals; nothing else may read that option.

use serde::Serialize;

use crate::parse::ParseError;

/// Frames that were not counted as traffic, per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ParseErrors {
    /// Not IPv4 or IPv6.
    pub non_ip: u64,
    /// A header cut short.
    pub truncated: u64,
    /// An impossible header.
    pub bad_header: u64,
}

impl ParseErrors {
    /// Counts one frame that failed to parse.
    #[inline]
    pub fn record(&mut self, error: ParseError) {
        match error {
            ParseError::NonIp => self.non_ip += 1,
            ParseError::Truncated => self.truncated += 1,
            ParseError::BadHeader => self.bad_header += 1,
        }
    }

    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.non_ip + self.truncated + self.bad_header
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &Self) {
        self.non_ip += other.non_ip;
        self.truncated += other.truncated;
        self.bad_header += other.bad_header;
    }
}

/// Ring drops and freezes, accumulated across reads of `PACKET_STATISTICS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Frames the kernel dropped because the ring was full.
    pub drops: u64,
    /// Times the ring's queue froze because no block was free.
    pub freezes: u64,
}

impl RingCounters {
    /// Adds one read of the kernel's counters, which the read itself reset.
    pub fn accumulate(&mut self, read: libc::tpacket_stats_v3) {
        self.drops += u64::from(read.tp_drops);
        self.freezes += u64::from(read.tp_freeze_q_cnt);
    }
}

/// One capture worker's health, cumulative since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WorkerStats {
    /// The worker's index in the fanout group.
    pub id: usize,
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// Packets it read from its ring, IP or not; a GRO/GSO super-frame counts as the packets
    /// it stands for on the wire.
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// GRO/GSO super-frames among them (each counted as its segments in `packets`).
    pub super_frames: u64,
    /// Ring blocks whose frame headers or offsets ran past the block.
    pub corrupt_blocks: u64,
    /// Frames those blocks announced that could not be read (not in `packets`).
    pub unreadable_frames: u64,
    /// Times its socket reported the link down (`ENETDOWN`); counting resumes when it is up.
    pub link_down: u64,
    /// Frames the kernel dropped because its ring was full.
    pub ring_drops: u64,
    /// Times its ring's queue froze.
    pub ring_freezes: u64,
    /// Frames it read per second over the last tick.
    pub packets_per_sec: f64,
    /// Frames it read that were not counted as traffic.
    pub parse_errors: ParseErrors,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_reads_accumulate() {
        let mut c = RingCounters::default();
        for (drops, freezes) in [(3, 1), (0, 0), (7, 2)] {
            c.accumulate(libc::tpacket_stats_v3 {
                tp_packets: 100,
                tp_drops: drops,
                tp_freeze_q_cnt: freezes,
            });
        }
        assert_eq!((c.drops, c.freezes), (10, 3));
    }

    #[test]
    fn parse_errors_record_per_reason() {
        let mut e = ParseErrors::default();
        for err in [
            ParseError::NonIp,
            ParseError::NonIp,
            ParseError::Truncated,
            ParseError::BadHeader,
        ] {
            e.record(err);
        }
        assert_eq!(
            (e.non_ip, e.truncated, e.bad_header, e.total()),
            (2, 1, 1, 4)
        );
        let mut sum = ParseErrors::default();
        sum.add(&e);
        sum.add(&e);
        assert_eq!(sum.total(), 8);
    }
}
