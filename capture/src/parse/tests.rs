use std::net::IpAddr;

use testlab::{Frame, L4};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(s: &str) -> Addr {
    ip(s).into()
}

fn parse(frame: &Frame) -> Result<Packet, ParseError> {
    parse_frame(&frame.bytes, frame.bytes.len() as u32, None)
}

const V6A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const V6B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

#[test]
fn ipv4_transports() {
    let cases = [
        (L4::Udp(4000, 53), proto::UDP, Some((4000, 53))),
        (L4::Tcp(5555, 80), proto::TCP, Some((5555, 80))),
        (L4::Echo, proto::ICMP, None),
        (L4::Ports(proto::SCTP, 9, 10), proto::SCTP, Some((9, 10))),
        (
            L4::Ports(proto::UDPLITE, 11, 12),
            proto::UDPLITE,
            Some((11, 12)),
        ),
        (L4::Ports(47, 1, 2), 47, None),
    ];
    for (l4, want_proto, want_ports) in cases {
        let frame = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), l4, 10);
        let p = parse(&frame).unwrap();
        assert_eq!(IpAddr::from(p.src), ip("198.18.0.2"));
        assert_eq!(IpAddr::from(p.dst), ip("198.18.0.1"));
        assert_eq!(
            (p.proto, p.ports, p.vlan, p.tags),
            (want_proto, want_ports, None, 0)
        );
    }
}

#[test]
fn ipv6_transports() {
    for (l4, want_proto, want_ports) in [
        (L4::Udp(1, 2), proto::UDP, Some((1, 2))),
        (L4::Tcp(3, 4), proto::TCP, Some((3, 4))),
        (L4::Echo, proto::ICMPV6, None),
    ] {
        let frame = Frame::ip(ip("2001:db8::2"), ip("2001:db8::1"), l4, 0);
        let p = parse(&frame).unwrap();
        assert_eq!((p.src, p.dst), (addr("2001:db8::2"), addr("2001:db8::1")));
        assert_eq!(IpAddr::from(p.src), ip("2001:db8::2"));
        assert_eq!((p.proto, p.ports), (want_proto, want_ports));
    }
}

#[test]
fn ipv4_options_are_skipped() {
    let mut frame = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(7, 8), 0);
    // Grow the header by one 4-byte NOP option and fix the lengths.
    frame.bytes.splice(34..34, [1, 1, 1, 1]);
    frame.bytes[14] = 0x46;
    let total = u16::from_be_bytes([frame.bytes[16], frame.bytes[17]]) + 4;
    frame.bytes[16..18].copy_from_slice(&total.to_be_bytes());
    assert_eq!(parse(&frame).unwrap().ports, Some((7, 8)));
}

#[test]
fn ipv4_fragments_carry_ports_only_in_the_first() {
    let first = Frame::ipv4_fragment([198, 18, 0, 2], [198, 18, 0, 1], proto::UDP, 0, 16);
    let later = Frame::ipv4_fragment([198, 18, 0, 2], [198, 18, 0, 1], proto::UDP, 2, 16);
    assert_eq!(parse(&first).unwrap().ports, Some((0xa5a5, 0xa5a5)));
    let p = parse(&later).unwrap();
    assert_eq!((p.proto, p.ports), (proto::UDP, None));
}

#[test]
fn vlan_tags_inband_and_offloaded() {
    let base = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(1, 2), 4);
    let one = base.clone().tagged(ETH_P_8021Q, 100);
    let p = parse(&one).unwrap();
    assert_eq!((p.vlan, p.tags, p.ports), (Some(100), 1, Some((1, 2))));

    let qinq = base
        .clone()
        .tagged(ETH_P_8021Q, 300)
        .tagged(ETH_P_8021AD, 200);
    let p = parse(&qinq).unwrap();
    assert_eq!((p.vlan, p.tags), (Some(200), 2));

    // The kernel moved the outer tag: the data holds only the inner one.
    let inner = base.clone().tagged(ETH_P_8021Q, 300);
    let p = parse_frame(
        &inner.bytes,
        inner.bytes.len() as u32,
        Some(OffloadedTag { tci: 0x2000 | 0xc8 }),
    )
    .unwrap();
    assert_eq!((p.vlan, p.tags), (Some(200), 2));

    let three = base
        .tagged(ETH_P_8021Q, 1)
        .tagged(ETH_P_8021Q, 2)
        .tagged(ETH_P_8021AD, 3);
    assert_eq!(parse(&three), Err(ParseError::NonIp));
}

#[test]
fn ipv6_extension_chains() {
    let f = Frame::ipv6_with_extensions(V6A, V6B, &[0, 43, 60], 0, (11, 22), 5);
    let p = parse(&f).unwrap();
    assert_eq!((p.proto, p.ports), (proto::UDP, Some((11, 22))));

    let first = Frame::ipv6_with_extensions(V6A, V6B, &[0, 44], 0, (11, 22), 5);
    assert_eq!(parse(&first).unwrap().ports, Some((11, 22)));
    let later = Frame::ipv6_with_extensions(V6A, V6B, &[44], 3, (11, 22), 5);
    let p = parse(&later).unwrap();
    assert_eq!((p.proto, p.ports), (proto::UDP, None));

    let eight = Frame::ipv6_with_extensions(V6A, V6B, &[60; 8], 0, (1, 2), 0);
    assert_eq!(parse(&eight).unwrap().ports, Some((1, 2)));
    let nine = Frame::ipv6_with_extensions(V6A, V6B, &[60; 9], 0, (1, 2), 0);
    assert_eq!(parse(&nine), Err(ParseError::BadHeader));
}

#[test]
fn non_ip_frames() {
    assert_eq!(parse(&Frame::arp()), Err(ParseError::NonIp));
    let mut llc = Frame::arp();
    llc.bytes[12..14].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(parse(&llc), Err(ParseError::NonIp));
}

#[test]
fn truncated_frames() {
    assert_eq!(
        parse(&Frame::truncated_ipv4(10)),
        Err(ParseError::Truncated)
    );
    for len in 0..14 {
        assert_eq!(
            parse_frame(&[0u8; 14][..len], len as u32, None),
            Err(ParseError::Truncated)
        );
    }
    // Every prefix of a valid frame that cuts into a header is truncated, never a panic.
    let full =
        Frame::ip(ip("2001:db8::2"), ip("2001:db8::1"), L4::Tcp(1, 2), 0).tagged(ETH_P_8021Q, 5);
    for len in 0..full.bytes.len() {
        let cut = &full.bytes[..len];
        assert_eq!(
            parse_frame(cut, len as u32, None),
            Err(ParseError::Truncated),
            "len {len}"
        );
    }
    // A UDP packet whose header is missing its ports.
    let short = Frame::ipv4_fragment([198, 18, 0, 2], [198, 18, 0, 1], proto::UDP, 0, 3);
    assert_eq!(parse(&short), Err(ParseError::Truncated));
    // IPv4 total length beyond the frame on the wire.
    let mut long = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(1, 2), 0);
    long.bytes[16..18].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(parse(&long), Err(ParseError::Truncated));
}

#[test]
fn headers_are_checked_against_the_wire_not_the_snap_length() {
    // A frame captured to 64 bytes but 1000 bytes long on the wire still parses.
    let frame = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(1, 2), 958);
    assert_eq!(frame.bytes.len(), 1000);
    let p = parse_frame(&frame.bytes[..64], 1000, None).unwrap();
    assert_eq!(p.ports, Some((1, 2)));
}

#[test]
fn headers_past_the_snap_length_count_under_their_addresses() {
    // Hop-by-hop (8 bytes) and destination options (8 bytes) before UDP, 1000 bytes of
    // payload: the kernel copied only `snap` bytes of the frame.
    let frame = Frame::ipv6_with_extensions(V6A, V6B, &[0, 60], 0, (11, 22), 1000);
    let wire = frame.bytes.len() as u32;
    let cut = |snap: usize| parse_frame(&frame.bytes[..snap], wire, None);
    let whole = cut(frame.bytes.len()).unwrap();
    assert_eq!((whole.proto, whole.ports), (proto::UDP, Some((11, 22))));
    // Cut inside the destination options header: counted under it, without ports.
    let l3 = 14 + 40;
    let p = cut(l3 + 8 + 1).unwrap();
    assert_eq!(
        (p.src, p.dst, p.proto, p.ports),
        (whole.src, whole.dst, 60, None)
    );
    assert_eq!((p.segments, p.bytes), (1, u64::from(wire)));
    // Cut inside the UDP ports: the protocol is known, the ports are not.
    let p = cut(l3 + 16 + 3).unwrap();
    assert_eq!(
        (p.proto, p.ports, p.bytes),
        (proto::UDP, None, u64::from(wire))
    );
    // The same cuts on the wire are truncated packets.
    for len in [l3 + 9, l3 + 19] {
        assert_eq!(
            parse_frame(&frame.bytes[..len], len as u32, None),
            Err(ParseError::Truncated)
        );
    }
}

#[test]
fn bad_headers() {
    assert_eq!(parse(&Frame::bad_ihl_ipv4()), Err(ParseError::BadHeader));
    let mut v5 = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(1, 2), 30);
    v5.bytes[14] = 0x55;
    assert_eq!(parse(&v5), Err(ParseError::BadHeader));
    let mut short_total = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(1, 2), 30);
    short_total.bytes[16..18].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(parse(&short_total), Err(ParseError::BadHeader));
    let mut v4_in_v6 = Frame::ip(ip("2001:db8::2"), ip("2001:db8::1"), L4::Udp(1, 2), 30);
    v4_in_v6.bytes[14] = 0x45;
    assert_eq!(parse(&v4_in_v6), Err(ParseError::BadHeader));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic sweep; the fuzz target covers this properly.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut buf = [0u8; 96];
    for round in 0..20_000 {
        for b in &mut buf {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        buf[12] = [0x08, 0x86, 0x81, 0x88][round % 4];
        buf[13] = [0x00, 0xdd, 0x00, 0xa8][round % 4];
        let len = round % buf.len();
        let _ = parse_frame(&buf[..len], (state >> 40) as u32, None);
    }
}

#[test]
fn addresses_round_trip_and_order_within_a_family() {
    for text in [
        "198.18.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "2001:db8::1",
        "::",
        "::1",
    ] {
        assert_eq!(IpAddr::from(addr(text)), ip(text), "{text}");
    }
    assert!(addr("198.18.0.1") < addr("198.18.0.2"));
    assert!(addr("2001:db8::1") < addr("2001:db8::2"));
    assert_ne!(addr("198.18.0.1"), addr("::c612:1"));
}

#[test]
fn later_ipv6_fragments_are_not_walked_as_extension_headers() {
    // The fragment header names a destination options header, which only the first fragment
    // carries; a later fragment's bytes there are payload. Here they claim a 2 KiB header.
    let mut later = Frame::ipv6_with_extensions(V6A, V6B, &[44, 60], 3, (11, 22), 40);
    later.bytes[14 + 40 + 8 + 1] = 255;
    let p = parse(&later).unwrap();
    assert_eq!((p.proto, p.ports), (60, None));
    // IPsec AH in the fragmentable part: the later fragment is counted under AH's number.
    let mut ah = Frame::ipv6_with_extensions(V6A, V6B, &[44, 60], 1, (11, 22), 40);
    ah.bytes[14 + 40] = 51;
    ah.bytes[14 + 40 + 8 + 1] = 200;
    assert_eq!(parse(&ah).unwrap().proto, 51);
    // The first fragment is still walked to its transport header.
    let first = Frame::ipv6_with_extensions(V6A, V6B, &[44, 60], 0, (11, 22), 40);
    let p = parse(&first).unwrap();
    assert_eq!((p.proto, p.ports), (proto::UDP, Some((11, 22))));
    // A fragment header cut short by the packet's own length.
    let mut cut = Frame::ipv6_with_extensions(V6A, V6B, &[44], 3, (1, 2), 0);
    cut.bytes[18..20].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(parse(&cut), Err(ParseError::Truncated));
}

/// A TCP frame with `payload` bytes whose TCP header is `tcp_len` bytes (options zeroed).
fn tcp_frame(src: &str, dst: &str, tcp_len: usize, payload: usize) -> Frame {
    let mut frame = Frame::ip(ip(src), ip(dst), L4::Tcp(40000, 443), payload);
    let l4 = if src.contains(':') { 14 + 40 } else { 14 + 20 };
    frame
        .bytes
        .splice(l4 + 20..l4 + 20, vec![1u8; tcp_len - 20]);
    frame.bytes[l4 + 12] = ((tcp_len / 4) as u8) << 4;
    let ip_len = frame.bytes.len() - 14;
    if src.contains(':') {
        frame.bytes[18..20].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
    } else {
        frame.bytes[16..18].copy_from_slice(&(ip_len as u16).to_be_bytes());
    }
    frame
}

fn parse_gso(frame: &Frame, gso: Option<Gso>) -> Result<Packet, ParseError> {
    parse_link_frame(
        LinkKind::Ethernet,
        &frame.bytes,
        frame.bytes.len() as u32,
        None,
        gso,
    )
}

#[test]
fn super_frames_count_the_packets_the_wire_carried() {
    let tcp = Gso::from_virtio(1, 1448);
    // 10 full segments and one of 52 bytes behind 14 + 20 + 32 bytes of headers.
    let f = tcp_frame("198.18.0.1", "198.18.0.2", 32, 14_532);
    let p = parse_gso(&f, tcp).unwrap();
    assert_eq!(p.segments, 11);
    assert_eq!(p.bytes, 66 + 14_532 + 10 * 66);
    assert_eq!(p.ports, Some((40000, 443)));
    // Exactly one segment's worth is one packet.
    let one = tcp_frame("198.18.0.1", "198.18.0.2", 32, 1448);
    assert_eq!(parse_gso(&one, tcp).unwrap().segments, 1);
    // IPv6: 40-byte header, TCPV6.
    let v6 = tcp_frame("2001:db8::1", "2001:db8::2", 20, 3000);
    let p = parse_gso(&v6, Gso::from_virtio(4 | 0x80, 1000)).unwrap();
    assert_eq!((p.segments, p.bytes), (3, 74 + 3000 + 2 * 74));
    // UDP GSO: every segment is a datagram with its own 8-byte header.
    let udp = Frame::ip(ip("198.18.0.1"), ip("198.18.0.2"), L4::Udp(5000, 443), 5000);
    let p = parse_gso(&udp, Gso::from_virtio(5, 1000)).unwrap();
    assert_eq!((p.segments, p.bytes), (5, 5042 + 4 * 42));
    // An offloaded tag rides on every segment.
    let tagged = parse_link_frame(
        LinkKind::Ethernet,
        &udp.bytes,
        udp.bytes.len() as u32,
        Some(OffloadedTag { tci: 7 }),
        Gso::from_virtio(5, 1000),
    )
    .unwrap();
    assert_eq!(tagged.bytes, 5 * 4 + 5042 + 4 * 42);
    // A plain frame is one packet of its length plus an offloaded tag.
    let plain = parse_frame(
        &udp.bytes,
        udp.bytes.len() as u32,
        Some(OffloadedTag { tci: 7 }),
    );
    assert_eq!(plain.map(|p| (p.segments, p.bytes)), Ok((1, 5046)));
}

#[test]
fn super_frames_the_kernel_cannot_size_count_as_one_packet() {
    let f = tcp_frame("198.18.0.1", "198.18.0.2", 20, 9000);
    let whole = (1, 9054);
    let p = parse_gso(&f, Gso::unsized_tcp(true)).unwrap();
    assert_eq!((p.segments, p.bytes), whole);
    // TCP segmentation under an outer UDP header: a tunnel's encapsulation (VXLAN, Geneve),
    // whose inner headers are not parsed.
    let udp = Frame::ip(
        ip("198.18.0.1"),
        ip("198.18.0.2"),
        L4::Udp(5000, 4789),
        3000,
    );
    let p = parse_gso(&udp, Gso::from_virtio(1, 1448)).unwrap();
    assert_eq!((p.segments, p.bytes), (1, 3042));
    // A later IPv4 fragment has no transport header to size segments by.
    let later = Frame::ipv4_fragment([198, 18, 0, 2], [198, 18, 0, 1], proto::TCP, 2, 3000);
    assert_eq!(
        parse_gso(&later, Gso::from_virtio(1, 1000))
            .unwrap()
            .segments,
        1
    );
    assert_eq!(Gso::from_virtio(0, 0), None);
    assert_eq!(Gso::unsized_tcp(false), None);
}

#[test]
fn ipv4_big_tcp_takes_its_length_from_the_frame() {
    // Past 64 KiB, IPv4 BIG TCP writes a total length of 0.
    let mut big = tcp_frame("198.18.0.1", "198.18.0.2", 20, 60_000);
    big.bytes.extend(std::iter::repeat_n(0u8, 40_000));
    big.bytes[16..18].copy_from_slice(&[0, 0]);
    let tcp = Gso::from_virtio(1, 1460);
    let p = parse_gso(&big, tcp).unwrap();
    assert_eq!(p.segments, 100_000_u32.div_ceil(1460));
    assert_eq!(p.bytes, 100_054 + 68 * 54);
    // Without the kernel's word that it is a super-frame, a zero length is malformed.
    assert_eq!(parse(&big), Err(ParseError::BadHeader));
    let flagged = parse_gso(&big, Gso::unsized_tcp(true)).unwrap();
    assert_eq!((flagged.segments, flagged.bytes), (1, 100_054));
}

#[test]
fn links_without_a_link_layer_header_parse_from_the_ip_header() {
    let v4 = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(1, 2), 10);
    let v6 = Frame::ip(ip("2001:db8::2"), ip("2001:db8::1"), L4::Tcp(3, 4), 0);
    for (frame, want) in [
        (v4, (proto::UDP, Some((1, 2)))),
        (v6, (proto::TCP, Some((3, 4)))),
    ] {
        let l3 = &frame.bytes[14..];
        let p = parse_link_frame(LinkKind::Ip, l3, l3.len() as u32, None, None).unwrap();
        assert_eq!(
            (p.proto, p.ports, p.tags, p.vlan),
            (want.0, want.1, 0, None)
        );
        assert_eq!((p.segments, p.bytes), (1, l3.len() as u64));
        // The same bytes read as Ethernet are garbage: that is what refusing to guess avoids.
        assert_ne!(parse_frame(l3, l3.len() as u32, None).ok(), Some(p));
    }
    assert_eq!(
        parse_link_frame(LinkKind::Ip, &[0x10, 0, 0], 3, None, None),
        Err(ParseError::NonIp)
    );
    assert_eq!(
        parse_link_frame(LinkKind::Ip, &[], 0, None, None),
        Err(ParseError::Truncated)
    );
}

#[test]
fn ipv6_big_tcp_jumbo_headers_are_on_no_segment() {
    // IPv6 BIG TCP: payload length 0 and a hop-by-hop header holding the Jumbo Payload option,
    // which segmentation strips: 3 segments of 1000 bytes behind 14 + 40 + 20 bytes each.
    let mut f = tcp_frame("2001:db8::1", "2001:db8::2", 20, 3000);
    let jumbo_len = (8 + 20 + 3000u32).to_be_bytes();
    let hbh = [
        6,
        0,
        0xc2,
        4,
        jumbo_len[0],
        jumbo_len[1],
        jumbo_len[2],
        jumbo_len[3],
    ];
    f.bytes.splice(54..54, hbh);
    f.bytes[18..20].copy_from_slice(&[0, 0]);
    f.bytes[20] = 0;
    let p = parse_gso(&f, Gso::from_virtio(4, 1000)).unwrap();
    assert_eq!((p.proto, p.ports), (proto::TCP, Some((40000, 443))));
    assert_eq!((p.segments, p.bytes), (3, 3 * 74 + 3000));
    // Any other hop-by-hop header stays on every segment.
    f.bytes[56] = 0x05;
    let p = parse_gso(&f, Gso::from_virtio(4, 1000)).unwrap();
    assert_eq!((p.segments, p.bytes), (3, 3 * 82 + 3000));
}
