use std::sync::Arc;

use traffic_counter_capture::snapshot::FilterKind;

use super::*;
use crate::app::rollup::{self, Rollup};
use crate::fixture;

fn app() -> App {
    let mut app = App::new((100, 12));
    app.update(Action::Snapshot(Arc::new(fixture::small())));
    app
}

#[test]
fn selection_moves_pages_and_stays_inside_the_rows() {
    let mut a = app();
    // 12 lines less header (3), table border and column header (2), the balance (2) and the
    // status line (1).
    assert_eq!(a.page_rows(), 4);
    a.update(Action::Move(1));
    assert_eq!(a.talkers.selected, 1);
    a.update(Action::End);
    assert_eq!((a.talkers.selected, a.talkers.offset), (4, 1));
    a.update(Action::Move(10));
    assert_eq!(a.talkers.selected, 4);
    a.update(Action::Home);
    assert_eq!(a.talkers.selected, 0);
    // Three rows a page: paging down scrolls the window with the selection.
    a.update(Action::Resize(100, 11));
    a.update(Action::Page(1));
    assert_eq!((a.talkers.selected, a.talkers.offset), (3, 1));
    assert_eq!(a.talker_rows.len(), 3);
    a.update(Action::Page(-1));
    assert_eq!((a.talkers.selected, a.talkers.offset), (0, 0));
}

#[test]
fn sort_cycles_through_every_column_and_reverses() {
    let mut a = app();
    let start = a.talker_sort();
    for _ in 0..columns::TALKERS.len() {
        a.update(Action::Sort(1));
    }
    assert_eq!(a.talker_sort(), start);
    a.update(Action::Sort(-1));
    assert_eq!(a.talker_sort(), TalkerColumn::Packets);
    assert!(a.talkers.descending);
    a.update(Action::Reverse);
    assert!(!a.talkers.descending);
    // Each view keeps its own order.
    a.update(Action::NextView);
    assert_eq!(a.view, View::Flows);
    assert!(a.flows.descending);
}

#[test]
fn pause_freezes_the_tables_while_snapshots_keep_arriving() {
    let mut a = app();
    a.update(Action::TogglePause);
    let mut newer = fixture::small();
    newer.talkers.truncate(2);
    a.update(Action::Snapshot(Arc::new(newer)));
    assert_eq!(a.shown.as_ref().map(|s| s.talkers.len()), Some(5));
    assert_eq!(a.latest.as_ref().map(|s| s.talkers.len()), Some(2));
    a.update(Action::TogglePause);
    assert_eq!(a.shown.as_ref().map(|s| s.talkers.len()), Some(2));
    assert_eq!(a.row_count(), 2);
}

#[test]
fn the_filter_prompt_edits_applies_and_clears() {
    let mut a = app();
    a.update(Action::End);
    a.update(Action::StartFilter);
    for c in "198.18.0.0/30x".chars() {
        a.update(Action::Input(c));
    }
    a.update(Action::Backspace);
    a.update(Action::ApplyFilter);
    assert_eq!(a.filter.text(), "198.18.0.0/30");
    assert_eq!((a.row_count(), a.talkers.selected), (2, 0));
    a.update(Action::Escape);
    assert!(a.filter.is_empty());
    assert_eq!(a.row_count(), 5);
    // Escape in the prompt cancels the edit and keeps the applied filter.
    a.update(Action::StartFilter);
    a.update(Action::Input('z'));
    a.update(Action::Escape);
    assert!(a.prompt.is_none() && a.filter.is_empty());
}

#[test]
fn escape_closes_help_first() {
    let mut a = app();
    a.update(Action::StartFilter);
    a.update(Action::Input('7'));
    a.update(Action::ApplyFilter);
    a.update(Action::ToggleHelp);
    a.update(Action::Escape);
    assert!(!a.help);
    assert_eq!(a.filter.text(), "7");
}

#[test]
fn exclude_needs_ebpf_and_a_selection() {
    let mut a = app();
    assert_eq!(
        a.update(Action::ExcludeSelected),
        // 198.18.0.1 and .2 tie on bytes; ties go by address, ascending.
        Effect::Exclude("198.18.0.1".parse().unwrap())
    );
    a.update(Action::ShowView(View::Health));
    assert_eq!(a.update(Action::ExcludeSelected), Effect::None);
    let mut s = fixture::small();
    s.filter.kind = FilterKind::Classic;
    s.filter.rejects = None;
    let mut c = App::new((100, 12));
    c.update(Action::Snapshot(Arc::new(s)));
    assert_eq!(c.update(Action::ExcludeSelected), Effect::None);
    let (message, error) = c.status.clone().unwrap();
    assert!(error && message.contains("classic"), "{message}");
}

#[test]
fn writing_needs_a_snapshot() {
    let mut empty = App::new((80, 24));
    assert_eq!(empty.update(Action::WriteSnapshot), Effect::None);
    assert!(empty.status.is_some());
    assert_eq!(app().update(Action::WriteSnapshot), Effect::WriteSnapshot);
    assert_eq!(app().update(Action::Quit), Effect::Quit);
}

#[test]
fn enter_opens_the_selected_rows_detail_and_escape_goes_back() {
    let mut a = app();
    a.update(Action::Move(2));
    a.update(Action::OpenDetail);
    let ip = "2001:db8:1234:5678:9abc:def0:1234:5678".parse().unwrap();
    assert_eq!(
        a.detail.as_ref().map(|d| d.target),
        Some(Target::Talker(ip))
    );
    // Its flows, in the flows view's order; keys do not move the table beneath.
    assert_eq!(a.detail.as_ref().map(|d| d.flow_count), Some(1));
    a.update(Action::Move(1));
    assert_eq!(a.talkers.selected, 2);
    // Esc closes the detail before it clears a filter.
    a.filter = Query::new("2001");
    a.update(Action::Escape);
    assert!(a.detail.is_none());
    assert_eq!(a.filter.text(), "2001");
    // A flow's detail follows its key; switching views closes it.
    a.update(Action::ShowView(View::Flows));
    a.update(Action::OpenDetail);
    let key = a.detail.as_ref().map(|d| d.target);
    assert!(
        matches!(key, Some(Target::Flow(k)) if k.proto == 17),
        "{key:?}"
    );
    a.update(Action::NextView);
    assert!(a.detail.is_none());
    // Nothing to open on the health view.
    a.update(Action::OpenDetail);
    assert!(a.detail.is_none());
}

#[test]
fn g_cycles_the_roll_ups_and_enter_on_a_prefix_lists_its_addresses() {
    let mut a = app();
    assert_eq!(a.rolled.mode, Rollup::Addresses);
    a.update(Action::CycleRollup);
    assert_eq!(a.rolled.mode, Rollup::Prefixes);
    // 198.18.0.0/24, 198.19.7.0/24, 2001:db8::/64 and 2001:db8:1234:5678::/64.
    assert_eq!(a.row_count(), 4);
    assert!(
        a.rolled
            .balance
            .as_ref()
            .is_some_and(rollup::Balance::adds_up)
    );
    // No address to exclude on a prefix row.
    assert_eq!(a.update(Action::ExcludeSelected), Effect::None);
    a.update(Action::OpenDetail);
    assert_eq!(a.rolled.mode, Rollup::Addresses);
    assert_eq!(a.filter.text(), "198.18.0.0/24");
    assert_eq!(a.row_count(), 2);
    assert!(a.detail.is_none());
    a.update(Action::CycleRollup);
    a.update(Action::CycleRollup);
    assert_eq!(a.rolled.mode, Rollup::Groups);
    assert_eq!(a.row_count(), 0);
    a.update(Action::CycleRollup);
    assert_eq!(a.rolled.mode, Rollup::Addresses);
    // g only acts on the talkers view.
    a.update(Action::ShowView(View::Flows));
    a.update(Action::CycleRollup);
    assert_eq!(a.rolled.mode, Rollup::Addresses);
}
