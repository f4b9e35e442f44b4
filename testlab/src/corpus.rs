//! A known mix of frames and, computed independently of the code under test, exactly what a
//! correct monitor must count from it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::{Frame, L4};

/// Counters one address must end with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TalkerCounts {
    /// Packets sent.
    pub packets_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

/// Counters one flow must end with; `a` sent the first packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowCounts {
    /// Protocol number.
    pub proto: u8,
    /// Initiator address and port.
    pub a: (IpAddr, Option<u16>),
    /// Responder address and port.
    pub b: (IpAddr, Option<u16>),
    /// Packets a to b.
    pub packets_a_to_b: u64,
    /// Bytes a to b.
    pub bytes_a_to_b: u64,
    /// Packets b to a.
    pub packets_b_to_a: u64,
    /// Bytes b to a.
    pub bytes_b_to_a: u64,
}

/// Frames in send order, and what they must add up to.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    /// The frames, in the order to send them.
    pub frames: Vec<Frame>,
    /// IP packets.
    pub packets: u64,
    /// Their bytes, VLAN tags included.
    pub bytes: u64,
    /// Frames that are not IP.
    pub non_ip: u64,
    /// Frames cut short.
    pub truncated: u64,
    /// Frames with impossible headers.
    pub bad_header: u64,
    /// Per-address counters.
    pub talkers: BTreeMap<IpAddr, TalkerCounts>,
    /// Per-flow counters, in first-seen order.
    pub flows: Vec<FlowCounts>,
    /// Frames the socket filter must reject, per reason (`vlan`, `non_ip`, `excluded`,
    /// `not_allowed`).
    pub rejected: BTreeMap<&'static str, u64>,
}

impl Corpus {
    /// Every frame, IP or not.
    pub fn frame_count(&self) -> u64 {
        self.frames.len() as u64
    }

    /// Adds `count` copies of an IP frame and updates the expected counters.
    pub fn add_ip(
        &mut self,
        count: u64,
        frame: &Frame,
        packet: (IpAddr, IpAddr, u8, Option<(u16, u16)>),
    ) {
        let (src, dst, proto, ports) = packet;
        let len = frame.len();
        for _ in 0..count {
            self.frames.push(frame.clone());
        }
        self.packets += count;
        self.bytes += count * len;
        let s = self.talkers.entry(src).or_default();
        s.packets_sent += count;
        s.bytes_sent += count * len;
        let d = self.talkers.entry(dst).or_default();
        d.packets_received += count;
        d.bytes_received += count * len;
        let from = (src, ports.map(|p| p.0));
        let to = (dst, ports.map(|p| p.1));
        if let Some(f) = self.flows.iter_mut().find(|f| {
            f.proto == proto && ((f.a == from && f.b == to) || (f.a == to && f.b == from))
        }) {
            if f.a == from {
                f.packets_a_to_b += count;
                f.bytes_a_to_b += count * len;
            } else {
                f.packets_b_to_a += count;
                f.bytes_b_to_a += count * len;
            }
        } else {
            self.flows.push(FlowCounts {
                proto,
                a: from,
                b: to,
                packets_a_to_b: count,
                bytes_a_to_b: count * len,
                packets_b_to_a: 0,
                bytes_b_to_a: 0,
            });
        }
    }

    /// Adds `count` copies of a frame the socket filter must reject for `reason`.
    pub fn add_rejected(&mut self, count: u64, frame: &Frame, reason: &'static str) {
        assert!(
            matches!(reason, "vlan" | "non_ip" | "excluded" | "not_allowed"),
            "unknown reject reason {reason}"
        );
        for _ in 0..count {
            self.frames.push(frame.clone());
        }
        *self.rejected.entry(reason).or_default() += count;
    }

    /// Frames the filter must reject, all reasons together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The expected talkers: per address, packets sent, bytes sent, packets received and bytes
    /// received.
    pub fn talker_rows(&self) -> BTreeMap<IpAddr, [u64; 4]> {
        self.talkers
            .iter()
            .map(|(ip, t)| {
                let row = [
                    t.packets_sent,
                    t.bytes_sent,
                    t.packets_received,
                    t.bytes_received,
                ];
                (*ip, row)
            })
            .collect()
    }

    /// Rejects expected for one reason.
    pub fn rejected(&self, reason: &str) -> u64 {
        self.rejected.get(reason).copied().unwrap_or(0)
    }

    /// Adds `count` copies of a frame that must be counted as a parse error.
    pub fn add_error(&mut self, count: u64, frame: &Frame, reason: &str) {
        for _ in 0..count {
            self.frames.push(frame.clone());
        }
        match reason {
            "non_ip" => self.non_ip += count,
            "truncated" => self.truncated += count,
            "bad_header" => self.bad_header += count,
            other => panic!("unknown parse error reason {other}"),
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The standard mix: IPv4 and IPv6; TCP, UDP and ICMP; 802.1Q and QinQ tags; an IPv6
/// extension chain; ARP, truncated and malformed frames. 42 IP packets, 51 frames.
pub fn standard() -> Corpus {
    let mut c = Corpus::default();
    let (client, server) = (ip("198.18.0.2"), ip("198.18.0.1"));
    c.add_ip(
        10,
        &Frame::ip(client, server, L4::Udp(4000, 53), 100),
        (client, server, 17, Some((4000, 53))),
    );
    c.add_ip(
        5,
        &Frame::ip(server, client, L4::Udp(53, 4000), 200),
        (server, client, 17, Some((53, 4000))),
    );
    let (t_src, t_dst) = (ip("198.18.0.3"), ip("198.18.1.1"));
    c.add_ip(
        7,
        &Frame::ip(t_src, t_dst, L4::Tcp(5555, 80), 0),
        (t_src, t_dst, 6, Some((5555, 80))),
    );
    let pinger = ip("198.18.0.4");
    c.add_ip(
        3,
        &Frame::ip(pinger, server, L4::Echo, 56),
        (pinger, server, 1, None),
    );
    let (v6a, v6b) = (ip("2001:db8::2"), ip("2001:db8::1"));
    c.add_ip(
        4,
        &Frame::ip(v6a, v6b, L4::Udp(1000, 2000), 10),
        (v6a, v6b, 17, Some((1000, 2000))),
    );
    let v6c = ip("2001:db8::3");
    c.add_ip(2, &Frame::ip(v6c, v6b, L4::Echo, 8), (v6c, v6b, 58, None));
    let (g_src, g_dst) = (ip("198.18.0.5"), ip("198.18.0.6"));
    let tagged = Frame::ip(g_src, g_dst, L4::Udp(7, 9), 20).tagged(0x8100, 100);
    c.add_ip(6, &tagged, (g_src, g_dst, 17, Some((7, 9))));
    let (q_src, q_dst) = (ip("2001:db8::5:1"), ip("2001:db8::6:2"));
    let qinq = Frame::ip(q_src, q_dst, L4::Udp(11, 12), 0)
        .tagged(0x8100, 300)
        .tagged(0x88a8, 200);
    c.add_ip(3, &qinq, (q_src, q_dst, 17, Some((11, 12))));
    let (e_src, e_dst) = (ip("2001:db8::7"), ip("2001:db8::8"));
    let ext = Frame::ipv6_with_extensions(
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8],
        &[0, 60],
        0,
        (5, 6),
        4,
    );
    c.add_ip(2, &ext, (e_src, e_dst, 17, Some((5, 6))));
    c.add_error(4, &Frame::arp(), "non_ip");
    c.add_error(2, &Frame::truncated_ipv4(10), "truncated");
    c.add_error(3, &Frame::bad_ihl_ipv4(), "bad_header");
    c
}

/// `count` UDP frames from `count` distinct sources in 198.18.0.0/15 to one destination.
pub fn many_sources(count: u32) -> Corpus {
    let mut c = Corpus::default();
    let dst = ip("198.19.255.254");
    for i in 0..count {
        let src = IpAddr::from([198, 18, (i >> 8) as u8, i as u8]);
        let frame = Frame::ip(src, dst, L4::Udp(1024 + (i % 1000) as u16, 9), 18);
        c.add_ip(
            1,
            &frame,
            (src, dst, 17, Some((1024 + (i % 1000) as u16, 9))),
        );
    }
    c
}

/// The rules [`filtered`] is built for, as the command line spells them.
pub const FILTER_VLANS: &str = "100,200,untagged";
/// Excluded prefixes for [`filtered`].
pub const FILTER_EXCLUDE: &str = "198.18.5.0/24,2001:db8:0:5::/64";
/// Allowed prefixes for [`filtered`].
pub const FILTER_ALLOW: &str = "198.18.0.0/16,2001:db8::/48";

/// Frames in VLANs 100, 200 and 300 (outer and QinQ), untagged, non-IP, and from allowed,
/// excluded and other prefixes, IPv4 and IPv6, with what passes [`FILTER_VLANS`],
/// [`FILTER_EXCLUDE`] and [`FILTER_ALLOW`] and what each reason rejects.
pub fn filtered() -> Corpus {
    let mut c = Corpus::default();
    let udp = |s: &str, d: &str, payload| Frame::ip(ip(s), ip(d), L4::Udp(4000, 53), payload);
    let meta = |s: &str, d: &str| (ip(s), ip(d), 17, Some((4000, 53)));
    // Passed: untagged, VLAN 100, QinQ with outer 200, and a frame only its destination allows.
    c.add_ip(
        5,
        &udp("198.18.0.2", "198.18.0.1", 60),
        meta("198.18.0.2", "198.18.0.1"),
    );
    c.add_ip(
        4,
        &udp("198.18.0.3", "198.18.0.1", 40).tagged(0x8100, 100),
        meta("198.18.0.3", "198.18.0.1"),
    );
    let qinq = udp("2001:db8::2", "2001:db8::1", 20)
        .tagged(0x8100, 300)
        .tagged(0x88a8, 200);
    c.add_ip(3, &qinq, meta("2001:db8::2", "2001:db8::1"));
    c.add_ip(
        2,
        &udp("198.19.0.9", "198.18.0.1", 10),
        meta("198.19.0.9", "198.18.0.1"),
    );
    // Passed to userspace because its addresses cannot be read; counted there as truncated.
    c.add_error(2, &Frame::truncated_ipv4(10), "truncated");
    // Rejected: outer VLAN 300, plain and QinQ.
    c.add_rejected(
        6,
        &udp("198.18.0.4", "198.18.0.1", 30).tagged(0x8100, 300),
        "vlan",
    );
    c.add_rejected(
        2,
        &udp("198.18.0.4", "198.18.0.1", 30)
            .tagged(0x8100, 100)
            .tagged(0x88a8, 300),
        "vlan",
    );
    // Rejected: not IP, untagged and in an allowed VLAN.
    c.add_rejected(4, &Frame::arp(), "non_ip");
    c.add_rejected(1, &Frame::arp().tagged(0x8100, 100), "non_ip");
    // Rejected: source or destination excluded, IPv4 and IPv6.
    c.add_rejected(3, &udp("198.18.5.7", "198.18.0.1", 0), "excluded");
    c.add_rejected(2, &udp("2001:db8::1", "2001:db8:0:5::9", 0), "excluded");
    // Rejected: neither side allowed, IPv4 and IPv6.
    c.add_rejected(5, &udp("198.19.0.1", "198.19.0.2", 0), "not_allowed");
    c.add_rejected(2, &udp("2001:db8:1::1", "2001:db8:1::2", 0), "not_allowed");
    c
}
