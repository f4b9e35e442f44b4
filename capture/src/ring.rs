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
use crate::parse::OffloadedTag;

/// One frame in a block: borrowed from the ring until the block is released.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Captured bytes from the MAC header on (`tp_snaplen` of them).
    pub data: &'a [u8],
    /// Length on the wire (`tp_len`), excluding any tag the kernel moved into metadata.
    pub wire_len: u32,
    /// Receive timestamp, ns since the epoch.
    pub ts_ns: u64,
    /// The VLAN tag the kernel moved out of the frame, if any.
    pub offloaded: Option<OffloadedTag>,
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
}

// SAFETY: the mapping is owned by this value alone and only accessed through `&mut self`.
unsafe impl Send for Ring {}

impl Ring {
    /// Opens the socket and maps its ring: steps 1 and 2 of the setup order.
    ///
    /// The socket is created with protocol 0, so the kernel delivers nothing to it until
    /// [`Ring::bind`]; that leaves room to attach a filter first, and the ring never holds a
    /// frame that did not pass the filter.
    pub fn open(interface: &str, geometry: RingGeometry) -> Result<Self, CaptureError> {
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
        let mut reject = [libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let program = libc::sock_fprog {
            len: 1,
            filter: reject.as_mut_ptr(),
        };
        set_level_option(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &program,
        )
        .map_err(|e| CaptureError::option("SO_ATTACH_FILTER", &self.interface, e))
    }

    /// Removes the socket's filter, letting every frame through.
    pub fn detach_filter(&self) -> Result<(), CaptureError> {
        let unused: libc::c_int = 0;
        set_level_option(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_DETACH_FILTER,
            &unused,
        )
        .map_err(|e| CaptureError::option("SO_DETACH_FILTER", &self.interface, e))
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
        let (first, remaining) = frames_span(num_pkts, first, bs);
        // SAFETY: `first..bs` lies inside this block and past its descriptor, so the slice
        // never overlaps the status word that `release_current` stores to; nothing writes the
        // block while userspace owns it.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(start + first), bs - first)
        };
        Some(Block {
            ring: self,
            frames: Frames {
                bytes,
                remaining,
                offset: 0,
            },
        })
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
    frames: Frames<'r>,
}

impl Block<'_> {
    /// The next frame, or `None` when the block is done or its headers point outside it.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.frames.next_frame()
    }
}

/// The walk over one block's frames, which trusts no offset or length in their headers.
struct Frames<'a> {
    /// The block from its first packet header to its end.
    bytes: &'a [u8],
    remaining: u32,
    offset: usize,
}

impl<'a> Frames<'a> {
    fn next_frame(&mut self) -> Option<Frame<'a>> {
        if self.remaining == 0 {
            return None;
        }
        let at = self.offset;
        let header = self.bytes.get(at..at.checked_add(HDR_LEN)?)?;
        let next = read_u32(header, 0) as usize;
        let sec = u64::from(read_u32(header, 4));
        let nsec = u64::from(read_u32(header, 8));
        let snaplen = read_u32(header, 12) as usize;
        let wire_len = read_u32(header, 16);
        let status = read_u32(header, 20);
        let mac = usize::from(read_u16(header, 24));
        let tci = read_u32(header, 32);
        let data_start = at.checked_add(mac)?;
        let data = self
            .bytes
            .get(data_start..data_start.checked_add(snaplen)?)?;
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
        })
    }
}

/// Walks `block`, a whole block as the kernel lays it out (descriptor first), exactly as a
/// worker walks a ring block, and hands `each` every frame; returns how many frames the
/// descriptor claimed past a valid first offset.
///
/// Only for the fuzzer (`fuzz/fuzz_targets/ring_block.rs`), which has no ring to map: not part
/// of the library's interface.
#[doc(hidden)]
pub fn walk_block(block: &[u8], mut each: impl FnMut(Frame<'_>)) -> u32 {
    let (first, remaining) = frames_span(
        read_u32(block, NUM_PKTS_OFFSET),
        read_u32(block, FIRST_PKT_OFFSET) as usize,
        block.len(),
    );
    let mut frames = Frames {
        bytes: block.get(first..).unwrap_or_default(),
        remaining,
        offset: 0,
    };
    while let Some(frame) = frames.next_frame() {
        each(frame);
    }
    remaining
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

/// Looks up an interface's index in the calling thread's network namespace.
pub fn interface_index(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    // SAFETY: `cname` is a valid C string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    (index != 0).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

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
