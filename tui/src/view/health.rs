//! The health view: per-worker capture counters, filter rejects, parse errors, ring geometry,
//! table evictions, and the named groups' exact totals (`--group`).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::groups::GroupTotals;
use traffic_counter_capture::snapshot::FilterKind;
use traffic_counter_capture::stats::WorkerStats;

use crate::app::App;
use crate::units;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    let workers = s.workers.len() as u16;
    let [top, over_time, bottom] = Layout::vertical([
        Constraint::Length(workers + 2),
        Constraint::Length(workers + 1),
        Constraint::Min(0),
    ])
    .areas(area);
    super::charts::workers(app, over_time, buf);
    workers_table(s, top, buf);

    let filter = match (s.filter.kind, s.filter.rejects) {
        (FilterKind::None, _) => Line::raw("Filter     none: every frame reaches userspace"),
        (FilterKind::Ebpf, Some(r)) => Line::raw(format!(
            "Filter     ebpf   rejected: vlan {}  non-IP {}  excluded {}  not allowed {}",
            r.vlan, r.non_ip, r.excluded, r.not_allowed
        )),
        (FilterKind::Userspace, Some(r)) => Line::raw(format!(
            "Filter     userspace (replay)   rejected: vlan {}  non-IP {}  excluded {}  \
             not allowed {}",
            r.vlan, r.non_ip, r.excluded, r.not_allowed
        )),
        (_, _) => Line::from(vec![
            Span::raw("Filter     classic   rejected: "),
            Span::styled("unknown", Style::new().fg(Color::Yellow)),
            Span::raw(" (classic BPF cannot count its rejects)"),
        ]),
    };
    let e = &s.parse_errors;
    let g = &s.ring;
    let mut lines = vec![
        filter,
        frames_line(&s.workers),
        Line::raw(format!(
            "Parse      non-IP {}  truncated {}  malformed {}",
            e.non_ip, e.truncated, e.bad_header
        )),
        Line::raw(format!(
            "Ring       {} workers x {} blocks x {} = {} each; frame slot {} B, block timeout {} ms, snap {} B",
            s.workers.len(),
            g.block_count,
            units::bytes(u64::from(g.block_size)),
            units::bytes(g.bytes()),
            g.frame_size,
            g.block_timeout_ms,
            g.snap_len
        )),
        Line::raw(format!(
            "Fanout     {} group {}{}",
            s.fanout.mode.name(),
            s.fanout.group,
            if s.fanout.rollover { " rollover" } else { "" }
        )),
        Line::raw(format!(
            "Talkers    {} tracked of {}; evicted {} ({} packets sent, {} received)",
            s.talkers.len(),
            s.max_talkers,
            s.evicted_talkers.entries,
            s.evicted_talkers.packets_sent,
            s.evicted_talkers.packets_received
        )),
        Line::raw(if s.flows_enabled {
            format!(
                "Flows      {} tracked of {}; evicted {} ({} packets)",
                s.flows.len(),
                s.max_flows,
                s.evicted_flows.entries,
                s.evicted_flows.packets
            )
        } else {
            "Flows      not counted (start with --flows)".to_owned()
        }),
    ];
    lines.extend(s.groups.iter().map(group_line));
    Paragraph::new(lines)
        .block(
            Block::new()
                .borders(Borders::TOP)
                .title(" Filter, parsing, memory "),
        )
        .render(bottom, buf);
}

/// Each capture worker's counters, trouble in bold red and in the numbers themselves.
fn workers_table(s: &Snapshot, area: Rect, buf: &mut Buffer) {
    let red = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let rows = s.workers.iter().map(|w| {
        let trouble = if w.ring_drops > 0 || w.ring_freezes > 0 {
            red
        } else {
            Style::new()
        };
        let right = |text: String| Cell::from(Text::from(text).right_aligned());
        Row::new(vec![
            Cell::from(format!("{}", w.id)),
            Cell::from(format!("{}", w.cpu)),
            right(units::count_cell(w.packets_per_sec)),
            right(w.packets.to_string()),
            right(units::bytes_cell(w.bytes)),
            right(w.ring_drops.to_string()),
            right(w.ring_freezes.to_string()),
        ])
        .style(trouble)
    });
    Table::new(rows, [6, 4, 9, 14, 11, 10, 8].map(Constraint::Length))
        .header(
            Row::new(
                [
                    "Worker", "CPU", "Pkts/s", "Packets", "Bytes", "Drops", "Freezes",
                ]
                .map(|h| match h {
                    "Worker" | "CPU" => Cell::from(h),
                    _ => Cell::from(Text::from(h).right_aligned()),
                }),
            )
            .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .block(
            Block::new()
                .borders(Borders::TOP)
                .title(" Capture workers "),
        )
        .render(area, buf);
}

/// What the workers met besides plain frames: super-frames, corrupt ring blocks, link downs;
/// red when a block was corrupt.
fn frames_line(workers: &[WorkerStats]) -> Line<'static> {
    let sum = |field: fn(&WorkerStats) -> u64| workers.iter().map(field).sum::<u64>();
    let corrupt = sum(|w| w.corrupt_blocks);
    let style = if corrupt > 0 {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    Line::raw(format!(
        "Frames     super-frames {} (counted per segment)  corrupt blocks {} ({} frames \
         lost)  link down {}",
        sum(|w| w.super_frames),
        corrupt,
        sum(|w| w.unreadable_frames),
        sum(|w| w.link_down),
    ))
    .style(style)
}

/// One `--group`'s exact totals.
fn group_line(g: &GroupTotals) -> Line<'static> {
    Line::raw(format!(
        "Group      {}: sent {} in {} packets, received {} in {} packets",
        g.name,
        units::bytes(g.bytes_sent),
        g.packets_sent,
        units::bytes(g.bytes_received),
        g.packets_received
    ))
}
