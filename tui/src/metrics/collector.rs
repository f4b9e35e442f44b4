//! Turns the latest snapshot into metric families, at scrape time.
//!
//! Nothing here runs per packet: the capture already counted, and a scrape reads one
//! immutable `Arc<Snapshot>`. Every series carries the `interface` label, and the number of
//! series is bounded by configuration, never by traffic: [`budget`] states the bound and the
//! flood test holds the exporter to it.

use std::time::SystemTime;

use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::FilterKind;

use super::family::{Family, Kind, Value};
use super::top::Row;

/// Series that do not grow with workers, talkers or groups (see [`budget`]).
pub const FIXED_SERIES: usize = 21;

/// The most series one scrape can hold: [`FIXED_SERIES`] + 3 per worker (ring drops, ring
/// freezes, packets read) + 4 per exported talker (packets and bytes, sent and received) +
/// 4 per group (likewise).
pub fn budget(workers: usize, top: usize, groups: usize) -> usize {
    FIXED_SERIES + 3 * workers + 4 * top + 4 * groups
}

/// What one scrape encodes besides the snapshot.
pub struct Extras<'a> {
    /// The interface, for the `interface` label before the first snapshot arrives.
    pub interface: &'a str,
    /// The exported talkers.
    pub top: &'a [Row],
    /// Bytes counted / bytes the interface saw, when known.
    pub coverage: Option<f64>,
    /// When the scrape happens.
    pub now: SystemTime,
}

type Labels = Vec<(&'static str, String)>;

/// Builds label sets that start with the `interface` label.
struct Labeller<'a> {
    interface: &'a str,
}

impl Labeller<'_> {
    fn with(&self, pairs: &[(&'static str, String)]) -> Labels {
        let mut labels = vec![("interface", self.interface.to_owned())];
        labels.extend_from_slice(pairs);
        labels
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every family for `snapshot` (or only the build info before the first one).
pub fn families(snapshot: Option<&Snapshot>, extras: &Extras<'_>) -> Vec<Family> {
    let interface = snapshot.map_or(extras.interface, |s| s.interface.as_str());
    let l = Labeller { interface };
    let mut build = Family::new(
        "traffic_counter_build",
        "The running traffic-counter's version",
        Kind::Info,
    );
    build.push(
        l.with(&[("version", env!("CARGO_PKG_VERSION").to_owned())]),
        Value::Int(1),
    );
    let Some(s) = snapshot else {
        return vec![build];
    };
    let mut out = Vec::with_capacity(24);
    out.extend(traffic(s, &l));
    out.extend(talkers(extras.top, &l));
    out.extend(groups(s, &l));
    out.extend(health(s, &l));
    out.extend(tables(s, &l));
    let mut filter = Family::new(
        "traffic_counter_filter",
        "The socket filter attached: ebpf, classic or none",
        Kind::Info,
    );
    let kind = match s.filter.kind {
        FilterKind::Ebpf => "ebpf",
        FilterKind::Classic => "classic",
        FilterKind::Userspace => "userspace",
        FilterKind::None => "none",
    };
    filter.push(l.with(&[("kind", kind.to_owned())]), Value::Int(1));
    let mut coverage = Family::new(
        "traffic_counter_coverage_ratio",
        "Bytes counted as IP traffic / bytes the interface's own counters saw, over the last \
         10 s; below 1 when something hides traffic (drops, filter rejects, non-IP frames)",
        Kind::Gauge,
    );
    if let Some(ratio) = extras.coverage {
        coverage.push(l.with(&[]), Value::Float(ratio));
    }
    let mut start = Family::new(
        "traffic_counter_start_time_seconds",
        "When capture started, in seconds since the Unix epoch",
        Kind::Gauge,
    );
    start.push(l.with(&[]), Value::Float(secs(s.started_at)));
    let mut age = Family::new(
        "traffic_counter_snapshot_age_seconds",
        "Seconds between the snapshot these values come from and this scrape",
        Kind::Gauge,
    );
    let age_secs = extras
        .now
        .duration_since(s.taken_at)
        .map_or(0.0, |d| d.as_secs_f64());
    age.push(l.with(&[]), Value::Float(age_secs));
    out.extend([filter, build, coverage, start, age]);
    out
}

fn traffic(s: &Snapshot, l: &Labeller<'_>) -> [Family; 2] {
    let mut packets = Family::new(
        "traffic_counter_packets",
        "IP packets counted",
        Kind::Counter,
    );
    packets.push(l.with(&[]), Value::Int(s.totals.packets));
    let mut bytes = Family::new(
        "traffic_counter_bytes",
        "Bytes on the wire of the IP packets counted",
        Kind::Counter,
    );
    bytes.push(l.with(&[]), Value::Int(s.totals.bytes));
    [packets, bytes]
}

/// Adds the sent and received series of one row to a packets and a bytes family.
fn directions(
    families: &mut [Family; 2],
    labels: &dyn Fn(&'static str) -> Labels,
    sent: (u64, u64),
    received: (u64, u64),
) {
    for (direction, (packets, bytes)) in [("sent", sent), ("received", received)] {
        families[0].push(labels(direction), Value::Int(packets));
        families[1].push(labels(direction), Value::Int(bytes));
    }
}

fn talkers(top: &[Row], l: &Labeller<'_>) -> [Family; 2] {
    let mut out = [
        Family::new(
            "traffic_counter_talker_packets",
            "Packets of the top talkers (--metrics-top), by direction",
            Kind::Counter,
        ),
        Family::new(
            "traffic_counter_talker_bytes",
            "Bytes of the top talkers (--metrics-top), by direction",
            Kind::Counter,
        ),
    ];
    for row in top {
        let labels = |d: &'static str| l.with(&[("ip", row.label()), ("direction", d.into())]);
        directions(
            &mut out,
            &labels,
            (row.packets_sent, row.bytes_sent),
            (row.packets_received, row.bytes_received),
        );
    }
    out
}

fn groups(s: &Snapshot, l: &Labeller<'_>) -> [Family; 2] {
    let mut out = [
        Family::new(
            "traffic_counter_group_packets",
            "Packets from (sent) or to (received) an address in the named group, every packet",
            Kind::Counter,
        ),
        Family::new(
            "traffic_counter_group_bytes",
            "Bytes from (sent) or to (received) an address in the named group, every packet",
            Kind::Counter,
        ),
    ];
    for g in &s.groups {
        let labels =
            |d: &'static str| l.with(&[("group", g.name.clone()), ("direction", d.into())]);
        directions(
            &mut out,
            &labels,
            (g.packets_sent, g.bytes_sent),
            (g.packets_received, g.bytes_received),
        );
    }
    out
}

fn health(s: &Snapshot, l: &Labeller<'_>) -> [Family; 6] {
    let mut rejects = Family::new(
        "traffic_counter_filter_rejects",
        "Frames the eBPF socket filter rejected, by reason (absent under classic BPF)",
        Kind::Counter,
    );
    if let Some(r) = s.filter.rejects {
        for (reason, n) in [
            ("vlan", r.vlan),
            ("non_ip", r.non_ip),
            ("excluded", r.excluded),
            ("not_allowed", r.not_allowed),
        ] {
            rejects.push(l.with(&[("reason", reason.into())]), Value::Int(n));
        }
    }
    let mut errors = Family::new(
        "traffic_counter_parse_errors",
        "Frames read but not counted as IP traffic, by reason",
        Kind::Counter,
    );
    let e = &s.parse_errors;
    for (reason, n) in [
        ("non_ip", e.non_ip),
        ("truncated", e.truncated),
        ("bad_header", e.bad_header),
    ] {
        errors.push(l.with(&[("reason", reason.into())]), Value::Int(n));
    }
    let mut drops = Family::new(
        "traffic_counter_ring_drops",
        "Frames the kernel dropped because the worker's ring was full",
        Kind::Counter,
    );
    let mut freezes = Family::new(
        "traffic_counter_ring_freezes",
        "Times the worker's ring queue froze for lack of a free block",
        Kind::Counter,
    );
    let mut read = Family::new(
        "traffic_counter_worker_packets",
        "Packets the worker read from its ring, IP or not (a GRO/GSO super-frame as its segments)",
        Kind::Counter,
    );
    let mut corrupt = Family::new(
        "traffic_counter_ring_corrupt_blocks",
        "Ring blocks whose frame headers or offsets ran past the block, over all workers",
        Kind::Counter,
    );
    corrupt.push(
        l.with(&[]),
        Value::Int(s.workers.iter().map(|w| w.corrupt_blocks).sum()),
    );
    for w in &s.workers {
        let labels = l.with(&[("worker", w.id.to_string())]);
        drops.push(labels.clone(), Value::Int(w.ring_drops));
        freezes.push(labels.clone(), Value::Int(w.ring_freezes));
        read.push(labels, Value::Int(w.packets));
    }
    [rejects, errors, drops, freezes, read, corrupt]
}

fn tables(s: &Snapshot, l: &Labeller<'_>) -> [Family; 3] {
    let mut evicted = Family::new(
        "traffic_counter_evicted",
        "Entries evicted from a bounded table (their counts live on in the totals)",
        Kind::Counter,
    );
    let mut entries = Family::new(
        "traffic_counter_table_entries",
        "Entries in a bounded table",
        Kind::Gauge,
    );
    let mut capacity = Family::new(
        "traffic_counter_table_capacity",
        "Most entries a bounded table holds",
        Kind::Gauge,
    );
    let mut tables = vec![(
        "talkers",
        s.evicted_talkers.entries,
        s.talkers.len(),
        s.max_talkers,
    )];
    if s.flows_enabled {
        tables.push(("flows", s.evicted_flows.entries, s.flows.len(), s.max_flows));
    }
    for (table, gone, len, max) in tables {
        let labels = l.with(&[("table", table.into())]);
        evicted.push(labels.clone(), Value::Int(gone));
        entries.push(labels.clone(), Value::Int(len as u64));
        capacity.push(labels, Value::Int(max as u64));
    }
    [evicted, entries, capacity]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use crate::metrics::family::series;

    #[test]
    fn every_series_has_the_interface_label_and_the_fixed_count_holds() {
        let mut s = fixture::small();
        s.filter.kind = FilterKind::Ebpf;
        s.filter.rejects = Some(traffic_counter_capture::snapshot::Rejects::default());
        s.flows_enabled = true;
        let extras = Extras {
            interface: "ignored",
            top: &[],
            coverage: Some(0.9),
            now: SystemTime::now(),
        };
        let all = families(Some(&s), &extras);
        for f in &all {
            for sample in &f.samples {
                assert_eq!(
                    sample.labels[0],
                    ("interface", s.interface.clone()),
                    "{}",
                    f.name
                );
            }
        }
        // No talkers and no groups: exactly the fixed series plus three per worker.
        assert_eq!(series(&all), budget(s.workers.len(), 0, 0));
        let before = families(None, &extras);
        assert_eq!(series(&before), 1);
        assert_eq!(before[0].samples[0].labels[0].1, "ignored");
    }
}
