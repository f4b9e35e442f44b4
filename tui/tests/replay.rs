//! Offline replay end to end: the binary reads pcap and pcapng files the test writes
//! (testlab's writer, Ethernet and Linux cooked link types, VLAN tags in-band), headless and in
//! the terminal UI, and the snapshot holds exactly what the files hold. Nothing here needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use testlab::ScratchDir;
use testlab::capture_file::{self, Link};
use testlab::corpus::{self, Corpus};
use testlab::tmux::{self, Tmux};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");
/// 2023-11-14T22:13:20Z in ns; corpus frames follow 100 ms apart.
const BASE_NS: u64 = 1_700_000_000_000_000_000;

fn stamped(c: &Corpus) -> Vec<(u64, &[u8])> {
    c.frames
        .iter()
        .enumerate()
        .map(|(i, f)| (BASE_NS + i as u64 * 100_000_000, f.bytes.as_slice()))
        .collect()
}

/// Runs the binary headless on `input` (a path, or `-` with `stdin`), writing every row to a
/// snapshot file; returns its output and the file's document, if one was written.
fn headless(
    scratch: &ScratchDir,
    input: &str,
    stdin: Option<&[u8]>,
    extra: &[&str],
) -> (Output, Option<Value>) {
    let snapshot = scratch.join("snapshot.json");
    let _ = std::fs::remove_file(&snapshot);
    let mut child = Command::new(BIN)
        .args(["--headless", "--flows", "--top", "all", "-r", input])
        .arg("--snapshot-file")
        .arg(&snapshot)
        .args(extra)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let doc = std::fs::read(&snapshot)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (output, doc)
}

/// Asserts the corpus's exact totals, parse errors, talkers and flows, plus `extra_truncated`
/// cut records; the frames it expects a filter to reject are not read.
fn assert_counts(doc: &Value, c: &Corpus, extra_truncated: u64) {
    assert_eq!(doc["totals"]["packets"], c.packets);
    assert_eq!(doc["totals"]["bytes"], c.bytes);
    let errors = &doc["parse_errors"];
    assert_eq!(errors["non_ip"], c.non_ip);
    assert_eq!(errors["truncated"], c.truncated + extra_truncated);
    assert_eq!(errors["bad_header"], c.bad_header);
    assert_eq!(
        doc["workers"][0]["packets"],
        c.frame_count() - c.rejected_total() + extra_truncated
    );
    let talkers: BTreeMap<IpAddr, [u64; 4]> = doc["talkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            let ip = t["ip"].as_str().unwrap().parse().unwrap();
            let counts = [
                n("packets_sent"),
                n("bytes_sent"),
                n("packets_received"),
                n("bytes_received"),
            ];
            (ip, counts)
        })
        .collect();
    let expected = c.talker_rows();
    assert_eq!(talkers, expected);
    let mut flows: Vec<String> = doc["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}:{} {}:{} {} {} {} {}",
                f["proto"].to_string().trim_matches('"'),
                f["a_ip"].as_str().unwrap(),
                f["a_port"],
                f["b_ip"].as_str().unwrap(),
                f["b_port"],
                f["packets_a_to_b"],
                f["bytes_a_to_b"],
                f["packets_b_to_a"],
                f["bytes_b_to_a"]
            )
        })
        .collect();
    let port = |p: Option<u16>| p.map_or_else(|| "null".to_owned(), |p| p.to_string());
    let mut expected: Vec<String> = c
        .flows
        .iter()
        .map(|f| {
            let proto = match f.proto {
                1 => "icmp".to_owned(),
                6 => "tcp".to_owned(),
                17 => "udp".to_owned(),
                58 => "icmpv6".to_owned(),
                n => n.to_string(),
            };
            format!(
                "{proto} {}:{} {}:{} {} {} {} {}",
                f.a.0,
                port(f.a.1),
                f.b.0,
                port(f.b.1),
                f.packets_a_to_b,
                f.bytes_a_to_b,
                f.packets_b_to_a,
                f.bytes_b_to_a
            )
        })
        .collect();
    flows.sort();
    expected.sort();
    assert_eq!(flows, expected);
}

#[test]
fn pcap_and_pcapng_files_give_exact_counts_headless_and_from_standard_input() {
    let c = corpus::standard();
    let frames = stamped(&c);
    let scratch = ScratchDir::new("replay");
    for (name, link, bytes) in [
        (
            "eth.pcap",
            Link::Ethernet,
            capture_file::pcap(Link::Ethernet, false, &frames),
        ),
        (
            "sll.pcap",
            Link::Sll,
            capture_file::pcap(Link::Sll, true, &frames),
        ),
        (
            "eth.pcapng",
            Link::Ethernet,
            capture_file::pcapng(Link::Ethernet, &frames),
        ),
        (
            "sll2.pcapng",
            Link::Sll2,
            capture_file::pcapng(Link::Sll2, &frames),
        ),
    ] {
        let path = scratch.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let path = path.to_str().unwrap();
        let format = if name.ends_with("pcapng") {
            "pcapng"
        } else {
            "pcap"
        };
        let (out, doc) = headless(&scratch, path, None, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name} ({link:?}): {stderr}");
        assert!(stderr.contains(&format!("replaying {path}")), "{stderr}");
        let doc = doc.expect("the final snapshot is written");
        assert_eq!(doc["interface"], path);
        assert_eq!(doc["source"], format);
        assert_counts(&doc, &c, 0);
        // Capture time: the first packet starts the clock, the last is 5.0 s later.
        assert_eq!(doc["started_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(doc["taken_at"], "2023-11-14T22:13:25.000Z");
        assert_eq!(doc["duration_secs"], 5.0);
        assert_eq!(doc["tick"], 5);

        let (out, doc) = headless(&scratch, "-", Some(&bytes), &[]);
        assert_eq!(out.status.code(), Some(0), "{name} on stdin");
        let doc = doc.unwrap();
        assert_eq!(doc["interface"], "-");
        assert_counts(&doc, &c, 0);
    }
}

#[test]
fn a_truncated_file_counts_its_cut_record_and_exits_cleanly() {
    let c = corpus::standard();
    let frames = stamped(&c);
    let scratch = ScratchDir::new("replay");
    let mut bytes = capture_file::pcapng(Link::Ethernet, &frames);
    bytes.truncate(bytes.len() - 10);
    let path = scratch.join("cut.pcapng");
    std::fs::write(&path, &bytes).unwrap();
    let (out, doc) = headless(&scratch, path.to_str().unwrap(), None, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The last frame is a bad-header IPv4 frame; its record is the one cut.
    let mut expected = c.clone();
    expected.bad_header -= 1;
    expected.frames.pop();
    assert_counts(&doc.unwrap(), &expected, 1);
}

#[test]
fn a_file_that_is_not_a_capture_or_is_malformed_fails_naming_file_and_offset() {
    let scratch = ScratchDir::new("replay");
    let path = scratch.join("notes.txt");
    std::fs::write(&path, "not a capture at all\n").unwrap();
    let (out, doc) = headless(&scratch, path.to_str().unwrap(), None, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is not a pcap or pcapng file: byte offset 0",
            path.display()
        )),
        "{stderr}"
    );
    assert!(doc.is_none());

    // Three good records, then one claiming 1 GiB: what came before is written, and the
    // error names the bad record's offset.
    let c = corpus::standard();
    let frames = stamped(&c);
    let mut bytes = capture_file::pcap(Link::Ethernet, false, &frames[..3]);
    let bad_at = bytes.len();
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&(1u32 << 30).to_le_bytes());
    bytes.extend_from_slice(&[0; 64]);
    let path = scratch.join("bad.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let (out, doc) = headless(&scratch, path.to_str().unwrap(), None, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: malformed a record of 1073741840 bytes (more than the 16 MiB a record may \
             have) at byte offset {bad_at}",
            path.display()
        )),
        "{stderr}"
    );
    assert_eq!(doc.unwrap()["workers"][0]["packets"], 3);
}

#[test]
fn options_that_only_apply_live_are_refused_naming_the_flag() {
    for (flag, value) in [
        ("--interface", Some("eth0")),
        ("--workers", Some("2")),
        ("--cpus", Some("0")),
        ("--fanout", Some("lb")),
        ("--fanout-group", Some("7")),
        ("--fanout-rollover", None),
        ("--block-size", Some("1M")),
        ("--block-count", Some("8")),
        ("--frame-size", Some("2048")),
        ("--block-timeout", Some("10")),
        ("--snaplen", Some("256")),
        ("--filter", Some("ebpf")),
        ("--metrics", Some("127.0.0.1:9848")),
    ] {
        let out = Command::new(BIN)
            .args(["-r", "x.pcap", flag])
            .args(value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(
            stderr.contains("'--read <FILE>' cannot be used with") && stderr.contains(flag),
            "{flag}: {stderr}"
        );
    }
}

#[test]
fn vlan_and_prefix_rules_give_the_live_filters_verdicts_and_count_rejects_per_reason() {
    let c = corpus::filtered();
    let scratch = ScratchDir::new("replay");
    let path = scratch.join("filtered.pcapng");
    std::fs::write(&path, capture_file::pcapng(Link::Sll, &stamped(&c))).unwrap();
    let (out, doc) = headless(
        &scratch,
        path.to_str().unwrap(),
        None,
        &[
            "--vlan",
            corpus::FILTER_VLANS,
            "--exclude",
            corpus::FILTER_EXCLUDE,
            "--allow",
            corpus::FILTER_ALLOW,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("filter userspace"), "{stderr}");
    let doc = doc.unwrap();
    assert_eq!(doc["filter"]["kind"], "userspace");
    let rejects = &doc["filter"]["rejects"];
    for reason in ["vlan", "non_ip", "excluded", "not_allowed"] {
        assert_eq!(rejects[reason], c.rejected(reason), "{reason}");
    }
    // Rejected frames never reach counting, as with a socket filter.
    assert_counts(&doc, &c, 0);
}

#[test]
fn the_ui_replays_a_file_says_it_finished_and_keeps_the_tables() {
    let c = corpus::standard();
    let scratch = ScratchDir::new("replay-ui");
    let path = scratch.join("lab.pcapng");
    std::fs::write(&path, capture_file::pcapng(Link::Sll2, &stamped(&c))).unwrap();
    let status = scratch.join("status");
    let command = format!(
        "{BIN} -r {} --flows; {}",
        path.display(),
        tmux::after_exit(&status)
    );
    let term = Tmux::start(&command, (120, 30));
    let screen = term.wait_for("replay finished", |s| s.contains("replay finished"));
    assert!(
        screen.contains(&format!(
            "{}  replay of pcapng  capture time 5s",
            path.display()
        )),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("Talkers 1/{}", c.talkers.len())),
        "{screen}"
    );
    assert!(screen.contains("198.18.0.2 "), "{screen}");
    assert!(screen.contains("2001:db8::2 "), "{screen}");
    // The tables stay: a second look a while later shows the same rows.
    std::thread::sleep(Duration::from_millis(1500));
    let later = term.screen();
    assert!(later.contains("replay finished") && later.contains("198.18.0.2 "));
    term.keys(&["2"]);
    term.wait_for("the flows view", |s| {
        s.contains(&format!("Flows 1/{}", c.flows.len()))
    });
    term.keys(&["q"]);
    assert_eq!(tmux::exit_status(&status), "0");
    term.assert_restored("q after a replay");
}
