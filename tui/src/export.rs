//! What the `w` key writes: the view as it stands, as JSON in the headless schema (rows that
//! pass the filter, in the current order) or as CSV of the current table.
//!
//! Files are named `traffic-counter-YYYYMMDD-HHMMSS.json` (UTC, from the snapshot's time),
//! with `-2`, `-3`... when that name exists, and written atomically without following links.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::parse::proto;

use crate::app::rows::{flow_window, talker_window};
use crate::app::{App, View};
use crate::cli::SnapshotFormat;
use crate::names::NameMap;
use crate::snapshot_file::{self, FileAccess};

/// The shown snapshot, restricted to the rows passing the filter, in the table's order.
pub fn view_snapshot(app: &App) -> Option<Snapshot> {
    let shown = app.shown.as_ref()?;
    let mut s = (**shown).clone();
    let all = (0, usize::MAX);
    let mut keys = Vec::new();
    let (talker_sort, talker_desc) = (app.talker_sort(), app.talkers.descending);
    let (_, talkers) = talker_window(
        &shown.talkers,
        &app.filter,
        &app.names,
        talker_sort,
        talker_desc,
        all,
        &mut keys,
    );
    s.talkers = talkers
        .into_iter()
        .map(|i| shown.talkers[i].clone())
        .collect();
    let (flow_sort, flow_desc) = (app.flow_sort(), app.flows.descending);
    let (_, flows) = flow_window(
        &shown.flows,
        &app.filter,
        &app.names,
        flow_sort,
        flow_desc,
        all,
        &mut keys,
    );
    s.flows = flows.into_iter().map(|i| shown.flows[i].clone()).collect();
    Some(s)
}

/// The current table as CSV: talkers, flows, or the workers of the health view.
pub fn csv(app: &App, s: &Snapshot) -> String {
    let mut out = String::new();
    match app.view {
        View::Talkers => {
            out.push_str("ip,packets_sent,bytes_sent,packets_received,bytes_received,sent_bps_2s,received_bps_2s,sent_bps_10s,received_bps_10s,sent_bps_40s,received_bps_40s\n");
            for t in &s.talkers {
                let _ = write!(
                    out,
                    "{},{},{},{},{}",
                    t.ip, t.packets_sent, t.bytes_sent, t.packets_received, t.bytes_received
                );
                for w in 0..3 {
                    let _ = write!(
                        out,
                        ",{:.0},{:.0}",
                        t.sent_bytes_per_sec.get(w) * 8.0,
                        t.received_bytes_per_sec.get(w) * 8.0
                    );
                }
                out.push('\n');
            }
        }
        View::Flows => {
            out.push_str("proto,a_ip,a_port,b_ip,b_port,packets_a_to_b,bytes_a_to_b,packets_b_to_a,bytes_b_to_a\n");
            for f in &s.flows {
                let port = |p: Option<u16>| p.map_or_else(String::new, |p| p.to_string());
                let name = proto::name(f.proto).map_or_else(|| f.proto.to_string(), str::to_owned);
                let _ = writeln!(
                    out,
                    "{name},{},{},{},{},{},{},{},{}",
                    f.a_ip,
                    port(f.a_port),
                    f.b_ip,
                    port(f.b_port),
                    f.packets_a_to_b,
                    f.bytes_a_to_b,
                    f.packets_b_to_a,
                    f.bytes_b_to_a
                );
            }
        }
        View::Health => {
            out.push_str("id,cpu,packets,bytes,ring_drops,ring_freezes\n");
            for w in &s.workers {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    w.id, w.cpu, w.packets, w.bytes, w.ring_drops, w.ring_freezes
                );
            }
        }
    }
    out
}

/// Writes the current view into `dir`; returns the path written.
pub fn write_view(
    app: &App,
    dir: &Path,
    format: SnapshotFormat,
    access: FileAccess,
) -> anyhow::Result<PathBuf> {
    let s = view_snapshot(app).context("no snapshot yet")?;
    let ext = match format {
        SnapshotFormat::Json => "json",
        SnapshotFormat::Csv => "csv",
    };
    let stamp = humantime::format_rfc3339_seconds(s.taken_at).to_string();
    let stamp: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let base = format!(
        "traffic-counter-{}-{}",
        &stamp[..8.min(stamp.len())],
        &stamp[8.min(stamp.len())..]
    );
    let mut path = dir.join(format!("{base}.{ext}"));
    let mut n = 2;
    while std::fs::symlink_metadata(&path).is_ok() {
        path = dir.join(format!("{base}-{n}.{ext}"));
        n += 1;
    }
    match format {
        SnapshotFormat::Json => {
            let none = NameMap::default();
            let names = if app.names.show_hosts {
                app.names.hosts()
            } else {
                &none
            };
            snapshot_file::write_snapshot(&path, &s, None, names, access)?;
        }
        SnapshotFormat::Csv => snapshot_file::write_atomic(&path, csv(app, &s).as_bytes(), access)
            .with_context(|| format!("writing {}", path.display()))?,
    }
    Ok(path)
}
