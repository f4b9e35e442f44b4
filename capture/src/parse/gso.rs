//! GRO/GSO super-frames: one frame the kernel hands over for several packets on the wire.
//!
//! A NIC or veth that aggregates received packets (GRO), or a local sender whose segmentation
//! is left to the device (TSO/GSO), shows `AF_PACKET` one frame with one set of headers and
//! the payload of many packets, up to 64 KiB, or beyond with BIG TCP. With `PACKET_VNET_HDR`
//! the kernel tells the segment size, so the packets and bytes the wire carried follow:
//! `segments = ceil(payload / gso_size)`, and every segment after the first repeats the
//! link, IP and transport headers (and an offloaded VLAN tag); the hop-by-hop header IPv6 BIG
//! TCP inserts is on no segment. See `docs/design.md`.

use super::{Ip, proto};

/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const VIRTIO_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
const VIRTIO_GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO, UDP GRO).
const VIRTIO_GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`, a flag on the type.
const VIRTIO_GSO_ECN: u8 = 0x80;

/// Which transport a super-frame segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// UDP (each segment is a datagram with its own UDP header).
    Udp,
}

/// What the kernel said about a super-frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    /// The transport it segments.
    pub kind: GsoKind,
    /// Payload bytes per segment; 0 when the kernel flagged a TCP super-frame
    /// (`TP_STATUS_GSO_TCP`) without telling its size.
    pub size: u16,
}

impl Gso {
    /// From a `virtio_net_hdr`'s `gso_type` and `gso_size`; `None` for a frame that is not a
    /// super-frame.
    #[inline]
    pub fn from_virtio(gso_type: u8, size: u16) -> Option<Self> {
        let kind = match gso_type & !VIRTIO_GSO_ECN {
            VIRTIO_GSO_TCPV4 | VIRTIO_GSO_TCPV6 => GsoKind::Tcp,
            VIRTIO_GSO_UDP_L4 => GsoKind::Udp,
            _ => return None,
        };
        Some(Self { kind, size })
    }

    /// A TCP super-frame of unknown segment size, when `flagged`.
    #[inline]
    pub fn unsized_tcp(flagged: bool) -> Option<Self> {
        flagged.then_some(Self {
            kind: GsoKind::Tcp,
            size: 0,
        })
    }
}

/// The packets and bytes on the wire of a super-frame.
///
/// `l3` is the frame from the IP header on, `l2` the link-layer bytes before it, `tag_bytes`
/// an offloaded tag's bytes per packet. A super-frame whose segment size is unknown, whose
/// transport is not the one the kernel segments (a tunnel's outer header), or which is a
/// later fragment counts as one packet of its own length.
pub(super) fn segments(
    gso: Gso,
    ip: &Ip,
    l3: &[u8],
    l2: usize,
    wire_len: u32,
    tag_bytes: u64,
) -> (u32, u64) {
    let whole = (1, u64::from(wire_len) + tag_bytes);
    let Some(l4) = ip.l4 else {
        return whole;
    };
    let transport = match (gso.kind, ip.proto) {
        (GsoKind::Tcp, proto::TCP) => match l3.get(l4 + 12) {
            Some(&offset) if offset >> 4 >= 5 => usize::from(offset >> 4) * 4,
            _ => return whole,
        },
        (GsoKind::Udp, proto::UDP) => 8,
        _ => return whole,
    };
    let payload = u64::from(wire_len).saturating_sub((l2 + l4 + transport) as u64);
    if gso.size == 0 || payload == 0 {
        return whole;
    }
    // What each segment carries before its payload: IPv6 BIG TCP's jumbo header is not on
    // the wire.
    let headers = (l2 + l4 + transport - ip.jumbo) as u64;
    let segments = payload.div_ceil(u64::from(gso.size));
    let bytes = segments * headers + payload + segments * tag_bytes;
    (u32::try_from(segments).unwrap_or(u32::MAX), bytes)
}
