#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! items; fixture setup may panic
//! The per-frame hot path: parse one frame and count it into a worker's tally, flows on.
//!
//! The frames are a realistic mix drawn from a pool of 1M distinct source addresses (131,072
//! IPv4 in 198.18.0.0/15, the rest IPv6 in 2001:db8::/32) talking to 64 servers: 60% TCP,
//! 35% UDP, 5% ICMP, 10% of them 802.1Q tagged, 64–1500 bytes on the wire. When a tally fills
//! up it is swapped for a spare and cleared, as the aggregator would, and that cost is
//! included. Criterion reports the time per frame.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use testlab::{Frame, L4};
use traffic_counter_capture::counters::{TALLY_FLOWS, TALLY_TALKERS, Tally};
use traffic_counter_capture::parse::parse_frame;

const POOL: u32 = 1 << 20;
const FRAMES: usize = 1 << 20;
const BATCH: usize = 1 << 16;
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

fn build_mix() -> Mix {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut headers = vec![0u8; FRAMES * SLOT];
    let mut wire_len = Vec::with_capacity(FRAMES);
    for n in 0..FRAMES {
        let r = xorshift(&mut state);
        let src = address((r % u64::from(POOL)) as u32);
        let dst = server(r >> 20, src.is_ipv6());
        let sport = (r >> 32) as u16 | 1024;
        let l4 = match (r >> 48) % 100 {
            0..60 => L4::Tcp(sport, 443),
            60..95 => L4::Udp(sport, 53),
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

fn hot_path(c: &mut Criterion) {
    let mix = build_mix();
    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut offset = 0;
    let mut tally = Tally::with_capacity(TALLY_TALKERS, Some(TALLY_FLOWS));
    let mut spare = Tally::with_capacity(TALLY_TALKERS, Some(TALLY_FLOWS));
    group.bench_function("parse_and_count_flows_1M_addresses", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let data = &mix.headers[offset * SLOT..(offset + 1) * SLOT];
                let wire = mix.wire_len[offset];
                if let Ok(packet) = parse_frame(black_box(data), wire, None) {
                    if !tally.has_room() {
                        std::mem::swap(&mut tally, &mut spare);
                        spare.talkers.clear();
                        spare.flows.clear();
                        spare.packets = 0;
                        spare.bytes = 0;
                    }
                    tally.count(&packet, u64::from(wire), offset as u64);
                }
                offset = (offset + 1) % FRAMES;
            }
        });
    });
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

criterion_group!(benches, hot_path);
criterion_main!(benches);
