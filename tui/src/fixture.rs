//! Deterministic snapshots for render tests and the UI benchmark: fixed times, fixed counters,
//! addresses only from 198.18.0.0/15 and 2001:db8::/32.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use traffic_counter_capture::config::{FanoutMode, RingGeometry};
use traffic_counter_capture::iface::LinkInfo;
use traffic_counter_capture::snapshot::{
    EvictedFlows, EvictedTalkers, FanoutInfo, FilterKind, FilterStatus, Flow, Rejects, Snapshot,
    Talker, Totals, WindowRates,
};
use traffic_counter_capture::stats::{ParseErrors, WorkerStats};

/// 2027-01-15T08:00:00Z: a fixed "now".
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A talker sending `sent` bytes/s and receiving `received` bytes/s for the last 40 s.
pub fn talker(ip: IpAddr, sent: f32, received: f32, idle_secs: u64) -> Talker {
    Talker {
        ip,
        packets_sent: (sent * 40.0 / 500.0) as u64,
        bytes_sent: (sent * 40.0) as u64,
        packets_received: (received * 40.0 / 500.0) as u64,
        bytes_received: (received * 40.0) as u64,
        first_seen: (now() - Duration::from_secs(300)).into(),
        last_seen: (now() - Duration::from_secs(idle_secs)).into(),
        sent_bytes_per_sec: WindowRates([sent, sent * 0.9, sent * 0.8]),
        received_bytes_per_sec: WindowRates([received, received * 0.9, received * 0.8]),
    }
}

/// A flow of `proto` from `a` to `b`.
pub fn flow(
    proto: u8,
    a: (IpAddr, Option<u16>),
    b: (IpAddr, Option<u16>),
    ab: f32,
    ba: f32,
) -> Flow {
    Flow {
        proto,
        a_ip: a.0,
        a_port: a.1,
        b_ip: b.0,
        b_port: b.1,
        packets_a_to_b: (ab * 40.0 / 500.0) as u64,
        bytes_a_to_b: (ab * 40.0) as u64,
        packets_b_to_a: (ba * 40.0 / 500.0) as u64,
        bytes_b_to_a: (ba * 40.0) as u64,
        first_seen: (now() - Duration::from_secs(120)).into(),
        last_seen: (now() - Duration::from_secs(1)).into(),
        a_to_b_bytes_per_sec: WindowRates([ab, ab * 0.9, ab * 0.8]),
        b_to_a_bytes_per_sec: WindowRates([ba, ba * 0.9, ba * 0.8]),
    }
}

/// A snapshot with the given rows, two workers and an eBPF filter.
///
/// As in a real capture, every packet counted is one talker's send and another's receive:
/// whichever side the rows are short of went to talkers since evicted (three of them).
pub fn snapshot(talkers: Vec<Talker>, flows: Vec<Flow>) -> Snapshot {
    let sum = |f: fn(&Talker) -> u64| talkers.iter().map(f).sum::<u64>();
    let (sent, received) = (sum(|t| t.bytes_sent), sum(|t| t.bytes_received));
    let (packets_sent, packets_received) = (sum(|t| t.packets_sent), sum(|t| t.packets_received));
    let (bytes, packets) = (sent.max(received), packets_sent.max(packets_received));
    let evicted_talkers = EvictedTalkers {
        entries: if talkers.is_empty() { 0 } else { 3 },
        packets_sent: packets - packets_sent,
        bytes_sent: bytes - sent,
        packets_received: packets - packets_received,
        bytes_received: bytes - received,
    };
    let worker = |id| WorkerStats {
        id,
        cpu: id,
        packets: packets / 2 + 3,
        bytes: bytes / 2 + 300,
        super_frames: 0,
        corrupt_blocks: 0,
        unreadable_frames: 0,
        link_down: 0,
        ring_drops: 0,
        ring_freezes: 0,
        packets_per_sec: packets as f64 / 80.0,
        parse_errors: ParseErrors {
            non_ip: 0,
            truncated: id as u64,
            bad_header: 0,
        },
    };
    Snapshot {
        interface: "eth0".into(),
        source: traffic_counter_capture::snapshot::Source::Live,
        taken_at: now(),
        started_at: now() - Duration::from_secs(3723),
        duration: Duration::from_secs(3723),
        tick: 3723,
        totals: Totals {
            packets,
            bytes,
            packets_per_sec: WindowRates([packets as f32 / 40.0; 3]),
            bytes_per_sec: WindowRates([bytes as f32 / 40.0; 3]),
        },
        workers: vec![worker(0), worker(1)],
        parse_errors: ParseErrors {
            non_ip: 0,
            truncated: 1,
            bad_header: 0,
        },
        filter: FilterStatus {
            kind: FilterKind::Ebpf,
            rejects: Some(Rejects {
                vlan: 12,
                non_ip: 340,
                excluded: 5,
                not_allowed: 0,
            }),
        },
        fanout: FanoutInfo {
            mode: FanoutMode::Hash,
            group: 7,
            rollover: false,
            chosen_because: None,
        },
        link: LinkInfo::default(),
        ring: RingGeometry {
            block_size: 1 << 20,
            block_count: 60,
            frame_size: 2048,
            block_timeout_ms: 10,
            snap_len: 256,
        },
        max_talkers: 100_000,
        max_flows: 100_000,
        flows_enabled: !flows.is_empty(),
        talkers,
        evicted_talkers,
        flows,
        evicted_flows: EvictedFlows::default(),
        groups: Vec::new(),
    }
}

/// The small mixed snapshot the render tests draw: IPv4, short and long IPv6, idle and busy.
pub fn small() -> Snapshot {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let talkers = vec![
        talker(ip("198.18.0.1"), 1_250_000.0, 40_000.0, 0),
        talker(ip("198.18.0.2"), 40_000.0, 1_250_000.0, 0),
        talker(
            ip("2001:db8:1234:5678:9abc:def0:1234:5678"),
            310_000.0,
            2_000.0,
            2,
        ),
        talker(ip("2001:db8::53"), 900.0, 850.0, 17),
        talker(ip("198.19.7.200"), 0.0, 120.0, 75),
    ];
    let flows = vec![
        flow(
            6,
            (ip("198.18.0.2"), Some(51234)),
            (ip("198.18.0.1"), Some(443)),
            40_000.0,
            1_250_000.0,
        ),
        flow(
            17,
            (ip("2001:db8:1234:5678:9abc:def0:1234:5678"), Some(4000)),
            (ip("2001:db8::53"), Some(53)),
            850.0,
            900.0,
        ),
        flow(
            1,
            (ip("198.19.7.200"), None),
            (ip("198.18.0.1"), None),
            120.0,
            120.0,
        ),
        flow(
            132,
            (ip("198.18.0.1"), Some(36412)),
            (ip("198.18.0.2"), Some(36412)),
            9_000.0,
            8_000.0,
        ),
    ];
    snapshot(talkers, flows)
}

/// The `i`-th test address: IPv4 from 198.18.0.0/15, then IPv6 from 2001:db8::/32.
fn address(i: u32) -> IpAddr {
    if i < 1 << 17 {
        IpAddr::from([198, 18 + (i >> 16) as u8, (i >> 8) as u8, i as u8])
    } else {
        let mut o = [0u8; 16];
        o[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        o[12..].copy_from_slice(&i.to_be_bytes());
        IpAddr::from(o)
    }
}

/// `n` talkers with varied rates.
pub fn many_talkers(n: u32) -> Snapshot {
    many_rows(n, 0)
}

/// `talkers` talkers and `flows` flows (each to one of 64 servers) with varied rates.
pub fn many_rows(talkers: u32, flows: u32) -> Snapshot {
    let rate = |i: u32| (i.wrapping_mul(2_654_435_761) % 1_000_000) as f32;
    let talker_rows = (0..talkers)
        .map(|i| talker(address(i), rate(i), rate(i) / 3.0, u64::from(i % 90)))
        .collect();
    let flow_rows = (0..flows)
        .map(|i| {
            let server = address((1 << 17) - 1 - i % 64);
            let proto = if i % 3 == 0 { 17 } else { 6 };
            let client = (address(i), Some((i as u16) | 1024));
            flow(proto, client, (server, Some(443)), rate(i), rate(i) / 5.0)
        })
        .collect();
    snapshot(talker_rows, flow_rows)
}

/// `seconds + 1` snapshots of [`small`], one a second, ending at its time: totals and worker
/// counters grow at a rate that climbs, dips and climbs again, and worker 1 drops frames for
/// a while, so every chart has a shape to draw.
pub fn timeline(seconds: u32) -> Vec<Snapshot> {
    let end = small();
    // A rate between 0.5 and 2.5 MB/s: up for half a minute, down for half, and again.
    let rate = |i: u32| {
        let step = u64::from(i % 60);
        500_000 + 2_000_000 * if step < 30 { step } else { 60 - step } / 30
    };
    // Counters run backwards from the last snapshot, which is `small` itself.
    let mut bytes = end.totals.bytes;
    let mut packets = end.totals.packets;
    // Worker 1 drops 40 frames a second, 20 to 30 s into each minute.
    let drops = |i: u32| 40 * (1..=i).filter(|j| (20..30).contains(&(j % 60))).count() as u64;
    let mut out: Vec<Snapshot> = (0..=seconds)
        .rev()
        .map(|i| {
            let back = u64::from(seconds - i);
            let mut s = end.clone();
            s.duration -= Duration::from_secs(back);
            s.taken_at -= Duration::from_secs(back);
            s.totals.bytes = bytes;
            s.totals.packets = packets;
            for (n, w) in s.workers.iter_mut().enumerate() {
                w.packets = packets / 2 + n as u64 * (packets / 8);
                w.ring_drops = if n == 1 { drops(i) } else { 0 };
            }
            bytes = bytes.saturating_sub(rate(i));
            packets = packets.saturating_sub(rate(i) / 1000);
            s
        })
        .collect();
    out.reverse();
    out
}
