//! Which talkers get series of their own: the top N by bytes, with hysteresis.
//!
//! Every address ever seen cannot become a series: a random-source flood would create
//! millions, and each costs Prometheus memory for hours. So only N talkers are exported,
//! ranked by bytes per second (sent plus received, over the snapshot's 10 s window; the
//! cumulative bytes, then the address, break ties, so the choice is deterministic).
//!
//! Ranking alone would churn: two talkers trading places at rank N would make series appear
//! and vanish on every scrape. So membership has hysteresis. A member stays while it ranks
//! within the first N + [`SLACK`]; below that it leaves at once, and a member ranked between
//! N and N + `SLACK` leaves after [`PATIENCE`] consecutive evaluations there. Newcomers only
//! take free places, best first. Membership is re-evaluated once per snapshot, so several
//! scrapers (an HA pair) see the same set and do not age it faster.
//!
//! With `--metrics-v6-prefix LEN`, IPv6 addresses are rolled up to their /LEN network before
//! ranking (a host that rotates privacy addresses within its /64 then stays one series).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv6Addr};
use std::time::SystemTime;

use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::Talker;

use crate::ranking::top_n;

/// Ranks beyond N that a member may fall to before it starts to lose its place.
pub const SLACK: usize = 5;
/// Consecutive evaluations a member may spend between rank N and N + `SLACK` before it leaves.
pub const PATIENCE: u32 = 3;
/// The rate window ranking uses (index into the snapshot's 2 s / 10 s / 40 s windows).
const RANK_WINDOW: usize = 1;

/// One exported talker (an address, or an IPv6 network when rolled up).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Packets sent.
    pub packets_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Packets received.
    pub packets_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Bytes per second, sent plus received, over the ranking window.
    rate: f64,
    key: IpAddr,
    /// The prefix length when `key` is a rolled-up IPv6 network.
    prefix: Option<u8>,
}

impl Row {
    /// One talker's row.
    fn of(t: &Talker) -> Self {
        Self {
            packets_sent: t.packets_sent,
            bytes_sent: t.bytes_sent,
            packets_received: t.packets_received,
            bytes_received: t.bytes_received,
            rate: t.sent_bytes_per_sec.get(RANK_WINDOW) + t.received_bytes_per_sec.get(RANK_WINDOW),
            key: t.ip,
            prefix: None,
        }
    }

    /// Adds another row's counts and rate to this one.
    fn add(&mut self, other: &Self) {
        self.packets_sent += other.packets_sent;
        self.bytes_sent += other.bytes_sent;
        self.packets_received += other.packets_received;
        self.bytes_received += other.bytes_received;
        self.rate += other.rate;
    }

    /// The `ip` label: the address, or `network/len` when rolled up.
    pub fn label(&self) -> String {
        match self.prefix {
            Some(len) => format!("{}/{len}", self.key),
            None => self.key.to_string(),
        }
    }

    fn total(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }

    /// Best first: higher rate, then more bytes, then the lower address.
    fn rank_order(&self, other: &Self) -> std::cmp::Ordering {
        other
            .rate
            .total_cmp(&self.rate)
            .then_with(|| other.total().cmp(&self.total()))
            .then_with(|| self.key.cmp(&other.key))
    }
}

/// A member and how many evaluations in a row it has spent outside the top N.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Member {
    key: IpAddr,
    strikes: u32,
}

/// The exported top-N set and its hysteresis state.
#[derive(Debug)]
pub struct TopTalkers {
    limit: usize,
    v6_prefix: Option<u8>,
    members: Vec<Member>,
    evaluated: Option<SystemTime>,
    rows: Vec<Row>,
}

impl TopTalkers {
    /// Exports at most `limit` talkers, rolling IPv6 up to `v6_prefix` bits when given.
    pub fn new(limit: usize, v6_prefix: Option<u8>) -> Self {
        Self {
            limit,
            v6_prefix,
            members: Vec::new(),
            evaluated: None,
            rows: Vec::new(),
        }
    }

    /// The talkers to export for `snapshot`, best first. Membership moves only when the
    /// snapshot is a new one.
    pub fn rows(&mut self, snapshot: &Snapshot) -> &[Row] {
        if self.evaluated != Some(snapshot.taken_at) {
            self.evaluated = Some(snapshot.taken_at);
            let candidates = self.candidates(&snapshot.talkers);
            let ranked = top_n(&candidates, self.limit + SLACK, Row::rank_order);
            let keys: Vec<IpAddr> = ranked.iter().map(|r| r.key).collect();
            self.update(&keys);
            self.rows = ranked
                .into_iter()
                .filter(|r| self.members.iter().any(|m| m.key == r.key))
                .cloned()
                .collect();
        }
        &self.rows
    }

    /// Moves membership given the keys of the best `limit + SLACK` candidates, best first.
    fn update(&mut self, ranked: &[IpAddr]) {
        for member in &mut self.members {
            match ranked.iter().position(|k| *k == member.key) {
                Some(rank) if rank < self.limit => member.strikes = 0,
                Some(_) => member.strikes += 1,
                None => member.strikes = PATIENCE,
            }
        }
        self.members.retain(|m| m.strikes < PATIENCE);
        for key in ranked {
            if self.members.len() >= self.limit {
                break;
            }
            if !self.members.iter().any(|m| m.key == *key) {
                self.members.push(Member {
                    key: *key,
                    strikes: 0,
                });
            }
        }
    }

    /// One row per talker, or per IPv6 network when rolling up.
    fn candidates(&self, talkers: &[Talker]) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::with_capacity(talkers.len());
        let mut networks: HashMap<IpAddr, usize> = HashMap::new();
        for t in talkers {
            let row = Row::of(t);
            match (self.v6_prefix, t.ip) {
                (Some(len), IpAddr::V6(v6)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                    let net = IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask));
                    match networks.entry(net) {
                        Entry::Occupied(at) => rows[*at.get()].add(&row),
                        Entry::Vacant(slot) => {
                            slot.insert(rows.len());
                            rows.push(Row {
                                key: net,
                                prefix: Some(len),
                                ..row
                            });
                        }
                    }
                }
                _ => rows.push(row),
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, i])
    }

    fn members(t: &TopTalkers) -> Vec<u8> {
        let mut m: Vec<u8> = t
            .members
            .iter()
            .map(|m| match m.key {
                IpAddr::V4(v4) => v4.octets()[3],
                IpAddr::V6(_) => 0,
            })
            .collect();
        m.sort_unstable();
        m
    }

    fn ranked(order: &[u8]) -> Vec<IpAddr> {
        order.iter().map(|&i| ip(i)).collect()
    }

    #[test]
    fn fills_free_places_best_first() {
        let mut t = TopTalkers::new(3, None);
        t.update(&ranked(&[5, 4, 3, 2, 1]));
        assert_eq!(members(&t), [3, 4, 5]);
    }

    #[test]
    fn a_member_trading_places_at_the_edge_does_not_churn() {
        let mut t = TopTalkers::new(3, None);
        t.update(&ranked(&[1, 2, 3, 4]));
        // 3 and 4 swap on alternate evaluations: 3 keeps its place, 4 never gets in.
        for i in 0..20 {
            let order: &[u8] = if i % 2 == 0 {
                &[1, 2, 4, 3]
            } else {
                &[1, 2, 3, 4]
            };
            t.update(&ranked(order));
            assert_eq!(members(&t), [1, 2, 3], "evaluation {i}");
        }
    }

    #[test]
    fn a_member_just_outside_leaves_after_patience_and_far_outside_at_once() {
        let mut t = TopTalkers::new(2, None);
        t.update(&ranked(&[1, 2, 3]));
        for _ in 1..PATIENCE {
            t.update(&ranked(&[1, 3, 2]));
            assert_eq!(members(&t), [1, 2]);
        }
        t.update(&ranked(&[1, 3, 2]));
        assert_eq!(members(&t), [1, 3]);
        // 1 drops below N + SLACK: it leaves on this very evaluation.
        let far: Vec<u8> = (3..3 + 2 + SLACK as u8).collect();
        t.update(&ranked(&far));
        assert_eq!(members(&t), [3, 4]);
    }

    #[test]
    fn a_member_back_in_the_top_n_resets_its_strikes() {
        let mut t = TopTalkers::new(1, None);
        t.update(&ranked(&[1, 2]));
        for _ in 0..10 {
            for order in [[2, 1], [2, 1], [1, 2]] {
                t.update(&ranked(&order));
                assert_eq!(members(&t), [1]);
            }
        }
    }

    #[test]
    fn rows_roll_v6_up_to_the_prefix_and_never_exceed_the_limit() {
        use traffic_counter_capture::snapshot::{Timestamp, WindowRates};
        let talker = |ip: &str, bytes: u64| Talker {
            ip: ip.parse().unwrap(),
            packets_sent: 1,
            bytes_sent: bytes,
            packets_received: 0,
            bytes_received: 0,
            first_seen: Timestamp::default(),
            last_seen: Timestamp::default(),
            sent_bytes_per_sec: WindowRates([0.0, bytes as f32, 0.0]),
            received_bytes_per_sec: WindowRates::default(),
        };
        let mut s = crate::fixture::snapshot(Vec::new(), Vec::new());
        s.talkers = vec![
            talker("2001:db8:0:1::1", 100),
            talker("2001:db8:0:1::2", 100),
            talker("2001:db8:0:2::1", 150),
            talker("198.18.0.1", 120),
        ];
        let mut t = TopTalkers::new(2, Some(64));
        let rows = t.rows(&s);
        let labels: Vec<String> = rows.iter().map(Row::label).collect();
        assert_eq!(labels, ["2001:db8:0:1::/64", "2001:db8:0:2::/64"]);
        assert_eq!((rows[0].bytes_sent, rows[0].packets_sent), (200, 2));
        let mut plain = TopTalkers::new(2, None);
        let labels: Vec<String> = plain.rows(&s).iter().map(Row::label).collect();
        assert_eq!(labels, ["2001:db8:0:2::1", "198.18.0.1"]);
    }
}
