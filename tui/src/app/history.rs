//! Rates over the last minutes, for the charts: the snapshot's own windows end at 40 s, so the
//! app keeps a longer, bounded history of its own, fed by each snapshot it receives.
//!
//! The history stores cumulative counters (which only grow) at most once per
//! [`RESOLUTION`], and derives each rate from two neighbouring records, so a rate is exact
//! over its interval whatever the snapshot cadence, and a skipped snapshot loses nothing.
//! It holds at most [`SPAN`] of records; older ones are dropped.

use std::collections::VecDeque;
use std::time::Duration;

use traffic_counter_capture::Snapshot;

/// Time between kept records.
pub const RESOLUTION: Duration = Duration::from_secs(1);
/// How far back the history goes.
pub const SPAN: Duration = Duration::from_secs(600);

/// Cumulative counters of one capture worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Packets it counted.
    pub packets: u64,
    /// Frames its ring dropped.
    pub drops: u64,
}

/// Cumulative counters at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Seconds since capture started (the snapshot's `duration`).
    pub at: f64,
    /// IP bytes counted.
    pub bytes: u64,
    /// IP packets counted.
    pub packets: u64,
    /// Per worker, in the snapshot's order.
    pub workers: Vec<WorkerCounts>,
    /// Per `--group`, in the snapshot's order: bytes sent and received.
    pub groups: Vec<(u64, u64)>,
}

impl Record {
    /// The counters a snapshot carries.
    pub fn of(s: &Snapshot) -> Self {
        Self {
            at: s.duration.as_secs_f64(),
            bytes: s.totals.bytes,
            packets: s.totals.packets,
            workers: s
                .workers
                .iter()
                .map(|w| WorkerCounts {
                    packets: w.packets,
                    drops: w.ring_drops,
                })
                .collect(),
            groups: s
                .groups
                .iter()
                .map(|g| (g.bytes_sent, g.bytes_received))
                .collect(),
        }
    }
}

/// A rate series: (seconds since capture started, value per second), oldest first.
pub type Series = Vec<(f64, f64)>;

/// The bounded history of cumulative counters.
#[derive(Clone, Debug, Default)]
pub struct History {
    records: VecDeque<Record>,
}

impl History {
    /// Adds a snapshot's counters, unless the last record is less than [`RESOLUTION`] older.
    /// A snapshot from before the last record (a new capture) starts the history again.
    pub fn push(&mut self, record: Record) {
        if let Some(last) = self.records.back() {
            if record.at < last.at || record.bytes < last.bytes {
                self.records.clear();
            } else if record.at - last.at < RESOLUTION.as_secs_f64() {
                return;
            }
        }
        let oldest = record.at - SPAN.as_secs_f64();
        self.records.push_back(record);
        while self.records.front().is_some_and(|r| r.at < oldest) {
            self.records.pop_front();
        }
    }

    /// Records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is kept yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The per-second rate of `value` between each pair of neighbouring records up to `until`
    /// seconds, stamped at the later record.
    fn rates(&self, until: f64, value: impl Fn(&Record) -> u64) -> Series {
        let mut out = Vec::with_capacity(self.records.len());
        let mut previous: Option<&Record> = None;
        for r in self.records.iter().take_while(|r| r.at <= until) {
            if let Some(p) = previous {
                let dt = r.at - p.at;
                if dt > 0.0 {
                    out.push((r.at, value(r).saturating_sub(value(p)) as f64 / dt));
                }
            }
            previous = Some(r);
        }
        out
    }

    /// Bytes per second, up to `until`.
    pub fn bytes_per_sec(&self, until: f64) -> Series {
        self.rates(until, |r| r.bytes)
    }

    /// Packets per second, up to `until`.
    pub fn packets_per_sec(&self, until: f64) -> Series {
        self.rates(until, |r| r.packets)
    }

    /// One worker's packets per second, up to `until`.
    pub fn worker_packets_per_sec(&self, worker: usize, until: f64) -> Series {
        self.rates(until, |r| r.workers.get(worker).map_or(0, |w| w.packets))
    }

    /// One group's bytes per second sent and received between the last two records up to
    /// `until`: (0, 0) until there are two.
    pub fn group_rates(&self, group: usize, until: f64) -> (f64, f64) {
        let sent = self.rates(until, |r| r.groups.get(group).map_or(0, |g| g.0));
        let received = self.rates(until, |r| r.groups.get(group).map_or(0, |g| g.1));
        (
            sent.last().map_or(0.0, |p| p.1),
            received.last().map_or(0.0, |p| p.1),
        )
    }

    /// One worker's ring drops per second, up to `until`.
    pub fn worker_drops_per_sec(&self, worker: usize, until: f64) -> Series {
        self.rates(until, |r| r.workers.get(worker).map_or(0, |w| w.drops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: f64, bytes: u64) -> Record {
        Record {
            at,
            bytes,
            packets: bytes / 100,
            workers: vec![WorkerCounts {
                packets: bytes / 100,
                drops: bytes / 1000,
            }],
            groups: vec![(bytes / 2, bytes / 4)],
        }
    }

    #[test]
    fn rates_come_from_neighbouring_records_at_one_second_resolution() {
        let mut h = History::default();
        h.push(record(1.0, 0));
        h.push(record(1.5, 400)); // under the resolution: skipped, nothing lost
        h.push(record(2.0, 1000));
        h.push(record(4.0, 5000));
        assert_eq!(h.len(), 3);
        assert_eq!(h.bytes_per_sec(10.0), vec![(2.0, 1000.0), (4.0, 2000.0)]);
        assert_eq!(h.packets_per_sec(10.0), vec![(2.0, 10.0), (4.0, 20.0)]);
        assert_eq!(
            h.worker_drops_per_sec(0, 10.0),
            vec![(2.0, 1.0), (4.0, 2.0)]
        );
        assert_eq!(
            h.worker_packets_per_sec(3, 10.0),
            vec![(2.0, 0.0), (4.0, 0.0)]
        );
        // A paused view draws only up to the snapshot it shows.
        assert_eq!(h.bytes_per_sec(2.0), vec![(2.0, 1000.0)]);
    }

    #[test]
    fn the_history_is_bounded_and_restarts_with_a_new_capture() {
        let mut h = History::default();
        for s in 0..2000u64 {
            h.push(record(s as f64, s * 10));
        }
        assert_eq!(h.len(), SPAN.as_secs() as usize + 1);
        h.push(record(3.0, 5));
        assert_eq!(h.len(), 1);
    }
}
