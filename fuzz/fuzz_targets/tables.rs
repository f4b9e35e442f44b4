//! Random sequences of counting, merging and ticking through small workers' tallies into a
//! small aggregate: every bounded table stays within its bound, what every table holds plus
//! what it evicted equals what went in, and the rate windows agree with a reference history.
//!
//! Input: three bytes of shape (table bounds, flows, workers), then four bytes per operation.
//! Addresses come from a pool of 24 and byte counts reach 2^43 per packet, so tables evict
//! constantly, histories pass every form (inline, 32-bit ring, 64-bit ring) and wrap their
//! 40-tick ring.
#![no_main]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use traffic_counter_capture::parse::{Addr, Packet};
use traffic_counter_capture::snapshot::WindowRates;
use traffic_counter_capture::{Aggregate, Tally};

/// The rate windows in ticks (`history::WINDOWS`, 2 s / 10 s / 40 s at a 1 s tick).
const WINDOWS: [u32; 3] = [2, 10, 40];
const TICK: Duration = Duration::from_secs(1);

/// What one address was merged with, per tick: (packets sent, bytes sent, packets received,
/// bytes received).
type PerTick = BTreeMap<u32, [u64; 4]>;

#[derive(Default)]
struct Reference {
    /// Packets and bytes merged per tick, all addresses.
    totals: BTreeMap<u32, [u64; 2]>,
    talkers: BTreeMap<IpAddr, PerTick>,
}

impl Reference {
    fn sum_talker(&self, ip: &IpAddr) -> [u64; 4] {
        let mut sum = [0; 4];
        for row in self.talkers.get(ip).into_iter().flat_map(BTreeMap::values) {
            for (s, v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        sum
    }
}

/// Per-second rates over each window ending with tick `now`, as the aggregate computes them.
fn rates(now: u32, per_tick: impl Iterator<Item = (u32, u64)> + Clone) -> WindowRates {
    WindowRates(std::array::from_fn(|w| {
        let sum: u64 = per_tick
            .clone()
            .filter(|&(t, _)| t <= now && now - t < WINDOWS[w])
            .map(|(_, v)| v)
            .sum();
        let seconds = f64::from(WINDOWS[w].min(now + 1)) * TICK.as_secs_f64();
        (sum as f64 / seconds) as f32
    }))
}

/// One worker: its tally, what went into it since it was last merged (packets, bytes), and
/// those packets, for the reference.
struct Worker {
    tally: Tally,
    counted: [u64; 2],
    queued: Vec<Packet>,
}

fn addr(i: u8) -> Addr {
    match i % 24 {
        n @ 0..16 => Addr::v4([198, 18, 0, n]),
        n => Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]),
    }
}

/// One tally's invariants: bounded, and its conversations plus what it evicted are all it
/// counted; the evicted conversations' senders are in the spill table or its evicted sums.
fn check_tally(tally: &Tally, capacity: usize, counted: [u64; 2]) {
    let table = tally.conversations();
    assert!(table.len() <= capacity, "tally over its bound");
    assert_eq!((tally.packets(), tally.bytes()), (counted[0], counted[1]));
    let held: [u64; 2] = table.iter().fold([0, 0], |acc, (_, d)| {
        [
            acc[0] + d.packets[0] + d.packets[1],
            acc[1] + d.bytes[0] + d.bytes[1],
        ]
    });
    let evicted = table.evicted();
    assert_eq!(
        [held[0] + evicted.packets, held[1] + evicted.bytes],
        counted,
        "tally table + evicted != counted"
    );
    let spilled = tally.spilled();
    let sent: u64 = spilled.iter().map(|(_, d)| d.packets_sent).sum();
    let received: u64 = spilled.iter().map(|(_, d)| d.packets_received).sum();
    let lost = spilled.evicted();
    assert_eq!(sent + lost.packets_sent, evicted.packets);
    assert_eq!(received + lost.packets_received, evicted.packets);
}

fn check_aggregate(aggregate: &Aggregate, bounds: (usize, Option<usize>), reference: &Reference) {
    assert!(aggregate.talker_count() <= bounds.0, "talkers over bound");
    assert!(
        aggregate.flow_count() <= bounds.1.unwrap_or(0),
        "flows over bound"
    );
    let now = aggregate.tick();
    let rows = aggregate.rows(TICK);
    let total = reference
        .totals
        .values()
        .fold([0, 0], |acc, v| [acc[0] + v[0], acc[1] + v[1]]);
    assert_eq!([rows.packets, rows.bytes], total);
    let sum = |f: fn(&traffic_counter_capture::snapshot::Talker) -> u64| -> u64 {
        rows.talkers.iter().map(f).sum()
    };
    let e = &rows.evicted_talkers;
    assert_eq!(sum(|t| t.packets_sent) + e.packets_sent, total[0]);
    assert_eq!(sum(|t| t.bytes_sent) + e.bytes_sent, total[1]);
    assert_eq!(sum(|t| t.packets_received) + e.packets_received, total[0]);
    assert_eq!(sum(|t| t.bytes_received) + e.bytes_received, total[1]);
    if bounds.1.is_some() {
        let f = &rows.evicted_flows;
        let packets: u64 = rows
            .flows
            .iter()
            .map(|r| r.packets_a_to_b + r.packets_b_to_a)
            .sum();
        let bytes: u64 = rows
            .flows
            .iter()
            .map(|r| r.bytes_a_to_b + r.bytes_b_to_a)
            .sum();
        assert_eq!([packets + f.packets, bytes + f.bytes], total);
    } else {
        assert!(rows.flows.is_empty());
    }
    let totals = reference.totals.iter().map(|(&t, v)| (t, v[0]));
    assert_eq!(rows.packets_per_sec, rates(now, totals));
    let totals = reference.totals.iter().map(|(&t, v)| (t, v[1]));
    assert_eq!(rows.bytes_per_sec, rates(now, totals));
    for t in &rows.talkers {
        let want = reference.sum_talker(&t.ip);
        let got = [
            t.packets_sent,
            t.bytes_sent,
            t.packets_received,
            t.bytes_received,
        ];
        let per_tick = &reference.talkers[&t.ip];
        let sent = rates(now, per_tick.iter().map(|(&k, v)| (k, v[1])));
        let received = rates(now, per_tick.iter().map(|(&k, v)| (k, v[3])));
        if got == want {
            // Held since its first packet: its history is the whole reference.
            assert_eq!(t.sent_bytes_per_sec, sent, "{}", t.ip);
            assert_eq!(t.received_bytes_per_sec, received, "{}", t.ip);
        } else {
            // Evicted and back, or not admitted at times: never more than the reference.
            assert!(got.iter().zip(want).all(|(g, w)| *g <= w), "{}", t.ip);
            for w in 0..3 {
                assert!(t.sent_bytes_per_sec.0[w] <= sent.0[w], "{}", t.ip);
                assert!(t.received_bytes_per_sec.0[w] <= received.0[w], "{}", t.ip);
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((shape, ops)) = input.split_first_chunk::<3>() else {
        return;
    };
    let max_talkers = 1 + usize::from(shape[0] % 8);
    let flows = shape[1] & 1 == 1;
    let max_flows = flows.then_some(1 + usize::from((shape[1] >> 1) % 8));
    let capacity = 1 + usize::from(shape[2] % 8);
    let workers = 1 + usize::from((shape[2] >> 4) % 3);
    let mut aggregate = Aggregate::new(max_talkers, max_flows);
    let mut tallies: Vec<Worker> = (0..workers)
        .map(|_| Worker {
            tally: Tally::new(capacity, flows),
            counted: [0, 0],
            queued: Vec::new(),
        })
        .collect();
    let mut reference = Reference::default();
    let mut ts_ns = 0u64;
    // At most 256 operations a run: deep enough to wrap the 40-tick history ring many times,
    // short enough that the per-merge table clears leave time for many runs.
    for op in ops.chunks_exact(4).take(256) {
        let (kind, a, b, c) = (op[0], op[1], op[2], op[3]);
        let worker = usize::from(a) % workers;
        match kind % 8 {
            0..=4 => {
                let proto = [6, 17, 1, 132][usize::from(kind >> 3) & 3];
                let bytes = (60 + u64::from(b) * u64::from(c)) << ((kind >> 6) * 9);
                let packet = Packet {
                    src: addr(b),
                    dst: addr(c),
                    proto,
                    ports: (proto != 1).then_some((u16::from(a >> 2), u16::from(b >> 3))),
                    vlan: None,
                    tags: 0,
                    // A GRO/GSO super-frame stands for up to four packets on the wire.
                    segments: 1 + u32::from(a >> 6),
                    bytes,
                };
                ts_ns += 1000;
                let Worker {
                    tally,
                    counted,
                    queued,
                } = &mut tallies[worker];
                if kind & 0x20 == 0 {
                    tally.count(&packet, bytes, ts_ns);
                } else {
                    tally.push(&packet, bytes, ts_ns);
                }
                counted[0] += u64::from(packet.segments);
                counted[1] += bytes;
                queued.push(packet);
            }
            5 | 6 => {
                let Worker {
                    tally,
                    counted,
                    queued,
                } = &mut tallies[worker];
                tally.flush();
                check_tally(tally, capacity, *counted);
                aggregate.merge(tally);
                let tick = aggregate.tick();
                let row = reference.totals.entry(tick).or_default();
                row[0] += counted[0];
                row[1] += counted[1];
                for p in queued.drain(..) {
                    let bytes = p.bytes;
                    let src = reference.talkers.entry(p.src.into()).or_default();
                    let s = src.entry(tick).or_default();
                    s[0] += u64::from(p.segments);
                    s[1] += bytes;
                    let dst = reference.talkers.entry(p.dst.into()).or_default();
                    let d = dst.entry(tick).or_default();
                    d[2] += u64::from(p.segments);
                    d[3] += bytes;
                }
                tally.clear();
                *counted = [0, 0];
                check_aggregate(&aggregate, (max_talkers, max_flows), &reference);
            }
            _ => {
                // Ticks advance by 1 to 8, so histories wrap their 40-tick ring.
                for _ in 0..=(a % 8) {
                    aggregate.end_tick();
                }
                check_aggregate(&aggregate, (max_talkers, max_flows), &reference);
            }
        }
    }
});
