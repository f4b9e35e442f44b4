//! Where the per-address deltas of conversations a worker evicts within a tick go: a small
//! direct-mapped table that keeps heavy hitters and sums up the rest.
//!
//! Under a flood of one-packet conversations against a server, every conversation is evicted
//! from the tally, and the server's share of each must still reach the server's row. A slot
//! holds one address; a delta for the resident adds to it, and a delta for another address
//! takes the slot only when it has at least as many packets as the resident, which then goes
//! to the evicted sums (as does a smaller newcomer). Random one-packet sources therefore
//! displace only each other, while the server's count grows in a slot nothing small can take.
//! The table is 4096 slots of 64 bytes: it stays in L2, so a spill costs a few nanoseconds.

use std::hash::BuildHasher;

use crate::counters::TalkerDelta;
use crate::parse::Addr;
use crate::snapshot::EvictedTalkers;
use crate::table::Evict;

/// Slots in the table (a power of two).
pub const HOT_SLOTS: usize = 4096;

#[derive(Clone, Copy, Default)]
struct Slot {
    ip: Addr,
    delta: TalkerDelta,
}

impl Slot {
    fn weight(&self) -> u64 {
        self.delta.packets_sent + self.delta.packets_received
    }
}

/// Per-address deltas spilled from evicted conversations: heavy hitters kept, the rest summed.
pub struct HotTalkers {
    slots: Box<[Slot]>,
    evicted: EvictedTalkers,
    hasher: foldhash::fast::RandomState,
}

impl Default for HotTalkers {
    fn default() -> Self {
        Self::new()
    }
}

impl HotTalkers {
    /// An empty table, fully allocated.
    pub fn new() -> Self {
        Self {
            slots: vec![Slot::default(); HOT_SLOTS].into_boxed_slice(),
            evicted: EvictedTalkers::default(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Adds `delta` for `ip`: to its slot, or to the evicted sums.
    #[inline]
    pub fn add(&mut self, ip: Addr, delta: &TalkerDelta) {
        let i = self.hasher.hash_one(ip) as usize & (HOT_SLOTS - 1);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let incoming = delta.packets_sent + delta.packets_received;
        if slot.weight() == 0 {
            *slot = Slot { ip, delta: *delta };
        } else if slot.ip == ip {
            slot.delta.add(delta);
        } else if incoming >= slot.weight() {
            slot.delta.evict_into(&mut self.evicted);
            *slot = Slot { ip, delta: *delta };
        } else {
            delta.evict_into(&mut self.evicted);
        }
    }

    /// The addresses held, with their deltas.
    pub fn iter(&self) -> impl Iterator<Item = (Addr, &TalkerDelta)> {
        self.slots
            .iter()
            .filter(|s| s.weight() > 0)
            .map(|s| (s.ip, &s.delta))
    }

    /// The sums of every delta that did not keep a slot.
    pub fn evicted(&self) -> &EvictedTalkers {
        &self.evicted
    }

    /// The delta held for `ip` (a linear search, for tests).
    #[cfg(test)]
    pub(crate) fn get(&self, ip: Addr) -> Option<&TalkerDelta> {
        self.iter().find(|(a, _)| *a == ip).map(|(_, d)| d)
    }

    /// Empties the table, keeping its allocation.
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.evicted = EvictedTalkers::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(received: u64) -> TalkerDelta {
        TalkerDelta {
            packets_received: received,
            bytes_received: 100 * received,
            ..TalkerDelta::default()
        }
    }

    #[test]
    fn a_flooded_server_keeps_its_slot_and_nothing_is_lost() {
        let mut hot = HotTalkers::new();
        let server = Addr::v4([198, 19, 0, 1]);
        for i in 0..200_000u32 {
            let source = Addr::v4([198, 18, (i >> 8) as u8, i as u8]);
            hot.add(server, &one(1));
            hot.add(
                source,
                &TalkerDelta {
                    packets_sent: 1,
                    bytes_sent: 100,
                    ..TalkerDelta::default()
                },
            );
        }
        let got = hot.get(server).expect("the server keeps a slot");
        // Whatever happened before its count outgrew a colliding newcomer is in the sums.
        assert!(got.packets_received >= 199_000, "{got:?}");
        let kept_received: u64 = hot.iter().map(|(_, d)| d.packets_received).sum();
        let kept_sent: u64 = hot.iter().map(|(_, d)| d.packets_sent).sum();
        assert_eq!(kept_received + hot.evicted().packets_received, 200_000);
        assert_eq!(kept_sent + hot.evicted().packets_sent, 200_000);
        assert!(hot.iter().count() <= HOT_SLOTS);
        hot.clear();
        assert_eq!(hot.iter().count(), 0);
        assert_eq!(hot.evicted().entries, 0);
    }
}
