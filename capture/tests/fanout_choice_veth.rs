//! Privileged end-to-end tests of the fanout mode a capture chooses when none is named, on
//! real devices in a network namespace: `cpu` on veth (each frame is taken in on the CPU that
//! sent it), `hash` on a device without receive queues of its own or RPS (a bridge), the mode named when one is, and the
//! mode of the group's members when joining a group that exists; and under `cpu`, tallies that
//! hold every conversation the tables have room for, though each worker sees them all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use testlab::netns::{CAPTURE_IF, ip_in};
use testlab::{COUNT_DEADLINE, Frame, L4, Lab, wait_for_count};
use traffic_counter_capture::snapshot::FanoutInfo;
use traffic_counter_capture::{Capture, CaptureConfig, FanoutMode};

fn config(interface: &str) -> CaptureConfig {
    let mut c = CaptureConfig::new(interface);
    c.workers = 2;
    c
}

/// The fanout group as a capture with `config` joins it, in the lab's capture namespace.
fn fanout(lab: &Lab, config: &CaptureConfig) -> FanoutInfo {
    lab.in_capture_ns(|| Capture::open(config, None))
        .expect("the capture opens")
        .fanout()
}

#[test]
fn auto_takes_cpu_on_veth_and_hash_on_a_bridge() {
    let lab = Lab::new("choose");
    ip_in(&lab.capture_ns, &["link", "add", "tcbr0", "type", "bridge"]);
    ip_in(&lab.capture_ns, &["link", "set", "tcbr0", "up"]);

    let veth = fanout(&lab, &config(CAPTURE_IF));
    assert_eq!(veth.mode, FanoutMode::Cpu);
    assert_eq!(
        veth.chosen_because,
        Some("the device takes each frame in on the CPU that sent it")
    );

    let bridge = fanout(&lab, &config("tcbr0"));
    assert_eq!(bridge.mode, FanoutMode::Hash);
    assert!(
        bridge
            .chosen_because
            .is_some_and(|why| why.starts_with("one receive queue")),
        "{bridge:?}"
    );

    // One worker needs no steering, whatever the device.
    let mut one = config("tcbr0");
    one.workers = 1;
    assert_eq!(fanout(&lab, &one).mode, FanoutMode::Cpu);

    // A mode named is the mode used, with no reason given.
    let mut named = config(CAPTURE_IF);
    named.fanout.mode = Some(FanoutMode::Hash);
    let named = fanout(&lab, &named);
    assert_eq!((named.mode, named.chosen_because), (FanoutMode::Hash, None));
}

#[test]
fn joining_a_group_takes_the_mode_its_members_use() {
    let lab = Lab::new("joinmode");
    let mut first = config(CAPTURE_IF);
    first.fanout.mode = Some(FanoutMode::Lb);
    first.fanout.group = Some(4343);
    let mut second = config(CAPTURE_IF);
    second.fanout.group = Some(4343);
    second.fanout.join_existing = true;
    let (held, joined) = lab.in_capture_ns(|| {
        let held = Capture::open(&first, None).expect("the first capture opens");
        let joined = Capture::open(&second, None).expect("the second joins its group");
        (held.fanout(), joined.fanout())
    });
    assert_eq!(held.mode, FanoutMode::Lb);
    assert_eq!(
        (joined.mode, joined.group, joined.chosen_because),
        (FanoutMode::Lb, 4343, Some("the group's members use it"))
    );
}

/// Under `cpu` fanout each CPU's frames reach its own worker, so conversations sent from both
/// CPUs are in both workers' tallies. A tally sized at a share of the bound (5,000 here) would
/// evict, within the tick, conversations the table has room for (6,000 of 10,000); sized at the
/// bound it keeps every one in its row.
#[test]
fn conversations_seen_by_every_worker_stay_in_their_rows_under_cpu_fanout() {
    const FLOWS: u16 = 6_000;
    let lab = Lab::new("bothcpus");
    let mut cfg = config(CAPTURE_IF);
    cfg.flows = true;
    cfg.max_flows = 10_000;
    // Both sends end well inside the first tick, so each worker's tally sees all 6,000
    // conversations at once.
    cfg.tick = Duration::from_secs(5);
    let capture = lab
        .in_capture_ns(|| Capture::start(&cfg, None))
        .expect("capture starts");
    let server: IpAddr = "198.19.0.1".parse().unwrap();
    let frames: Vec<Frame> = (0..FLOWS)
        .map(|i| {
            let [hi, lo] = i.to_be_bytes();
            let client = IpAddr::from([198, 18, hi, lo]);
            Frame::ip(client, server, L4::Udp(10_000 + i, 53), 0)
        })
        .collect();
    lab.send_from_cpu(0, &frames);
    lab.send_from_cpu(1, &frames);
    let feed = capture.feed();
    wait_for_count(
        "both copies of every frame",
        COUNT_DEADLINE,
        2 * u64::from(FLOWS),
        || {
            feed.borrow()
                .snapshot
                .as_ref()
                .map_or(0, |s| s.totals.packets)
        },
    )
    .unwrap();
    let finished = capture.stop().expect("capture stops");
    assert!(finished.error.is_none(), "{:?}", finished.error);
    let snap = &finished.snapshot;
    assert_eq!(snap.fanout.mode, FanoutMode::Cpu);
    let per_worker: Vec<u64> = snap.workers.iter().map(|w| w.packets).collect();
    assert_eq!(
        per_worker,
        [u64::from(FLOWS); 2],
        "each CPU's frames on its own worker"
    );
    assert_eq!(snap.totals.packets, 2 * u64::from(FLOWS));
    assert_eq!(snap.evicted_flows.entries, 0, "{:?}", snap.evicted_flows);
    assert_eq!(snap.flows.len(), usize::from(FLOWS));
    assert!(
        snap.flows
            .iter()
            .all(|f| f.packets_a_to_b + f.packets_b_to_a == 2),
        "every flow holds both copies"
    );
}
