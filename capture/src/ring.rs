//! The `AF_PACKET` socket and its memory-mapped `TPACKET_V3` receive ring.
//!
//! This is the only module that touches the ring's memory. A block belongs to userspace from the
//! moment an acquire load sees `TP_STATUS_USER` in its `block_status` until [`Block`] is dropped,
//! which hands it back with a release store of `TP_STATUS_KERNEL` (libpcap's protocol). Every
//! offset read from the kernel's headers is checked against the block before it is followed.
//!
//! Setup happens in an order that lets no unfiltered or foreign frame into the ring; see
//! [`Ring::open`] and `docs/design.md`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::CaptureError;
use crate::config::RingGeometry;
use crate::parse::{Gso, OffloadedTag};

/// One frame in a block: borrowed from the ring until the block is released.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Captured bytes from the link-layer header on (`tp_snaplen` of them); on a link without
    /// a link-layer header, from the network header on.
    pub data: &'a [u8],
    /// Length on the wire (`tp_len`), excluding any tag the kernel moved into metadata.
    pub wire_len: u32,
    /// Receive timestamp, ns since the epoch.
    pub ts_ns: u64,
    /// The VLAN tag the kernel moved out of the frame, if any.
    pub offloaded: Option<OffloadedTag>,
    /// Set when the frame is a GRO/GSO super-frame standing for several packets on the wire.
    pub gso: Option<Gso>,
    /// Whether this host sent the frame (`sll_pkttype == PACKET_OUTGOING`).
    pub outgoing: bool,
}

/// How the walk of one block ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// Frames the block's descriptor announced that could not be read because a header or an
    /// offset ran past the block; nonzero means the block was corrupt.
    pub unreadable: u32,
}

/// What [`Ring::wait`] saw.
#[derive(Debug)]
pub enum Wait {
    /// A block is ready.
    Ready,
    /// The timeout passed with nothing ready.
    Timeout,
    /// The socket reported an error (e.g. `ENETDOWN` when the interface went down or away).
    SocketError(io::Error),
}

/// An `AF_PACKET` socket with a mapped `TPACKET_V3` RX ring.
pub struct Ring {
    fd: OwnedFd,
    base: NonNull<u8>,
    len: usize,
    geometry: RingGeometry,
    current: u32,
    interface: String,
    vnet_hdr: bool,
}

// SAFETY: the mapping is owned by this value alone and only accessed through `&mut self`.
unsafe impl Send for Ring {}

impl Ring {
    /// Opens the socket and maps its ring: steps 1 and 2 of the setup order.
    ///
    /// The socket is created with protocol 0, so the kernel delivers nothing to it until
    /// [`Ring::bind`]; that leaves room to attach a filter first, and the ring never holds a
    /// frame that did not pass the filter.
    ///
    /// With `vnet_hdr` the kernel writes a `virtio_net_hdr` before each frame
    /// (`PACKET_VNET_HDR`, which must precede the ring), telling a GRO/GSO super-frame's
    /// segment size.
    pub fn open(
        interface: &str,
        geometry: RingGeometry,
        vnet_hdr: bool,
    ) -> Result<Self, CaptureError> {
        geometry.validate()?;
        // SAFETY: plain socket(2) call.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(CaptureError::socket(
                "opening an AF_PACKET socket",
                interface,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if vnet_hdr {
            let on: libc::c_int = 1;
            set_option(fd.as_fd(), libc::PACKET_VNET_HDR, &on)
                .map_err(|e| CaptureError::option("PACKET_VNET_HDR", interface, e))?;
        }
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_option(fd.as_fd(), libc::PACKET_VERSION, &version)
            .map_err(|e| CaptureError::option("PACKET_VERSION", interface, e))?;
        let req = libc::tpacket_req3 {
            tp_block_size: geometry.block_size,
            tp_block_nr: geometry.block_count,
            tp_frame_size: geometry.frame_size,
            tp_frame_nr: geometry.frame_count(),
            tp_retire_blk_tov: geometry.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(fd.as_fd(), libc::PACKET_RX_RING, &req)
            .map_err(|e| CaptureError::option("PACKET_RX_RING", interface, e))?;
        let len = usize::try_from(geometry.bytes())
            .map_err(|_| CaptureError::Geometry("ring larger than the address space".into()))?;
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel checks `len`.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(CaptureError::Mmap {
                bytes: len,
                interface: interface.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| CaptureError::Mmap {
            bytes: len,
            interface: interface.to_owned(),
            source: io::Error::other("mmap returned null"),
        })?;
        Ok(Self {
            fd,
            base,
            len,
            geometry,
            current: 0,
            interface: interface.to_owned(),
            vnet_hdr,
        })
    }

    /// The socket, for attaching a filter (step 3) before [`Ring::bind`].
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The geometry the ring was mapped with.
    pub fn geometry(&self) -> RingGeometry {
        self.geometry
    }

    /// Makes the socket drop every frame until another filter replaces this one: a classic
    /// BPF program of one instruction, `ret #0`. Used while the fanout group is assembled, so
    /// a frame cannot reach both a bound socket and the group before that socket joins it.
    pub fn drop_all(&self) -> Result<(), CaptureError> {
        crate::filter::attach_classic(self.fd.as_fd(), &crate::filter::classic_ret(0))
            .map_err(|e| CaptureError::option("SO_ATTACH_FILTER", &self.interface, e))
    }

    /// Lets every frame through with only its first `snap_len` bytes copied into the ring (0:
    /// the whole frame): the classic program `ret #snap_len`, for a capture without a socket
    /// filter.
    pub fn snap_only(&self, snap_len: u32) -> Result<(), CaptureError> {
        let keep = if snap_len == 0 {
            crate::config::MAX_SNAP_LEN
        } else {
            snap_len
        };
        crate::filter::attach_classic(self.fd.as_fd(), &crate::filter::classic_ret(keep))
            .map_err(|e| CaptureError::option("SO_ATTACH_FILTER", &self.interface, e))
    }

    /// Binds to `ifindex` for every protocol (`ETH_P_ALL`): step 4. Frames flow from here on.
    pub fn bind(&self, ifindex: u32) -> Result<(), CaptureError> {
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: the pointer and length describe `addr`.
        let rc = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(CaptureError::Socket {
                operation: "binding to the interface",
                interface: self.interface.clone(),
                source: io::Error::last_os_error(),
            })
        }
    }

    /// Joins the fanout group described by `arg` (`id | (type | flags) << 16`): step 5.
    pub fn join_fanout(&self, arg: u32) -> Result<(), CaptureError> {
        set_option(self.fd.as_fd(), libc::PACKET_FANOUT, &arg)
            .map_err(|e| CaptureError::option("PACKET_FANOUT", &self.interface, e))
    }

    /// The id of the fanout group this socket joined.
    pub fn fanout_group(&self) -> Result<u16, CaptureError> {
        let value: u32 = get_option(self.fd.as_fd(), libc::PACKET_FANOUT)
            .map_err(|e| CaptureError::option("PACKET_FANOUT", &self.interface, e))?;
        Ok((value & 0xffff) as u16)
    }

    /// Reads, and thereby resets, the kernel's drop and freeze counters.
    pub fn take_stats(&self) -> Result<libc::tpacket_stats_v3, CaptureError> {
        get_option(self.fd.as_fd(), libc::PACKET_STATISTICS)
            .map_err(|e| CaptureError::option("PACKET_STATISTICS", &self.interface, e))
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> Option<io::Error> {
        // SOL_SOCKET options share the helper; SO_ERROR is an int.
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the pointers describe `value` and `len`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        (rc == 0 && value != 0).then(|| io::Error::from_raw_os_error(value))
    }

    /// Waits up to `timeout_ms` for the next block; returns at once when one is ready.
    pub fn wait(&self, timeout_ms: i32) -> Wait {
        if self.block_ready(self.current) {
            return Wait::Ready;
        }
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Wait::Timeout
            } else {
                Wait::SocketError(err)
            };
        }
        if pfd.revents & libc::POLLERR != 0
            && let Some(err) = self.take_error()
        {
            return Wait::SocketError(err);
        }
        if self.block_ready(self.current) {
            Wait::Ready
        } else {
            Wait::Timeout
        }
    }

    /// The next block if the kernel has handed it over; never blocks.
    pub fn next_block(&mut self) -> Option<Block<'_>> {
        if !self.block_ready(self.current) {
            return None;
        }
        let bs = self.geometry.block_size as usize;
        let start = self.current as usize * bs;
        // SAFETY: `start + bs <= len` because current < block_count, and the block is ours
        // (acquire load above); the descriptor's two words are read before any slice exists,
        // and they are 4-byte aligned because blocks are page aligned.
        #[allow(clippy::cast_ptr_alignment)]
        let (num_pkts, first) = unsafe {
            let desc = self.base.as_ptr().add(start);
            (
                desc.add(NUM_PKTS_OFFSET).cast::<u32>().read(),
                desc.add(FIRST_PKT_OFFSET).cast::<u32>().read() as usize,
            )
        };
        // A bogus first offset leaves nothing to walk, and every announced frame unreadable.
        let (first, _) = frames_span(num_pkts, first, bs);
        // SAFETY: `first..bs` lies inside this block and past its descriptor, so the slice
        // never overlaps the status word that `release_current` stores to; nothing writes the
        // block while userspace owns it.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(start + first), bs - first)
        };
        let frames = FrameWalker::new(bytes, num_pkts, self.vnet_hdr);
        Some(Block { ring: self, frames })
    }

    #[allow(clippy::cast_ptr_alignment)] // blocks are page aligned; see SAFETY below
    fn block_status(&self, index: u32) -> &AtomicU32 {
        let offset = index as usize * self.geometry.block_size as usize + BLOCK_STATUS_OFFSET;
        debug_assert!(offset + 4 <= self.len);
        // SAFETY: `index < block_count`, so the word lies inside the mapping; it is 8-byte
        // aligned (blocks are page aligned); the kernel and we access it only atomically.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>()) }
    }

    fn block_ready(&self, index: u32) -> bool {
        self.block_status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    fn release_current(&mut self) {
        self.block_status(self.current)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.current = (self.current + 1) % self.geometry.block_count;
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe the mapping made in `open`, unmapped once here.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// `offsetof(struct tpacket_block_desc, hdr.bh1.block_status)`.
const BLOCK_STATUS_OFFSET: usize = 8;
/// `offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts)`.
const NUM_PKTS_OFFSET: usize = 12;
/// `offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt)`.
const FIRST_PKT_OFFSET: usize = 16;
/// `sizeof(struct tpacket_block_desc)`.
const DESC_LEN: usize = size_of::<libc::tpacket_block_desc>();
const HDR_LEN: usize = size_of::<libc::tpacket3_hdr>();
/// The frame header plus the `sockaddr_ll` the kernel writes after it (`TPACKET3_HDRLEN`).
const FRAME_HDR_LEN: usize = HDR_LEN + size_of::<libc::sockaddr_ll>();
/// `offsetof(struct sockaddr_ll, sll_pkttype)`.
const SLL_PKTTYPE_OFFSET: usize = 10;
/// `sizeof(struct virtio_net_hdr)`, written just before the frame with `PACKET_VNET_HDR`.
const VNET_HDR_LEN: usize = 10;
/// `TP_STATUS_GSO_TCP`: the frame is a TCP GSO/GRO super-frame (kernel 5.x and later).
const TP_STATUS_GSO_TCP: u32 = 1 << 8;

/// Where a block's frames start and how many there are, from its descriptor's
/// `offset_to_first_pkt` and `num_pkts`: frames start after the descriptor, and a bogus offset
/// yields an empty block.
fn frames_span(num_pkts: u32, first: usize, block_size: usize) -> (usize, u32) {
    if (DESC_LEN..block_size).contains(&first) {
        (first, num_pkts)
    } else {
        (block_size, 0)
    }
}

/// A block handed over by the kernel; dropping it hands it back.
pub struct Block<'r> {
    ring: &'r mut Ring,
    frames: FrameWalker<'r>,
}

impl Block<'_> {
    /// The next frame, or `None` when the block is done or its headers point outside it.
    #[inline]
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.frames.next_frame()
    }

    /// How the walk ended so far: call it once [`Self::next_frame`] returned `None`.
    pub fn walked(&self) -> Walked {
        self.frames.walked()
    }
}

/// Walks the frames of one `TPACKET_V3` block, trusting none of its offsets.
///
/// Every header and every offset is checked against the block before it is followed; a walk
/// that runs past the block stops there and reports how many announced frames it could not
/// read ([`Walked::unreadable`]), so a corrupt block is counted rather than skipped silently.
#[derive(Clone, Debug)]
pub struct FrameWalker<'a> {
    /// The block from its first packet header to its end.
    bytes: &'a [u8],
    remaining: u32,
    offset: usize,
    vnet_hdr: bool,
}

impl<'a> FrameWalker<'a> {
    /// A walk over `bytes` (the block from its first frame header on) announcing `num_pkts`
    /// frames; `vnet_hdr` says whether each frame is preceded by a `virtio_net_hdr`.
    pub fn new(bytes: &'a [u8], num_pkts: u32, vnet_hdr: bool) -> Self {
        Self {
            bytes,
            remaining: num_pkts,
            offset: 0,
            vnet_hdr,
        }
    }

    /// A walk over a whole block as the kernel lays it out (descriptor first), as tests and
    /// the fuzzer build them; a first-frame offset outside the block leaves nothing to read.
    pub fn over_block(block: &'a [u8], vnet_hdr: bool) -> Self {
        let num_pkts = read_u32(block, NUM_PKTS_OFFSET);
        let (first, _) = frames_span(
            num_pkts,
            read_u32(block, FIRST_PKT_OFFSET) as usize,
            block.len(),
        );
        Self::new(block.get(first..).unwrap_or_default(), num_pkts, vnet_hdr)
    }

    /// The announced frames not read yet: after the walk ended, those it could not read.
    pub fn walked(&self) -> Walked {
        Walked {
            unreadable: self.remaining,
        }
    }

    /// The next frame, or `None` when the block is done or its headers point outside it.
    #[inline]
    pub fn next_frame(&mut self) -> Option<Frame<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let at = self.offset;
        let header = self.bytes.get(at..at.checked_add(FRAME_HDR_LEN)?)?;
        let next = read_u32(header, 0) as usize;
        let sec = u64::from(read_u32(header, 4));
        let nsec = u64::from(read_u32(header, 8));
        let snaplen = read_u32(header, 12) as usize;
        let wire_len = read_u32(header, 16);
        let status = read_u32(header, 20);
        let mac = usize::from(read_u16(header, 24));
        let tci = read_u32(header, 32);
        let pkttype = header.get(HDR_LEN + SLL_PKTTYPE_OFFSET).copied();
        let data_start = at.checked_add(mac)?;
        let data = self
            .bytes
            .get(data_start..data_start.checked_add(snaplen)?)?;
        let gso = if self.vnet_hdr {
            // The virtio header ends where the frame starts and is checked to follow the
            // frame header.
            let vnet = self
                .bytes
                .get(data_start.checked_sub(VNET_HDR_LEN)?..data_start)
                .filter(|_| mac >= FRAME_HDR_LEN + VNET_HDR_LEN)?;
            Gso::from_virtio(vnet[1], u16::from_le_bytes([vnet[4], vnet[5]]))
        } else {
            None
        };
        let gso = gso.or_else(|| Gso::unsized_tcp(status & TP_STATUS_GSO_TCP != 0));
        self.remaining -= 1;
        self.offset = if next == 0 {
            self.bytes.len()
        } else {
            at + next
        };
        let offloaded =
            (status & libc::TP_STATUS_VLAN_VALID != 0).then_some(OffloadedTag { tci: tci as u16 });
        Some(Frame {
            data,
            wire_len,
            ts_ns: sec * 1_000_000_000 + nsec,
            offloaded,
            gso,
            outgoing: pkttype == Some(libc::PACKET_OUTGOING),
        })
    }
}

/// Walks `block`, a whole block as the kernel lays it out (descriptor first), exactly as a
/// worker walks a ring block opened without `PACKET_VNET_HDR`, and hands `each` every frame;
/// returns how many frames the descriptor claimed past a valid first offset.
///
/// Only for the fuzzer (`fuzz/fuzz_targets/ring_block.rs`), which has no ring to map: not part
/// of the library's interface. [`FrameWalker::over_block`] walks with virtio headers too.
#[doc(hidden)]
pub fn walk_block(block: &[u8], mut each: impl FnMut(Frame<'_>)) -> u32 {
    let (_, claimed) = frames_span(
        read_u32(block, NUM_PKTS_OFFSET),
        read_u32(block, FIRST_PKT_OFFSET) as usize,
        block.len(),
    );
    let mut frames = FrameWalker::over_block(block, false);
    while let Some(frame) = frames.next_frame() {
        each(frame);
    }
    claimed
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        self.ring.release_current();
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]))
}

fn set_option<T>(fd: BorrowedFd<'_>, option: libc::c_int, value: &T) -> io::Result<()> {
    set_level_option(fd, libc::SOL_PACKET, option, value)
}

fn set_level_option<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&raw const *value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_option<T: Copy>(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<T> {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the pointers describe `value` and `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            option,
            value.as_mut_ptr().cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        // SAFETY: zero-initialised plain data, partly or wholly written by the kernel.
        Ok(unsafe { value.assume_init() })
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the running kernel can describe every GSO type a packet socket may meet in a
/// `virtio_net_hdr`.
///
/// With `PACKET_VNET_HDR` the kernel drops (as a ring drop) any super-frame whose GSO type it
/// cannot describe. Before 6.2 that included UDP GSO (`SKB_GSO_UDP_L4`, which QUIC senders use),
/// so there the option stays off and super-frames count as one packet each.
pub fn vnet_hdr_supported() -> bool {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid utsname.
    if unsafe { libc::uname(&raw mut uts) } != 0 {
        return false;
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    kernel_at_least(&String::from_utf8_lossy(&release), (6, 2))
}

/// Whether a kernel release string such as `6.18.44-generic` is at least `want`.
fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// Looks up an interface's index in the calling thread's network namespace.
pub fn interface_index(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    // SAFETY: `cname` is a valid C string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    (index != 0).then_some(index)
}

/// Blocks laid out as the kernel writes them, for tests of the walk and of workers.
#[cfg(test)]
pub(crate) mod testing {
    use super::{
        DESC_LEN, FIRST_PKT_OFFSET, FRAME_HDR_LEN, HDR_LEN, NUM_PKTS_OFFSET, VNET_HDR_LEN,
    };

    /// One frame to lay out.
    pub(crate) struct TestFrame<'a> {
        pub(crate) data: &'a [u8],
        /// `tp_status` bits.
        pub(crate) status: u32,
        /// `virtio_net_hdr` `gso_type` and `gso_size`, written when the block has them.
        pub(crate) vnet: (u8, u16),
        /// `sll_pkttype`.
        pub(crate) pkttype: u8,
    }

    impl<'a> TestFrame<'a> {
        pub(crate) fn plain(data: &'a [u8]) -> Self {
            Self {
                data,
                status: 0,
                vnet: (0, 0),
                pkttype: 0,
            }
        }
    }

    /// Where a frame's data starts from its header: after the header, the `sockaddr_ll`
    /// and room for a virtio header, 16-byte aligned.
    pub(crate) const MAC: usize = (FRAME_HDR_LEN + VNET_HDR_LEN).div_ceil(16) * 16;

    /// A block of `size` bytes holding `frames`, with `vnet` headers or not.
    pub(crate) fn block(size: usize, frames: &[TestFrame<'_>], vnet: bool) -> Vec<u8> {
        let mut b = vec![0u8; size];
        put(&mut b, NUM_PKTS_OFFSET, frames.len() as u32);
        put(&mut b, FIRST_PKT_OFFSET, DESC_LEN as u32);
        let mut at = DESC_LEN;
        for (i, f) in frames.iter().enumerate() {
            let next = (MAC + f.data.len()).div_ceil(16) * 16;
            let last = i + 1 == frames.len();
            put(&mut b, at, if last { 0 } else { next as u32 });
            put(&mut b, at + 4, 1);
            put(&mut b, at + 12, f.data.len() as u32);
            put(&mut b, at + 16, f.data.len() as u32);
            put(&mut b, at + 20, f.status);
            b[at + 24..at + 26].copy_from_slice(&(MAC as u16).to_ne_bytes());
            b[at + HDR_LEN + 10] = f.pkttype;
            if vnet {
                let v = at + MAC - VNET_HDR_LEN;
                b[v + 1] = f.vnet.0;
                b[v + 4..v + 6].copy_from_slice(&f.vnet.1.to_le_bytes());
            }
            b[at + MAC..at + MAC + f.data.len()].copy_from_slice(f.data);
            at += next;
        }
        b
    }

    /// Writes a native-endian `u32` at `at`.
    pub(crate) fn put(b: &mut [u8], at: usize, value: u32) {
        b[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{MAC, TestFrame, block as laid_out, put};
    use super::*;

    fn walk(block: &[u8], vnet: bool) -> (Vec<(usize, Option<Gso>, bool)>, Walked) {
        let mut w = FrameWalker::over_block(block, vnet);
        let mut seen = Vec::new();
        while let Some(f) = w.next_frame() {
            seen.push((f.data.len(), f.gso, f.outgoing));
        }
        (seen, w.walked())
    }

    #[test]
    fn a_sound_block_walks_every_frame() {
        let (a, b) = ([1u8; 60], [2u8; 1514]);
        let mut tso = TestFrame::plain(&b);
        tso.vnet = (1, 1448);
        tso.pkttype = libc::PACKET_OUTGOING;
        let blk = laid_out(4096, &[TestFrame::plain(&a), tso], true);
        let (seen, walked) = walk(&blk, true);
        let gso = Gso::from_virtio(1, 1448);
        assert_eq!(seen, vec![(60, None, false), (1514, gso, true)]);
        assert_eq!(walked.unreadable, 0);
        // Without PACKET_VNET_HDR the bytes before a frame mean nothing.
        assert_eq!(walk(&blk, false).0[1].1, None);
    }

    #[test]
    fn a_flagged_tcp_super_frame_without_a_virtio_header_has_no_size() {
        let data = [3u8; 100];
        let mut f = TestFrame::plain(&data);
        f.status = TP_STATUS_GSO_TCP;
        let (seen, _) = walk(&laid_out(4096, &[f], false), false);
        assert_eq!(seen[0].1, Gso::unsized_tcp(true));
    }

    #[test]
    fn corrupt_blocks_report_the_frames_they_could_not_walk() {
        let data = [7u8; 100];
        let frames: Vec<_> = (0..4).map(|_| TestFrame::plain(&data)).collect();
        let good = laid_out(4096, &frames, false);
        assert_eq!(walk(&good, false).1.unreadable, 0);

        // The second frame's next offset points past the block: frames 3 and 4 are lost.
        let mut past = good.clone();
        let second = DESC_LEN + (MAC + 100).div_ceil(16) * 16;
        put(&mut past, second, 1 << 20);
        let (seen, walked) = walk(&past, false);
        assert_eq!((seen.len(), walked.unreadable), (2, 2));

        // The descriptor announces more frames than the block holds.
        let mut more = good.clone();
        put(&mut more, NUM_PKTS_OFFSET, 9);
        let (seen, walked) = walk(&more, false);
        assert_eq!((seen.len(), walked.unreadable), (4, 5));

        // A snap length running past the block.
        let mut long = good.clone();
        put(&mut long, DESC_LEN + 12, 5000);
        assert_eq!(walk(&long, false), (vec![], Walked { unreadable: 4 }));

        // A first-frame offset inside the descriptor leaves every announced frame unread.
        let mut first = good;
        put(&mut first, FIRST_PKT_OFFSET, 8);
        assert_eq!(walk(&first, false), (vec![], Walked { unreadable: 4 }));
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least("6.18.44-fc-v595", (6, 2)));
        assert!(kernel_at_least("6.2.0", (6, 2)));
        assert!(!kernel_at_least("6.1.90-generic", (6, 2)));
        assert!(!kernel_at_least("5.15.0", (6, 2)));
        assert!(!kernel_at_least("garbage", (6, 2)));
    }

    #[test]
    fn header_offsets_match_the_kernel_abi() {
        assert_eq!(HDR_LEN, 48);
        assert_eq!(std::mem::offset_of!(libc::tpacket3_hdr, tp_mac), 24);
        assert_eq!(std::mem::offset_of!(libc::tpacket3_hdr, hv1), 28);
        assert_eq!(
            std::mem::offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci),
            4
        );
        assert_eq!(
            std::mem::offset_of!(libc::tpacket_hdr_v1, num_pkts),
            NUM_PKTS_OFFSET - 8
        );
        assert_eq!(
            std::mem::offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt),
            FIRST_PKT_OFFSET - 8
        );
        assert_eq!(
            std::mem::offset_of!(libc::tpacket_block_desc, hdr),
            BLOCK_STATUS_OFFSET
        );
    }

    /// A block of `size` bytes whose descriptor claims `claimed` frames from `first` on, with
    /// frames (offset from the first header, next-offset, data) written in.
    fn block(size: usize, first: u32, claimed: u32, frames: &[(usize, u32, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[NUM_PKTS_OFFSET..NUM_PKTS_OFFSET + 4].copy_from_slice(&claimed.to_ne_bytes());
        b[FIRST_PKT_OFFSET..FIRST_PKT_OFFSET + 4].copy_from_slice(&first.to_ne_bytes());
        for &(at, next, data) in frames {
            let h = first as usize + at;
            b[h..h + 4].copy_from_slice(&next.to_ne_bytes());
            b[h + 12..h + 16].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            b[h + 16..h + 20].copy_from_slice(&(data.len() as u32 + 4).to_ne_bytes());
            b[h + 24..h + 26].copy_from_slice(&(HDR_LEN as u16).to_ne_bytes());
            b[h + HDR_LEN..h + HDR_LEN + data.len()].copy_from_slice(data);
        }
        b
    }

    fn walked(block: &[u8]) -> (u32, Vec<(Vec<u8>, u32)>) {
        let mut seen = Vec::new();
        let claimed = walk_block(block, |f| seen.push((f.data.to_vec(), f.wire_len)));
        (claimed, seen)
    }

    #[test]
    fn a_block_walk_follows_the_headers_and_stops_at_bad_ones() {
        let good = block(512, 48, 2, &[(0, 64, b"abc"), (64, 0, b"defgh")]);
        assert_eq!(
            walked(&good),
            (2, vec![(b"abc".to_vec(), 7), (b"defgh".to_vec(), 9)])
        );
        // A first offset inside the descriptor or past the block: an empty block.
        assert_eq!(walked(&block(512, 8, 2, &[])), (0, vec![]));
        let mut past = good.clone();
        past[FIRST_PKT_OFFSET..FIRST_PKT_OFFSET + 4].copy_from_slice(&512u32.to_ne_bytes());
        assert_eq!(walked(&past), (0, vec![]));
        // A snap length running past the block ends the walk at that frame.
        let mut long = good.clone();
        long[48 + 64 + 12..48 + 64 + 16].copy_from_slice(&400u32.to_ne_bytes());
        assert_eq!(walked(&long), (2, vec![(b"abc".to_vec(), 7)]));
        // More frames claimed than there are: the walk ends where the block does.
        let mut over = good;
        over[NUM_PKTS_OFFSET..NUM_PKTS_OFFSET + 4].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(walked(&over).1.len(), 2);
        assert_eq!(walked(&[0u8; 10]), (0, vec![]));
    }
}
