//! Privileged end-to-end test of named groups through the real capture path: two fanout
//! workers on a veth pair in fresh namespaces, a talker table small enough to evict, and group
//! totals that must still be exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use testlab::Lab;
use testlab::corpus::{self, Corpus};
use testlab::netns::CAPTURE_IF;
use testlab::wait::{COUNT_DEADLINE, wait_for_count};
use traffic_counter_capture::groups::{Group, GroupTotals};
use traffic_counter_capture::{Capture, CaptureConfig};

/// What a group must count, from the corpus alone: every packet has one source and one
/// destination, so the group's sent (received) totals are the sums over its addresses'
/// sent (received) counters.
fn expected(corpus: &Corpus, name: &str, prefixes: &[&str]) -> GroupTotals {
    let nets: Vec<IpNet> = prefixes.iter().map(|p| p.parse().unwrap()).collect();
    let inside = |ip: &IpAddr| nets.iter().any(|n| n.contains(ip));
    let mut want = GroupTotals {
        name: name.to_owned(),
        ..GroupTotals::default()
    };
    for (_, t) in corpus.talkers.iter().filter(|(ip, _)| inside(ip)) {
        want.packets_sent += t.packets_sent;
        want.bytes_sent += t.bytes_sent;
        want.packets_received += t.packets_received;
        want.bytes_received += t.bytes_received;
    }
    want
}

#[test]
fn groups_are_exact_while_the_talker_table_evicts() {
    let lab = Lab::new("groups");
    let mut corpus = corpus::standard();
    let flood = corpus::many_sources(500);
    corpus.frames.extend(flood.frames.iter().cloned());
    corpus.packets += flood.packets;
    corpus.bytes += flood.bytes;
    for (ip, t) in &flood.talkers {
        let c = corpus.talkers.entry(*ip).or_default();
        c.packets_sent += t.packets_sent;
        c.bytes_sent += t.bytes_sent;
        c.packets_received += t.packets_received;
        c.bytes_received += t.bytes_received;
    }
    let specs: [(&str, &[&str]); 4] = [
        ("lan", &["198.18.0.0/24"]),
        ("flood", &["198.18.0.0/22", "198.19.255.254/32"]),
        ("v6", &["2001:db8::/112"]),
        ("everything", &["0.0.0.0/0", "::/0"]),
    ];
    let mut config = CaptureConfig::new(CAPTURE_IF);
    config.workers = 2;
    config.max_talkers = 16;
    // Publish often, so that waiting for the counts costs little.
    config.tick = Duration::from_millis(50);
    config.groups = specs
        .iter()
        .map(|(name, prefixes)| format!("{name}={}", prefixes.join(",")).parse::<Group>())
        .collect::<Result<_, _>>()
        .unwrap();
    let capture = lab
        .in_capture_ns(|| Capture::start(&config, None))
        .expect("capture starts");
    lab.send(&corpus.frames);
    let feed = capture.feed();
    wait_for_count(
        "frames read from the rings",
        COUNT_DEADLINE,
        corpus.frame_count(),
        || {
            feed.borrow()
                .snapshot
                .as_ref()
                .map_or(0, |s| s.workers.iter().map(|w| w.packets).sum())
        },
    )
    .unwrap();
    let finished = capture.stop().expect("capture stops");
    let snap = &finished.snapshot;
    assert_eq!(snap.totals.packets, corpus.packets);
    assert!(snap.evicted_talkers.entries > 0, "the table must evict");
    let want: Vec<GroupTotals> = specs
        .iter()
        .map(|(name, prefixes)| expected(&corpus, name, prefixes))
        .collect();
    assert_eq!(snap.groups, want);
    assert_eq!(snap.groups[3].packets_sent, corpus.packets);
    assert_eq!(snap.groups[3].bytes_received, corpus.bytes);
    let json = serde_json::to_value(&**snap).unwrap();
    assert_eq!(json["groups"][1]["name"], "flood");
    assert_eq!(json["groups"][1]["bytes_sent"], want[1].bytes_sent);
}
