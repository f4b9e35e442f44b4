//! The terminal UI's state and the one function that changes it.
//!
//! Keys become [`Action`]s (see [`crate::ui::keys`]); [`App::update`] applies an action and
//! returns an [`Effect`] for the event loop to carry out (writing a file, editing the filter),
//! whose outcome comes back as another action. Views only read an `&App`.

pub mod detail;
pub mod history;
pub mod query;
pub mod rollup;
pub mod rows;

use std::net::IpAddr;
use std::sync::Arc;

use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::FilterKind;

use self::detail::{Detail, FlowKey, Target};
use self::history::{History, Record};
use self::query::Query;
use self::rollup::{Rolled, Rollup};
use crate::columns::{self, FlowColumn, TalkerColumn};
use crate::names::{NameMap, Naming};
use crate::units::Units;

/// Which table is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Per-address table.
    Talkers,
    /// Per-flow table.
    Flows,
    /// Capture health.
    Health,
}

/// Everything a key or the capture can ask of the app.
#[derive(Clone, Debug)]
pub enum Action {
    /// Leave.
    Quit,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Escape: close the help, the filter prompt or the detail, or clear the filter.
    Escape,
    /// Cycle to the next view.
    NextView,
    /// Show one view.
    ShowView(View),
    /// Move the selection by this many rows (negative is up).
    Move(isize),
    /// Move the selection one page up or down.
    Page(isize),
    /// First row.
    Home,
    /// Last row.
    End,
    /// Sort by the previous (-1) or next (+1) column.
    Sort(isize),
    /// Reverse the order.
    Reverse,
    /// Open the filter prompt.
    StartFilter,
    /// Type into the prompt.
    Input(char),
    /// Delete the prompt's last character.
    Backspace,
    /// Apply the prompt's text as the filter.
    ApplyFilter,
    /// Freeze or unfreeze the tables.
    TogglePause,
    /// Switch bits and bytes.
    ToggleUnits,
    /// Write the current view to a file.
    WriteSnapshot,
    /// Exclude the selected address through the socket filter.
    ExcludeSelected,
    /// Open the selected talker's or flow's detail; on a prefix row, list its addresses.
    OpenDetail,
    /// Cycle the talkers view between addresses, prefixes and groups.
    CycleRollup,
    /// A new snapshot from the capture.
    Snapshot(Arc<Snapshot>),
    /// The capture failed.
    CaptureFailed(String),
    /// The capture ended by itself: a replay reached the end of its file.
    CaptureEnded,
    /// The terminal's new size.
    Resize(u16, u16),
    /// Show a message in the status line.
    Status(String, bool),
    /// The resolver's latest host names.
    Names(Arc<NameMap>),
    /// Show host names or addresses.
    ToggleNames,
    /// Show service names or port numbers.
    TogglePortNames,
}

/// What the event loop must do after an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Leave the UI.
    Quit,
    /// Write the current view (see [`crate::export`]).
    WriteSnapshot,
    /// Add this address to the filter's exclude list.
    Exclude(IpAddr),
}

/// Sorting and selection of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableState {
    /// Index of the sort column in the view's column list.
    pub sort: usize,
    /// Largest first.
    pub descending: bool,
    /// Selected row, in sorted order.
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
}

/// Growth of the counters that mean trouble, since the previous snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trouble {
    /// New ring drops.
    pub drops: u64,
    /// New ring freezes.
    pub freezes: u64,
    /// New filter rejects.
    pub rejects: u64,
}

/// The terminal UI's state.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches: paused, help, can_exclude, ended
pub struct App {
    /// The snapshot on screen (frozen while paused).
    pub shown: Option<Arc<Snapshot>>,
    /// The newest snapshot.
    pub latest: Option<Arc<Snapshot>>,
    /// Totals and per-worker counters over the last minutes, for the charts.
    pub history: History,
    /// What grew between the last two snapshots.
    pub trouble: Trouble,
    /// The table shown.
    pub view: View,
    /// Tables frozen.
    pub paused: bool,
    /// Help overlay open.
    pub help: bool,
    /// The talker or flow detail open over the table, if any.
    pub detail: Option<Detail>,
    /// What a talkers row stands for, and the rows and sums derived for it.
    pub rolled: Rolled,
    /// Rates in bits or bytes.
    pub units: Units,
    /// The talkers table.
    pub talkers: TableState,
    /// The flows table.
    pub flows: TableState,
    /// The applied filter.
    pub filter: Query,
    /// The filter being typed, while the prompt is open.
    pub prompt: Option<String>,
    /// The status line: message and whether it is an error.
    pub status: Option<(String, bool)>,
    /// Terminal width and height.
    pub size: (u16, u16),
    /// Whether `x` can exclude (the eBPF filter is active).
    pub can_exclude: bool,
    /// The capture ended by itself (a replay is done); the tables keep its final snapshot.
    pub ended: bool,
    /// Host and service names, and whether they are shown.
    pub names: Naming,
    /// Rows passing the filter in the talkers and flows tables.
    rows: [usize; 2],
    /// Indexes of the visible talker rows, in order, computed when anything they depend on
    /// changes rather than on every draw.
    pub talker_rows: Vec<usize>,
    /// Indexes of the visible flow rows, in order.
    pub flow_rows: Vec<usize>,
    /// Reused sort keys, so a refresh allocates nothing after the first.
    keys: Vec<rows::Key>,
}

impl App {
    /// A fresh app for a terminal of `size`.
    pub fn new(size: (u16, u16)) -> Self {
        Self {
            shown: None,
            latest: None,
            history: History::default(),
            trouble: Trouble::default(),
            view: View::Talkers,
            paused: false,
            help: false,
            detail: None,
            rolled: Rolled::default(),
            units: Units::Bits,
            talkers: TableState {
                sort: columns::index_of(&columns::TALKERS, &TalkerColumn::Bytes),
                descending: true,
                selected: 0,
                offset: 0,
            },
            flows: TableState {
                sort: columns::index_of(&columns::FLOWS, &FlowColumn::Bytes),
                descending: true,
                selected: 0,
                offset: 0,
            },
            filter: Query::default(),
            prompt: None,
            status: None,
            size,
            can_exclude: false,
            ended: false,
            names: Naming::default(),
            rows: [0, 0],
            talker_rows: Vec::new(),
            flow_rows: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// The app with these names (from the command line: `-n`, `-N`).
    #[must_use]
    pub fn with_names(mut self, names: Naming) -> Self {
        self.names = names;
        self
    }

    /// The addresses of the rows on screen, for the resolver to name (rolled-up rows are
    /// networks and groups, not hosts).
    pub fn on_screen(&self) -> Vec<IpAddr> {
        let Some(s) = &self.shown else {
            return Vec::new();
        };
        match self.view {
            View::Talkers if self.rolled.mode != Rollup::Addresses => Vec::new(),
            View::Talkers => self
                .talker_rows
                .iter()
                .filter_map(|&i| Some(s.talkers.get(i)?.ip))
                .collect(),
            View::Flows => self
                .flow_rows
                .iter()
                .filter_map(|&i| s.flows.get(i))
                .flat_map(|f| [f.a_ip, f.b_ip])
                .collect(),
            View::Health => Vec::new(),
        }
    }

    /// Lines of the totals chart above the talkers and flows tables: a third of the body,
    /// at most 10, and none on a terminal too short to spare them.
    pub fn chart_rows(&self) -> u16 {
        // Header (3 lines) and status line (1) around the body.
        let body = self.size.1.saturating_sub(4);
        match self.view {
            View::Talkers | View::Flows if body >= 16 && self.detail.is_none() => {
                (body / 3).min(10)
            }
            _ => 0,
        }
    }

    /// Lines under the talkers table saying how its rows add up to the totals.
    pub fn balance_rows(&self) -> u16 {
        if self.view == View::Talkers && self.detail.is_none() {
            2
        } else {
            0
        }
    }

    /// Rows of table body the current terminal size leaves room for.
    pub fn page_rows(&self) -> usize {
        // Header (3 lines), the chart, the table's top border and column header (2), the
        // balance, status line (1).
        let around = 6 + self.chart_rows() + self.balance_rows();
        usize::from(self.size.1.saturating_sub(around)).max(1)
    }

    /// The sort column of the talkers table.
    pub fn talker_sort(&self) -> TalkerColumn {
        columns::TALKERS[self.talkers.sort % columns::TALKERS.len()].column
    }

    /// The sort column of the flows table.
    pub fn flow_sort(&self) -> FlowColumn {
        columns::FLOWS[self.flows.sort % columns::FLOWS.len()].column
    }

    /// Rows passing the filter in the current table.
    pub fn row_count(&self) -> usize {
        match self.view {
            View::Talkers => self.rows[0],
            View::Flows => self.rows[1],
            View::Health => 0,
        }
    }

    /// What the selection is on: the talker's address, or the flow's key.
    pub fn selected(&self) -> Option<Target> {
        let s = self.shown.as_ref()?;
        match self.view {
            View::Talkers if self.rolled.mode != Rollup::Addresses => None,
            View::Talkers => {
                let at = self.talkers.selected.checked_sub(self.talkers.offset)?;
                Some(Target::Talker(
                    s.talkers.get(*self.talker_rows.get(at)?)?.ip,
                ))
            }
            View::Flows => {
                let at = self.flows.selected.checked_sub(self.flows.offset)?;
                let f = s.flows.get(*self.flow_rows.get(at)?)?;
                Some(Target::Flow(FlowKey::of(f)))
            }
            View::Health => None,
        }
    }

    /// The address under the selection: the talker's, or the flow's initiator.
    pub fn selected_address(&self) -> Option<IpAddr> {
        match self.selected()? {
            Target::Talker(ip) => Some(ip),
            Target::Flow(key) => Some(key.a.0),
        }
    }

    /// The table the keys move and sort: none under a detail.
    fn table(&mut self) -> Option<(&mut TableState, usize)> {
        if self.detail.is_some() {
            return None;
        }
        match self.view {
            View::Talkers => Some((&mut self.talkers, columns::TALKERS.len())),
            View::Flows => Some((&mut self.flows, columns::FLOWS.len())),
            View::Health => None,
        }
    }

    /// Applies one action; the only place state changes.
    pub fn update(&mut self, action: Action) -> Effect {
        let refresh = matches!(
            action,
            Action::Escape
                | Action::NextView
                | Action::ShowView(_)
                | Action::Sort(_)
                | Action::Reverse
                | Action::ApplyFilter
                | Action::TogglePause
                | Action::Snapshot(_)
                | Action::Resize(..)
                | Action::OpenDetail
                | Action::CycleRollup
                | Action::ToggleNames
                | Action::TogglePortNames
        ) || (matches!(action, Action::Names(_)) && !self.filter.is_empty());
        let effect = self.apply(action);
        if refresh {
            self.refresh();
        }
        effect
    }

    fn apply(&mut self, action: Action) -> Effect {
        match action {
            Action::Quit => return Effect::Quit,
            Action::ToggleHelp => self.help = !self.help,
            Action::Escape => self.escape(),
            Action::OpenDetail if self.view == View::Talkers && self.detail.is_none() => {
                self.open_talker_row();
            }
            Action::CycleRollup => self.cycle_rollup(),
            Action::OpenDetail => {
                let shown = self.shown.clone();
                self.detail = self
                    .selected()
                    .zip(shown)
                    .and_then(|(target, s)| Detail::open(target, &s));
            }
            Action::NextView => {
                self.detail = None;
                self.view = match self.view {
                    View::Talkers => View::Flows,
                    View::Flows => View::Health,
                    View::Health => View::Talkers,
                };
            }
            Action::ShowView(view) => {
                self.detail = None;
                self.view = view;
            }
            Action::Move(by) => self.move_by(by),
            Action::Page(pages) => self.move_by(pages * self.page_rows() as isize),
            Action::Home => self.move_by(isize::MIN / 2),
            Action::End => self.move_by(isize::MAX / 2),
            Action::Sort(step) => {
                if let Some((table, columns)) = self.table() {
                    table.sort = (table.sort as isize + step).rem_euclid(columns as isize) as usize;
                }
            }
            Action::Reverse => {
                if let Some((table, _)) = self.table() {
                    table.descending = !table.descending;
                }
            }
            Action::StartFilter => self.prompt = Some(self.filter.text().to_owned()),
            Action::Input(c) => {
                if let Some(p) = &mut self.prompt {
                    p.push(c);
                }
            }
            Action::Backspace => {
                if let Some(p) = &mut self.prompt {
                    p.pop();
                }
            }
            Action::ApplyFilter => {
                if let Some(text) = self.prompt.take() {
                    self.filter = Query::new(&text);
                    self.talkers.selected = 0;
                    self.flows.selected = 0;
                }
            }
            Action::TogglePause => {
                self.paused = !self.paused;
                if !self.paused {
                    self.shown.clone_from(&self.latest);
                }
            }
            Action::ToggleUnits => {
                self.units = match self.units {
                    Units::Bits => Units::Bytes,
                    Units::Bytes => Units::Bits,
                };
            }
            Action::WriteSnapshot => {
                return if self.shown.is_some() {
                    Effect::WriteSnapshot
                } else {
                    self.status = Some(("nothing to write yet".into(), true));
                    Effect::None
                };
            }
            Action::ExcludeSelected => return self.exclude_selected(),
            Action::Snapshot(snapshot) => self.receive(snapshot),
            Action::CaptureFailed(message) => self.status = Some((message, true)),
            Action::CaptureEnded => self.ended = true,
            Action::Resize(w, h) => {
                self.size = (w, h);
            }
            Action::Status(message, error) => self.status = Some((message, error)),
            Action::Names(hosts) => self.names.set_hosts(hosts),
            Action::ToggleNames => self.toggle(Naming::toggle_hosts),
            Action::TogglePortNames => self.toggle(Naming::toggle_services),
        }
        Effect::None
    }

    /// Switches host or service names; says why not when they cannot be had.
    fn toggle(&mut self, switch: fn(&mut Naming) -> Result<(), &'static str>) {
        if let Err(why) = switch(&mut self.names) {
            self.status = Some((why.to_owned(), true));
        }
    }

    fn receive(&mut self, snapshot: Arc<Snapshot>) {
        if let Some(prev) = &self.latest {
            let sum = |s: &Snapshot, f: fn(&traffic_counter_capture::stats::WorkerStats) -> u64| {
                s.workers.iter().map(f).sum::<u64>()
            };
            let rejects = |s: &Snapshot| {
                s.filter
                    .rejects
                    .map_or(0, |r| r.vlan + r.non_ip + r.excluded + r.not_allowed)
            };
            self.trouble = Trouble {
                drops: sum(&snapshot, |w| w.ring_drops).saturating_sub(sum(prev, |w| w.ring_drops)),
                freezes: sum(&snapshot, |w| w.ring_freezes)
                    .saturating_sub(sum(prev, |w| w.ring_freezes)),
                rejects: rejects(&snapshot).saturating_sub(rejects(prev)),
            };
        }
        self.history.push(Record::of(&snapshot));
        if let Some(detail) = &mut self.detail {
            detail.receive(&snapshot);
        }
        self.can_exclude = snapshot.filter.kind == FilterKind::Ebpf;
        if !self.paused || self.shown.is_none() {
            self.shown = Some(snapshot.clone());
        }
        self.latest = Some(snapshot);
    }

    fn move_by(&mut self, by: isize) {
        let rows = self.row_count();
        if let Some((table, _)) = self.table() {
            let last = rows.saturating_sub(1) as isize;
            table.selected = (table.selected as isize).saturating_add(by).clamp(0, last) as usize;
        }
        self.refresh();
    }

    /// Recomputes the current table's rows: how many pass the filter, the selection kept
    /// inside them and on screen, and the visible window in order. O(n) plus a top-N
    /// selection, once per change rather than once per draw.
    fn refresh(&mut self) {
        let page = self.page_rows();
        let Some(s) = self.shown.clone() else {
            self.rows = [0, 0];
            self.talker_rows.clear();
            self.flow_rows.clear();
            return;
        };
        match self.view {
            View::Talkers if self.rolled.mode == Rollup::Groups => {
                self.rolled.derive(&s);
                let rows = rollup::group_rows(&s, self.filter.text());
                clamp(&mut self.talkers, rows.len(), page);
                self.rows[0] = rows.len();
                self.talker_rows = rows;
            }
            View::Talkers => {
                self.rolled.derive(&s);
                let (column, desc) = (self.talker_sort(), self.talkers.descending);
                let source = self.rolled.talkers(&s);
                let (total, window) = windowed(&mut self.talkers, page, |offset| {
                    let range = (offset, page);
                    rows::talker_window(
                        source,
                        &self.filter,
                        &self.names,
                        column,
                        desc,
                        range,
                        &mut self.keys,
                    )
                });
                self.rows[0] = total;
                self.talker_rows = window;
            }
            View::Flows => {
                let (column, desc) = (self.flow_sort(), self.flows.descending);
                let (total, window) = windowed(&mut self.flows, page, |offset| {
                    let range = (offset, page);
                    rows::flow_window(
                        &s.flows,
                        &self.filter,
                        &self.names,
                        column,
                        desc,
                        range,
                        &mut self.keys,
                    )
                });
                self.rows[1] = total;
                self.flow_rows = window;
            }
            View::Health => {}
        }
        let (column, desc) = (self.flow_sort(), self.flows.descending);
        if let Some(detail) = &mut self.detail
            && let Target::Talker(ip) = detail.target
        {
            let range = (0, page);
            let (total, window) = rows::flows_of(&s.flows, ip, column, desc, range, &mut self.keys);
            detail.flow_count = total;
            detail.flow_rows = window;
        }
    }

    /// Closes the innermost thing open: help, the prompt, the detail; else clears the filter.
    fn escape(&mut self) {
        if self.help {
            self.help = false;
        } else if self.prompt.is_some() {
            self.prompt = None;
        } else if self.detail.is_some() {
            self.detail = None;
        } else {
            self.filter = Query::default();
        }
    }

    /// `g`: the talkers table's next roll-up, from its first row.
    fn cycle_rollup(&mut self) {
        if self.view == View::Talkers && self.detail.is_none() {
            self.rolled.mode = self.rolled.mode.next();
            self.talkers.selected = 0;
            self.talkers.offset = 0;
        }
    }

    /// `Enter` on the talkers table: an address opens its detail; a prefix lists its
    /// addresses (the filter set to the prefix, back to one row per address).
    fn open_talker_row(&mut self) {
        let Some(s) = self.shown.clone() else { return };
        match self.rolled.mode {
            Rollup::Addresses => {
                self.detail = self.selected().and_then(|target| Detail::open(target, &s));
            }
            Rollup::Prefixes => {
                let at = self.talkers.selected.checked_sub(self.talkers.offset);
                let row = at.and_then(|at| self.talker_rows.get(at));
                if let Some(net) = row.and_then(|&i| self.rolled.prefixes.get(i)) {
                    let len = self.rolled.lens.of(net.ip);
                    self.filter = Query::new(&format!("{}/{len}", net.ip));
                    self.rolled.mode = Rollup::Addresses;
                    self.talkers.selected = 0;
                }
            }
            Rollup::Groups => {
                self.status = Some((
                    "a group has no detail: its rows are exact sums".into(),
                    false,
                ));
            }
        }
    }

    fn exclude_selected(&mut self) -> Effect {
        if !self.can_exclude {
            let kind = self
                .shown
                .as_ref()
                .map_or(FilterKind::None, |s| s.filter.kind);
            let why = match kind {
                FilterKind::Classic => {
                    "the classic-BPF fallback cannot change its lists while running"
                }
                FilterKind::Userspace => "a replay's filter keeps the rules it started with",
                _ => "no eBPF filter is attached (--filter none)",
            };
            self.status = Some((format!("cannot exclude: {why}"), true));
            return Effect::None;
        }
        if let Some(ip) = self.selected_address() {
            Effect::Exclude(ip)
        } else {
            self.status = Some((
                "select an address first (talkers or flows view)".into(),
                true,
            ));
            Effect::None
        }
    }
}

/// Takes a table's window at its offset; the same pass counts its rows. Only if keeping the
/// selection inside them moves the window is it taken again.
fn windowed(
    table: &mut TableState,
    page: usize,
    mut take: impl FnMut(usize) -> (usize, Vec<usize>),
) -> (usize, Vec<usize>) {
    let before = table.offset;
    let (total, window) = take(before);
    clamp(table, total, page);
    if table.offset == before {
        (total, window)
    } else {
        (total, take(table.offset).1)
    }
}

/// Keeps the selection inside `rows` and the window on the selection.
fn clamp(table: &mut TableState, rows: usize, page: usize) {
    table.selected = table.selected.min(rows.saturating_sub(1));
    scroll_to(table, page);
}

fn scroll_to(table: &mut TableState, page: usize) {
    if table.selected < table.offset {
        table.offset = table.selected;
    } else if table.selected >= table.offset + page {
        table.offset = table.selected + 1 - page;
    }
}

#[cfg(test)]
mod tests;
