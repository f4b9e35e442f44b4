//! How much of the interface's traffic the capture counted: `traffic_counter_coverage_ratio`.
//!
//! The interface's own counters (`/sys/class/net/IF/statistics/rx_bytes` + `tx_bytes`) see
//! every frame, whatever the socket filter, the rings or the parser did with it. Comparing the
//! bytes counted as IP traffic with them over the same stretch of time tells an operator that
//! something hides traffic: ring drops, filter rejects, non-IP frames, or a capture that
//! stalled. The ratio is taken over the last [`WINDOW`] of snapshots; one-tick windows would
//! be noisy because the snapshot and the sysfs read are not taken at the same instant.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The stretch of time the ratio covers.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One observation: when, bytes counted by the capture, bytes the interface saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Point {
    at: SystemTime,
    counted: u64,
    seen: u64,
}

/// The last [`WINDOW`] of observations, oldest first.
#[derive(Debug, Default)]
pub struct Coverage {
    points: VecDeque<Point>,
}

impl Coverage {
    /// Records the capture's byte total and the interface's at the snapshot taken `at`.
    pub fn observe(&mut self, at: SystemTime, counted: u64, seen: u64) {
        if self.points.back().is_some_and(|p| p.at >= at) {
            return;
        }
        self.points.push_back(Point { at, counted, seen });
        // Keep the newest point that is at least WINDOW old as the base, drop older ones.
        while self.points.len() > 2
            && self
                .points
                .get(1)
                .and_then(|p| at.duration_since(p.at).ok())
                .is_some_and(|age| age >= WINDOW)
        {
            self.points.pop_front();
        }
    }

    /// Bytes counted divided by bytes the interface saw over the window; `None` until two
    /// observations exist or when the interface saw nothing.
    pub fn ratio(&self) -> Option<f64> {
        let (first, last) = (self.points.front()?, self.points.back()?);
        let seen = last.seen.checked_sub(first.seen)?;
        let counted = last.counted.checked_sub(first.counted)?;
        (seen > 0).then(|| counted as f64 / seen as f64)
    }
}

/// Bytes received plus sent by `interface`, from its sysfs counters.
pub fn interface_bytes(interface: &str) -> Option<u64> {
    let dir = PathBuf::from("/sys/class/net")
        .join(interface)
        .join("statistics");
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(read("rx_bytes")? + read("tx_bytes")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_ratio_covers_the_last_window() {
        let mut c = Coverage::default();
        assert_eq!(c.ratio(), None);
        c.observe(at(0), 0, 0);
        assert_eq!(c.ratio(), None);
        c.observe(at(1), 50, 100);
        assert_eq!(c.ratio(), Some(0.5));
        // Full coverage from here on; the early half-covered second ages out of the window.
        for s in 2..=30 {
            c.observe(at(s), 50 + (s - 1) * 100, s * 100);
        }
        assert_eq!(c.ratio(), Some(1.0));
        assert!(c.points.len() <= 12, "{}", c.points.len());
        // A repeated snapshot changes nothing; a quiet interface gives no ratio.
        c.observe(at(30), 0, 0);
        assert_eq!(c.ratio(), Some(1.0));
        let mut quiet = Coverage::default();
        quiet.observe(at(0), 5, 7);
        quiet.observe(at(1), 5, 7);
        assert_eq!(quiet.ratio(), None);
    }

    #[test]
    fn loopback_has_counters() {
        assert!(interface_bytes("lo").is_some());
        assert_eq!(interface_bytes("no-such-if0"), None);
    }
}
