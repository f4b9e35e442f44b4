//! Replaying files the tests write (testlab's writer, independent of the reader): exact counts
//! for every link type and both formats, ticks in capture time, cut and malformed files.

use std::collections::BTreeMap;
use std::net::IpAddr;

use testlab::ScratchDir;
use testlab::capture_file::{self, Link as FileLink};
use testlab::corpus::{self, Corpus};

use super::*;
use crate::Snapshot;

/// 2023-11-14T22:13:20Z, in ns.
const BASE_NS: u64 = 1_700_000_000_000_000_000;
/// Corpus frames are 100 ms of capture time apart.
const GAP_NS: u64 = 100_000_000;

fn stamped(c: &Corpus) -> Vec<(u64, &[u8])> {
    c.frames
        .iter()
        .enumerate()
        .map(|(i, f)| (BASE_NS + i as u64 * GAP_NS, f.bytes.as_slice()))
        .collect()
}

fn replay_bytes(bytes: &[u8], flows: bool) -> Result<Finished, CaptureError> {
    let scratch = ScratchDir::new("replay");
    let path = scratch.join("in.cap");
    std::fs::write(&path, bytes).unwrap();
    let mut config = CaptureConfig::new("unused");
    config.flows = flows;
    Capture::replay(&config, &ReplayInput::File(path), None)?.join()
}

/// Asserts every count the corpus expects, per talker and per flow.
fn assert_counts(s: &Snapshot, c: &Corpus, extra_truncated: u64) {
    assert_eq!((s.totals.packets, s.totals.bytes), (c.packets, c.bytes));
    assert_eq!(
        (
            s.parse_errors.non_ip,
            s.parse_errors.truncated,
            s.parse_errors.bad_header
        ),
        (c.non_ip, c.truncated + extra_truncated, c.bad_header)
    );
    assert_eq!(s.workers.len(), 1);
    assert_eq!(s.workers[0].packets, c.frame_count() + extra_truncated);
    let talkers: BTreeMap<IpAddr, [u64; 4]> = s
        .talkers
        .iter()
        .map(|t| {
            let counts = [
                t.packets_sent,
                t.bytes_sent,
                t.packets_received,
                t.bytes_received,
            ];
            (t.ip, counts)
        })
        .collect();
    let expected = c.talker_rows();
    assert_eq!(talkers, expected);
    let mut flows: Vec<_> = s
        .flows
        .iter()
        .map(|f| {
            let counts = [
                f.packets_a_to_b,
                f.bytes_a_to_b,
                f.packets_b_to_a,
                f.bytes_b_to_a,
            ];
            (f.proto, (f.a_ip, f.a_port), (f.b_ip, f.b_port), counts)
        })
        .collect();
    let mut expected: Vec<_> = c
        .flows
        .iter()
        .map(|f| {
            let counts = [
                f.packets_a_to_b,
                f.bytes_a_to_b,
                f.packets_b_to_a,
                f.bytes_b_to_a,
            ];
            (f.proto, f.a, f.b, counts)
        })
        .collect();
    flows.sort();
    expected.sort();
    assert_eq!(flows, expected);
}

#[test]
fn every_link_type_in_both_formats_gives_the_corpus_counts() {
    let c = corpus::standard();
    let frames = stamped(&c);
    for link in [FileLink::Ethernet, FileLink::Sll, FileLink::Sll2] {
        for (format, bytes) in [
            (Source::Pcap, capture_file::pcap(link, false, &frames)),
            (Source::Pcap, capture_file::pcap(link, true, &frames)),
            (Source::Pcapng, capture_file::pcapng(link, &frames)),
        ] {
            let finished = replay_bytes(&bytes, true).unwrap();
            assert!(finished.error.is_none(), "{:?}", finished.error);
            let s = &finished.snapshot;
            assert_eq!(s.source, format, "{link:?}");
            assert_counts(s, &c, 0);
        }
    }
}

#[test]
fn ticks_and_times_follow_the_capture_timestamps() {
    let c = corpus::standard();
    let frames = stamped(&c);
    let finished = replay_bytes(&capture_file::pcapng(FileLink::Ethernet, &frames), false).unwrap();
    let s = &finished.snapshot;
    let n = c.frame_count();
    // 51 frames 100 ms apart: the last one is 5.0 s after the first, in tick 5 of 1 s ticks.
    assert_eq!(s.started_at, time(BASE_NS));
    assert_eq!(s.taken_at, time(BASE_NS + (n - 1) * GAP_NS));
    assert_eq!(s.duration, Duration::from_millis(5000));
    assert_eq!(s.tick, 5);
    // Every tick but the last holds ten frames; the 40 s window covers all six ticks so far,
    // so its rate is all the bytes over 6 s of capture time.
    let rate = s.totals.bytes_per_sec.get(2);
    assert!((rate - c.bytes as f64 / 6.0).abs() < 0.01, "{rate}");
    let first_seen = s.talkers.iter().map(|t| t.first_seen).min().unwrap();
    assert_eq!(first_seen.to_system_time(), time(BASE_NS));
}

#[test]
fn a_record_cut_short_by_the_end_of_the_file_is_one_truncated_frame() {
    let c = corpus::standard();
    let frames = stamped(&c);
    let mut extra = frames.clone();
    let last = testlab::Frame::ip(
        "198.18.9.9".parse().unwrap(),
        "198.18.9.8".parse().unwrap(),
        testlab::L4::Udp(1, 2),
        100,
    );
    extra.push((BASE_NS + 60 * GAP_NS, &last.bytes));
    for mut bytes in [
        capture_file::pcap(FileLink::Ethernet, false, &extra),
        capture_file::pcapng(FileLink::Sll2, &extra),
    ] {
        // Cut in the middle of the last frame's IP payload, then inside its record header.
        bytes.truncate(bytes.len() - 60);
        let finished = replay_bytes(&bytes, true).unwrap();
        assert!(finished.error.is_none(), "{:?}", finished.error);
        assert_counts(&finished.snapshot, &c, 1);
        let wire = finished.snapshot.workers[0].bytes - c.bytes;
        let not_ip: u64 = c.frames.iter().map(testlab::Frame::len).sum::<u64>() - c.bytes;
        assert_eq!(wire - not_ip, last.len());
    }
    let mut bytes = capture_file::pcap(FileLink::Ethernet, false, &extra);
    bytes.truncate(bytes.len() - last.bytes.len() - 6);
    let finished = replay_bytes(&bytes, true).unwrap();
    assert_counts(&finished.snapshot, &c, 1);
}

#[test]
fn a_file_that_is_not_a_capture_is_refused_naming_file_and_offset() {
    let scratch = ScratchDir::new("replay");
    let path = scratch.join("notes.txt");
    std::fs::write(&path, b"hello, this is not a capture\n").unwrap();
    let err = Capture::replay(
        &CaptureConfig::new("x"),
        &ReplayInput::File(path.clone()),
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("byte offset 0"), "{err}");
    assert!(err.contains("holds 0x68656c6c"), "{err}");
    let empty = scratch.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let err = Capture::replay(&CaptureConfig::new("x"), &ReplayInput::File(empty), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("empty.pcap is not a pcap or pcapng file: it is empty"),
        "{err}"
    );
    let missing = scratch.join("missing.pcap");
    let err = Capture::replay(&CaptureConfig::new("x"), &ReplayInput::File(missing), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("opening") && err.contains("missing.pcap"),
        "{err}"
    );
}

#[test]
fn a_malformed_record_stops_the_replay_naming_its_offset_and_keeps_what_came_before() {
    let c = corpus::standard();
    let frames = stamped(&c);
    let mut bytes = capture_file::pcap(FileLink::Ethernet, false, &frames[..3]);
    let bad_at = bytes.len();
    // A record header claiming 1 GiB of captured bytes, then more records.
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&capture_file::pcap(FileLink::Ethernet, false, &frames)[24..]);
    let finished = replay_bytes(&bytes, false).unwrap();
    let err = finished.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains(&format!("byte offset {bad_at}")), "{err}");
    assert!(err.contains("in.cap: malformed"), "{err}");
    assert_eq!(finished.snapshot.workers[0].packets, 3);

    // A pcapng block whose trailing length disagrees with its leading one.
    let mut bytes = capture_file::pcapng(FileLink::Ethernet, &frames[..2]);
    let good = bytes.len();
    bytes.extend_from_slice(&capture_file::pcapng(FileLink::Ethernet, &frames[..1])[28..]);
    let idb_len = 32;
    let epb_at = good + idb_len;
    let epb_len = u32::from_le_bytes(bytes[epb_at + 4..epb_at + 8].try_into().unwrap()) as usize;
    bytes[epb_at + epb_len - 4] ^= 0x40;
    let finished = replay_bytes(&bytes, false).unwrap();
    let err = finished.error.map(|e| e.to_string()).unwrap_or_default();
    // The appended interface description is fine; the packet block after it is not.
    assert!(err.contains(&format!("byte offset {epb_at}")), "{err}");
    assert_eq!(finished.snapshot.workers[0].packets, 2);
}

#[test]
fn an_unsupported_link_type_is_named() {
    let mut bytes = capture_file::pcap(FileLink::Ethernet, false, &[]);
    bytes[20] = 101; // LINKTYPE_RAW
    let scratch = ScratchDir::new("replay");
    let path = scratch.join("raw.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let err = Capture::replay(&CaptureConfig::new("x"), &ReplayInput::File(path), None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("raw.pcap: link type 101"), "{err}");
}
