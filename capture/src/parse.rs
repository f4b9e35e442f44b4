//! Zero-copy parsing of one captured frame into what the counters need.
//!
//! Every read is bounds-checked against the captured bytes, nothing allocates, and no input can
//! panic: a frame that is not IP, is cut short, or has an impossible header comes back as a
//! [`ParseError`] so it is counted per reason and never as traffic. Frames come from an
//! Ethernet-like link ([`parse_frame`]) or from a link without a link-layer header
//! ([`parse_link_frame`] with [`LinkKind::Ip`]); a GRO/GSO super-frame is counted as the
//! packets it stands for on the wire ([`gso`]).

use std::net::{IpAddr, Ipv6Addr};

/// `EtherType` of IPv4.
pub const ETH_P_IPV4: u16 = 0x0800;
/// `EtherType` of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// `EtherType` of an 802.1Q tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// `EtherType` of an 802.1ad (QinQ service) tag.
pub const ETH_P_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ `EtherType` still seen on some switches.
pub const ETH_P_QINQ_LEGACY: u16 = 0x9100;
/// In-band VLAN tags skipped before the frame is declared non-IP.
pub const MAX_INBAND_TAGS: usize = 2;
/// IPv6 extension headers walked before the packet is declared malformed.
pub const MAX_IPV6_EXTENSIONS: usize = 8;
/// Bytes of one VLAN tag on the wire.
pub const VLAN_TAG_LEN: u32 = 4;

const ETH_HEADER_LEN: usize = 14;

/// IP protocol numbers the parser knows by name.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;

    /// The lowercase name used in snapshots, or `None` for protocols shown by number.
    pub fn name(proto: u8) -> Option<&'static str> {
        match proto {
            ICMP => Some("icmp"),
            TCP => Some("tcp"),
            UDP => Some("udp"),
            ICMPV6 => Some("icmpv6"),
            SCTP => Some("sctp"),
            UDPLITE => Some("udplite"),
            _ => None,
        }
    }

    /// Whether the protocol's header starts with 16-bit source and destination ports.
    pub(crate) fn has_ports(proto: u8) -> bool {
        matches!(proto, TCP | UDP | SCTP | UDPLITE)
    }
}

const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AH: u8 = 51;
const IPV6_DSTOPTS: u8 = 60;

/// Why a frame was not counted as IP traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Not IPv4 or IPv6 (ARP, LLDP, too many VLAN tags, 802.3 length frames...).
    NonIp,
    /// A header the frame claims to carry is cut short.
    Truncated,
    /// A header carries an impossible value (wrong version, short IHL, bad lengths...).
    BadHeader,
}

/// An IPv4 or IPv6 address as one 128-bit word: IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`).
///
/// One word compares, hashes and copies in a single instruction or two, which the per-packet
/// tables need; [`IpAddr`] is an enum whose derived `Hash` and `Ord` cost several steps. An IPv6
/// packet that carries an IPv4-mapped address is, by definition, the same host as that IPv4
/// address and is counted as such.
///
/// The word is kept as two 64-bit halves, high half first: a `u128` field would align every
/// key that holds an address to 16 bytes, and the padding that adds to a flow key (80 bytes
/// instead of 56) is a cache line more per table slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Addr([u64; 2]);

/// The 128-bit order, compared as one word: the derived order on the halves compiles to a
/// loop with a branch per half.
impl Ord for Addr {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_bits().cmp(&other.to_bits())
    }
}

impl PartialOrd for Addr {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::hash::Hash for Addr {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.to_bits());
    }
}

impl Addr {
    const V4_MAPPED: u128 = 0xffff << 32;

    /// The address whose 128-bit word (IPv4 mapped) is `bits`.
    #[inline]
    pub const fn from_bits(bits: u128) -> Self {
        Self([(bits >> 64) as u64, bits as u64])
    }

    /// The address as one 128-bit word (IPv4 mapped).
    #[inline]
    pub const fn to_bits(self) -> u128 {
        (self.0[0] as u128) << 64 | self.0[1] as u128
    }

    /// The address of four IPv4 octets.
    #[inline]
    pub fn v4(octets: [u8; 4]) -> Self {
        Self::from_bits(Self::V4_MAPPED | u128::from(u32::from_be_bytes(octets)))
    }

    /// The address of sixteen IPv6 octets.
    #[inline]
    pub fn v6(octets: [u8; 16]) -> Self {
        Self::from_bits(u128::from_be_bytes(octets))
    }
}

impl From<Addr> for IpAddr {
    fn from(addr: Addr) -> Self {
        Ipv6Addr::from_bits(addr.to_bits()).to_canonical()
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::v4(v4.octets()),
            IpAddr::V6(v6) => Self::from_bits(v6.to_bits()),
        }
    }
}

/// A VLAN tag the kernel moved out of the frame into the ring header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadedTag {
    /// The tag control information; the low 12 bits are the VLAN id.
    pub tci: u16,
}

/// How a link's frames start, which decides where parsing begins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// An Ethernet header first (Ethernet, veth, bridges, bonds, VLANs, loopback).
    #[default]
    Ethernet,
    /// The IP header first: links with no link-layer header (tun, WireGuard, ipip, sit).
    Ip,
}

/// What one captured frame says, borrowed from nothing: all fields are copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Source and destination ports, for the first fragment of a port-carrying protocol.
    pub ports: Option<(u16, u16)>,
    /// The outermost VLAN id, offloaded or in-band.
    pub vlan: Option<u16>,
    /// VLAN tags the frame carried, offloaded and in-band.
    pub tags: u8,
    /// Packets on the wire the frame stands for: 1, or a GRO/GSO super-frame's segments.
    pub segments: u32,
    /// Their bytes on the wire: the frame's length plus an offloaded tag, and for a
    /// super-frame the headers each further segment repeats.
    pub bytes: u64,
}

/// Parses one Ethernet frame that is not a super-frame.
///
/// `data` is the captured bytes starting at the MAC header, `wire_len` the frame's length on
/// the wire as the kernel reports it (`tp_len`, which excludes an offloaded tag), and
/// `offloaded` the tag the kernel moved into metadata, if any.
pub fn parse_frame(
    data: &[u8],
    wire_len: u32,
    offloaded: Option<OffloadedTag>,
) -> Result<Packet, ParseError> {
    parse_link_frame(LinkKind::Ethernet, data, wire_len, offloaded, None)
}

/// Parses one frame from a link of kind `link`.
///
/// As [`parse_frame`], plus `gso`, what the kernel said about a GRO/GSO super-frame. On a
/// [`LinkKind::Ip`] link `data` starts at the IP header and `offloaded` is ignored.
#[inline]
pub fn parse_link_frame(
    link: LinkKind,
    data: &[u8],
    wire_len: u32,
    offloaded: Option<OffloadedTag>,
    gso: Option<Gso>,
) -> Result<Packet, ParseError> {
    let (ethertype, offset, vlan, tags) = match link {
        LinkKind::Ethernet => ethernet(data, offloaded)?,
        LinkKind::Ip => match data.first().map(|b| b >> 4) {
            Some(4) => (ETH_P_IPV4, 0, None, 0),
            Some(6) => (ETH_P_IPV6, 0, None, 0),
            Some(_) => return Err(ParseError::NonIp),
            None => return Err(ParseError::Truncated),
        },
    };
    // The IP packet may not extend past the frame on the wire.
    let wire_rest = (wire_len as usize).saturating_sub(offset);
    let l3 = data.get(offset..).ok_or(ParseError::Truncated)?;
    let ip = match ethertype {
        ETH_P_IPV4 => parse_ipv4(l3, wire_rest, gso.is_some())?,
        ETH_P_IPV6 => parse_ipv6(l3, wire_rest)?,
        _ => return Err(ParseError::NonIp),
    };
    let tag_bytes = match (link, offloaded) {
        (LinkKind::Ethernet, Some(_)) => u64::from(VLAN_TAG_LEN),
        _ => 0,
    };
    let (segments, bytes) = match gso {
        None => (1, u64::from(wire_len) + tag_bytes),
        Some(gso) => gso::segments(gso, &ip, l3, offset, wire_len, tag_bytes),
    };
    Ok(Packet {
        src: ip.src,
        dst: ip.dst,
        proto: ip.proto,
        ports: ip.ports,
        vlan,
        tags,
        segments,
        bytes,
    })
}

/// Reads the Ethernet header and in-band tags: the `EtherType` inside them, where the IP
/// header starts, the outermost VLAN id and the number of tags.
#[inline]
fn ethernet(
    data: &[u8],
    offloaded: Option<OffloadedTag>,
) -> Result<(u16, usize, Option<u16>, u8), ParseError> {
    let mut ethertype = read_u16(data, 12).ok_or(ParseError::Truncated)?;
    let mut offset = ETH_HEADER_LEN;
    let mut vlan = offloaded.map(|tag| tag.tci & 0x0fff);
    let mut tags = u8::from(offloaded.is_some());
    let mut inband = 0;
    while is_vlan_ethertype(ethertype) {
        if inband == MAX_INBAND_TAGS {
            return Err(ParseError::NonIp);
        }
        let tci = read_u16(data, offset).ok_or(ParseError::Truncated)?;
        ethertype = read_u16(data, offset + 2).ok_or(ParseError::Truncated)?;
        vlan.get_or_insert(tci & 0x0fff);
        offset += VLAN_TAG_LEN as usize;
        inband += 1;
        tags += 1;
    }
    Ok((ethertype, offset, vlan, tags))
}

/// What the IP layer of a packet says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ip {
    src: Addr,
    dst: Addr,
    proto: u8,
    ports: Option<(u16, u16)>,
    /// Where the transport header starts, from the IP header; `None` in a later fragment.
    l4: Option<usize>,
    /// Bytes of an IPv6 BIG TCP jumbo hop-by-hop header (8, else 0): the kernel inserts it in
    /// a super-frame past 64 KiB and strips it when segmenting, so no packet on the wire has it.
    jumbo: usize,
}

/// Parses an IPv4 header. A total length of 0 is taken from the frame when the kernel says
/// the frame is a super-frame (`gso`): IPv4 BIG TCP writes 0 once a packet passes 64 KiB.
fn parse_ipv4(ip: &[u8], wire_rest: usize, gso: bool) -> Result<Ip, ParseError> {
    let header: &[u8; 20] = ip
        .get(..20)
        .and_then(|h| h.try_into().ok())
        .ok_or(ParseError::Truncated)?;
    if header[0] >> 4 != 4 {
        return Err(ParseError::BadHeader);
    }
    let ihl = usize::from(header[0] & 0x0f) * 4;
    let mut total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if total_len == 0 && gso {
        total_len = wire_rest;
    }
    if ihl < 20 || total_len < ihl {
        return Err(ParseError::BadHeader);
    }
    if total_len > wire_rest || ihl > ip.len() {
        return Err(ParseError::Truncated);
    }
    let fragment_offset = u16::from_be_bytes([header[6], header[7]]) & 0x1fff;
    let proto = header[9];
    let src = Addr::v4([header[12], header[13], header[14], header[15]]);
    let dst = Addr::v4([header[16], header[17], header[18], header[19]]);
    let (ports, l4) = if fragment_offset == 0 {
        (read_ports(ip, ihl, total_len, proto)?, Some(ihl))
    } else {
        (None, None)
    };
    Ok(Ip {
        src,
        dst,
        proto,
        ports,
        l4,
        jumbo: 0,
    })
}

fn parse_ipv6(ip: &[u8], wire_rest: usize) -> Result<Ip, ParseError> {
    let header: &[u8; 40] = ip
        .get(..40)
        .and_then(|h| h.try_into().ok())
        .ok_or(ParseError::Truncated)?;
    if header[0] >> 4 != 6 {
        return Err(ParseError::BadHeader);
    }
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    // A zero payload length means a jumbogram (or IPv6 BIG TCP); its real length is the
    // frame's.
    let end = if payload_len == 0 {
        wire_rest
    } else {
        40 + payload_len
    };
    if end > wire_rest {
        return Err(ParseError::Truncated);
    }
    let src = ipv6_at(header, 8);
    let dst = ipv6_at(header, 24);
    // A hop-by-hop header holding only a Jumbo Payload option (type 0xc2, length 4).
    let jumbo = if payload_len == 0
        && header[6] == IPV6_HOPOPTS
        && matches!(ip.get(41..44), Some([0, 0xc2, 4]))
    {
        8
    } else {
        0
    };
    let mut next = header[6];
    let mut offset = 40;
    let without_ports = |proto: u8| Ip {
        src,
        dst,
        proto,
        ports: None,
        l4: None,
        jumbo,
    };
    for _ in 0..=MAX_IPV6_EXTENSIONS {
        if !matches!(
            next,
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS | IPV6_AH | IPV6_FRAGMENT
        ) {
            return Ok(Ip {
                src,
                dst,
                proto: next,
                ports: read_ports(ip, offset, end, next)?,
                l4: Some(offset),
                jumbo,
            });
        }
        let fixed = if next == IPV6_FRAGMENT { 8 } else { 2 };
        if offset + fixed > end {
            return Err(ParseError::Truncated);
        }
        let Some(ext) = ip.get(offset..offset + fixed) else {
            // Inside the packet but past the captured bytes: cut by the snap length, not on
            // the wire. The packet counts under its addresses, with the header it could not
            // read as its protocol.
            return Ok(without_ports(next));
        };
        let len = match next {
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS => (usize::from(ext[1]) + 1) * 8,
            IPV6_AH => (usize::from(ext[1]) + 2) * 4,
            _ => {
                let fragment_offset = u16::from_be_bytes([ext[2], ext[3]]) >> 3;
                if fragment_offset != 0 {
                    // A later fragment: what follows is the middle of the fragmentable part,
                    // not the header `ext[0]` names, so the walk stops here. The protocol is
                    // that next header (an extension header's number when one opened the
                    // fragmentable part), with no ports.
                    return Ok(without_ports(ext[0]));
                }
                8
            }
        };
        if offset + len > end {
            return Err(ParseError::Truncated);
        }
        next = ext[0];
        offset += len;
    }
    Err(ParseError::BadHeader)
}

/// Reads the ports at `l4` when `proto` has them; `end` bounds the IP packet.
fn read_ports(
    ip: &[u8],
    l4: usize,
    end: usize,
    proto: u8,
) -> Result<Option<(u16, u16)>, ParseError> {
    if !proto::has_ports(proto) {
        return Ok(None);
    }
    if l4 + 4 > end {
        return Err(ParseError::Truncated);
    }
    // Inside the packet but not captured: cut by the snap length, so counted without ports.
    Ok(read_u16(ip, l4).zip(read_u16(ip, l4 + 2)))
}

fn ipv6_at(header: &[u8; 40], at: usize) -> Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&header[at..at + 16]);
    Addr::v6(octets)
}

fn is_vlan_ethertype(ethertype: u16) -> bool {
    matches!(ethertype, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_LEGACY)
}

fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

mod gso;

pub use gso::{Gso, GsoKind};

#[cfg(test)]
mod tests;
