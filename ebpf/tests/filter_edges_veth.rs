//! Privileged tests of two edges of the prefix lists, through both filters on a real veth pair:
//! IPv4-mapped IPv6 addresses are judged by the IPv4 rules, and removing the last allowed prefix
//! opens the filter instead of closing it to everything. Counts are exact, and every wait polls
//! the capture's counters rather than sleeping a fixed time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/counts.rs"]
mod counts;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use counts::{frames_read, wait_for_counts};
use ipnet::IpNet;
use testlab::corpus::Corpus;
use testlab::netns::CAPTURE_IF;
use testlab::{Frame, L4, Lab};
use traffic_counter_capture::snapshot::Snapshot;
use traffic_counter_capture::{Capture, CaptureConfig, PacketFilter};
use traffic_counter_ebpf::{
    CidrList, ClassicFilter, EbpfError, EbpfFilter, FilterRules, PrefixList,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A running capture with a short tick, so the feed shows counts soon after frames arrive.
fn start(lab: &Lab, filter: Arc<dyn PacketFilter>) -> Capture {
    let mut config = CaptureConfig::new(CAPTURE_IF);
    config.workers = 2;
    config.tick = Duration::from_millis(20);
    lab.in_capture_ns(|| Capture::start(&config, Some(filter)))
        .expect("capture starts")
}

/// Frames with IPv4-mapped addresses in their IPv6 headers, and what the rules of
/// [`mapped_rules`] must make of them: each passed frame counted as its IPv4 hosts.
fn mapped_corpus() -> Corpus {
    let mut corpus = Corpus::default();
    let mut add = |count: u64, src: &str, dst: &str, verdict: Option<&'static str>| {
        let frame = Frame::ip(ip(src), ip(dst), L4::Udp(4000, 53), 20);
        match verdict {
            None => {
                let canonical = |s: &str| ip(s).to_canonical();
                let packet = (canonical(src), canonical(dst), 17, Some((4000, 53)));
                corpus.add_ip(count, &frame, packet);
            }
            Some(reason) => corpus.add_rejected(count, &frame, reason),
        }
    };
    // A mapped source or destination in an excluded IPv4 prefix.
    add(3, "::ffff:198.18.5.1", "2001:db8:1::1", Some("excluded"));
    add(2, "2001:db8:1::2", "::ffff:198.18.5.9", Some("excluded"));
    // Mapped addresses in an allowed IPv4 prefix.
    add(4, "::ffff:198.18.1.1", "::ffff:198.18.2.2", None);
    // A mapped address outside every allowed prefix, to an IPv6 one outside them too.
    add(2, "::ffff:198.19.1.1", "2001:db8:2::1", Some("not_allowed"));
    // The exclude rule written as a mapped IPv6 prefix applies to IPv4 and mapped alike.
    add(3, "198.19.7.1", "198.18.0.1", Some("excluded"));
    add(
        1,
        "::ffff:198.19.7.5",
        "::ffff:198.18.0.1",
        Some("excluded"),
    );
    // Plain IPv4 and IPv6 traffic keeps its verdicts.
    add(2, "198.18.1.1", "198.18.2.2", None);
    add(2, "2001:db8:1::5", "2001:db8:2::5", None);
    add(1, "2001:db8:2::5", "2001:db8:3::5", Some("not_allowed"));
    corpus
}

/// Rules given raw (not through the flag parser), so each filter's own normalisation is tested.
fn mapped_rules() -> FilterRules {
    FilterRules {
        vlans: None,
        exclude: vec![net("198.18.5.0/24"), net("::ffff:198.19.7.0/120")],
        allow: Some(vec![net("198.18.0.0/16"), net("2001:db8:1::/48")]),
    }
}

/// Sends the mapped corpus through `filter` and checks every count exactly.
fn check_mapped(lab: &Lab, filter: &Arc<dyn PacketFilter>) -> Snapshot {
    let corpus = mapped_corpus();
    assert_eq!((corpus.packets, corpus.rejected_total()), (8, 12));
    let capture = start(lab, filter.clone());
    lab.send(&corpus.frames);
    let known_rejects = filter.rejects().map_or(0, |_| corpus.rejected_total());
    wait_for_counts(&capture, corpus.packets, known_rejects);
    let finished = capture.stop().expect("capture stops");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    let snap = (*finished.snapshot).clone();
    assert_eq!(
        frames_read(&snap),
        corpus.packets,
        "frames the filter passed"
    );
    assert_eq!(
        (snap.totals.packets, snap.totals.bytes),
        (corpus.packets, corpus.bytes)
    );
    let mut talkers: Vec<(IpAddr, u64, u64)> = snap
        .talkers
        .iter()
        .map(|t| (t.ip, t.packets_sent, t.packets_received))
        .collect();
    let want: Vec<(IpAddr, u64, u64)> = corpus
        .talkers
        .iter()
        .map(|(ip, c)| (*ip, c.packets_sent, c.packets_received))
        .collect();
    talkers.sort_unstable();
    assert_eq!(talkers, want);
    snap
}

#[test]
fn ebpf_judges_mapped_addresses_by_the_ipv4_rules() {
    let lab = Lab::new("fmape");
    let filter: Arc<dyn PacketFilter> =
        Arc::new(EbpfFilter::load(&mapped_rules()).expect("eBPF loads (run as root)"));
    let snap = check_mapped(&lab, &filter);
    let corpus = mapped_corpus();
    let rejects = snap.filter.rejects.expect("eBPF counts its rejects");
    assert_eq!(
        (
            rejects.vlan,
            rejects.non_ip,
            rejects.excluded,
            rejects.not_allowed
        ),
        (
            0,
            0,
            corpus.rejected("excluded"),
            corpus.rejected("not_allowed")
        )
    );
    assert_eq!((rejects.excluded, rejects.not_allowed), (9, 3));
}

#[test]
fn classic_judges_mapped_addresses_by_the_ipv4_rules() {
    let lab = Lab::new("fmapc");
    let filter: Arc<dyn PacketFilter> = Arc::new(ClassicFilter::new(&mapped_rules()).unwrap());
    let snap = check_mapped(&lab, &filter);
    assert_eq!(snap.filter.rejects, None);
}

/// One frame from 198.18.2.1, which only an allow list without 198.18.2.0/24 rejects.
fn probe() -> Frame {
    Frame::ip(ip("198.18.2.1"), ip("198.18.3.1"), L4::Udp(7, 7), 10)
}

#[test]
fn removing_the_last_allowed_prefix_opens_the_ebpf_filter() {
    let lab = Lab::new("fallowe");
    let rules = FilterRules {
        vlans: None,
        exclude: Vec::new(),
        allow: Some(vec![net("198.18.1.0/24")]),
    };
    let filter = Arc::new(EbpfFilter::load(&rules).expect("eBPF loads (run as root)"));
    let capture = start(&lab, filter.clone());
    let other = Frame::ip(ip("198.18.4.1"), ip("198.18.5.1"), L4::Udp(7, 7), 10);

    lab.send(&vec![probe(); 3]);
    wait_for_counts(&capture, 0, 3);
    // Add an IPv6 prefix, then remove both: the list is empty and restricts nothing.
    filter.add(PrefixList::Allow, net("2001:db8::/32")).unwrap();
    filter
        .remove(PrefixList::Allow, net("198.18.1.0/24"))
        .unwrap();
    filter
        .remove(PrefixList::Allow, net("2001:db8::/32"))
        .unwrap();
    lab.send(&vec![probe(); 4]);
    wait_for_counts(&capture, 4, 3);
    // A first prefix again restricts again.
    filter.add(PrefixList::Allow, net("198.18.2.0/24")).unwrap();
    lab.send(&vec![probe(); 2]);
    lab.send(&vec![other; 5]);
    wait_for_counts(&capture, 6, 8);
    let err = filter
        .remove(PrefixList::Allow, net("198.18.1.0/24"))
        .unwrap_err();
    assert!(
        matches!(err, EbpfError::NotListed { .. }),
        "removing an unlisted prefix: {err}"
    );

    let snap = capture.stop().expect("capture stops").snapshot;
    assert_eq!((frames_read(&snap), snap.totals.packets), (6, 6));
    let r = snap.filter.rejects.expect("eBPF counts its rejects");
    assert_eq!((r.vlan, r.non_ip, r.excluded, r.not_allowed), (0, 0, 0, 8));
}

#[test]
fn an_empty_allow_list_restricts_neither_filter() {
    let lab = Lab::new("fallowc");
    let rules = FilterRules {
        vlans: None,
        exclude: "198.18.9.0/24".parse::<CidrList>().unwrap().0,
        allow: Some(Vec::new()),
    };
    let excluded = Frame::ip(ip("198.18.9.1"), ip("198.18.3.1"), L4::Udp(7, 7), 10);
    let v6 = Frame::ip(ip("2001:db8::1"), ip("2001:db8::2"), L4::Udp(7, 7), 10);
    let mut frames = vec![probe(); 3];
    frames.extend(vec![v6; 2]);
    frames.extend(vec![excluded; 4]);
    let filters: [Arc<dyn PacketFilter>; 2] = [
        Arc::new(EbpfFilter::load(&rules).expect("eBPF loads (run as root)")),
        Arc::new(ClassicFilter::new(&rules).unwrap()),
    ];
    for filter in filters {
        let capture = start(&lab, filter.clone());
        lab.send(&frames);
        let known_rejects = filter.rejects().map_or(0, |_| 4);
        wait_for_counts(&capture, 5, known_rejects);
        let snap = capture.stop().expect("capture stops").snapshot;
        let kind = snap.filter.kind;
        assert_eq!(
            (frames_read(&snap), snap.totals.packets),
            (5, 5),
            "{kind:?}"
        );
        if let Some(r) = snap.filter.rejects {
            assert_eq!((r.vlan, r.non_ip, r.excluded, r.not_allowed), (0, 0, 4, 0));
        }
    }
}
