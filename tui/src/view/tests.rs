//! Render tests: fixture snapshots with fixed time, drawn into ratatui's `TestBackend`, and
//! compared with insta snapshots of the screen text.

use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use traffic_counter_capture::snapshot::FilterKind;

use crate::app::{Action, App, View};
use crate::fixture;

fn app(w: u16, h: u16) -> App {
    let mut app = App::new((w, h));
    app.update(Action::Snapshot(Arc::new(fixture::small())));
    app
}

fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
    text(terminal.backend().buffer())
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn talkers_at_80x24() {
    insta::assert_snapshot!(screen(&app(80, 24)));
}

#[test]
fn talkers_on_a_wide_terminal() {
    insta::assert_snapshot!(screen(&app(180, 16)));
}

#[test]
fn flows_view() {
    let mut a = app(120, 16);
    a.update(Action::ShowView(View::Flows));
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn flows_at_80x24() {
    let mut a = app(80, 24);
    a.update(Action::ShowView(View::Flows));
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn health_view() {
    let mut a = app(100, 20);
    a.update(Action::ShowView(View::Health));
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn health_shows_each_named_group_exactly() {
    let mut s = fixture::small();
    s.groups = vec![traffic_counter_capture::groups::GroupTotals {
        name: "storage".into(),
        packets_sent: 1200,
        bytes_sent: 1_500_000,
        packets_received: 800,
        bytes_received: 64_000,
    }];
    let mut a = App::new((100, 22));
    a.update(Action::Snapshot(Arc::new(s)));
    a.update(Action::ShowView(View::Health));
    let text = screen(&a);
    assert!(text.contains("Group      storage: sent"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn health_under_classic_says_rejects_are_unknown() {
    let mut s = fixture::small();
    s.filter.kind = FilterKind::Classic;
    s.filter.rejects = None;
    let mut a = App::new((100, 20));
    a.update(Action::Snapshot(Arc::new(s)));
    a.update(Action::ShowView(View::Health));
    let text = screen(&a);
    assert!(text.contains("rejected: unknown"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn help_overlay() {
    let mut a = app(80, 24);
    a.update(Action::ToggleHelp);
    insta::assert_snapshot!(screen(&a));
}

#[test]
fn paused_header() {
    let mut a = app(80, 12);
    a.update(Action::TogglePause);
    let text = screen(&a);
    assert!(
        text.lines().next().unwrap_or_default().contains("PAUSED"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn filter_prompt_and_filtered_rows() {
    let mut a = app(80, 12);
    a.update(Action::StartFilter);
    for c in "2001:db8".chars() {
        a.update(Action::Input(c));
    }
    insta::assert_snapshot!("prompt", screen(&a));
    a.update(Action::ApplyFilter);
    insta::assert_snapshot!("filtered", screen(&a));
}

#[test]
fn drop_warning_and_bytes_units() {
    let mut a = app(100, 12);
    let mut s = fixture::small();
    s.workers[1].ring_drops = 17;
    s.workers[1].ring_freezes = 2;
    if let Some(r) = &mut s.filter.rejects {
        r.non_ip += 10;
    }
    a.update(Action::Snapshot(Arc::new(s)));
    a.update(Action::ToggleUnits);
    let text = screen(&a);
    assert!(text.contains("WARNING ring drops +17 freezes +2"), "{text}");
    assert!(text.contains("filter rejects +10"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn sorting_marks_the_column_and_reverses() {
    let mut a = app(100, 12);
    a.update(Action::Sort(-8));
    a.update(Action::Reverse);
    let text = screen(&a);
    assert!(text.contains("Address▲"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn no_snapshot_yet() {
    let a = App::new((80, 6));
    insta::assert_snapshot!(screen(&a));
}

/// An app that has received a timeline of snapshots a second apart.
fn app_with_history(w: u16, h: u16, seconds: u32) -> App {
    let mut app = App::new((w, h));
    for s in fixture::timeline(seconds) {
        app.update(Action::Snapshot(Arc::new(s)));
    }
    app
}

#[test]
fn talkers_with_the_totals_chart() {
    let a = app_with_history(120, 30, 150);
    let text = screen(&a);
    assert!(text.contains("Total bits/s now 20.0 Mbit/s"), "{text}");
    assert!(text.contains("Packets/s now 2.5k/s"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn flows_with_the_totals_chart_in_bytes_at_80_columns() {
    let mut a = app_with_history(80, 24, 45);
    a.update(Action::ShowView(View::Flows));
    a.update(Action::ToggleUnits);
    let text = screen(&a);
    assert!(text.contains("Total bytes/s now"), "{text}");
    assert!(!text.contains("Packets/s"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn health_charts_each_workers_packets_and_drops() {
    let mut a = app_with_history(100, 24, 90);
    a.update(Action::ShowView(View::Health));
    let text = screen(&a);
    assert!(text.contains("peak     40/s"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_paused_chart_stops_at_the_shown_snapshot() {
    let timeline = fixture::timeline(30);
    let mut a = App::new((100, 30));
    for s in &timeline[..20] {
        a.update(Action::Snapshot(Arc::new(s.clone())));
    }
    a.update(Action::TogglePause);
    let frozen = screen(&a);
    for s in &timeline[20..] {
        a.update(Action::Snapshot(Arc::new(s.clone())));
    }
    assert_eq!(screen(&a), frozen);
    a.update(Action::TogglePause);
    assert_ne!(screen(&a), frozen);
}

#[test]
fn talker_detail_with_its_flows_and_charts() {
    let timeline = fixture::timeline(20);
    let mut a = App::new((120, 36));
    for s in &timeline[..10] {
        a.update(Action::Snapshot(Arc::new(s.clone())));
    }
    a.update(Action::OpenDetail);
    // Ten more seconds in which the talker sends 100 kB/s more each second.
    for (i, s) in timeline[10..].iter().enumerate() {
        let mut s = s.clone();
        s.talkers[0].bytes_sent += 100_000 * (i as u64 + 1);
        a.update(Action::Snapshot(Arc::new(s)));
    }
    let text = screen(&a);
    assert!(text.contains("Talker 198.18.0.1  (Esc back)"), "{text}");
    assert!(text.contains("Its flows: 3"), "{text}");
    // The fixture's counters stand still but for the added 100 kB a second: 800 kbit/s.
    assert!(text.contains("Sent bits/s now 800.0 kbit/s"), "{text}");
    insta::assert_snapshot!(text);
    a.update(Action::Escape);
    assert!(screen(&a).contains("Talkers 1/5"));
}

#[test]
fn flow_detail_shows_both_endpoints() {
    let mut a = app(110, 30);
    a.update(Action::ShowView(View::Flows));
    a.update(Action::Move(1));
    a.update(Action::OpenDetail);
    let text = screen(&a);
    assert!(
        text.contains("Flow sctp 198.18.0.1:36412 => 198.18.0.2:36412"),
        "{text}"
    );
    // Seeded from the 2, 10 and 40 s windows.
    assert!(text.contains("A>B bits/s now 72.0 kbit/s"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn prefix_roll_up_with_its_evicted_remainder() {
    let mut a = app(100, 16);
    a.update(Action::CycleRollup);
    let text = screen(&a);
    assert!(text.contains("Prefixes /24 /64 1/4"), "{text}");
    assert!(text.contains("198.18.0.0/24"), "{text}");
    assert!(text.contains("other (3 entries evicted)"), "{text}");
    assert!(text.contains("rows + other = totals"), "{text}");
    insta::assert_snapshot!(text);
}

fn grouped(config: &[&str]) -> App {
    use traffic_counter_capture::groups::GroupTotals;
    let mut a = App::new((100, 16));
    a.rolled.groups = config.iter().map(|g| g.parse().unwrap()).collect();
    // Two snapshots a second apart, so the groups have rates.
    for (i, mut s) in fixture::timeline(1).into_iter().enumerate() {
        let n = i as u64 + 1;
        s.groups = vec![
            GroupTotals {
                name: "clients".into(),
                packets_sent: 800 * n,
                bytes_sent: 1_000_000 * n,
                packets_received: 900 * n,
                bytes_received: 30_000_000 * n,
            },
            GroupTotals {
                name: "storage".into(),
                packets_sent: 100 * n,
                bytes_sent: 20_000_000 * n,
                packets_received: 50 * n,
                bytes_received: 64_000 * n,
            },
        ];
        a.update(Action::Snapshot(Arc::new(s)));
    }
    a.update(Action::CycleRollup);
    a.update(Action::CycleRollup);
    a
}

#[test]
fn group_roll_up_with_what_no_group_holds() {
    let a = grouped(&["clients=198.18.0.0/24", "storage=2001:db8::/48"]);
    let text = screen(&a);
    assert!(text.contains("Groups 1/2"), "{text}");
    assert!(text.contains("not in any group: sent"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn overlapping_groups_say_no_remainder_is_exact() {
    let a = grouped(&["clients=198.18.0.0/24", "storage=198.18.0.0/15"]);
    let text = screen(&a);
    assert!(text.contains("groups overlap"), "{text}");
    insta::assert_snapshot!(text);
}

/// The small fixture with host names for three of its addresses (one too long for a cell)
/// and a services database naming https and domain.
fn named_app(w: u16, h: u16) -> App {
    use crate::names::{NameMap, Naming, Services};
    let names = [
        ("198.18.0.1", "web-1.lab.example"),
        (
            "2001:db8:1234:5678:9abc:def0:1234:5678",
            "a-very-long-host-name-for-one-cell.lab.example",
        ),
        ("2001:db8::53", "ns1.lab.example"),
    ];
    let hosts: NameMap = names
        .iter()
        .map(|(ip, name)| (ip.parse().unwrap(), Arc::from(*name)))
        .collect();
    let services = Services::parse("https 443/tcp\ndomain 53/udp\ndomain 53/tcp\n");
    let mut a = App::new((w, h)).with_names(Naming::new(true, Some(services)));
    a.update(Action::Snapshot(Arc::new(fixture::small())));
    a.update(Action::Names(Arc::new(hosts)));
    a
}

#[test]
fn talkers_with_names_on_and_off() {
    let mut a = named_app(100, 16);
    let on = screen(&a);
    assert!(on.contains("web-1.lab.example "), "{on}");
    assert!(on.contains("a-very-long-host-name-for-one-c… "), "{on}");
    assert!(on.contains("198.18.0.2 "), "unnamed addresses stay: {on}");
    insta::assert_snapshot!("talkers_names_on", on);
    a.update(Action::ToggleNames);
    let off = screen(&a);
    assert!(!off.contains("lab.example"), "{off}");
    assert!(off.contains("198.18.0.1 "), "{off}");
    insta::assert_snapshot!("talkers_names_off", off);
    a.update(Action::ToggleNames);
    assert_eq!(screen(&a), on);
}

#[test]
fn flows_with_host_and_service_names() {
    let mut a = named_app(120, 16);
    a.update(Action::ShowView(View::Flows));
    let text = screen(&a);
    assert!(text.contains("web-1.lab.example:https "), "{text}");
    assert!(text.contains("ns1.lab.example:domain "), "{text}");
    // An ephemeral port and an unnamed address stay numbers, an IPv6 address bracketed.
    assert!(text.contains("198.18.0.2:51234 "), "{text}");
    insta::assert_snapshot!("flows_names_on", text);
    a.update(Action::TogglePortNames);
    let numbers = screen(&a);
    assert!(numbers.contains("web-1.lab.example:443 "), "{numbers}");
    a.update(Action::ToggleNames);
    let off = screen(&a);
    assert!(off.contains("[2001:db8::53]:53 "), "{off}");
    insta::assert_snapshot!("flows_names_off", off);
}

#[test]
fn the_filter_matches_names_shown() {
    let mut a = named_app(100, 12);
    a.update(Action::StartFilter);
    for c in "lab.example".chars() {
        a.update(Action::Input(c));
    }
    a.update(Action::ApplyFilter);
    let text = screen(&a);
    assert!(text.contains("Talkers 1/3"), "{text}");
    insta::assert_snapshot!(text);
    // Names off: the same filter matches no address.
    a.update(Action::ToggleNames);
    assert!(screen(&a).contains("Talkers 0/0"), "{}", screen(&a));
}

#[test]
fn without_a_resolver_n_says_why() {
    let mut a = App::new((100, 12)).with_names(crate::names::Naming::new(false, None));
    a.update(Action::Snapshot(Arc::new(fixture::small())));
    a.update(Action::ToggleNames);
    assert!(screen(&a).contains("no host names"), "{}", screen(&a));
    a.update(Action::TogglePortNames);
    assert!(screen(&a).contains("no service names"), "{}", screen(&a));
}
