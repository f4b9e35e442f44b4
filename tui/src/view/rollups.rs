//! The talkers view rolled up (`g`): the groups table, and under any talkers table the two
//! lines that say how its rows add up to the totals.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::cells::Cells;
use super::tables::{Grid, table_block, table_title};
use crate::app::App;
use crate::app::rollup::{Balance, Rollup, Sums};
use crate::columns::GROUPS;
use crate::units;

/// One row per `--group`, most bytes first, with its exact totals and its rates over the
/// last second.
pub(super) fn groups(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    if s.groups.is_empty() {
        Paragraph::new("No groups: start with --group NAME=CIDR[,CIDR...] to count them exactly.")
            .block(table_block(" Groups ".into()))
            .render(area, buf);
        return;
    }
    let cells = Cells::new(app, s);
    let now = s.duration.as_secs_f64();
    let texts = app
        .talker_rows
        .iter()
        .map(|&i| {
            let g = &s.groups[i];
            let rates = app.history.group_rates(i, now);
            GROUPS
                .iter()
                .map(|spec| cells.group(spec.column, g, rates))
                .collect()
        })
        .collect();
    Grid {
        specs: &GROUPS,
        texts,
        // Ranked by bytes, sent plus received.
        sorted: Box::new(|_, spec| matches!(spec.column, crate::columns::GroupColumn::Share)),
        descending: true,
        selected: app.talkers.selected.checked_sub(app.talkers.offset),
        title: table_title("Groups", app.row_count(), app.talkers.selected),
    }
    .render(area, buf);
}

fn sent_received(s: &Sums) -> String {
    format!(
        "sent {}, {} pkts; received {}, {} pkts",
        units::bytes(s.bytes_sent),
        units::count(s.packets_sent as f64),
        units::bytes(s.bytes_received),
        units::count(s.packets_received as f64)
    )
}

/// The two lines under the talkers table: the remainder the rows leave, and whether rows plus
/// remainder equal the totals (in words, not only in colour).
pub(super) fn balance(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(balance) = &app.rolled.balance else {
        return;
    };
    let what = match app.rolled.mode {
        Rollup::Addresses => "addresses",
        Rollup::Prefixes | Rollup::Groups => "entries",
    };
    let good = Style::new().fg(Color::Green);
    let bad = Style::new().fg(Color::Red);
    let filtered = if app.filter.is_empty() {
        ""
    } else {
        " (all rows, not only those the filter shows)"
    };
    let lines = match balance {
        Balance::Rows {
            rows,
            evicted_entries,
            evicted,
            totals: (bytes, packets),
        } => {
            let (sent, received) = (
                rows.bytes_sent + evicted.bytes_sent,
                rows.bytes_received + evicted.bytes_received,
            );
            let verdict = if balance.adds_up() {
                Span::styled(
                    format!(
                        "rows + other = totals: {} and {packets} packets each way{filtered}",
                        units::bytes(*bytes)
                    ),
                    good,
                )
            } else {
                Span::styled(
                    format!(
                        "rows + other do NOT equal the totals: sent {sent} B, received {received} B, \
                         totals {bytes} B"
                    ),
                    bad,
                )
            };
            vec![
                Line::raw(format!(
                    "other ({evicted_entries} {what} evicted): {}",
                    sent_received(evicted)
                )),
                Line::from(verdict),
            ]
        }
        Balance::Groups { rest, .. } => vec![
            Line::raw(format!("not in any group: {}", sent_received(rest))),
            Line::from(Span::styled(
                "groups + not in any group = totals (the workers count every packet exactly)",
                good,
            )),
        ],
        Balance::Overlapping => vec![
            Line::raw("groups overlap: a packet can count in several, so no remainder is exact"),
            Line::raw("each group's row is still exact on its own"),
        ],
    };
    Paragraph::new(lines).render(area, buf);
}
