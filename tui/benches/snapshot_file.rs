//! Writing a headless snapshot file of 100,000 talkers and 100,000 flows: every row
//! (`--top all`) and the default top 1,000 of each, including ranking and the atomic rename.

#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! items; fixture setup may panic

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use traffic_counter::fixture;
use traffic_counter::names::NameMap;
use traffic_counter::snapshot_file::{FileAccess, write_snapshot};

fn write(c: &mut Criterion) {
    let snapshot = fixture::many_rows(100_000, 100_000);
    let dir = testlab::ScratchDir::new("bench");
    let path = dir.join("snapshot.json");
    let mut group = c.benchmark_group("snapshot_file");
    group.sample_size(10);
    group.throughput(Throughput::Elements(200_000));
    group.bench_function("all_200k_rows", |b| {
        b.iter(|| {
            write_snapshot(
                &path,
                &snapshot,
                None,
                &NameMap::default(),
                FileAccess::default(),
            )
            .unwrap();
        });
    });
    group.bench_function("top_1000_of_200k_rows", |b| {
        b.iter(|| {
            write_snapshot(
                &path,
                &snapshot,
                Some(1000),
                &NameMap::default(),
                FileAccess::default(),
            )
            .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, write);
criterion_main!(benches);
