//! The talkers and flows tables: only the visible window is selected and sorted, and columns
//! drop by priority until the table fits the terminal's width.

use std::net::IpAddr;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Text;
use ratatui::widgets::{Block, Borders, Cell, Row, Table, Widget};
use traffic_counter_capture::parse::proto;

use crate::app::rows::{FLOW_COLUMNS, FlowColumn, TALKER_COLUMNS, TalkerColumn};
use crate::app::{App, TableState};
use crate::units;

/// Width of a rate or size cell.
const NUM: u16 = 9;
/// Columns kept first when the terminal is narrow, by index into the column list.
const TALKER_PRIORITY: [usize; 11] = [0, 1, 2, 8, 9, 10, 7, 3, 4, 5, 6];
const FLOW_PRIORITY: [usize; 12] = [0, 1, 2, 3, 4, 10, 11, 9, 5, 6, 7, 8];

fn talker_header(c: TalkerColumn) -> &'static str {
    match c {
        TalkerColumn::Address => "Address",
        TalkerColumn::Sent(0) => "Sent 2s",
        TalkerColumn::Received(0) => "Recv 2s",
        TalkerColumn::Sent(1) => "Sent 10s",
        TalkerColumn::Received(1) => "Recv 10s",
        TalkerColumn::Sent(_) => "Sent 40s",
        TalkerColumn::Received(_) => "Recv 40s",
        TalkerColumn::Packets => "Packets",
        TalkerColumn::Bytes => "Bytes",
        TalkerColumn::Share => "Share",
        TalkerColumn::LastSeen => "Seen",
    }
}

fn flow_header(c: FlowColumn) -> &'static str {
    match c {
        FlowColumn::Proto => "Proto",
        FlowColumn::A => "A",
        FlowColumn::B => "B",
        FlowColumn::AToB(0) => "A>B 2s",
        FlowColumn::BToA(0) => "B>A 2s",
        FlowColumn::AToB(1) => "A>B 10s",
        FlowColumn::BToA(1) => "B>A 10s",
        FlowColumn::AToB(_) => "A>B 40s",
        FlowColumn::BToA(_) => "B>A 40s",
        FlowColumn::Packets => "Packets",
        FlowColumn::Bytes => "Bytes",
        FlowColumn::LastSeen => "Seen",
    }
}

/// Picks the columns that fit `width`, by priority, returned in display order.
fn fit(widths: &[u16], priority: &[usize], width: u16) -> Vec<usize> {
    let mut used = 0u16;
    let mut chosen = Vec::new();
    for &i in priority {
        let w = widths[i] + u16::from(!chosen.is_empty());
        if used + w <= width || chosen.is_empty() {
            used += w;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

fn marked(header: &str, index: usize, state: &TableState) -> String {
    if index == state.sort {
        format!("{header}{}", if state.descending { "▼" } else { "▲" })
    } else {
        header.to_owned()
    }
}

fn header_row(names: Vec<String>) -> Row<'static> {
    Row::new(names).style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED))
}

fn table_block(title: String) -> Block<'static> {
    Block::new().borders(Borders::TOP).title(title)
}

/// The address under the selection: the talker's, or the flow's initiator.
pub fn selected_address(app: &App) -> Option<IpAddr> {
    let s = app.shown.as_ref()?;
    match app.view {
        crate::app::View::Talkers => {
            let i = app
                .talker_rows
                .get(app.talkers.selected.checked_sub(app.talkers.offset)?)?;
            Some(s.talkers.get(*i)?.ip)
        }
        crate::app::View::Flows => {
            let i = app
                .flow_rows
                .get(app.flows.selected.checked_sub(app.flows.offset)?)?;
            Some(s.flows.get(*i)?.a_ip)
        }
        crate::app::View::Health => None,
    }
}

pub(super) fn talkers(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else {
        table_block(" Talkers ".into()).render(area, buf);
        return;
    };
    let (total, shown) = (app.row_count(), &app.talker_rows);
    // Every packet's bytes count once as sent and once as received, so shares sum to 100%.
    let all_bytes = (2 * s.totals.bytes).max(1) as f64;
    let address_width = shown
        .iter()
        .map(|&i| s.talkers[i].ip.to_string().len() as u16)
        .max()
        .unwrap_or(0)
        .clamp(7, 39);
    let widths: Vec<u16> = TALKER_COLUMNS
        .iter()
        .map(|c| match c {
            TalkerColumn::Address => address_width,
            TalkerColumn::Share => 6,
            TalkerColumn::LastSeen => 7,
            _ => NUM,
        })
        .collect();
    let chosen = fit(&widths, &TALKER_PRIORITY, area.width.saturating_sub(2));
    let rows = shown.iter().enumerate().map(|(n, &i)| {
        let t = &s.talkers[i];
        let cells = chosen.iter().map(|&c| -> Cell<'static> {
            let text = match TALKER_COLUMNS[c] {
                TalkerColumn::Address => t.ip.to_string(),
                TalkerColumn::Sent(w) => units::rate_cell(t.sent_bytes_per_sec.get(w), app.units),
                TalkerColumn::Received(w) => {
                    units::rate_cell(t.received_bytes_per_sec.get(w), app.units)
                }
                TalkerColumn::Packets => units::count((t.packets_sent + t.packets_received) as f64),
                TalkerColumn::Bytes => units::bytes_cell(t.bytes_sent + t.bytes_received),
                TalkerColumn::Share => format!(
                    "{:.1}%",
                    (t.bytes_sent + t.bytes_received) as f64 * 100.0 / all_bytes
                ),
                TalkerColumn::LastSeen => super::ago(t.last_seen, s.taken_at),
            };
            right_unless_address(text, c == 0)
        });
        selectable(
            Row::new(cells),
            app.talkers.offset + n == app.talkers.selected,
        )
    });
    let names = chosen
        .iter()
        .map(|&c| marked(talker_header(TALKER_COLUMNS[c]), c, &app.talkers));
    let title = table_title("Talkers", total, app.talkers.selected);
    draw(rows, (&chosen, &widths), names.collect(), title, area, buf);
}

pub(super) fn flows(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    if !s.flows_enabled {
        ratatui::widgets::Paragraph::new("Flows are not counted: start with --flows to see them.")
            .block(table_block(" Flows ".into()))
            .render(area, buf);
        return;
    }
    let (total, shown) = (app.row_count(), &app.flow_rows);
    let ends: Vec<(String, String)> = shown
        .iter()
        .map(|&i| {
            let f = &s.flows[i];
            (
                super::endpoint(f.a_ip, f.a_port),
                super::endpoint(f.b_ip, f.b_port),
            )
        })
        .collect();
    let a_width = ends
        .iter()
        .map(|e| e.0.len() as u16)
        .max()
        .unwrap_or(0)
        .clamp(1, 47);
    let b_width = ends
        .iter()
        .map(|e| e.1.len() as u16)
        .max()
        .unwrap_or(0)
        .clamp(1, 47);
    let widths: Vec<u16> = FLOW_COLUMNS
        .iter()
        .map(|c| match c {
            FlowColumn::Proto | FlowColumn::LastSeen => 7,
            FlowColumn::A => a_width,
            FlowColumn::B => b_width,
            _ => NUM,
        })
        .collect();
    let one_line = 7 + a_width + b_width + 2 * NUM + 4;
    if one_line > area.width.saturating_sub(2) {
        return flows_stacked(app, area, buf, total, shown, &ends);
    }
    let chosen = fit(&widths, &FLOW_PRIORITY, area.width.saturating_sub(2));
    let rows = shown
        .iter()
        .zip(&ends)
        .enumerate()
        .map(|(n, (&i, (a, b)))| {
            let f = &s.flows[i];
            let cells = chosen.iter().map(|&c| -> Cell<'static> {
                let text = match FLOW_COLUMNS[c] {
                    FlowColumn::Proto => {
                        proto::name(f.proto).map_or_else(|| f.proto.to_string(), str::to_owned)
                    }
                    FlowColumn::A => a.clone(),
                    FlowColumn::B => b.clone(),
                    FlowColumn::AToB(w) => {
                        units::rate_cell(f.a_to_b_bytes_per_sec.get(w), app.units)
                    }
                    FlowColumn::BToA(w) => {
                        units::rate_cell(f.b_to_a_bytes_per_sec.get(w), app.units)
                    }
                    FlowColumn::Packets => {
                        units::count((f.packets_a_to_b + f.packets_b_to_a) as f64)
                    }
                    FlowColumn::Bytes => units::bytes_cell(f.bytes_a_to_b + f.bytes_b_to_a),
                    FlowColumn::LastSeen => super::ago(f.last_seen, s.taken_at),
                };
                right_unless_address(text, c <= 2)
            });
            selectable(Row::new(cells), app.flows.offset + n == app.flows.selected)
        });
    let names = chosen
        .iter()
        .map(|&c| marked(flow_header(FLOW_COLUMNS[c]), c, &app.flows));
    let title = table_title("Flows", total, app.flows.selected);
    draw(rows, (&chosen, &widths), names.collect(), title, area, buf);
}

/// Draws a table of the `chosen` columns (of `widths`) under a titled top border.
fn draw<'a>(
    rows: impl IntoIterator<Item = Row<'a>>,
    (chosen, widths): (&[usize], &[u16]),
    names: Vec<String>,
    title: String,
    area: Rect,
    buf: &mut Buffer,
) {
    Table::new(rows, chosen.iter().map(|&c| Constraint::Length(widths[c])))
        .header(header_row(names))
        .block(table_block(title))
        .render(area, buf);
}

/// Flows on two lines each, as iftop draws them on narrow terminals: A over B, and each rate
/// column's A-to-B rate over its B-to-A rate, so long IPv6 endpoints stay whole.
fn flows_stacked(
    app: &App,
    area: Rect,
    buf: &mut Buffer,
    total: usize,
    shown: &[usize],
    ends: &[(String, String)],
) {
    let Some(s) = &app.shown else { return };
    // Each row takes two lines, so only half the page fits: show the half holding the selection.
    let visible = (usize::from(area.height.saturating_sub(2)) / 2).max(1);
    let selected = app.flows.selected.saturating_sub(app.flows.offset);
    let start = (selected + 1).saturating_sub(visible).min(shown.len());
    let end = (start + visible).min(shown.len());
    let (shown, ends) = (&shown[start..end], &ends[start..end]);
    let ep_width = ends
        .iter()
        .map(|(a, b)| a.len().max(b.len()) as u16 + 3)
        .max()
        .unwrap_or(3);
    // Merged columns: proto, endpoints, 2s, 10s, 40s, bytes, seen.
    let names = ["Proto", "A / B", "2s", "10s", "40s", "Bytes", "Seen"];
    let widths = [6, ep_width, NUM, NUM, NUM, NUM, 7];
    let chosen = fit(
        &widths,
        &[0, 1, 2, 5, 3, 6, 4],
        area.width.saturating_sub(2),
    );
    let sort = app.flow_sort();
    let sorted_merged = match sort {
        FlowColumn::Proto => 0,
        FlowColumn::A | FlowColumn::B => 1,
        FlowColumn::AToB(w) | FlowColumn::BToA(w) => 2 + w,
        FlowColumn::Bytes | FlowColumn::Packets => 5,
        FlowColumn::LastSeen => 6,
    };
    let header = header_row(
        chosen
            .iter()
            .map(|&c| {
                if c == sorted_merged {
                    format!(
                        "{}{}",
                        names[c],
                        if app.flows.descending { "▼" } else { "▲" }
                    )
                } else {
                    names[c].to_owned()
                }
            })
            .collect(),
    );
    let rows = shown.iter().zip(ends).enumerate().map(|(n, (&i, (a, b)))| {
        let f = &s.flows[i];
        let two =
            |x: String, y: String| Cell::from(Text::from(vec![x.into(), y.into()]).right_aligned());
        let cells = chosen.iter().map(|&c| -> Cell<'static> {
            match c {
                0 => Cell::from(
                    proto::name(f.proto).map_or_else(|| f.proto.to_string(), str::to_owned),
                ),
                1 => Cell::from(Text::from(vec![
                    format!("{a} =>").into(),
                    format!("{b} <=").into(),
                ])),
                2..=4 => two(
                    units::rate_cell(f.a_to_b_bytes_per_sec.get(c - 2), app.units),
                    units::rate_cell(f.b_to_a_bytes_per_sec.get(c - 2), app.units),
                ),
                5 => two(
                    units::bytes_cell(f.bytes_a_to_b),
                    units::bytes_cell(f.bytes_b_to_a),
                ),
                _ => Cell::from(Text::from(super::ago(f.last_seen, s.taken_at)).right_aligned()),
            }
        });
        selectable(
            Row::new(cells).height(2),
            app.flows.offset + start + n == app.flows.selected,
        )
    });
    let title = table_title("Flows", total, app.flows.selected);
    Table::new(rows, chosen.iter().map(|&c| Constraint::Length(widths[c])))
        .header(header)
        .block(table_block(title))
        .render(area, buf);
}

/// ` Talkers 3/120 `: the selected row's position among the rows that pass the filter.
fn table_title(name: &str, total: usize, selected: usize) -> String {
    let at = if total == 0 { 0 } else { selected + 1 };
    format!(" {name} {at}/{total} ")
}

fn right_unless_address(text: String, left: bool) -> Cell<'static> {
    if left {
        Cell::from(text)
    } else {
        Cell::from(Text::from(text).right_aligned())
    }
}

fn selectable(row: Row<'static>, selected: bool) -> Row<'static> {
    if selected {
        row.style(Style::new().add_modifier(Modifier::REVERSED))
    } else {
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_keep_the_important_columns() {
        let widths = [39, 9, 9, 9, 9, 9, 9, 9, 9, 6, 7];
        assert_eq!(fit(&widths, &TALKER_PRIORITY, 78), vec![0, 1, 2, 8, 9]);
        assert_eq!(fit(&widths, &TALKER_PRIORITY, 200).len(), 11);
        assert_eq!(fit(&widths, &TALKER_PRIORITY, 10), vec![0]);
    }
}
