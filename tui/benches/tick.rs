//! One UI tick with a million tracked addresses: a new snapshot reaches the app (row counts,
//! selection), and a frame is drawn (filter, top-N window, sort of the visible rows, render).

#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! items; fixture setup may panic

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use traffic_counter::app::{Action, App};
use traffic_counter::fixture;

fn tick(c: &mut Criterion) {
    let snapshot = Arc::new(fixture::many_talkers(1_000_000));
    let mut group = c.benchmark_group("ui_tick");
    group.sample_size(20);
    for (name, filter) in [
        ("1M_talkers", None),
        ("1M_talkers_cidr_filter", Some("198.18.0.0/20")),
    ] {
        let mut app = App::new((160, 50));
        if let Some(text) = filter {
            app.update(Action::StartFilter);
            for ch in text.chars() {
                app.update(Action::Input(ch));
            }
            app.update(Action::ApplyFilter);
        }
        let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                app.update(Action::Snapshot(black_box(snapshot.clone())));
                terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);
