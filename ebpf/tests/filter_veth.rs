//! Privileged tests of the socket filters on a real veth pair in fresh namespaces: exact
//! counted traffic and per-reason rejects through two fanout workers, classic/eBPF verdict
//! equivalence, live list updates, and attachment before any frame reaches a ring.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/counts.rs"]
mod counts;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use testlab::corpus::{self, Corpus, FILTER_ALLOW, FILTER_EXCLUDE, FILTER_VLANS};
use testlab::netns::{CAPTURE_IF, GENERATOR_IF, PacketReceiver, PacketSender, in_netns};
use testlab::{COUNT_DEADLINE, Frame, L4, Lab, wait_for, wait_for_count};
use traffic_counter_capture::filter::{attach_classic, classic_ret};
use traffic_counter_capture::snapshot::{FilterKind, Snapshot};
use traffic_counter_capture::{Capture, CaptureConfig, PacketFilter};
use traffic_counter_ebpf::{
    CidrList, ClassicFilter, EbpfFilter, FilterMode, FilterRules, PrefixList, select,
};

fn rules() -> FilterRules {
    FilterRules {
        vlans: Some(FILTER_VLANS.parse().unwrap()),
        exclude: FILTER_EXCLUDE.parse::<CidrList>().unwrap().0,
        allow: Some(FILTER_ALLOW.parse::<CidrList>().unwrap().0),
    }
}

fn capture(lab: &Lab, filter: Arc<dyn PacketFilter>, corpus: &Corpus) -> Snapshot {
    let mut config = CaptureConfig::new(CAPTURE_IF);
    config.workers = 2;
    config.flows = true;
    config.tick = Duration::from_millis(20);
    let capture = lab
        .in_capture_ns(|| Capture::start(&config, Some(filter)))
        .expect("capture starts");
    lab.send(&corpus.frames);
    let rejected = corpus.rejected_total();
    counts::wait_for_counts(&capture, corpus.frame_count() - rejected, rejected);
    let finished = capture.stop().expect("stops");
    assert!(finished.error.is_none());
    (*finished.snapshot).clone()
}

fn assert_counted(snap: &Snapshot, corpus: &Corpus) {
    assert_eq!(snap.totals.packets, corpus.packets);
    assert_eq!(snap.totals.bytes, corpus.bytes);
    assert_eq!(snap.parse_errors.truncated, corpus.truncated);
    assert_eq!(
        snap.parse_errors.non_ip, 0,
        "non-IP frames reached userspace"
    );
    let frames: u64 = snap.workers.iter().map(|w| w.packets).sum();
    assert_eq!(frames, corpus.frame_count() - corpus.rejected_total());
    assert_eq!(snap.talkers.len(), corpus.talkers.len());
    for t in &snap.talkers {
        let want = corpus.talkers[&t.ip];
        assert_eq!(
            (t.packets_sent, t.bytes_sent),
            (want.packets_sent, want.bytes_sent),
            "{}",
            t.ip
        );
        assert_eq!(
            (t.packets_received, t.bytes_received),
            (want.packets_received, want.bytes_received),
            "{}",
            t.ip
        );
    }
}

#[test]
fn ebpf_counts_passed_traffic_and_each_reject_reason_exactly() {
    let lab = Lab::new("fe");
    let corpus = corpus::filtered();
    assert_eq!((corpus.packets, corpus.rejected_total()), (14, 25));
    let filter = Arc::new(EbpfFilter::load(&rules()).expect("eBPF loads (run as root)"));
    let snap = capture(&lab, filter, &corpus);
    assert_counted(&snap, &corpus);
    assert_eq!(snap.filter.kind, FilterKind::Ebpf);
    let rejects = snap.filter.rejects.expect("eBPF counts its rejects");
    assert_eq!(rejects.vlan, corpus.rejected("vlan"));
    assert_eq!(rejects.non_ip, corpus.rejected("non_ip"));
    assert_eq!(rejects.excluded, corpus.rejected("excluded"));
    assert_eq!(rejects.not_allowed, corpus.rejected("not_allowed"));
}

#[test]
fn classic_counts_the_same_traffic_and_leaves_rejects_unknown() {
    let lab = Lab::new("fc");
    let corpus = corpus::filtered();
    let filter = Arc::new(ClassicFilter::new(&rules()).unwrap());
    let snap = capture(&lab, filter, &corpus);
    assert_counted(&snap, &corpus);
    assert_eq!(snap.filter.kind, FilterKind::Classic);
    assert_eq!(snap.filter.rejects, None);
}

/// Frames that probe every verdict and every length check, beyond the counted corpus.
fn verdict_corpus() -> Vec<Frame> {
    let mut frames: Vec<Frame> = corpus::filtered().frames;
    frames.dedup_by(|a, b| a.bytes == b.bytes);
    let ip = |s: &str| s.parse().unwrap();
    let full = Frame::ip(ip("198.18.0.2"), ip("198.18.0.1"), L4::Tcp(1, 2), 0);
    // IPv4 cut inside the addresses, and IPv6 cut inside the destination.
    frames.push(Frame {
        bytes: full.bytes[..14 + 14].to_vec(),
    });
    let v6 = Frame::ip(ip("2001:db8::2"), ip("2001:db8::1"), L4::Udp(1, 2), 0);
    frames.push(Frame {
        bytes: v6.bytes[..14 + 30].to_vec(),
    });
    // Three in-band tags inside an offloaded one, and an 802.3 length frame.
    frames.push(
        full.clone()
            .tagged(0x8100, 7)
            .tagged(0x8100, 8)
            .tagged(0x8100, 9)
            .tagged(0x88a8, 100),
    );
    let mut llc = Frame::arp();
    llc.bytes[12..14].copy_from_slice(&60u16.to_be_bytes());
    frames.push(llc);
    // Edges of the prefixes.
    for (s, d) in [
        ("198.18.255.255", "198.19.0.0"),
        ("198.18.4.255", "198.18.6.0"),
        ("2001:db8:0:4:ffff:ffff:ffff:ffff", "2001:db8:0:6::"),
        ("2001:db8:ffff::1", "2001:db8:1::1"),
    ] {
        frames.push(Frame::ip(ip(s), ip(d), L4::Udp(5, 6), 4));
        frames.push(Frame::ip(ip(s), ip(d), L4::Udp(5, 6), 4).tagged(0x8100, 200));
    }
    // IPv4-mapped addresses in IPv6 headers, judged by the IPv4 prefixes.
    for (s, d) in [
        ("::ffff:198.18.5.1", "2001:db8::1"),
        ("::ffff:198.18.1.1", "::ffff:198.18.2.2"),
        ("::ffff:198.19.1.1", "2001:db8:1::1"),
    ] {
        frames.push(Frame::ip(ip(s), ip(d), L4::Udp(5, 6), 4));
    }
    frames
}

/// For each frame: (passed eBPF, passed classic), through two plain sockets side by side.
fn verdicts(lab: &Lab, rules: &FilterRules, frames: &[Frame]) -> Vec<(bool, bool)> {
    let ebpf = EbpfFilter::load(rules).unwrap();
    let classic = ClassicFilter::new(rules).unwrap();
    let open = || {
        vec![
            PacketReceiver::open(CAPTURE_IF, |fd| ebpf.attach(fd, WHOLE).unwrap()),
            PacketReceiver::open(CAPTURE_IF, |fd| classic.attach(fd, WHOLE).unwrap()),
        ]
    };
    received(lab, open, frames)
        .into_iter()
        .map(|got| (got[0].is_some(), got[1].is_some()))
        .collect()
}

/// A snap length of the whole frame.
const WHOLE: u32 = 0;

/// For each frame, the bytes each socket `open` returns received of it (`None`: filtered out).
///
/// A socket without a filter, opened first, tells when all have judged a frame: the kernel
/// hands a frame to a device's packet sockets newest first, in one pass, so once the oldest
/// has it the others have run their filters.
fn received(
    lab: &Lab,
    open: impl FnOnce() -> Vec<PacketReceiver> + Send,
    frames: &[Frame],
) -> Vec<Vec<Option<usize>>> {
    let (sentinel, sockets) = lab.in_capture_ns(|| {
        let sentinel = PacketReceiver::open(CAPTURE_IF, |_| {});
        (sentinel, open())
    });
    in_netns(&lab.generator_ns, || {
        let sender = PacketSender::open(GENERATOR_IF);
        frames
            .iter()
            .map(|frame| {
                sender.send(&frame.bytes);
                let seen = wait_for(
                    "the unfiltered socket to receive the frame",
                    COUNT_DEADLINE,
                    || sentinel.drain().len(),
                    |&n| n > 0,
                )
                .unwrap();
                assert_eq!(seen, 1);
                sockets
                    .iter()
                    .map(|socket| {
                        let got = socket.drain();
                        assert!(got.len() <= 1);
                        got.first().map(Vec::len)
                    })
                    .collect()
            })
            .collect()
    })
}

#[test]
fn ebpf_and_classic_give_identical_verdicts() {
    let lab = Lab::new("feq");
    let frames = verdict_corpus();
    let rule_sets = [
        rules(),
        FilterRules::default(),
        FilterRules {
            vlans: Some("300".parse().unwrap()),
            exclude: "198.18.0.0/15".parse::<CidrList>().unwrap().0,
            allow: None,
        },
        FilterRules {
            vlans: None,
            exclude: Vec::new(),
            allow: Some("2001:db8::/32,0.0.0.0/0".parse::<CidrList>().unwrap().0),
        },
    ];
    let expected_first = corpus::filtered();
    for (n, rules) in rule_sets.iter().enumerate() {
        let got = verdicts(&lab, rules, &frames);
        for (i, (frame, (e, c))) in frames.iter().zip(&got).enumerate() {
            assert_eq!(
                e, c,
                "rule set {n}, frame {i}: eBPF {e} classic {c}: {:02x?}",
                frame.bytes
            );
        }
        if n == 0 {
            let passed = got.iter().filter(|(e, _)| *e).count();
            // Distinct frames of the counted corpus that pass: 4 kinds + the truncated one.
            let distinct_pass = 5;
            // Cut IPv4 and IPv6 pass; the triple-tagged and 802.3 frames do not; of the four
            // prefix-edge pairs (untagged and VLAN 200) all but the last pass.
            let edges_pass = 1 + 1 + 2 + 2 + 2;
            // Of the mapped frames only the one between allowed IPv4 hosts passes.
            let mapped_pass = 1;
            assert_eq!(passed, distinct_pass + edges_pass + mapped_pass, "{got:?}");
            assert_eq!(expected_first.rejected_total(), 25);
        }
        if n == 1 {
            // No rules: only non-IP is rejected (ARP, tagged ARP, the 802.3 frame).
            // No rules: only non-IP is rejected: ARP, tagged ARP, three in-band tags, 802.3.
            let rejected = got.iter().filter(|(e, _)| !e).count();
            assert_eq!(rejected, 4, "{got:?}");
        }
    }
}

/// Both filters, and the program capture attaches when there is no filter, copy only the
/// snap length of a passing frame; a rejected frame stays rejected.
#[test]
fn every_program_keeps_only_the_snap_length() {
    let lab = Lab::new("fsn");
    let rules = FilterRules::default();
    let ebpf = EbpfFilter::load(&rules).unwrap();
    let classic = ClassicFilter::new(&rules).unwrap();
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let src = ip("198.18.0.1");
    let dst = ip("2001:db8::1");
    // Frame lengths: 14 + 20 + 8 + payload for IPv4 UDP, 14 + 40 + 8 + payload for IPv6.
    let mut frames: Vec<Frame> = [0, 86, 87, 200, 1400]
        .into_iter()
        .map(|payload| Frame::ip(src, ip("198.18.0.2"), L4::Udp(1, 2), payload))
        .collect();
    frames.push(Frame::ip(dst, ip("2001:db8::2"), L4::Udp(1, 2), 1400));
    frames.push(Frame::arp());
    let lengths: Vec<usize> = frames.iter().map(|f| f.bytes.len()).collect();
    assert_eq!(lengths[..5], [42, 128, 129, 242, 1442]);
    for snap in [128u32, 256] {
        let open = || {
            vec![
                PacketReceiver::open(CAPTURE_IF, |fd| ebpf.attach(fd, snap).unwrap()),
                PacketReceiver::open(CAPTURE_IF, |fd| classic.attach(fd, snap).unwrap()),
                PacketReceiver::open(CAPTURE_IF, |fd| {
                    attach_classic(fd, &classic_ret(snap)).unwrap();
                }),
            ]
        };
        let got = received(&lab, open, &frames);
        for (i, (len, got)) in lengths.iter().zip(&got).enumerate() {
            let kept = (*len).min(snap as usize);
            let expected = if i == frames.len() - 1 {
                // ARP: both filters reject it; the snap-only program lets it through.
                vec![None, None, Some(kept)]
            } else {
                vec![Some(kept); 3]
            };
            assert_eq!(*got, expected, "snap {snap}, frame {i} of {len} bytes");
        }
    }
}

#[test]
fn a_live_exclude_rejects_later_traffic() {
    let lab = Lab::new("flive");
    let filter = Arc::new(EbpfFilter::load(&FilterRules::default()).unwrap());
    let mut config = CaptureConfig::new(CAPTURE_IF);
    config.workers = 2;
    config.tick = Duration::from_millis(20);
    let capture = lab
        .in_capture_ns(|| Capture::start(&config, Some(filter.clone())))
        .unwrap();
    let ip = |s: &str| s.parse().unwrap();
    let frame = Frame::ip(ip("198.18.7.1"), ip("198.18.0.1"), L4::Udp(9, 9), 10);
    lab.send(&vec![frame.clone(); 5]);
    counts::wait_for_counts(&capture, 5, 0);
    filter
        .add(PrefixList::Exclude, "198.18.7.0/24".parse().unwrap())
        .unwrap();
    lab.send(&vec![frame.clone(); 7]);
    counts::wait_for_counts(&capture, 5, 7);
    filter
        .remove(PrefixList::Exclude, "198.18.7.0/24".parse().unwrap())
        .unwrap();
    lab.send(&vec![frame; 3]);
    counts::wait_for_counts(&capture, 8, 7);
    let snap = capture.stop().unwrap().snapshot;
    assert_eq!(snap.totals.packets, 8);
    assert_eq!(snap.filter.rejects.unwrap().excluded, 7);
}

/// Stops a sender however a scope ends, so a failed assertion reports at once.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn no_unfiltered_frame_reaches_a_ring_during_start() {
    let lab = Lab::new("forder");
    let rules = FilterRules {
        vlans: None,
        exclude: "198.18.9.0/24".parse::<CidrList>().unwrap().0,
        allow: None,
    };
    let ip = |s: &str| s.parse().unwrap();
    let unwanted = [
        Frame::arp(),
        Frame::ip(ip("198.18.9.9"), ip("198.18.0.1"), L4::Udp(1, 1), 0),
    ];
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let _stop_sender = StopOnDrop(&stop);
        // Keep unwanted frames flowing while captures start and stop: about 100k frames/s,
        // bounded to 2M frames and 30 s whatever happens to the test.
        scope.spawn(|| {
            in_netns(&lab.generator_ns, || {
                let sender = PacketSender::open(GENERATOR_IF);
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                for i in 0..2_000_000 {
                    if stop.load(Ordering::Relaxed) || std::time::Instant::now() > deadline {
                        break;
                    }
                    sender.send(&unwanted[i % 2].bytes);
                    sent.fetch_add(1, Ordering::Relaxed);
                    // Pacing, not waiting: a bounded rate keeps the receive backlog from
                    // overflowing, and no counter says when there is room again.
                    if i % 100 == 99 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        });
        wait_for_count("frames sent", COUNT_DEADLINE, 1000, || {
            sent.load(Ordering::Relaxed)
        })
        .unwrap();
        for mode in [FilterMode::Ebpf, FilterMode::Classic] {
            for _ in 0..5 {
                let selected = select(mode, &rules).unwrap();
                let mut config = CaptureConfig::new(CAPTURE_IF);
                config.workers = 2;
                let capture = lab
                    .in_capture_ns(|| Capture::start(&config, selected.filter.clone()))
                    .unwrap();
                // Unwanted frames arrive on the interface while this capture is up.
                let arrived = lab.capture_rx_packets();
                wait_for_count(
                    "unwanted frames on the capture interface during the capture",
                    COUNT_DEADLINE,
                    arrived + 200,
                    || lab.capture_rx_packets(),
                )
                .unwrap();
                let snap = capture.stop().unwrap().snapshot;
                let frames: u64 = snap.workers.iter().map(|w| w.packets).sum();
                assert_eq!(frames, 0, "{mode:?}: an unwanted frame reached a ring");
                if mode == FilterMode::Ebpf {
                    let r = snap.filter.rejects.unwrap();
                    assert!(r.non_ip > 0 && r.excluded > 0, "{r:?}");
                }
            }
        }
    });
}
