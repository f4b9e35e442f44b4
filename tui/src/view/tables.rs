//! The talkers and flows tables: only the visible window is selected and sorted, and columns
//! (see [`crate::columns`]) drop by priority until the table fits the terminal's width.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Text;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget};

use traffic_counter_capture::Snapshot;

use super::cells::Cells;
use crate::app::rollup::Rollup;
use crate::app::{App, TableState};
use crate::columns::{self, Align, FLOWS, FLOWS_STACKED, Spec, StackedColumn, TALKERS};
use crate::units;

/// Which columns carry the sort mark: by index, or by spec.
pub(super) type Marks<'a, C> = Box<dyn Fn(usize, &Spec<C>) -> bool + 'a>;

/// One table ready to draw: its columns' specs and every visible row's cell text, one string
/// per column (lines split by `\n` for stacked rows).
pub(super) struct Grid<'a, C> {
    pub(super) specs: &'a [Spec<C>],
    pub(super) texts: Vec<Vec<String>>,
    /// Whether a column carries the sort mark.
    pub(super) sorted: Marks<'a, C>,
    pub(super) descending: bool,
    /// Which of the rows is selected.
    pub(super) selected: Option<usize>,
    pub(super) title: String,
}

impl<'a, C> Grid<'a, C> {
    /// A table sorted as `state` says (its sort column marked), the `selected` row highlighted.
    pub(super) fn sorted_by(
        specs: &'a [Spec<C>],
        texts: Vec<Vec<String>>,
        state: &TableState,
        selected: Option<usize>,
        title: String,
    ) -> Self {
        let sort = state.sort;
        Self {
            specs,
            texts,
            sorted: Box::new(move |c, _| c == sort),
            descending: state.descending,
            selected,
            title,
        }
    }

    pub(super) fn render(self, area: Rect, buf: &mut Buffer) {
        let widths: Vec<u16> = self
            .specs
            .iter()
            .enumerate()
            .map(|(c, spec)| {
                let widest = self
                    .texts
                    .iter()
                    .map(|row| Text::raw(row[c].as_str()).width() as u16)
                    .max()
                    .unwrap_or(0);
                spec.width.resolve(widest)
            })
            .collect();
        let chosen = columns::fit(self.specs, &widths, area.width.saturating_sub(2));
        let header = chosen.iter().map(|&c| {
            let spec = &self.specs[c];
            if (self.sorted)(c, spec) {
                format!("{}{}", spec.header, if self.descending { "▼" } else { "▲" })
            } else {
                spec.header.to_owned()
            }
        });
        let rows = self.texts.iter().enumerate().map(|(n, row)| {
            let height = row.iter().map(|t| t.lines().count()).max().unwrap_or(1);
            let cells = chosen.iter().map(|&c| {
                let text = Text::raw(row[c].clone());
                Cell::from(match self.specs[c].align {
                    Align::Left => text,
                    Align::Right => text.right_aligned(),
                })
            });
            let row = Row::new(cells).height(height.max(1) as u16);
            if self.selected == Some(n) {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        });
        Table::new(rows, chosen.iter().map(|&c| Constraint::Length(widths[c])))
            .header(
                Row::new(header.collect::<Vec<_>>())
                    .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
            )
            .block(table_block(self.title))
            .render(area, buf);
    }
}

pub(super) fn table_block(title: String) -> Block<'static> {
    Block::new().borders(Borders::TOP).title(title)
}

pub(super) fn talkers(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else {
        table_block(" Talkers ".into()).render(area, buf);
        return;
    };
    let [table, balance] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(app.balance_rows())]).areas(area);
    super::rollups::balance(app, balance, buf);
    let name = match app.rolled.mode {
        Rollup::Groups => return super::rollups::groups(app, table, buf),
        Rollup::Addresses => "Talkers".to_owned(),
        Rollup::Prefixes => format!("Prefixes /{} /{}", app.rolled.lens.v4, app.rolled.lens.v6),
    };
    let cells = Cells::new(app, s);
    let rows = app.rolled.talkers(s);
    let texts = app
        .talker_rows
        .iter()
        .map(|&i| {
            let t = &rows[i];
            TALKERS
                .iter()
                .map(|spec| cells.talker(spec.column, t))
                .collect()
        })
        .collect();
    let selected = app.talkers.selected.checked_sub(app.talkers.offset);
    let title = table_title(&name, app.row_count(), app.talkers.selected);
    Grid::sorted_by(&TALKERS, texts, &app.talkers, selected, title).render(table, buf);
}

pub(super) fn flows(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    if !s.flows_enabled {
        Paragraph::new("Flows are not counted: start with --flows to see them.")
            .block(table_block(" Flows ".into()))
            .render(area, buf);
        return;
    }
    let cells = Cells::new(app, s);
    let texts = flow_texts(&cells, s, &app.flow_rows);
    // Proto, both endpoints and both 2 s rates must fit on one line; else stack each flow.
    let widest = |c: usize| texts.iter().map(|r| r[c].len() as u16).max().unwrap_or(0);
    let one_line: u16 = (0..5)
        .map(|c| FLOWS[c].width.resolve(widest(c)))
        .sum::<u16>()
        + 4;
    if one_line > area.width.saturating_sub(2) {
        return flows_stacked(app, &cells, area, buf);
    }
    let selected = app.flows.selected.checked_sub(app.flows.offset);
    let title = table_title("Flows", app.row_count(), app.flows.selected);
    flow_grid(app, texts, selected, title, area, buf);
}

/// The texts of `rows` of the shown snapshot's flows, one per column of [`FLOWS`].
pub(super) fn flow_texts(cells: &Cells, s: &Snapshot, rows: &[usize]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|&i| {
            let f = &s.flows[i];
            FLOWS
                .iter()
                .map(|spec| cells.flow(spec.column, f))
                .collect()
        })
        .collect()
}

/// Flows on one line each, sorted as the flows view is, the `selected` one highlighted.
pub(super) fn flow_grid(
    app: &App,
    texts: Vec<Vec<String>>,
    selected: Option<usize>,
    title: String,
    area: Rect,
    buf: &mut Buffer,
) {
    Grid::sorted_by(&FLOWS, texts, &app.flows, selected, title).render(area, buf);
}

/// Flows on two lines each, as iftop draws them on narrow terminals: A over B, and each rate
/// column's A-to-B rate over its B-to-A rate, so long IPv6 endpoints stay whole.
fn flows_stacked(app: &App, cells: &Cells<'_>, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    let shown = &app.flow_rows;
    // Each row takes two lines, so only half the page fits: show the half holding the selection.
    let visible = (usize::from(area.height.saturating_sub(2)) / 2).max(1);
    let selected = app.flows.selected.saturating_sub(app.flows.offset);
    let start = (selected + 1).saturating_sub(visible).min(shown.len());
    let end = (start + visible).min(shown.len());
    let texts = shown[start..end]
        .iter()
        .map(|&i| {
            let f = &s.flows[i];
            FLOWS_STACKED
                .iter()
                .map(|spec| match spec.column {
                    StackedColumn::Proto => cells.proto(f.proto),
                    StackedColumn::Ends => format!(
                        "{} =>\n{} <=",
                        cells.endpoint(f.a_ip, f.a_port, f.proto),
                        cells.endpoint(f.b_ip, f.b_port, f.proto)
                    ),
                    StackedColumn::Rates(w) => format!(
                        "{}\n{}",
                        cells.rate(f.a_to_b_bytes_per_sec.get(w)),
                        cells.rate(f.b_to_a_bytes_per_sec.get(w))
                    ),
                    StackedColumn::Bytes => format!(
                        "{}\n{}",
                        units::bytes_cell(f.bytes_a_to_b),
                        units::bytes_cell(f.bytes_b_to_a)
                    ),
                    StackedColumn::LastSeen => cells.ago(f.last_seen),
                })
                .collect()
        })
        .collect();
    let sort = app.flow_sort();
    Grid {
        specs: &FLOWS_STACKED,
        texts,
        sorted: Box::new(move |_, spec: &Spec<StackedColumn>| spec.column.covers(sort)),
        descending: app.flows.descending,
        selected: selected.checked_sub(start),
        title: table_title("Flows", app.row_count(), app.flows.selected),
    }
    .render(area, buf);
}

/// ` Talkers 3/120 `: the selected row's position among the rows that pass the filter.
pub(super) fn table_title(name: &str, total: usize, selected: usize) -> String {
    let at = if total == 0 { 0 } else { selected + 1 };
    format!(" {name} {at}/{total} ")
}
