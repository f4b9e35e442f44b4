//! Privileged end-to-end tests of the fanout mode a capture chooses when none is named, on
//! real devices in a network namespace: `cpu` on veth (each frame is taken in on the CPU that
//! sent it), `hash` on a device without receive queues of its own or RPS (a bridge), the mode named when one is, and the
//! mode of the group's members when joining a group that exists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testlab::Lab;
use testlab::netns::{CAPTURE_IF, ip_in};
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
