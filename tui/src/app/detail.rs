//! One talker's or one flow's detail (`Enter`): which row it follows and its rate history.
//!
//! A snapshot carries only each row's rates over the last 2, 10 and 40 s, so opening a detail
//! seeds its chart from those windows (the average over 40..10 s ago, 10..2 s ago and the last
//! 2 s, each derived from the windows' sums), and from then on every snapshot adds the rate
//! between it and the one before, from the row's cumulative bytes. Only the open detail keeps
//! a history, bounded like the totals' history.

use std::collections::VecDeque;
use std::net::IpAddr;

use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::{Flow, Talker, WindowRates};

use super::history::{RESOLUTION, SPAN};

/// A flow's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// IP protocol.
    pub proto: u8,
    /// The initiator and its port.
    pub a: (IpAddr, Option<u16>),
    /// The responder and its port.
    pub b: (IpAddr, Option<u16>),
}

impl FlowKey {
    /// The key of a flow row.
    pub fn of(f: &Flow) -> Self {
        Self {
            proto: f.proto,
            a: (f.a_ip, f.a_port),
            b: (f.b_ip, f.b_port),
        }
    }

    /// Whether `f` is this flow.
    pub fn matches(&self, f: &Flow) -> bool {
        *self == Self::of(f)
    }
}

/// What a detail follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One address.
    Talker(IpAddr),
    /// One conversation.
    Flow(FlowKey),
}

/// One point of a detail's chart: seconds since capture started, and bytes per second out
/// (sent, or a to b) and in (received, or b to a).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Seconds since capture started.
    pub at: f64,
    /// Bytes per second sent (talker) or from a to b (flow).
    pub out: f64,
    /// Bytes per second received (talker) or from b to a (flow).
    pub back: f64,
}

/// The open detail.
#[derive(Clone, Debug, PartialEq)]
pub struct Detail {
    /// What it follows.
    pub target: Target,
    /// Its rates over time, oldest first.
    pub points: VecDeque<Point>,
    /// Cumulative (time, bytes out, bytes in) at the last snapshot that had the row.
    last: Option<(f64, u64, u64)>,
    /// Indexes of the talker's flows in the shown snapshot, ordered like the flows view
    /// (kept by the app's refresh).
    pub flow_rows: Vec<usize>,
    /// How many flows the talker has in the shown snapshot.
    pub flow_count: usize,
}

/// A row's cumulative bytes out and in, and its window rates out and in.
type Counters = (u64, u64, WindowRates, WindowRates);

fn talker_counters(t: &Talker) -> Counters {
    (
        t.bytes_sent,
        t.bytes_received,
        t.sent_bytes_per_sec,
        t.received_bytes_per_sec,
    )
}

fn flow_counters(f: &Flow) -> Counters {
    (
        f.bytes_a_to_b,
        f.bytes_b_to_a,
        f.a_to_b_bytes_per_sec,
        f.b_to_a_bytes_per_sec,
    )
}

/// Averages over 40..10 s ago, 10..2 s ago and the last 2 s from the three window rates, as
/// steps ending at `now`; windows are cut to the time capture has run, as the capture cuts them.
fn seed(now: f64, out: WindowRates, back: WindowRates) -> Vec<Point> {
    let lengths = [2.0f64, 10.0, 40.0].map(|w| w.min(now));
    let sums = |r: WindowRates| [0, 1, 2].map(|w| r.get(w) * lengths[w]);
    let (o, b) = (sums(out), sums(back));
    let mut points = Vec::new();
    // Oldest segment first: from `lengths[w]` to `lengths[w - 1]` (or 0) seconds ago, its
    // bytes the longer window's sum less the shorter one's.
    for w in (0..3).rev() {
        let end = if w == 0 { 0.0 } else { lengths[w - 1] };
        let start = lengths[w];
        if start <= end {
            continue;
        }
        let part = |s: [f64; 3]| {
            let rest = if w == 0 { 0.0 } else { s[w - 1] };
            ((s[w] - rest) / (start - end)).max(0.0)
        };
        for at in [now - start, now - end] {
            points.push(Point {
                at,
                out: part(o),
                back: part(b),
            });
        }
    }
    points
}

impl Detail {
    /// Opens the detail of `target` as `s` shows it, or `None` if `s` has no such row.
    pub fn open(target: Target, s: &Snapshot) -> Option<Self> {
        let counters = counters(target, s)?;
        let now = s.duration.as_secs_f64();
        Some(Self {
            target,
            points: seed(now, counters.2, counters.3).into(),
            last: Some((now, counters.0, counters.1)),
            flow_rows: Vec::new(),
            flow_count: 0,
        })
    }

    /// Adds the rate since the last snapshot that had the row; a row that is gone (evicted
    /// or idle) adds nothing until it is back.
    pub fn receive(&mut self, s: &Snapshot) {
        let Some((out, back, _, _)) = counters(self.target, s) else {
            return;
        };
        let now = s.duration.as_secs_f64();
        if let Some((then, o, b)) = self.last {
            let dt = now - then;
            if dt < RESOLUTION.as_secs_f64() && dt >= 0.0 {
                return;
            }
            if dt > 0.0 && out >= o && back >= b {
                self.points.push_back(Point {
                    at: now,
                    out: (out - o) as f64 / dt,
                    back: (back - b) as f64 / dt,
                });
            }
        }
        self.last = Some((now, out, back));
        let oldest = now - SPAN.as_secs_f64();
        while self.points.front().is_some_and(|p| p.at < oldest) {
            self.points.pop_front();
        }
    }

    /// The talker this detail follows, if `s` still has it.
    pub fn talker<'a>(&self, s: &'a Snapshot) -> Option<&'a Talker> {
        match self.target {
            Target::Talker(ip) => s.talkers.iter().find(|t| t.ip == ip),
            Target::Flow(_) => None,
        }
    }

    /// The flow this detail follows, if `s` still has it.
    pub fn flow<'a>(&self, s: &'a Snapshot) -> Option<&'a Flow> {
        match self.target {
            Target::Flow(key) => s.flows.iter().find(|f| key.matches(f)),
            Target::Talker(_) => None,
        }
    }
}

fn counters(target: Target, s: &Snapshot) -> Option<Counters> {
    match target {
        Target::Talker(ip) => s.talkers.iter().find(|t| t.ip == ip).map(talker_counters),
        Target::Flow(key) => s.flows.iter().find(|f| key.matches(f)).map(flow_counters),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn opening_seeds_the_chart_from_the_three_windows() {
        let s = fixture::small();
        let ip = s.talkers[0].ip;
        let d = Detail::open(Target::Talker(ip), &s).unwrap();
        let now = s.duration.as_secs_f64();
        // The fixture's windows: 1.25 MB/s over 2 s, 0.9 of it over 10 s, 0.8 over 40 s.
        let rate = 1_250_000.0;
        let (r2, r10, r40) = (rate, rate * 0.9, rate * 0.8);
        let older = (40.0 * r40 - 10.0 * r10) / 30.0;
        let middle = (10.0 * r10 - 2.0 * r2) / 8.0;
        let outs: Vec<(f64, f64)> = d.points.iter().map(|p| (now - p.at, p.out)).collect();
        let want = [
            (40.0, older),
            (10.0, older),
            (10.0, middle),
            (2.0, middle),
            (2.0, r2),
            (0.0, r2),
        ];
        assert_eq!(outs.len(), want.len());
        for ((ago, v), (want_ago, want_v)) in outs.iter().zip(want) {
            assert!((ago - want_ago).abs() < 1e-9, "{outs:?}");
            assert!((v - want_v).abs() < 1.0, "{outs:?}");
        }
    }

    #[test]
    fn each_snapshot_adds_the_exact_rate_since_the_last_one() {
        let timeline = fixture::timeline(5);
        let mut s = timeline[0].clone();
        let key = FlowKey::of(&s.flows[0]);
        let mut d = Detail::open(Target::Flow(key), &s).unwrap();
        let seeded = d.points.len();
        for (i, later) in timeline[1..].iter().enumerate() {
            s = later.clone();
            s.flows[0].bytes_a_to_b += 1000 * (i as u64 + 1);
            s.flows[0].bytes_b_to_a += 10 * (i as u64 + 1);
            d.receive(&s);
        }
        let added: Vec<(f64, f64)> = d
            .points
            .iter()
            .skip(seeded)
            .map(|p| (p.out, p.back))
            .collect();
        assert_eq!(
            added,
            vec![
                (1000.0, 10.0),
                (1000.0, 10.0),
                (1000.0, 10.0),
                (1000.0, 10.0),
                (1000.0, 10.0)
            ]
        );
        // A snapshot without the row adds nothing; the next one spans the gap.
        let mut gone = timeline[5].clone();
        gone.duration += std::time::Duration::from_secs(1);
        gone.flows.clear();
        d.receive(&gone);
        assert_eq!(d.points.len(), seeded + 5);
        assert!(d.flow(&gone).is_none());
    }
}
