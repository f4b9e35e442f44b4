//! What a capture is asked to do: interface, workers, fanout, ring geometry, table bounds.
//!
//! Ring geometry is resolved here from the link speed so the rule lives in one place and the
//! binary only passes through what the operator overrode.

use std::time::Duration;

use crate::CaptureError;

/// How the kernel spreads frames across the fanout group's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FanoutMode {
    /// By flow hash: both directions of a flow land on the same worker.
    Hash,
    /// Round robin.
    Lb,
    /// By the CPU that received the frame.
    Cpu,
    /// Fill one socket, then spill to the next.
    Rollover,
    /// Random socket.
    Random,
    /// By the NIC's recorded receive queue.
    Qm,
}

impl FanoutMode {
    /// The kernel's `PACKET_FANOUT_*` type number.
    pub fn kernel_type(self) -> u32 {
        match self {
            Self::Hash => libc::PACKET_FANOUT_HASH,
            Self::Lb => libc::PACKET_FANOUT_LB,
            Self::Cpu => libc::PACKET_FANOUT_CPU,
            Self::Rollover => libc::PACKET_FANOUT_ROLLOVER,
            Self::Random => libc::PACKET_FANOUT_RND,
            Self::Qm => libc::PACKET_FANOUT_QM,
        }
    }

    /// Whether every frame of a conversation reaches the same worker: only with the flow
    /// hash, which is symmetric.
    pub fn keeps_conversations_together(self) -> bool {
        self == Self::Hash
    }

    /// The mode of a `PACKET_FANOUT_*` type number.
    pub fn from_kernel_type(kernel_type: u32) -> Option<Self> {
        [
            Self::Hash,
            Self::Lb,
            Self::Cpu,
            Self::Rollover,
            Self::Random,
            Self::Qm,
        ]
        .into_iter()
        .find(|mode| mode.kernel_type() == kernel_type)
    }

    /// The name used on the command line and in snapshots.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::Lb => "lb",
            Self::Cpu => "cpu",
            Self::Rollover => "rollover",
            Self::Random => "random",
            Self::Qm => "qm",
        }
    }
}

/// The fanout group the workers join.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FanoutConfig {
    /// How frames are spread; `None` chooses from how the interface takes frames in
    /// ([`crate::fanout_choice`]).
    pub mode: Option<FanoutMode>,
    /// `PACKET_FANOUT_FLAG_ROLLOVER`: spill to another socket when the chosen ring is full.
    pub rollover: bool,
    /// A fixed group id; `None` lets the kernel pick a unique one.
    pub group: Option<u16>,
    /// Join `group` even when other sockets already use it. Without it, a group that exists
    /// is refused ([`CaptureError::FanoutGroupInUse`](crate::CaptureError::FanoutGroupInUse)).
    pub join_existing: bool,
}

/// Overrides for the ring geometry; `None` takes the default derived from the link speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingOptions {
    /// Bytes per block: a power of two, a multiple of the page size.
    pub block_size: Option<u32>,
    /// Blocks per ring.
    pub block_count: Option<u32>,
    /// Frame slot size: a multiple of 16 that divides the block size.
    pub frame_size: Option<u32>,
    /// Milliseconds before the kernel hands over a partly filled block.
    pub block_timeout_ms: Option<u32>,
    /// Bytes of each frame copied into the ring.
    pub snap_len: Option<u32>,
}

/// The geometry of one worker's `TPACKET_V3` ring, as passed to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RingGeometry {
    /// Bytes per block.
    pub block_size: u32,
    /// Blocks per ring.
    pub block_count: u32,
    /// Frame slot size.
    pub frame_size: u32,
    /// Block retire timeout in milliseconds.
    pub block_timeout_ms: u32,
    /// Bytes of each frame copied into the ring (the snap length): the headers counting needs,
    /// not the payload. Lengths on the wire are reported whatever it is.
    pub snap_len: u32,
}

/// Smallest ring a worker gets, whatever the link speed.
pub const MIN_RING_BYTES: u64 = 8 << 20;
/// Largest ring a worker gets by default.
pub const MAX_DEFAULT_RING_BYTES: u64 = 256 << 20;
/// Largest ring a worker may be given explicitly.
pub const MAX_RING_BYTES: u64 = 4 << 30;
/// Link speed assumed when the interface does not report one (virtual or down links).
pub const FALLBACK_SPEED_MBPS: u64 = 1_000;
/// How much line-rate traffic the rings of all workers together should absorb.
pub const RING_BUFFER_MILLIS: u64 = 100;
const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
const DEFAULT_FRAME_SIZE: u32 = 2048;
const DEFAULT_BLOCK_TIMEOUT_MS: u32 = 10;
/// Default snap length: two VLAN tags, the largest IPv4 header and a TCP header with options
/// (142 bytes), or an IPv6 header with up to 134 bytes of extension headers before the TCP
/// header, fit in it. Copying the rest of a frame would only cost the sending CPU and ring
/// space.
pub const DEFAULT_SNAP_LEN: u32 = 256;
/// Shortest snap length: the Ethernet header, two tags, the largest IPv4 header and the TCP
/// data offset (95 bytes) fit in it, so IPv4 ports and segment counts never depend on it.
pub const MIN_SNAP_LEN: u32 = 128;
/// Longest snap length, as libpcap's (`MAXIMUM_SNAPLEN`): whole frames, super-frames included.
pub const MAX_SNAP_LEN: u32 = 262_144;

impl RingGeometry {
    /// Bytes of memory the ring maps.
    pub fn bytes(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }

    /// Frame slots the kernel accounts for (`tp_frame_nr`).
    pub fn frame_count(&self) -> u32 {
        (self.block_size / self.frame_size) * self.block_count
    }

    /// Resolves the geometry for one of `workers` workers on a link of `speed_mbps`.
    ///
    /// Together the rings hold [`RING_BUFFER_MILLIS`] of line-rate traffic, split across the
    /// workers and bounded to `MIN_RING_BYTES..=MAX_DEFAULT_RING_BYTES` each. Explicit options
    /// win, and the result is validated against what the kernel accepts.
    pub fn resolve(
        options: RingOptions,
        speed_mbps: Option<u64>,
        workers: usize,
    ) -> Result<Self, CaptureError> {
        let block_size = options.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
        let speed = speed_mbps.unwrap_or(FALLBACK_SPEED_MBPS).clamp(10, 400_000);
        let line_bytes = speed * 1_000_000 / 8 * RING_BUFFER_MILLIS / 1000;
        let per_worker =
            (line_bytes / workers.max(1) as u64).clamp(MIN_RING_BYTES, MAX_DEFAULT_RING_BYTES);
        let default_count = per_worker.div_ceil(u64::from(block_size.max(1))).max(2);
        let geometry = Self {
            block_size,
            block_count: options
                .block_count
                .unwrap_or(u32::try_from(default_count).unwrap_or(u32::MAX)),
            frame_size: options.frame_size.unwrap_or(DEFAULT_FRAME_SIZE),
            block_timeout_ms: options.block_timeout_ms.unwrap_or(DEFAULT_BLOCK_TIMEOUT_MS),
            snap_len: options.snap_len.unwrap_or(DEFAULT_SNAP_LEN),
        };
        geometry.validate()?;
        Ok(geometry)
    }

    /// Checks the constraints the kernel's `packet_set_ring` enforces, plus our own bounds.
    pub fn validate(&self) -> Result<(), CaptureError> {
        let page = page_size();
        let fail = |why: String| Err(CaptureError::Geometry(why));
        if !self.block_size.is_power_of_two() || self.block_size < page {
            return fail(format!(
                "block size {} must be a power of two of at least the page size ({page})",
                self.block_size
            ));
        }
        if !self.frame_size.is_multiple_of(16)
            || (self.frame_size as usize) < libc::TPACKET3_HDRLEN + 64
        {
            return fail(format!(
                "frame size {} must be a multiple of 16 and at least {}",
                self.frame_size,
                libc::TPACKET3_HDRLEN + 64
            ));
        }
        if self.frame_size > self.block_size {
            return fail(format!(
                "frame size {} exceeds block size {}",
                self.frame_size, self.block_size
            ));
        }
        if self.block_count < 2 {
            return fail(format!(
                "block count {} must be at least 2",
                self.block_count
            ));
        }
        if self.bytes() > MAX_RING_BYTES {
            return fail(format!(
                "ring of {} bytes exceeds the {MAX_RING_BYTES}-byte bound",
                self.bytes()
            ));
        }
        if !(1..=60_000).contains(&self.block_timeout_ms) {
            return fail(format!(
                "block timeout {} ms must be within 1..=60000",
                self.block_timeout_ms
            ));
        }
        if !(MIN_SNAP_LEN..=MAX_SNAP_LEN).contains(&self.snap_len) {
            return fail(format!(
                "snap length {} must be within {MIN_SNAP_LEN}..={MAX_SNAP_LEN}",
                self.snap_len
            ));
        }
        Ok(())
    }
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

/// Default bound on the per-IP table.
pub const DEFAULT_MAX_TALKERS: usize = 100_000;
/// Default bound on the per-flow table.
pub const DEFAULT_MAX_FLOWS: usize = 100_000;

/// Everything a capture needs to start.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// The interface to capture on.
    pub interface: String,
    /// Fanout members, one worker thread each.
    pub workers: usize,
    /// CPUs to pin workers to; worker `i` runs on `cpus[i % cpus.len()]`.
    pub cpus: Vec<usize>,
    /// The fanout group.
    pub fanout: FanoutConfig,
    /// Ring geometry overrides.
    pub ring: RingOptions,
    /// Whether to keep the per-flow table.
    pub flows: bool,
    /// Bound on the per-IP table.
    pub max_talkers: usize,
    /// Bound on the per-flow table.
    pub max_flows: usize,
    /// How often the aggregator publishes a snapshot; rate windows count in these ticks.
    pub tick: Duration,
    /// Named CIDR groups counted exactly on every packet.
    pub groups: Vec<crate::groups::Group>,
}

impl CaptureConfig {
    /// A configuration for `interface` with one worker per allowed CPU and default bounds.
    pub fn new(interface: impl Into<String>) -> Self {
        let cpus = crate::affinity::allowed_cpus();
        Self {
            interface: interface.into(),
            workers: cpus.len(),
            cpus,
            fanout: FanoutConfig::default(),
            ring: RingOptions::default(),
            flows: false,
            max_talkers: DEFAULT_MAX_TALKERS,
            max_flows: DEFAULT_MAX_FLOWS,
            tick: Duration::from_secs(1),
            groups: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_link_speed_within_bounds() {
        let slow = RingGeometry::resolve(RingOptions::default(), Some(100), 2).unwrap();
        assert_eq!(slow.bytes(), MIN_RING_BYTES);
        let ten_g = RingGeometry::resolve(RingOptions::default(), Some(10_000), 2).unwrap();
        assert_eq!(ten_g.block_count, 60);
        assert_eq!(ten_g.block_size, 1 << 20);
        let huge = RingGeometry::resolve(RingOptions::default(), Some(400_000), 1).unwrap();
        assert_eq!(huge.bytes(), MAX_DEFAULT_RING_BYTES);
        let unknown = RingGeometry::resolve(RingOptions::default(), None, 1).unwrap();
        assert_eq!(unknown.bytes(), 12 << 20);
    }

    #[test]
    fn explicit_options_win_and_are_validated() {
        let opts = RingOptions {
            block_size: Some(1 << 16),
            block_count: Some(8),
            frame_size: Some(1024),
            block_timeout_ms: Some(5),
            snap_len: Some(MIN_SNAP_LEN),
        };
        let g = RingGeometry::resolve(opts, None, 4).unwrap();
        assert_eq!(
            (g.block_size, g.block_count, g.frame_count(), g.snap_len),
            (1 << 16, 8, 512, MIN_SNAP_LEN)
        );
        let default = RingGeometry::resolve(RingOptions::default(), None, 1).unwrap();
        assert_eq!(default.snap_len, DEFAULT_SNAP_LEN);
        for bad in [
            RingOptions {
                block_size: Some(3000),
                ..opts
            },
            RingOptions {
                frame_size: Some(1000),
                ..opts
            },
            RingOptions {
                frame_size: Some(1 << 17),
                ..opts
            },
            RingOptions {
                block_count: Some(1),
                ..opts
            },
            RingOptions {
                block_timeout_ms: Some(0),
                ..opts
            },
            RingOptions {
                snap_len: Some(MIN_SNAP_LEN - 1),
                ..opts
            },
            RingOptions {
                snap_len: Some(MAX_SNAP_LEN + 1),
                ..opts
            },
            RingOptions {
                block_size: Some(1 << 30),
                block_count: Some(8),
                ..opts
            },
        ] {
            assert!(RingGeometry::resolve(bad, None, 1).is_err(), "{bad:?}");
        }
    }
}
