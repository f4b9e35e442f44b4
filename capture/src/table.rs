//! The aggregator's bounded tables: one entry per address or flow, with eviction.
//!
//! A table never holds more than its bound. When a new key arrives at a full table, the
//! longest-idle sixteenth of it is evicted in one batch (an O(n) selection, amortised O(1) per
//! insert), and every evicted entry's counters are added to the table's `evicted` sums, so the
//! table plus `evicted` always equals what was counted.

use std::hash::Hash;

use crate::counters::{Direction, FastMap, FlowDelta, FlowKey, TalkerDelta};
use crate::history::History;
use crate::parse::Addr;
use crate::snapshot::{EvictedFlows, EvictedTalkers};

/// An aggregated entry built from worker deltas.
pub(crate) trait Entry {
    /// The key it is filed under.
    type Key: Copy + Eq + Hash;
    /// What a worker hands over for it.
    type Delta;
    /// The sums evicted entries roll into.
    type Evicted: Default;
    /// A new entry from its first delta, at `tick`.
    fn create(delta: &Self::Delta, tick: u32) -> Self;
    /// Adds a later delta, at `tick`.
    fn merge(&mut self, delta: &Self::Delta, tick: u32);
    /// Timestamp of the latest packet, ns since the epoch.
    fn last_ns(&self) -> u64;
    /// Adds this entry's counters to the evicted sums.
    fn evict_into(&self, evicted: &mut Self::Evicted);
}

/// A map bounded to `max` entries that evicts the longest-idle entries when full.
pub(crate) struct BoundedTable<E: Entry> {
    pub(crate) map: FastMap<E::Key, E>,
    pub(crate) evicted: E::Evicted,
    max: usize,
    scratch: Vec<(u64, E::Key)>,
}

impl<E: Entry> BoundedTable<E> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: FastMap::default(),
            evicted: E::Evicted::default(),
            max: max.max(1),
            scratch: Vec::new(),
        }
    }

    /// Adds `delta` to the entry for `key`, creating it (and evicting if full) when new.
    pub(crate) fn merge(&mut self, key: E::Key, delta: &E::Delta, tick: u32) {
        if let Some(entry) = self.map.get_mut(&key) {
            entry.merge(delta, tick);
            return;
        }
        if self.map.len() >= self.max {
            self.evict_idlest();
        }
        self.map.insert(key, E::create(delta, tick));
    }

    fn evict_idlest(&mut self) {
        let batch = (self.max / 16).max(1);
        self.scratch.clear();
        self.scratch
            .extend(self.map.iter().map(|(key, entry)| (entry.last_ns(), *key)));
        if batch < self.scratch.len() {
            self.scratch
                .select_nth_unstable_by_key(batch - 1, |(last, _)| *last);
        }
        for (_, key) in self.scratch.drain(..batch.min(self.scratch.len())) {
            if let Some(entry) = self.map.remove(&key) {
                entry.evict_into(&mut self.evicted);
            }
        }
    }
}

/// One address, aggregated.
#[derive(Clone, Debug)]
pub(crate) struct TalkerEntry {
    pub(crate) counts: TalkerDelta,
    /// Bytes sent (series 0) and received (series 1) per tick.
    pub(crate) history: History<2>,
}

impl Entry for TalkerEntry {
    type Key = Addr;
    type Delta = TalkerDelta;
    type Evicted = EvictedTalkers;

    fn create(delta: &TalkerDelta, tick: u32) -> Self {
        let mut history = History::new(tick);
        history.add(tick, 0, delta.bytes_sent);
        history.add(tick, 1, delta.bytes_received);
        Self {
            counts: *delta,
            history,
        }
    }

    fn merge(&mut self, delta: &TalkerDelta, tick: u32) {
        let c = &mut self.counts;
        c.packets_sent += delta.packets_sent;
        c.bytes_sent += delta.bytes_sent;
        c.packets_received += delta.packets_received;
        c.bytes_received += delta.bytes_received;
        c.first_ns = c.first_ns.min(delta.first_ns);
        c.last_ns = c.last_ns.max(delta.last_ns);
        self.history.add(tick, 0, delta.bytes_sent);
        self.history.add(tick, 1, delta.bytes_received);
    }

    fn last_ns(&self) -> u64 {
        self.counts.last_ns
    }

    fn evict_into(&self, evicted: &mut EvictedTalkers) {
        evicted.entries += 1;
        evicted.packets_sent += self.counts.packets_sent;
        evicted.bytes_sent += self.counts.bytes_sent;
        evicted.packets_received += self.counts.packets_received;
        evicted.bytes_received += self.counts.bytes_received;
    }
}

/// One flow, aggregated, in its key's canonical (lo, hi) orientation.
#[derive(Clone, Debug)]
pub(crate) struct FlowEntry {
    pub(crate) counts: FlowDelta,
    /// Bytes per direction index per tick.
    pub(crate) history: History<2>,
}

impl Entry for FlowEntry {
    type Key = FlowKey;
    type Delta = FlowDelta;
    type Evicted = EvictedFlows;

    fn create(delta: &FlowDelta, tick: u32) -> Self {
        let mut history = History::new(tick);
        history.add(tick, 0, delta.bytes[0]);
        history.add(tick, 1, delta.bytes[1]);
        Self {
            counts: *delta,
            history,
        }
    }

    fn merge(&mut self, delta: &FlowDelta, tick: u32) {
        let c = &mut self.counts;
        for dir in [Direction::LoToHi, Direction::HiToLo] {
            let i = dir.index();
            c.packets[i] += delta.packets[i];
            c.bytes[i] += delta.bytes[i];
            self.history.add(tick, i, delta.bytes[i]);
        }
        if delta.first_ns < c.first_ns {
            c.first_ns = delta.first_ns;
            c.first_dir = delta.first_dir;
        }
        c.last_ns = c.last_ns.max(delta.last_ns);
    }

    fn last_ns(&self) -> u64 {
        self.counts.last_ns
    }

    fn evict_into(&self, evicted: &mut EvictedFlows) {
        evicted.entries += 1;
        evicted.packets += self.counts.packets[0] + self.counts.packets[1];
        evicted.bytes += self.counts.bytes[0] + self.counts.bytes[1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(packets: u64, last_ns: u64) -> TalkerDelta {
        TalkerDelta {
            packets_sent: packets,
            bytes_sent: packets * 100,
            packets_received: 0,
            bytes_received: 0,
            first_ns: last_ns,
            last_ns,
        }
    }

    #[test]
    fn full_table_evicts_the_idlest_and_keeps_the_sums() {
        let mut table = BoundedTable::<TalkerEntry>::new(32);
        for i in 0..32u8 {
            table.merge(Addr::v4([198, 18, 0, i]), &delta(1, 1000 + u64::from(i)), 0);
        }
        // Refresh the oldest address so it is no longer the idlest.
        table.merge(Addr::v4([198, 18, 0, 0]), &delta(2, 5000), 0);
        table.merge(Addr::v4([198, 18, 1, 0]), &delta(4, 6000), 1);
        // 32 / 16 = 2 evicted: .1 and .2, the two idlest.
        assert_eq!(table.map.len(), 31);
        assert!(table.map.contains_key(&Addr::v4([198, 18, 0, 0])));
        assert!(!table.map.contains_key(&Addr::v4([198, 18, 0, 1])));
        assert!(!table.map.contains_key(&Addr::v4([198, 18, 0, 2])));
        assert_eq!(table.evicted.entries, 2);
        assert_eq!(table.evicted.packets_sent, 2);
        let kept: u64 = table.map.values().map(|e| e.counts.packets_sent).sum();
        assert_eq!(kept + table.evicted.packets_sent, 32 + 2 + 4);
    }

    #[test]
    fn flows_keep_the_earliest_direction() {
        let mut table = BoundedTable::<FlowEntry>::new(4);
        let key = FlowKey {
            proto: 17,
            has_ports: true,
            lo: crate::counters::Endpoint {
                ip: Addr::v4([198, 18, 0, 1]),
                port: 53,
            },
            hi: crate::counters::Endpoint {
                ip: Addr::v4([198, 18, 0, 2]),
                port: 4000,
            },
        };
        let later = FlowDelta {
            packets: [1, 0],
            bytes: [60, 0],
            first_ns: 20,
            last_ns: 20,
            first_dir: Direction::LoToHi,
        };
        let earlier = FlowDelta {
            packets: [0, 2],
            bytes: [0, 200],
            first_ns: 10,
            last_ns: 30,
            first_dir: Direction::HiToLo,
        };
        table.merge(key, &later, 0);
        table.merge(key, &earlier, 0);
        let e = &table.map[&key];
        assert_eq!(e.counts.packets, [1, 2]);
        assert_eq!((e.counts.first_ns, e.counts.last_ns), (10, 30));
        assert_eq!(e.counts.first_dir, Direction::HiToLo);
    }
}
