#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! items; fixture setup may panic

//! What named groups add per packet: `GroupCounts::count` for a source and a destination,
//! with no groups, two, and the maximum of 64 (three prefixes each), over a mix of IPv4 and
//! IPv6 addresses.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use traffic_counter_capture::groups::{Group, GroupCounts, GroupSet};
use traffic_counter_capture::parse::Addr;

const ADDRESSES: usize = 1 << 16;
const BATCH: usize = 1024;

fn addresses() -> Vec<Addr> {
    (0..ADDRESSES as u32)
        .map(|i| {
            let mixed = i.wrapping_mul(2_654_435_761);
            if mixed % 4 == 0 {
                let mut v6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
                v6[4..8].copy_from_slice(&mixed.to_be_bytes());
                Addr::v6(v6)
            } else {
                let [_, byte1, byte2, _] = mixed.to_le_bytes();
                Addr::v4([198, 18 + (mixed & 1) as u8, byte1, byte2])
            }
        })
        .collect()
}

fn groups(c: &mut Criterion) {
    let addrs = addresses();
    let mut bench = c.benchmark_group("groups");
    bench.throughput(Throughput::Elements(BATCH as u64));
    let many: Vec<String> = (0..64)
        .map(|i| format!("g{i}=198.18.{i}.0/24,198.19.{i}.0/25,2001:db8:{i:x}::/48"))
        .collect();
    let configs: [(&str, Vec<String>); 3] = [
        ("none", Vec::new()),
        (
            "two",
            vec!["a=198.18.0.0/16".into(), "b=2001:db8::/32".into()],
        ),
        ("sixty_four_x3", many),
    ];
    for (name, specs) in configs {
        let list: Vec<Group> = specs.iter().map(|s| s.parse().unwrap()).collect();
        let mut counts = GroupCounts::new(Arc::new(GroupSet::new(&list).unwrap()));
        let mut offset = 0;
        bench.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let src = addrs[offset % ADDRESSES];
                    let dst = addrs[(offset * 7 + 3) % ADDRESSES];
                    counts.count(black_box(src), black_box(dst), 1, 100);
                    offset += 1;
                }
            });
        });
    }
    bench.finish();
}

criterion_group!(benches, groups);
criterion_main!(benches);
