#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! items; fixture setup may panic
//! The whole per-frame cost, and the per-tick cost, of counting.
//!
//! `per_frame/*`: parse one frame and count it into a worker's tally as the worker does (queued
//! in batches whose lookups are prefetched), flows on, including every eviction that causes
//! and the tick's merge of the tally into the aggregate, amortised: every
//! `TICK_FRAMES` frames (one worker's share of 500 kpps for a 1 s tick) the tally is merged and
//! cleared, as the aggregator does. Tables have the default bounds (100k talkers, 100k flows) split
//! across 2 workers. The frames are a realistic mix (60% TCP, 35% UDP, 5% ICMP, 10% of them
//! 802.1Q tagged, 64–1500 bytes, IPv4 in 198.18.0.0/15 and IPv6 in 2001:db8::/32) drawn from a
//! pool of 1k, 50k or 1M distinct sources, each with its own flow to one of 64 servers.
//!
//! `per_tick/*`: what the aggregator does once a tick under a random-source flood: merge N
//! workers' full tallies of new keys into a full aggregate (evicting as it goes) and build the
//! snapshot rows, at the default bounds (100k talkers, 100k flows).
//!
//! Tallies are sized as with `hash` fanout (a share of the bound per worker); the cases named
//! `*_cpu_fanout` size them as with `cpu` fanout, which `--fanout auto` takes on veth and RSS
//! hosts (twice a share: the whole bound with two workers).

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use testlab::{Frame, L4};
use traffic_counter_capture::config::{DEFAULT_MAX_FLOWS, DEFAULT_MAX_TALKERS};
use traffic_counter_capture::counters::tally_capacity;
use traffic_counter_capture::parse::{Addr, Packet, parse_frame, proto};
use traffic_counter_capture::{Aggregate, Tally};

const FRAMES: usize = 1 << 20;
const BATCH: usize = 1 << 16;
const TICK_FRAMES: u64 = 250_000;

const SLOT: usize = 128;

struct Mix {
    headers: Vec<u8>,
    wire_len: Vec<u32>,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

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

fn server(i: u64, v6: bool) -> IpAddr {
    if v6 {
        format!("2001:db8:ffff::{}", i % 64 + 1).parse().unwrap()
    } else {
        IpAddr::from([198, 19, 255, (i % 64) as u8 + 1])
    }
}

fn build_mix(pool: u32) -> Mix {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut headers = vec![0u8; FRAMES * SLOT];
    let mut wire_len = Vec::with_capacity(FRAMES);
    for n in 0..FRAMES {
        let r = xorshift(&mut state);
        let i = (r % u64::from(pool)) as u32;
        let src = address(i);
        let dst = server(u64::from(i), src.is_ipv6());
        let sport = (i as u16) | 1024;
        let l4 = match i % 20 {
            0..12 => L4::Tcp(sport, 443),
            12..19 => L4::Udp(sport, 53),
            _ => L4::Echo,
        };
        let mut frame = Frame::ip(src, dst, l4, 0);
        if (r >> 56).is_multiple_of(10) {
            frame = frame.tagged(0x8100, 100);
        }
        let len = frame.bytes.len().min(SLOT);
        headers[n * SLOT..n * SLOT + len].copy_from_slice(&frame.bytes[..len]);
        wire_len.push(64 + (r >> 40) as u32 % 1437);
    }
    Mix { headers, wire_len }
}

fn per_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_frame");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, pool, together) in [
        ("1k_keys", 1_000, true),
        ("50k_keys", 50_000, true),
        ("1M_keys", 1 << 20, true),
        ("50k_keys_cpu_fanout", 50_000, false),
    ] {
        let capacity = tally_capacity(DEFAULT_MAX_FLOWS, 2, together);
        let mix = build_mix(pool);
        let mut offset = 0;
        let mut in_tick = 0u64;
        let mut tally = Tally::new(capacity, true);
        let mut aggregate = Aggregate::new(DEFAULT_MAX_TALKERS, Some(DEFAULT_MAX_FLOWS));
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let data = &mix.headers[offset * SLOT..(offset + 1) * SLOT];
                    let wire = mix.wire_len[offset];
                    if let Ok(packet) = parse_frame(black_box(data), wire, None) {
                        tally.push(&packet, u64::from(wire), offset as u64);
                    }
                    offset = (offset + 1) % FRAMES;
                    in_tick += 1;
                    if in_tick == TICK_FRAMES {
                        tally.flush();
                        aggregate.merge(&tally);
                        tally.clear();
                        aggregate.end_tick();
                        in_tick = 0;
                    }
                }
            });
        });
    }
    let mix = build_mix(1 << 20);
    group.bench_function("parse_only", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut ok = 0u32;
                for n in 0..BATCH {
                    let data = &mix.headers[n * SLOT..(n + 1) * SLOT];
                    ok += u32::from(parse_frame(black_box(data), mix.wire_len[n], None).is_ok());
                }
                ok
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// Fills each worker's tally to capacity with keys no earlier tick used.
fn fill(tallies: &mut [Tally], next_key: &mut u64) {
    for tally in tallies {
        tally.clear();
        while tally.conversations().len() < tally.conversations().capacity() {
            *next_key += 1;
            let k = *next_key;
            let packet = Packet {
                src: Addr::from_bits(0x2001_0db8_u128 << 96 | u128::from(k)),
                dst: Addr::v4([198, 19, 0, 1]),
                proto: proto::UDP,
                ports: Some(((k as u16) | 1024, 53)),
                vlan: None,
                tags: 0,
                segments: 1,
                bytes: 100,
            };
            tally.count(&packet, 100, k);
        }
    }
}

fn per_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_tick");
    group.sample_size(10);
    for (workers, together) in [(2, true), (8, true), (32, true), (2, false), (32, false)] {
        let capacity = tally_capacity(DEFAULT_MAX_FLOWS, workers, together);
        let mut tallies: Vec<Tally> = (0..workers).map(|_| Tally::new(capacity, true)).collect();
        let mut aggregate = Aggregate::new(DEFAULT_MAX_TALKERS, Some(DEFAULT_MAX_FLOWS));
        let mut next_key = 0;
        // Start from full tables, as after a few seconds of flood.
        for _ in 0..3 {
            fill(&mut tallies, &mut next_key);
            for t in &tallies {
                aggregate.merge(t);
            }
            aggregate.end_tick();
        }
        let fanout = if together { "" } else { "_cpu_fanout" };
        group.bench_function(format!("{workers}_workers_full_tables{fanout}"), |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    fill(&mut tallies, &mut next_key);
                    let started = Instant::now();
                    for t in &tallies {
                        aggregate.merge(t);
                    }
                    aggregate.end_tick();
                    black_box(aggregate.rows(Duration::from_secs(1)));
                    spent += started.elapsed();
                }
                spent
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_frame, per_tick);
criterion_main!(benches);
