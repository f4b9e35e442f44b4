//! Privileged end-to-end tests of GRO/GSO super-frames: a real TCP stream between two
//! namespaces over a veth pair, whose sender leaves segmentation to the device (veth offers
//! TSO), so the capture sees super-frames of up to 64 KiB, and with IPv4 BIG TCP beyond, with
//! a zero IPv4 total length. The kernel's own TCP counters say how many segments crossed the
//! link; the capture must count exactly those, and their bytes as the wire would carry them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use testlab::links::{ip_in, set_gso_max_size, sysctl_in, tcp_segments_sent};
use testlab::netns::{CAPTURE_IF, GENERATOR_IF, in_netns};
use testlab::{COUNT_DEADLINE, Lab, wait_for};
use traffic_counter_capture::snapshot::Snapshot;
use traffic_counter_capture::{Capture, CaptureConfig};

const SERVER: &str = "198.18.0.1";
const CLIENT: &str = "198.18.0.2";
/// Data the client sends; the server sends none.
const DATA: usize = 4_000_000;
/// Ethernet, IPv4 and TCP headers of a segment without TCP options.
const HEADERS: u64 = 14 + 20 + 20;
/// The SYN and SYN-ACK each carry MSS and window-scale options (4 + 4 bytes).
const SYN_OPTIONS: u64 = 2 * 8;

/// A lab whose TCP sends no timestamps and no SACK blocks, so every segment but the SYNs has
/// a 20-byte TCP header and the wire's bytes follow from the segment count.
fn tcp_lab(tag: &str) -> Lab {
    let lab = Lab::new(tag);
    for (ns, dev, addr) in [
        (&lab.capture_ns, CAPTURE_IF, SERVER),
        (&lab.generator_ns, GENERATOR_IF, CLIENT),
    ] {
        ip_in(ns, &["addr", "add", &format!("{addr}/24"), "dev", dev]);
        sysctl_in(ns, "net.ipv4.tcp_timestamps=0");
        sysctl_in(ns, "net.ipv4.tcp_sack=0");
    }
    lab
}

/// Streams [`DATA`] bytes from the generator to a server in the capture namespace while the
/// capture counts on the server's end, and returns the final snapshot with the segments both
/// namespaces' TCP stacks sent meanwhile.
fn stream(lab: &Lab) -> (Snapshot, u64) {
    let mut config = CaptureConfig::new(CAPTURE_IF);
    config.workers = 2;
    config.flows = true;
    config.tick = Duration::from_millis(100);
    let capture = lab
        .in_capture_ns(|| Capture::start(&config, None))
        .expect("capture starts");
    let feed = capture.feed();
    let listener = lab.in_capture_ns(|| TcpListener::bind((SERVER, 5001)).unwrap());
    let before =
        lab.in_capture_ns(tcp_segments_sent) + in_netns(&lab.generator_ns, tcp_segments_sent);
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
            let mut conn = TcpStream::connect((SERVER, 5001)).unwrap();
            conn.write_all(&vec![0x5a; DATA]).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
            // The server's FIN: the stream is over once this returns.
            assert_eq!(conn.read(&mut [0u8; 16]).unwrap(), 0);
        });
        server.join().unwrap()
    });
    assert_eq!(received, DATA);
    // The last ACK may still be on its way: wait until the capture has counted every segment
    // both stacks sent, never on a fixed sleep.
    let sent = || {
        lab.in_capture_ns(tcp_segments_sent) + in_netns(&lab.generator_ns, tcp_segments_sent)
            - before
    };
    let counted = || {
        feed.borrow()
            .snapshot
            .as_ref()
            .map_or(0, |s| s.totals.packets)
    };
    let (_, segments) = wait_for(
        "the capture to count every TCP segment",
        COUNT_DEADLINE,
        || (counted(), sent()),
        |(counted, sent)| counted >= sent,
    )
    .unwrap();
    let finished = capture.stop().expect("capture stops");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    ((*finished.snapshot).clone(), segments)
}

fn assert_wire_counts(snap: &Snapshot, segments: u64) {
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
    eprintln!(
        "{segments} TCP segments and {} bytes on the wire; {super_frames} super-frames",
        snap.totals.bytes
    );
    assert_eq!(
        snap.totals.packets, segments,
        "packets as the wire carried them"
    );
    assert_eq!(
        snap.totals.bytes,
        DATA as u64 + segments * HEADERS + SYN_OPTIONS,
        "bytes as the wire carried them"
    );
    let flow = &snap.flows[0];
    assert_eq!(snap.flows.len(), 1);
    assert_eq!(flow.packets_a_to_b + flow.packets_b_to_a, segments);
    let frames: u64 = snap.workers.iter().map(|w| w.packets).sum();
    assert_eq!(frames, segments + snap.parse_errors.non_ip);
}

#[test]
fn tcp_super_frames_count_as_the_segments_tcp_sent() {
    let lab = tcp_lab("gso");
    let (snap, segments) = stream(&lab);
    // 4 MB in segments of at most 1460 bytes, plus the handshake, ACKs and FINs.
    assert!(segments > 2_740, "{segments}");
    assert_wire_counts(&snap, segments);
}

#[test]
fn ipv4_big_tcp_super_frames_are_counted_not_dropped_as_malformed() {
    let lab = tcp_lab("bigtcp");
    // Past 64 KiB the sender writes IPv4 total length 0; veth carries such frames as they are.
    in_netns(&lab.generator_ns, || {
        set_gso_max_size(GENERATOR_IF, 185_000);
    });
    let (snap, segments) = stream(&lab);
    assert_wire_counts(&snap, segments);
}
