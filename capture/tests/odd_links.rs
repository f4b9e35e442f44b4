//! Privileged end-to-end tests of links that are not a plain Ethernet veth: a tun device (no
//! link-layer header), a hardware type capture cannot parse, loopback (which shows packet
//! sockets every packet twice), a link that is down at start or goes down and up during
//! capture, and IPv6 fragments whose later pieces must not be walked as headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, UdpSocket};
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use testlab::corpus;
use testlab::links::{Tun, ip_in, sysctl_in, wait_running};
use testlab::netns::{CAPTURE_IF, GENERATOR_IF, in_netns};
use testlab::{COUNT_DEADLINE, Frame, L4, Lab};
use traffic_counter_capture::parse::LinkKind;
use traffic_counter_capture::snapshot::{FilterKind, Rejects, Snapshot};
use traffic_counter_capture::{Capture, CaptureConfig, CaptureError, Feed, PacketFilter};

fn config(interface: &str) -> CaptureConfig {
    let mut c = CaptureConfig::new(interface);
    c.workers = 2;
    c.flows = true;
    c.tick = Duration::from_millis(100);
    c
}

/// Waits until a published snapshot satisfies `done`.
fn wait_for(feed: &Feed, what: &str, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let latest = || feed.borrow().snapshot.clone();
    let found = testlab::wait_for(what, COUNT_DEADLINE, latest, |s| {
        s.as_deref().is_some_and(&done)
    });
    (*found.unwrap().unwrap()).clone()
}

fn stop(capture: Capture) -> Snapshot {
    let finished = capture.stop().expect("capture stops");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    (*finished.snapshot).clone()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A filter that attaches nothing: enough to ask capture for one.
struct NoopFilter;

impl PacketFilter for NoopFilter {
    fn kind(&self) -> FilterKind {
        FilterKind::Classic
    }

    fn attach(&self, _socket: BorrowedFd<'_>, _snap_len: u32) -> Result<(), String> {
        Ok(())
    }

    fn rejects(&self) -> Option<Rejects> {
        None
    }
}

#[test]
fn a_tun_device_is_counted_from_the_ip_header() {
    let lab = Lab::new("tun");
    let mut tun = lab.in_capture_ns(|| Tun::create("tct0", None));
    sysctl_in(&lab.capture_ns, "net.ipv6.conf.tct0.disable_ipv6=1");
    ip_in(&lab.capture_ns, &["link", "set", "tct0", "up"]);

    // Filters read Ethernet offsets: asked for one here, capture refuses and says why.
    let err = lab
        .in_capture_ns(|| Capture::start(&config("tct0"), Some(Arc::new(NoopFilter))))
        .err()
        .expect("a filter on a headerless link is refused");
    assert!(
        matches!(err, CaptureError::FilterNeedsEthernet { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no link-layer header"), "{err}");

    let capture = lab
        .in_capture_ns(|| Capture::start(&config("tct0"), None))
        .expect("capture starts");
    let packets = [
        Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Udp(4000, 53), 100),
        Frame::ip(ip("198.18.0.1"), ip("198.18.0.2"), L4::Tcp(443, 5000), 10),
        Frame::ip(ip("2001:db8::2"), ip("2001:db8::1"), L4::Udp(4000, 53), 20),
    ];
    let mut bytes = 0;
    for frame in &packets {
        // A tun device carries the IP packet alone: strip the Ethernet header.
        let l3 = &frame.bytes[14..];
        for _ in 0..5 {
            tun.inject(l3);
        }
        bytes += 5 * l3.len() as u64;
    }
    let feed = capture.feed();
    wait_for(&feed, "15 packets", |s| s.totals.packets >= 15);
    let snap = stop(capture);
    assert_eq!(snap.link.kind, LinkKind::Ip);
    assert_eq!(snap.link.arphrd, libc::ARPHRD_NONE);
    assert_eq!((snap.totals.packets, snap.totals.bytes), (15, bytes));
    assert_eq!(snap.parse_errors.total(), 0, "{:?}", snap.parse_errors);
    let udp = snap
        .flows
        .iter()
        .find(|f| f.a_ip == ip("198.18.0.2"))
        .unwrap();
    assert_eq!(
        (udp.a_port, udp.b_port, udp.packets_a_to_b),
        (Some(4000), Some(53), 5)
    );
    assert_eq!(snap.flows.len(), 3);
    drop(tun);
}

#[test]
fn a_link_type_capture_cannot_parse_is_refused() {
    let lab = Lab::new("grelink");
    // A tun device posing as an IP GRE device: the "link-layer header" there is an outer IP
    // and GRE header, which capture does not parse.
    let _tun = lab.in_capture_ns(|| Tun::create("tcg0", Some(778)));
    ip_in(&lab.capture_ns, &["link", "set", "tcg0", "up"]);
    let err = lab
        .in_capture_ns(|| Capture::start(&config("tcg0"), None))
        .err()
        .expect("refused");
    assert!(
        matches!(err, CaptureError::UnsupportedLink { arphrd: 778, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("hardware type 778"), "{err}");
}

#[test]
fn loopback_counts_each_packet_once() {
    let lab = Lab::new("lo");
    let capture = lab
        .in_capture_ns(|| Capture::start(&config("lo"), None))
        .expect("capture starts");
    lab.in_capture_ns(|| {
        let sink = UdpSocket::bind("127.0.0.1:5353").unwrap();
        let source = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            source.send_to(&[7u8; 100], "127.0.0.1:5353").unwrap();
        }
        let mut buf = [0u8; 200];
        for _ in 0..20 {
            assert_eq!(sink.recv(&mut buf).unwrap(), 100);
        }
    });
    let feed = capture.feed();
    wait_for(&feed, "20 packets", |s| s.totals.packets >= 20);
    let snap = stop(capture);
    assert_eq!(snap.link.arphrd, libc::ARPHRD_LOOPBACK);
    // 14 bytes of (zero) Ethernet header, 20 of IPv4, 8 of UDP, 100 of data.
    assert_eq!((snap.totals.packets, snap.totals.bytes), (20, 20 * 142));
    let talker = snap
        .talkers
        .iter()
        .find(|t| t.ip == ip("127.0.0.1"))
        .unwrap();
    assert_eq!((talker.packets_sent, talker.packets_received), (20, 20));
}

#[test]
fn starting_on_a_down_link_says_so() {
    let lab = Lab::new("down");
    ip_in(&lab.capture_ns, &["link", "set", CAPTURE_IF, "down"]);
    let err = lab
        .in_capture_ns(|| Capture::start(&config(CAPTURE_IF), None))
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(matches!(err, CaptureError::InterfaceDown { .. }), "{text}");
    assert!(
        text.contains("tc0 is down") && text.contains("ip link set tc0 up"),
        "{text}"
    );
}

#[test]
fn a_link_that_goes_down_and_up_keeps_being_counted() {
    let lab = Lab::new("bounce");
    let corpus = corpus::standard();
    let capture = lab
        .in_capture_ns(|| Capture::start(&config(CAPTURE_IF), None))
        .expect("capture starts");
    let feed = capture.feed();
    lab.send(&corpus.frames);
    let before = wait_for(&feed, "the first pass", |s| {
        s.totals.packets >= corpus.packets
    });
    assert_eq!(
        (before.totals.packets, before.totals.bytes),
        (corpus.packets, corpus.bytes)
    );

    ip_in(&lab.capture_ns, &["link", "set", CAPTURE_IF, "down"]);
    wait_for(&feed, "every worker seeing the link down", |s| {
        s.workers.iter().all(|w| w.link_down > 0)
    });
    ip_in(&lab.capture_ns, &["link", "set", CAPTURE_IF, "up"]);
    lab.in_capture_ns(|| wait_running(CAPTURE_IF, Duration::from_secs(5)));
    in_netns(&lab.generator_ns, || {
        wait_running(GENERATOR_IF, Duration::from_secs(5));
    });
    lab.send(&corpus.frames);
    wait_for(&feed, "the second pass", |s| {
        s.totals.packets >= 2 * corpus.packets
    });
    let snap = stop(capture);
    assert_eq!(
        (snap.totals.packets, snap.totals.bytes),
        (2 * corpus.packets, 2 * corpus.bytes)
    );
    assert_eq!(snap.parse_errors.non_ip, 2 * corpus.non_ip);
    let frames: u64 = snap.workers.iter().map(|w| w.packets).sum();
    assert_eq!(frames, 2 * corpus.frame_count());
}

#[test]
fn later_ipv6_fragments_cross_a_real_link_as_counted_packets() {
    const A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let lab = Lab::new("frag6");
    // A datagram whose fragmentable part opens with destination options: the first fragment
    // walks to UDP; the later ones carry payload where the options were, here bytes that
    // would claim a 2 KiB header.
    let first = Frame::ipv6_with_extensions(A, B, &[44, 60], 0, (4000, 53), 64);
    let mut later = Frame::ipv6_with_extensions(A, B, &[44, 60], 9, (4000, 53), 64);
    later.bytes[14 + 40 + 8 + 1] = 255;
    let frames = vec![
        first.clone(),
        later.clone(),
        later.clone(),
        first.clone(),
        later,
    ];
    let bytes: u64 = frames.iter().map(|f| f.bytes.len() as u64).sum();
    let capture = lab
        .in_capture_ns(|| Capture::start(&config(CAPTURE_IF), None))
        .expect("capture starts");
    let feed = capture.feed();
    lab.send(&frames);
    wait_for(&feed, "5 packets", |s| s.totals.packets >= 5);
    let snap = stop(capture);
    assert_eq!((snap.totals.packets, snap.totals.bytes), (5, bytes));
    assert_eq!(snap.parse_errors.total(), 0, "{:?}", snap.parse_errors);
    let udp = snap.flows.iter().find(|f| f.a_port == Some(4000)).unwrap();
    assert_eq!(udp.packets_a_to_b, 2);
    let rest = snap.flows.iter().find(|f| f.a_port.is_none()).unwrap();
    assert_eq!(rest.packets_a_to_b, 3);
}
