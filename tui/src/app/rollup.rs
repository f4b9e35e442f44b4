//! Roll-ups of the talkers view (`g`): one row per address, per network prefix (IPv4 /24 and
//! IPv6 /64 unless `--rollup-v4` / `--rollup-v6` say otherwise), or per named `--group`.
//!
//! Whatever the rows, the view says whether they add up: the address and prefix rows plus the
//! evicted remainder equal the totals (every counted packet is one talker's sent bytes and
//! another's received bytes, and the capture adds every evicted delta to the evicted sums).
//! Groups are counted exactly by the workers; when no two groups overlap, the totals less the
//! groups are what no group holds.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::groups::Group;
use traffic_counter_capture::snapshot::Talker;

/// What one talkers row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollup {
    /// One address.
    Addresses,
    /// One network prefix.
    Prefixes,
    /// One named group.
    Groups,
}

impl Rollup {
    /// The next in `g`'s cycle.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            Self::Addresses => Self::Prefixes,
            Self::Prefixes => Self::Groups,
            Self::Groups => Self::Addresses,
        }
    }
}

/// Prefix lengths for the prefix roll-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixLens {
    /// IPv4 prefix length, 0 to 32.
    pub v4: u8,
    /// IPv6 prefix length, 0 to 128.
    pub v6: u8,
}

impl Default for PrefixLens {
    fn default() -> Self {
        Self { v4: 24, v6: 64 }
    }
}

impl PrefixLens {
    /// The length for `ip`'s family.
    pub fn of(self, ip: IpAddr) -> u8 {
        match ip {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self.v6,
        }
    }

    /// The network `ip` is in.
    pub fn network(self, ip: IpAddr) -> IpAddr {
        IpNet::new(ip, self.of(ip)).map_or(ip, |n| n.network())
    }
}

/// One row per network: sums of its talkers' counters and rates, first seen the earliest and
/// last seen the latest of them; `ip` is the network address.
pub fn by_prefix(talkers: &[Talker], lens: PrefixLens) -> Vec<Talker> {
    let mut rows: Vec<Talker> = Vec::new();
    let mut at: HashMap<IpAddr, usize> = HashMap::new();
    for t in talkers {
        let net = lens.network(t.ip);
        match at.entry(net) {
            Entry::Occupied(i) => {
                let row = &mut rows[*i.get()];
                row.packets_sent += t.packets_sent;
                row.bytes_sent += t.bytes_sent;
                row.packets_received += t.packets_received;
                row.bytes_received += t.bytes_received;
                row.first_seen = row.first_seen.min(t.first_seen);
                row.last_seen = row.last_seen.max(t.last_seen);
                for w in 0..3 {
                    row.sent_bytes_per_sec.0[w] += t.sent_bytes_per_sec.0[w];
                    row.received_bytes_per_sec.0[w] += t.received_bytes_per_sec.0[w];
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(rows.len());
                rows.push(Talker { ip: net, ..*t });
            }
        }
    }
    rows
}

/// The talkers view's roll-up: its mode, its settings, and the rows and balance it derived
/// from the shown snapshot (recomputed only when the snapshot or the mode changes).
#[derive(Clone, Debug)]
pub struct Rolled {
    /// What a row stands for.
    pub mode: Rollup,
    /// Prefix lengths for [`Rollup::Prefixes`].
    pub lens: PrefixLens,
    /// The configured groups (`--group`), to tell whether they overlap.
    pub groups: Vec<Group>,
    /// One row per prefix, in [`Rollup::Prefixes`] mode.
    pub prefixes: Vec<Talker>,
    /// How the rows add up to the totals.
    pub balance: Option<Balance>,
    /// The snapshot and mode the rows and balance were derived from.
    from: Option<(Arc<Snapshot>, Rollup)>,
}

impl Default for Rolled {
    fn default() -> Self {
        Self {
            mode: Rollup::Addresses,
            lens: PrefixLens::default(),
            groups: Vec::new(),
            prefixes: Vec::new(),
            balance: None,
            from: None,
        }
    }
}

impl Rolled {
    /// Addresses first, prefixes of `lens`, and the configured `groups`.
    pub fn new(lens: PrefixLens, groups: Vec<Group>) -> Self {
        Self {
            lens,
            groups,
            ..Self::default()
        }
    }

    /// Derives the rows and balance for `s`, unless they are already derived from it.
    pub fn derive(&mut self, s: &Arc<Snapshot>) {
        if let Some((from, mode)) = &self.from
            && Arc::ptr_eq(from, s)
            && *mode == self.mode
        {
            return;
        }
        self.prefixes.clear();
        self.balance = Some(match self.mode {
            Rollup::Addresses => Balance::of_rows(&s.talkers, s),
            Rollup::Prefixes => {
                self.prefixes = by_prefix(&s.talkers, self.lens);
                Balance::of_rows(&self.prefixes, s)
            }
            Rollup::Groups => Balance::of_groups(s, &self.groups),
        });
        self.from = Some((s.clone(), self.mode));
    }

    /// The rows the talkers table ranks: addresses or prefixes (groups have their own).
    pub fn talkers<'a>(&'a self, s: &'a Snapshot) -> &'a [Talker] {
        match self.mode {
            Rollup::Prefixes => &self.prefixes,
            _ => &s.talkers,
        }
    }
}

/// Indexes of `s`'s groups whose name contains `text`, most bytes first.
pub fn group_rows(s: &Snapshot, text: &str) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..s.groups.len())
        .filter(|&i| s.groups[i].name.to_ascii_lowercase().contains(text))
        .collect();
    let bytes = |i: usize| s.groups[i].bytes_sent + s.groups[i].bytes_received;
    rows.sort_by(|&a, &b| bytes(b).cmp(&bytes(a)).then(a.cmp(&b)));
    rows
}

/// Sent and received sums: bytes and packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Packets received.
    pub packets_received: u64,
}

/// How the rows of the talkers view add up to the totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Address or prefix rows: their sums, the evicted remainder (entries and sums), and the
    /// totals both must add up to.
    Rows {
        /// Every row's sums (all rows, whatever the filter).
        rows: Sums,
        /// Entries evicted from the table.
        evicted_entries: u64,
        /// Their sums.
        evicted: Sums,
        /// Bytes and packets counted.
        totals: (u64, u64),
    },
    /// Disjoint groups: their sums and what no group holds (the totals less the groups).
    Groups {
        /// Every group's sums.
        groups: Sums,
        /// What no group holds.
        rest: Sums,
    },
    /// Groups that overlap: a packet may count in more than one, so no remainder is exact.
    Overlapping,
}

impl Balance {
    /// The balance of `rows` against `s`'s totals and evicted sums.
    pub fn of_rows(rows: &[Talker], s: &Snapshot) -> Self {
        let mut sums = Sums::default();
        for t in rows {
            sums.bytes_sent += t.bytes_sent;
            sums.bytes_received += t.bytes_received;
            sums.packets_sent += t.packets_sent;
            sums.packets_received += t.packets_received;
        }
        let e = &s.evicted_talkers;
        Self::Rows {
            rows: sums,
            evicted_entries: e.entries,
            evicted: Sums {
                bytes_sent: e.bytes_sent,
                bytes_received: e.bytes_received,
                packets_sent: e.packets_sent,
                packets_received: e.packets_received,
            },
            totals: (s.totals.bytes, s.totals.packets),
        }
    }

    /// The balance of `s`'s groups (configured as `config`) against its totals.
    pub fn of_groups(s: &Snapshot, config: &[Group]) -> Self {
        if overlap(config) {
            return Self::Overlapping;
        }
        let mut groups = Sums::default();
        for g in &s.groups {
            groups.bytes_sent += g.bytes_sent;
            groups.bytes_received += g.bytes_received;
            groups.packets_sent += g.packets_sent;
            groups.packets_received += g.packets_received;
        }
        let (bytes, packets) = (s.totals.bytes, s.totals.packets);
        Self::Groups {
            groups,
            rest: Sums {
                bytes_sent: bytes.saturating_sub(groups.bytes_sent),
                bytes_received: bytes.saturating_sub(groups.bytes_received),
                packets_sent: packets.saturating_sub(groups.packets_sent),
                packets_received: packets.saturating_sub(groups.packets_received),
            },
        }
    }

    /// Whether rows plus the remainder equal the totals, both ways, in bytes and packets.
    pub fn adds_up(&self) -> bool {
        match self {
            Self::Rows {
                rows,
                evicted,
                totals: (bytes, packets),
                ..
            } => {
                rows.bytes_sent + evicted.bytes_sent == *bytes
                    && rows.bytes_received + evicted.bytes_received == *bytes
                    && rows.packets_sent + evicted.packets_sent == *packets
                    && rows.packets_received + evicted.packets_received == *packets
            }
            // The remainder is defined as the difference.
            Self::Groups { .. } => true,
            Self::Overlapping => false,
        }
    }
}

/// Whether any two prefixes of different groups (or of one group) share addresses.
fn overlap(groups: &[Group]) -> bool {
    let all: Vec<&IpNet> = groups.iter().flat_map(|g| &g.prefixes).collect();
    all.iter().enumerate().any(|(i, a)| {
        all[i + 1..]
            .iter()
            .any(|b| a.contains(*b) || b.contains(*a))
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use std::time::Duration;

    use traffic_counter_capture::aggregate::Aggregate;
    use traffic_counter_capture::counters::Tally;
    use traffic_counter_capture::groups::GroupTotals;
    use traffic_counter_capture::parse::{Addr, Packet};

    use super::*;
    use crate::fixture;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_sum_their_talkers() {
        let s = fixture::small();
        let rows = by_prefix(&s.talkers, PrefixLens::default());
        let nets: Vec<IpAddr> = rows.iter().map(|t| t.ip).collect();
        assert_eq!(
            nets,
            vec![
                ip("198.18.0.0"),
                ip("2001:db8:1234:5678::"),
                ip("2001:db8::"),
                ip("198.19.7.0")
            ]
        );
        let (a, b) = (&s.talkers[0], &s.talkers[1]);
        assert_eq!(rows[0].bytes_sent, a.bytes_sent + b.bytes_sent);
        let sum = a.received_bytes_per_sec.0[2] + b.received_bytes_per_sec.0[2];
        assert!((rows[0].received_bytes_per_sec.0[2] - sum).abs() < 1e-3);
        let coarse = by_prefix(&s.talkers, PrefixLens { v4: 8, v6: 16 });
        assert_eq!(coarse.len(), 2);
    }

    /// A snapshot of the capture's own aggregate after many evictions: 1,500 IPv4 and 600
    /// IPv6 clients over five ticks into a table of 32 talkers (and workers' tallies of 12).
    fn after_evictions() -> Snapshot {
        let mut agg = Aggregate::new(32, None);
        let mut tally = Tally::new(12, false);
        for tick in 0..5u32 {
            for i in 0..420u32 {
                let n = tick * 420 + i;
                let (src, dst) = if i % 7 == 0 {
                    let mut v6 = [0u8; 16];
                    v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                    v6[6..8].copy_from_slice(&(n as u16).to_be_bytes());
                    v6[15] = 1;
                    let mut server = [0u8; 16];
                    server[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                    server[15] = 0x53;
                    (Addr::v6(v6), Addr::v6(server))
                } else {
                    (
                        Addr::v4([198, 18, (n >> 8) as u8, n as u8]),
                        Addr::v4([198, 19, 0, 1]),
                    )
                };
                let bytes = 64 + u64::from(i % 900);
                let packet = Packet {
                    src,
                    dst,
                    proto: 17,
                    ports: Some((4000, 53)),
                    vlan: None,
                    tags: 0,
                    segments: 1,
                    bytes,
                };
                tally.count(&packet, bytes, u64::from(n) + 1);
            }
            tally.flush();
            agg.merge(&tally);
            tally.clear();
            agg.end_tick();
        }
        let rows = agg.rows(Duration::from_secs(1));
        let mut s = fixture::snapshot(rows.talkers, Vec::new());
        s.totals.bytes = rows.bytes;
        s.totals.packets = rows.packets;
        s.evicted_talkers = rows.evicted_talkers;
        s
    }

    #[test]
    fn rows_plus_evicted_equal_the_totals_after_evictions() {
        let s = after_evictions();
        for rows in [
            s.talkers.clone(),
            by_prefix(&s.talkers, PrefixLens::default()),
            by_prefix(&s.talkers, PrefixLens { v4: 0, v6: 0 }),
        ] {
            let balance = Balance::of_rows(&rows, &s);
            assert!(balance.adds_up(), "{balance:?}");
            let Balance::Rows {
                rows,
                evicted,
                totals,
                evicted_entries,
                ..
            } = balance
            else {
                panic!("rows")
            };
            assert!(evicted_entries > 2000, "{evicted_entries}");
            assert_eq!(rows.bytes_sent + evicted.bytes_sent, totals.0);
            assert_eq!(totals.1, 2100);
            assert!(evicted.bytes_sent > 0 && rows.bytes_sent > 0);
        }
        // A row lost without its evicted sums no longer adds up, and the balance says so.
        let mut lost = s.clone();
        lost.talkers.pop();
        assert!(!Balance::of_rows(&lost.talkers, &lost).adds_up());
    }

    #[test]
    fn disjoint_groups_leave_an_exact_rest_and_overlapping_ones_none() {
        let mut s = fixture::small();
        s.totals.bytes = 10_000;
        s.totals.packets = 100;
        s.groups = vec![GroupTotals {
            name: "lab".into(),
            packets_sent: 40,
            bytes_sent: 4_000,
            packets_received: 10,
            bytes_received: 1_000,
        }];
        let lab: Group = "lab=198.18.0.0/24".parse().unwrap();
        let Balance::Groups { rest, .. } = Balance::of_groups(&s, std::slice::from_ref(&lab))
        else {
            panic!("disjoint")
        };
        assert_eq!((rest.bytes_sent, rest.bytes_received), (6_000, 9_000));
        assert_eq!((rest.packets_sent, rest.packets_received), (60, 90));
        let wide: Group = "wide=198.18.0.0/15".parse().unwrap();
        assert_eq!(Balance::of_groups(&s, &[lab, wide]), Balance::Overlapping);
    }
}
