//! Privileged end-to-end tests of the capture library on a real veth pair in fresh network
//! namespaces: exact counts through two fanout workers, fanout modes, independent groups,
//! bounded tables, and a vanishing interface.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use testlab::corpus::{self, Corpus};
use testlab::netns::CAPTURE_IF;
use testlab::wait::{COUNT_DEADLINE, wait_for, wait_for_count};
use testlab::{Frame, L4, Lab};
use traffic_counter_capture::snapshot::Snapshot;
use traffic_counter_capture::{Capture, CaptureConfig, CaptureError, FanoutMode, Feed};

fn config(workers: usize) -> CaptureConfig {
    let mut c = CaptureConfig::new(CAPTURE_IF);
    c.workers = workers;
    c.flows = true;
    // Publish often, so that waiting for the counts costs little.
    c.tick = Duration::from_millis(50);
    c
}

/// Frames the workers have read from their rings, as of the newest published snapshot.
fn frames_read(feed: &Feed) -> u64 {
    feed.borrow()
        .snapshot
        .as_ref()
        .map_or(0, |s| s.workers.iter().map(|w| w.packets).sum())
}

/// Waits until the capture behind `feed` has read all of `corpus`'s frames from its rings.
fn wait_for_corpus(feed: &Feed, corpus: &Corpus) {
    wait_for_count(
        "frames read from the rings",
        COUNT_DEADLINE,
        corpus.frame_count(),
        || frames_read(feed),
    )
    .unwrap();
}

/// Starts capture in the lab, sends `corpus`, waits until every frame has been read, stops,
/// returns the final snapshot.
fn capture(lab: &Lab, config: &CaptureConfig, corpus: &Corpus) -> Snapshot {
    let capture = lab
        .in_capture_ns(|| Capture::start(config, None))
        .expect("capture starts");
    lab.send(&corpus.frames);
    wait_for_corpus(&capture.feed(), corpus);
    let finished = capture.stop().expect("capture stops");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    (*finished.snapshot).clone()
}

fn assert_counts(snap: &Snapshot, corpus: &Corpus) {
    assert_eq!(snap.totals.packets, corpus.packets, "IP packets");
    assert_eq!(snap.totals.bytes, corpus.bytes, "IP bytes");
    assert_eq!(snap.parse_errors.non_ip, corpus.non_ip, "non-IP frames");
    assert_eq!(
        snap.parse_errors.truncated, corpus.truncated,
        "truncated frames"
    );
    assert_eq!(
        snap.parse_errors.bad_header, corpus.bad_header,
        "malformed frames"
    );
    let frames: u64 = snap.workers.iter().map(|w| w.packets).sum();
    assert_eq!(frames, corpus.frame_count(), "frames read from the rings");
    assert!(
        snap.workers.iter().all(|w| w.ring_drops == 0),
        "{:?}",
        snap.workers
    );

    assert_eq!(snap.talkers.len(), corpus.talkers.len(), "talker count");
    for t in &snap.talkers {
        let want = corpus
            .talkers
            .get(&t.ip)
            .unwrap_or_else(|| panic!("unexpected {}", t.ip));
        assert_eq!(
            (
                t.packets_sent,
                t.bytes_sent,
                t.packets_received,
                t.bytes_received
            ),
            (
                want.packets_sent,
                want.bytes_sent,
                want.packets_received,
                want.bytes_received
            ),
            "talker {}",
            t.ip
        );
    }
    assert_eq!(snap.flows.len(), corpus.flows.len(), "flow count");
    for want in &corpus.flows {
        let got = snap
            .flows
            .iter()
            .find(|f| {
                f.proto == want.proto
                    && (f.a_ip, f.a_port) == want.a
                    && (f.b_ip, f.b_port) == want.b
            })
            .unwrap_or_else(|| panic!("flow {want:?} missing from {:#?}", snap.flows));
        assert_eq!(
            (
                got.packets_a_to_b,
                got.bytes_a_to_b,
                got.packets_b_to_a,
                got.bytes_b_to_a
            ),
            (
                want.packets_a_to_b,
                want.bytes_a_to_b,
                want.packets_b_to_a,
                want.bytes_b_to_a
            ),
            "flow {want:?}"
        );
    }
}

#[test]
fn two_workers_count_the_standard_mix_exactly() {
    let lab = Lab::new("std");
    let corpus = corpus::standard();
    let snap = capture(&lab, &config(2), &corpus);
    assert_eq!(corpus.packets, 42);
    assert_eq!(
        corpus.bytes,
        10 * 142 + 5 * 242 + 7 * 54 + 3 * 98 + 4 * 72 + 2 * 70 + 6 * 66 + 3 * 70 + 2 * 82
    );
    assert_counts(&snap, &corpus);
    assert_eq!(snap.workers.len(), 2);
    // Chosen for veth, which takes each frame in on the CPU that sent it.
    assert_eq!(snap.fanout.mode, FanoutMode::Cpu);
    assert_ne!(snap.fanout.group, 0, "the kernel chose a unique group id");
    assert_eq!(snap.evicted_talkers.entries, 0);
    assert_eq!(snap.evicted_flows.entries, 0);
}

#[test]
fn round_robin_fanout_splits_frames_evenly() {
    let lab = Lab::new("lb");
    let corpus = corpus::standard();
    let mut cfg = config(2);
    cfg.fanout.mode = Some(FanoutMode::Lb);
    let snap = capture(&lab, &cfg, &corpus);
    assert_counts(&snap, &corpus);
    let per_worker: Vec<u64> = snap.workers.iter().map(|w| w.packets).collect();
    assert_eq!(per_worker.iter().sum::<u64>(), 51);
    assert!(
        per_worker.iter().all(|&n| n == 25 || n == 26),
        "{per_worker:?}"
    );
}

#[test]
fn two_captures_on_one_interface_do_not_share_a_group() {
    let lab = Lab::new("dual");
    let corpus = corpus::standard();
    let cfg = config(2);
    let (first, second) = lab.in_capture_ns(|| {
        (
            Capture::start(&cfg, None).expect("first starts"),
            Capture::start(&cfg, None).expect("second starts"),
        )
    });
    assert_ne!(first.fanout().group, second.fanout().group);
    lab.send(&corpus.frames);
    for capture in [first, second] {
        wait_for_corpus(&capture.feed(), &corpus);
        let finished = capture.stop().expect("stops");
        assert_counts(&finished.snapshot, &corpus);
    }
}

#[test]
fn an_explicit_group_id_is_used() {
    let lab = Lab::new("grp");
    let mut cfg = config(2);
    cfg.fanout.group = Some(4242);
    cfg.fanout.rollover = true;
    let corpus = corpus::standard();
    let snap = capture(&lab, &cfg, &corpus);
    assert_eq!(snap.fanout.group, 4242);
    assert_counts(&snap, &corpus);
}

/// An IPv6 UDP frame whose destination options header carries `extra` bytes of padding, so
/// that its UDP header starts at 14 + 40 + 8 + `extra`.
fn long_options(src: [u8; 16], dst: [u8; 16], extra: usize, payload: usize) -> Frame {
    let mut frame = Frame::ipv6_with_extensions(src, dst, &[60], 0, (5, 6), payload);
    let options = 14 + 40;
    frame.bytes[options + 1] = (extra / 8) as u8;
    // Zero bytes are Pad1 options.
    frame
        .bytes
        .splice(options + 8..options + 8, vec![0u8; extra]);
    let payload_len = u16::from_be_bytes([frame.bytes[18], frame.bytes[19]]) + extra as u16;
    frame.bytes[18..20].copy_from_slice(&payload_len.to_be_bytes());
    frame
}

#[test]
fn frames_past_the_snap_length_count_their_bytes_on_the_wire() {
    let lab = Lab::new("snap");
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let mut corpus = Corpus::default();
    let (client, server) = (ip("198.18.0.2"), ip("198.18.0.1"));
    let tcp = Frame::ip(client, server, L4::Tcp(40000, 443), 1400);
    corpus.add_ip(3, &tcp, (client, server, 6, Some((40000, 443))));
    let (v6_client, v6_server) = (ip("2001:db8::2"), ip("2001:db8::1"));
    corpus.add_ip(
        2,
        &Frame::ip(v6_server, v6_client, L4::Udp(53, 4000), 1200),
        (v6_server, v6_client, 17, Some((53, 4000))),
    );
    // UDP behind 80 bytes of destination options starts at byte 134, past a 128-byte snap:
    // counted under its addresses and protocol, without ports.
    let (long_src, long_dst) = (ip("2001:db8::7"), ip("2001:db8::8"));
    let (IpAddr::V6(src6), IpAddr::V6(dst6)) = (long_src, long_dst) else {
        unreachable!()
    };
    let cut = long_options(src6.octets(), dst6.octets(), 72, 900);
    assert_eq!(cut.bytes.len(), 14 + 40 + 80 + 8 + 900);
    corpus.add_ip(4, &cut, (long_src, long_dst, 17, None));
    assert!(corpus.frames.iter().all(|frame| frame.bytes.len() > 128));

    let mut cfg = config(2);
    cfg.ring.snap_len = Some(128);
    let snap = capture(&lab, &cfg, &corpus);
    assert_eq!(snap.ring.snap_len, 128);
    assert_counts(&snap, &corpus);

    // With the default snap length the same frames keep every port.
    let mut whole = corpus::Corpus::default();
    whole.add_ip(4, &cut, (long_src, long_dst, 17, Some((5, 6))));
    let snap = capture(&lab, &config(2), &whole);
    assert_eq!(snap.ring.snap_len, 256);
    assert_counts(&snap, &whole);
}

/// Frames read from the rings so far, per worker.
fn per_worker(feed: &Feed) -> Vec<u64> {
    feed.borrow()
        .snapshot
        .as_ref()
        .map_or_else(Vec::new, |s| s.workers.iter().map(|w| w.packets).collect())
}

/// In `hash` mode both directions of a flow reach one worker (so a flow takes one slot in one
/// worker's tally), and distinct flows reach both workers.
#[test]
fn hash_fanout_keeps_each_flow_on_one_worker_and_spreads_flows() {
    let lab = Lab::new("steer");
    let mut cfg = config(2);
    cfg.fanout.mode = Some(FanoutMode::Hash);
    let capture = lab
        .in_capture_ns(|| Capture::start(&cfg, None))
        .expect("capture starts");
    let feed = capture.feed();
    let ip = |s: String| -> IpAddr { s.parse().unwrap() };
    let mut seen = vec![0u64; 2];
    let mut flows_per_worker = [0u32; 2];
    for i in 0..24u16 {
        let (a, b) = match i % 3 {
            0 => (
                ip(format!("198.18.1.{i}")),
                ip(format!("198.18.2.{}", 200 - i)),
            ),
            _ => (
                ip(format!("2001:db8::1:{i}")),
                ip(format!("2001:db8::2:{}", 99 + i)),
            ),
        };
        let l4 = |forward: bool| match (i % 2, forward) {
            (0, true) => L4::Tcp(40000 + i, 443),
            (0, false) => L4::Tcp(443, 40000 + i),
            (_, true) => L4::Udp(5000 + i, 53),
            (_, false) => L4::Udp(53, 5000 + i),
        };
        let mut there = Frame::ip(a, b, l4(true), 20);
        let mut back = Frame::ip(b, a, l4(false), 20);
        if i % 4 == 1 {
            // QinQ: the outer tag is offloaded on receive, the inner one stays in-band.
            there = there.tagged(0x8100, 10).tagged(0x88a8, 20);
            back = back.tagged(0x8100, 10).tagged(0x88a8, 20);
        }
        let frames = vec![there.clone(), back.clone(), there, back.clone(), back];
        lab.send(&frames);
        let want: u64 = seen.iter().sum::<u64>() + frames.len() as u64;
        wait_for_count("frames read from the rings", COUNT_DEADLINE, want, || {
            per_worker(&feed).iter().sum()
        })
        .unwrap();
        let now = per_worker(&feed);
        let grew: Vec<u64> = now.iter().zip(&seen).map(|(n, s)| n - s).collect();
        assert!(
            grew == [5, 0] || grew == [0, 5],
            "flow {i}: its frames went to workers as {grew:?}"
        );
        flows_per_worker[usize::from(grew[1] == 5)] += 1;
        seen = now;
    }
    assert!(
        flows_per_worker.iter().all(|&n| n >= 4),
        "24 flows spread as {flows_per_worker:?}"
    );
    capture.stop().expect("capture stops");
}

#[test]
fn bounded_tables_evict_and_still_add_up() {
    let lab = Lab::new("evict");
    let corpus = corpus::many_sources(300);
    let mut cfg = config(2);
    cfg.max_talkers = 64;
    cfg.max_flows = 32;
    let snap = capture(&lab, &cfg, &corpus);
    assert_eq!(snap.totals.packets, 300);
    assert!(snap.talkers.len() <= 64 && snap.flows.len() <= 32);
    assert!(snap.evicted_talkers.entries > 0 && snap.evicted_flows.entries > 0);
    let sent: u64 = snap.talkers.iter().map(|t| t.packets_sent).sum();
    let received: u64 = snap.talkers.iter().map(|t| t.packets_received).sum();
    let sent_bytes: u64 = snap.talkers.iter().map(|t| t.bytes_sent).sum();
    assert_eq!(sent + snap.evicted_talkers.packets_sent, 300);
    assert_eq!(received + snap.evicted_talkers.packets_received, 300);
    assert_eq!(sent_bytes + snap.evicted_talkers.bytes_sent, corpus.bytes);
    let flow_packets: u64 = snap
        .flows
        .iter()
        .map(|f| f.packets_a_to_b + f.packets_b_to_a)
        .sum();
    let flow_bytes: u64 = snap
        .flows
        .iter()
        .map(|f| f.bytes_a_to_b + f.bytes_b_to_a)
        .sum();
    assert_eq!(flow_packets + snap.evicted_flows.packets, 300);
    assert_eq!(flow_bytes + snap.evicted_flows.bytes, corpus.bytes);
    // 301 distinct addresses were seen; each is tracked now or was evicted at least once.
    assert!(snap.talkers.len() as u64 + snap.evicted_talkers.entries >= 301);
}

#[test]
fn snapshots_are_published_every_tick_while_capturing() {
    let lab = Lab::new("tick");
    let mut cfg = config(2);
    cfg.tick = Duration::from_millis(200);
    let capture = lab
        .in_capture_ns(|| Capture::start(&cfg, None))
        .expect("starts");
    let feed = capture.feed();
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    // The first published snapshot that shows every packet (read, not awaited: its rates are
    // those of the windows that saw the traffic).
    let mut newest = None;
    wait_for_count(
        "packets in a published snapshot",
        COUNT_DEADLINE,
        corpus.packets,
        || {
            newest = feed.borrow().snapshot.clone();
            newest.as_ref().map_or(0, |s| s.totals.packets)
        },
    )
    .unwrap();
    let snap = newest.unwrap();
    assert_eq!(snap.totals.packets, corpus.packets);
    // Published while running, with rates over the windows covered so far.
    assert!(snap.duration < COUNT_DEADLINE + Duration::from_secs(1));
    let expected_rate = corpus.bytes as f64 / (f64::from(snap.tick + 1) * 0.2);
    assert!(snap.totals.bytes_per_sec.get(2) > 0.0);
    assert!(
        snap.totals.bytes_per_sec.get(2) <= expected_rate * (1.0 + 1e-6),
        "{:?}",
        snap.totals
    );
    capture.stop().expect("stops");
}

#[test]
fn a_vanishing_interface_fails_the_capture_promptly() {
    let lab = Lab::new("gone");
    let capture = lab
        .in_capture_ns(|| Capture::start(&config(2), None))
        .expect("starts");
    let feed = capture.feed();
    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    wait_for_corpus(&feed, &corpus);
    let deleted = Instant::now();
    lab.delete_capture_interface();
    let failure = wait_for(
        "the capture to report the interface's removal",
        COUNT_DEADLINE,
        || feed.borrow().failure.clone(),
        Option::is_some,
    )
    .unwrap()
    .unwrap();
    assert!(
        deleted.elapsed() < Duration::from_secs(2),
        "took {:?}",
        deleted.elapsed()
    );
    assert!(
        failure.contains("tc0") && failure.contains("went away"),
        "{failure}"
    );
    let finished = capture.stop().expect("stops");
    assert!(matches!(
        finished.error,
        Some(CaptureError::InterfaceGone { .. })
    ));
    assert_eq!(
        finished.snapshot.totals.packets, corpus.packets,
        "counted before it vanished"
    );
}

#[test]
fn a_missing_interface_names_the_ones_that_exist() {
    let lab = Lab::new("missing");
    let mut cfg = config(1);
    cfg.interface = "nope0".into();
    let err = lab
        .in_capture_ns(|| Capture::start(&cfg, None))
        .err()
        .expect("fails");
    let text = err.to_string();
    assert!(
        text.contains("\"nope0\"") && text.contains("lo, tc0"),
        "{text}"
    );
}

/// The `i`-th of 65,536 distinct sources in 198.18.0.0/16.
fn unique_source(i: u32) -> std::net::IpAddr {
    std::net::IpAddr::from([198, 18, (i >> 8) as u8, i as u8])
}

#[test]
fn frames_arriving_while_the_group_assembles_are_never_counted_twice() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use testlab::netns::{GENERATOR_IF, PacketSender, in_netns};
    use testlab::{Frame, L4};

    let lab = Lab::new("startup");
    // Eight members: seven bind-to-join windows per start, while frames stream in from
    // sources that each send exactly one frame within any one capture's life (far fewer than
    // 65,536 frames).
    let mut cfg = config(8);
    cfg.ring.block_count = Some(4);
    cfg.ring.block_size = Some(1 << 20);
    let server: std::net::IpAddr = "198.19.0.1".parse().unwrap();
    let sending = AtomicBool::new(true);
    let snapshots = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            in_netns(&lab.generator_ns, || {
                let sock = PacketSender::open(GENERATOR_IF);
                let mut i = 0u32;
                // Bounded: at most 2M frames or until the captures are done.
                while sending.load(Ordering::Relaxed) && i < 2_000_000 {
                    let frame = Frame::ip(unique_source(i), server, L4::Udp(4000, 53), 0);
                    sock.send(&frame.bytes);
                    i += 1;
                    // Pacing, not waiting: a bounded rate keeps the receive backlog from
                    // overflowing, and no counter says when there is room again.
                    if i.is_multiple_of(64) {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
                i
            })
        });
        let mut snapshots = Vec::new();
        for _ in 0..10 {
            let capture = lab
                .in_capture_ns(|| Capture::start(&cfg, None))
                .expect("capture starts");
            let feed = capture.feed();
            wait_for(
                "a snapshot counting frames while the group is live",
                COUNT_DEADLINE,
                || {
                    feed.borrow()
                        .snapshot
                        .as_ref()
                        .map_or(0, |s| s.totals.packets)
                },
                |&n| n > 0,
            )
            .unwrap();
            let finished = capture.stop().expect("capture stops");
            assert!(finished.error.is_none(), "{:?}", finished.error);
            snapshots.push(finished.snapshot);
        }
        sending.store(false, Ordering::Relaxed);
        let sent = sender.join().unwrap();
        assert!(sent > 1000, "the sender sent only {sent} frames");
        snapshots
    });
    for snap in snapshots {
        assert!(
            snap.totals.packets > 0,
            "frames were flowing during each capture"
        );
        assert_eq!(snap.evicted_talkers.entries, 0);
        let sources: Vec<_> = snap.talkers.iter().filter(|t| t.ip != server).collect();
        let twice: Vec<_> = sources.iter().filter(|t| t.packets_sent != 1).collect();
        assert!(twice.is_empty(), "counted more than once: {twice:?}");
        assert_eq!(sources.len() as u64, snap.totals.packets);
        let to_server = snap.talkers.iter().find(|t| t.ip == server).unwrap();
        assert_eq!(to_server.packets_received, snap.totals.packets);
    }
}
