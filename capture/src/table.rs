//! The aggregator's bounded tables: one entry per address or flow, with eviction.
//!
//! A table never holds more than its bound. Eviction is CLOCK (second chance): entries sit in
//! a ring of slots, each with a "referenced" bit that every later merge sets. When a new key
//! arrives at a full table, the hand sweeps the ring, clearing set bits, and evicts the first
//! entry whose bit is clear: one that nothing touched since the hand last passed. New entries
//! start unreferenced, so a flood of one-packet random sources evicts its own kind first and
//! the steady talkers survive. Each eviction is O(1) amortised, with no scan of the table.
//!
//! Every evicted entry's counters are added to the table's `evicted` sums, so the table plus
//! `evicted` always equals what was counted.

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
    /// Adds this entry's counters to the evicted sums.
    fn evict_into(&self, evicted: &mut Self::Evicted);
}

/// An entry in its slot of the clock.
pub(crate) struct Slot<E: Entry> {
    key: E::Key,
    entry: E,
    referenced: bool,
}

/// A table bounded to `max` entries that evicts by CLOCK when full.
///
/// Entries live in a dense slab of slots that never move (the clock's ring); the hash map
/// holds only key -> slot. Under churn a hash map's deleted markers make it grow to about
/// twice its live size, so keeping the large entries out of it halves the table's memory and
/// makes inserting and evicting move 4 bytes instead of an entry.
pub(crate) struct BoundedTable<E: Entry> {
    index: FastMap<E::Key, u32>,
    slots: Vec<Slot<E>>,
    pub(crate) evicted: E::Evicted,
    hand: usize,
    max: usize,
}

impl<E: Entry> BoundedTable<E> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            index: FastMap::default(),
            slots: Vec::new(),
            evicted: E::Evicted::default(),
            hand: 0,
            max: max.clamp(1, u32::MAX as usize),
        }
    }

    /// Adds `delta` to the entry for `key`, creating it (and evicting if full) when new.
    pub(crate) fn merge(&mut self, key: E::Key, delta: &E::Delta, tick: u32) {
        if let Some(&i) = self.index.get(&key) {
            let slot = &mut self.slots[i as usize];
            slot.entry.merge(delta, tick);
            slot.referenced = true;
            return;
        }
        let slot = Slot {
            key,
            entry: E::create(delta, tick),
            referenced: false,
        };
        let i = if self.slots.len() < self.max {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let i = self.evict_one();
            self.slots[i] = slot;
            i
        };
        self.index.insert(key, i as u32);
    }

    /// Evicts the first unreferenced entry at or after the hand; returns its slot.
    fn evict_one(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let slot = &mut self.slots[i];
            if slot.referenced {
                slot.referenced = false;
            } else {
                self.index.remove(&slot.key);
                slot.entry.evict_into(&mut self.evicted);
                return i;
            }
        }
    }

    /// How many entries the table holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The entries, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&E::Key, &E)> {
        self.slots.iter().map(|slot| (&slot.key, &slot.entry))
    }

    /// The entry for `key`.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &E::Key) -> Option<&E> {
        self.index.get(key).map(|&i| &self.slots[i as usize].entry)
    }
}

/// One address, aggregated.
#[derive(Clone, Debug)]
pub(crate) struct TalkerEntry {
    pub(crate) counts: TalkerDelta,
    /// Bytes sent (series 0) and received (series 1) per tick.
    pub(crate) history: History<2>,
}

impl TalkerEntry {
    /// Adds a delta's bytes to the rate history: sent as series 0, received as series 1.
    fn record(&mut self, delta: &TalkerDelta, tick: u32) {
        self.history.add(tick, 0, delta.bytes_sent);
        self.history.add(tick, 1, delta.bytes_received);
    }
}

impl Entry for TalkerEntry {
    type Key = Addr;
    type Delta = TalkerDelta;
    type Evicted = EvictedTalkers;

    fn create(delta: &TalkerDelta, tick: u32) -> Self {
        let mut entry = Self {
            counts: *delta,
            history: History::new(),
        };
        entry.record(delta, tick);
        entry
    }

    fn merge(&mut self, delta: &TalkerDelta, tick: u32) {
        let c = &mut self.counts;
        c.packets_sent += delta.packets_sent;
        c.bytes_sent += delta.bytes_sent;
        c.packets_received += delta.packets_received;
        c.bytes_received += delta.bytes_received;
        c.first_ns = c.first_ns.min(delta.first_ns);
        c.last_ns = c.last_ns.max(delta.last_ns);
        self.record(delta, tick);
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

impl FlowEntry {
    /// Adds a delta's bytes to the rate history, one series per direction index.
    fn record(&mut self, delta: &FlowDelta, tick: u32) {
        self.history.add(tick, 0, delta.bytes[0]);
        self.history.add(tick, 1, delta.bytes[1]);
    }
}

impl Entry for FlowEntry {
    type Key = FlowKey;
    type Delta = FlowDelta;
    type Evicted = EvictedFlows;

    fn create(delta: &FlowDelta, tick: u32) -> Self {
        let mut entry = Self {
            counts: *delta,
            history: History::new(),
        };
        entry.record(delta, tick);
        entry
    }

    fn merge(&mut self, delta: &FlowDelta, tick: u32) {
        let c = &mut self.counts;
        for dir in [Direction::LoToHi, Direction::HiToLo] {
            let i = dir.index();
            c.packets[i] += delta.packets[i];
            c.bytes[i] += delta.bytes[i];
        }
        if delta.first_ns < c.first_ns {
            c.first_ns = delta.first_ns;
            c.first_dir = delta.first_dir;
        }
        c.last_ns = c.last_ns.max(delta.last_ns);
        self.record(delta, tick);
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
    fn a_full_table_evicts_untouched_entries_first_and_keeps_the_sums() {
        let mut table = BoundedTable::<TalkerEntry>::new(4);
        let ip = |i: u8| Addr::v4([198, 18, 0, i]);
        for i in 0..4 {
            table.merge(ip(i), &delta(1, 1000 + u64::from(i)), 0);
        }
        // A flood of new one-packet sources arrives while .0 and .2 keep talking, as steady
        // talkers do every tick: the flood evicts the silent .1 and .3, then its own kind.
        for round in 0..5u8 {
            table.merge(ip(0), &delta(1, 5000), 1);
            table.merge(ip(2), &delta(1, 5000), 1);
            table.merge(ip(10 + 2 * round), &delta(1, 6000), 2);
            table.merge(ip(11 + 2 * round), &delta(1, 6000), 2);
        }
        assert_eq!(table.len(), 4);
        assert!(table.get(&ip(0)).is_some() && table.get(&ip(2)).is_some());
        assert!(table.get(&ip(1)).is_none() && table.get(&ip(3)).is_none());
        assert_eq!(table.evicted.entries, 10);
        let kept: u64 = table.entries().map(|(_, e)| e.counts.packets_sent).sum();
        assert_eq!(kept + table.evicted.packets_sent, 4 + 10 + 10);
    }

    #[test]
    fn when_everything_is_referenced_the_hand_clears_and_evicts() {
        let mut table = BoundedTable::<TalkerEntry>::new(3);
        let ip = |i: u8| Addr::v4([198, 18, 1, i]);
        for round in 0..3 {
            for i in 0..3 {
                table.merge(ip(i), &delta(1, round), round as u32);
            }
        }
        table.merge(ip(9), &delta(1, 9), 3);
        assert_eq!((table.len(), table.evicted.entries), (3, 1));
        assert!(table.get(&ip(9)).is_some());
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
        let e = table.get(&key).unwrap();
        assert_eq!(e.counts.packets, [1, 2]);
        assert_eq!((e.counts.first_ns, e.counts.last_ns), (10, 30));
        assert_eq!(e.counts.first_dir, Direction::HiToLo);
    }
}
