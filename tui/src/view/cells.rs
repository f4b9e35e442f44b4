//! The text of every table cell. Addresses, endpoints, protocols, rates and sizes are written
//! here and nowhere else, so changing how one reads (a host name beside an address, a service
//! name for a port) is one change that every table, width and stacked layout follows.

use std::net::IpAddr;
use std::time::SystemTime;

use traffic_counter_capture::Snapshot;
use traffic_counter_capture::parse::proto;
use traffic_counter_capture::snapshot::{Flow, Talker};

use traffic_counter_capture::groups::GroupTotals;

use crate::app::App;
use crate::app::rollup::{PrefixLens, Rollup};
use crate::columns::{FlowColumn, GroupColumn, TalkerColumn};
use crate::names::Naming;
use crate::units::{self, Units};

/// What cell text depends on besides the row: units, names, the snapshot's time, the total a
/// share is of.
pub(super) struct Cells<'a> {
    units: Units,
    names: &'a Naming,
    now: SystemTime,
    /// Bytes every talker's share is of: each packet counts once sent and once received.
    all_bytes: f64,
    /// Bytes every flow's share is of: each packet counts in one flow.
    flow_bytes: f64,
    /// Talker rows are networks of these lengths (the prefix roll-up).
    prefixes: Option<PrefixLens>,
}

impl<'a> Cells<'a> {
    /// The cell context for drawing `s` in `app`.
    pub(super) fn new(app: &'a App, s: &Snapshot) -> Self {
        Self {
            units: app.units,
            names: &app.names,
            now: s.taken_at,
            all_bytes: (2 * s.totals.bytes).max(1) as f64,
            flow_bytes: s.totals.bytes.max(1) as f64,
            prefixes: (app.rolled.mode == Rollup::Prefixes).then_some(app.rolled.lens),
        }
    }

    /// An address as a table shows it: its host name when names are on and one is known
    /// (iftop's way), else the address.
    pub(super) fn address(&self, ip: IpAddr) -> String {
        self.names
            .host(ip)
            .map_or_else(|| ip.to_string(), host_cell)
    }

    /// An address with its port under protocol `proto`, each named when names are on:
    /// `198.18.0.1:53`, `[2001:db8::1]:53` (an IPv6 address is bracketed, a name is not),
    /// `ns1.lab.example:domain`.
    pub(super) fn endpoint(&self, ip: IpAddr, port: Option<u16>, proto: u8) -> String {
        let host = self.names.host(ip);
        let address = host.map_or_else(|| ip.to_string(), host_cell);
        let Some(p) = port else { return address };
        let port = self
            .names
            .service(proto, p)
            .map_or_else(|| p.to_string(), str::to_owned);
        if ip.is_ipv6() && host.is_none() {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        }
    }

    /// A protocol's name, or its number.
    #[allow(
        clippy::unused_self,
        reason = "service names will depend on the cell context"
    )]
    pub(super) fn proto(&self, p: u8) -> String {
        proto::name(p).map_or_else(|| p.to_string(), str::to_owned)
    }

    /// A rate cell in the chosen units.
    pub(super) fn rate(&self, bytes_per_sec: f64) -> String {
        units::rate_cell(bytes_per_sec, self.units)
    }

    /// Time since a packet.
    pub(super) fn ago(&self, then: traffic_counter_capture::snapshot::Timestamp) -> String {
        super::ago(then, self.now)
    }

    /// One talker cell.
    pub(super) fn talker(&self, column: TalkerColumn, t: &Talker) -> String {
        match column {
            TalkerColumn::Address => match self.prefixes {
                Some(lens) => format!("{}/{}", t.ip, lens.of(t.ip)),
                None => self.address(t.ip),
            },
            TalkerColumn::Sent(w) => self.rate(t.sent_bytes_per_sec.get(w)),
            TalkerColumn::Received(w) => self.rate(t.received_bytes_per_sec.get(w)),
            TalkerColumn::Packets => {
                units::count_cell((t.packets_sent + t.packets_received) as f64)
            }
            TalkerColumn::Bytes => units::bytes_cell(t.bytes_sent + t.bytes_received),
            TalkerColumn::Share => share((t.bytes_sent + t.bytes_received) as f64 / self.all_bytes),
            TalkerColumn::LastSeen => self.ago(t.last_seen),
        }
    }

    /// One group cell; `rates` are its bytes per second sent and received.
    pub(super) fn group(&self, column: GroupColumn, g: &GroupTotals, rates: (f64, f64)) -> String {
        match column {
            GroupColumn::Name => g.name.clone(),
            GroupColumn::Sent => self.rate(rates.0),
            GroupColumn::Received => self.rate(rates.1),
            GroupColumn::Packets => units::count_cell((g.packets_sent + g.packets_received) as f64),
            GroupColumn::BytesSent => units::bytes_cell(g.bytes_sent),
            GroupColumn::BytesReceived => units::bytes_cell(g.bytes_received),
            GroupColumn::Share => share((g.bytes_sent + g.bytes_received) as f64 / self.all_bytes),
        }
    }

    /// One flow cell.
    pub(super) fn flow(&self, column: FlowColumn, f: &Flow) -> String {
        match column {
            FlowColumn::Proto => self.proto(f.proto),
            FlowColumn::A => self.endpoint(f.a_ip, f.a_port, f.proto),
            FlowColumn::B => self.endpoint(f.b_ip, f.b_port, f.proto),
            FlowColumn::AToB(w) => self.rate(f.a_to_b_bytes_per_sec.get(w)),
            FlowColumn::BToA(w) => self.rate(f.b_to_a_bytes_per_sec.get(w)),
            FlowColumn::Packets => units::count_cell((f.packets_a_to_b + f.packets_b_to_a) as f64),
            FlowColumn::Bytes => units::bytes_cell(f.bytes_a_to_b + f.bytes_b_to_a),
            FlowColumn::Share => share((f.bytes_a_to_b + f.bytes_b_to_a) as f64 / self.flow_bytes),
            FlowColumn::LastSeen => self.ago(f.last_seen),
        }
    }
}

/// Most characters of a host name a cell shows: an endpoint with its port still fits the
/// widest endpoint column.
const HOST_CELL: usize = 32;

/// A host name cut to [`HOST_CELL`] characters, keeping its most specific labels (the left)
/// and ending in `…` when cut.
fn host_cell(name: &str) -> String {
    if name.chars().count() <= HOST_CELL {
        name.to_owned()
    } else {
        let mut cut: String = name.chars().take(HOST_CELL - 1).collect();
        cut.push('…');
        cut
    }
}

/// Width of a share's bar, in cells.
const BAR: usize = 6;

/// A share of the total as a bar of eighth blocks and its percentage, as iftop draws a row's
/// share behind it: `████▌   75.3%`. The number says what the bar shows, so neither colour
/// nor the bar alone carries it.
pub(super) fn share(fraction: f64) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (fraction * (BAR * 8) as f64).round() as usize;
    let mut bar: String = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        bar.push(PARTS[eighths % 8]);
    }
    let pad = BAR - bar.chars().count();
    format!("{bar}{} {:>5.1}%", " ".repeat(pad), fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_bars_grow_by_eighths_and_keep_their_width() {
        let cells: Vec<String> = [0.0, 0.01, 0.1, 0.403, 0.5, 0.999, 1.0, 2.0, f64::NAN]
            .iter()
            .map(|&f| format!("|{}|", share(f)))
            .collect();
        insta::assert_snapshot!(cells.join("\n"));
        assert!(cells.iter().all(|c| c.chars().count() == 15));
    }
}
