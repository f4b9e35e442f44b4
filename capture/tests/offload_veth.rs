//! Privileged end-to-end tests of GRO/GSO super-frames: a real TCP stream between two
//! namespaces over a veth pair, whose sender leaves segmentation to the device (veth offers
//! TSO), so the capture sees super-frames of up to 64 KiB, and with BIG TCP beyond (IPv4 total
//! length 0, IPv6 payload length 0). The kernel's own TCP counters say how many segments
//! crossed the link; the capture must count exactly those, and their bytes as the wire would
//! carry them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use testlab::links::{ethtool_in, ip_in, set_gso_max_size, sysctl_in, tcp_segments_sent};
use testlab::netns::{CAPTURE_IF, GENERATOR_IF, LinkCounter, in_netns, link_counter};
use testlab::{COUNT_DEADLINE, Lab, wait_for};
use traffic_counter_capture::parse::proto;
use traffic_counter_capture::snapshot::{Flow, Snapshot};
use traffic_counter_capture::{Capture, CaptureConfig};

/// Data the client sends; the server sends none.
const DATA: usize = 4_000_000;
/// The SYN and SYN-ACK each carry MSS and window-scale options (4 + 4 bytes).
const SYN_OPTIONS: u64 = 2 * 8;

/// The addresses of one IP version, and the Ethernet, IP and TCP header bytes of a segment
/// without TCP options.
struct Family {
    server: &'static str,
    client: &'static str,
    prefix: u8,
    headers: u64,
}

const V4: Family = Family {
    server: "198.18.0.1",
    client: "198.18.0.2",
    prefix: 24,
    headers: 14 + 20 + 20,
};

const V6: Family = Family {
    server: "2001:db8::1",
    client: "2001:db8::2",
    prefix: 64,
    headers: 14 + 40 + 20,
};

/// A lab whose TCP sends no timestamps and no SACK blocks, so every segment but the SYNs has
/// a 20-byte TCP header and the wire's bytes follow from the segment count.
fn tcp_lab(tag: &str, family: &Family) -> Lab {
    let lab = Lab::new(tag);
    for (ns, dev, addr) in [
        (&lab.capture_ns, CAPTURE_IF, family.server),
        (&lab.generator_ns, GENERATOR_IF, family.client),
    ] {
        let mut add = vec!["addr", "add"];
        let addr = format!("{addr}/{}", family.prefix);
        add.extend([addr.as_str(), "dev", dev]);
        if family.prefix == 64 {
            sysctl_in(ns, &format!("net.ipv6.conf.{dev}.disable_ipv6=0"));
            sysctl_in(ns, &format!("net.ipv6.conf.{dev}.accept_dad=0"));
            add.push("nodad");
        }
        ip_in(ns, &add);
        sysctl_in(ns, "net.ipv4.tcp_timestamps=0");
        sysctl_in(ns, "net.ipv4.tcp_sack=0");
    }
    lab
}

/// The TCP stream's flow (IPv6 links also carry the kernel's own ICMPv6).
fn tcp_flow(snap: &Snapshot) -> Option<&Flow> {
    snap.flows.iter().find(|f| f.proto == proto::TCP)
}

fn flow_packets(flow: &Flow) -> u64 {
    flow.packets_a_to_b + flow.packets_b_to_a
}

/// The TCP segments both namespaces' stacks have sent, first transmissions and retransmissions.
fn segments_sent(lab: &Lab) -> u64 {
    lab.in_capture_ns(tcp_segments_sent) + in_netns(&lab.generator_ns, tcp_segments_sent)
}

/// Frames the generator's veth dropped because the capture end's receive queue was full (with
/// GRO on, veth receives through a 256-frame ring). The capture end never saw them: the
/// packet sockets' tap on it runs after that queue. TCP sends each such segment again, and
/// both transmissions count as sent.
fn dropped_before_the_capture(lab: &Lab) -> u64 {
    link_counter(&lab.generator_ns, GENERATOR_IF, LinkCounter::TxDropped)
}

/// Streams [`DATA`] bytes from the generator to a server in the capture namespace while the
/// capture counts on the server's end, and returns the final snapshot with the segments that
/// reached the capture end meanwhile: those both namespaces' TCP stacks sent, less those the
/// link dropped before the capture end received them.
fn stream(lab: &Lab, family: &Family) -> (Snapshot, u64) {
    let address: IpAddr = family.server.parse().unwrap();
    let mut config = CaptureConfig::new(CAPTURE_IF);
    config.workers = 2;
    config.flows = true;
    config.tick = Duration::from_millis(100);
    let capture = lab
        .in_capture_ns(|| Capture::start(&config, None))
        .expect("capture starts");
    let feed = capture.feed();
    let listener = lab.in_capture_ns(|| TcpListener::bind((address, 5001)).unwrap());
    let sent_before = segments_sent(lab);
    let dropped_before = dropped_before_the_capture(lab);
    let received = std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0;
            loop {
                match conn.read(&mut buf).unwrap() {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        in_netns(&lab.generator_ns, || {
            let mut conn = TcpStream::connect((address, 5001)).unwrap();
            conn.write_all(&vec![0x5a; DATA]).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
            // The server's FIN: the stream is over once this returns.
            assert_eq!(conn.read(&mut [0u8; 16]).unwrap(), 0);
        });
        server.join().unwrap()
    });
    assert_eq!(received, DATA);
    // The last ACK may still be on its way: wait until the capture has counted every segment
    // that reached it, never on a fixed sleep. A failure shows the workers' ring drops and
    // super-frames, the malformed frames and the link's drops beside the two counts.
    let arrived = || {
        let dropped = dropped_before_the_capture(lab) - dropped_before;
        (segments_sent(lab) - sent_before - dropped, dropped)
    };
    let seen = || {
        let feed = feed.borrow();
        let Some(snap) = feed.snapshot.as_ref() else {
            return (0, 0, 0, 0);
        };
        let errors = &snap.parse_errors;
        (
            snap.totals.packets,
            snap.workers.iter().map(|w| w.ring_drops).sum::<u64>(),
            snap.workers.iter().map(|w| w.super_frames).sum::<u64>(),
            errors.bad_header + errors.truncated,
        )
    };
    let (_, (segments, link_drops)) = wait_for(
        "the capture to count every TCP segment that reached it \
         ((counted, ring drops, super-frames, malformed), (arrived, dropped by the link))",
        COUNT_DEADLINE,
        || (seen(), arrived()),
        |((counted, ..), (arrived, _))| counted >= arrived,
    )
    .unwrap();
    if link_drops > 0 {
        eprintln!("the link dropped {link_drops} segments before the capture end");
    }
    let finished = capture.stop().expect("capture stops");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    ((*finished.snapshot).clone(), segments)
}

fn assert_wire_counts(snap: &Snapshot, segments: u64, family: &Family) {
    assert_eq!(
        snap.parse_errors.bad_header, 0,
        "bytes vanished as malformed"
    );
    assert_eq!(snap.parse_errors.truncated, 0);
    assert!(
        snap.workers.iter().all(|w| w.ring_drops == 0),
        "{:?}",
        snap.workers
    );
    let super_frames: u64 = snap.workers.iter().map(|w| w.super_frames).sum();
    assert!(
        super_frames > 0,
        "the sender used no offload: nothing was tested"
    );
    let flow = tcp_flow(snap).expect("the TCP flow");
    let bytes = flow.bytes_a_to_b + flow.bytes_b_to_a;
    eprintln!("{segments} TCP segments and {bytes} bytes on the wire; {super_frames} super-frames");
    assert_eq!(
        flow_packets(flow),
        segments,
        "packets as the wire carried them"
    );
    assert_eq!(
        bytes,
        DATA as u64 + segments * family.headers + SYN_OPTIONS,
        "bytes as the wire carried them"
    );
    let frames: u64 = snap.workers.iter().map(|w| w.packets).sum();
    assert_eq!(frames, snap.totals.packets + snap.parse_errors.non_ip);
}

#[test]
fn tcp_super_frames_count_as_the_segments_tcp_sent() {
    let lab = tcp_lab("gso", &V4);
    let (snap, segments) = stream(&lab, &V4);
    // 4 MB in segments of at most 1460 bytes, plus the handshake, ACKs and FINs.
    assert!(segments > 2_740, "{segments}");
    assert_wire_counts(&snap, segments, &V4);
    // Nothing but the stream is IP on this link.
    assert_eq!(snap.flows.len(), 1);
    assert_eq!(snap.totals.packets, segments);
}

#[test]
fn gro_super_frames_count_as_the_segments_tcp_sent() {
    let lab = tcp_lab("gro", &V4);
    // The sender segments in software, so the link carries real 1,460-byte segments; the
    // receiving veth aggregates them again (GRO, which on veth runs in NAPI once enabled).
    ethtool_in(
        &lab.generator_ns,
        &["-K", GENERATOR_IF, "tso", "off", "gso", "off"],
    );
    ethtool_in(&lab.capture_ns, &["-K", CAPTURE_IF, "gro", "on"]);
    let (snap, segments) = stream(&lab, &V4);
    assert_wire_counts(&snap, segments, &V4);
    assert_eq!(snap.totals.packets, segments);
}

#[test]
fn ipv4_big_tcp_super_frames_are_counted_not_dropped_as_malformed() {
    let lab = tcp_lab("bigtcp", &V4);
    // Past 64 KiB the sender writes IPv4 total length 0; veth carries such frames as they are.
    in_netns(&lab.generator_ns, || {
        set_gso_max_size(GENERATOR_IF, 185_000);
    });
    let (snap, segments) = stream(&lab, &V4);
    assert_wire_counts(&snap, segments, &V4);
    assert_eq!(snap.totals.packets, segments);
}

#[test]
fn ipv6_big_tcp_super_frames_are_counted() {
    let lab = tcp_lab("bigtcp6", &V6);
    // Past 64 KiB the sender writes IPv6 payload length 0.
    in_netns(&lab.generator_ns, || {
        set_gso_max_size(GENERATOR_IF, 185_000);
    });
    let (snap, segments) = stream(&lab, &V6);
    assert_wire_counts(&snap, segments, &V6);
}
