//! Crafted Ethernet frames with known sizes, for exact-count tests and parser tests.

use std::net::IpAddr;

use etherparse::{IpNumber, PacketBuilder};

/// Destination MAC of every test frame: locally administered and owned by no interface.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
/// Source MAC of every test frame.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// The transport part of a crafted frame.
#[derive(Clone, Copy, Debug)]
pub enum L4 {
    /// UDP with these ports.
    Udp(u16, u16),
    /// TCP with these ports.
    Tcp(u16, u16),
    /// ICMP echo request (ICMPv6 for IPv6 addresses).
    Echo,
    /// A protocol whose header starts with two ports (SCTP, UDP-Lite), written raw.
    Ports(u8, u16, u16),
}

/// A frame and the facts a test asserts about it.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The bytes as sent.
    pub bytes: Vec<u8>,
}

impl Frame {
    /// Length on the wire without FCS, tags included.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether the frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// An IPv4 or IPv6 frame with `payload` bytes after the transport header.
    pub fn ip(src: IpAddr, dst: IpAddr, l4: L4, payload: usize) -> Self {
        let body = vec![0x5a; payload];
        let eth = PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
        let mut bytes = Vec::new();
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = eth.ipv4(s.octets(), d.octets(), 64);
                match l4 {
                    L4::Udp(sp, dp) => ip.udp(sp, dp).write(&mut bytes, &body),
                    L4::Tcp(sp, dp) => ip.tcp(sp, dp, 1, 1024).write(&mut bytes, &body),
                    L4::Echo => ip.icmpv4_echo_request(7, 1).write(&mut bytes, &body),
                    L4::Ports(proto, sp, dp) => {
                        ip.write(&mut bytes, IpNumber(proto), &ports_then(sp, dp, &body))
                    }
                }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = eth.ipv6(s.octets(), d.octets(), 64);
                match l4 {
                    L4::Udp(sp, dp) => ip.udp(sp, dp).write(&mut bytes, &body),
                    L4::Tcp(sp, dp) => ip.tcp(sp, dp, 1, 1024).write(&mut bytes, &body),
                    L4::Echo => ip.icmpv6_echo_request(7, 1).write(&mut bytes, &body),
                    L4::Ports(proto, sp, dp) => {
                        ip.write(&mut bytes, IpNumber(proto), &ports_then(sp, dp, &body))
                    }
                }
            }
            _ => panic!("mixed address families: {src} -> {dst}"),
        }
        .unwrap_or_else(|e| panic!("building a test frame: {e}"));
        Self { bytes }
    }

    /// The same frame with a VLAN tag (`tpid`, `vid`) inserted as its new outermost tag.
    #[must_use]
    pub fn tagged(mut self, tpid: u16, vid: u16) -> Self {
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
        self.bytes.splice(12..12, tag);
        self
    }

    /// An ARP request: a non-IP frame of 42 bytes.
    pub fn arp() -> Self {
        let mut bytes = ethernet(0x0806);
        bytes.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        bytes.extend_from_slice(&SRC_MAC);
        bytes.extend_from_slice(&[198, 18, 0, 2]);
        bytes.extend_from_slice(&[0; 6]);
        bytes.extend_from_slice(&[198, 18, 0, 1]);
        Self { bytes }
    }

    /// A frame that claims IPv4 but carries only `len` bytes of it.
    pub fn truncated_ipv4(len: usize) -> Self {
        let mut bytes = ethernet(0x0800);
        bytes.extend(std::iter::once(0x45).chain(std::iter::repeat_n(0, len.saturating_sub(1))));
        Self { bytes }
    }

    /// An IPv4 frame whose header length field says 12 bytes, which is impossible.
    pub fn bad_ihl_ipv4() -> Self {
        let mut frame = Self::ip(
            "198.18.0.9".parse().unwrap(),
            "198.18.0.1".parse().unwrap(),
            L4::Udp(1, 2),
            18,
        );
        frame.bytes[14] = 0x43;
        frame
    }

    /// An IPv6 UDP frame whose headers pass through `extensions` (next-header numbers 0, 43,
    /// 44 or 60) before the UDP header. A fragment header has offset `fragment_offset`.
    pub fn ipv6_with_extensions(
        src: [u8; 16],
        dst: [u8; 16],
        extensions: &[u8],
        fragment_offset: u16,
        ports: (u16, u16),
        payload: usize,
    ) -> Self {
        let mut chain = Vec::new();
        for (i, &kind) in extensions.iter().enumerate() {
            let next = extensions.get(i + 1).copied().unwrap_or(17);
            if kind == 44 {
                chain.push(next);
                chain.push(0);
                chain.extend_from_slice(&(fragment_offset << 3).to_be_bytes());
                chain.extend_from_slice(&[0, 0, 0, 1]);
            } else {
                // Eight bytes: next header, length 0, then a PadN option of four bytes.
                chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
        }
        let udp_len = 8 + payload;
        chain.extend_from_slice(&ports.0.to_be_bytes());
        chain.extend_from_slice(&ports.1.to_be_bytes());
        chain.extend_from_slice(&(udp_len as u16).to_be_bytes());
        chain.extend_from_slice(&[0, 0]);
        chain.extend(std::iter::repeat_n(0x5a, payload));
        let mut bytes = ethernet(0x86dd);
        bytes.extend_from_slice(&[0x60, 0, 0, 0]);
        bytes.extend_from_slice(&(chain.len() as u16).to_be_bytes());
        bytes.push(extensions.first().copied().unwrap_or(17));
        bytes.push(64);
        bytes.extend_from_slice(&src);
        bytes.extend_from_slice(&dst);
        bytes.extend_from_slice(&chain);
        Self { bytes }
    }

    /// An IPv4 fragment with offset `offset8` (in 8-byte units) of protocol `proto`.
    pub fn ipv4_fragment(src: [u8; 4], dst: [u8; 4], proto: u8, offset8: u16, len: usize) -> Self {
        let total = 20 + len;
        let mut bytes = ethernet(0x0800);
        bytes.extend_from_slice(&[0x45, 0]);
        bytes.extend_from_slice(&(total as u16).to_be_bytes());
        bytes.extend_from_slice(&[0, 1]);
        bytes.extend_from_slice(&(offset8 & 0x1fff).to_be_bytes());
        bytes.extend_from_slice(&[64, proto, 0, 0]);
        bytes.extend_from_slice(&src);
        bytes.extend_from_slice(&dst);
        bytes.extend(std::iter::repeat_n(0xa5, len));
        Self { bytes }
    }
}

fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&DST_MAC);
    bytes.extend_from_slice(&SRC_MAC);
    bytes.extend_from_slice(&ethertype.to_be_bytes());
    bytes
}

fn ports_then(src: u16, dst: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&src.to_be_bytes());
    out.extend_from_slice(&dst.to_be_bytes());
    out.extend_from_slice(body);
    out
}
