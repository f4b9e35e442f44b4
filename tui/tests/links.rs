//! Privileged end-to-end tests of the real binary on a link without a link-layer header (a tun
//! device in a fresh namespace): `--filter auto` runs without a filter there and says why,
//! the counts are exact, and a filter asked for explicitly is refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testlab::links::{Tun, ip_in, sysctl_in};
use testlab::process::Running;
use testlab::{COUNT_DEADLINE, Frame, L4, Lab, ScratchDir, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");
const TUN: &str = "tct0";

/// A lab whose capture namespace holds an up tun device, alive while the returned value is.
fn tun_lab(tag: &str) -> (Lab, Tun) {
    let lab = Lab::new(tag);
    let tun = lab.in_capture_ns(|| Tun::create(TUN, None));
    sysctl_in(
        &lab.capture_ns,
        &format!("net.ipv6.conf.{TUN}.disable_ipv6=1"),
    );
    ip_in(&lab.capture_ns, &["link", "set", TUN, "up"]);
    (lab, tun)
}

fn headless(lab: &Lab, extra: &[&str]) -> Command {
    let mut cmd = lab.command_in_capture_ns(BIN);
    cmd.args([
        "--headless",
        "-i",
        TUN,
        "--workers",
        "2",
        "--interval",
        "0.2",
    ]);
    cmd.args(extra);
    cmd
}

fn read_json(path: &std::path::Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[test]
fn auto_runs_without_a_filter_on_a_tun_device_and_counts_exactly() {
    let (lab, mut tun) = tun_lab("tunbin");
    let scratch = ScratchDir::new("tunbin");
    let snapshot = scratch.join("snap.json");
    let mut cmd = headless(&lab, &["--flows"]);
    cmd.arg("--snapshot-file").arg(&snapshot);
    let running = Running::start(cmd, "no link-layer header");
    let ready = running.wait_for_line("capturing on", Duration::from_secs(10));
    assert!(ready.contains("filter none"), "{ready}");

    let udp = Frame::ip(
        "198.18.0.2".parse().unwrap(),
        "198.18.0.1".parse().unwrap(),
        L4::Udp(4000, 53),
        100,
    );
    let packet = &udp.bytes[14..];
    for _ in 0..10 {
        tun.inject(packet);
    }
    wait_for(
        "10 packets in the snapshot file",
        COUNT_DEADLINE,
        || read_json(&snapshot).map(|d| d["totals"]["packets"].clone()),
        |n| n.as_ref().and_then(Value::as_u64) >= Some(10),
    )
    .unwrap();
    running.signal(libc::SIGTERM);
    let (code, _, _) = running.finish();
    assert_eq!(code, Some(0));
    let doc = read_json(&snapshot).unwrap();
    assert_eq!(doc["link"]["type"], "ip");
    assert_eq!(doc["link"]["arphrd"], u64::from(libc::ARPHRD_NONE));
    assert_eq!(doc["filter"]["kind"], "none");
    assert_eq!(doc["totals"]["packets"], 10);
    assert_eq!(doc["totals"]["bytes"], 10 * packet.len() as u64);
    assert_eq!(doc["flows"][0]["a_port"], 4000);
    assert_eq!(doc["flows"][0]["b_port"], 53);
    drop(tun);
}

#[test]
fn a_filter_asked_for_on_a_tun_device_is_refused_with_the_reason() {
    let (lab, _tun) = tun_lab("tunfilt");
    for extra in [
        &["--filter", "classic"][..],
        &["--exclude", "198.18.0.0/16"][..],
    ] {
        // A bounded run: should capture start after all, the test fails instead of hanging.
        let out = headless(&lab, extra)
            .args(["--duration", "3"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("tct0 has no link-layer header")
                && stderr.contains("runs without a filter"),
            "{extra:?}: {stderr}"
        );
    }
}
